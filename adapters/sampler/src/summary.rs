//! The run's summary: the table `ea2p run` prints and the JSON scripts rely on.

use std::collections::BTreeMap;

use ea2p_core::fold::{ComponentFold, Fold, RegionEnergy};
use ea2p_core::format::GapReason;
use ea2p_core::metrics::{co2_grams, edp};
use ea2p_core::units::{secs, wh};
use serde::Serialize;

use ea2p_core::attribution::IdleBasis;

pub use crate::attribute::{AttributedEnergy, AttributionInfo};
use crate::discover::component_name;

/// Sources a run measures at most (a two-socket machine with eight GPUs and the estimators uses
/// about 25); further ones are noted and not read.
pub const MAX_SOURCES: usize = 48;
/// Regions open at once (or ended and waiting for the readings that place their end); more are
/// noted and not measured.
pub const MAX_OPEN_REGIONS: usize = 64;
/// The fold that both `ea2p run` and `ea2p report` use.
pub type RunFold = Fold<MAX_SOURCES, MAX_OPEN_REGIONS>;
/// A region measured by [`RunFold`].
pub type RunRegion = RegionEnergy<MAX_SOURCES>;

/// Readings of one reason that were refused or failed, and the time they left without a valid
/// reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Anomaly {
    /// Readings.
    pub count: u64,
    /// Seconds covered (overlaps counted once).
    pub covered_s: f64,
}

/// The measured process tree's share of one GPU's energy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuShare {
    /// In `[0, 1]`.
    pub fraction: f64,
    /// What it was computed from: `sm-utilisation`, `memory` or `exclusive`.
    pub basis: &'static str,
    /// `fraction` x the GPU's energy, joules.
    pub energy_j: f64,
}

/// One component over the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentSummary {
    /// `package-N`, `core-N`, `uncore-N`, `dram-N`, `psys`, `cpu`, `ram`, `gpu-N`.
    pub name: String,
    /// `measured` or `estimated`.
    pub kind: &'static str,
    /// What was read.
    pub source: String,
    /// Joules.
    pub energy_j: f64,
    /// Watts, over the time it was read.
    pub avg_w: f64,
    /// Watts.
    pub peak_w: f64,
    /// Contained in another component (cores, uncore in their package): not in the total.
    pub nested: bool,
    /// The window peak power is taken over (at least 10 ms and the source's update period;
    /// the run's span when shorter), seconds.
    pub peak_window_s: f64,
    /// Readings not used: failed reads and refused values, each a gap in the profile.
    pub read_errors: u64,
    /// `read_errors` by reason (`read-error`, `counter-reset`, `implausible-delta`,
    /// `out-of-range`...), with the time each covered.
    pub anomalies: BTreeMap<&'static str, Anomaly>,
    /// Time from the start of each run of gaps to the next valid reading, seconds.
    pub without_readings_s: f64,
    /// Counter wraps handled (exact, not anomalies).
    pub wraps: u64,
    /// Samples read.
    pub samples: u64,
    /// For GPUs shared with other processes: the measured tree's part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_share: Option<GpuShare>,
    /// For CPU and memory components shared with other processes: the command's part,
    /// attributed (see [`crate::attribute`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributed: Option<AttributedEnergy>,
}

/// One ended region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionSummary {
    /// Its name.
    pub name: String,
    /// Seconds since the start.
    pub start_s: f64,
    /// Seconds since the start.
    pub end_s: f64,
    /// Joules, all components that are not nested.
    pub energy_j: f64,
    /// Of which attributed to the command: CPU and memory components that are not nested, each
    /// at its share over the attribution intervals between the region's markers (GPUs: not
    /// included; their share is over the run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributed_j: Option<f64>,
}

/// The summary of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Seconds.
    pub duration_s: f64,
    /// Joules over the components that are not nested in another.
    pub total_j: f64,
    /// Energy-delay product, J·s.
    pub edp_js: f64,
    /// Grams of CO2e at `carbon_intensity_g_per_kwh`.
    pub co2_g: f64,
    /// The grid intensity used.
    pub carbon_intensity_g_per_kwh: f64,
    /// The measured command's exit code (128 + signal when killed); none without a command.
    pub exit_code: Option<i32>,
    /// Per component.
    pub components: Vec<ComponentSummary>,
    /// Regions, in the order they ended.
    pub regions: Vec<RegionSummary>,
    /// Regions ended beyond the number kept in `regions` (they are all in the profile).
    pub regions_not_listed: u64,
    /// Regions begun and never ended.
    pub regions_left_open: Vec<String>,
    /// How the command's shares were attributed (none with `--attribute none` and in replays).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution: Option<AttributionInfo>,
    /// What the run noted on the way (names cut, regions or sources beyond capacity).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl ComponentSummary {
    /// One component's figures from the fold.
    pub fn from_fold(c: &ComponentFold) -> Self {
        let anomalies = GapReason::ALL
            .iter()
            .map(|r| (r.as_str(), c.anomalies[r.index()]))
            .filter(|(_, t)| t.count > 0)
            .map(|(k, t)| {
                (
                    k,
                    Anomaly {
                        count: t.count,
                        covered_s: secs(t.covered_ns),
                    },
                )
            })
            .collect();
        ComponentSummary {
            name: component_name(&c.info),
            kind: c.info.provenance.as_str(),
            source: c.info.name.to_string(),
            energy_j: c.energy_j,
            avg_w: c.avg_w(),
            peak_w: c.peak_w,
            nested: c.info.component.is_nested(),
            peak_window_s: secs(c.peak_window_ns),
            read_errors: c.refused(),
            anomalies,
            without_readings_s: secs(c.without_readings_ns),
            wraps: c.wraps,
            samples: c.samples,
            process_share: None,
            attributed: None,
        }
    }
}

impl RegionSummary {
    /// A region measured by the fold.
    pub fn from_fold(r: &RunRegion) -> Self {
        RegionSummary {
            name: r.name.to_string(),
            start_s: secs(r.begin_t),
            end_s: secs(r.end_t),
            energy_j: r.total_j,
            attributed_j: None,
        }
    }
}

/// Regions kept in a summary; later ones are counted in `regions_not_listed` (they are all in
/// the profile), so a loop of millions of regions cannot grow memory.
pub const MAX_REGIONS_IN_SUMMARY: usize = 10_000;

/// Collects the fold's regions for a summary, as they are measured.
#[derive(Debug, Clone, Default)]
pub struct RegionList {
    /// Kept regions, in the order they were measured.
    pub kept: Vec<RegionSummary>,
    /// Regions beyond [`MAX_REGIONS_IN_SUMMARY`].
    pub not_kept: u64,
}

impl RegionList {
    /// Adds one measured region.
    pub fn push(&mut self, r: &RunRegion, attributed_j: Option<f64>) {
        if self.kept.len() < MAX_REGIONS_IN_SUMMARY {
            self.kept.push(RegionSummary {
                attributed_j,
                ..RegionSummary::from_fold(r)
            });
        } else {
            self.not_kept += 1;
        }
    }
}

impl Summary {
    /// The summary of a finished fold: the one place where live runs and replays become the
    /// figures a user reads.
    pub fn from_fold(
        fold: &RunFold,
        regions: RegionList,
        carbon_intensity: f64,
        exit_code: Option<i32>,
    ) -> Self {
        let components = fold
            .components()
            .iter()
            .map(ComponentSummary::from_fold)
            .collect();
        let not_listed = regions.not_kept + fold.regions_dropped();
        Summary::new(
            secs(fold.duration_ns()),
            components,
            regions.kept,
            not_listed,
            fold.open_regions().map(str::to_string).collect(),
            carbon_intensity,
            exit_code,
        )
    }

    /// Totals and derived metrics from the components.
    pub fn new(
        duration_s: f64,
        components: Vec<ComponentSummary>,
        regions: Vec<RegionSummary>,
        regions_not_listed: u64,
        regions_left_open: Vec<String>,
        carbon_intensity: f64,
        exit_code: Option<i32>,
    ) -> Self {
        let total_j = components
            .iter()
            .filter(|c| !c.nested)
            .map(|c| c.energy_j)
            .sum();
        Summary {
            duration_s,
            total_j,
            edp_js: edp(total_j, duration_s),
            co2_g: co2_grams(total_j, carbon_intensity),
            carbon_intensity_g_per_kwh: carbon_intensity,
            exit_code,
            components,
            regions,
            regions_not_listed,
            regions_left_open,
            attribution: None,
            notes: Vec::new(),
        }
    }

    /// This summary without what only a live run can give (the attribution, which needs the
    /// CPU-time counters the profile does not hold, and the GPUs' process shares): what
    /// `ea2p report` of the run's profile gives, exactly.
    pub fn replayable(&self) -> Summary {
        let mut s = self.clone();
        s.attribution = None;
        for c in &mut s.components {
            c.attributed = None;
            c.process_share = None;
        }
        for r in &mut s.regions {
            r.attributed_j = None;
        }
        s
    }

    /// The table `ea2p run` prints.
    pub fn table(&self) -> String {
        let mut t = format!(
            "\n{:<11} {:<9} {:>12} {:>10} {:>9} {:>9} {:>7}\n",
            "component", "kind", "energy J", "Wh", "avg W", "peak W", "share"
        );
        if self.components.is_empty() {
            t += "(no source could be read: nothing was measured; `ea2p sources` says why)\n";
        }
        for c in &self.components {
            let share = if c.nested {
                "(not summed)".to_string()
            } else if self.total_j > 0.0 {
                format!("{:.1}%", 100.0 * c.energy_j / self.total_j)
            } else {
                "-".to_string()
            };
            // A component with anomalies is marked, and its anomalies listed under it.
            let name = if c.read_errors > 0 {
                format!("{}!", c.name)
            } else {
                c.name.clone()
            };
            t += &format!(
                "{:<11} {:<9} {:>12.3} {:>10.5} {:>9.2} {:>9.2} {:>7}\n",
                name,
                c.kind,
                c.energy_j,
                wh(c.energy_j),
                c.avg_w,
                c.peak_w,
                share
            );
            if let Some(s) = &c.process_share {
                t += &format!(
                    "{:<11} of which this command: {:.3} J ({:.1}%, by {})\n",
                    "",
                    s.energy_j,
                    100.0 * s.fraction,
                    s.basis
                );
            }
            if let Some(a) = &c.attributed {
                t += &format!(
                    "{:<11} of which this command: {:.3} J ({:.1}%, by {}; attributed)\n",
                    "",
                    a.energy_j,
                    100.0 * a.share,
                    match (a.method, a.idle_basis) {
                        ("cpu-time", Some(IdleBasis::Allocation)) =>
                            "CPU time, idle part by allocated CPUs",
                        ("cpu-time", _) => "CPU time",
                        (m, _) => m,
                    }
                );
            }
            if c.read_errors > 0 {
                let what: Vec<String> = c
                    .anomalies
                    .iter()
                    .map(|(k, a)| format!("{} {k} ({:.3} s)", a.count, a.covered_s))
                    .collect();
                t += &format!(
                    "{:<11} ! {} readings not used, marked as gaps: {}; {:.3} s without valid readings\n",
                    "",
                    c.read_errors,
                    what.join(", "),
                    c.without_readings_s
                );
            }
        }
        if let Some(w) = self
            .components
            .iter()
            .map(|c| c.peak_window_s)
            .reduce(f64::min)
        {
            let longest = self
                .components
                .iter()
                .map(|c| c.peak_window_s)
                .fold(w, f64::max);
            if longest > w {
                t += &format!(
                    "peak W: highest average over windows of {:.0} to {:.0} ms (at least 10 ms and each source's update period)\n",
                    w * 1e3,
                    longest * 1e3
                );
            } else {
                t += &format!(
                    "peak W: highest average over {:.0} ms windows (at least 10 ms and each source's update period)\n",
                    w * 1e3
                );
            }
        }
        t += &format!(
            "duration {:.3} s, total {:.3} J ({:.5} Wh), EDP {:.3} J·s, CO2 {:.4} g at {} g/kWh\n",
            self.duration_s,
            self.total_j,
            wh(self.total_j),
            self.edp_js,
            self.co2_g,
            self.carbon_intensity_g_per_kwh
        );
        if let Some(a) = &self.attribution {
            t += &format!(
                "attributed: the command's share ({}) of each shared component: idle part ({}) by allocation or CPU time, the rest by CPU time, memory by resident share; over {:.1} s{}\n",
                a.of,
                a.idle_power_from,
                a.covered_s,
                a.note.as_deref().map(|n| format!("; {n}")).unwrap_or_default()
            );
        }
        if !self.regions.is_empty() {
            t += &format!(
                "\n{:<24} {:>10} {:>10} {:>12}\n",
                "region", "start s", "end s", "energy J"
            );
            const SHOWN: usize = 20;
            for r in self.regions.iter().take(SHOWN) {
                t += &format!(
                    "{:<24} {:>10.3} {:>10.3} {:>12.3}{}\n",
                    printable(&r.name),
                    r.start_s,
                    r.end_s,
                    r.energy_j,
                    r.attributed_j
                        .map(|a| format!("  (this command: {a:.3} J, attributed)"))
                        .unwrap_or_default()
                );
            }
            let more = (self.regions.len().saturating_sub(SHOWN)) as u64 + self.regions_not_listed;
            if more > 0 {
                t += &format!("(and {more} more regions: see --json or `ea2p report`)\n");
            }
        }
        if !self.regions_left_open.is_empty() {
            t += &format!(
                "regions begun and never ended: {}\n",
                printable(&self.regions_left_open.join(", "))
            );
        }
        for n in &self.notes {
            t += &format!("note: {}\n", printable(n));
        }
        t
    }
}

/// The notes for records the fold could not take whole (by message, with their count): the same
/// words in `ea2p run` and in `ea2p report`.
pub fn fold_error_notes(errors: BTreeMap<String, u64>) -> impl Iterator<Item = String> {
    errors
        .into_iter()
        .map(|(what, n)| format!("{n} records not taken whole: {what} (counted, not measured)"))
}

/// `s` with what a terminal would interpret (control characters: escape sequences, carriage
/// returns, backspaces; bidirectional overrides) written as `\u{..}` escapes; other text as is.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let hostile = |c: char| {
        c.is_control()
            || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(hostile) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hostile(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}
