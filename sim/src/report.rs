//! Reports of a comparison: a text table, CSV, JSON and an SVG plot of energy against throughput
//! with the Pareto frontier.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

use crate::results::{Comparison, PolicySummary, RunResult, Stat};
use crate::scenario::Scenario;

fn pm(s: &Stat, scale: f64, digits: usize) -> String {
    match (s.mean, s.ci95) {
        (Some(m), Some(c)) => format!("{:.*} ± {:.*}", digits, m * scale, digits, c * scale),
        (Some(m), None) => format!("{:.*}", digits, m * scale),
        _ => "-".to_string(),
    }
}

/// The comparison table, one row per policy, each cell `mean ± 95% half-width`.
pub fn table(sc: &Scenario, cmp: &Comparison) -> String {
    let mut out = String::new();
    let gpus: Vec<String> = sc
        .gpu_types
        .iter()
        .zip(&sc.gpu_counts)
        .filter(|(_, &c)| c > 0)
        .map(|(g, c)| format!("{c} x {}", g.name))
        .collect();
    let _ = writeln!(
        out,
        "scenario {} ({}): {} h, {} seeds, {}; mean ± 95% CI over seeds",
        sc.name,
        sc.origin,
        sc.hours,
        sc.seeds,
        gpus.join(" + ")
    );
    // jobs/h divides by the horizon: with a trace that ends before it, every policy that completes
    // the trace shows the same figure; the makespan-based rate (completed jobs / last completion
    // time) then tells them apart, so it is shown where it differs by more than 0.5 %.
    let makespan_rate = |p: &PolicySummary| {
        p.extra
            .iter()
            .find(|(n, _)| n == "jobs_per_makespan_hour")
            .map(|(_, s)| *s)
    };
    let show_makespan = cmp.policies.iter().any(|p| {
        match (p.jobs_per_hour.mean, makespan_rate(p).and_then(|s| s.mean)) {
            (Some(h), Some(m)) => (m - h).abs() > 0.005 * h.abs().max(1e-12),
            _ => false,
        }
    });
    let mut head = vec![
        "policy",
        "jobs/h (horizon)",
        "energy kWh",
        "EDP GJ·s",
        "mean JCT h",
        "p95 JCT h",
        "miss %",
        "fairness",
        "peak kW",
        "preempt",
        "wasted kWh",
    ];
    let rows: Vec<Vec<String>> = cmp
        .policies
        .iter()
        .map(|p| {
            let mut r = vec![
                p.policy.clone(),
                pm(&p.jobs_per_hour, 1.0, 2),
                pm(&p.energy_kwh, 1.0, 2),
                pm(&p.edp, 1e-9, 2),
                pm(&p.mean_jct_s, 1.0 / 3600.0, 2),
                pm(&p.p95_jct_s, 1.0 / 3600.0, 2),
                pm(&p.deadline_miss_rate, 100.0, 1),
                pm(&p.fairness, 1.0, 3),
                pm(&p.peak_power_w, 1e-3, 2),
                pm(&p.preemptions, 1.0, 1),
                pm(&p.wasted_energy_kwh, 1.0, 3),
            ];
            if show_makespan {
                let m = makespan_rate(p).unwrap_or(crate::results::Stat {
                    mean: None,
                    ci95: None,
                });
                r.insert(2, pm(&m, 1.0, 2));
            }
            if let Some(f) = &p.faults {
                r.extend([
                    pm(&f.gpu_failures, 1.0, 1),
                    pm(&f.node_drains, 1.0, 1),
                    pm(&f.fault_preemptions, 1.0, 1),
                    pm(&f.lost_gpu_hours, 1.0, 2),
                    pm(&f.down_gpu_hours, 1.0, 1),
                ]);
            }
            r
        })
        .collect();
    if show_makespan {
        head.insert(2, "jobs/h (makespan)");
    }
    if cmp.policies.iter().any(|p| p.faults.is_some()) {
        head.extend([
            "failures",
            "drains",
            "fault preempt",
            "lost GPU·h",
            "down GPU·h",
        ]);
    }
    let mut w: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = w[i] - c.chars().count();
                if i == 0 {
                    format!("{c}{}", " ".repeat(pad))
                } else {
                    format!("{}{c}", " ".repeat(pad))
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let _ = writeln!(
        out,
        "{}",
        line(&head.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    );
    let _ = writeln!(
        out,
        "{}",
        w.iter()
            .map(|&n| "-".repeat(n))
            .collect::<Vec<_>>()
            .join("  ")
    );
    for r in &rows {
        let _ = writeln!(out, "{}", line(r));
    }
    out
}

/// One run's results as a short text.
pub fn run_text(r: &RunResult) -> String {
    let opt =
        |x: Option<f64>, s: f64, d: usize| x.map_or("-".into(), |v| format!("{:.*}", d, v * s));
    let util: Vec<String> = r
        .utilisation
        .iter()
        .map(|u| format!("{} {:.0}%", u.gpu, u.utilisation * 100.0))
        .collect();
    let faults = r.faults.as_ref().map_or(String::new(), |f| {
        format!(
            "faults: {} GPU failures, {} node drains, {} jobs preempted, {:.2} GPU-hours of work lost, \
             {:.2} GPU-hours out of service, {} decisions skipped\n",
            f.gpu_failures,
            f.node_drains,
            f.fault_preemptions,
            f.lost_gpu_hours,
            f.down_gpu_hours,
            f.skipped_decisions
        )
    });
    format!(
        "policy {} run {} (seed {})\n\
         jobs: {} arrived, {} completed, {:.2} per hour\n\
         energy: {:.3} kWh ({:.3} allocated GPUs, {:.3} idle GPUs), wasted {:.4} kWh, peak {:.2} kW\n\
         EDP per job: {} GJ·s; JCT mean {} h, p95 {} h; makespan {:.2} h\n\
         deadlines: {} missed of {} ({}%); fairness (Jain over users' finish-time fairness) {}\n\
         utilisation: {}; preemptions {}, resizes {}; {} events\n{}",
        r.policy,
        r.run,
        r.seed,
        r.jobs_arrived,
        r.jobs_completed,
        r.jobs_per_hour,
        r.energy_kwh,
        r.energy_busy_kwh,
        r.energy_idle_kwh,
        r.wasted_energy_kwh,
        r.peak_power_w / 1000.0,
        opt(r.edp, 1e-9, 3),
        opt(r.mean_jct_s, 1.0 / 3600.0, 2),
        opt(r.p95_jct_s, 1.0 / 3600.0, 2),
        r.makespan_s / 3600.0,
        r.deadlines_missed,
        r.deadlines,
        opt(r.deadline_miss_rate, 100.0, 1),
        opt(r.fairness, 1.0, 3),
        util.join(", "),
        r.preemptions,
        r.resizes,
        r.events,
        faults
    )
}

/// The comparison as JSON text (the documented schema), as `--json` writes it: one function, so
/// the file, `merge-results` and the Python module cannot differ.
pub fn json_text(cmp: &Comparison) -> Result<String> {
    Ok(serde_json::to_string_pretty(cmp)? + "\n")
}

/// Writes the comparison as JSON (the documented schema).
pub fn write_json(path: &Path, cmp: &Comparison) -> Result<()> {
    let text = json_text(cmp)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Reads one metric of a summary.
type Getter = fn(&PolicySummary) -> &Stat;

/// Writes the comparison as CSV: one row per policy, `METRIC_mean` and `METRIC_ci95` columns
/// for the JSON's metrics, then makespan, busy and idle energy, resizes and utilisation per GPU type.
pub fn write_csv(path: &Path, cmp: &Comparison) -> Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
    let metrics: [(&str, Getter); 10] = [
        ("jobs_per_hour", |p| &p.jobs_per_hour),
        ("energy_kwh", |p| &p.energy_kwh),
        ("edp", |p| &p.edp),
        ("mean_jct_s", |p| &p.mean_jct_s),
        ("p95_jct_s", |p| &p.p95_jct_s),
        ("deadline_miss_rate", |p| &p.deadline_miss_rate),
        ("fairness", |p| &p.fairness),
        ("peak_power_w", |p| &p.peak_power_w),
        ("preemptions", |p| &p.preemptions),
        ("wasted_energy_kwh", |p| &p.wasted_energy_kwh),
    ];
    let mut head = vec![
        "scenario".to_string(),
        "policy".to_string(),
        "runs".to_string(),
    ];
    for (m, _) in &metrics {
        head.push(format!("{m}_mean"));
        head.push(format!("{m}_ci95"));
    }
    if let Some(p) = cmp.policies.first() {
        for (name, _) in &p.extra {
            head.push(format!("{name}_mean"));
            head.push(format!("{name}_ci95"));
        }
    }
    w.write_record(&head)?;
    let f = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v}"));
    for p in &cmp.policies {
        let mut rec = vec![cmp.scenario.clone(), p.policy.clone(), p.runs.to_string()];
        for (_, get) in &metrics {
            let s = get(p);
            rec.push(f(s.mean));
            rec.push(f(s.ci95));
        }
        for (_, s) in &p.extra {
            rec.push(f(s.mean));
            rec.push(f(s.ci95));
        }
        w.write_record(&rec)?;
    }
    w.flush()?;
    Ok(())
}

/// Indices of the points on the Pareto frontier (most jobs per hour, least energy), sorted by
/// throughput.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..points.len())
        .filter(|&i| {
            let (x, y) = points[i];
            !points
                .iter()
                .enumerate()
                .any(|(j, &(u, v))| j != i && u >= x && v <= y && (u > x || v < y))
        })
        .collect();
    idx.sort_by(|&a, &b| points[a].0.total_cmp(&points[b].0).then(a.cmp(&b)));
    idx
}

/// Plots energy (kWh) against throughput (jobs/h) per policy, with 95% bars and the Pareto
/// frontier, as SVG.
pub fn plot_svg(path: &Path, cmp: &Comparison) -> Result<()> {
    let pts: Vec<(String, f64, f64, f64, f64)> = cmp
        .policies
        .iter()
        .filter_map(|p| {
            Some((
                p.policy.clone(),
                p.jobs_per_hour.mean?,
                p.energy_kwh.mean?,
                p.jobs_per_hour.ci95.unwrap_or(0.0),
                p.energy_kwh.ci95.unwrap_or(0.0),
            ))
        })
        .collect();
    anyhow::ensure!(!pts.is_empty(), "nothing to plot");
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (_, x, y, cx, cy) in &pts {
        x0 = x0.min(x - cx);
        x1 = x1.max(x + cx);
        y0 = y0.min(y - cy);
        y1 = y1.max(y + cy);
    }
    let (dx, dy) = (((x1 - x0) * 0.15).max(0.5), ((y1 - y0) * 0.15).max(0.5));
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    let e = |e: &dyn std::fmt::Display| anyhow::anyhow!("plotting {}: {e}", path.display());
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: energy against throughput (mean, 95% CI)", cmp.scenario),
            ("sans-serif", 20),
        )
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((x0 - dx)..(x1 + dx), (y0 - dy)..(y1 + dy))
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("completed jobs per hour")
        .y_desc("energy (kWh)")
        .draw()
        .map_err(|x| e(&x))?;
    let xy: Vec<(f64, f64)> = pts.iter().map(|p| (p.1, p.2)).collect();
    let front: Vec<(f64, f64)> = pareto_front(&xy).into_iter().map(|i| xy[i]).collect();
    // The frontier as a line, and its points ringed (a single non-dominated policy is a point).
    chart
        .draw_series(LineSeries::new(front.clone(), RED.stroke_width(2)))
        .map_err(|x| e(&x))?
        .label("Pareto frontier (most jobs/h, least kWh)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    chart
        .draw_series(
            front
                .iter()
                .map(|&p| Circle::new(p, 10, RED.stroke_width(2))),
        )
        .map_err(|x| e(&x))?;
    chart
        .draw_series(
            pts.iter()
                .map(|p| ErrorBar::new_vertical(p.1, p.2 - p.4, p.2, p.2 + p.4, BLUE.mix(0.6), 8)),
        )
        .map_err(|x| e(&x))?;
    chart
        .draw_series(
            pts.iter().map(|p| {
                ErrorBar::new_horizontal(p.2, p.1 - p.3, p.1, p.1 + p.3, BLUE.mix(0.6), 8)
            }),
        )
        .map_err(|x| e(&x))?;
    chart
        .draw_series(
            pts.iter()
                .map(|p| Circle::new((p.1, p.2), 5, BLUE.filled())),
        )
        .map_err(|x| e(&x))?
        .label("policy")
        .legend(|(x, y)| Circle::new((x + 10, y), 5, BLUE.filled()));
    chart
        .draw_series(
            pts.iter()
                .map(|p| Text::new(p.0.clone(), (p.1, p.2), ("sans-serif", 15).into_font())),
        )
        .map_err(|x| e(&x))?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// Plots a run's cluster power over time (a step line, kW against hours), with the power cap in
/// force if any, as SVG.
pub fn plot_power_svg(
    path: &Path,
    title: &str,
    trace: &[(u64, u64)],
    horizon_ns: u64,
    caps: &[(u64, Option<f64>)],
) -> Result<()> {
    anyhow::ensure!(!trace.is_empty(), "no power recorded");
    let h = |ns: u64| ns as f64 / 3.6e12;
    let kw = |mw: u64| mw as f64 / 1e6;
    let mut steps = Vec::with_capacity(trace.len() * 2 + 1);
    for (i, &(t, p)) in trace.iter().enumerate() {
        if i > 0 {
            steps.push((h(t), kw(trace[i - 1].1)));
        }
        steps.push((h(t), kw(p)));
    }
    steps.push((h(horizon_ns), kw(trace[trace.len() - 1].1)));
    let ymax = steps
        .iter()
        .map(|p| p.1)
        .fold(0.0, f64::max)
        .max(caps.iter().filter_map(|c| c.1).fold(0.0, f64::max) / 1000.0)
        * 1.1;
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    let e = |e: &dyn std::fmt::Display| anyhow::anyhow!("plotting {}: {e}", path.display());
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..h(horizon_ns), 0.0..ymax.max(1.0))
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("time (h)")
        .y_desc("cluster power (kW)")
        .draw()
        .map_err(|x| e(&x))?;
    chart
        .draw_series(LineSeries::new(steps, BLUE))
        .map_err(|x| e(&x))?
        .label("GPUs")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    if caps.iter().any(|c| c.1.is_some()) {
        let mut cap_steps = Vec::new();
        for (i, &(t, c)) in caps.iter().enumerate() {
            let end = caps.get(i + 1).map_or(horizon_ns, |n| n.0);
            if let Some(w) = c {
                cap_steps.push(vec![(h(t), w / 1000.0), (h(end), w / 1000.0)]);
            }
        }
        for (i, seg) in cap_steps.into_iter().enumerate() {
            let s = chart
                .draw_series(LineSeries::new(seg, RED.stroke_width(2)))
                .map_err(|x| e(&x))?;
            if i == 0 {
                s.label("power cap")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pareto_front_keeps_non_dominated_points() {
        let pts = [
            (10.0, 50.0),
            (11.0, 57.0),
            (9.0, 60.0),
            (11.0, 55.0),
            (12.0, 70.0),
        ];
        assert_eq!(pareto_front(&pts), vec![0, 3, 4]);
    }
}
