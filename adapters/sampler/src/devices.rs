//! `--devices`: which components to measure.

use std::fmt;
use std::str::FromStr;

/// Which GPUs to measure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum GpuPick {
    /// No GPU.
    None,
    /// The GPUs of the measured command: those `CUDA_VISIBLE_DEVICES` names, else all.
    #[default]
    Visible,
    /// These GPU indices (NVML or ROCm order), whatever the command sees.
    Indices(Vec<u32>),
}

/// Which hwmon channels (board rails, `amd_energy`; see `ea2p_linux::hwmon`) to measure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum HwmonPick {
    /// None (CPU counters of `amd_energy` still come with `cpu`).
    None,
    /// Every power and energy channel.
    #[default]
    All,
    /// These: a component name (`ina3221:VDD_IN`) or a device name (`ina226`), without case.
    Names(Vec<String>),
}

impl HwmonPick {
    /// Whether the channel named `component` (`ina3221:VDD_IN`) of device `device` is wanted.
    pub fn wants(&self, component: &str, device: &str) -> bool {
        match self {
            HwmonPick::None => false,
            HwmonPick::All => true,
            HwmonPick::Names(v) => v
                .iter()
                .any(|n| n.eq_ignore_ascii_case(component) || n.eq_ignore_ascii_case(device)),
        }
    }
}

/// The components to measure, parsed from `cpu,ram,gpu` or `cpu,gpu:0,2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Devices {
    /// CPU packages (RAPL or perf), or the CPU model.
    pub cpu: bool,
    /// DRAM (RAPL dram domain), or the RAM model.
    pub ram: bool,
    /// GPUs.
    pub gpu: GpuPick,
    /// hwmon channels: `hwmon` (all), `hwmon:NAME` (one channel or device).
    pub hwmon: HwmonPick,
}

impl Default for Devices {
    /// Everything: CPU, RAM, the command's GPUs and every hwmon channel.
    fn default() -> Self {
        Devices {
            cpu: true,
            ram: true,
            gpu: GpuPick::Visible,
            hwmon: HwmonPick::All,
        }
    }
}

/// A `--devices` value that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicesError {
    /// The offending entry.
    pub entry: String,
}

impl fmt::Display for DevicesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown device {:?}: expected a comma-separated list of cpu, ram, gpu, gpu:N[,M...], \
             hwmon or hwmon:NAME (e.g. cpu,ram,gpu:0,2 or cpu,hwmon:ina3221:VDD_IN)",
            self.entry
        )
    }
}

impl std::error::Error for DevicesError {}

impl FromStr for Devices {
    type Err = DevicesError;

    /// Bare numbers after `gpu:N` extend the GPU list, so `gpu:0,2` is GPUs 0 and 2.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut d = Devices {
            cpu: false,
            ram: false,
            gpu: GpuPick::None,
            hwmon: HwmonPick::None,
        };
        let mut in_gpu_list = false;
        let err = |e: &str| DevicesError {
            entry: e.to_string(),
        };
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let lower = entry.to_ascii_lowercase();
            if let Ok(i) = lower.parse::<u32>() {
                match (&mut d.gpu, in_gpu_list) {
                    (GpuPick::Indices(v), true) => v.push(i),
                    _ => return Err(err(entry)),
                }
                continue;
            }
            in_gpu_list = false;
            match lower.as_str() {
                "cpu" => d.cpu = true,
                "ram" | "dram" => d.ram = true,
                "hwmon" => d.hwmon = HwmonPick::All,
                _ if lower.starts_with("hwmon:") && entry.len() > "hwmon:".len() => {
                    let name = entry["hwmon:".len()..].to_string();
                    match &mut d.hwmon {
                        HwmonPick::Names(v) => v.push(name),
                        HwmonPick::None => d.hwmon = HwmonPick::Names(vec![name]),
                        HwmonPick::All => {}
                    }
                }
                "gpu" => {
                    if d.gpu == GpuPick::None {
                        d.gpu = GpuPick::Visible;
                    }
                }
                other => {
                    let i = other
                        .strip_prefix("gpu:")
                        .and_then(|n| n.parse::<u32>().ok())
                        .ok_or_else(|| err(entry))?;
                    match &mut d.gpu {
                        GpuPick::Indices(v) => v.push(i),
                        g => *g = GpuPick::Indices(vec![i]),
                    }
                    in_gpu_list = true;
                }
            }
        }
        if !d.cpu && !d.ram && d.gpu == GpuPick::None && d.hwmon == HwmonPick::None {
            return Err(err(s));
        }
        if let GpuPick::Indices(v) = &mut d.gpu {
            let mut seen = Vec::with_capacity(v.len());
            v.retain(|i| {
                let new = !seen.contains(i);
                seen.push(*i);
                new
            });
        }
        Ok(d)
    }
}

impl Devices {
    /// Whether any GPU is wanted.
    pub fn any_gpu(&self) -> bool {
        self.gpu != GpuPick::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(
            "cpu,ram,gpu,hwmon".parse::<Devices>().unwrap(),
            Devices::default()
        );
        assert_eq!(
            "cpu,ram,gpu".parse::<Devices>().unwrap().hwmon,
            HwmonPick::None
        );
        let d: Devices = "hwmon:ina3221:VDD_IN,hwmon:ina226".parse().unwrap();
        assert!(!d.cpu && !d.ram && d.gpu == GpuPick::None);
        assert!(d.hwmon.wants("ina3221:vdd_in", "ina3221"));
        assert!(d.hwmon.wants("ina226:power1", "ina226"));
        assert!(!d.hwmon.wants("ina3221:VDD_SOC", "ina3221"));
        assert!(HwmonPick::All.wants("x:y", "x"));
        assert!(!HwmonPick::None.wants("x:y", "x"));
        let d: Devices = "cpu,gpu:0,2".parse().unwrap();
        assert!(d.cpu && !d.ram);
        assert_eq!(d.gpu, GpuPick::Indices(vec![0, 2]));
        let d: Devices = "gpu:1,gpu:3,1,ram".parse().unwrap();
        assert!(!d.cpu && d.ram);
        assert_eq!(d.gpu, GpuPick::Indices(vec![1, 3]));
        assert_eq!("cpu".parse::<Devices>().unwrap().gpu, GpuPick::None);
    }

    #[test]
    fn errors_name_the_entry() {
        let e = "cpu,tpu".parse::<Devices>().unwrap_err();
        assert_eq!(e.entry, "tpu");
        assert!(e.to_string().contains("gpu:N"));
        assert_eq!("cpu,2".parse::<Devices>().unwrap_err().entry, "2");
        assert!("gpu:x".parse::<Devices>().is_err());
        assert!("".parse::<Devices>().is_err());
        assert!("hwmon:".parse::<Devices>().is_err());
        assert!(e.to_string().contains("hwmon:NAME"));
    }
}
