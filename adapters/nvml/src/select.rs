//! Which GPUs to measure: all of them, an explicit list of indices (`--devices`), or those that
//! `CUDA_VISIBLE_DEVICES` gives the measured command.
//!
//! `CUDA_VISIBLE_DEVICES` is a comma-separated list of GPU indices, `GPU-<uuid>` UUIDs (a unique
//! prefix is enough) or `MIG-...` instances. CUDA reads it left to right and stops at the first
//! entry it cannot use: everything after an invalid entry is hidden (`0,2,-1,1` gives GPUs 0 and
//! 2; `-1` or an empty value gives none). [`parse_cuda_visible_devices`] is the syntactic half of
//! that rule (pure, no device list needed); [`Selection::resolve`] is the half that needs the
//! devices (an index past the last GPU, a UUID that matches none or several, a duplicate).

use std::collections::BTreeSet;

/// One usable entry of `CUDA_VISIBLE_DEVICES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CudaEntry {
    /// A device index (in CUDA's enumeration order, see [`Selection::resolve`]).
    Index(u32),
    /// A GPU UUID or a prefix of one, lowercased, with its `GPU-` prefix (e.g. `gpu-8f6a`).
    Uuid(String),
    /// A MIG instance (`MIG-<uuid>` or `MIG-GPU-<uuid>/<gi>/<ci>`), as written. NVML has no
    /// per-instance energy, so these are reported and skipped.
    Mig(String),
}

/// Where and why parsing stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// Zero-based position of the offending entry in the list.
    pub position: usize,
    /// The entry as written (trimmed).
    pub entry: String,
    /// Why CUDA would not use it.
    pub reason: &'static str,
}

/// The parsed variable: the entries CUDA would use, in order, and where it stopped if it did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CudaVisibleDevices {
    /// Entries before the first invalid one.
    pub entries: Vec<CudaEntry>,
    /// The first invalid entry, which hides it and everything after it.
    pub stopped: Option<Stopped>,
}

/// Parses the value of `CUDA_VISIBLE_DEVICES` the way CUDA does: entries are trimmed; an index is
/// decimal digits only; a UUID starts with `GPU-` (any case) followed by hex digits and dashes; a
/// MIG entry starts with `MIG-`; an empty value selects no GPU; the first entry that is none of
/// these (including an empty entry between commas, `-1`, or an index repeated) ends the list.
pub fn parse_cuda_visible_devices(value: &str) -> CudaVisibleDevices {
    let mut out = CudaVisibleDevices::default();
    if value.trim().is_empty() {
        return out;
    }
    let mut seen_indices = BTreeSet::new();
    for (position, raw) in value.split(',').enumerate() {
        let entry = raw.trim();
        let parsed = classify(entry).and_then(|e| match e {
            CudaEntry::Index(i) if !seen_indices.insert(i) => Err("index repeated"),
            other => Ok(other),
        });
        match parsed {
            Ok(e) => out.entries.push(e),
            Err(reason) => {
                out.stopped = Some(Stopped {
                    position,
                    entry: entry.to_owned(),
                    reason,
                });
                break;
            }
        }
    }
    out
}

fn classify(entry: &str) -> Result<CudaEntry, &'static str> {
    if entry.is_empty() {
        return Err("empty entry");
    }
    if entry.bytes().all(|b| b.is_ascii_digit()) {
        return entry
            .parse::<u32>()
            .map(CudaEntry::Index)
            .map_err(|_| "index too large");
    }
    let upper_prefix = entry.get(..4).map(str::to_ascii_uppercase);
    match upper_prefix.as_deref() {
        Some("GPU-") => {
            let rest = &entry[4..];
            let hex_digits = rest.bytes().filter(u8::is_ascii_hexdigit).count();
            if hex_digits == 0 || !rest.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
                Err("malformed GPU UUID")
            } else {
                Ok(CudaEntry::Uuid(entry.to_ascii_lowercase()))
            }
        }
        Some("MIG-") if entry.len() > 4 => Ok(CudaEntry::Mig(entry.to_owned())),
        _ => Err("not an index, GPU- UUID or MIG- instance"),
    }
}

/// A GPU as seen by NVML, for resolving a selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceId {
    /// NVML index (PCI bus order).
    pub index: u32,
    /// `GPU-...` UUID (empty if the driver did not report one).
    pub uuid: String,
    /// Marketing name, used to tell whether CUDA's default order can differ from NVML's.
    pub name: String,
}

/// Which GPUs to measure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Selection {
    /// Every GPU the driver sees.
    #[default]
    All,
    /// Explicit NVML indices (`--devices gpu:0,2`).
    Indices(Vec<u32>),
    /// The GPUs `CUDA_VISIBLE_DEVICES` exposes to the measured command.
    CudaVisible {
        /// The variable's value.
        value: String,
        /// True when `CUDA_DEVICE_ORDER=PCI_BUS_ID`, so CUDA indices equal NVML indices.
        pci_bus_order: bool,
    },
}

/// The GPUs a selection resolves to, with anything the user should know about how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    /// NVML indices, in the order given, without duplicates.
    pub indices: Vec<u32>,
    /// Entries skipped or caveats, one sentence each.
    pub notes: Vec<String>,
}

/// An explicit selection that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// `--devices` named an index that does not exist.
    #[error("no NVIDIA GPU with index {index}: NVML sees {count} (indices 0..{count})")]
    NoSuchIndex {
        /// The index asked for.
        index: u32,
        /// How many GPUs there are.
        count: u32,
    },
}

impl Selection {
    /// `CudaVisible` when `CUDA_VISIBLE_DEVICES` is set in this process's environment, else `All`.
    pub fn from_env() -> Self {
        match std::env::var("CUDA_VISIBLE_DEVICES") {
            Ok(value) => Selection::CudaVisible {
                value,
                pci_bus_order: std::env::var("CUDA_DEVICE_ORDER")
                    .is_ok_and(|v| v.trim().eq_ignore_ascii_case("PCI_BUS_ID")),
            },
            Err(_) => Selection::All,
        }
    }

    /// Resolves the selection against the GPUs NVML sees.
    ///
    /// CUDA numbers GPUs fastest first unless `CUDA_DEVICE_ORDER=PCI_BUS_ID`, while NVML numbers
    /// them in PCI bus order; the two agree when all GPUs are the same model (ties are broken by
    /// bus id). Indices are mapped in NVML order, with a note when the models differ and the
    /// order was not pinned; UUIDs are exact either way.
    pub fn resolve(&self, devices: &[DeviceId]) -> Result<Resolution, SelectError> {
        let count = devices.len() as u32;
        match self {
            Selection::All => Ok(Resolution {
                indices: devices.iter().map(|d| d.index).collect(),
                notes: Vec::new(),
            }),
            Selection::Indices(list) => {
                let mut out = Resolution::default();
                for &index in list {
                    if index >= count {
                        return Err(SelectError::NoSuchIndex { index, count });
                    }
                    if !out.indices.contains(&index) {
                        out.indices.push(index);
                    }
                }
                Ok(out)
            }
            Selection::CudaVisible {
                value,
                pci_bus_order,
            } => Ok(resolve_cuda(value, *pci_bus_order, devices)),
        }
    }
}

fn resolve_cuda(value: &str, pci_bus_order: bool, devices: &[DeviceId]) -> Resolution {
    let parsed = parse_cuda_visible_devices(value);
    let mut out = Resolution::default();
    let mixed_models = devices.windows(2).any(|w| w[0].name != w[1].name);
    let mut warned_order = false;
    let stop = |out: &mut Resolution, entry: &str, why: String| {
        out.notes.push(format!(
            "CUDA_VISIBLE_DEVICES entry {entry:?} {why}: CUDA ignores it and every entry after it"
        ));
    };
    for entry in &parsed.entries {
        let index = match entry {
            CudaEntry::Mig(m) => {
                out.notes.push(format!(
                    "CUDA_VISIBLE_DEVICES entry {m:?} is a MIG instance: NVML has no \
                     per-instance energy, skipped"
                ));
                continue;
            }
            CudaEntry::Index(i) => {
                if *i >= devices.len() as u32 {
                    stop(
                        &mut out,
                        &i.to_string(),
                        format!("is past the last GPU ({} present)", devices.len()),
                    );
                    break;
                }
                if mixed_models && !pci_bus_order && !warned_order {
                    warned_order = true;
                    out.notes.push(
                        "GPUs of different models and CUDA_DEVICE_ORDER is not PCI_BUS_ID: CUDA \
                         may number them differently from NVML; indices were mapped in PCI order \
                         (set CUDA_DEVICE_ORDER=PCI_BUS_ID or use GPU- UUIDs to be exact)"
                            .to_owned(),
                    );
                }
                devices[*i as usize].index
            }
            CudaEntry::Uuid(prefix) => {
                let matches: Vec<&DeviceId> = devices
                    .iter()
                    .filter(|d| {
                        !d.uuid.is_empty() && d.uuid.to_ascii_lowercase().starts_with(prefix)
                    })
                    .collect();
                match matches.as_slice() {
                    [one] => one.index,
                    [] => {
                        stop(&mut out, prefix, "matches no GPU".to_owned());
                        break;
                    }
                    _ => {
                        stop(&mut out, prefix, format!("matches {} GPUs", matches.len()));
                        break;
                    }
                }
            }
        };
        if out.indices.contains(&index) {
            stop(
                &mut out,
                &format!("{entry:?}"),
                format!("names GPU {index} a second time"),
            );
            break;
        }
        out.indices.push(index);
    }
    if let Some(s) = &parsed.stopped {
        if out
            .notes
            .iter()
            .all(|n| !n.contains("every entry after it"))
        {
            out.notes.push(format!(
                "CUDA_VISIBLE_DEVICES entry {:?} (position {}) is invalid ({}): CUDA ignores it \
                 and every entry after it",
                s.entry, s.position, s.reason
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(list: &[u32]) -> Vec<CudaEntry> {
        list.iter().map(|&i| CudaEntry::Index(i)).collect()
    }

    #[test]
    fn plain_index_lists() {
        let p = parse_cuda_visible_devices("0,1,3");
        assert_eq!(p.entries, idx(&[0, 1, 3]));
        assert_eq!(p.stopped, None);
        let p = parse_cuda_visible_devices(" 2 , 0 ");
        assert_eq!(p.entries, idx(&[2, 0]));
    }

    #[test]
    fn empty_value_selects_nothing() {
        for v in ["", "   "] {
            let p = parse_cuda_visible_devices(v);
            assert!(p.entries.is_empty());
            assert_eq!(p.stopped, None);
        }
    }

    #[test]
    fn invalid_entry_stops_the_list() {
        let p = parse_cuda_visible_devices("0,2,-1,1");
        assert_eq!(p.entries, idx(&[0, 2]));
        let s = p.stopped.unwrap();
        assert_eq!(s.position, 2);
        assert_eq!(s.entry, "-1");

        let p = parse_cuda_visible_devices("-1");
        assert!(p.entries.is_empty());
        assert!(p.stopped.is_some());

        let p = parse_cuda_visible_devices("0,,1");
        assert_eq!(p.entries, idx(&[0]));
        assert_eq!(p.stopped.unwrap().reason, "empty entry");

        for bad in ["1a", "+1", "0x1", "gpu", "GPU-", "GPU-xyz", "MIG-", "1.5"] {
            let p = parse_cuda_visible_devices(&format!("0,{bad},1"));
            assert_eq!(p.entries, idx(&[0]), "{bad}");
            assert_eq!(p.stopped.unwrap().position, 1, "{bad}");
        }
    }

    #[test]
    fn repeated_index_stops_the_list() {
        let p = parse_cuda_visible_devices("1,0,1,2");
        assert_eq!(p.entries, idx(&[1, 0]));
        assert_eq!(p.stopped.unwrap().reason, "index repeated");
    }

    #[test]
    fn huge_index_is_invalid() {
        let p = parse_cuda_visible_devices("99999999999");
        assert!(p.entries.is_empty());
        assert_eq!(p.stopped.unwrap().reason, "index too large");
    }

    #[test]
    fn uuids_full_prefix_and_case() {
        let p = parse_cuda_visible_devices("GPU-8f6a3c1e-1234-5678-9abc-def012345678,gpu-AB12,1");
        assert_eq!(
            p.entries,
            vec![
                CudaEntry::Uuid("gpu-8f6a3c1e-1234-5678-9abc-def012345678".into()),
                CudaEntry::Uuid("gpu-ab12".into()),
                CudaEntry::Index(1),
            ]
        );
    }

    #[test]
    fn mig_entries_are_kept_for_a_note() {
        let p = parse_cuda_visible_devices("MIG-GPU-8f6a/1/0,0");
        assert_eq!(
            p.entries,
            vec![
                CudaEntry::Mig("MIG-GPU-8f6a/1/0".into()),
                CudaEntry::Index(0)
            ]
        );
    }

    fn devices() -> Vec<DeviceId> {
        ["GPU-aaaa1111", "GPU-aaaa2222", "GPU-bbbb3333"]
            .iter()
            .enumerate()
            .map(|(i, u)| DeviceId {
                index: i as u32,
                uuid: (*u).to_owned(),
                name: "NVIDIA H100".to_owned(),
            })
            .collect()
    }

    fn cuda(v: &str) -> Selection {
        Selection::CudaVisible {
            value: v.to_owned(),
            pci_bus_order: false,
        }
    }

    #[test]
    fn resolves_indices_and_uuid_prefixes() {
        let r = cuda("2,GPU-aaaa1").resolve(&devices()).unwrap();
        assert_eq!(r.indices, vec![2, 0]);
        assert!(r.notes.is_empty());
    }

    #[test]
    fn ambiguous_or_unknown_uuid_stops() {
        let r = cuda("1,GPU-aaaa,0").resolve(&devices()).unwrap();
        assert_eq!(r.indices, vec![1]);
        assert!(r.notes[0].contains("matches 2 GPUs"), "{:?}", r.notes);
        let r = cuda("GPU-cccc,0").resolve(&devices()).unwrap();
        assert!(r.indices.is_empty());
        assert!(r.notes[0].contains("matches no GPU"));
    }

    #[test]
    fn index_past_the_end_stops() {
        let r = cuda("0,3,1").resolve(&devices()).unwrap();
        assert_eq!(r.indices, vec![0]);
        assert!(r.notes[0].contains("past the last GPU"));
    }

    #[test]
    fn uuid_naming_an_already_selected_gpu_stops() {
        let r = cuda("0,GPU-aaaa1111,2").resolve(&devices()).unwrap();
        assert_eq!(r.indices, vec![0]);
        assert!(r.notes[0].contains("second time"));
    }

    #[test]
    fn syntax_stop_is_reported() {
        let r = cuda("1,foo,2").resolve(&devices()).unwrap();
        assert_eq!(r.indices, vec![1]);
        assert_eq!(r.notes.len(), 1);
        assert!(r.notes[0].contains("\"foo\""));
    }

    #[test]
    fn mig_is_noted_and_skipped() {
        let r = cuda("MIG-GPU-aaaa1111/1/0,2").resolve(&devices()).unwrap();
        assert_eq!(r.indices, vec![2]);
        assert!(r.notes[0].contains("MIG"));
    }

    #[test]
    fn empty_cuda_value_resolves_to_none() {
        let r = cuda("").resolve(&devices()).unwrap();
        assert!(r.indices.is_empty());
    }

    #[test]
    fn mixed_models_warn_about_order_unless_pinned() {
        let mut d = devices();
        d[1].name = "NVIDIA A100".into();
        let r = cuda("1").resolve(&d).unwrap();
        assert_eq!(r.indices, vec![1]);
        assert!(r.notes[0].contains("CUDA_DEVICE_ORDER"));
        let pinned = Selection::CudaVisible {
            value: "1".into(),
            pci_bus_order: true,
        };
        assert!(pinned.resolve(&d).unwrap().notes.is_empty());
    }

    #[test]
    fn explicit_indices() {
        let r = Selection::Indices(vec![2, 0, 2])
            .resolve(&devices())
            .unwrap();
        assert_eq!(r.indices, vec![2, 0]);
        let e = Selection::Indices(vec![5]).resolve(&devices()).unwrap_err();
        assert_eq!(e, SelectError::NoSuchIndex { index: 5, count: 3 });
        assert!(e.to_string().contains("index 5"));
        assert_eq!(
            Selection::All.resolve(&devices()).unwrap().indices,
            vec![0, 1, 2]
        );
    }
}
