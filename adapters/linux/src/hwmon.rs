//! Power and energy sensors of the Linux hwmon class (`/sys/class/hwmon/hwmon*`).
//!
//! Boards and servers report their power there: NVIDIA Jetson's INA3221 rails (`VDD_IN`,
//! `VDD_CPU_GPU_CV`, ...), INA219/INA226 monitors on I2C, `amd_energy` socket and core counters,
//! many ARM SoCs, the amdgpu driver. Per the kernel's hwmon sysfs ABI
//! (Documentation/hwmon/sysfs-interface.rst), each `hwmonN` directory has a `name` and, per
//! channel:
//! - `energyN_input`: cumulative energy in micro-joules, a counter (fed to the core's
//!   [`EnergyCounter`](ea2p_core::counter::EnergyCounter) like RAPL's `energy_uj`: wraps, resets
//!   and stalls are the core session's to tell apart and report);
//! - `powerN_input` (instantaneous) or `powerN_average`: power in micro-watts;
//! - `inN_input` (milli-volts) and `currN_input` (milli-amperes): a rail's voltage and current, whose
//!   product is its power (INA3221: channels 1-3). Pairs are used only on a device that reports no
//!   `power*`/`energy*` channel itself, so that an INA226 (`in1`, `curr1` and `power1`) is not
//!   counted twice.
//!
//! A channel is named `<hwmon name>:<label>`, the label from its `*_label` file (for a pair, the
//! `inN_label`, else `currN_label`), else the channel stem: `ina226:power1`, `ina3221:VDD_IN`.
//!
//! Every attribute is read bounded ([`read_attr`]): a regular file only (a FIFO, a device or a
//! directory is refused, never blocked on), at most [`ATTR_MAX_BYTES`] bytes, one integer.

use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ea2p_core::source::{
    truncated, Component, Provenance, Quantity, RawReading, ReadError, ReadErrorKind, Source,
    SourceInfo,
};
use ea2p_core::units::{Nanos, NANOS_PER_MS};

/// The longest attribute value read: sysfs hwmon values are one integer or a short label. A file
/// that holds more is refused, not truncated.
pub const ATTR_MAX_BYTES: usize = 64;

/// The labels of rails that are a board's input, which carries every other rail of the board:
/// NVIDIA Jetson's `VDD_IN` (TX2, Xavier NX, Orin) and `POM_5V_IN` (Nano), compared without case.
/// Such a rail is a total ([`Component::Platform`], like RAPL's psys), so a run's total adds its
/// sub-rails and not it. This is the one place the rule lives.
pub const BOARD_INPUT_RAILS: [&str; 2] = ["VDD_IN", "POM_5V_IN"];

/// The largest power a hwmon channel may report, in watts: no board or socket sensor measures
/// more than 100 kW; a larger value is a misread or a hostile file and is refused.
pub const MAX_PLAUSIBLE_W: f64 = 100_000.0;

/// How often a power channel is read when the device has no `update_interval` attribute.
pub const DEFAULT_POWER_PERIOD_NS: Nanos = 10 * NANOS_PER_MS;

/// How often an energy counter is read when the device has no `update_interval` attribute
/// (`amd_energy` reads its MSR on each read, as RAPL does).
pub const DEFAULT_ENERGY_PERIOD_NS: Nanos = NANOS_PER_MS;

/// Whether a rail labelled `label` is a board's input (see [`BOARD_INPUT_RAILS`]).
pub fn is_board_input(label: &str) -> bool {
    BOARD_INPUT_RAILS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(label.trim()))
}

/// Why one attribute could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttrError {
    /// The file is absent.
    #[error("{path}: no such file")]
    NotFound {
        /// The attribute.
        path: String,
    },
    /// The file may not be read by this user.
    #[error("{path}: permission denied")]
    PermissionDenied {
        /// The attribute.
        path: String,
    },
    /// A FIFO, a device, a socket or a directory where a sysfs attribute should be.
    #[error("{path}: {what} (a sysfs attribute is a regular file); refused")]
    NotRegular {
        /// The attribute.
        path: String,
        /// What it is instead, in words (`is a FIFO (named pipe), expected a regular file`).
        what: String,
    },
    /// More than [`ATTR_MAX_BYTES`] bytes.
    #[error("{path}: longer than {ATTR_MAX_BYTES} bytes; a hwmon attribute is one value")]
    TooLong {
        /// The attribute.
        path: String,
    },
    /// Not the value expected.
    #[error("{path}: expected {expected}, found {found:?}")]
    Malformed {
        /// The attribute.
        path: String,
        /// What was expected (`micro-watts`, ...).
        expected: &'static str,
        /// What was there (cut to [`ATTR_MAX_BYTES`]).
        found: String,
    },
    /// Any other I/O error.
    #[error("{path}: {message}")]
    Io {
        /// The attribute.
        path: String,
        /// The system's message.
        message: String,
    },
}

impl AttrError {
    /// The kind of a failed read, for the session's gap record.
    pub fn kind(&self) -> ReadErrorKind {
        match self {
            AttrError::NotFound { .. } => ReadErrorKind::Gone,
            AttrError::PermissionDenied { .. } => ReadErrorKind::PermissionDenied,
            AttrError::NotRegular { .. }
            | AttrError::TooLong { .. }
            | AttrError::Malformed { .. } => ReadErrorKind::Malformed,
            AttrError::Io { .. } => ReadErrorKind::Other,
        }
    }

    fn from_io(path: &Path, e: &io::Error) -> Self {
        let path = path.display().to_string();
        match e.kind() {
            io::ErrorKind::NotFound => AttrError::NotFound { path },
            io::ErrorKind::PermissionDenied => AttrError::PermissionDenied { path },
            _ => AttrError::Io {
                path,
                message: e.to_string(),
            },
        }
    }
}

impl From<&AttrError> for ReadError {
    fn from(e: &AttrError) -> Self {
        ReadError::new(e.kind(), &e.to_string())
    }
}

/// Opens an attribute without ever blocking and refuses anything that is not a regular file: the
/// one opener of [`crate::bounded`], so hwmon, powercap and procfs refuse the same things.
fn open_attr(path: &Path) -> Result<fs::File, AttrError> {
    crate::bounded::open_regular(path).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidInput => AttrError::NotRegular {
            path: path.display().to_string(),
            what: e.to_string(),
        },
        _ => AttrError::from_io(path, &e),
    })
}

/// Reads an open attribute from offset 0 (sysfs regenerates the value on each such read), at
/// most [`ATTR_MAX_BYTES`] bytes, trimmed.
fn read_open(file: &fs::File, path: &Path) -> Result<String, AttrError> {
    let mut buf = [0u8; ATTR_MAX_BYTES + 1];
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(AttrError::from_io(path, &e)),
        }
    }
    if n > ATTR_MAX_BYTES {
        return Err(AttrError::TooLong {
            path: path.display().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&buf[..n]).trim().to_string())
}

/// Reads one attribute, bounded (see the module docs).
pub fn read_attr(path: &Path) -> Result<String, AttrError> {
    let file = open_attr(path)?;
    read_open(&file, path)
}

fn parse_u64(text: &str, path: &Path, expected: &'static str) -> Result<u64, AttrError> {
    text.parse::<u64>().map_err(|_| AttrError::Malformed {
        path: path.display().to_string(),
        expected,
        found: text.to_string(),
    })
}

/// Reads one attribute holding a non-negative integer; `expected` names its unit for the error
/// (`micro-watts`).
pub fn read_u64_attr(path: &Path, expected: &'static str) -> Result<u64, AttrError> {
    parse_u64(&read_attr(path)?, path, expected)
}

/// Power in micro-watts of channel `index` of the hwmon directory `dir`: `powerN_average`, else
/// `powerN_input` (the amdgpu driver has both; its average is the board power ROCm reports).
pub fn power_uw(dir: &Path, index: u32) -> Result<u64, AttrError> {
    let average = dir.join(format!("power{index}_average"));
    match read_u64_attr(&average, "micro-watts") {
        Err(AttrError::NotFound { .. }) => {
            read_u64_attr(&dir.join(format!("power{index}_input")), "micro-watts")
        }
        r => r,
    }
}

/// What one channel reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChannelKind {
    /// `energyN_input`, micro-joules, cumulative.
    Energy(u32),
    /// `powerN_input`, micro-watts.
    Power(u32),
    /// `powerN_average` (no `powerN_input`), micro-watts.
    PowerAverage(u32),
    /// `inN_input` (mV) x `currN_input` (mA).
    VoltageCurrent(u32),
}

impl ChannelKind {
    /// The channel stem (`energy1`, `power2`, `in1_curr1`), the name when there is no label.
    pub fn stem(&self) -> String {
        match *self {
            ChannelKind::Energy(i) => format!("energy{i}"),
            ChannelKind::Power(i) | ChannelKind::PowerAverage(i) => format!("power{i}"),
            ChannelKind::VoltageCurrent(i) => format!("in{i}_curr{i}"),
        }
    }

    /// The files read, relative to the hwmon directory.
    pub fn files(&self) -> Vec<String> {
        match *self {
            ChannelKind::Energy(i) => vec![format!("energy{i}_input")],
            ChannelKind::Power(i) => vec![format!("power{i}_input")],
            ChannelKind::PowerAverage(i) => vec![format!("power{i}_average")],
            ChannelKind::VoltageCurrent(i) => {
                vec![format!("in{i}_input"), format!("curr{i}_input")]
            }
        }
    }

    /// The label files, in the order they are tried.
    fn label_files(&self) -> Vec<String> {
        match *self {
            ChannelKind::Energy(i) => vec![format!("energy{i}_label")],
            ChannelKind::Power(i) | ChannelKind::PowerAverage(i) => vec![format!("power{i}_label")],
            ChannelKind::VoltageCurrent(i) => {
                vec![format!("in{i}_label"), format!("curr{i}_label")]
            }
        }
    }
}

/// One channel of a hwmon device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// What it reads.
    pub kind: ChannelKind,
    /// From its `*_label` file, when there is one.
    pub label: Option<String>,
}

impl Channel {
    /// The label, else the channel stem, with whitespace and `:` made `_` so that the component
    /// name has one `:` and no space.
    pub fn name(&self) -> String {
        let raw = self.label.clone().unwrap_or_else(|| self.kind.stem());
        raw.chars()
            .map(|c| {
                if c.is_whitespace() || c == ':' {
                    '_'
                } else {
                    c
                }
            })
            .collect()
    }
}

/// One `hwmonN` directory and its power and energy channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HwmonDevice {
    /// The directory.
    pub dir: PathBuf,
    /// `hwmonN`.
    pub hwmon: String,
    /// Its `name` file (`ina3221`, `amd_energy`).
    pub name: String,
    /// Channels, energy first, then power, then voltage x current, each by index.
    pub channels: Vec<Channel>,
    /// `update_interval` (ms), when the device has one.
    pub update_interval_ms: Option<u64>,
}

/// Why a hwmon device or channel cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HwmonProblem {
    /// An attribute of the device could not be read.
    #[error("{0}")]
    Attr(#[from] AttrError),
}

/// Why there is no hwmon at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HwmonUnavailable {
    /// No `class/hwmon` directory.
    #[error("{0} does not exist: no hwmon sensors here (a VM, or a container without /sys)")]
    NoClass(String),
}

/// What discovery found.
#[derive(Debug, Default)]
pub struct HwmonDiscovery {
    /// Devices, by hwmon number, including those with no power or energy channel (their
    /// `channels` is empty).
    pub devices: Vec<HwmonDevice>,
    /// Devices that could not be read.
    pub problems: Vec<HwmonProblem>,
}

fn hwmon_number(name: &str) -> Option<u32> {
    name.strip_prefix("hwmon")?.parse().ok()
}

/// Finds every `hwmonN` under `<sysfs_root>/class/hwmon` and its channels.
pub fn discover(sysfs_root: &Path) -> Result<HwmonDiscovery, HwmonUnavailable> {
    let class = sysfs_root.join("class/hwmon");
    let entries =
        fs::read_dir(&class).map_err(|_| HwmonUnavailable::NoClass(class.display().to_string()))?;
    let mut dirs: Vec<(u32, String)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some((hwmon_number(&name)?, name))
        })
        .collect();
    dirs.sort();
    let mut found = HwmonDiscovery::default();
    for (_, name) in dirs {
        match device_at(&class.join(&name)) {
            Ok(d) => found.devices.push(d),
            Err(p) => found.problems.push(p),
        }
    }
    Ok(found)
}

/// Reads the hwmon device at `dir` (a `hwmonN` directory, wherever it lives: under
/// `class/hwmon` or a PCI device's `hwmon/`).
pub fn device_at(dir: &Path) -> Result<HwmonDevice, HwmonProblem> {
    let name = read_attr(&dir.join("name"))?;
    if name.is_empty() {
        return Err(AttrError::Malformed {
            path: dir.join("name").display().to_string(),
            expected: "the driver's name",
            found: name,
        }
        .into());
    }
    let listing = fs::read_dir(dir).map_err(|e| AttrError::from_io(dir, &e))?;
    let mut files: Vec<String> = listing
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    files.sort();
    let indices = |prefix: &str, suffix: &str| -> Vec<u32> {
        let mut v: Vec<u32> = files
            .iter()
            .filter_map(|f| f.strip_prefix(prefix)?.strip_suffix(suffix)?.parse().ok())
            .collect();
        v.sort_unstable();
        v
    };
    let has = |f: &str| files.iter().any(|x| x == f);
    let mut kinds: Vec<ChannelKind> = indices("energy", "_input")
        .into_iter()
        .map(ChannelKind::Energy)
        .collect();
    let power_inputs = indices("power", "_input");
    kinds.extend(power_inputs.iter().copied().map(ChannelKind::Power));
    kinds.extend(
        indices("power", "_average")
            .into_iter()
            .filter(|i| !power_inputs.contains(i))
            .map(ChannelKind::PowerAverage),
    );
    if kinds.is_empty() {
        kinds.extend(
            indices("curr", "_input")
                .into_iter()
                .filter(|i| has(&format!("in{i}_input")))
                .map(ChannelKind::VoltageCurrent),
        );
    }
    let channels = kinds
        .into_iter()
        .map(|kind| {
            let label = kind
                .label_files()
                .iter()
                .filter(|f| has(f))
                .find_map(|f| read_attr(&dir.join(f)).ok().filter(|l| !l.is_empty()));
            Channel { kind, label }
        })
        .collect();
    let update_interval_ms = if has("update_interval") {
        read_u64_attr(&dir.join("update_interval"), "milli-seconds")
            .ok()
            .filter(|&ms| ms > 0)
    } else {
        None
    };
    Ok(HwmonDevice {
        hwmon: dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        dir: dir.to_path_buf(),
        name,
        channels,
        update_interval_ms,
    })
}

/// The prefix of every hwmon source's [`SourceInfo::name`]; the second word is the component
/// name ([`component_name`]).
pub const SOURCE_NAME_PREFIX: &str = "hwmon ";

/// The component name (`ina226:power1`) of a source whose [`SourceInfo::name`] came from
/// [`HwmonSource`], else `None`.
pub fn component_name(source_name: &str) -> Option<&str> {
    source_name
        .strip_prefix(SOURCE_NAME_PREFIX)?
        .split(' ')
        .next()
        .filter(|n| !n.is_empty())
}

/// One hwmon channel that can be read, a [`Source`].
#[derive(Debug)]
pub struct HwmonSource {
    /// `<hwmon name>:<label>`.
    component: String,
    device: String,
    kind: ChannelKind,
    paths: Vec<PathBuf>,
    /// Kept open: each read is one `pread` at offset 0 per file.
    files: Vec<Option<fs::File>>,
    info: SourceInfo,
}

impl HwmonSource {
    /// Opens `channel` of `device` and reads it once, so that a permission problem or a bad
    /// value is reported at discovery, not mid-run.
    pub fn open(device: &HwmonDevice, channel: &Channel) -> Result<HwmonSource, AttrError> {
        let label = channel.name();
        let component_name = format!("{}:{label}", device.name);
        let (component, index) = component_of(&device.name, channel);
        let period = device.update_interval_ms.map(|ms| ms * NANOS_PER_MS);
        let (quantity, update_period_ns) = match channel.kind {
            ChannelKind::Energy(_) => (
                // hwmon prints energy as a signed 64-bit integer: it wraps, if ever, at i64::MAX.
                Quantity::EnergyCounter {
                    joules_per_tick: 1e-6,
                    max_ticks: Some(i64::MAX as u64),
                },
                period.unwrap_or(DEFAULT_ENERGY_PERIOD_NS),
            ),
            ChannelKind::PowerAverage(i) => (
                Quantity::Power {
                    averaging_ns: read_u64_attr(
                        &device.dir.join(format!("power{i}_average_interval")),
                        "milli-seconds",
                    )
                    .map_or(0, |ms| ms * NANOS_PER_MS),
                },
                period.unwrap_or(DEFAULT_POWER_PERIOD_NS),
            ),
            _ => (
                Quantity::Power { averaging_ns: 0 },
                period.unwrap_or(DEFAULT_POWER_PERIOD_NS),
            ),
        };
        let paths: Vec<PathBuf> = channel
            .kind
            .files()
            .iter()
            .map(|f| device.dir.join(f))
            .collect();
        let files = paths
            .iter()
            .map(|p| open_attr(p).map(Some))
            .collect::<Result<Vec<_>, _>>()?;
        let files_words = channel.kind.files().join("*");
        let info = SourceInfo {
            component,
            index,
            provenance: Provenance::Measured,
            quantity,
            update_period_ns,
            // No hwmon attribute bounds a counter's power: the ceiling no sensor reaches turns
            // an absurd jump into a rejected delta rather than added energy.
            max_power_w: matches!(channel.kind, ChannelKind::Energy(_)).then_some(MAX_PLAUSIBLE_W),
            name: truncated(&format!(
                "{SOURCE_NAME_PREFIX}{component_name} {}/{files_words}",
                device.hwmon
            )),
        };
        let mut source = HwmonSource {
            component: component_name,
            device: device.name.clone(),
            kind: channel.kind,
            paths,
            files,
            info,
        };
        source.raw()?;
        Ok(source)
    }

    /// `<hwmon name>:<label>`, e.g. `ina3221:VDD_IN`.
    pub fn component_name(&self) -> &str {
        &self.component
    }

    /// The hwmon device's `name` (`ina3221`).
    pub fn device_name(&self) -> &str {
        &self.device
    }

    fn value(&mut self, k: usize, expected: &'static str) -> Result<u64, AttrError> {
        let path = &self.paths[k];
        let file = match self.files[k].take() {
            Some(f) => f,
            None => open_attr(path)?,
        };
        let v = parse_u64(&read_open(&file, path)?, path, expected)?;
        // Kept only after a good read: after any error the file is reopened next time (the
        // driver may have been reloaded, the device removed).
        self.files[k] = Some(file);
        Ok(v)
    }

    fn out_of_range(&self, uw: f64) -> AttrError {
        AttrError::Malformed {
            path: self.paths[0].display().to_string(),
            expected: "a power below 100 kW",
            found: format!("{} W", uw * 1e-6),
        }
    }

    /// One raw reading: the counter in µJ, or the power in mW.
    fn raw(&mut self) -> Result<RawReading, AttrError> {
        let uw = match self.kind {
            ChannelKind::Energy(_) => {
                let uj = self.value(0, "micro-joules")?;
                if uj > i64::MAX as u64 {
                    return Err(AttrError::Malformed {
                        path: self.paths[0].display().to_string(),
                        expected:
                            "micro-joules up to 2^63 - 1 (hwmon prints a signed 64-bit value)",
                        found: uj.to_string(),
                    });
                }
                return Ok(RawReading::Counter(uj));
            }
            ChannelKind::Power(_) | ChannelKind::PowerAverage(_) => {
                self.value(0, "micro-watts")? as f64
            }
            ChannelKind::VoltageCurrent(_) => {
                let mv = self.value(0, "milli-volts")?;
                let ma = self.value(1, "milli-amperes")?;
                // mV x mA = µW.
                mv as f64 * ma as f64
            }
        };
        if uw * 1e-6 > MAX_PLAUSIBLE_W {
            return Err(self.out_of_range(uw));
        }
        Ok(RawReading::PowerMilliwatts((uw / 1e3).round() as u64))
    }
}

impl Source for HwmonSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn read(&mut self, _now: Nanos) -> Result<RawReading, ReadError> {
        self.raw().map_err(|e| ReadError::from(&e))
    }
}

/// Which part of the machine a channel measures: a board input rail is the platform (a total,
/// see [`BOARD_INPUT_RAILS`]); `amd_energy`'s `Esocket<N>` and `Ecore<N>` are CPU package N and
/// core N; anything else is a [`Component::Rail`] (index: the channel's number).
pub fn component_of(device_name: &str, channel: &Channel) -> (Component, u32) {
    let label = channel.label.as_deref().unwrap_or("");
    let channel_index = match channel.kind {
        ChannelKind::Energy(i)
        | ChannelKind::Power(i)
        | ChannelKind::PowerAverage(i)
        | ChannelKind::VoltageCurrent(i) => i,
    };
    if is_board_input(label) {
        return (Component::Platform, 0);
    }
    if device_name == "amd_energy" {
        if let Some(n) = label.strip_prefix("Esocket").and_then(|n| n.parse().ok()) {
            return (Component::CpuPackage, n);
        }
        if let Some(n) = label.strip_prefix("Ecore").and_then(|n| n.parse().ok()) {
            return (Component::CpuCores, n);
        }
    }
    (Component::Rail, channel_index)
}

/// Every channel of `found` opened as a source, with a problem per channel that cannot be read.
pub fn sources(found: &HwmonDiscovery) -> (Vec<HwmonSource>, Vec<AttrError>) {
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    for d in &found.devices {
        for c in &d.channels {
            match HwmonSource::open(d, c) {
                Ok(s) => ok.push(s),
                Err(e) => bad.push(e),
            }
        }
    }
    (ok, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, text: &str) {
        fs::write(dir.join(file), text).unwrap();
    }

    fn device(root: &Path, n: u32, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = root.join(format!("class/hwmon/hwmon{n}"));
        fs::create_dir_all(&dir).unwrap();
        write(&dir, "name", &format!("{name}\n"));
        for (f, t) in files {
            write(&dir, f, t);
        }
        dir
    }

    fn by_name(sources: &[HwmonSource], name: &str) -> usize {
        sources
            .iter()
            .position(|s| s.component_name() == name)
            .unwrap_or_else(|| panic!("no {name}"))
    }

    #[test]
    fn finds_channels_labels_and_components() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        device(
            root,
            0,
            "ina3221",
            &[
                ("in1_input", "5000\n"),
                ("curr1_input", "1200\n"),
                ("in1_label", "VDD_IN\n"),
                ("in2_input", "5000\n"),
                ("curr2_input", "300\n"),
                ("in2_label", "VDD CPU GPU CV\n"),
                ("in3_input", "4900\n"),
                ("curr3_input", "100\n"),
                // Shunt voltages of INA3221: no current, so no pair.
                ("in4_input", "12\n"),
                ("update_interval", "20\n"),
            ],
        );
        device(
            root,
            1,
            "ina226",
            &[
                ("in0_input", "1\n"),
                ("in1_input", "12000\n"),
                ("curr1_input", "208\n"),
                ("power1_input", "2500000\n"),
            ],
        );
        device(
            root,
            2,
            "amd_energy",
            &[
                ("energy1_input", "123456\n"),
                ("energy1_label", "Esocket0\n"),
                ("energy2_input", "456\n"),
                ("energy2_label", "Ecore007\n"),
            ],
        );
        device(root, 10, "k10temp", &[("temp1_input", "40000\n")]);
        // Not a hwmon directory.
        fs::create_dir_all(root.join("class/hwmon/other")).unwrap();

        let found = discover(root).unwrap();
        let names: Vec<&str> = found.devices.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["ina3221", "ina226", "amd_energy", "k10temp"]);
        assert!(found.devices[3].channels.is_empty());
        assert_eq!(found.devices[0].update_interval_ms, Some(20));
        let (mut s, bad) = sources(&found);
        assert!(bad.is_empty(), "{bad:?}");
        let names: Vec<&str> = s.iter().map(|s| s.component_name()).collect();
        assert_eq!(
            names,
            [
                "ina3221:VDD_IN",
                "ina3221:VDD_CPU_GPU_CV",
                "ina3221:in3_curr3",
                "ina226:power1",
                "amd_energy:Esocket0",
                "amd_energy:Ecore007",
            ]
        );
        let vin = by_name(&s, "ina3221:VDD_IN");
        assert_eq!(s[vin].info().component, Component::Platform);
        assert_eq!(s[vin].info().update_period_ns, 20 * NANOS_PER_MS);
        assert_eq!(s[vin].read(0), Ok(RawReading::PowerMilliwatts(6000)));
        let p = by_name(&s, "ina226:power1");
        assert_eq!(s[p].info().component, Component::Rail);
        assert_eq!(s[p].read(0), Ok(RawReading::PowerMilliwatts(2500)));
        let e = by_name(&s, "amd_energy:Esocket0");
        assert_eq!(s[e].info().component, Component::CpuPackage);
        assert_eq!(s[e].read(0), Ok(RawReading::Counter(123456)));
        let c = by_name(&s, "amd_energy:Ecore007");
        assert_eq!(s[c].info().component, Component::CpuCores);
        assert_eq!(s[c].info().index, 7);
        assert_eq!(
            component_name(s[p].info().name.as_str()),
            Some("ina226:power1")
        );
        assert_eq!(component_name("rapl intel-rapl:0 package-0"), None);
    }

    #[test]
    fn board_input_rule() {
        assert!(is_board_input("VDD_IN"));
        assert!(is_board_input(" pom_5v_in\n"));
        assert!(!is_board_input("VDD_SOC"));
        assert!(!is_board_input("VDD_INX"));
    }

    #[test]
    fn hostile_attributes_are_refused_with_the_file_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = device(tmp.path(), 0, "ina226", &[("power1_input", "1000\n")]);
        // A FIFO: refused at once, never blocked on.
        let fifo = dir.join("power2_input");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            read_attr(&fifo),
            Err(AttrError::NotRegular { .. })
        ));
        // A directory.
        fs::create_dir(dir.join("power3_input")).unwrap();
        // Too long, NaN, negative, huge.
        write(&dir, "power4_input", &"1".repeat(ATTR_MAX_BYTES + 1));
        write(&dir, "power5_input", "NaN\n");
        write(&dir, "power6_input", "-5\n");
        write(&dir, "power7_input", "200000000000\n");
        let found = discover(tmp.path()).unwrap();
        let (ok, bad) = sources(&found);
        assert_eq!(ok.len(), 1, "{bad:?}");
        let msgs: Vec<String> = bad.iter().map(|e| e.to_string()).collect();
        assert!(
            msgs[0].contains("power2_input") && msgs[0].contains("is a FIFO"),
            "{}",
            msgs[0]
        );
        assert!(
            msgs[1].contains("power3_input") && msgs[1].contains("is a directory"),
            "{}",
            msgs[1]
        );
        assert!(msgs[2].contains("power4_input") && msgs[2].contains("longer than 64"));
        assert!(msgs[3].contains("expected micro-watts, found \"NaN\""));
        assert!(msgs[4].contains("found \"-5\""));
        assert!(msgs[5].contains("below 100 kW"), "{}", msgs[5]);
    }

    #[test]
    fn a_read_after_the_device_went_away_is_a_gone_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = device(tmp.path(), 0, "ina226", &[("power1_input", "1000\n")]);
        let found = discover(tmp.path()).unwrap();
        let (mut s, _) = sources(&found);
        write(&dir, "power1_input", "2000\n");
        assert_eq!(s[0].read(0), Ok(RawReading::PowerMilliwatts(2)));
        write(&dir, "power1_input", "garbage");
        let e = s[0].read(0).unwrap_err();
        assert_eq!(e.kind, ReadErrorKind::Malformed);
        assert!(e.message.contains("power1_input"), "{e}");
        // After an error the file is reopened: a removed device is `Gone`.
        fs::remove_dir_all(&dir).unwrap();
        let e = s[0].read(0).unwrap_err();
        assert_eq!(e.kind, ReadErrorKind::Gone, "{e}");
    }

    #[test]
    fn power_average_then_input() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = device(tmp.path(), 0, "amdgpu", &[("power1_input", "123000000\n")]);
        assert_eq!(power_uw(&dir, 1), Ok(123_000_000));
        write(&dir, "power1_average", "99000000");
        assert_eq!(power_uw(&dir, 1), Ok(99_000_000));
        let d = device_at(&dir).unwrap();
        // Both files: the input is the channel (the average is read only without it).
        assert_eq!(d.channels[0].kind, ChannelKind::Power(1));
        assert!(discover(&tmp.path().join("nothing")).is_err());
    }
}
