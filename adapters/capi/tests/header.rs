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
