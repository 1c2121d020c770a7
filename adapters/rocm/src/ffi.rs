//! amdsmi and ROCm SMI, opened with `dlopen` (libloading) at run time.
//!
//! C prototypes used, from ROCm's headers:
//!
//! `rocm_smi/rocm_smi.h` (rocm_smi_lib):
//! ```c
//! rsmi_status_t rsmi_init(uint64_t init_flags);
//! rsmi_status_t rsmi_shut_down(void);
//! rsmi_status_t rsmi_num_monitor_devices(uint32_t *num_devices);
//! rsmi_status_t rsmi_dev_name_get(uint32_t dv_ind, char *name, size_t len);
//! rsmi_status_t rsmi_dev_energy_count_get(uint32_t dv_ind, uint64_t *power,
//!                                         float *counter_resolution, uint64_t *timestamp);
//! rsmi_status_t rsmi_dev_power_ave_get(uint32_t dv_ind, uint32_t sensor_ind, uint64_t *power);
//! rsmi_status_t rsmi_dev_power_cap_get(uint32_t dv_ind, uint32_t sensor_ind, uint64_t *cap);
//! ```
//! (`power` in `rsmi_dev_energy_count_get` is the accumulator in ticks of `counter_resolution`
//! micro-joules; power values are micro-watts.)
//!
//! `amd_smi/amdsmi.h` (amdsmi):
//! ```c
//! typedef void *amdsmi_socket_handle;  typedef void *amdsmi_processor_handle;
//! amdsmi_status_t amdsmi_init(uint64_t init_flags);             // AMDSMI_INIT_AMD_GPUS = 1 << 1
//! amdsmi_status_t amdsmi_shut_down(void);
//! amdsmi_status_t amdsmi_get_socket_handles(uint32_t *socket_count,
//!                                           amdsmi_socket_handle *socket_handles);
//! amdsmi_status_t amdsmi_get_processor_handles(amdsmi_socket_handle socket_handle,
//!                                              uint32_t *processor_count,
//!                                              amdsmi_processor_handle *processor_handles);
//! amdsmi_status_t amdsmi_get_energy_count(amdsmi_processor_handle processor_handle,
//!                                         uint64_t *energy_accumulator,
//!                                         float *counter_resolution, uint64_t *timestamp);
//! amdsmi_status_t amdsmi_get_gpu_bdf_id(amdsmi_processor_handle processor_handle,
//!                                       uint64_t *bdfid);
//! amdsmi_status_t amdsmi_get_gpu_asic_info(amdsmi_processor_handle processor_handle,
//!                                          amdsmi_asic_info_t *info);  // market_name first
//! ```
//! Both status enums are C `int`s with 0 for success, read here as `u32`.

use std::ffi::{c_char, c_void, OsStr};
use std::path::{Path, PathBuf};

use libloading::Library;

use crate::backend::{amdsmi_status, rsmi_status, AmdBackend, BackendError, EnergyCount};
use crate::hwmon;

/// The amdsmi library file name.
pub const AMDSMI_LIBRARY: &str = "libamd_smi.so";
/// The ROCm SMI library file name.
pub const RSMI_LIBRARY: &str = "librocm_smi64.so";

/// Why a library could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// `dlopen` failed for every candidate path.
    #[error("{library} not found (tried {tried}: {detail})")]
    NotFound {
        /// The file name.
        library: &'static str,
        /// The paths tried, `, `-separated.
        tried: String,
        /// The loader's message for the first candidate.
        detail: String,
    },
    /// The library lacks an entry point this crate needs.
    #[error("{library} at {path} lacks the symbol {symbol} (not this library, or too old)")]
    MissingSymbol {
        /// The file name.
        library: &'static str,
        /// Where it was loaded from.
        path: String,
        /// The missing symbol.
        symbol: &'static str,
    },
    /// A setup call failed.
    #[error(
        "{library}: {call} failed with status {status} (is the amdgpu kernel driver loaded, and \
         are /dev/kfd and /dev/dri/renderD* accessible to this user, e.g. via the render group?)"
    )]
    Call {
        /// The file name.
        library: &'static str,
        /// The function.
        call: &'static str,
        /// Its status code.
        status: u32,
    },
    /// The library works but sees no GPU.
    #[error("{library} sees no AMD GPU")]
    NoDevices {
        /// The file name.
        library: &'static str,
    },
}

/// Where to look for `library`: the bare name (the loader's search path, `LD_LIBRARY_PATH`),
/// then `$ROCM_PATH/lib`, then `/opt/rocm/lib`.
pub fn candidates(library: &str, rocm_path: Option<&OsStr>) -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from(library)];
    if let Some(root) = rocm_path.filter(|r| !r.is_empty()) {
        out.push(Path::new(root).join("lib").join(library));
    }
    let default = Path::new("/opt/rocm/lib").join(library);
    if !out.contains(&default) {
        out.push(default);
    }
    out
}

fn open_first(library: &'static str, paths: &[PathBuf]) -> Result<(Library, PathBuf), LoadError> {
    let mut first_error = None;
    for p in paths {
        // SAFETY: loading a shared library runs its initialisers; amdsmi and ROCm SMI are
        // ordinary C/C++ libraries whose initialisers only set up their own state. A path that
        // is not such a library is rejected later when its symbols are missing.
        match unsafe { Library::new(p) } {
            Ok(lib) => return Ok((lib, p.clone())),
            Err(e) => {
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    Err(LoadError::NotFound {
        library,
        tried: paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        detail: first_error.unwrap_or_default(),
    })
}

/// Copies a function pointer of type `T` named `symbol` out of `lib`.
///
/// # Safety
/// `T` must be the exact `extern "C"` function type of `symbol`, and the pointer must not be
/// called after `lib` is dropped.
unsafe fn symbol<T: Copy>(
    lib: &Library,
    library: &'static str,
    path: &Path,
    symbol: &'static str,
) -> Result<T, LoadError> {
    let mut name = symbol.as_bytes().to_vec();
    name.push(0);
    // SAFETY: forwarded from the caller: `T` is the symbol's real type.
    match unsafe { lib.get::<T>(&name) } {
        Ok(s) => Ok(*s),
        Err(_) => Err(LoadError::MissingSymbol {
            library,
            path: path.display().to_string(),
            symbol,
        }),
    }
}

type RsmiInit = unsafe extern "C" fn(u64) -> u32;
type RsmiShutDown = unsafe extern "C" fn() -> u32;
type RsmiNumDevices = unsafe extern "C" fn(*mut u32) -> u32;
type RsmiNameGet = unsafe extern "C" fn(u32, *mut c_char, usize) -> u32;
type RsmiEnergyGet = unsafe extern "C" fn(u32, *mut u64, *mut f32, *mut u64) -> u32;
type RsmiPowerGet = unsafe extern "C" fn(u32, u32, *mut u64) -> u32;

/// ROCm SMI (`librocm_smi64.so`), initialised; shut down when dropped.
#[derive(Debug)]
pub struct RsmiBackend {
    shut_down: Option<RsmiShutDown>,
    name_get: Option<RsmiNameGet>,
    energy_get: Option<RsmiEnergyGet>,
    power_ave_get: Option<RsmiPowerGet>,
    power_cap_get: Option<RsmiPowerGet>,
    devices: u32,
    _lib: Library,
}

impl RsmiBackend {
    /// Loads ROCm SMI from the usual places ([`candidates`]) and initialises it.
    pub fn load() -> Result<Self, LoadError> {
        let rocm = std::env::var_os("ROCM_PATH");
        Self::load_from(&candidates(RSMI_LIBRARY, rocm.as_deref()))
    }

    /// Loads the first of `paths` that opens, as if it were ROCm SMI, and initialises it.
    pub fn load_from(paths: &[PathBuf]) -> Result<Self, LoadError> {
        let (lib, path) = open_first(RSMI_LIBRARY, paths)?;
        // SAFETY: each type below is the prototype from rocm_smi.h quoted in the module docs;
        // the pointers live in `Self` next to `_lib`, which is dropped after them.
        let (init, num, shut_down, name_get, energy_get, power_ave_get, power_cap_get) = unsafe {
            let l = RSMI_LIBRARY;
            (
                symbol::<RsmiInit>(&lib, l, &path, "rsmi_init")?,
                symbol::<RsmiNumDevices>(&lib, l, &path, "rsmi_num_monitor_devices")?,
                symbol::<RsmiShutDown>(&lib, l, &path, "rsmi_shut_down").ok(),
                symbol::<RsmiNameGet>(&lib, l, &path, "rsmi_dev_name_get").ok(),
                symbol::<RsmiEnergyGet>(&lib, l, &path, "rsmi_dev_energy_count_get").ok(),
                symbol::<RsmiPowerGet>(&lib, l, &path, "rsmi_dev_power_ave_get").ok(),
                symbol::<RsmiPowerGet>(&lib, l, &path, "rsmi_dev_power_cap_get").ok(),
            )
        };
        if energy_get.is_none() && power_ave_get.is_none() {
            return Err(LoadError::MissingSymbol {
                library: RSMI_LIBRARY,
                path: path.display().to_string(),
                symbol: "rsmi_dev_energy_count_get",
            });
        }
        // SAFETY: rsmi_init takes a flags word (0: defaults) and may be called before any other
        // rsmi function.
        let status = unsafe { init(0) };
        if status != 0 {
            return Err(LoadError::Call {
                library: RSMI_LIBRARY,
                call: "rsmi_init",
                status,
            });
        }
        let mut devices = 0u32;
        // SAFETY: `devices` is a live u32 the library writes the count into.
        let status = unsafe { num(&mut devices) };
        let backend = Self {
            shut_down,
            name_get,
            energy_get,
            power_ave_get,
            power_cap_get,
            devices,
            _lib: lib,
        };
        if status != 0 {
            return Err(LoadError::Call {
                library: RSMI_LIBRARY,
                call: "rsmi_num_monitor_devices",
                status,
            });
        }
        if devices == 0 {
            return Err(LoadError::NoDevices {
                library: RSMI_LIBRARY,
            });
        }
        Ok(backend)
    }
}

impl Drop for RsmiBackend {
    fn drop(&mut self) {
        if let Some(f) = self.shut_down {
            // SAFETY: rsmi_init succeeded for this instance (Self is only built after it), and
            // nothing calls into the library after drop.
            unsafe { f() };
        }
    }
}

impl AmdBackend for RsmiBackend {
    fn library(&self) -> &'static str {
        RSMI_LIBRARY
    }
    fn short_name(&self) -> &'static str {
        "rocm-smi"
    }
    fn device_count(&self) -> u32 {
        self.devices
    }
    fn name(&self, index: u32) -> Option<String> {
        let f = self.name_get?;
        let mut buf = [0 as c_char; 256];
        // SAFETY: `buf` is a live buffer of `buf.len()` bytes; the library writes a
        // NUL-terminated string of at most that length.
        let status = unsafe { f(index, buf.as_mut_ptr(), buf.len()) };
        (status == 0).then(|| c_buffer_to_string(&buf)).flatten()
    }
    fn energy(&self, index: u32) -> Result<EnergyCount, BackendError> {
        let f = self.energy_get.ok_or(BackendError::NotSupported)?;
        let (mut ticks, mut resolution, mut timestamp) = (0u64, 0f32, 0u64);
        // SAFETY: the three out-pointers are live locals of the prototype's types.
        let status = unsafe { f(index, &mut ticks, &mut resolution, &mut timestamp) };
        match rsmi_status("rsmi_dev_energy_count_get", status) {
            None => Ok(EnergyCount {
                ticks,
                resolution_uj: resolution,
                timestamp_ns: timestamp,
            }),
            Some(e) => Err(e),
        }
    }
    fn average_power_uw(&self, index: u32) -> Result<u64, BackendError> {
        let f = self.power_ave_get.ok_or(BackendError::NotSupported)?;
        let mut uw = 0u64;
        // SAFETY: `uw` is a live u64; sensor 0 is the board sensor.
        let status = unsafe { f(index, 0, &mut uw) };
        match rsmi_status("rsmi_dev_power_ave_get", status) {
            None => Ok(uw),
            Some(e) => Err(e),
        }
    }
    fn power_cap_uw(&self, index: u32) -> Option<u64> {
        let f = self.power_cap_get?;
        let mut uw = 0u64;
        // SAFETY: `uw` is a live u64; sensor 0 is the board sensor.
        let status = unsafe { f(index, 0, &mut uw) };
        (status == 0 && uw > 0).then_some(uw)
    }
}

fn c_buffer_to_string(buf: &[c_char]) -> Option<String> {
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    let s = String::from_utf8_lossy(&bytes).trim().to_owned();
    (!s.is_empty()).then_some(s)
}

type AmdInit = unsafe extern "C" fn(u64) -> u32;
type AmdShutDown = unsafe extern "C" fn() -> u32;
type AmdSocketHandles = unsafe extern "C" fn(*mut u32, *mut *mut c_void) -> u32;
type AmdProcessorHandles = unsafe extern "C" fn(*mut c_void, *mut u32, *mut *mut c_void) -> u32;
type AmdEnergyCount = unsafe extern "C" fn(*mut c_void, *mut u64, *mut f32, *mut u64) -> u32;
type AmdBdfId = unsafe extern "C" fn(*mut c_void, *mut u64) -> u32;
type AmdAsicInfo = unsafe extern "C" fn(*mut c_void, *mut c_void) -> u32;

const AMDSMI_INIT_AMD_GPUS: u64 = 1 << 1;

/// Bytes reserved for `amdsmi_asic_info_t`, larger than any release's struct (about 700 bytes).
const ASIC_INFO_BYTES: usize = 4096;

/// One GPU found through amdsmi: its handle (an opaque pointer, kept as an integer so the
/// backend is `Send`), and the hwmon directory that gives its power.
#[derive(Debug, Clone)]
struct AmdGpu {
    handle: usize,
    name: Option<String>,
    hwmon: Option<PathBuf>,
}

/// amdsmi (`libamd_smi.so`), initialised for GPUs; shut down when dropped. Power and the power
/// cap come from sysfs ([`crate::hwmon`]) under the given root.
#[derive(Debug)]
pub struct AmdSmiBackend {
    shut_down: Option<AmdShutDown>,
    energy_count: AmdEnergyCount,
    gpus: Vec<AmdGpu>,
    _lib: Library,
}

impl AmdSmiBackend {
    /// Loads amdsmi from the usual places ([`candidates`]), with sysfs at `sys_root`.
    pub fn load(sys_root: &Path) -> Result<Self, LoadError> {
        let rocm = std::env::var_os("ROCM_PATH");
        Self::load_from(&candidates(AMDSMI_LIBRARY, rocm.as_deref()), sys_root)
    }

    /// Loads the first of `paths` that opens, as if it were amdsmi, and lists its GPUs.
    pub fn load_from(paths: &[PathBuf], sys_root: &Path) -> Result<Self, LoadError> {
        let (lib, path) = open_first(AMDSMI_LIBRARY, paths)?;
        let l = AMDSMI_LIBRARY;
        // SAFETY: each type below is the prototype from amdsmi.h quoted in the module docs; the
        // pointers live in `Self` next to `_lib`, which is dropped after them.
        let (init, sockets, processors, energy_count, shut_down, bdf, asic) = unsafe {
            (
                symbol::<AmdInit>(&lib, l, &path, "amdsmi_init")?,
                symbol::<AmdSocketHandles>(&lib, l, &path, "amdsmi_get_socket_handles")?,
                symbol::<AmdProcessorHandles>(&lib, l, &path, "amdsmi_get_processor_handles")?,
                symbol::<AmdEnergyCount>(&lib, l, &path, "amdsmi_get_energy_count")?,
                symbol::<AmdShutDown>(&lib, l, &path, "amdsmi_shut_down").ok(),
                symbol::<AmdBdfId>(&lib, l, &path, "amdsmi_get_gpu_bdf_id").ok(),
                symbol::<AmdAsicInfo>(&lib, l, &path, "amdsmi_get_gpu_asic_info").ok(),
            )
        };
        let call_error = |call, status| LoadError::Call {
            library: l,
            call,
            status,
        };
        // SAFETY: amdsmi_init takes the init flags and may be called before any other function.
        let status = unsafe { init(AMDSMI_INIT_AMD_GPUS) };
        if status != 0 {
            return Err(call_error("amdsmi_init", status));
        }
        let mut backend = Self {
            shut_down,
            energy_count,
            gpus: Vec::new(),
            _lib: lib,
        };
        let mut socket_count = 0u32;
        // SAFETY: with a null array, amdsmi writes only the number of sockets.
        let status = unsafe { sockets(&mut socket_count, std::ptr::null_mut()) };
        if status != 0 {
            return Err(call_error("amdsmi_get_socket_handles", status));
        }
        let mut socket_handles = vec![std::ptr::null_mut::<c_void>(); socket_count as usize];
        // SAFETY: the array holds `socket_count` handles, the count the library was given.
        let status = unsafe { sockets(&mut socket_count, socket_handles.as_mut_ptr()) };
        if status != 0 {
            return Err(call_error("amdsmi_get_socket_handles", status));
        }
        socket_handles.truncate(socket_count as usize);
        for socket in socket_handles {
            let mut n = 0u32;
            // SAFETY: `socket` is a handle the library returned; null array: count only.
            let status = unsafe { processors(socket, &mut n, std::ptr::null_mut()) };
            if status != 0 {
                return Err(call_error("amdsmi_get_processor_handles", status));
            }
            let mut handles = vec![std::ptr::null_mut::<c_void>(); n as usize];
            // SAFETY: the array holds `n` handles, the count the library was given.
            let status = unsafe { processors(socket, &mut n, handles.as_mut_ptr()) };
            if status != 0 {
                return Err(call_error("amdsmi_get_processor_handles", status));
            }
            handles.truncate(n as usize);
            for h in handles {
                let hwmon = bdf.and_then(|f| {
                    let mut id = 0u64;
                    // SAFETY: `h` is a processor handle from the library; `id` a live u64.
                    let status = unsafe { f(h, &mut id) };
                    (status == 0)
                        .then(|| hwmon::hwmon_dir(sys_root, hwmon::PciAddress::from_bdf_id(id)))
                        .flatten()
                });
                let name = asic.and_then(|f| {
                    let mut buf = vec![0u64; ASIC_INFO_BYTES / 8];
                    // SAFETY: `buf` is a zeroed, 8-byte aligned buffer larger than any
                    // release's amdsmi_asic_info_t; only its first field, the NUL-terminated
                    // market_name, is read back, and the last byte stays 0.
                    let status = unsafe { f(h, buf.as_mut_ptr().cast()) };
                    if status != 0 {
                        return None;
                    }
                    let bytes: Vec<c_char> = buf
                        .iter()
                        .flat_map(|w| w.to_ne_bytes())
                        .take(ASIC_INFO_BYTES - 1)
                        .map(|b| b as c_char)
                        .collect();
                    c_buffer_to_string(&bytes)
                });
                backend.gpus.push(AmdGpu {
                    handle: h as usize,
                    name,
                    hwmon,
                });
            }
        }
        if backend.gpus.is_empty() {
            return Err(LoadError::NoDevices {
                library: AMDSMI_LIBRARY,
            });
        }
        Ok(backend)
    }

    fn gpu(&self, index: u32) -> Result<&AmdGpu, BackendError> {
        self.gpus
            .get(index as usize)
            .ok_or_else(|| BackendError::Gone(format!("no amdsmi GPU {index}")))
    }
}

impl Drop for AmdSmiBackend {
    fn drop(&mut self) {
        if let Some(f) = self.shut_down {
            // SAFETY: amdsmi_init succeeded for this instance, and nothing calls into the library
            // after drop.
            unsafe { f() };
        }
    }
}

impl AmdBackend for AmdSmiBackend {
    fn library(&self) -> &'static str {
        AMDSMI_LIBRARY
    }
    fn short_name(&self) -> &'static str {
        "amdsmi"
    }
    fn device_count(&self) -> u32 {
        self.gpus.len() as u32
    }
    fn name(&self, index: u32) -> Option<String> {
        self.gpus.get(index as usize)?.name.clone()
    }
    fn energy(&self, index: u32) -> Result<EnergyCount, BackendError> {
        let gpu = self.gpu(index)?;
        let (mut ticks, mut resolution, mut timestamp) = (0u64, 0f32, 0u64);
        // SAFETY: the handle came from amdsmi_get_processor_handles of this initialised
        // instance; the out-pointers are live locals of the prototype's types.
        let status = unsafe {
            (self.energy_count)(
                gpu.handle as *mut c_void,
                &mut ticks,
                &mut resolution,
                &mut timestamp,
            )
        };
        match amdsmi_status("amdsmi_get_energy_count", status) {
            None => Ok(EnergyCount {
                ticks,
                resolution_uj: resolution,
                timestamp_ns: timestamp,
            }),
            Some(e) => Err(e),
        }
    }
    fn average_power_uw(&self, index: u32) -> Result<u64, BackendError> {
        match &self.gpu(index)?.hwmon {
            Some(dir) => hwmon::power_uw(dir),
            None => Err(BackendError::NotSupported),
        }
    }
    fn power_cap_uw(&self, index: u32) -> Option<u64> {
        hwmon::power_cap_uw(self.gpus.get(index as usize)?.hwmon.as_ref()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_paths() {
        let c = candidates("libx.so", Some(OsStr::new("/opt/rocm-6.2")));
        assert_eq!(
            c,
            vec![
                PathBuf::from("libx.so"),
                PathBuf::from("/opt/rocm-6.2/lib/libx.so"),
                PathBuf::from("/opt/rocm/lib/libx.so"),
            ]
        );
        let c = candidates("libx.so", Some(OsStr::new("/opt/rocm")));
        assert_eq!(c.len(), 2);
        assert_eq!(candidates("libx.so", None).len(), 2);
    }

    #[test]
    fn failed_setup_call_says_what_to_check() {
        let e = LoadError::Call {
            library: RSMI_LIBRARY,
            call: "rsmi_init",
            status: 8,
        };
        let msg = e.to_string();
        assert!(msg.contains("rsmi_init failed with status 8"), "{msg}");
        assert!(msg.contains("amdgpu kernel driver"), "{msg}");
    }

    #[test]
    fn c_strings_stop_at_nul() {
        let buf: Vec<c_char> = b"AMD Instinct MI250X\0junk"
            .iter()
            .map(|&b| b as c_char)
            .collect();
        assert_eq!(
            c_buffer_to_string(&buf).as_deref(),
            Some("AMD Instinct MI250X")
        );
        assert_eq!(c_buffer_to_string(&[0 as c_char; 4]), None);
    }
}
