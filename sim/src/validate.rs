//! Measured power-limit sweeps: reading them, fitting [`LimitResponse`] to them, and checking the
//! model against them (`eas-sim validate`).
//!
//! A sweep is a CSV file in the layout of the Zeus NSDI'23 artifact
//! (`dataset,network,batch_size,optimizer,power_limit,time_per_epoch,average_power`): one row per
//! (configuration, power limit). For each configuration (dataset, network, batch size,
//! optimizer) the row at the maximum limit is what the model is given (busy power and speed);
//! the model predicts time and power at every other limit.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;

use ea2p_core::jobmodel::LimitResponse;
use serde::Serialize;

/// Largest sweep file read (the Zeus files are about 30 KB).
pub const MAX_SWEEP_BYTES: u64 = 16 << 20;

/// The columns a sweep file must have, in this order.
pub const SWEEP_HEADER: [&str; 7] = [
    "dataset",
    "network",
    "batch_size",
    "optimizer",
    "power_limit",
    "time_per_epoch",
    "average_power",
];

/// Why a sweep could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The file could not be opened or read.
    #[error("{file}: {msg}")]
    Io {
        /// File name as given.
        file: String,
        /// What failed.
        msg: String,
    },
    /// A line is not what the layout expects.
    #[error("{file}:{line}: {msg}")]
    Bad {
        /// File name as given.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong and what was expected.
        msg: String,
    },
}

/// One measured row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// Dataset name.
    pub dataset: String,
    /// Network name.
    pub network: String,
    /// Batch size.
    pub batch_size: u32,
    /// Optimizer name.
    pub optimizer: String,
    /// Power limit, W.
    pub power_limit: f64,
    /// Time per epoch, s.
    pub time_per_epoch: f64,
    /// Average GPU power over the epoch, W.
    pub average_power: f64,
    /// 1-based line in the file.
    #[serde(skip)]
    pub line: usize,
}

impl SweepRow {
    /// The configuration this row belongs to.
    pub fn key(&self) -> ConfigKey {
        (
            self.dataset.clone(),
            self.network.clone(),
            self.batch_size,
            self.optimizer.clone(),
        )
    }
}

/// (dataset, network, batch size, optimizer).
pub type ConfigKey = (String, String, u32, String);

/// Reads a sweep file: at most [`MAX_SWEEP_BYTES`], header checked, every number finite and
/// positive, no (configuration, limit) twice.
pub fn read_sweep(path: &Path) -> Result<Vec<SweepRow>, SweepError> {
    let file = path.display().to_string();
    let io = |msg: String| SweepError::Io {
        file: file.clone(),
        msg,
    };
    let meta = std::fs::metadata(path).map_err(|e| io(e.to_string()))?;
    if !meta.is_file() {
        return Err(io("not a regular file".into()));
    }
    let f = std::fs::File::open(path).map_err(|e| io(e.to_string()))?;
    let mut text = String::new();
    f.take(MAX_SWEEP_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| io(format!("reading: {e} (expected UTF-8 CSV)")))?;
    if text.len() as u64 > MAX_SWEEP_BYTES {
        return Err(io(format!(
            "larger than {} MiB: not a sweep file",
            MAX_SWEEP_BYTES >> 20
        )));
    }
    parse_sweep(&text, &file)
}

/// Parses sweep text; `file` names it in errors.
pub fn parse_sweep(text: &str, file: &str) -> Result<Vec<SweepRow>, SweepError> {
    let bad = |line: usize, msg: String| SweepError::Bad {
        file: file.to_string(),
        line,
        msg,
    };
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        return Err(bad(1, "empty file: expected a header line".into()));
    };
    let cols: Vec<&str> = header.trim().split(',').map(str::trim).collect();
    if cols != SWEEP_HEADER {
        return Err(bad(
            1,
            format!(
                "expected the header {:?}, found {header:?}",
                SWEEP_HEADER.join(",")
            ),
        ));
    }
    let mut rows = Vec::new();
    let mut seen: BTreeMap<(ConfigKey, u64), usize> = BTreeMap::new();
    for (i, l) in lines {
        let line = i + 1;
        let l = l.trim();
        if l.is_empty() {
            continue;
        }
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        if f.len() != SWEEP_HEADER.len() {
            return Err(bad(
                line,
                format!("expected {} fields, found {}", SWEEP_HEADER.len(), f.len()),
            ));
        }
        let num = |j: usize| -> Result<f64, SweepError> {
            match f[j].parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
                _ => Err(bad(
                    line,
                    format!(
                        "{}: expected a positive finite number, found {:?}",
                        SWEEP_HEADER[j], f[j]
                    ),
                )),
            }
        };
        let batch_size = f[2].parse::<u32>().ok().filter(|&b| b > 0).ok_or_else(|| {
            bad(
                line,
                format!("batch_size: expected a positive integer, found {:?}", f[2]),
            )
        })?;
        let row = SweepRow {
            dataset: f[0].to_string(),
            network: f[1].to_string(),
            batch_size,
            optimizer: f[3].to_string(),
            power_limit: num(4)?,
            time_per_epoch: num(5)?,
            average_power: num(6)?,
            line,
        };
        let k = (row.key(), row.power_limit.to_bits());
        if let Some(prev) = seen.insert(k, line) {
            return Err(bad(
                line,
                format!(
                    "same configuration and power limit as line {prev}: expected one row per limit"
                ),
            ));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(bad(1, "no data rows after the header".into()));
    }
    Ok(rows)
}

/// One observation for fitting: a row against its configuration's row at the maximum limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// Busy power at the maximum limit, as a fraction of the maximum limit.
    pub busy_fraction: f64,
    /// Limit, as a fraction of the maximum.
    pub limit_fraction: f64,
    /// Time per epoch over time at the maximum limit.
    pub time_ratio: f64,
    /// Average power over average power at the maximum limit.
    pub power_ratio: f64,
}

/// A row with what the model predicts for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Predicted {
    /// The measured row.
    #[serde(flatten)]
    pub row: SweepRow,
    /// Predicted time per epoch, s.
    pub predicted_time: f64,
    /// Predicted average power, W.
    pub predicted_power: f64,
}

impl Predicted {
    /// Absolute percentage errors of time, power and energy per epoch.
    pub fn errors_pct(&self) -> [f64; 3] {
        let r = &self.row;
        let ape = |p: f64, m: f64| 100.0 * (p / m - 1.0).abs();
        [
            ape(self.predicted_time, r.time_per_epoch),
            ape(self.predicted_power, r.average_power),
            ape(
                self.predicted_time * self.predicted_power,
                r.time_per_epoch * r.average_power,
            ),
        ]
    }
}

/// Rows paired with their configuration's maximum-limit row, limits at or above
/// `min_fraction x max_limit_w` (the maximum row itself left out). Configurations without a row
/// at the maximum are counted in the second value.
pub fn paired(
    rows: &[SweepRow],
    max_limit_w: f64,
    min_fraction: f64,
) -> (Vec<(SweepRow, SweepRow)>, Vec<ConfigKey>) {
    let mut by: BTreeMap<ConfigKey, Vec<&SweepRow>> = BTreeMap::new();
    for r in rows {
        by.entry(r.key()).or_default().push(r);
    }
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for (k, rs) in by {
        let Some(top) = rs.iter().find(|r| r.power_limit == max_limit_w) else {
            missing.push(k);
            continue;
        };
        let mut rest: Vec<&&SweepRow> = rs
            .iter()
            .filter(|r| r.power_limit < max_limit_w && r.power_limit >= min_fraction * max_limit_w)
            .collect();
        rest.sort_by(|a, b| a.power_limit.total_cmp(&b.power_limit));
        out.extend(rest.into_iter().map(|r| ((**r).clone(), (*top).clone())));
    }
    (out, missing)
}

/// The observation of a (row, maximum-limit row) pair.
pub fn observation(row: &SweepRow, top: &SweepRow, max_limit_w: f64) -> Observation {
    Observation {
        busy_fraction: top.average_power / max_limit_w,
        limit_fraction: row.power_limit / max_limit_w,
        time_ratio: row.time_per_epoch / top.time_per_epoch,
        power_ratio: row.average_power / top.average_power,
    }
}

/// What the model predicts for a row given its configuration's maximum-limit row.
pub fn predict(
    response: &LimitResponse,
    row: &SweepRow,
    top: &SweepRow,
    max_limit_w: f64,
) -> Predicted {
    let o = observation(row, top, max_limit_w);
    let (t, p) = response.ratios(o.busy_fraction, o.limit_fraction);
    Predicted {
        row: row.clone(),
        predicted_time: top.time_per_epoch * t,
        predicted_power: top.average_power * p,
    }
}

/// Mean absolute percentage errors of time, power and energy per epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Mape {
    /// Time per epoch, %.
    pub time_per_epoch: f64,
    /// Average power, %.
    pub average_power: f64,
    /// Energy per epoch (time x power), %.
    pub energy_per_epoch: f64,
}

/// The result of checking a model against a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Validation {
    /// Every predicted row, in (configuration, limit) order.
    pub predicted: Vec<Predicted>,
    /// Configurations that have predicted rows.
    pub configurations: usize,
    /// Configurations left out because they have no row at the maximum limit.
    pub without_max_row: Vec<ConfigKey>,
    /// Mean absolute percentage errors over `predicted`.
    pub mape: Mape,
}

/// Checks `response` against a sweep: every row at or above `min_fraction x max_limit_w`.
pub fn validate(
    response: &LimitResponse,
    rows: &[SweepRow],
    max_limit_w: f64,
    min_fraction: f64,
) -> Validation {
    let (pairs, without_max_row) = paired(rows, max_limit_w, min_fraction);
    let predicted: Vec<Predicted> = pairs
        .iter()
        .map(|(r, top)| predict(response, r, top, max_limit_w))
        .collect();
    let mut sums = [0.0; 3];
    for p in &predicted {
        for (s, e) in sums.iter_mut().zip(p.errors_pct()) {
            *s += e;
        }
    }
    let n = predicted.len().max(1) as f64;
    let mut keys: Vec<ConfigKey> = predicted.iter().map(|p| p.row.key()).collect();
    keys.dedup();
    Validation {
        configurations: keys.len(),
        without_max_row,
        mape: Mape {
            time_per_epoch: sums[0] / n,
            average_power: sums[1] / n,
            energy_per_epoch: sums[2] / n,
        },
        predicted,
    }
}

impl Validation {
    /// The `n` rows with the largest error (the largest of time, power and energy), worst first.
    pub fn worst(&self, n: usize) -> Vec<&Predicted> {
        let mut v: Vec<&Predicted> = self.predicted.iter().collect();
        let score = |p: &Predicted| p.errors_pct().into_iter().fold(0.0, f64::max);
        v.sort_by(|a, b| score(b).total_cmp(&score(a)));
        v.truncate(n);
        v
    }

    /// The JSON of `eas-sim validate --json`.
    pub fn to_json(&self, worst: usize) -> serde_json::Value {
        serde_json::json!({
            "rows": self.predicted.len(),
            "configurations": self.configurations,
            "mape_pct": self.mape,
            "worst": self.worst(worst),
        })
    }

    /// A table per configuration, then the MAPEs.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let mut last: Option<ConfigKey> = None;
        for p in &self.predicted {
            let k = p.row.key();
            if last.as_ref() != Some(&k) {
                let _ = writeln!(s, "\n{} / {} / batch {} / {}", k.0, k.1, k.2, k.3);
                let _ = writeln!(
                    s,
                    "{:>9} {:>10} {:>10} {:>7} {:>9} {:>9} {:>7} {:>8}",
                    "limit W",
                    "time s",
                    "pred s",
                    "err %",
                    "power W",
                    "pred W",
                    "err %",
                    "energy %"
                );
                last = Some(k);
            }
            let e = p.errors_pct();
            let r = &p.row;
            let _ = writeln!(
                s,
                "{:>9.1} {:>10.2} {:>10.2} {:>7.2} {:>9.1} {:>9.1} {:>7.2} {:>8.2}",
                r.power_limit,
                r.time_per_epoch,
                p.predicted_time,
                e[0],
                r.average_power,
                p.predicted_power,
                e[1],
                e[2]
            );
        }
        let _ = writeln!(
            s,
            "\n{} rows, {} configurations. MAPE: time per epoch {:.2} %, average power {:.2} %, energy per epoch {:.2} %",
            self.predicted.len(),
            self.configurations,
            self.mape.time_per_epoch,
            self.mape.average_power,
            self.mape.energy_per_epoch
        );
        if !self.without_max_row.is_empty() {
            let _ = writeln!(
                s,
                "{} configurations left out: no row at the maximum limit (the model needs it as its input)",
                self.without_max_row.len()
            );
        }
        s
    }
}

// ------------------------------------------------------------------------------------------
// Fitting.

/// Upper bound of the knee slope `c` in a fit.
const KNEE_SLOPE_MAX: f64 = 10.0;
/// Range of the knee `k` in a fit: 0.55-0.8 of the maximum limit.
const KNEE_LO: f64 = 0.55;
const KNEE_SPAN: f64 = 0.25;

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Unconstrained parameters -> a response within its bounds (`r > 0`, `n > 1`, `c` in
/// `[0, KNEE_SLOPE_MAX]`, `k` in `[0.55, 0.8]`).
fn response_of(th: &[f64; 5]) -> LimitResponse {
    LimitResponse {
        capped_ratio: th[0].exp(),
        sharpness: 1.0 + th[1].exp(),
        speed_exponent: th[2],
        knee_slope: KNEE_SLOPE_MAX * sigmoid(th[3]),
        knee_fraction: KNEE_LO + KNEE_SPAN * sigmoid(th[4]),
    }
}

/// Sum of squared relative errors of time and power.
pub fn loss(response: &LimitResponse, obs: &[Observation]) -> f64 {
    obs.iter()
        .map(|o| {
            let (t, p) = response.ratios(o.busy_fraction, o.limit_fraction);
            let et = t / o.time_ratio - 1.0;
            let ep = p / o.power_ratio - 1.0;
            et * et + ep * ep
        })
        .sum()
}

/// Least-squares fit of a [`LimitResponse`] to observations (Nelder-Mead from three starting
/// knees, the best kept; deterministic). Constants are rounded to 4 significant digits, as
/// committed in `ea2p-core`.
pub fn fit(obs: &[Observation]) -> LimitResponse {
    let mut best: Option<(f64, [f64; 5])> = None;
    for k0 in [-2.0, 0.0, 2.0] {
        let start = [0.9f64.ln(), 6.0f64.ln(), 0.3, -2.0, k0];
        let th = nelder_mead(|th| loss(&response_of(th), obs), start, 4000);
        let l = loss(&response_of(&th), obs);
        if best.is_none_or(|(bl, _)| l < bl) {
            best = Some((l, th));
        }
    }
    let r = response_of(&best.expect("three starts").1);
    LimitResponse {
        capped_ratio: round4(r.capped_ratio),
        sharpness: round4(r.sharpness),
        speed_exponent: round4(r.speed_exponent),
        // A slope below 1e-4 changes no time by more than 1e-6: no knee.
        knee_slope: if r.knee_slope < 1e-4 {
            0.0
        } else {
            round4(r.knee_slope)
        },
        knee_fraction: round4(r.knee_fraction),
    }
}

/// Rounds to 4 significant digits.
pub fn round4(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let e = x.abs().log10().floor() as i32 - 3;
    let m = 10f64.powi(-e);
    (x * m).round() / m
}

fn nelder_mead(f: impl Fn(&[f64; 5]) -> f64, x0: [f64; 5], iters: usize) -> [f64; 5] {
    const N: usize = 5;
    let mut pts = vec![x0];
    for i in 0..N {
        let mut y = x0;
        y[i] = if y[i] != 0.0 { y[i] * 1.2 } else { 0.1 };
        pts.push(y);
    }
    let mut vals: Vec<f64> = pts.iter().map(&f).collect();
    let combine = |a: &[f64; N], b: &[f64; N], t: f64| -> [f64; N] {
        core::array::from_fn(|j| a[j] + t * (b[j] - a[j]))
    };
    for _ in 0..iters {
        let mut idx: Vec<usize> = (0..=N).collect();
        idx.sort_by(|&a, &b| vals[a].total_cmp(&vals[b]));
        pts = idx.iter().map(|&i| pts[i]).collect();
        vals = idx.iter().map(|&i| vals[i]).collect();
        if vals[N] - vals[0] <= 1e-12 * vals[0].abs().max(1e-300) {
            break; // converged: the simplex's values agree to 12 digits
        }
        let c: [f64; N] =
            core::array::from_fn(|j| pts[..N].iter().map(|p| p[j]).sum::<f64>() / N as f64);
        let worst = pts[N];
        let xr = combine(&c, &worst, -1.0);
        let fr = f(&xr);
        if fr < vals[0] {
            let xe = combine(&c, &worst, -2.0);
            let fe = f(&xe);
            (pts[N], vals[N]) = if fe < fr { (xe, fe) } else { (xr, fr) };
        } else if fr < vals[N - 1] {
            (pts[N], vals[N]) = (xr, fr);
        } else {
            let xc = combine(&c, &worst, 0.5);
            let fc = f(&xc);
            if fc < vals[N] {
                (pts[N], vals[N]) = (xc, fc);
            } else {
                for i in 1..=N {
                    pts[i] = combine(&pts[0], &pts[i], 0.5);
                    vals[i] = f(&pts[i]);
                }
            }
        }
    }
    let i = (0..=N)
        .min_by(|&a, &b| vals[a].total_cmp(&vals[b]))
        .expect("N + 1 points");
    pts[i]
}

/// Observations of every configuration of `rows` that `keep` accepts, limits at or above
/// [`LimitResponse::FIT_MIN_FRACTION`] of `max_limit_w`.
pub fn observations(
    rows: &[SweepRow],
    max_limit_w: f64,
    keep: impl Fn(&SweepRow) -> bool,
) -> Vec<Observation> {
    let (pairs, _) = paired(rows, max_limit_w, LimitResponse::FIT_MIN_FRACTION);
    pairs
        .iter()
        .filter(|(r, _)| keep(r))
        .map(|(r, top)| observation(r, top, max_limit_w))
        .collect()
}

/// The named built-in responses (`--response`, scenario `limit_response.builtin`).
pub const BUILTIN_RESPONSES: [(&str, LimitResponse); 5] = [
    ("default", LimitResponse::DEFAULT),
    ("resnet50", LimitResponse::RESNET50),
    ("bert-base", LimitResponse::BERT_BASE),
    ("fit-v100", LimitResponse::FIT_V100),
    ("fit-a40", LimitResponse::FIT_A40),
];

/// A built-in response by name (case-insensitive).
pub fn builtin_response(name: &str) -> Option<LimitResponse> {
    BUILTIN_RESPONSES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, r)| *r)
}

/// Fewest observations a scenario's measured fit needs: each gives two residuals (time and
/// power), so 4 give 8 for the response's five parameters (the Zeus sweeps have 4 limits from
/// 0.6 x max below the maximum).
pub const MIN_FIT_OBSERVATIONS: usize = 4;

/// Fits a response to the configurations of a sweep file with this dataset, network and batch
/// size (every optimizer), for a scenario's `[[models]] limit_response`.
pub fn fit_from_file(
    path: &Path,
    max_limit_w: f64,
    dataset: &str,
    network: &str,
    batch_size: u32,
) -> Result<LimitResponse, String> {
    let rows = read_sweep(path).map_err(|e| e.to_string())?;
    let obs = observations(&rows, max_limit_w, |r| {
        r.dataset == dataset && r.network == network && r.batch_size == batch_size
    });
    if obs.len() < MIN_FIT_OBSERVATIONS {
        return Err(format!(
            "{}: {} rows of ({dataset}, {network}, batch {batch_size}) at limits from {} x {max_limit_w} W up to (not including) the maximum, with a row at the maximum: at least {MIN_FIT_OBSERVATIONS} needed to fit the power-limit response",
            path.display(),
            obs.len(),
            LimitResponse::FIT_MIN_FRACTION
        ));
    }
    Ok(fit(&obs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str =
        "dataset,network,batch_size,optimizer,power_limit,time_per_epoch,average_power
d,n,32,sgd,100,10,90
d,n,32,sgd,80,11,75
d,n,32,sgd,60,13,58
e,n,32,sgd,80,11,75
";

    #[test]
    fn parses_and_pairs_with_the_maximum_row() {
        let rows = parse_sweep(SAMPLE, "s.csv").unwrap();
        assert_eq!(rows.len(), 4);
        let (pairs, missing) = paired(&rows, 100.0, 0.6);
        assert_eq!(pairs.len(), 2);
        assert_eq!(missing.len(), 1, "config e has no 100 W row");
        let v = validate(&LimitResponse::DEFAULT, &rows, 100.0, 0.7);
        assert_eq!(v.predicted.len(), 1);
        assert_eq!(v.configurations, 1);
        let j = v.to_json(5);
        assert_eq!(j["rows"], 1);
        assert!(j["worst"][0]["predicted_time"].as_f64().unwrap() > 10.0);
        assert_eq!(j["worst"][0]["power_limit"], 80.0);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse_sweep("a,b\n", "x.csv").unwrap_err().to_string();
        assert!(e.starts_with("x.csv:1: expected the header"), "{e}");
        let t = SAMPLE.replace("d,n,32,sgd,80,11,75", "d,n,32,sgd,80,NaN,75");
        let e = parse_sweep(&t, "x.csv").unwrap_err().to_string();
        assert!(e.starts_with("x.csv:3: time_per_epoch"), "{e}");
        let t = format!("{SAMPLE}d,n,32,sgd,60,1,1\n");
        let e = parse_sweep(&t, "x.csv").unwrap_err().to_string();
        assert!(
            e.contains("x.csv:6: same configuration and power limit as line 4"),
            "{e}"
        );
        let e = parse_sweep("dataset,network,batch_size,optimizer,power_limit,time_per_epoch,average_power\nd,n,0,s,1,1,1\n", "x.csv").unwrap_err().to_string();
        assert!(e.contains("x.csv:2: batch_size"), "{e}");
    }

    #[test]
    fn fit_recovers_a_known_response() {
        let truth = LimitResponse {
            capped_ratio: 0.9,
            sharpness: 8.0,
            speed_exponent: 0.3,
            knee_slope: 5.0,
            knee_fraction: 0.68,
        };
        let mut obs = Vec::new();
        for u in [0.5, 0.7, 0.8, 0.9] {
            for i in 0..9 {
                let x = 0.6 + 0.05 * i as f64;
                let (t, p) = truth.ratios(u, x);
                obs.push(Observation {
                    busy_fraction: u,
                    limit_fraction: x,
                    time_ratio: t,
                    power_ratio: p,
                });
            }
        }
        let r = fit(&obs);
        assert!(loss(&r, &obs) < 1e-6, "{r:?}");
        assert!((r.capped_ratio - 0.9).abs() < 0.01, "{r:?}");
        assert!((r.speed_exponent - 0.3).abs() < 0.02, "{r:?}");
    }

    #[test]
    fn round4_keeps_four_significant_digits() {
        assert_eq!(round4(0.816_249), 0.8162);
        assert_eq!(round4(7.38549), 7.385);
        assert_eq!(round4(10.0), 10.0);
    }
}

// ------------------------------------------------------------------------------------------
// `eas-sim validate`.

/// `eas-sim validate`: how far the simulator's power-limit model is from a measured sweep.
#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Sweep CSV (`dataset,network,batch_size,optimizer,power_limit,time_per_epoch,
    /// average_power`), e.g. sim/calibration/zeus-nsdi23/summary_power_a40.csv.
    #[arg(long, value_name = "FILE.csv")]
    pub measured: std::path::PathBuf,
    /// The GPU's maximum power limit, W: each configuration's row at this limit is the model's
    /// input (busy power and speed).
    #[arg(long, value_name = "W")]
    pub max_limit_w: f64,
    /// Predict rows at limits from this fraction of the maximum up.
    #[arg(long, default_value_t = LimitResponse::FIT_MIN_FRACTION)]
    pub min_fraction: f64,
    /// Write `{"rows", "configurations", "mape_pct", "worst"}` as JSON.
    #[arg(long, value_name = "OUT")]
    pub json: Option<std::path::PathBuf>,
    /// Which committed response to check: default, resnet50, bert-base, fit-v100 (fitted on the
    /// V100 file only) or fit-a40 (the A40 file only).
    #[arg(long, default_value = "default")]
    pub response: String,
    /// Rows listed under "worst" in the JSON.
    #[arg(long, default_value_t = 10)]
    pub worst: usize,
}

/// Runs `eas-sim validate`: prints the per-configuration tables and MAPEs, writes the JSON.
pub fn run(a: &ValidateArgs) -> anyhow::Result<()> {
    use anyhow::{bail, Context};
    if !(a.max_limit_w > 0.0 && a.max_limit_w.is_finite()) {
        bail!(
            "--max-limit-w: expected a positive number of watts, got {}",
            a.max_limit_w
        );
    }
    if !(a.min_fraction > 0.0 && a.min_fraction <= 1.0) {
        bail!(
            "--min-fraction: expected a fraction in (0, 1], got {}",
            a.min_fraction
        );
    }
    let Some(response) = builtin_response(&a.response) else {
        let names: Vec<&str> = BUILTIN_RESPONSES.iter().map(|(n, _)| *n).collect();
        bail!(
            "--response: unknown {:?}: expected one of {}",
            a.response,
            names.join(", ")
        );
    };
    // The output is opened before any work, so a bad path fails first.
    let out = match &a.json {
        Some(p) => Some((
            p,
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    let rows = read_sweep(&a.measured)?;
    let v = validate(&response, &rows, a.max_limit_w, a.min_fraction);
    if v.predicted.is_empty() {
        bail!(
            "{}: no row to predict: need configurations with a row at {} W and rows at {} x {} W or above",
            a.measured.display(),
            a.max_limit_w,
            a.min_fraction,
            a.max_limit_w
        );
    }
    println!(
        "{}: response {} {:?}, limits >= {} x {} W",
        a.measured.display(),
        a.response,
        response,
        a.min_fraction,
        a.max_limit_w
    );
    print!("{}", v.text());
    if let Some((p, f)) = out {
        let mut w = std::io::BufWriter::new(f);
        serde_json::to_writer_pretty(&mut w, &v.to_json(a.worst))
            .with_context(|| format!("writing {}", p.display()))?;
        std::io::Write::write_all(&mut w, b"\n")
            .and_then(|()| std::io::Write::flush(&mut w))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
