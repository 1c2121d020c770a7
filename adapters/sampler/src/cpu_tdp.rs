//! Thermal design power of common server, cloud and desktop CPUs, keyed by the model name that
//! `/proc/cpuinfo` prints, and the choice of the CPU power model for a CPU name, a thread count
//! and an optional TDP: the one code path of `ea2p run`'s CPU estimator and `ea2p estimate cpu`.
//!
//! Figures are the manufacturers' published TDP (Intel ARK "TDP" / "Processor Base Power", AMD
//! product pages "Default TDP"), with the cores of one package; the entries marked Energizta are
//! the TDPs published with the measurements the curves are fitted on
//! (`core/data/cpu_package_power.csv`). A VM sees only some threads of a package, so the model
//! takes the TDP per hardware thread times the logical CPUs it sees: the per-vCPU accounting of
//! Cloud Carbon Footprint, with the real chip's figure instead of a fleet average. The curve
//! against utilisation is the CPU family's, measured (`ea2p_core::cpu_power`). Override the TDP
//! with `--cpu-tdp W`.

use ea2p_core::cpu_power::{self, CpuPowerModel, Scale, GENERIC_PROFILE};

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
    // With the Energizta measurements (TDP as published there; AWS-only models: no ARK page).
    spec("xeon platinum 8124m", 240.0, 36),
    spec("xeon platinum 8275cl", 240.0, 48),
    spec("xeon platinum 8259cl", 210.0, 48),
    spec("xeon platinum 8151", 240.0, 24),
    spec("xeon platinum 8252c", 240.0, 24),
    spec("xeon gold 5120", 105.0, 28),
    spec("xeon gold 6230r", 150.0, 52),
    spec("xeon silver 4110", 85.0, 16),
    spec("xeon silver 4114", 85.0, 20),
    spec("xeon silver 4210r", 100.0, 20),
    spec("xeon e5-2660", 95.0, 16),
    spec("xeon e3-1240 v6", 72.0, 8),
    spec("xeon e-2278g", 80.0, 16),
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

/// `Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz` -> `intel xeon e5-2686 v4` (the words `cpu` and
/// `processor` and the frequency dropped, so that the table's keys match either spelling).
pub fn normalise(model_name: &str) -> String {
    let lower = model_name.to_ascii_lowercase();
    let lower = lower.split('@').next().unwrap_or("");
    let cleaned = lower.replace("(r)", " ").replace("(tm)", " ");
    cleaned
        .split_whitespace()
        .filter(|w| *w != "cpu" && *w != "processor")
        .collect::<Vec<_>>()
        .join(" ")
}

/// The table entry for a `/proc/cpuinfo` model name, if any (keys match whole words).
pub fn lookup(model_name: &str) -> Option<&'static CpuSpec> {
    let name = format!(" {} ", normalise(model_name));
    CPU_TDP_TABLE
        .iter()
        .filter(|s| name.contains(&format!(" {} ", s.key)))
        .max_by_key(|s| s.key.len())
}

/// The power the estimator should take as "TDP" for `logical_cpus` threads of this model: TDP
/// per thread x threads seen (a VM's share of a package, or every package of a host).
pub fn tdp_for(spec: &CpuSpec, logical_cpus: u32) -> f64 {
    spec.tdp_w / f64::from(spec.threads.max(1)) * f64::from(logical_cpus)
}

/// The largest TDP `--cpu-tdp` takes, watts (a many-socket host stays under it).
pub const MAX_TDP_W: f64 = 10_000.0;

/// The most logical CPUs a model takes.
pub const MAX_THREADS: u32 = 1 << 16;

/// Checks a TDP given by the user: a finite number of watts in `(0, MAX_TDP_W]`.
pub fn check_tdp(w: f64) -> Result<f64, String> {
    if w.is_finite() && w > 0.0 && w <= MAX_TDP_W {
        Ok(w)
    } else {
        Err(format!(
            "TDP {} W: expected a number of watts above 0 and at most {MAX_TDP_W}",
            readable(w)
        ))
    }
}

/// A number as a person reads it: plain below a billion, else in exponent form.
pub fn readable(v: f64) -> String {
    if v.abs() < 1e9 {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// `clap` parser for a TDP argument.
pub fn parse_tdp(s: &str) -> Result<f64, String> {
    let w: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: expected a number of watts"))?;
    check_tdp(w)
}

/// The most packages a model takes.
pub const MAX_PACKAGES: u32 = 1024;

/// Checks a package count: `1..=MAX_PACKAGES`.
pub fn check_packages(n: u32) -> Result<u32, String> {
    if (1..=MAX_PACKAGES).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "{n} packages: expected a count from 1 to {MAX_PACKAGES}"
        ))
    }
}

/// Whether a `/proc/cpuinfo` text is a virtual machine's (the `hypervisor` CPU flag): its
/// packages are virtual and say nothing of the host's.
pub fn is_virtual(text: &str) -> bool {
    text.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim() == "flags" && v.split_whitespace().any(|f| f == "hypervisor")
        })
    })
}

/// Checks a thread count: `1..=MAX_THREADS`.
pub fn check_threads(n: u32) -> Result<u32, String> {
    if (1..=MAX_THREADS).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "{n} threads: expected a count from 1 to {MAX_THREADS}"
        ))
    }
}

/// The public data every CPU curve rests on.
pub const CURVE_SOURCE: &str = "curves: medians of RAPL package power measured at 0-100 % load \
     on 17 Intel Xeon models (Boavizta Energizta data/cpu.csv; core/data/cpu_package_power.csv)";

/// The CPU model chosen for a name, a thread count and an optional TDP, with what it rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuChoice {
    /// The model.
    pub model: CpuPowerModel,
    /// Which table entry, family or fallback was used, in words.
    pub description: String,
    /// Short form for the 64-byte source name of profiles and summaries.
    pub short: String,
    /// The public data and the TDP's origin.
    pub source: String,
}

/// Chooses the CPU model: with `tdp` (`--cpu-tdp`), that TDP on the family's curve (or the
/// generic one); else a table entry's TDP share on its family's curve; else, for a name of a
/// known family, the family's power per package and per thread together where `packages` is
/// known (bare metal: the whole machine is seen), its watts per thread alone where not (a VM);
/// else the generic curve's watts per thread. `threads` must have passed [`check_threads`],
/// `packages` [`check_packages`], `tdp` [`check_tdp`].
pub fn choose(
    cpu_name: Option<&str>,
    threads: u32,
    packages: Option<u32>,
    tdp: Option<f64>,
) -> CpuChoice {
    let name = cpu_name.map(normalise).unwrap_or_default();
    let family = cpu_power::family_of(&name);
    let profile = family.unwrap_or(&GENERIC_PROFILE);
    let curve = match family {
        Some(f) => format!("{} curve ({} machines)", f.key, f.machines),
        None => format!(
            "generic curve ({} machines; no family matches {:?})",
            GENERIC_PROFILE.machines,
            if name.is_empty() {
                "(no CPU name)"
            } else {
                &name
            }
        ),
    };
    let curve_short = family.map_or("generic", |f| f.key);
    let (scale, description, short, tdp_source) = match (tdp, lookup(&name)) {
        (Some(w), _) => (
            Scale::Tdp { tdp_w: w },
            format!("TDP {w} W (given), {curve}"),
            format!("TDP {w} W given, {curve_short} curve; Energizta"),
            "TDP given by the user",
        ),
        (None, Some(spec)) => {
            let w = tdp_for(spec, threads);
            (
                Scale::Tdp { tdp_w: w },
                format!(
                    "table entry {:?}: TDP {} W per {} threads, x {threads} threads = {w:.1} W, {curve}",
                    spec.key, spec.tdp_w, spec.threads
                ),
                format!("{} TDP, {curve_short} curve; Energizta", spec.key),
                "TDP: the manufacturer's (Intel ARK, AMD), or Energizta's for the models it measured",
            )
        }
        (None, None) => match (family, packages) {
            (Some(_), Some(packages)) => (
                Scale::PackagesAndThreads { packages, threads },
                format!(
                    "no table entry: sqrt({packages} packages x watts per package x {threads} \
                     threads x watts per thread) of the {curve}"
                ),
                format!("{curve_short} curve, {packages} pkg x {threads} thr; Energizta"),
                "no TDP: watts per package and per thread measured on the same machines",
            ),
            _ => (
                Scale::Threads { threads },
                format!("no table entry: {threads} threads x the watts per thread of the {curve}"),
                format!("{curve_short} curve, W/thread x {threads}; Energizta"),
                "no TDP: watts per thread measured on the same machines",
            ),
        },
    };
    CpuChoice {
        model: CpuPowerModel { profile, scale },
        description,
        short,
        source: format!("{CURVE_SOURCE}; {tdp_source}"),
    }
}

/// Logical CPUs listed in a `/proc/cpuinfo` text (`processor` lines): the CPUs `/proc/stat`'s
/// utilisation is over.
pub fn count_processors(text: &str) -> u32 {
    text.lines()
        .filter(|l| l.split(':').next().map(str::trim) == Some("processor"))
        .count() as u32
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
    fn vm_share() {
        let s = lookup("AMD EPYC 7763 64-Core Processor").unwrap();
        assert!((tdp_for(s, 2) - 280.0 * 2.0 / 128.0).abs() < 1e-9);
        assert_eq!(tdp_for(s, 256), 560.0);
    }

    #[test]
    fn cpu_spelling_and_old_xeons() {
        let s = lookup("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz").unwrap();
        assert_eq!(s.tdp_w, 145.0);
        assert_eq!(
            normalise("Intel(R) Xeon(R) E-2278G CPU @ 3.40GHz"),
            "intel xeon e-2278g"
        );
    }

    #[test]
    fn choice_says_which_entry_or_fallback() {
        let c = choose(
            Some("Intel(R) Xeon(R) Gold 5218 CPU @ 2.30GHz"),
            64,
            Some(2),
            None,
        );
        assert_eq!(c.model.scale, Scale::Tdp { tdp_w: 250.0 });
        assert_eq!(c.model.profile.key, "xeon gold");
        assert!(c.description.contains("table entry \"xeon gold 5218\""));
        let c = choose(Some("Intel(R) Xeon(R) Gold 6999"), 8, None, None);
        assert_eq!(c.model.scale, Scale::Threads { threads: 8 });
        let c = choose(Some("Intel(R) Xeon(R) Gold 6999"), 8, Some(2), None);
        assert_eq!(
            c.model.scale,
            Scale::PackagesAndThreads {
                packages: 2,
                threads: 8
            }
        );
        assert_eq!(c.model.profile.key, "xeon gold");
        assert!(c.description.contains("no table entry"));
        let c = choose(Some("AMD EPYC 7763 64-Core Processor"), 4, None, None);
        assert_eq!(c.model.profile.key, "generic");
        assert!(
            c.model.scale
                == Scale::Tdp {
                    tdp_w: 280.0 * 4.0 / 128.0
                }
        );
        assert!(c
            .description
            .contains("no family matches \"amd epyc 7763 64-core\""));
        let c = choose(Some("Weird CPU"), 2, Some(1), None);
        assert_eq!(
            c.model.scale,
            Scale::Threads { threads: 2 },
            "generic: per thread"
        );
        let c = choose(Some("Weird CPU"), 2, None, Some(10.0));
        assert_eq!(c.model.scale, Scale::Tdp { tdp_w: 10.0 });
        assert!(c.short.len() <= 64 && c.short.contains("given"));
        // The longest short names fit the 64-byte source name.
        let c = choose(Some("Intel Xeon Platinum 8275CL"), MAX_THREADS, None, None);
        assert!(c.short.len() <= 64, "{}", c.short);
        let c = choose(Some("Intel Xeon Platinum 9999"), MAX_THREADS, None, None);
        assert!(c.short.len() <= 64, "{}", c.short);
        let c = choose(
            Some("Intel Xeon Platinum 9999"),
            MAX_THREADS,
            Some(MAX_PACKAGES),
            None,
        );
        assert!(c.short.len() <= 64, "{}", c.short);
        let c = choose(
            Some("Intel Xeon Platinum 9999"),
            1,
            None,
            Some(MAX_TDP_W * 0.999),
        );
        assert!(c.short.len() <= 64, "{}", c.short);
        let c = choose(None, 2, None, None);
        assert!(c.description.contains("(no CPU name)"));
        assert!(c.source.contains("Energizta"));
    }

    #[test]
    fn input_checks() {
        for bad in ["NaN", "-1", "0", "1e300", "inf", "x", ""] {
            assert!(parse_tdp(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_tdp(" 125 "), Ok(125.0));
        assert!(parse_tdp("1e300").unwrap_err().contains("1e300 W"));
        assert!(check_threads(0).is_err());
        assert!(check_threads(MAX_THREADS + 1).is_err());
        assert_eq!(
            count_processors("processor\t: 0\nmodel name: x\nprocessor\t: 1\n"),
            2
        );
        assert!(check_packages(0).is_err() && check_packages(MAX_PACKAGES + 1).is_err());
        assert!(is_virtual("flags\t\t: fpu vme hypervisor lahf_lm\n"));
        assert!(!is_virtual(
            "flags\t\t: fpu vme lahf_lm\nmodel name: hypervisor\n"
        ));
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
