//! The run's summary: the table `ea2p run` prints and the JSON scripts rely on.

use ea2p_core::metrics::{co2_grams, edp};
use ea2p_core::units::wh;
use serde::Serialize;

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
    /// Failed reads, each a gap in the series.
    pub read_errors: u64,
    /// For GPUs shared with other processes: the measured tree's part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_share: Option<GpuShare>,
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
}

impl Summary {
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
        }
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
                "(in pkg)".to_string()
            } else if self.total_j > 0.0 {
                format!("{:.1}%", 100.0 * c.energy_j / self.total_j)
            } else {
                "-".to_string()
            };
            t += &format!(
                "{:<11} {:<9} {:>12.3} {:>10.5} {:>9.2} {:>9.2} {:>7}\n",
                c.name,
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
            if c.read_errors > 0 {
                t += &format!(
                    "{:<11} ({} failed reads, marked as gaps)\n",
                    "", c.read_errors
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
        if !self.regions.is_empty() {
            t += &format!(
                "\n{:<24} {:>10} {:>10} {:>12}\n",
                "region", "start s", "end s", "energy J"
            );
            const SHOWN: usize = 20;
            for r in self.regions.iter().take(SHOWN) {
                t += &format!(
                    "{:<24} {:>10.3} {:>10.3} {:>12.3}\n",
                    r.name, r.start_s, r.end_s, r.energy_j
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
                self.regions_left_open.join(", ")
            );
        }
        t
    }
}
