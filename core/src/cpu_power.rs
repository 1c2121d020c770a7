//! CPU package power against utilisation, fitted on public measurements: one curve per CPU
//! family, as a fraction of TDP and in watts per hardware thread, with a generic curve for CPUs of
//! no known family.
//!
//! The curves are the pointwise medians, at idle and every 10 % of load, of RAPL package power
//! measured on real servers under CPU stress (`core/data/cpu_package_power.csv`, from Boavizta's
//! Energizta repository; where each figure comes from is in `core/data/README.md`). Between two
//! steps the curve is linear. Power is `TDP x of_tdp(u)` when the TDP of the CPU is known; else,
//! where the whole machine is seen, the geometric mean of `packages x per_package_w(u)` and
//! `threads x per_thread_w(u)`; else (a VM) `threads x per_thread_w(u)`: the per-vCPU accounting
//! of Cloud Carbon Footprint, with a curve measured on the family instead of one fleet-wide
//! coefficient. See [`Scale`].
//!
//! [`fit_profile`] is the fit; the test `core/tests/cpu_power_validation.rs` re-fits
//! [`FAMILY_PROFILES`] and [`GENERIC_PROFILE`] from the data file and checks them, and measures the
//! error on machines left out of the fit (the README publishes it).

use serde::Serialize;

use crate::estimate::PowerEstimate;

/// Load steps of a curve: idle, 10 %, ..., 100 %.
pub const LOAD_STEPS: usize = 11;

/// Most machines one fit takes (the published data holds 21 rows).
pub const MAX_FIT_MACHINES: usize = 64;

/// A measured curve: a value at idle and at every 10 % of load, linear in between.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoadCurve(pub [f64; LOAD_STEPS]);

impl LoadCurve {
    /// The value at a utilisation in `[0, 1]` (outside: clamped; NaN: idle).
    pub fn at(&self, utilisation: f64) -> f64 {
        let u = if utilisation.is_nan() {
            0.0
        } else {
            utilisation.clamp(0.0, 1.0)
        };
        let x = u * (LOAD_STEPS - 1) as f64;
        let i = (libm::floor(x) as usize).min(LOAD_STEPS - 2);
        let frac = x - i as f64;
        self.0[i] + (self.0[i + 1] - self.0[i]) * frac
    }
}

/// A CPU family's curves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FamilyProfile {
    /// Lower-case key matched at the start of a word of the normalised model name
    /// (`xeon gold` matches `intel xeon gold 5218`), or `generic`.
    pub key: &'static str,
    /// Machines (distinct CPU models) the curves are the medians of.
    pub machines: u8,
    /// Package power as a fraction of the packages' TDP.
    pub of_tdp: LoadCurve,
    /// Package power per hardware thread, watts.
    pub per_thread_w: LoadCurve,
    /// Power per package, watts.
    pub per_package_w: LoadCurve,
}

/// One measured machine, as the fit takes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeasuredMachine {
    /// TDP of all its packages together, watts.
    pub tdp_w: f64,
    /// Hardware threads of all its packages.
    pub threads: u32,
    /// Its packages (sockets).
    pub packages: u32,
    /// Package power (all packages) at idle and every 10 % of load, watts.
    pub watts: [f64; LOAD_STEPS],
}

/// Why a fit could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FitError {
    /// No machine to fit on.
    Empty,
    /// More than [`MAX_FIT_MACHINES`].
    TooMany,
    /// A TDP, thread count or power that is not a positive finite number.
    NotPositive,
}

impl core::fmt::Display for FitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FitError::Empty => write!(f, "no machine to fit on"),
            FitError::TooMany => write!(f, "more than {MAX_FIT_MACHINES} machines"),
            FitError::NotPositive => {
                write!(
                    f,
                    "a TDP, thread count or power is not a positive finite number"
                )
            }
        }
    }
}

/// The median of a non-empty slice (sorted in place; mean of the two middle values if even).
fn median(v: &mut [f64]) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Fits a family's curves: at each load step, the median over `machines` of power / TDP, of
/// power / thread and of power / package. The median, not the mean, so that one odd machine does not move the curve.
pub fn fit_profile(
    key: &'static str,
    machines: &[MeasuredMachine],
) -> Result<FamilyProfile, FitError> {
    if machines.is_empty() {
        return Err(FitError::Empty);
    }
    if machines.len() > MAX_FIT_MACHINES {
        return Err(FitError::TooMany);
    }
    let ok = |x: f64| x.is_finite() && x > 0.0;
    if machines.iter().any(|m| {
        !ok(m.tdp_w) || m.threads == 0 || m.packages == 0 || m.watts.iter().any(|&w| !ok(w))
    }) {
        return Err(FitError::NotPositive);
    }
    let mut of_tdp = [0.0; LOAD_STEPS];
    let mut per_thread = [0.0; LOAD_STEPS];
    let mut per_package = [0.0; LOAD_STEPS];
    let mut buf = [0.0; MAX_FIT_MACHINES];
    let n = machines.len();
    for step in 0..LOAD_STEPS {
        for (b, m) in buf.iter_mut().zip(machines) {
            *b = m.watts[step] / m.tdp_w;
        }
        of_tdp[step] = median(&mut buf[..n]);
        for (b, m) in buf.iter_mut().zip(machines) {
            *b = m.watts[step] / f64::from(m.threads);
        }
        per_thread[step] = median(&mut buf[..n]);
        for (b, m) in buf.iter_mut().zip(machines) {
            *b = m.watts[step] / f64::from(m.packages);
        }
        per_package[step] = median(&mut buf[..n]);
    }
    Ok(FamilyProfile {
        key,
        machines: n as u8,
        of_tdp: LoadCurve(of_tdp),
        per_thread_w: LoadCurve(per_thread),
        per_package_w: LoadCurve(per_package),
    })
}

/// The family curves fitted on `core/data/cpu_package_power.csv` (checked against a re-fit by
/// `core/tests/cpu_power_validation.rs`, which prints the re-fitted table when they differ). All are Intel Xeon: the data holds no AMD or Arm
/// machine, so those CPUs take [`GENERIC_PROFILE`].
pub const FAMILY_PROFILES: &[FamilyProfile] = &[
    FamilyProfile {
        key: "xeon platinum",
        machines: 6,
        of_tdp: LoadCurve([
            0.11979166666666666,
            0.3072916666666667,
            0.41815476190476186,
            0.5229166666666667,
            0.6415178571428571,
            0.7415178571428571,
            0.8147321428571428,
            0.8808035714285715,
            0.9492559523809524,
            1.0081845238095237,
            1.036309523809524,
        ]),
        per_thread_w: LoadCurve([
            0.6588541666666667,
            1.8489583333333335,
            2.46875,
            3.0295138888888893,
            3.674479166666667,
            4.349826388888889,
            5.005208333333333,
            5.411458333333333,
            5.730902777777778,
            5.964409722222221,
            6.081597222222221,
        ]),
        per_package_w: LoadCurve([
            28.0, 73.5, 97.75, 122.75, 150.75, 176.25, 192.5, 207.5, 225.0, 238.0, 243.0,
        ]),
    },
    FamilyProfile {
        key: "xeon gold",
        machines: 3,
        of_tdp: LoadCurve([
            0.23809523809523808,
            0.428,
            0.528,
            0.616,
            0.668,
            0.716,
            0.7366666666666667,
            0.78,
            0.81,
            0.8233333333333334,
            0.84,
        ]),
        per_thread_w: LoadCurve([
            0.8928571428571429,
            1.671875,
            2.0625,
            2.40625,
            2.609375,
            2.796875,
            2.875,
            3.046875,
            3.109375,
            3.1875,
            3.1875,
        ]),
        per_package_w: LoadCurve([
            25.0, 53.5, 66.0, 77.0, 83.5, 89.5, 92.0, 97.5, 99.5, 102.0, 103.5,
        ]),
    },
    FamilyProfile {
        key: "xeon silver",
        machines: 4,
        of_tdp: LoadCurve([
            0.15647058823529414,
            0.37941176470588234,
            0.47058823529411764,
            0.5352941176470588,
            0.5911764705882353,
            0.6323529411764706,
            0.6647058823529413,
            0.6910294117647059,
            0.7173529411764705,
            0.7391176470588234,
            0.7536764705882353,
        ]),
        per_thread_w: LoadCurve([
            0.7250000000000001,
            1.5875,
            2.0250000000000004,
            2.3375,
            2.6500000000000004,
            2.8625,
            3.025,
            3.175,
            3.3,
            3.4000000000000004,
            3.475,
        ]),
        per_package_w: LoadCurve([
            14.5, 32.25, 40.5, 46.75, 53.0, 57.25, 60.5, 63.5, 66.0, 68.0, 69.5,
        ]),
    },
    FamilyProfile {
        key: "xeon e5",
        machines: 2,
        of_tdp: LoadCurve([
            0.13402903811252267,
            0.3224137931034483,
            0.44882032667876587,
            0.5515426497277678,
            0.6358439201451906,
            0.7113430127041742,
            0.7686932849364791,
            0.8077132486388385,
            0.8415607985480944,
            0.8666061705989111,
            0.911070780399274,
        ]),
        per_thread_w: LoadCurve([
            0.6805555555555556,
            1.5850694444444444,
            2.25,
            2.7743055555555554,
            3.189236111111111,
            3.548611111111111,
            3.829861111111111,
            4.012152777777778,
            4.173611111111111,
            4.279513888888889,
            4.513888888888889,
        ]),
        per_package_w: LoadCurve([
            15.75, 39.25, 53.5, 65.5, 75.75, 85.25, 92.25, 97.25, 101.5, 105.0, 110.0,
        ]),
    },
    FamilyProfile {
        key: "xeon e3",
        machines: 1,
        of_tdp: LoadCurve([
            0.027777777777777776,
            0.1388888888888889,
            0.2222222222222222,
            0.2361111111111111,
            0.20833333333333334,
            0.20833333333333334,
            0.20833333333333334,
            0.5277777777777778,
            0.5555555555555556,
            0.5833333333333334,
            0.5694444444444444,
        ]),
        per_thread_w: LoadCurve([
            0.25, 1.25, 2.0, 2.125, 1.875, 1.875, 1.875, 4.75, 5.0, 5.25, 5.125,
        ]),
        per_package_w: LoadCurve([
            2.0, 10.0, 16.0, 17.0, 15.0, 15.0, 15.0, 38.0, 40.0, 42.0, 41.0,
        ]),
    },
    FamilyProfile {
        key: "xeon e-",
        machines: 1,
        of_tdp: LoadCurve([
            0.025, 0.275, 0.5125, 0.7375, 0.55, 0.5125, 0.4875, 0.5875, 1.125, 1.025, 1.0625,
        ]),
        per_thread_w: LoadCurve([
            0.125, 1.375, 2.5625, 3.6875, 2.75, 2.5625, 2.4375, 2.9375, 5.625, 5.125, 5.3125,
        ]),
        per_package_w: LoadCurve([
            2.0, 22.0, 41.0, 59.0, 44.0, 41.0, 39.0, 47.0, 90.0, 82.0, 85.0,
        ]),
    },
];

/// The curve of a CPU of no known family: the medians over every machine of the data.
pub const GENERIC_PROFILE: FamilyProfile = FamilyProfile {
    key: "generic",
    machines: 17,
    of_tdp: LoadCurve([
        0.121875,
        0.32857142857142857,
        0.44666666666666666,
        0.5333333333333333,
        0.6354166666666666,
        0.7157894736842105,
        0.7684210526315789,
        0.7947368421052632,
        0.8588235294117647,
        0.8823529411764706,
        0.9058823529411765,
    ]),
    per_thread_w: LoadCurve([
        0.65,
        1.625,
        2.075,
        2.517857142857143,
        2.8333333333333335,
        3.0625,
        3.232142857142857,
        3.392857142857143,
        4.177083333333333,
        4.4375,
        4.583333333333333,
    ]),
    per_package_w: LoadCurve([
        20.0, 50.0, 63.0, 76.0, 83.5, 89.5, 92.0, 97.5, 99.5, 102.0, 103.5,
    ]),
};

/// Whether `key` occurs in `name` at the start of a word (after the start or a space).
fn starts_a_word(name: &str, key: &str) -> bool {
    name.match_indices(key)
        .any(|(i, _)| i == 0 || name.as_bytes()[i - 1] == b' ')
}

/// The family of a normalised model name (lower case, single spaces, no `(r)`): the longest
/// matching key of [`FAMILY_PROFILES`], or `None`.
pub fn family_of(normalised_name: &str) -> Option<&'static FamilyProfile> {
    FAMILY_PROFILES
        .iter()
        .filter(|p| starts_a_word(normalised_name, p.key))
        .max_by_key(|p| p.key.len())
}

/// How the curve is scaled to watts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Scale {
    /// `tdp_w x of_tdp(u)`: the TDP of the packages (or of the share a VM sees).
    Tdp {
        /// Watts.
        tdp_w: f64,
    },
    /// `threads x per_thread_w(u)`, when no TDP is known (in a VM, where the host's packages
    /// are not seen).
    Threads {
        /// Hardware threads seen.
        threads: u32,
    },
    /// `sqrt(packages x per_package_w(u) x threads x per_thread_w(u))`, when no TDP is known but
    /// the whole machine is seen (bare metal): the geometric mean of the per-package and the
    /// per-thread estimate. Within a family, power follows neither the thread count nor the
    /// package count alone (`core/tests/cpu_power_validation.rs` measures all three).
    PackagesAndThreads {
        /// Packages (sockets).
        packages: u32,
        /// Hardware threads of all of them.
        threads: u32,
    },
}

/// A CPU's estimated package power against utilisation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CpuPowerModel {
    /// The family curve (or [`GENERIC_PROFILE`]).
    pub profile: &'static FamilyProfile,
    /// How it becomes watts.
    pub scale: Scale,
}

impl CpuPowerModel {
    /// Package power at a utilisation in `[0, 1]` of the threads seen (clamped; NaN: idle).
    pub fn power(&self, utilisation: f64) -> PowerEstimate {
        let w = match self.scale {
            Scale::Tdp { tdp_w } => tdp_w * self.profile.of_tdp.at(utilisation),
            Scale::Threads { threads } => {
                f64::from(threads) * self.profile.per_thread_w.at(utilisation)
            }
            Scale::PackagesAndThreads { packages, threads } => libm::sqrt(
                f64::from(packages)
                    * self.profile.per_package_w.at(utilisation)
                    * f64::from(threads)
                    * self.profile.per_thread_w.at(utilisation),
            ),
        };
        PowerEstimate::new(w)
    }
}

/// The mean absolute percentage error of `predicted` against `measured` (both per load step),
/// the figure the README publishes per machine.
pub fn mean_abs_pct_error(predicted: &[f64; LOAD_STEPS], measured: &[f64; LOAD_STEPS]) -> f64 {
    let sum: f64 = predicted
        .iter()
        .zip(measured)
        .map(|(p, m)| libm::fabs(p - m) / m)
        .sum();
    100.0 * sum / LOAD_STEPS as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_interpolates_and_clamps() {
        let c = LoadCurve([
            0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 200.0,
        ]);
        assert_eq!(c.at(0.0), 0.0);
        assert!((c.at(0.25) - 25.0).abs() < 1e-12);
        assert!((c.at(0.95) - 145.0).abs() < 1e-9);
        assert_eq!(c.at(1.0), 200.0);
        assert_eq!(c.at(3.0), 200.0);
        assert_eq!(c.at(-1.0), 0.0);
        assert_eq!(c.at(f64::NAN), 0.0);
    }

    #[test]
    fn fit_is_the_pointwise_median() {
        let m = |tdp: f64, threads: u32, k: f64| MeasuredMachine {
            tdp_w: tdp,
            threads,
            packages: 1,
            watts: [k; LOAD_STEPS],
        };
        let p = fit_profile(
            "x",
            &[m(100.0, 10, 10.0), m(100.0, 10, 50.0), m(10.0, 1, 9.0)],
        )
        .unwrap();
        assert_eq!(p.of_tdp.0[3], 0.5); // 0.1, 0.5, 0.9
        assert_eq!(p.per_thread_w.0[3], 5.0); // 1, 5, 9
        assert_eq!(p.per_package_w.0[3], 10.0); // 10, 50, 9
        assert_eq!(p.machines, 3);
        let even = fit_profile("x", &[m(100.0, 10, 10.0), m(100.0, 10, 30.0)]).unwrap();
        assert_eq!(even.of_tdp.0[0], 0.2);
        assert_eq!(fit_profile("x", &[]), Err(FitError::Empty));
        assert_eq!(
            fit_profile("x", &[m(f64::NAN, 1, 1.0)]),
            Err(FitError::NotPositive)
        );
        assert_eq!(
            fit_profile("x", &[m(1.0, 0, 1.0)]),
            Err(FitError::NotPositive)
        );
    }

    #[test]
    fn families_match_at_word_starts() {
        assert_eq!(family_of("intel xeon gold 5218").unwrap().key, "xeon gold");
        assert_eq!(family_of("intel xeon e5-2686 v4").unwrap().key, "xeon e5");
        assert_eq!(family_of("intel xeon e-2278g").unwrap().key, "xeon e-");
        assert!(family_of("amd epyc 7763 64-core").is_none());
        assert!(family_of("notxeon gold").is_none());
    }

    #[test]
    fn model_scales() {
        let p = family_of("xeon silver 4214").unwrap();
        let tdp = CpuPowerModel {
            profile: p,
            scale: Scale::Tdp { tdp_w: 170.0 },
        };
        assert_eq!(tdp.power(1.0).watts, 170.0 * p.of_tdp.0[10]);
        let thr = CpuPowerModel {
            profile: &GENERIC_PROFILE,
            scale: Scale::Threads { threads: 4 },
        };
        assert_eq!(
            thr.power(0.0).watts,
            4.0 * GENERIC_PROFILE.per_thread_w.0[0]
        );
        let both = CpuPowerModel {
            profile: p,
            scale: Scale::PackagesAndThreads {
                packages: 2,
                threads: 48,
            },
        };
        let want = libm::sqrt(2.0 * p.per_package_w.0[10] * 48.0 * p.per_thread_w.0[10]);
        assert!((both.power(1.0).watts - want).abs() < 1e-9);
        assert_eq!(
            thr.power(0.5).provenance,
            crate::source::Provenance::Estimated
        );
        // Every fitted curve rises from idle to full load and is positive.
        for p in FAMILY_PROFILES.iter().chain([&GENERIC_PROFILE]) {
            assert!(
                p.of_tdp.0[0] > 0.0 && p.of_tdp.0[10] > p.of_tdp.0[0],
                "{}",
                p.key
            );
            assert!(p.per_thread_w.0[10] > p.per_thread_w.0[0], "{}", p.key);
        }
    }

    #[test]
    fn error_metric() {
        let m = [10.0; LOAD_STEPS];
        let mut p = m;
        p[0] = 12.0;
        assert!((mean_abs_pct_error(&p, &m) - 20.0 / 11.0).abs() < 1e-12);
    }
}
