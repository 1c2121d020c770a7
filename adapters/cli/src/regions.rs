//! `EA2P_REGIONS`: a FIFO where the measured program, in any language, writes `begin NAME` and
//! `end NAME` lines; each line becomes a region of the [`Monitor`](crate::Monitor).
//!
//! Lines up to `PIPE_BUF` (4096 bytes) written with one `write` are atomic on a FIFO, so several
//! processes of the measured tree can mark regions without interleaving.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::monitor::MonitorHandle;

/// The environment variable that names the FIFO.
pub const ENV_VAR: &str = "EA2P_REGIONS";

/// Problems kept for the summary; later ones are only counted.
const MAX_NOTES: usize = 10;

/// The FIFO and its reader thread.
pub struct RegionFifo {
    dir: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    reader: JoinHandle<Vec<String>>,
}

impl std::fmt::Debug for RegionFifo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionFifo")
            .field("path", &self.path())
            .finish()
    }
}

impl RegionFifo {
    /// Creates the FIFO in a fresh private directory and starts reading it.
    pub fn start(monitor: MonitorHandle) -> std::io::Result<RegionFifo> {
        let dir = tempfile::Builder::new().prefix("ea2p-").tempdir()?;
        let path = dir.path().join("regions");
        mkfifo(&path)?;
        // Read and write: the open never blocks waiting for a writer, and the pipe never reports
        // end of file when the program closes it (it may open it again).
        let fifo = OpenOptions::new().read(true).write(true).open(&path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("ea2p-regions".into())
                .spawn(move || read_lines(BufReader::new(fifo), &monitor, &stop))?
        };
        Ok(RegionFifo { dir, stop, reader })
    }

    /// The path to give the measured program in [`ENV_VAR`].
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("regions")
    }

    /// Reads what is left, stops the reader and returns the problems found (malformed lines,
    /// `end` without `begin`), one sentence each.
    pub fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the reader: our own empty line arrives after everything already written.
        if let Ok(mut f) = OpenOptions::new().write(true).open(self.path()) {
            let _ = f.write_all(b"\n");
        }
        self.reader.join().unwrap_or_default()
    }
}

fn mkfifo(path: &Path) -> std::io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Applies every line to the monitor until `stop` is set and an empty line arrives.
pub fn read_lines(input: impl BufRead, monitor: &MonitorHandle, stop: &AtomicBool) -> Vec<String> {
    let mut notes = Vec::new();
    let mut problems = 0u64;
    for (n, line) in input.split(b'\n').enumerate() {
        let Ok(line) = line else { break };
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            continue;
        }
        let result = match text.split_once(char::is_whitespace) {
            Some(("begin", name)) => monitor.begin(name.trim()).map(|_| ()),
            Some(("end", name)) => monitor.end(name.trim()).map(|_| ()),
            _ => {
                problems += 1;
                if notes.len() < MAX_NOTES {
                    notes.push(format!(
                        "{ENV_VAR}: line {} ignored: expected `begin NAME` or `end NAME`, found {text:?}",
                        n + 1
                    ));
                }
                continue;
            }
        };
        if let Err(e) = result {
            problems += 1;
            if notes.len() < MAX_NOTES {
                notes.push(format!("{ENV_VAR}: line {} ignored: {e}", n + 1));
            }
        }
    }
    if problems > notes.len() as u64 {
        notes.push(format!(
            "{ENV_VAR}: {} more lines ignored",
            problems - notes.len() as u64
        ));
    }
    notes
}
