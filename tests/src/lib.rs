//! End-to-end tests live in `tests/tests/`; this library hosts them and the fixtures they share.
//!
//! [`FakeRapl`] is a powercap tree in a temp dir whose `energy_uj` files a thread advances at a
//! power the test sets, wrapping at `max_energy_range_uj` like the hardware, so a test knows the
//! true energy of every zone.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One zone of the fake tree.
#[derive(Debug, Clone)]
pub struct ZoneSpec {
    /// Directory under `class/powercap` (`intel-rapl:0`, `intel-rapl:0:2`).
    pub dir: String,
    /// Content of its `name` file (`package-0`, `dram`, `psys`).
    pub name: String,
    /// Initial power, watts.
    pub watts: f64,
    /// `max_energy_range_uj`; the counter wraps after it.
    pub max_uj: u64,
}

impl ZoneSpec {
    /// A zone with a counter range that wraps every ~100 s at 100 W.
    pub fn new(dir: &str, name: &str, watts: f64) -> Self {
        ZoneSpec {
            dir: dir.into(),
            name: name.into(),
            watts,
            max_uj: 9_999_999_999,
        }
    }
}

struct Zone {
    spec: ZoneSpec,
    file: fs::File,
    watts_bits: AtomicU64,
    energy_bits: AtomicU64,
    /// While set, `energy_uj` holds garbage: reads of it fail as malformed.
    broken: AtomicBool,
}

/// A fake powercap tree advanced by a thread every millisecond.
pub struct FakeRapl {
    dir: tempfile::TempDir,
    zones: Arc<Vec<Zone>>,
    stop: Arc<AtomicBool>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for FakeRapl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let zones: Vec<&str> = self.zones.iter().map(|z| z.spec.dir.as_str()).collect();
        f.debug_struct("FakeRapl")
            .field("root", &self.root())
            .field("zones", &zones)
            .finish()
    }
}

impl FakeRapl {
    /// Builds the tree and starts advancing its counters.
    pub fn start(specs: Vec<ZoneSpec>) -> FakeRapl {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut zones = Vec::new();
        for spec in specs {
            let z = dir.path().join("class/powercap").join(&spec.dir);
            fs::create_dir_all(&z).unwrap();
            fs::write(z.join("name"), format!("{}\n", spec.name)).unwrap();
            fs::write(z.join("max_energy_range_uj"), format!("{}\n", spec.max_uj)).unwrap();
            fs::write(z.join("constraint_0_power_limit_uw"), "200000000\n").unwrap();
            fs::write(z.join("energy_uj"), format!("{:>20}\n", 0)).unwrap();
            let file = fs::OpenOptions::new()
                .write(true)
                .open(z.join("energy_uj"))
                .unwrap();
            zones.push(Zone {
                watts_bits: AtomicU64::new(spec.watts.to_bits()),
                energy_bits: AtomicU64::new(0f64.to_bits()),
                broken: AtomicBool::new(false),
                spec,
                file,
            });
        }
        let zones = Arc::new(zones);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (zones, stop) = (Arc::clone(&zones), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut last = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                    let now = Instant::now();
                    let dt = now.duration_since(last).as_secs_f64();
                    last = now;
                    for z in zones.iter() {
                        let w = f64::from_bits(z.watts_bits.load(Ordering::Relaxed));
                        let e = f64::from_bits(z.energy_bits.load(Ordering::Relaxed)) + w * dt;
                        z.energy_bits.store(e.to_bits(), Ordering::Relaxed);
                        let uj = (e * 1e6) as u64 % (z.spec.max_uj + 1);
                        // One fixed-width pwrite, like sysfs: same inode, never half-written.
                        let text = if z.broken.load(Ordering::Relaxed) {
                            format!("{:>20}\n", "oops")
                        } else {
                            format!("{uj:>20}\n")
                        };
                        let _ = z.file.write_at(text.as_bytes(), 0);
                    }
                }
            })
        };
        FakeRapl {
            dir,
            zones,
            stop,
            writer: Mutex::new(Some(writer)),
        }
    }

    /// A two-socket server: per socket a package with core, uncore and dram subzones, a psys
    /// zone, and the `intel-rapl-mmio` duplicate of package 0 that discovery must skip.
    pub fn two_sockets(
        package_w: f64,
        core_w: f64,
        uncore_w: f64,
        dram_w: f64,
        psys_w: f64,
    ) -> Self {
        let mut specs = Vec::new();
        for s in 0..2 {
            specs.push(ZoneSpec::new(
                &format!("intel-rapl:{s}"),
                &format!("package-{s}"),
                package_w,
            ));
            specs.push(ZoneSpec::new(&format!("intel-rapl:{s}:0"), "core", core_w));
            specs.push(ZoneSpec::new(
                &format!("intel-rapl:{s}:1"),
                "uncore",
                uncore_w,
            ));
            specs.push(ZoneSpec::new(&format!("intel-rapl:{s}:2"), "dram", dram_w));
        }
        specs.push(ZoneSpec::new("intel-rapl:2", "psys", psys_w));
        specs.push(ZoneSpec::new("intel-rapl-mmio:0", "package-0", package_w));
        Self::start(specs)
    }

    /// The sysfs root to give `--sysfs-root` / `EA2P_SYSFS_ROOT`.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The `energy_uj` file of zone `dir`.
    pub fn energy_file(&self, dir: &str) -> PathBuf {
        self.root()
            .join("class/powercap")
            .join(dir)
            .join("energy_uj")
    }

    fn zone(&self, dir: &str) -> &Zone {
        self.zones
            .iter()
            .find(|z| z.spec.dir == dir)
            .unwrap_or_else(|| panic!("no zone {dir}"))
    }

    /// Changes a zone's power from now on.
    pub fn set_watts(&self, dir: &str, watts: f64) {
        self.zone(dir)
            .watts_bits
            .store(watts.to_bits(), Ordering::Relaxed);
    }

    /// Makes zone `dir`'s `energy_uj` unreadable (garbage) or readable again; its energy keeps
    /// accumulating meanwhile, as the hardware's would.
    pub fn set_broken(&self, dir: &str, broken: bool) {
        self.zone(dir).broken.store(broken, Ordering::Relaxed);
    }

    /// The true energy of zone `dir` since the start, joules.
    pub fn energy_j(&self, dir: &str) -> f64 {
        f64::from_bits(self.zone(dir).energy_bits.load(Ordering::Relaxed))
    }

    /// Stops advancing the counters (also done on drop).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.writer.lock().unwrap().take() {
            let _ = h.join();
        }
    }
}

impl Drop for FakeRapl {
    fn drop(&mut self) {
        self.stop();
    }
}
