//! The committed header must be what cbindgen generates from the current sources.

use std::path::Path;

#[test]
fn header_is_up_to_date() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("adapters/capi/cbindgen.toml should parse");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen should parse adapters/capi/src");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");

    let path = crate_dir.join("include/ea2p.h");
    if std::env::var_os("EA2P_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write include/ea2p.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or(
                committed.lines().count().min(generated.lines().count()),
                |i| i,
            )
            + 1;
        panic!(
            "{} is stale (first difference at line {line}); regenerate it with\n    \
             EA2P_BLESS=1 cargo test -p ea2p-capi --test header",
            path.display()
        );
    }
}

/// `enum Ea2pGapReason` in the header lists every reason of the core, under the core's short
/// name, in the core's order (its C value is the position, the index of `anomalies`).
#[test]
fn gap_reasons_in_the_header_are_the_cores() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(crate_dir.join("include/ea2p.h")).unwrap();
    let start = header
        .find("enum Ea2pGapReason {")
        .expect("the header declares enum Ea2pGapReason");
    let body = &header[start..start + header[start..].find('}').unwrap()];
    let names: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("EA2P_GAP_REASON_"))
        .map(|l| l.trim_end_matches(','))
        .collect();
    let want: Vec<String> = ea2p_core::format::GapReason::ALL
        .iter()
        .map(|r| {
            format!(
                "EA2P_GAP_REASON_{}",
                r.as_str().to_uppercase().replace('-', "_")
            )
        })
        .collect();
    assert_eq!(names, want);
    for (i, r) in ea2p_core::format::GapReason::ALL.iter().enumerate() {
        assert_eq!(r.index(), i);
    }
}
