//! `EA2P_REGIONS`: a FIFO where the measured program, in any language, writes `begin NAME` and
//! `end NAME` lines; each line becomes a region of the [`Monitor`](crate::Monitor).
//!
//! Lines up to `PIPE_BUF` (4096 bytes) written with one `write` are atomic on a FIFO, so several
//! processes of the measured tree can mark regions without interleaving.

use std::fs::{File, OpenOptions};
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

/// The longest line read: `PIPE_BUF`, the most one `write` puts on a FIFO atomically. A longer
/// line is skipped (and noted) without being held in memory.
pub const MAX_LINE: usize = 4096;

/// The FIFO and its reader thread.
pub struct RegionFifo {
    dir: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    /// Our own descriptor of the pipe, to wake the reader: it works whatever the command did
    /// to the path (removed it, put a file there).
    waker: File,
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
        let waker = fifo.try_clone()?;
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("ea2p-regions".into())
                .spawn(move || read_lines(BufReader::new(fifo), &monitor, &stop))?
        };
        Ok(RegionFifo {
            dir,
            stop,
            waker,
            reader,
        })
    }

    /// The path to give the measured program in [`ENV_VAR`].
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("regions")
    }

    /// Reads what is left, stops the reader and returns the problems found (malformed lines,
    /// `end` without `begin`), one sentence each.
    pub fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the reader: our own empty line arrives after everything already written (two
        // newlines: the first may end a line the command left unfinished).
        let _ = self.waker.write_all(b"\n\n");
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

/// The next line of `input` (without its newline) into `line`, at most [`MAX_LINE`] bytes:
/// `Ok(Some(true))` a line, `Ok(Some(false))` a longer line skipped whole, `Ok(None)` end of input.
pub fn next_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    line.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(any.then_some(!too_long));
        }
        any = true;
        let (chunk, used, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(k) => (&buf[..k], k + 1, true),
            None => (buf, buf.len(), false),
        };
        if !too_long {
            if line.len() + chunk.len() > MAX_LINE {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        input.consume(used);
        if done {
            return Ok(Some(!too_long));
        }
    }
}

/// What one region line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionLine<'a> {
    /// `begin NAME`.
    Begin(&'a str),
    /// `end NAME`.
    End(&'a str),
    /// An empty (or blank) line.
    Blank,
}

/// Parses one line of the FIFO; the error says what was expected.
pub fn parse_line(text: &str) -> Result<RegionLine<'_>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(RegionLine::Blank);
    }
    match text.split_once(char::is_whitespace) {
        Some(("begin", name)) => Ok(RegionLine::Begin(name.trim())),
        Some(("end", name)) => Ok(RegionLine::End(name.trim())),
        _ => Err(format!(
            "expected `begin NAME` or `end NAME`, found {:?}",
            truncate_for_note(text)
        )),
    }
}

/// At most 80 bytes of a bad line in a note.
fn truncate_for_note(text: &str) -> String {
    let mut end = text.len().min(80);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if end < text.len() {
        format!("{}...", &text[..end])
    } else {
        text.to_string()
    }
}

/// Applies every line to the monitor until `stop` is set and an empty line arrives. Ends do not
/// wait for the region's readings (see [`MonitorHandle::end_now`]), so a marker is cheap.
pub fn read_lines(
    mut input: impl BufRead,
    monitor: &MonitorHandle,
    stop: &AtomicBool,
) -> Vec<String> {
    let mut notes = Vec::new();
    let mut problems = 0u64;
    let mut line = Vec::with_capacity(256);
    let mut n = 0u64;
    let mut note = |notes: &mut Vec<String>, text: String| {
        problems += 1;
        if notes.len() < MAX_NOTES {
            notes.push(text);
        }
    };
    while let Ok(Some(whole)) = next_line(&mut input, &mut line) {
        n += 1;
        if !whole {
            note(
                &mut notes,
                format!("{ENV_VAR}: line {n} ignored: longer than {MAX_LINE} bytes"),
            );
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let result = match parse_line(&text) {
            Ok(RegionLine::Blank) => {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                continue;
            }
            Ok(RegionLine::Begin(name)) => monitor.begin(name),
            Ok(RegionLine::End(name)) => monitor.end_now(name),
            Err(e) => {
                note(&mut notes, format!("{ENV_VAR}: line {n} ignored: {e}"));
                continue;
            }
        };
        if let Err(e) = result {
            note(&mut notes, format!("{ENV_VAR}: line {n} ignored: {e}"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded() {
        let long = "x".repeat(MAX_LINE + 1);
        let text = format!("begin a\n{long}\nend a\npartial");
        let mut input = std::io::BufReader::with_capacity(16, text.as_bytes());
        let mut line = Vec::new();
        assert_eq!(next_line(&mut input, &mut line).unwrap(), Some(true));
        assert_eq!(line, b"begin a");
        assert_eq!(next_line(&mut input, &mut line).unwrap(), Some(false));
        assert!(line.len() <= MAX_LINE);
        assert_eq!(next_line(&mut input, &mut line).unwrap(), Some(true));
        assert_eq!(line, b"end a");
        assert_eq!(next_line(&mut input, &mut line).unwrap(), Some(true));
        assert_eq!(line, b"partial");
        assert_eq!(next_line(&mut input, &mut line).unwrap(), None);
    }

    #[test]
    fn parses_lines() {
        assert_eq!(parse_line(" begin  a b "), Ok(RegionLine::Begin("a b")));
        assert_eq!(parse_line("end x"), Ok(RegionLine::End("x")));
        assert_eq!(parse_line("  "), Ok(RegionLine::Blank));
        let e = parse_line("start\x1b[2J x").unwrap_err();
        assert!(
            e.contains("expected `begin NAME`") && !e.contains('\x1b'),
            "{e}"
        );
    }
}
