//! Hostile-input guards of the program: bounded reads of regular files only (the scenario, the
//! simulator's own CSV trace; public traces go through [`eas_traces::input`]), output files
//! opened before any work starts and never two on one path, and text made safe for a terminal.

use std::fs::File;
use std::path::{Path, PathBuf};

pub use eas_traces::input::{open_regular, RowLimit, MAX_ROW_BYTES};

use crate::limits::MAX_SCENARIO_BYTES;

/// Reads a scenario file: a regular file of at most [`MAX_SCENARIO_BYTES`], UTF-8.
pub fn read_scenario(path: &Path) -> Result<String, String> {
    eas_traces::input::read_text_bounded(path, MAX_SCENARIO_BYTES)
}

/// `s` with every control character but line feed and tab written as `\u{..}` (or `\r`,
/// `\0`...), so that a name or a message from a file cannot drive the terminal it is printed on.
pub fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The files a scenario file names (`[arrivals] trace` and `job_table`, relative to its folder),
/// so that no output is written over one of them. Best effort: an unreadable scenario names
/// none (its own error comes from the parser).
pub fn files_named_by(scenario: &Path) -> Vec<PathBuf> {
    let Ok(text) = read_scenario(scenario) else {
        return Vec::new();
    };
    let Ok(table) = toml::from_str::<toml::Table>(&text) else {
        return Vec::new();
    };
    let dir = scenario.parent().unwrap_or(Path::new(""));
    let Some(arrivals) = table.get("arrivals").and_then(|a| a.as_table()) else {
        return Vec::new();
    };
    ["trace", "job_table"]
        .iter()
        .filter_map(|k| arrivals.get(*k).and_then(|v| v.as_str()))
        .map(|f| dir.join(f))
        .collect()
}

/// Identity of a file: device and inode (two paths to one file, by links or `..`, compare
/// equal).
#[cfg(unix)]
fn identity(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn identity(_meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// One output file, opened (created if missing) before the work starts.
#[derive(Debug)]
struct Output {
    path: PathBuf,
    created: bool,
    written: bool,
}

/// The outputs of one command, all opened before the work starts so a bad path is found at
/// once, not after an hour of simulation. An existing file is opened without being truncated:
/// if the command fails, it keeps its content; a file this command created and never wrote is
/// removed when the set is dropped.
#[derive(Debug, Default)]
pub struct Outputs {
    outs: Vec<Output>,
    ids: Vec<((u64, u64), String)>,
}

impl Outputs {
    /// An empty set; `inputs` are files the command reads (scenario, traces): an output on one
    /// of them is refused.
    pub fn new(inputs: &[(&str, &Path)]) -> Outputs {
        let mut o = Outputs::default();
        for (what, p) in inputs {
            if let Some(id) = std::fs::metadata(p).ok().as_ref().and_then(identity) {
                o.ids.push((id, format!("{what} {}", p.display())));
            }
        }
        o
    }

    /// Opens `path` for `flag` (`--json`...). Refused: a directory, a FIFO or socket (a FIFO
    /// would block until someone reads it), a path already given to another output or read as
    /// an input. Devices such as `/dev/null` are allowed.
    pub fn add(&mut self, flag: &'static str, path: &Path) -> Result<(), String> {
        let existed = match std::fs::metadata(path) {
            Ok(meta) => {
                let ft = meta.file_type();
                #[cfg(unix)]
                {
                    use std::os::unix::fs::FileTypeExt;
                    if ft.is_char_device() || ft.is_block_device() {
                        self.outs.push(Output {
                            path: path.to_path_buf(),
                            created: false,
                            written: false,
                        });
                        return Ok(());
                    }
                }
                if let Some(kind) = eas_traces::input::kind_of(&meta) {
                    return Err(format!(
                        "{flag} {}: is {kind}, expected a regular file to write",
                        path.display()
                    ));
                }
                let _ = ft;
                true
            }
            Err(_) => false,
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| format!("{flag} {}: cannot create: {e}", path.display()))?;
        let id = file.metadata().ok().as_ref().and_then(identity);
        self.outs.push(Output {
            path: path.to_path_buf(),
            created: !existed,
            written: false,
        });
        if let Some(id) = id {
            if let Some((_, other)) = self.ids.iter().find(|(i, _)| *i == id) {
                return Err(format!(
                    "{flag} {}: the same file as {other}; give each output its own file",
                    path.display()
                ));
            }
            self.ids.push((id, format!("{flag} {}", path.display())));
        }
        Ok(())
    }

    /// Says that `path` was written (it stays even if a later step fails).
    pub fn written(&mut self, path: &Path) {
        for o in &mut self.outs {
            if o.path == path {
                o.written = true;
            }
        }
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        for o in &self.outs {
            if o.created && !o.written {
                let _ = std::fs::remove_file(&o.path);
            }
        }
    }
}

/// Creates (truncating) a file that [`Outputs::add`] has already opened once, naming it in the
/// error.
pub fn create(path: &Path) -> Result<File, String> {
    File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_but_lines_kept() {
        assert_eq!(escape_controls("a\u{1b}[2Jb\nc\td"), "a\\u{1b}[2Jb\nc\td");
        assert_eq!(escape_controls("x\ry"), "x\\ry");
    }

    #[test]
    fn two_outputs_on_one_file_are_refused_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        std::fs::write(&a, "keep").unwrap();
        let mut o = Outputs::new(&[]);
        o.add("--json", &a).unwrap();
        let e = o.add("--csv", &dir.path().join("./a.json")).unwrap_err();
        assert!(e.contains("--csv") && e.contains("--json"), "{e}");
        drop(o);
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "keep");
    }

    #[test]
    fn an_output_on_an_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("s.toml");
        std::fs::write(&s, "hours = 1.0\n").unwrap();
        let mut o = Outputs::new(&[("--scenario", &s)]);
        let e = o.add("--json", &s).unwrap_err();
        assert!(e.contains("--scenario"), "{e}");
        assert_eq!(std::fs::read_to_string(&s).unwrap(), "hours = 1.0\n");
    }

    #[test]
    fn the_files_a_scenario_names_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("s.toml");
        std::fs::write(
            &s,
            "[arrivals]\ntrace = \"t.csv\"\nformat = \"alibaba\"\njob_table = \"j.csv\"\n",
        )
        .unwrap();
        assert_eq!(
            files_named_by(&s),
            vec![dir.path().join("t.csv"), dir.path().join("j.csv")]
        );
        assert!(files_named_by(&dir.path().join("missing.toml")).is_empty());
    }

    #[test]
    fn a_created_output_is_removed_when_the_command_fails() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("new.csv");
        {
            let mut o = Outputs::new(&[]);
            o.add("--csv", &a).unwrap();
            assert!(a.exists());
        }
        assert!(!a.exists());
    }
}
