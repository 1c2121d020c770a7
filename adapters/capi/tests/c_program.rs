//! Builds `tests/c/ea2p_check.c` with gcc against the static and the shared library, runs it,
//! and checks every line it prints against the same computations done in Rust with ea2p-core
//! directly (not through the C API): counters, tracks, estimators, metrics, and the FIFO and
//! Zeus scheduling rounds. Floats are compared bit for bit (the C program prints `%.17g`).

use std::path::{Path, PathBuf};
use std::process::Command;

use ea2p_core::counter::{CounterEvent, CounterSpec, EnergyCounter};
use ea2p_core::estimate::{CpuModel, DramGeneration, RamActivity, RamModel};
use ea2p_core::fold::{Fold, RegionEnergy};
use ea2p_core::format::{probe, Decoder, ExitStatus, MarkerKind, Record};
use ea2p_core::integrate::{window_energy, EnergyTrack, SeriesKind};
use ea2p_core::jobmodel::{evaluate, Config, GpuSpec, ModelProfile, PerfParams, StatEff, StepTime};
use ea2p_core::metrics;
use ea2p_core::policy::{
    schedule, ClusterView, Decision, Decisions, JobView, PolicyKind, PolicyParams, Request,
};
use ea2p_core::session::Session;
use ea2p_core::source::{
    truncated, Component, Provenance, Quantity, RawReading, ReadErrorKind, SourceInfo,
};

const SEC: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

/// One expected field of an output line.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An unsigned integer.
    U(u64),
    /// A double, compared bit for bit.
    F(f64),
    /// A word.
    S(String),
}

impl Tok {
    fn matches(&self, got: &str) -> bool {
        match self {
            Tok::U(v) => got.parse::<u64>().is_ok_and(|g| g == *v),
            Tok::F(v) => got.parse::<f64>().is_ok_and(|g| g.to_bits() == v.to_bits()),
            Tok::S(s) => got == s,
        }
    }
}

/// Builds an expected line from a word and fields.
macro_rules! fields {
    ($($t:expr),* $(,)?) => { vec![$(Tok::from($t)),*] };
}

impl From<&str> for Tok {
    fn from(s: &str) -> Self {
        Tok::S(s.to_owned())
    }
}
impl From<u64> for Tok {
    fn from(v: u64) -> Self {
        Tok::U(v)
    }
}
impl From<u32> for Tok {
    fn from(v: u32) -> Self {
        Tok::U(v.into())
    }
}
impl From<usize> for Tok {
    fn from(v: usize) -> Self {
        Tok::U(v as u64)
    }
}
impl From<bool> for Tok {
    fn from(v: bool) -> Self {
        Tok::U(v.into())
    }
}
impl From<f64> for Tok {
    fn from(v: f64) -> Self {
        Tok::F(v)
    }
}

/// The values of `enum Ea2pCounterEvent` in the header.
fn event_code(e: CounterEvent) -> u64 {
    match e {
        CounterEvent::Baseline => 0,
        CounterEvent::Advanced => 1,
        CounterEvent::Wrapped => 2,
        CounterEvent::Reset => 3,
        CounterEvent::Rejected => 4,
        CounterEvent::OutOfOrder => 5,
        CounterEvent::OutOfRange => 6,
    }
}

fn counter_and_track(out: &mut Vec<Vec<Tok>>) {
    let spec = CounterSpec::new(1e-6)
        .with_max_ticks(16_383)
        .with_max_power_w(1.0);
    let reads = [10_000u64, 10_001, 12_313, 8_213, 0, 20_000, 5, 300, 9_000];
    let mut counter = EnergyCounter::new(spec);
    let mut track = EnergyTrack::new(SeriesKind::Counter, 50 * MS);
    for (i, &raw) in reads.iter().enumerate() {
        let t = i as u64 * 10 * MS;
        let u = counter.update(t, raw);
        out.push(fields!(
            "counter_update",
            i,
            event_code(u.event),
            u.added_ticks,
            u.discarded_ticks,
            u.ambiguous
        ));
        let p = track.push_energy(t, counter.total_j()).unwrap();
        out.push(fields!(
            "track_point",
            p.t,
            p.energy_j,
            p.power_w,
            p.after_gap
        ));
    }
    let ticks = u64::try_from(counter.total_ticks()).unwrap();
    out.push(fields!("counter_total", ticks, counter.total_j()));
    let s = counter.stats();
    out.push(fields!(
        "counter_stats",
        s.accepted,
        s.wraps,
        s.resets,
        s.rejected,
        s.ambiguous,
        s.out_of_order,
        s.out_of_range,
        s.backwards_without_max
    ));
    out.push(fields!(
        "track_summary",
        track.total_j(),
        track.duration_ns(),
        track.average_w().unwrap(),
        true,
        track.peak_w(),
        track.len()
    ));

    let mut power = EnergyTrack::new(SeriesKind::PowerSamples, 3 * SEC);
    let samples = [
        (0, 10.0),
        (SEC, 30.0),
        (2 * SEC, 20.0),
        (7 * SEC, 20.0),
        (8 * SEC, 5.0),
    ];
    let points: Vec<_> = samples
        .iter()
        .map(|&(t, w)| power.push_power(t, w).unwrap())
        .collect();
    out.push(fields!(
        "power_track",
        power.total_j(),
        power.average_w().unwrap(),
        power.peak_w()
    ));
    let w = window_energy(&points, SeriesKind::PowerSamples, SEC / 2, 7 * SEC, 1_000).unwrap();
    out.push(fields!(
        "window",
        w.energy_j,
        w.covered_ns,
        w.error_bound_j,
        w.overlaps_gap
    ));
}

fn estimators_and_metrics(out: &mut Vec<Vec<Tok>>) {
    out.push(fields!("cpu_w", CpuModel::from_tdp(125.0).power(0.5).watts));
    let ram = RamModel::new(16 << 30, DramGeneration::Ddr4);
    let traffic = RamActivity::Traffic { bytes_per_s: 1e10 };
    out.push(fields!("ram_traffic_w", ram.power(traffic).watts));
    let resident = RamActivity::ResidentSet {
        resident_bytes: 2e9,
        busy_cpus: 1.5,
    };
    out.push(fields!("ram_resident_w", ram.power(resident).watts));
    out.push(fields!("edp", metrics::edp(641_000.0, 3852.0)));
    out.push(fields!("ed2p", metrics::ed2p(641_000.0, 3852.0)));
    let co2 = metrics::co2_grams(641_000.0, metrics::DEFAULT_CARBON_INTENSITY_G_PER_KWH);
    out.push(fields!("co2", co2));
    let jain = metrics::jain_index(&[1.0, 2.0, 4.0, 0.5]).unwrap();
    out.push(fields!("jain", jain));
    let ftf = metrics::finish_time_fairness(300.0, 120.0).unwrap();
    out.push(fields!("ftf", ftf));
    out.push(fields!(
        "miss_rate",
        metrics::deadline_miss_rate(3, 8).unwrap()
    ));
}

#[allow(clippy::too_many_arguments)] // mirrors the C program's helper, field for field
fn perf(
    one: f64,
    many: f64,
    batch: f64,
    fixed: f64,
    sync: f64,
    gamma: f64,
    busy_w: f64,
    max_batch: u32,
) -> Option<PerfParams> {
    Some(PerfParams {
        step: StepTime::fit(one, many, 8, batch, fixed, sync, gamma).unwrap(),
        busy_w,
        max_batch_per_gpu: max_batch,
        limit: ea2p_core::jobmodel::LimitResponse::DEFAULT,
    })
}

fn job(
    id: u64,
    model: u16,
    user: u32,
    arrival_s: u64,
    work: f64,
    gpus: u32,
    batch: u32,
) -> JobView {
    JobView {
        id,
        model,
        user,
        arrival: arrival_s * SEC,
        remaining_work: work,
        deadline: None,
        urgent: false,
        rigid: false,
        request: Request {
            gpu_type: None,
            gpus,
            batch,
        },
        running: None,
        work_at_risk: 0.0,
        user_gpu_s: 3600.0 * user as f64,
        user_energy_j: 1e6 * user as f64,
    }
}

fn policies(out: &mut Vec<Vec<Tok>>) {
    let specs = [
        GpuSpec {
            idle_w: 55.0,
            allocated_idle_w: 100.0,
            max_w: 400.0,
            min_limit_w: 100.0,
        },
        GpuSpec {
            idle_w: 40.0,
            allocated_idle_w: 70.0,
            max_w: 300.0,
            min_limit_w: 100.0,
        },
    ];
    let models = [
        ModelProfile {
            stat: StatEff {
                ref_batch: 256,
                noise_scale: 4096.0,
            },
            perf: [
                perf(1066.0, 7397.0, 256.0, 0.1, 0.8, 2.0, 352.0, 512),
                perf(400.0, 2800.0, 128.0, 0.1, 0.8, 2.0, 250.0, 256),
                None,
                None,
            ],
            max_gpus: 16,
        },
        ModelProfile {
            stat: StatEff {
                ref_batch: 64,
                noise_scale: 1024.0,
            },
            perf: [
                perf(300.0, 2000.0, 32.0, 0.05, 0.5, 1.5, 380.0, 64),
                None,
                None,
                None,
            ],
            max_gpus: 8,
        },
    ];
    let (total, free) = ([8u32, 4], [6u32, 4]);
    let cluster = ClusterView {
        now: 100 * SEC,
        gpu_specs: &specs,
        total: &total,
        free: &free,
        power_cap_w: None,
        models: &models,
        limit_effects: None,
    };
    let jobs = [
        job(10, 0, 1, 10, 5e6, 2, 512),
        JobView {
            rigid: true,
            request: Request {
                gpu_type: Some(0),
                gpus: 2,
                batch: 128,
            },
            ..job(11, 1, 2, 0, 1e6, 2, 128)
        },
        JobView {
            urgent: true,
            deadline: Some(5000 * SEC),
            ..job(12, 0, 1, 5, 9e6, 4, 1024)
        },
        JobView {
            running: Some(Config {
                gpu_type: 0,
                gpus: 2,
                batch: 128,
                limit_w: 400.0,
            }),
            ..job(13, 1, 3, 0, 2e5, 2, 128)
        },
        JobView {
            rigid: true,
            request: Request {
                gpu_type: Some(1),
                gpus: 4,
                batch: 512,
            },
            ..job(14, 0, 2, 50, 3e5, 4, 512)
        },
    ];
    for kind in [PolicyKind::Fifo, PolicyKind::Zeus] {
        let mut scratch = [0u32; 5];
        let mut buf = [Decision::Preempt { job: 0 }; 16];
        let mut decisions = Decisions::new(&mut buf);
        let params = PolicyParams::default();
        schedule(kind, &params, &cluster, &jobs, &mut scratch, &mut decisions).unwrap();
        out.push(fields!("decisions", kind.name(), decisions.len()));
        for (i, d) in decisions.as_slice().iter().enumerate() {
            let (code, job, cfg) = match *d {
                Decision::Start { job, cfg } => (0u64, job, Some(cfg)),
                Decision::Resize { job, cfg } => (1, job, Some(cfg)),
                Decision::Preempt { job } => (2, job, None),
            };
            let cfg = cfg.unwrap_or(Config {
                gpu_type: 0,
                gpus: 0,
                batch: 0,
                limit_w: 0.0,
            });
            let energy_per_sample = if code == 2 {
                0.0
            } else {
                let model = &models[jobs[job as usize].model as usize];
                let p = evaluate(model, &specs, &cfg).unwrap();
                cfg.gpus as f64 * p.power_per_gpu_w / p.goodput
            };
            out.push(fields!(
                "decision",
                kind.name(),
                i,
                code,
                job,
                u32::from(cfg.gpu_type),
                cfg.gpus,
                cfg.batch,
                cfg.limit_w,
                energy_per_sample
            ));
        }
    }
}

/// The capacities of `Ea2pSession` (sources, open regions, fold regions).
type CSession = Session<32, 64>;
type CFold = Fold<32, 128>;

fn source_info(
    component: Component,
    name: &str,
    quantity: Quantity,
    max_power_w: Option<f64>,
    update_period_ns: u64,
) -> SourceInfo {
    SourceInfo {
        component,
        index: 0,
        provenance: Provenance::Measured,
        quantity,
        update_period_ns,
        max_power_w,
        name: truncated(name),
    }
}

/// The fold's figures as the C program prints them, for sources 1, 2, 7 and regions 0, 1.
fn session_figures(fold: &CFold, regions: &[RegionEnergy<32>]) -> Vec<Vec<Tok>> {
    let mut out = Vec::new();
    for c in fold.components() {
        out.push(fields!(
            "session_source",
            u64::from(c.id),
            c.energy_j,
            c.avg_w(),
            c.peak_w,
            c.peak_window_ns,
            c.samples,
            c.wraps,
            c.refused(),
            c.gap_runs,
            c.without_readings_ns,
            c.first_t.unwrap_or(0),
            c.last_t.unwrap_or(0)
        ));
        for (reason, t) in ea2p_core::format::GapReason::ALL.iter().zip(&c.anomalies) {
            if t.count > 0 {
                out.push(fields!(
                    "session_anomaly",
                    u64::from(c.id),
                    reason.as_str(),
                    t.count,
                    t.covered_ns
                ));
            }
        }
    }
    for id in [0u32, 1] {
        let r = regions.iter().find(|r| r.id == id).expect("region placed");
        out.push(fields!(
            "session_region",
            id,
            r.begin_t,
            r.end_t,
            r.total_j,
            true
        ));
        for (c, e) in fold.components().iter().zip(&r.energies) {
            out.push(fields!("session_region_energy", id, u64::from(c.id), *e));
        }
    }
    out
}

fn fold_all(fold: &mut CFold, records: &[Record]) -> Vec<RegionEnergy<32>> {
    let mut regions = Vec::new();
    for r in records {
        fold.handle(r).unwrap();
        while let Some(reg) = fold.poll_region() {
            regions.push(reg);
        }
    }
    fold.finish();
    while let Some(reg) = fold.poll_region() {
        regions.push(reg);
    }
    regions
}

/// The C program's session, on the core's Session and Fold directly: the records it writes
/// (the profile's, after the header) and the figures.
fn session_run() -> (Vec<Record>, Vec<Vec<Tok>>) {
    let mut s = CSession::new();
    let mut records = Vec::new();
    let mut drain = |s: &mut CSession| {
        while let Some(r) = s.poll_record() {
            records.push(r);
        }
    };
    let counter = |max| Quantity::EnergyCounter {
        joules_per_tick: 1e-6,
        max_ticks: max,
    };
    let pkg = source_info(
        Component::CpuPackage,
        "package-0",
        counter(Some(999_999)),
        Some(100.0),
        MS,
    );
    let dram = source_info(Component::Dram, "dram", counter(None), Some(50.0), MS);
    let power = Quantity::Power { averaging_ns: 0 };
    let gpu = source_info(Component::Gpu, "gpu0", power, None, 20 * MS);
    s.add_source(1, pkg).unwrap();
    drain(&mut s);
    s.add_source(2, dram).unwrap();
    drain(&mut s);
    s.add_source(7, gpu).unwrap();
    drain(&mut s);
    for i in 0..20u64 {
        let t = i * 10 * MS;
        let a = (900_000 + 100_000 * i + 1234 * (i % 3)) % 1_000_000;
        s.handle_reading(1, t, RawReading::Counter(a)).unwrap();
        drain(&mut s);
        if i == 12 {
            s.handle_read_error(2, t, ReadErrorKind::Malformed).unwrap();
        } else {
            let b = if i < 8 {
                10_000_000 + 50_000 * i
            } else {
                300 + 50_000 * (i - 8)
            };
            s.handle_reading(2, t, RawReading::Counter(b)).unwrap();
        }
        drain(&mut s);
        if i % 2 == 0 {
            let mw = 40_000 + 1000 * (i % 4);
            s.handle_reading(7, t, RawReading::PowerMilliwatts(mw))
                .unwrap();
            drain(&mut s);
        }
        let marker = match i {
            3 => Some((MarkerKind::Begin, "epoch")),
            5 => Some((MarkerKind::Begin, "step")),
            8 => Some((MarkerKind::End, "step")),
            12 => Some((MarkerKind::End, "epoch")),
            _ => None,
        };
        if let Some((kind, name)) = marker {
            s.handle_marker(t + 5 * MS, kind, name).unwrap();
            drain(&mut s);
        }
    }
    s.finish(200 * MS, ExitStatus::Unknown).unwrap();
    drain(&mut s);
    let mut fold = CFold::new(ea2p_core::fold::DEFAULT_PEAK_WINDOW_NS);
    let regions = fold_all(&mut fold, &records);
    let figures = session_figures(&fold, &regions);
    (records, figures)
}

/// The profile the C program wrote through its sink: a header, then exactly the records of the
/// Rust session; and its replay through the fold (as `ea2p report` does) gives the same figures.
fn check_profile(path: &Path, records: &[Record], figures: &[Vec<Tok>]) {
    let bytes = std::fs::read(path).expect("the C program wrote its profile");
    let header = probe(&bytes).expect("the profile opens with a header");
    assert_eq!(header.host.hostname.as_str(), "c-host");
    assert_eq!(header.command.as_str(), "ea2p_check");
    let read: Vec<Record> = Decoder::new(&bytes)
        .map(|r| r.expect("every frame decodes"))
        .collect();
    assert!(matches!(read[0], Record::Header(_)));
    assert_eq!(&read[1..], records);
    let mut fold = CFold::new(ea2p_core::fold::DEFAULT_PEAK_WINDOW_NS);
    let regions = fold_all(&mut fold, &read);
    assert_eq!(session_figures(&fold, &regions), figures);
}

/// Everything the C program must print, in order.
fn expected() -> Vec<Vec<Tok>> {
    let mut out = vec![fields!("version", env!("CARGO_PKG_VERSION"))];
    counter_and_track(&mut out);
    estimators_and_metrics(&mut out);
    policies(&mut out);
    out.extend(session_run().1);
    out.push(fields!("refusals", "checked"));
    out.push(fields!("ok"));
    out
}

/// The directory holding this profile's build of the library. The test binary lives in
/// `target/<profile>/deps/`, next to the library that `cargo test` has just built; the copy in
/// `target/<profile>/` is only refreshed by `cargo build`, so it is the fallback.
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    let deps = exe.parent().expect("the test binary is in a directory");
    let profile = deps
        .parent()
        .expect("deps/ is inside the profile directory");
    for dir in [deps, profile] {
        if dir.join("libea2p_capi.a").is_file() {
            return dir.to_owned();
        }
    }
    panic!(
        "libea2p_capi.a not found in {} or {}: cargo builds it with the crate's tests",
        profile.display(),
        deps.display()
    );
}

fn gcc(args: &[&std::ffi::OsStr]) {
    let status = Command::new("gcc").args(args).status().expect("run gcc");
    assert!(status.success(), "gcc {args:?} failed");
}

/// Runs a built C program and checks its output line by line.
fn run_and_check(exe: &Path, want: &[Vec<Tok>]) -> String {
    let profile = exe.with_extension("ea2p");
    let output = Command::new(exe)
        .arg(&profile)
        .output()
        .expect("run the C program");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    assert!(
        output.status.success(),
        "{} failed ({}):\n{stdout}\n{}",
        exe.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    for (n, (got, want)) in lines.iter().zip(want).enumerate() {
        let fields: Vec<&str> = got.split(' ').collect();
        let same =
            fields.len() == want.len() && want.iter().zip(&fields).all(|(w, g)| w.matches(g));
        assert!(
            same,
            "line {} of the C program's output differs from ea2p-core:\n  C:    {got}\n  Rust: {want:?}",
            n + 1
        );
    }
    assert_eq!(lines.len(), want.len(), "line count, output:\n{stdout}");
    let (records, figures) = session_run();
    check_profile(&profile, &records, &figures);
    stdout
}

#[test]
fn c_program_agrees_with_the_core() {
    if Command::new("gcc").arg("--version").output().is_err() {
        eprintln!("SKIPPED c_program_agrees_with_the_core: gcc is not installed");
        return;
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = crate_dir.join("tests/c/ea2p_check.c");
    let include = crate_dir.join("include");
    let lib_dir = library_dir();
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let want = expected();

    let flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"];
    let mut common: Vec<std::ffi::OsString> = flags.iter().map(Into::into).collect();
    common.push("-I".into());
    common.push(include.into());
    common.push(source.into());

    // Static: the archive itself, plus what the Rust standard library needs from libc.
    let static_exe = tmp.join("ea2p_check_static");
    let mut args = common.clone();
    args.push(lib_dir.join("libea2p_capi.a").into());
    for a in ["-lm", "-lpthread", "-ldl", "-o"] {
        args.push(a.into());
    }
    args.push(static_exe.clone().into());
    gcc(&args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>());
    let from_static = run_and_check(&static_exe, &want);

    // Shared: -lea2p_capi picks libea2p_capi.so, found at run time through the rpath.
    let shared_exe = tmp.join("ea2p_check_shared");
    let mut args = common;
    let mut rpath = std::ffi::OsString::from("-Wl,-rpath,");
    rpath.push(&lib_dir);
    let mut search = std::ffi::OsString::from("-L");
    search.push(&lib_dir);
    args.extend([search, "-lea2p_capi".into(), rpath, "-o".into()]);
    args.push(shared_exe.clone().into());
    gcc(&args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>());
    let from_shared = run_and_check(&shared_exe, &want);
    assert_eq!(from_static, from_shared);
}

#[test]
fn header_compiles_as_cpp() {
    if Command::new("g++").arg("--version").output().is_err() {
        eprintln!("SKIPPED header_compiles_as_cpp: g++ is not installed");
        return;
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let source = tmp.join("ea2p_header_check.cpp");
    std::fs::write(
        &source,
        "#include \"ea2p.h\"\nint main() { Ea2pCounter c; return ea2p_counter_init(&c, nullptr) == EA2P_STATUS_NULL_POINTER ? 0 : 1; }\n",
    )
    .unwrap();
    let status = Command::new("g++")
        .args([
            "-std=c++17",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-fsyntax-only",
            "-I",
        ])
        .arg(crate_dir.join("include"))
        .arg(&source)
        .status()
        .expect("run g++");
    assert!(status.success(), "the header does not compile as C++");
}
