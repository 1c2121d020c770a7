//! Arbitrary bytes as what a measured program writes into `$EA2P_REGIONS`: split into lines
//! (bounded: no line over `MAX_LINE` is held) and parsed. No panic; a begin or end has a name.
#![no_main]

use std::io::BufReader;

use ea2p::regions::{next_line, parse_line, RegionLine, MAX_LINE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A small buffer: lines cross many refills, as on a pipe.
    let mut input = BufReader::with_capacity(7, data);
    let mut line = Vec::new();
    let mut lines = 0usize;
    while let Ok(Some(whole)) = next_line(&mut input, &mut line) {
        lines += 1;
        assert!(lines <= data.len() + 1);
        assert!(line.len() <= MAX_LINE);
        if !whole {
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        match parse_line(&text) {
            Ok(RegionLine::Begin(name)) | Ok(RegionLine::End(name)) => {
                assert!(!name.is_empty() && name.trim() == name, "{text:?}")
            }
            Ok(RegionLine::Blank) => assert!(text.trim().is_empty()),
            Err(e) => assert!(e.contains("expected `begin NAME` or `end NAME`")),
        }
    }
});
