//! `ea2p merge`: the profiles of the ranks of a parallel job, per rank, per node and in total.
//! A node's energy comes from the rank that read its counters (one per node, see
//! [`crate::launcher`]); ranks that only recorded their own run add their duration, regions and
//! exit code. A node measured by two ranks (two launches on one node) is counted once.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::report::{read_profile, ReportOptions};

/// One rank's profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankRow {
    /// Rank (from the profile header), when it ran under a launcher.
    pub rank: Option<u32>,
    /// Host.
    pub host: String,
    /// The profile.
    pub file: PathBuf,
    /// Seconds.
    pub duration_s: f64,
    /// The rank's exit code, when the run ended normally.
    pub exit_code: Option<i32>,
    /// True when this rank read the node's counters.
    pub measured_node: bool,
    /// Energy its profile holds (the node's, for the measuring rank), joules.
    pub energy_j: f64,
    /// Regions it marked.
    pub regions: usize,
    /// The profile was cut (crash, kill).
    pub cut: bool,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeRow {
    /// Host.
    pub host: String,
    /// Ranks that ran there.
    pub ranks: Vec<Option<u32>>,
    /// The node's energy, joules (from its measuring rank).
    pub energy_j: f64,
    /// Per component (package-0, gpu-1...), joules.
    pub components: BTreeMap<String, f64>,
    /// Longest rank duration on the node, seconds.
    pub duration_s: f64,
}

/// The merged breakdown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Merged {
    /// Per rank, by rank.
    pub ranks: Vec<RankRow>,
    /// Per node, by host.
    pub nodes: Vec<NodeRow>,
    /// Sum over nodes, joules.
    pub total_j: f64,
    /// Longest duration, seconds.
    pub duration_s: f64,
    /// Things to know (nodes measured twice, cut profiles), one sentence each.
    pub notes: Vec<String>,
}

/// Reads every profile and merges them.
pub fn merge(files: &[PathBuf]) -> Result<Merged> {
    let mut ranks = Vec::new();
    let mut nodes: BTreeMap<String, NodeRow> = BTreeMap::new();
    let mut notes = Vec::new();
    for file in files {
        let r = read_profile(file, &ReportOptions::default())?;
        let measured = !r.summary.components.is_empty();
        let node = nodes.entry(r.host.clone()).or_insert_with(|| NodeRow {
            host: r.host.clone(),
            ranks: Vec::new(),
            energy_j: 0.0,
            components: BTreeMap::new(),
            duration_s: 0.0,
        });
        node.ranks.push(r.rank);
        node.duration_s = node.duration_s.max(r.summary.duration_s);
        if measured {
            if node.components.is_empty() {
                node.energy_j = r.summary.total_j;
                for c in &r.summary.components {
                    node.components.insert(c.name.clone(), c.energy_j);
                }
            } else {
                notes.push(format!(
                    "{}: node {} was already measured by another rank; counted once",
                    file.display(),
                    r.host
                ));
            }
        }
        if r.lost.cut {
            notes.push(format!(
                "{}: the run was cut at {:.3} s; its figures stop there",
                file.display(),
                r.summary.duration_s
            ));
        }
        ranks.push(RankRow {
            rank: r.rank,
            host: r.host.clone(),
            file: file.clone(),
            duration_s: r.summary.duration_s,
            exit_code: r.summary.exit_code,
            measured_node: measured,
            energy_j: r.summary.total_j,
            regions: r.summary.regions.len(),
            cut: r.lost.cut,
        });
    }
    ranks.sort_by(|a, b| (a.rank, &a.host, &a.file).cmp(&(b.rank, &b.host, &b.file)));
    let nodes: Vec<NodeRow> = nodes.into_values().collect();
    for n in nodes.iter().filter(|n| n.components.is_empty()) {
        notes.push(format!(
            "node {}: no rank measured its counters (run one rank per node with local rank 0)",
            n.host
        ));
    }
    Ok(Merged {
        total_j: nodes.iter().map(|n| n.energy_j).sum(),
        duration_s: nodes.iter().map(|n| n.duration_s).fold(0.0, f64::max),
        ranks,
        nodes,
        notes,
    })
}

/// The merged breakdown as text.
pub fn render(m: &Merged) -> String {
    let mut out = format!(
        "{:<6} {:<16} {:>10} {:>6} {:>14} {:>8}  profile\n",
        "rank", "host", "duration s", "exit", "energy J", "regions"
    );
    for r in &m.ranks {
        let _ = writeln!(
            out,
            "{:<6} {:<16} {:>10.3} {:>6} {:>14} {:>8}  {}{}",
            r.rank.map_or("-".to_string(), |k| k.to_string()),
            r.host,
            r.duration_s,
            r.exit_code.map_or("-".to_string(), |c| c.to_string()),
            if r.measured_node {
                format!("{:.3}", r.energy_j)
            } else {
                "(process)".to_string()
            },
            r.regions,
            r.file.display(),
            if r.cut { " (cut)" } else { "" }
        );
    }
    let _ = writeln!(
        out,
        "\n{:<16} {:>8} {:>14}  components",
        "node", "ranks", "energy J"
    );
    for n in &m.nodes {
        let comps: Vec<String> = n
            .components
            .iter()
            .map(|(k, v)| format!("{k} {v:.1}"))
            .collect();
        let _ = writeln!(
            out,
            "{:<16} {:>8} {:>14.3}  {}",
            n.host,
            n.ranks.len(),
            n.energy_j,
            comps.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "\ntotal {:.3} J ({:.5} kWh) over {} node(s), {} rank(s), {:.3} s",
        m.total_j,
        m.total_j / 3.6e6,
        m.nodes.len(),
        m.ranks.len(),
        m.duration_s
    );
    for n in &m.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

/// `ea2p merge FILES [--json F]`.
pub fn merge_files(files: &[PathBuf], json: Option<&Path>) -> Result<String> {
    let m = merge(files)?;
    if let Some(p) = json {
        let text = serde_json::to_string_pretty(&m)? + "\n";
        crate::private_file::write(p, text.as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display()))?;
    }
    Ok(render(&m))
}
