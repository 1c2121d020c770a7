//! `ea2p estimate cpu|ram`: the watts `ea2p run` would estimate for a CPU or an amount of RAM,
//! and the table entry or fallback and the public data the figure rests on. The models are
//! chosen by the same functions as `ea2p run`'s estimators ([`cpu_tdp::choose`],
//! [`discover::ram_model`]).

use serde::Serialize;

use crate::cpu_tdp;
use crate::discover;

/// The largest amount of RAM `estimate ram` takes, GiB (1 PiB).
pub const MAX_GIB: f64 = 1024.0 * 1024.0;

/// What `ea2p estimate` prints (and writes with `--json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// Estimated power, watts.
    pub watts: f64,
    /// The model: table entry, family, fallback, parameters.
    pub model: String,
    /// The public data it rests on.
    pub source: String,
}

impl std::fmt::Display for Estimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{:.3} W (estimated)", self.watts)?;
        writeln!(f, "model: {}", self.model)?;
        writeln!(f, "source: {}", self.source)
    }
}

/// `ea2p estimate` sub-commands.
#[derive(clap::Subcommand, Debug)]
pub enum EstimateCmd {
    /// CPU package power for a CPU model, a number of logical CPUs and a utilisation.
    Cpu(CpuArgs),
    /// DRAM power for an installed amount and a CPU utilisation.
    Ram(RamArgs),
}

/// `ea2p estimate cpu`.
#[derive(clap::Args, Debug)]
pub struct CpuArgs {
    /// The CPU's model name as /proc/cpuinfo prints it, e.g. "Intel(R) Xeon(R) Gold 5218 CPU".
    #[arg(long)]
    pub cpu_name: String,
    /// Logical CPUs (hardware threads) seen, e.g. a VM's vCPUs.
    #[arg(long, value_parser = parse_threads, allow_negative_numbers = true)]
    pub threads: u32,
    /// On bare metal, the CPU packages (sockets) of the machine; leave it out in a VM (only
    /// then an unknown model of a known family is scaled by packages and threads together).
    #[arg(long, value_parser = parse_packages, allow_negative_numbers = true)]
    pub packages: Option<u32>,
    /// Utilisation of those CPUs, from 0 (idle) to 1 (all busy).
    #[arg(long, value_parser = parse_utilisation, allow_negative_numbers = true)]
    pub utilization: f64,
    /// TDP in watts of the CPUs seen (overrides the table, as `ea2p run --cpu-tdp`).
    #[arg(long, value_parser = cpu_tdp::parse_tdp, allow_negative_numbers = true)]
    pub tdp: Option<f64>,
    /// Print {"watts", "model", "source"} as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `ea2p estimate ram`.
#[derive(clap::Args, Debug)]
pub struct RamArgs {
    /// Installed memory, GiB.
    #[arg(long, value_parser = parse_gib, allow_negative_numbers = true)]
    pub gib: f64,
    /// The machine's CPU utilisation, 0 to 1 (the activity proxy); default 0: background only.
    #[arg(long, value_parser = parse_utilisation, default_value_t = 0.0, allow_negative_numbers = true)]
    pub utilization: f64,
    /// Print {"watts", "model", "source"} as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_number(s: &str, what: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: expected {what}"))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{s:?}: expected {what}, not infinity or NaN"))
    }
}

/// A utilisation: a finite number from 0 to 1.
pub fn parse_utilisation(s: &str) -> Result<f64, String> {
    let u = parse_number(s, "a utilisation from 0 to 1")?;
    if (0.0..=1.0).contains(&u) {
        Ok(u)
    } else {
        Err(format!(
            "utilisation {}: expected a number from 0 (idle) to 1 (every CPU busy); 50 % is 0.5",
            cpu_tdp::readable(u)
        ))
    }
}

/// A thread count: an integer from 1 to [`cpu_tdp::MAX_THREADS`].
pub fn parse_threads(s: &str) -> Result<u32, String> {
    let n: u32 = s.trim().parse().map_err(|_| {
        format!(
            "{s:?}: expected a whole number of threads from 1 to {}",
            cpu_tdp::MAX_THREADS
        )
    })?;
    cpu_tdp::check_threads(n)
}

/// A package count: an integer from 1 to [`cpu_tdp::MAX_PACKAGES`].
pub fn parse_packages(s: &str) -> Result<u32, String> {
    let n: u32 = s.trim().parse().map_err(|_| {
        format!(
            "{s:?}: expected a whole number of packages from 1 to {}",
            cpu_tdp::MAX_PACKAGES
        )
    })?;
    cpu_tdp::check_packages(n)
}

/// An amount of memory in GiB: a finite number above 0 and at most [`MAX_GIB`].
pub fn parse_gib(s: &str) -> Result<f64, String> {
    let g = parse_number(s, "an amount of memory in GiB")?;
    if g > 0.0 && g <= MAX_GIB {
        Ok(g)
    } else {
        Err(format!(
            "{} GiB: expected an amount above 0 and at most {MAX_GIB} GiB",
            cpu_tdp::readable(g)
        ))
    }
}

/// The CPU estimate (inputs already checked by the parsers above).
pub fn cpu(
    cpu_name: &str,
    threads: u32,
    packages: Option<u32>,
    utilisation: f64,
    tdp: Option<f64>,
) -> Estimate {
    let choice = cpu_tdp::choose(Some(cpu_name), threads, packages, tdp);
    Estimate {
        watts: choice.model.power(utilisation).watts,
        model: choice.description,
        source: choice.source,
    }
}

/// The RAM estimate (inputs already checked by the parsers above).
pub fn ram(gib: f64, utilisation: f64) -> Estimate {
    let choice = discover::ram_model((gib * 1073741824.0) as u64);
    Estimate {
        watts: choice.model.power_at_utilisation(utilisation).watts,
        model: choice.description,
        source: choice.source.to_string(),
    }
}

/// Runs `ea2p estimate`: prints the estimate, as text or JSON.
pub fn run(cmd: &EstimateCmd) -> anyhow::Result<()> {
    let (e, json) = match cmd {
        EstimateCmd::Cpu(a) => (
            cpu(&a.cpu_name, a.threads, a.packages, a.utilization, a.tdp),
            a.json,
        ),
        EstimateCmd::Ram(a) => (ram(a.gib, a.utilization), a.json),
    };
    if json {
        println!("{}", serde_json::to_string(&e)?);
    } else {
        print!("{e}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_numbers_are_refused_with_the_reason() {
        for bad in ["NaN", "nan", "inf", "-0.1", "1.5", "1e300", "50%", ""] {
            let e = parse_utilisation(bad).unwrap_err();
            assert!(
                e.contains("utilisation") || e.contains("expected"),
                "{bad}: {e}"
            );
        }
        assert!(parse_utilisation("50").unwrap_err().contains("0.5"));
        assert_eq!(parse_utilisation("1"), Ok(1.0));
        assert_eq!(parse_utilisation(" 0 "), Ok(0.0));
        for bad in ["0", "-1", "1.5", "1e300", "99999999999", "x"] {
            assert!(parse_threads(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_threads("64"), Ok(64));
        for bad in ["0", "-4", "NaN", "1e300", "inf", "2e6"] {
            assert!(parse_gib(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_gib("0.5"), Ok(0.5));
    }

    #[test]
    fn cpu_estimates_name_their_model() {
        let known = cpu(
            "Intel(R) Xeon(R) Gold 5218 CPU @ 2.30GHz",
            64,
            None,
            1.0,
            None,
        );
        assert!(known.model.contains("table entry \"xeon gold 5218\""));
        assert!(known.source.contains("Energizta"));
        assert!(
            known.watts > 150.0 && known.watts < 250.0,
            "{}",
            known.watts
        );
        let idle = cpu(
            "Intel(R) Xeon(R) Gold 5218 CPU @ 2.30GHz",
            64,
            None,
            0.0,
            None,
        );
        assert!(idle.watts < known.watts / 2.0);
        let generic = cpu("Some Future CPU", 4, None, 0.5, None);
        let both = cpu("Intel(R) Xeon(R) Silver 4999", 40, Some(2), 0.5, None);
        assert!(both.model.contains("2 packages"), "{}", both.model);
        assert!(parse_packages("0").is_err() && parse_packages("-1").is_err());
        assert!(generic.model.contains("generic curve"));
        let json = serde_json::to_value(&generic).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 3);
        assert!(json["watts"].as_f64().unwrap() > 0.0);
    }

    #[test]
    fn ram_estimates() {
        let idle = ram(64.0, 0.0);
        assert!((idle.watts - 64.0 * 0.0648).abs() < 1e-9);
        assert!(ram(64.0, 1.0).watts > idle.watts);
        assert!(idle.source.contains("Micron"));
    }
}
