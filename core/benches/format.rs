//! Cost of writing and reading profile frames: the sampler encodes one `Sample` frame per source
//! per reading (1000 per second per source at 1 ms), and `ea2p report` decodes whole files.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ea2p_core::format::{encode, Decoder, Record, Sample, SampleFlags, MAX_FRAME_LEN};
use ea2p_core::source::RawReading;

fn sample(i: u64) -> Record {
    Record::Sample(Sample {
        source: (i % 4) as u16,
        t_ns: 3_600_000_000_000 + i * 1_000_000,
        raw: RawReading::Counter(123_456_789_000 + i * 50_000),
        energy_j: 180_000.0 + i as f64 * 0.05,
        power_w: 50.0,
        flags: SampleFlags(0),
    })
}

fn format(c: &mut Criterion) {
    let mut buf = [0u8; MAX_FRAME_LEN];
    c.bench_function("encode_sample_frame", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            black_box(encode(black_box(&sample(i)), &mut buf).unwrap())
        })
    });

    // A file of 100 000 sample frames (100 s of 1 ms sampling of one source).
    let mut file = Vec::new();
    for i in 0..100_000 {
        let n = encode(&sample(i), &mut buf).unwrap();
        file.extend_from_slice(&buf[..n]);
    }
    let mut group = c.benchmark_group("decode_file");
    group.throughput(Throughput::Elements(100_000));
    group.sample_size(20);
    group.bench_function("100k_sample_frames", |b| {
        b.iter(|| black_box(Decoder::new(black_box(&file)).filter(|r| r.is_ok()).count()))
    });
    group.finish();
}

criterion_group!(benches, format);
criterion_main!(benches);
