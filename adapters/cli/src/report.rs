//! `ea2p report`: re-reads a profile, a damaged or cut one too, in one streaming pass (memory
//! does not grow with the file): per-component totals, regions recomputed at their exact
//! boundaries from the readings around them, the time each component spent without readings,
//! what damaged or missing bytes cost, a CSV timeline and an SVG plot.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ea2p_core::format::{
    self, ExitStatus, FrameSplitter, Header, MarkerKind, Record, SkipReason, MAX_FRAME_LEN,
};
use ea2p_core::integrate::{energy_at, EnergyPoint, SeriesKind};
use ea2p_core::source::{Provenance, SourceInfo};
use ea2p_core::units::{secs, Nanos};
use serde::Serialize;

use crate::discover::component_name;
use crate::summary::{ComponentSummary, RegionSummary, Summary};

/// Readings kept per source to place a region boundary that arrives after later readings (the
/// sampler writes a boundary microseconds after it happens).
const RECENT: usize = 64;

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
    /// Runs of failed reads.
    pub gaps: u64,
    /// Time from the last reading before each gap to the first after it (or the end), seconds.
    pub without_readings_s: f64,
    /// Why, as recorded (`ReadError(Gone)`...).
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

struct SourceState {
    info: SourceInfo,
    name: String,
    kind: SeriesKind,
    recent: VecDeque<EnergyPoint>,
    first: Option<EnergyPoint>,
    last: Option<EnergyPoint>,
    peak_w: f64,
    samples: u64,
    /// Boundaries not yet placed: (region key, begin?, t).
    pending: Vec<(usize, bool, Nanos)>,
    gap_open_from: Option<Nanos>,
    gap_last_to: Nanos,
    gaps: u64,
    gap_ns: Nanos,
    gap_reasons: Vec<String>,
    plot: Vec<(Nanos, f64)>,
    plot_stride: u64,
    total: Option<format::SourceTotal>,
}

impl SourceState {
    fn energy_at(&self, t: Nanos) -> f64 {
        let (Some(first), Some(last)) = (self.recent.front(), self.recent.back()) else {
            return 0.0;
        };
        if t <= first.t {
            // Before the oldest kept reading: the series' start if that is where t falls.
            return if self.first.is_some_and(|f| t <= f.t) {
                self.first.map_or(0.0, |f| f.energy_j)
            } else {
                first.energy_j
            };
        }
        if t >= last.t {
            return last.energy_j;
        }
        let (a, b) = self.recent.as_slices();
        let points: Vec<EnergyPoint> = a.iter().chain(b).copied().collect();
        energy_at(&points, self.kind, t).unwrap_or(last.energy_j)
    }
}

struct RegionState {
    name: String,
    begin_t: Nanos,
    end_t: Option<Nanos>,
    /// Per source: energy at begin, at end.
    at: Vec<(Option<f64>, Option<f64>)>,
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
pub fn read_profile(file: &Path, options: &ReportOptions) -> Result<ProfileReport> {
    let mut f = File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let bytes = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut head = vec![0u8; 64 * 1024];
    let n =
        read_up_to(&mut f, &mut head).with_context(|| format!("cannot read {}", file.display()))?;
    let header: Header = format::probe(&head[..n])
        .map_err(|e| anyhow::anyhow!("{}: not a readable ea2p profile: {e:?}", file.display()))?;
    let mut csv = match &options.csv {
        Some(p) => {
            let mut w = csv::Writer::from_writer(BufWriter::new(
                crate::private_file::create(p)
                    .with_context(|| format!("cannot create {}", p.display()))?,
            ));
            w.write_record(["t_s", "component", "kind", "power_w", "energy_j"])?;
            Some(w)
        }
        None => None,
    };
    let mut sources: BTreeMap<u16, SourceState> = BTreeMap::new();
    let mut regions: Vec<RegionState> = Vec::new();
    let mut open_regions: BTreeMap<u32, usize> = BTreeMap::new();
    let mut lost = Lost::default();
    let mut end = None;
    let (mut t_max, mut last_t_any): (Nanos, Nanos) = (0, 0);
    let mut pending_skip: Option<Nanos> = None;

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
                    handle(
                        record,
                        &mut sources,
                        &mut regions,
                        &mut open_regions,
                        &mut end,
                        &mut csv,
                        options.plot.is_some(),
                        &mut t_max,
                        &mut last_t_any,
                        &mut pending_skip,
                        &mut lost,
                    )?;
                }
            }
        }
        if len == 0 {
            break;
        }
    }
    if let Some(w) = csv.as_mut() {
        w.flush()?;
    }
    lost.cut = end.is_none();
    let duration_ns = end.map_or(t_max, |e: format::End| e.t_ns.max(t_max));

    // Boundaries after a source's last reading take its last energy; a source declared after a
    // boundary had nothing before it.
    for (pos, s) in sources.values_mut().enumerate() {
        let last_e = s.last.map_or(0.0, |p| p.energy_j);
        for (key, is_begin, _) in s.pending.drain(..) {
            let at = &mut regions[key].at[pos];
            if is_begin {
                at.0 = Some(last_e);
            } else {
                at.1 = Some(last_e);
            }
        }
        for r in regions.iter_mut() {
            let at = &mut r.at[pos];
            at.0.get_or_insert(0.0);
            if r.end_t.is_some() {
                at.1.get_or_insert(last_e);
            }
        }
    }
    for s in sources.values_mut() {
        if let Some(from) = s.gap_open_from.take() {
            s.gaps += 1;
            s.gap_ns += duration_ns.max(s.gap_last_to).saturating_sub(from);
        }
    }

    let components: Vec<ComponentSummary> = sources
        .values()
        .map(|s| {
            let e = s
                .total
                .map_or(s.last.map_or(0.0, |p| p.energy_j), |t| t.energy_j);
            let span = match (s.first, s.last) {
                (Some(a), Some(b)) if b.t > a.t => secs(b.t - a.t),
                _ => 0.0,
            };
            ComponentSummary {
                name: s.name.clone(),
                kind: s.info.provenance.as_str(),
                source: s.info.name.to_string(),
                energy_j: e,
                avg_w: s
                    .total
                    .map_or(if span > 0.0 { e / span } else { 0.0 }, |t| t.avg_w),
                peak_w: s.total.map_or(s.peak_w, |t| t.peak_w),
                nested: s.info.component.is_nested(),
                read_errors: s.gaps,
                process_share: None,
            }
        })
        .collect();
    let nested: Vec<bool> = sources
        .values()
        .map(|s| s.info.component.is_nested())
        .collect();
    let mut region_list = Vec::new();
    let mut left_open = Vec::new();
    for r in &regions {
        match r.end_t {
            Some(end_t) => {
                let energy: f64 =
                    r.at.iter()
                        .zip(&nested)
                        .filter(|(_, n)| !**n)
                        .map(|(at, _)| (at.1.unwrap_or(0.0) - at.0.unwrap_or(0.0)).max(0.0))
                        .sum();
                region_list.push(RegionSummary {
                    name: r.name.clone(),
                    start_s: secs(r.begin_t),
                    end_s: secs(end_t),
                    energy_j: energy,
                });
            }
            None => left_open.push(r.name.clone()),
        }
    }
    lost.gaps = sources
        .values()
        .filter(|s| s.gaps > 0)
        .map(|s| ComponentGaps {
            name: s.name.clone(),
            gaps: s.gaps,
            without_readings_s: secs(s.gap_ns),
            reasons: s.gap_reasons.clone(),
        })
        .collect();
    let exit_code = end.and_then(|e| match e.exit {
        ExitStatus::Code(c) => Some(c),
        ExitStatus::Signal(s) => Some(128 + s),
        ExitStatus::Unknown => None,
    });
    let summary = Summary::new(
        secs(duration_ns),
        components,
        region_list,
        0,
        left_open,
        ea2p_core::metrics::DEFAULT_CARBON_INTENSITY_G_PER_KWH,
        exit_code,
    );
    let report = ProfileReport {
        file: file.to_path_buf(),
        bytes,
        command: header.command.to_string(),
        host: header.host.hostname.to_string(),
        rank: header.rank,
        summary,
        lost,
    };
    if let Some(p) = &options.json {
        let text = serde_json::to_string_pretty(&report)? + "\n";
        crate::private_file::write(p, text.as_bytes())
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = &options.plot {
        plot(p, &sources, &report)?;
    }
    Ok(report)
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

#[allow(clippy::too_many_arguments)]
fn handle(
    record: Record,
    sources: &mut BTreeMap<u16, SourceState>,
    regions: &mut Vec<RegionState>,
    open_regions: &mut BTreeMap<u32, usize>,
    end: &mut Option<format::End>,
    csv: &mut Option<csv::Writer<BufWriter<File>>>,
    keep_plot: bool,
    t_max: &mut Nanos,
    last_t_any: &mut Nanos,
    pending_skip: &mut Option<Nanos>,
    lost: &mut Lost,
) -> Result<()> {
    match record {
        Record::Source(d) => {
            let kind = if d.info.counter_spec().is_some() {
                SeriesKind::Counter
            } else {
                SeriesKind::PowerSamples
            };
            sources.insert(
                d.id,
                SourceState {
                    name: component_name(&d.info),
                    info: d.info,
                    kind,
                    recent: VecDeque::with_capacity(RECENT),
                    first: None,
                    last: None,
                    peak_w: 0.0,
                    samples: 0,
                    pending: Vec::new(),
                    gap_open_from: None,
                    gap_last_to: 0,
                    gaps: 0,
                    gap_ns: 0,
                    gap_reasons: Vec::new(),
                    plot: Vec::new(),
                    plot_stride: 1,
                    total: None,
                },
            );
            for r in regions.iter_mut() {
                r.at.push((None, None));
            }
        }
        Record::Sample(smp) => {
            if let Some(from) = pending_skip.take() {
                if smp.t_ns > from {
                    lost.skipped_time_s += secs(smp.t_ns - from);
                }
            }
            *t_max = (*t_max).max(smp.t_ns);
            *last_t_any = (*last_t_any).max(smp.t_ns);
            let pos = sources.keys().position(|k| *k == smp.source);
            let Some(s) = sources.get_mut(&smp.source) else {
                return Ok(());
            };
            let p = EnergyPoint {
                t: smp.t_ns,
                energy_j: smp.energy_j,
                power_w: f64::from(smp.power_w),
                after_gap: false,
            };
            if let Some(from) = s.gap_open_from.take() {
                s.gaps += 1;
                s.gap_ns += smp.t_ns.saturating_sub(from);
            }
            if s.recent.len() == RECENT {
                s.recent.pop_front();
            }
            s.recent.push_back(p);
            s.first.get_or_insert(p);
            s.last = Some(p);
            s.peak_w = s.peak_w.max(p.power_w);
            s.samples += 1;
            // Boundaries now behind this reading can be placed.
            let mut k = 0;
            while k < s.pending.len() {
                let (key, is_begin, t) = s.pending[k];
                if t <= p.t {
                    let e = s.energy_at(t);
                    if let Some(pos) = pos {
                        let at = &mut regions[key].at[pos];
                        if is_begin {
                            at.0 = Some(e);
                        } else {
                            at.1 = Some(e);
                        }
                    }
                    s.pending.swap_remove(k);
                } else {
                    k += 1;
                }
            }
            if keep_plot {
                if s.samples % s.plot_stride == 0 {
                    s.plot.push((p.t, p.energy_j));
                }
                if s.plot.len() > PLOT_POINTS {
                    let kept: Vec<(Nanos, f64)> = s.plot.iter().copied().step_by(2).collect();
                    s.plot = kept;
                    s.plot_stride *= 2;
                }
            }
            if let Some(w) = csv.as_mut() {
                w.write_record([
                    format!("{:.6}", secs(p.t)),
                    s.name.clone(),
                    s.info.provenance.as_str().to_string(),
                    format!("{:.3}", p.power_w),
                    format!("{:.6}", p.energy_j),
                ])?;
            }
        }
        Record::Gap(g) => {
            *t_max = (*t_max).max(g.to_ns);
            if let Some(s) = sources.get_mut(&g.source) {
                s.gap_open_from.get_or_insert(g.from_ns);
                s.gap_last_to = s.gap_last_to.max(g.to_ns);
                let reason = format!("{:?}", g.reason);
                if !s.gap_reasons.contains(&reason) && s.gap_reasons.len() < 8 {
                    s.gap_reasons.push(reason);
                }
            }
        }
        Record::Marker(m) => {
            *t_max = (*t_max).max(m.t_ns);
            let key = match m.kind {
                MarkerKind::Begin => {
                    regions.push(RegionState {
                        name: m.name.to_string(),
                        begin_t: m.t_ns,
                        end_t: None,
                        at: vec![(None, None); sources.len()],
                    });
                    open_regions.insert(m.region, regions.len() - 1);
                    regions.len() - 1
                }
                MarkerKind::End => match open_regions.remove(&m.region) {
                    Some(k) => {
                        regions[k].end_t = Some(m.t_ns);
                        k
                    }
                    None => return Ok(()),
                },
            };
            let is_begin = m.kind == MarkerKind::Begin;
            for (pos, s) in sources.values_mut().enumerate() {
                if s.last.is_some_and(|p| p.t >= m.t_ns) {
                    let e = s.energy_at(m.t_ns);
                    let at = &mut regions[key].at[pos];
                    if is_begin {
                        at.0 = Some(e);
                    } else {
                        at.1 = Some(e);
                    }
                } else {
                    s.pending.push((key, is_begin, m.t_ns));
                }
            }
        }
        Record::SourceTotal(t) => {
            if let Some(s) = sources.get_mut(&t.source) {
                s.total = Some(t);
            }
        }
        Record::End(e) => *end = Some(e),
        Record::Header(_) => {}
    }
    Ok(())
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

fn plot(path: &Path, sources: &BTreeMap<u16, SourceState>, r: &ProfileReport) -> Result<()> {
    use plotters::prelude::*;
    let series: Vec<(String, Vec<(f64, f64)>)> = sources
        .values()
        .map(|s| {
            let pts = s
                .plot
                .windows(2)
                .filter(|w| w[1].0 > w[0].0)
                .map(|w| {
                    let dt = secs(w[1].0 - w[0].0);
                    (secs(w[1].0), ((w[1].1 - w[0].1) / dt).max(0.0))
                })
                .collect();
            let label = match s.info.provenance {
                Provenance::Estimated => format!("{} (estimated)", s.name),
                _ => s.name.clone(),
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
    crate::private_file::write(path, svg.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
