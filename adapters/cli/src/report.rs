//! `ea2p report`: re-reads a profile, a damaged or cut one too.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use ea2p_core::format::{self, Decoder, Record};
use ea2p_core::units::{secs, Nanos};

use crate::discover::component_name;

/// The report on the profile at `file`, as text.
pub fn report(file: &Path) -> Result<String> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    format::probe(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a readable ea2p profile: {e:?}", file.display()))?;
    let mut names: Vec<(u16, String, bool)> = Vec::new();
    let mut last: BTreeMap<u16, (Nanos, f64)> = Default::default();
    let (mut skipped, mut lost_bytes, mut end) = (0u64, 0u64, None);
    let mut t_max = 0;
    for item in Decoder::new(&bytes) {
        match item {
            Ok(Record::Source(d)) => {
                names.push((d.id, component_name(&d.info), d.info.component.is_nested()))
            }
            Ok(Record::Sample(s)) => {
                last.insert(s.source, (s.t_ns, s.energy_j));
                t_max = t_max.max(s.t_ns);
            }
            Ok(Record::End(e)) => end = Some(e),
            Ok(_) => {}
            Err(s) => {
                skipped += 1;
                lost_bytes += s.len;
            }
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "{}: {} bytes", file.display(), bytes.len());
    let mut total = 0.0;
    for (id, name, nested) in &names {
        let (t, e) = last.get(id).copied().unwrap_or((0, 0.0));
        if !nested {
            total += e;
        }
        let _ = writeln!(out, "  {name:<11} {e:>12.3} J up to {:.3} s", secs(t));
    }
    let _ = writeln!(out, "  total {total:.3} J over {:.3} s", secs(t_max));
    match end {
        Some(e) => {
            let _ = writeln!(out, "  run ended normally ({:?})", e.exit);
        }
        None => {
            let _ = writeln!(
                out,
                "  no end record: the run was cut (crash or kill); figures are up to the last intact sample"
            );
        }
    }
    if skipped > 0 {
        let _ = writeln!(
            out,
            "  {skipped} damaged or partial stretch(es), {lost_bytes} bytes skipped"
        );
    }
    Ok(out)
}
