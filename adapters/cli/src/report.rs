//! `ea2p report`: re-reads a profile, a damaged or cut one too, in one streaming pass (memory
//! does not grow with the file) through the core's fold, the one `ea2p run` used live:
//! per-component totals and anomalies, regions at their exact boundaries, the time each component
//! spent without readings, what damaged or missing bytes cost, a CSV timeline and an SVG plot.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ea2p_core::format::{
    self, ExitStatus, FrameSplitter, GapReason, Header, Record, SkipReason, MAX_FRAME_LEN,
};
use ea2p_core::source::Provenance;
use ea2p_core::units::{secs, Nanos};
use serde::Serialize;

use crate::discover::component_name;
use crate::summary::{RegionList, RunFold, Summary};

/// Points kept per source for the plot; beyond, every other point is dropped (the plotted power
/// is the average between kept points, so no energy disappears from the picture).
const PLOT_POINTS: usize = 4000;

/// What the profile lost: damaged stretches, a missing end, time without readings.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Lost {
    /// Damaged or partial stretches skipped.
    pub damaged_stretches: u64,
    /// Their bytes.
    pub skipped_bytes: u64,
    /// Time between the last reading before and the first after each damaged stretch, seconds.
    pub skipped_time_s: f64,
    /// True when the profile has no end record: the run was cut (crash, kill, full disk).
    pub cut: bool,
    /// Per component: gaps (runs of failed reads) and the time they left without readings.
    pub gaps: Vec<ComponentGaps>,
}

/// One component's gaps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentGaps {
    /// Component name.
    pub name: String,
    /// Runs of refused or failed readings.
    pub gaps: u64,
    /// Time from the last reading before each gap to the first after it (or the end), seconds.
    pub without_readings_s: f64,
    /// Why, as recorded (`read-error`, `counter-reset`...; counts and times are in the
    /// component's `anomalies`).
    pub reasons: Vec<String>,
}

/// A re-read profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileReport {
    /// The file.
    pub file: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// The command that was measured.
    pub command: String,
    /// Host name.
    pub host: String,
    /// Rank under MPI/Slurm.
    pub rank: Option<u32>,
    /// The same fields as `ea2p run --json`.
    #[serde(flatten)]
    pub summary: Summary,
    /// What was lost.
    pub lost: Lost,
}

/// What the plot and the CSV keep of one source.
struct PlotState {
    plot: Vec<(Nanos, f64)>,
    plot_stride: u64,
    samples: u64,
}

/// Options of `ea2p report`.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Write the summary as JSON here.
    pub json: Option<PathBuf>,
    /// Write the timeline as CSV here.
    pub csv: Option<PathBuf>,
    /// Draw power per component over time, regions shaded, as SVG here.
    pub plot: Option<PathBuf>,
}

/// Reads the profile at `file` and writes what `options` asks for.
///
/// Every intact record goes through the same [`RunFold`] that `ea2p run` fed as it wrote the
/// file, so an undamaged profile reports exactly the run's summary.
pub fn read_profile(file: &Path, options: &ReportOptions) -> Result<ProfileReport> {
    let flags = [
        ("--json", options.json.as_deref()),
        ("--csv", options.csv.as_deref()),
        ("--plot", options.plot.as_deref()),
    ];
    let outputs: Vec<(&str, &Path)> = flags
        .iter()
        .filter_map(|&(f, p)| p.map(|p| (f, p)))
        .collect();
    crate::outputs::check_distinct(&[("profile", file)], &outputs)?;
    crate::outputs::check_directories(&outputs)?;
    // Never blocks (a FIFO is refused, not waited on); a directory or a device is refused too.
    let mut f = ea2p_linux::bounded::open_regular(file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let bytes = f.metadata().map(|m| m.len()).unwrap_or(0);
    // Every output is created now, before the reading: a refused path costs nothing.
    let create = |p: &Path| {
        crate::private_file::create(p).with_context(|| format!("cannot create {}", p.display()))
    };
    let mut json_out = options.json.as_deref().map(create).transpose()?;
    let mut plot_out = options.plot.as_deref().map(create).transpose()?;
    let csv_out = options.csv.as_deref().map(create).transpose()?;
    let mut head = vec![0u8; 64 * 1024];
    let n =
        read_up_to(&mut f, &mut head).with_context(|| format!("cannot read {}", file.display()))?;
    let header: Header = format::probe(&head[..n]).map_err(|e| match e {
        format::ProbeError::UnsupportedVersion(v) => anyhow::anyhow!(
            "{}: an ea2p profile of format version {v}; this ea2p reads versions {} to {}",
            file.display(),
            format::MIN_READ_VERSION,
            format::VERSION
        ),
        e => anyhow::anyhow!("{}: not a readable ea2p profile: {e}", file.display()),
    })?;
    let csv_path = options.csv.clone().unwrap_or_default();
    let csv_context = || format!("cannot write {}", csv_path.display());
    let mut csv = match csv_out {
        Some(f) => {
            let mut w = csv::Writer::from_writer(BufWriter::new(f));
            w.write_record(["t_s", "component", "kind", "power_w", "energy_j"])
                .with_context(csv_context)?;
            Some(w)
        }
        None => None,
    };
    let mut fold = Box::new(RunFold::default());
    let mut regions = RegionList::default();
    let mut plots: BTreeMap<u16, PlotState> = BTreeMap::new();
    let mut names: BTreeMap<u16, (String, &'static str)> = BTreeMap::new();
    let mut lost = Lost::default();
    let mut last_t_any: Nanos = 0;
    let mut pending_skip: Option<Nanos> = None;
    let mut fold_errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut records = 0u64;
    let mut headers = 0u64;

    let mut buf = vec![0u8; MAX_FRAME_LEN];
    let mut splitter = FrameSplitter::new(&mut buf);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut first_chunk = Some(n);
    loop {
        let len = match first_chunk.take() {
            Some(n) => {
                chunk[..n].copy_from_slice(&head[..n]);
                n
            }
            None => f
                .read(&mut chunk)
                .with_context(|| format!("cannot read {}", file.display()))?,
        };
        let mut input = &chunk[..len];
        let mut items = Vec::new();
        while let Some(item) = splitter.next(&mut input) {
            items.push(item);
        }
        if len == 0 {
            items.extend(splitter.finish().map(Err));
        }
        for item in items {
            match item {
                Err(s) => {
                    lost.damaged_stretches += 1;
                    lost.skipped_bytes += s.len;
                    if s.reason != SkipReason::TruncatedTail {
                        pending_skip.get_or_insert(last_t_any);
                    }
                }
                Ok(record) => {
                    records += 1;
                    if let Record::Header(h) = &record {
                        headers += 1;
                        if headers > 1 {
                            anyhow::bail!(
                                "{}: holds more than one run: record {records} is the header of \
                                 another run (command {:?}), so two profiles were written into \
                                 one file (two `ea2p run -o` at once, or files concatenated); \
                                 a report of both would mix them. Keep one run per file",
                                file.display(),
                                h.command.as_str()
                            );
                        }
                    }
                    if let Err(e) = fold.handle(&record) {
                        *fold_errors.entry(e.to_string()).or_default() += 1;
                    }
                    while let Some(reg) = fold.poll_region() {
                        regions.push(&reg, None);
                    }
                    match &record {
                        Record::Source(d) => {
                            names.insert(
                                d.id,
                                (component_name(&d.info), d.info.provenance.as_str()),
                            );
                        }
                        Record::Sample(smp) => {
                            if let Some(from) = pending_skip.take() {
                                if smp.t_ns > from {
                                    lost.skipped_time_s += secs(smp.t_ns - from);
                                }
                            }
                            last_t_any = last_t_any.max(smp.t_ns);
                            timeline(smp, &names, &mut plots, &mut csv, options.plot.is_some())
                                .with_context(csv_context)?;
                        }
                        _ => {}
                    }
                }
            }
        }
        if len == 0 {
            break;
        }
    }
    if let Some(w) = csv.as_mut() {
        w.flush().with_context(csv_context)?;
    }
    fold.finish();
    while let Some(reg) = fold.poll_region() {
        regions.push(&reg, None);
    }
    lost.cut = fold.end().is_none();
    lost.gaps = fold
        .components()
        .iter()
        .filter(|c| c.has_anomalies())
        .map(|c| ComponentGaps {
            name: component_name(&c.info),
            gaps: c.gap_runs,
            without_readings_s: secs(c.without_readings_ns),
            reasons: GapReason::ALL
                .iter()
                .filter(|r| c.anomalies[r.index()].count > 0)
                .map(|r| r.as_str().to_string())
                .collect(),
        })
        .collect();
    let exit_code = fold.end().and_then(|e| match e.exit {
        ExitStatus::Code(c) => Some(c),
        ExitStatus::Signal(s) => Some(128 + s),
        ExitStatus::Unknown => None,
    });
    let summary = Summary::from_fold(
        &fold,
        regions,
        ea2p_core::metrics::DEFAULT_CARBON_INTENSITY_G_PER_KWH,
        exit_code,
    );
    let mut summary = summary;
    summary
        .notes
        .extend(crate::summary::fold_error_notes(fold_errors));
    let report = ProfileReport {
        file: file.to_path_buf(),
        bytes,
        command: header.command.to_string(),
        host: header.host.hostname.to_string(),
        rank: header.rank,
        summary,
        lost,
    };
    if let (Some(p), Some(f)) = (&options.json, json_out.as_mut()) {
        let text = serde_json::to_string_pretty(&report)? + "\n";
        f.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let (Some(p), Some(out)) = (&options.plot, plot_out.as_mut()) {
        let series: Vec<(String, &'static str, &PlotState)> = fold
            .components()
            .iter()
            .filter_map(|c| {
                let st = plots.get(&c.id)?;
                let (name, kind) = names.get(&c.id)?;
                Some((name.clone(), *kind, st))
            })
            .collect();
        plot(p, out, &series, &report)?;
    }
    Ok(report)
}

/// One sample into the CSV timeline and the plot's points.
fn timeline(
    smp: &format::Sample,
    names: &BTreeMap<u16, (String, &'static str)>,
    plots: &mut BTreeMap<u16, PlotState>,
    csv: &mut Option<csv::Writer<BufWriter<File>>>,
    keep_plot: bool,
) -> Result<()> {
    let Some((name, kind)) = names.get(&smp.source) else {
        return Ok(());
    };
    if keep_plot {
        let s = plots.entry(smp.source).or_insert(PlotState {
            plot: Vec::new(),
            plot_stride: 1,
            samples: 0,
        });
        s.samples += 1;
        if s.samples % s.plot_stride == 0 {
            s.plot.push((smp.t_ns, smp.energy_j));
        }
        if s.plot.len() > PLOT_POINTS {
            let kept: Vec<(Nanos, f64)> = s.plot.iter().copied().step_by(2).collect();
            s.plot = kept;
            s.plot_stride *= 2;
        }
    }
    if let Some(w) = csv.as_mut() {
        w.write_record([
            format!("{:.6}", secs(smp.t_ns)),
            name.clone(),
            kind.to_string(),
            format!("{:.3}", smp.power_w),
            format!("{:.6}", smp.energy_j),
        ])?;
    }
    Ok(())
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The report as text.
pub fn render(r: &ProfileReport) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "{}: {} bytes, command {:?} on {}{}\n",
        r.file.display(),
        r.bytes,
        r.command,
        r.host,
        r.rank.map_or(String::new(), |k| format!(", rank {k}"))
    );
    out += &r.summary.table();
    let l = &r.lost;
    for g in &l.gaps {
        let _ = writeln!(
            out,
            "{}: {} gap(s), {:.3} s without readings ({})",
            g.name,
            g.gaps,
            g.without_readings_s,
            g.reasons.join(", ")
        );
    }
    if l.cut {
        let _ = writeln!(
            out,
            "no end record: the run was cut at {:.3} s (crash, kill or full disk); figures are up to the last intact reading",
            r.summary.duration_s
        );
    } else {
        let _ = writeln!(
            out,
            "run ended normally (exit code {})",
            r.summary
                .exit_code
                .map_or("unknown".to_string(), |c| c.to_string())
        );
    }
    if l.damaged_stretches > 0 {
        let _ = writeln!(
            out,
            "{} damaged or partial stretch(es), {} bytes skipped, covering about {:.3} s of readings",
            l.damaged_stretches, l.skipped_bytes, l.skipped_time_s
        );
    }
    out
}

/// `ea2p report FILE`: the text report, and the files `options` asks for.
pub fn report(file: &Path, options: &ReportOptions) -> Result<String> {
    read_profile(file, options).map(|r| render(&r))
}

fn plot(
    path: &Path,
    out: &mut File,
    sources: &[(String, &'static str, &PlotState)],
    r: &ProfileReport,
) -> Result<()> {
    use plotters::prelude::*;
    let series: Vec<(String, Vec<(f64, f64)>)> = sources
        .iter()
        .map(|(name, kind, s)| {
            let pts = s
                .plot
                .windows(2)
                .filter(|w| w[1].0 > w[0].0)
                .map(|w| {
                    let dt = secs(w[1].0 - w[0].0);
                    (secs(w[1].0), ((w[1].1 - w[0].1) / dt).max(0.0))
                })
                .collect();
            let label = if *kind == Provenance::Estimated.as_str() {
                format!("{name} (estimated)")
            } else {
                name.clone()
            };
            (label, pts)
        })
        .collect();
    let t_end = r.summary.duration_s.max(1e-3);
    let p_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.1))
        .fold(1.0f64, f64::max)
        * 1.1;
    // Drawn in memory, then written through private_file (SVGBackend::new would create the
    // file with the umask's mode).
    let mut svg = String::new();
    let root = SVGBackend::with_string(&mut svg, (1000, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("power per component: {}", r.command),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..t_end, 0f64..p_max)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("power (W)")
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for (i, reg) in r.summary.regions.iter().enumerate() {
        let shade = Palette99::pick(i).mix(0.12);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(reg.start_s, 0.0), (reg.end_s, p_max)],
                shade.filled(),
            )))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .draw_series(std::iter::once(Text::new(
                reg.name.clone(),
                (reg.start_s, p_max * 0.97),
                ("sans-serif", 12),
            )))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    for (i, (label, pts)) in series.into_iter().enumerate() {
        let color = Palette99::pick(i + 3).to_rgba();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(chart);
    drop(root);
    out.write_all(svg.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
