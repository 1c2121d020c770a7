//! Sweeps across machines: `compare --shard I/N` runs the I-th of N disjoint slices of a
//! comparison's runs and writes a shard result; `merge-results` puts the shards back together
//! into exactly the document the unsharded `compare --json` writes.
//!
//! Run `idx` of a comparison is policy `idx / seeds` on seed `idx % seeds`; shard `I` of `N`
//! holds the runs with `idx % N == I` (round robin, so every shard gets a share of every policy
//! and the shards take about the same time). A run's results depend only on the scenario, the
//! policy and the seed, so the merged runs are those of the unsharded comparison, aggregated by
//! the same function ([`PolicySummary::of`]) in the same order: the JSON is byte-identical.
//!
//! A shard result names everything its runs depend on (program version, scenario fingerprint,
//! policies, seeds, shard count), so merging refuses shards of different sweeps, and says which
//! shards are missing or given twice.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use ea2p_core::policy::PolicyKind;
use serde::{Deserialize, Serialize};

use crate::public_trace::SharedTally;
use crate::results::{Comparison, PolicySummary, RunResult};
use crate::scenario::Scenario;
use crate::sim::SimError;

/// The `format` field of a shard result.
pub const SHARD_FORMAT: &str = "eas-sim shard";

/// Largest shard result `merge-results` reads (about a kilobyte a run: 256 Ki runs).
pub const MAX_SHARD_BYTES: u64 = 256 << 20;

/// One slice of a comparison: `index` of `count` (0-based, as `SLURM_ARRAY_TASK_ID` with
/// `--array=0-(N-1)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which slice, `0..count`.
    pub index: u32,
    /// How many slices.
    pub count: u32,
}

/// Why `I/N` is not a shard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shard {text:?}: expected I/N with N >= 1 and 0 <= I < N (e.g. 0/4), {why}")]
pub struct ShardParseError {
    text: String,
    why: &'static str,
}

impl FromStr for Shard {
    type Err = ShardParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why| ShardParseError {
            text: s.to_string(),
            why,
        };
        let (i, n) = s.split_once('/').ok_or_else(|| bad("found no '/'"))?;
        let index: u32 = i.trim().parse().map_err(|_| bad("I is not a number"))?;
        let count: u32 = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        if count == 0 {
            return Err(bad("N is 0"));
        }
        if index >= count {
            return Err(bad("I is not below N"));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The run numbers of this slice of a grid of `total` runs, in increasing order.
    pub fn indices(self, total: usize) -> Vec<usize> {
        (self.index as usize..total)
            .step_by(self.count as usize)
            .collect()
    }
}

/// One run of a shard result, with its number in the comparison's grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRun {
    /// Run number: policy `index / seeds`, seed `index % seeds`.
    pub index: usize,
    /// The run's results, as `--runs-json` writes them.
    pub result: RunResult,
}

/// What `compare --shard I/N --json FILE` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardFile {
    /// Always [`SHARD_FORMAT`].
    pub format: String,
    /// Version of the eas-sim that ran it (results may differ between versions).
    pub eas_sim_version: String,
    /// Scenario name (the merged document's `scenario`).
    pub scenario: String,
    /// Fingerprint of the resolved scenario, overrides included ([`fingerprint`]).
    pub fingerprint: String,
    /// Policies compared, in the order asked.
    pub policies: Vec<String>,
    /// Seeds per policy.
    pub seeds: u32,
    /// This shard, `0..of`.
    pub shard: u32,
    /// Number of shards.
    pub of: u32,
    /// The shard's runs, by increasing `index`.
    pub runs: Vec<ShardRun>,
}

/// FNV-1a (64 bits) of the resolved scenario's `Debug` text: every field, overrides (`--hours`,
/// `--seeds`, faults and trace flags) included, so shards of different sweeps never merge.
pub fn fingerprint(sc: &Scenario) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{sc:?}").bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Runs the slice `shard` of the comparison of `policies` on `sc`.
pub fn run_shard(
    sc: &Scenario,
    policies: &[PolicyKind],
    shard: Shard,
    tick: &(dyn Fn() + Sync),
    tally: &SharedTally,
) -> Result<ShardFile, SimError> {
    let indices = shard.indices(policies.len() * sc.seeds as usize);
    let results = crate::run_indices(sc, policies, &indices, tick, tally)?;
    Ok(ShardFile {
        format: SHARD_FORMAT.to_string(),
        eas_sim_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: sc.name.clone(),
        fingerprint: fingerprint(sc),
        policies: policies.iter().map(|p| p.name().to_string()).collect(),
        seeds: sc.seeds,
        shard: shard.index,
        of: shard.count,
        runs: indices
            .into_iter()
            .zip(results)
            .map(|(index, result)| ShardRun { index, result })
            .collect(),
    })
}

/// Why shard results do not merge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// No file given.
    #[error("no shard result given")]
    NoFiles,
    /// A file could not be read or is not a shard result.
    #[error("{file}: {detail}")]
    Unreadable {
        /// The file.
        file: String,
        /// What went wrong.
        detail: String,
    },
    /// A file comes from another sweep than the first file.
    #[error("{file}: {field} is {found}, but {first} has {expected}: the shards come from different sweeps (same scenario, overrides, policies, seeds, shard count and eas-sim version needed)")]
    Mismatch {
        /// The file that differs.
        file: String,
        /// Which field.
        field: &'static str,
        /// Its value in the first file.
        expected: String,
        /// Its value in `file`.
        found: String,
        /// The first file.
        first: String,
    },
    /// The same shard given twice.
    #[error("shard {shard} is given twice: {a} and {b}")]
    Duplicate {
        /// The shard, `I/N`.
        shard: String,
        /// First file holding it.
        a: String,
        /// Second file holding it.
        b: String,
    },
    /// Shards missing.
    #[error("{} of {of} shards missing: {}", missing.len(), list(missing))]
    Missing {
        /// Shard count.
        of: u32,
        /// Missing shard indices.
        missing: Vec<u32>,
    },
    /// A file's runs are not those of its slice, or a run is not the one its number says.
    #[error("{file}: {detail}")]
    BadRuns {
        /// The file.
        file: String,
        /// What is wrong.
        detail: String,
    },
}

fn list(v: &[u32]) -> String {
    let shown: Vec<String> = v.iter().take(20).map(u32::to_string).collect();
    let more = if v.len() > 20 { ", ..." } else { "" };
    format!("{}{more}", shown.join(", "))
}

/// Reads a file of at most `limit` bytes as text: a FIFO, a device or a directory is refused
/// before any read, and a larger file after `limit + 1` bytes.
pub fn read_bounded(path: &Path, limit: u64) -> Result<String, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let meta = f.metadata().map_err(|e| format!("cannot stat: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".to_string());
    }
    let mut text = String::new();
    f.take(limit + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read as UTF-8 text: {e}"))?;
    if text.len() as u64 > limit {
        return Err(format!("larger than {limit} bytes: not a shard result"));
    }
    Ok(text)
}

/// Reads one shard result.
pub fn read_shard(path: &Path) -> Result<ShardFile, MergeError> {
    let file = path.display().to_string();
    let unreadable = |detail: String| MergeError::Unreadable {
        file: file.clone(),
        detail,
    };
    let text = read_bounded(path, MAX_SHARD_BYTES).map_err(unreadable)?;
    // The format tag first, so that another JSON document gets a message about what it is not.
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| unreadable(format!("not JSON: {e}")))?;
    if v.get("format").and_then(|f| f.as_str()) != Some(SHARD_FORMAT) {
        return Err(unreadable(format!(
            "not a shard result (expected \"format\": \"{SHARD_FORMAT}\", as `eas-sim compare --shard I/N --json FILE` writes)"
        )));
    }
    serde_json::from_str(&text).map_err(|e| unreadable(format!("malformed shard result: {e}")))
}

/// Everything a merge gives: the comparison (what unsharded `compare --json` writes) and every
/// run in (policy, seed) order (what `--runs-json` writes).
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// Per-policy summaries.
    pub comparison: Comparison,
    /// Every run, `[policy][seed]`.
    pub runs: Vec<Vec<RunResult>>,
}

/// Merges shard results `(file name, shard)`: each shard of the sweep exactly once.
pub fn merge(shards: &[(String, ShardFile)]) -> Result<Merged, MergeError> {
    let Some((first_name, first)) = shards.first() else {
        return Err(MergeError::NoFiles);
    };
    let mut holder: Vec<Option<&str>> = vec![None; first.of as usize];
    let seeds = first.seeds as usize;
    let total = first.policies.len() * seeds;
    let mut slots: Vec<Option<RunResult>> = vec![None; total];
    for (name, s) in shards {
        let mismatch = |field, expected: String, found: String| MergeError::Mismatch {
            file: name.clone(),
            field,
            expected,
            found,
            first: first_name.clone(),
        };
        let checks: [(&'static str, String, String); 6] = [
            (
                "eas_sim_version",
                first.eas_sim_version.clone(),
                s.eas_sim_version.clone(),
            ),
            ("scenario", first.scenario.clone(), s.scenario.clone()),
            (
                "fingerprint",
                first.fingerprint.clone(),
                s.fingerprint.clone(),
            ),
            ("policies", first.policies.join(","), s.policies.join(",")),
            ("seeds", first.seeds.to_string(), s.seeds.to_string()),
            (
                "of (the shard count)",
                first.of.to_string(),
                s.of.to_string(),
            ),
        ];
        for (field, expected, found) in checks {
            if expected != found {
                return Err(mismatch(field, expected, found));
            }
        }
        let bad = |detail: String| MergeError::BadRuns {
            file: name.clone(),
            detail,
        };
        let slot = holder.get_mut(s.shard as usize).ok_or_else(|| {
            bad(format!(
                "shard {} is not below the shard count {}",
                s.shard, s.of
            ))
        })?;
        if let Some(a) = slot {
            return Err(MergeError::Duplicate {
                shard: format!("{}/{}", s.shard, s.of),
                a: a.to_string(),
                b: name.clone(),
            });
        }
        *slot = Some(name);
        let expected = Shard {
            index: s.shard,
            count: s.of,
        }
        .indices(total);
        let got: Vec<usize> = s.runs.iter().map(|r| r.index).collect();
        if got != expected {
            return Err(bad(format!(
                "shard {}/{} should hold {} runs numbered {:?}, holds {} numbered {:?}",
                s.shard,
                s.of,
                expected.len(),
                expected,
                got.len(),
                got
            )));
        }
        for r in &s.runs {
            let (p, seed) = (r.index / seeds, r.index % seeds);
            if r.result.policy != first.policies[p] || r.result.run as usize != seed {
                return Err(bad(format!(
                    "run {} should be policy {} on seed {}, is policy {} on seed {}",
                    r.index, first.policies[p], seed, r.result.policy, r.result.run
                )));
            }
            slots[r.index] = Some(r.result.clone());
        }
    }
    let missing: Vec<u32> = (0..first.of)
        .filter(|&i| holder[i as usize].is_none())
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing {
            of: first.of,
            missing,
        });
    }
    let mut runs = vec![Vec::with_capacity(seeds); first.policies.len()];
    for (idx, r) in slots.into_iter().enumerate() {
        runs[idx / seeds].push(r.expect("every shard holds its slice, checked above"));
    }
    let policies = first
        .policies
        .iter()
        .zip(&runs)
        .map(|(p, r)| PolicySummary::of(p, r))
        .collect();
    Ok(Merged {
        comparison: Comparison {
            scenario: first.scenario.clone(),
            policies,
        },
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_syntax() {
        assert_eq!("2/7".parse::<Shard>(), Ok(Shard { index: 2, count: 7 }));
        for bad in ["7/7", "1/0", "x/3", "3", "-1/3", "1/"] {
            let e = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains("expected I/N"), "{bad}: {e}");
        }
    }

    #[test]
    fn slices_are_disjoint_and_cover_the_grid() {
        for n in 1..10u32 {
            let mut all: Vec<usize> = (0..n)
                .flat_map(|i| Shard { index: i, count: n }.indices(23))
                .collect();
            all.sort_unstable();
            assert_eq!(all, (0..23).collect::<Vec<_>>(), "{n} shards");
        }
    }
}
