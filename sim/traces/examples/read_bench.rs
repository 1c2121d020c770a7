//! Bench program: writes N synthetic jobs in each format to memory, then times reading
//! them back. `cargo run --release -p eas-traces --example read_bench -- 1000000`.
//! `read_bench gen FORMAT N PATH` writes such a file; `read_bench file FORMAT PATH`
//! streams one, to measure peak memory (e.g. under `/usr/bin/time -v`); `read_bench open FORMAT
//! PATH` streams it the way the simulator does (`eas_traces::open`: regular files only, rows
//! bounded by `input::RowLimit`), to measure what those checks cost against `file`.

use std::time::Instant;

use eas_traces::{read, write, Format, JobState, TraceJob};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("gen") => {
            let format: Format = args[2].parse().expect("format");
            let n: u64 = args[3].parse().expect("job count");
            let out = std::io::BufWriter::new(std::fs::File::create(&args[4]).expect("create"));
            write(format, out, jobs(n)).expect("write");
        }
        Some("file") => {
            let format: Format = args[2].parse().expect("format");
            let input = std::io::BufReader::new(std::fs::File::open(&args[3]).expect("open"));
            let t = Instant::now();
            let mut skip = eas_traces::SkipBad::new(read(format, input, &args[3]).expect("header"));
            let count = skip.by_ref().count();
            println!(
                "{format:?}: streamed {count} jobs from {} in {:.3} s, {} bad rows",
                args[3],
                t.elapsed().as_secs_f64(),
                skip.skipped()
            );
        }
        Some("open") => {
            let format: Format = args[2].parse().expect("format");
            let path = std::path::Path::new(&args[3]);
            let t = Instant::now();
            let mut skip = eas_traces::SkipBad::new(eas_traces::open(path, format).expect("open"));
            let count = skip.by_ref().count();
            println!(
                "{format:?}: streamed {count} jobs from {} through open() in {:.3} s, {} bad rows",
                args[3],
                t.elapsed().as_secs_f64(),
                skip.skipped()
            );
        }
        _ => in_memory(
            args.get(1)
                .and_then(|a| a.parse().ok())
                .unwrap_or(1_000_000),
        ),
    }
}

fn jobs(n: u64) -> impl Iterator<Item = TraceJob> + Clone {
    (0..n).map(|i| TraceJob {
        id: i.to_string(),
        user: format!("u{}", i % 500),
        submit_s: i as f64 * 3.0,
        start_s: Some(i as f64 * 3.0 + 10.0),
        end_s: Some(i as f64 * 3.0 + 10.0 + (i % 5000) as f64),
        gpus: [1, 1, 2, 4, 8][(i % 5) as usize],
        gpu_type: Some("V100".into()),
        state: if i % 10 == 0 {
            JobState::Failed
        } else {
            JobState::Completed
        },
        duration_s: Some((i % 5000) as f64),
    })
}

fn in_memory(n: u64) {
    for format in [Format::Helios, Format::Philly, Format::Alibaba] {
        let mut bytes = Vec::new();
        write(format, &mut bytes, jobs(n)).expect("write to memory");
        let t = Instant::now();
        let mut count = 0u64;
        let mut gpu_s = 0.0;
        for job in read(format, &bytes[..], "bench").expect("header") {
            let job = job.expect("valid row");
            gpu_s += job.work_gpu_s().unwrap_or(0.0);
            count += 1;
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "{format:?}: read {count} jobs ({:.1} MB) in {s:.3} s = {:.2} M jobs/s (checksum {gpu_s:e})",
            bytes.len() as f64 / 1e6,
            count as f64 / s / 1e6
        );
    }
}
