//! Reads the selected NVIDIA GPUs for real: prints each source, measures how often the energy
//! counter and the power reading change, then samples both every 100 ms while (with `--load`) a
//! CUDA kernel keeps GPU 0 busy, and compares the counter's energy with the integrated power.
//!
//! ```text
//! cargo run --release -p ea2p-nvml --example probe -- [--seconds 3] [--load]
//! ```
//!
//! The load uses the CUDA driver API (`libcuda.so.1`, loaded at run time) with a small PTX kernel,
//! so no CUDA toolkit or Python is needed on the GPU machine.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ea2p_core::counter::EnergyCounter;
use ea2p_core::integrate::{EnergyTrack, SeriesKind};
use ea2p_core::source::{RawReading, Source};
use ea2p_nvml::{discover, GpuBackend, NvmlBackend, Selection};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: f64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let with_load = args.iter().any(|a| a == "--load");
    let transition = args.iter().any(|a| a == "--transition");
    let list_only = args.iter().any(|a| a == "--list");
    let attribution_secs: Option<f64> = args
        .iter()
        .position(|a| a == "--attribution")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok());

    let mut gpus = match discover(&Selection::from_env()) {
        Ok(g) => g,
        Err(e) => {
            println!("NVIDIA: not available: {e}");
            return;
        }
    };
    println!("driver: {:?}", gpus.driver_version);
    for n in &gpus.notes {
        println!("note: {n}");
    }
    for s in &gpus.skipped {
        println!("skipped GPU {}: {}", s.index, s.reason);
    }
    for s in &gpus.sources {
        println!("source: uuid={} {:?}", s.uuid(), s.info());
    }
    let backend: Arc<NvmlBackend> = Arc::clone(gpus.backend());
    let gpu = gpus.sources[0].gpu_index();

    if list_only {
        return;
    }
    if let Some(secs) = attribution_secs {
        attribution(&gpus, secs);
        return;
    }
    if transition {
        call_costs(&backend, gpu);
        load_transition(&backend, gpu);
        return;
    }

    println!("\n== update rate at idle (poll every 1 ms for 2 s) ==");
    update_rate(&backend, gpu, Duration::from_secs(2));

    let stop = Arc::new(AtomicBool::new(false));
    let load = with_load.then(|| {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || cuda_load(&stop))
    });
    if load.is_some() {
        // Context creation and JIT take a moment; let the load ramp up.
        std::thread::sleep(Duration::from_millis(1500));
        println!("\n== update rate under load (poll every 1 ms for 2 s) ==");
        update_rate(&backend, gpu, Duration::from_secs(2));
    }

    println!("\n== sampling every 100 ms for {seconds} s ==");
    let source = &mut gpus.sources[0];
    let info = source.info().clone();
    let mut counter = info.counter_spec().map(EnergyCounter::new);
    let mut power_track = EnergyTrack::new(SeriesKind::PowerSamples, 0);
    let t0 = Instant::now();
    let mut first_counter: Option<u64> = None;
    let mut last_counter = 0u64;
    let mut next = t0;
    let mut read_ns_total = 0u128;
    let mut reads = 0u32;
    while t0.elapsed().as_secs_f64() < seconds {
        let now = t0.elapsed().as_nanos() as u64;
        let r0 = Instant::now();
        let reading = source.read(now);
        let power = backend.power_mw(gpu);
        read_ns_total += r0.elapsed().as_nanos();
        reads += 1;
        let power_w = power.as_ref().map(|mw| f64::from(*mw) / 1000.0).ok();
        match reading {
            Ok(RawReading::Counter(mj)) => {
                first_counter.get_or_insert(mj);
                last_counter = mj;
                if let Some(c) = counter.as_mut() {
                    let u = c.update(now, mj);
                    println!(
                        "t={:7.3}s counter={mj} mJ ({:?}) power={power_w:?} W",
                        now as f64 / 1e9,
                        u.event
                    );
                }
            }
            Ok(RawReading::PowerMilliwatts(mw)) => {
                println!("t={:7.3}s power={} W", now as f64 / 1e9, mw as f64 / 1000.0)
            }
            Err(e) => println!("t={:7.3}s read error: {e}", now as f64 / 1e9),
        }
        if let Some(w) = power_w {
            let _ = power_track.push_power(now, w);
        }
        next += Duration::from_millis(100);
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let elapsed = power_track.duration_ns() as f64 / 1e9;
    println!("\n== summary over {elapsed:.3} s ==");
    if let (Some(c), Some(first)) = (counter.as_ref(), first_counter) {
        println!(
            "counter: {:.3} J (raw delta {} mJ), average {:.1} W, stats {:?}",
            c.total_j(),
            last_counter - first,
            c.total_j() / elapsed,
            c.stats()
        );
        println!(
            "power integrated (trapezoid): {:.3} J, average {:.1} W, peak {:.1} W",
            power_track.total_j(),
            power_track.average_w().unwrap_or(0.0),
            power_track.peak_w()
        );
        if power_track.total_j() > 0.0 {
            println!(
                "counter / integrated power = {:.4}",
                c.total_j() / power_track.total_j()
            );
        }
    }
    println!(
        "mean cost of one counter read + one power read: {:.1} us",
        read_ns_total as f64 / f64::from(reads.max(1)) / 1e3
    );

    println!(
        "\n== attribution (this process is pid {}) ==",
        std::process::id()
    );
    let mut probe = gpus.process_probe();
    let ours: BTreeSet<u32> = [std::process::id()].into_iter().collect();
    for a in probe.sample() {
        println!(
            "gpu {}: processes {:?}; utilisation samples {:?}; share of pid {}: {:?}",
            a.gpu_index,
            a.processes,
            a.utilization.as_ref().map(|v| v.len()),
            std::process::id(),
            a.share(&ours)
        );
    }

    stop.store(true, Ordering::Relaxed);
    if let Some(h) = load {
        match h.join() {
            Ok(Ok(launches)) => println!("load: {launches} kernel launches"),
            Ok(Err(e)) => println!("load: failed: {e}"),
            Err(_) => println!("load: thread panicked"),
        }
    }
}

/// Runs this process's CUDA load and prints, every 500 ms, the processes on each GPU, their SM
/// utilisation since the previous probe, and this process's share.
fn attribution(gpus: &ea2p_nvml::NvmlGpus, secs: f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || cuda_load(&stop))
    };
    let me = std::process::id();
    let ours: BTreeSet<u32> = [me].into_iter().collect();
    println!("== attribution every 500 ms for {secs} s; this process is pid {me} ==");
    let mut probe = gpus.process_probe();
    let t0 = Instant::now();
    while t0.elapsed().as_secs_f64() < secs {
        std::thread::sleep(Duration::from_millis(500));
        for a in probe.sample() {
            let procs: Vec<String> = match &a.processes {
                Ok(v) => v
                    .iter()
                    .map(|p| {
                        format!(
                            "{}:{}MiB",
                            p.pid,
                            p.used_memory_bytes.map_or(0, |b| b >> 20)
                        )
                    })
                    .collect(),
                Err(e) => vec![format!("error {e}")],
            };
            let mut sm: std::collections::BTreeMap<u32, (u32, u32)> = Default::default();
            if let Ok(v) = &a.utilization {
                for s in v {
                    let e = sm.entry(s.pid).or_default();
                    e.0 += s.sm_percent;
                    e.1 += 1;
                }
            }
            println!(
                "t={:5.1}s gpu {} processes [{}] sm%(sum,samples) {:?} share of {me}: {:?}",
                t0.elapsed().as_secs_f64(),
                a.gpu_index,
                procs.join(" "),
                sm,
                a.share(&ours)
                    .map(|s| (format!("{:.3}", s.fraction), s.basis))
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    println!("load: {:?}", load.join().map_err(|_| "panicked"));
}

/// Mean wall time of each NVML query used per read.
fn call_costs(backend: &NvmlBackend, gpu: u32) {
    const N: u32 = 200;
    let time = |f: &dyn Fn()| {
        let t = Instant::now();
        for _ in 0..N {
            f();
        }
        t.elapsed().as_secs_f64() * 1e6 / f64::from(N)
    };
    println!("== cost per call, mean of {N} ==");
    println!(
        "device_count: {:.1} us",
        time(&|| drop(backend.device_count()))
    );
    println!(
        "total_energy_mj (lookup + query): {:.1} us",
        time(&|| drop(backend.total_energy_mj(gpu)))
    );
    println!(
        "power_mw (lookup + query): {:.1} us",
        time(&|| drop(backend.power_mw(gpu)))
    );
}

/// Samples every 100 ms for 5 s; a CUDA load runs from 1 s to 3 s. Prints the counter's power
/// over each interval next to NVML's power reading, to show the reading's averaging lag.
fn load_transition(backend: &NvmlBackend, gpu: u32) {
    println!("\n== load from t=1 s to t=3 s: counter-derived W per 100 ms vs NVML power ==");
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let mut next = t0;
    let mut prev: Option<(f64, u64)> = None;
    let mut load = None;
    while t0.elapsed().as_secs_f64() < 5.0 {
        let t = t0.elapsed().as_secs_f64();
        if load.is_none() && t >= 1.0 {
            let stop = Arc::clone(&stop);
            load = Some(std::thread::spawn(move || cuda_load(&stop)));
        }
        if t >= 3.0 {
            stop.store(true, Ordering::Relaxed);
        }
        let e = backend.total_energy_mj(gpu);
        let p = backend.power_mw(gpu);
        if let (Ok(e), Ok(p)) = (e, p) {
            let counter_w = prev.map(|(tp, ep)| (e - ep) as f64 / 1e3 / (t - tp));
            println!(
                "t={t:6.3}s counter-derived {:>7} W  nvml power {:7.1} W",
                counter_w.map_or("-".to_owned(), |w| format!("{w:.1}")),
                f64::from(p) / 1e3
            );
            prev = Some((t, e));
        }
        next += Duration::from_millis(100);
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(h) = load {
        println!("load: {:?}", h.join().map_err(|_| "panicked"));
    }
}

/// Polls the counter and the power every millisecond and prints how often each changed.
fn update_rate(backend: &NvmlBackend, gpu: u32, span: Duration) {
    let t0 = Instant::now();
    let mut last_e = None;
    let mut last_p = None;
    let mut e_changes: Vec<f64> = Vec::new();
    let mut p_changes: Vec<f64> = Vec::new();
    let mut polls = 0u32;
    while t0.elapsed() < span {
        let t = t0.elapsed().as_secs_f64() * 1e3;
        polls += 1;
        if let Ok(e) = backend.total_energy_mj(gpu) {
            if last_e.is_some_and(|l| l != e) {
                e_changes.push(t);
            }
            last_e = Some(e);
        }
        if let Ok(p) = backend.power_mw(gpu) {
            if last_p.is_some_and(|l| l != p) {
                p_changes.push(t);
            }
            last_p = Some(p);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("polls: {polls}");
    for (what, ch) in [("energy counter", &e_changes), ("power", &p_changes)] {
        let mut gaps: Vec<f64> = ch.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort_by(f64::total_cmp);
        if gaps.is_empty() {
            println!("{what}: {} changes", ch.len());
        } else {
            println!(
                "{what}: {} changes; interval between changes min {:.1} ms, median {:.1} ms, max {:.1} ms",
                ch.len(),
                gaps[0],
                gaps[gaps.len() / 2],
                gaps[gaps.len() - 1]
            );
        }
    }
}

const PTX: &str = "
.version 6.0
.target sm_60
.address_size 64

.visible .entry burn(
    .param .u64 out,
    .param .u32 iters
)
{
    .reg .pred %p<2>;
    .reg .f32 %f<4>;
    .reg .b32 %r<4>;
    .reg .b64 %rd<4>;

    ld.param.u64 %rd1, [out];
    ld.param.u32 %r1, [iters];
    mov.u32 %r2, %tid.x;
    cvt.rn.f32.u32 %f1, %r2;
    mov.f32 %f2, 0f3F7FFFF0;
    mov.f32 %f3, 0f3DCCCCCD;
    mov.u32 %r3, 0;
$L_loop:
    fma.rn.f32 %f1, %f1, %f2, %f3;
    fma.rn.f32 %f3, %f3, %f2, %f1;
    add.u32 %r3, %r3, 1;
    setp.lt.u32 %p1, %r3, %r1;
    @%p1 bra $L_loop;
    cvta.to.global.u64 %rd2, %rd1;
    mul.wide.u32 %rd3, %r2, 4;
    add.s64 %rd2, %rd2, %rd3;
    add.f32 %f1, %f1, %f3;
    st.global.f32 [%rd2], %f1;
    ret;
}
\0";

type CuResult = std::os::raw::c_int;
type Ptr = *mut std::ffi::c_void;

/// Keeps CUDA device 0 busy with an FMA loop until `stop`; returns the number of launches.
fn cuda_load(stop: &AtomicBool) -> Result<u64, String> {
    use std::os::raw::{c_char, c_int, c_uint};
    // SAFETY: libcuda.so.1 is the CUDA driver library; loading it runs no user-visible code.
    let lib = unsafe { libloading::Library::new("libcuda.so.1") }.map_err(|e| e.to_string())?;
    macro_rules! sym {
        ($name:literal, $ty:ty) => {
            // SAFETY: the type matches the CUDA driver API prototype of this symbol (cuda.h).
            *unsafe { lib.get::<$ty>($name) }.map_err(|e| e.to_string())?
        };
    }
    let cu_init = sym!(b"cuInit\0", unsafe extern "C" fn(c_uint) -> CuResult);
    let cu_device_get = sym!(
        b"cuDeviceGet\0",
        unsafe extern "C" fn(*mut c_int, c_int) -> CuResult
    );
    let cu_ctx_create = sym!(
        b"cuCtxCreate_v2\0",
        unsafe extern "C" fn(*mut Ptr, c_uint, c_int) -> CuResult
    );
    let cu_module_load_data = sym!(
        b"cuModuleLoadData\0",
        unsafe extern "C" fn(*mut Ptr, *const std::ffi::c_void) -> CuResult
    );
    let cu_module_get_function = sym!(
        b"cuModuleGetFunction\0",
        unsafe extern "C" fn(*mut Ptr, Ptr, *const c_char) -> CuResult
    );
    let cu_mem_alloc = sym!(
        b"cuMemAlloc_v2\0",
        unsafe extern "C" fn(*mut u64, usize) -> CuResult
    );
    #[allow(clippy::type_complexity)]
    let cu_launch = sym!(
        b"cuLaunchKernel\0",
        unsafe extern "C" fn(
            Ptr,
            c_uint,
            c_uint,
            c_uint,
            c_uint,
            c_uint,
            c_uint,
            c_uint,
            Ptr,
            *mut Ptr,
            *mut Ptr,
        ) -> CuResult
    );
    let cu_sync = sym!(b"cuCtxSynchronize\0", unsafe extern "C" fn() -> CuResult);
    let check = |what: &str, r: CuResult| {
        if r == 0 {
            Ok(())
        } else {
            Err(format!("{what} returned CUresult {r}"))
        }
    };
    // SAFETY: each call follows the CUDA driver API contract: out-pointers point to live locals,
    // the PTX image is NUL-terminated, the kernel parameters match the kernel's signature
    // (u64 pointer, u32), and the context stays current on this thread for every call.
    unsafe {
        check("cuInit", cu_init(0))?;
        let mut dev: c_int = 0;
        check("cuDeviceGet", cu_device_get(&mut dev, 0))?;
        let mut ctx: Ptr = std::ptr::null_mut();
        check("cuCtxCreate", cu_ctx_create(&mut ctx, 0, dev))?;
        let mut module: Ptr = std::ptr::null_mut();
        check(
            "cuModuleLoadData",
            cu_module_load_data(&mut module, PTX.as_ptr().cast()),
        )?;
        let mut func: Ptr = std::ptr::null_mut();
        check(
            "cuModuleGetFunction",
            cu_module_get_function(&mut func, module, c"burn".as_ptr()),
        )?;
        let mut out: u64 = 0;
        check("cuMemAlloc", cu_mem_alloc(&mut out, 1024 * 4))?;
        let mut iters: u32 = 2_000_000;
        let mut launches = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let mut params: [Ptr; 2] = [
                (&mut out as *mut u64).cast(),
                (&mut iters as *mut u32).cast(),
            ];
            check(
                "cuLaunchKernel",
                cu_launch(
                    func,
                    132 * 16,
                    1,
                    1,
                    256,
                    1,
                    1,
                    0,
                    std::ptr::null_mut(),
                    params.as_mut_ptr(),
                    std::ptr::null_mut(),
                ),
            )?;
            check("cuCtxSynchronize", cu_sync())?;
            launches += 1;
        }
        Ok(launches)
    }
}
