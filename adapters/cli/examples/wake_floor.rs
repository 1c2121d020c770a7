//! The floor under the sampler's CPU cost: a thread that only wakes every `--interval` and, with
//! `--reads N`, preads one `energy_uj` N times, as the fast lane does. Compare its CPU time with
//! `ea2p run`'s (BENCHMARKS.md, "the sampler's own cost"):
//!
//! ```sh
//! /usr/bin/time -f "%U user %S sys" cargo run --release -p ea2p --example wake_floor -- 10 1 0
//! /usr/bin/time -f "%U user %S sys" cargo run --release -p ea2p --example wake_floor -- 10 1 8 /sys/class/powercap/intel-rapl:0/energy_uj
//! ```
//!
//! Arguments: seconds, interval in ms, reads per wake-up, and the file to read.

use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    let secs: f64 = arg(0, "10").parse().expect("seconds");
    let interval_ms: f64 = arg(1, "1").parse().expect("interval in ms");
    let reads: usize = arg(2, "0").parse().expect("reads per wake-up");
    let file = (reads > 0).then(|| {
        std::fs::File::open(arg(3, "/sys/class/powercap/intel-rapl:0/energy_uj"))
            .expect("the file to read")
    });
    let period = Duration::from_secs_f64(interval_ms / 1e3);
    let start = Instant::now();
    let mut next = start;
    let mut buf = [0u8; 32];
    let (mut wakes, mut bytes) = (0u64, 0usize);
    while start.elapsed() < Duration::from_secs_f64(secs) {
        next += period;
        std::thread::park_timeout(next.saturating_duration_since(Instant::now()));
        wakes += 1;
        if let Some(f) = &file {
            for _ in 0..reads {
                bytes += f.read_at(&mut buf, 0).unwrap_or(0);
            }
        }
    }
    println!("{wakes} wake-ups, {bytes} bytes read");
}
