//! Thermal design power of common server, cloud and desktop CPUs, keyed by the model name that
//! `/proc/cpuinfo` prints, for the CPU estimator where no RAPL or perf counter is readable.
//!
//! Figures are the manufacturers' published TDP (Intel ARK "TDP" / "Processor Base Power", AMD
//! product pages "Default TDP"), with the cores of one package. A VM sees only some threads of a
//! package, so the estimator takes the TDP per hardware thread times the logical CPUs it sees,
//! capped at the packages present: the per-vCPU accounting of Cloud Carbon Footprint, with
//! the real chip's figure instead of a fleet average. Override with `--cpu-tdp W`.

/// One CPU model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuSpec {
    /// Lower-case key matched against the normalised model name.
    pub key: &'static str,
    /// TDP of one package, watts.
    pub tdp_w: f64,
    /// Hardware threads of one package.
    pub threads: u32,
}

const fn spec(key: &'static str, tdp_w: f64, threads: u32) -> CpuSpec {
    CpuSpec {
        key,
        tdp_w,
        threads,
    }
}

/// The table. Longest matching key wins (`epyc 7763` before a hypothetical `epyc 776`).
pub const CPU_TDP_TABLE: &[CpuSpec] = &[
    // Intel Xeon Scalable (ARK).
    spec("xeon platinum 8480+", 350.0, 112),
    spec("xeon platinum 8380", 270.0, 80),
    spec("xeon platinum 8358", 250.0, 64),
    spec("xeon platinum 8280", 205.0, 56),
    spec("xeon platinum 8175m", 240.0, 48),
    spec("xeon gold 6338", 205.0, 64),
    spec("xeon gold 6248", 150.0, 40),
    spec("xeon gold 6154", 200.0, 36),
    spec("xeon gold 6130", 125.0, 32),
    spec("xeon gold 5218", 125.0, 32),
    spec("xeon silver 4214", 85.0, 24),
    spec("xeon e5-2686 v4", 145.0, 36),
    spec("xeon e5-2690 v4", 135.0, 28),
    spec("xeon e5-2680 v4", 120.0, 28),
    // AMD EPYC (amd.com product pages).
    spec("epyc 9654", 360.0, 192),
    spec("epyc 9454", 290.0, 96),
    spec("epyc 7763", 280.0, 128),
    spec("epyc 7742", 225.0, 128),
    spec("epyc 7713", 225.0, 128),
    spec("epyc 7543", 225.0, 64),
    spec("epyc 7502", 180.0, 64),
    spec("epyc 7302", 155.0, 32),
    // Workstations and laptops.
    spec("threadripper 3990x", 280.0, 128),
    spec("ryzen 9 7950x", 170.0, 32),
    spec("ryzen 9 5950x", 105.0, 32),
    spec("core i9-13900k", 125.0, 32),
    spec("core i7-12700h", 45.0, 20),
    spec("core i7-1165g7", 28.0, 8),
];

/// `Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz` -> `intel xeon platinum 8380 cpu`.
pub fn normalise(model_name: &str) -> String {
    let lower = model_name.to_ascii_lowercase();
    let lower = lower.split('@').next().unwrap_or("");
    let cleaned = lower
        .replace("(r)", " ")
        .replace("(tm)", " ")
        .replace(" processor", " ");
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The table entry for a `/proc/cpuinfo` model name, if any (keys match whole words).
pub fn lookup(model_name: &str) -> Option<&'static CpuSpec> {
    let name = format!(" {} ", normalise(model_name));
    CPU_TDP_TABLE
        .iter()
        .filter(|s| name.contains(&format!(" {} ", s.key)))
        .max_by_key(|s| s.key.len())
}

/// The power the estimator should take as "TDP" for `logical_cpus` threads of this model in
/// `packages` packages: TDP per thread x threads seen, at most `packages` x TDP.
pub fn tdp_for(spec: &CpuSpec, logical_cpus: u32, packages: u32) -> f64 {
    let per_thread = spec.tdp_w / f64::from(spec.threads.max(1));
    (per_thread * f64::from(logical_cpus)).min(spec.tdp_w * f64::from(packages.max(1)))
}

/// The model name and the number of packages (`physical id`s) in a `/proc/cpuinfo` text.
pub fn parse_cpuinfo(text: &str) -> (Option<String>, u32) {
    let mut model = None;
    let mut ids = std::collections::BTreeSet::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        match k.trim() {
            "model name" if model.is_none() => model = Some(v.trim().to_string()),
            "physical id" => {
                ids.insert(v.trim().to_string());
            }
            _ => {}
        }
    }
    (model, ids.len().max(1) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_real_model_strings() {
        let s = lookup("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz").unwrap();
        assert_eq!(s.tdp_w, 270.0);
        let s = lookup("AMD EPYC 7763 64-Core Processor").unwrap();
        assert_eq!((s.tdp_w, s.threads), (280.0, 128));
        let s = lookup("Intel(R) Xeon(R) Platinum 8480+").unwrap();
        assert_eq!(s.tdp_w, 350.0);
        assert!(lookup("AMD EPYC").is_none());
        assert!(lookup("AMD EPYC 77630").is_none(), "whole words only");
    }

    #[test]
    fn vm_share_and_package_cap() {
        let s = lookup("AMD EPYC 7763 64-Core Processor").unwrap();
        assert!((tdp_for(s, 2, 1) - 280.0 * 2.0 / 128.0).abs() < 1e-9);
        assert_eq!(tdp_for(s, 256, 2), 560.0);
        assert_eq!(tdp_for(s, 512, 2), 560.0);
    }

    #[test]
    fn cpuinfo() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC 7742 64-Core Processor\nphysical id\t: 0\n\
                    processor\t: 1\nmodel name\t: AMD EPYC 7742 64-Core Processor\nphysical id\t: 1\n";
        let (m, p) = parse_cpuinfo(text);
        assert_eq!(m.as_deref(), Some("AMD EPYC 7742 64-Core Processor"));
        assert_eq!(p, 2);
        assert_eq!(parse_cpuinfo(""), (None, 1));
    }
}
