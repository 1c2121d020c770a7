//! Arbitrary bytes through the row bound of the trace readers (`eas_traces::input::RowLimit`),
//! read in chunks of arbitrary sizes: it never panics, never passes on more than it was given,
//! never lets a row longer than the limit through (rows counted as the limit counts them: a line
//! feed outside double quotes ends one), and passes the input unchanged when no row is too long.
#![no_main]

use std::io::Read;

use eas_traces::input::RowLimit;
use libfuzzer_sys::fuzz_target;

/// Length of the longest row of `bytes`, as `RowLimit` counts (the line feed ending a row is
/// not counted; one inside quotes is).
fn longest_row(bytes: &[u8]) -> usize {
    let (mut quoted, mut len, mut max) = (false, 0usize, 0usize);
    for &b in bytes {
        if b == b'"' {
            quoted = !quoted;
        }
        if b == b'\n' && !quoted {
            len = 0;
            continue;
        }
        len += 1;
        max = max.max(len);
    }
    max
}

fuzz_target!(|data: &[u8]| {
    let Some((&[limit, chunk], body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let limit = usize::from(limit % 64) + 1;
    let chunk = usize::from(chunk % 16) + 1;
    let mut r = RowLimit::new(body, limit);
    // What passes between two errors, each read from a fresh row state.
    let mut segments: Vec<Vec<u8>> = vec![Vec::new()];
    let mut buf = vec![0u8; chunk];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => segments.last_mut().unwrap().extend_from_slice(&buf[..n]),
            Err(e) => {
                assert!(e.to_string().contains("longer than"), "{e}");
                segments.push(Vec::new());
            }
        }
        let out: usize = segments.iter().map(Vec::len).sum();
        assert!(out <= body.len(), "more out than in");
        assert!(segments.len() <= body.len() + 1, "an error without a byte");
    }
    for seg in &segments {
        assert!(
            longest_row(seg) <= limit,
            "a row over {limit} bytes went through"
        );
    }
    if longest_row(body) <= limit {
        assert_eq!(
            segments,
            vec![body.to_vec()],
            "a stream within the limit changed"
        );
    } else {
        assert!(segments.len() >= 2, "an over-long row went through");
    }
});
