//! Hostile-input guards for the files EAS-Sim reads: only regular files are opened (a FIFO, a
//! device, a directory or a socket is refused with what it is, and opening never blocks), and
//! rows are bounded ([`RowLimit`]) so a line of gigabytes without a line end cannot eat memory.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Longest CSV row a trace reader accepts, bytes (a PAI, Helios or simulator row is a few
/// hundred bytes).
pub const MAX_ROW_BYTES: usize = 1 << 20;

/// Longest Philly job object, bytes (a job with hundreds of attempts is tens of KiB).
pub const MAX_OBJECT_BYTES: usize = 16 << 20;

/// What a path is, in words, when it is not a regular file (`None` for a regular file).
pub fn kind_of(meta: &std::fs::Metadata) -> Option<&'static str> {
    let ft = meta.file_type();
    if ft.is_file() {
        return None;
    }
    if ft.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if ft.is_char_device() {
            return Some("a character device");
        }
        if ft.is_block_device() {
            return Some("a block device");
        }
        if ft.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

/// Opens `path` for reading if it is a regular file (symbolic links followed); else an error
/// that says what it is. The check comes before the open, and the open itself does not wait
/// (`O_NONBLOCK`), so a FIFO swapped in between cannot hang the program either.
pub fn open_regular(path: &Path) -> Result<File, String> {
    let not_regular = |kind: &str| format!("{} is {kind}, expected a regular file", path.display());
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    if let Some(kind) = kind_of(&meta) {
        return Err(not_regular(kind));
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK);
    }
    let file = opts
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // What was opened is what counts (the path may have changed since the check).
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    if let Some(kind) = kind_of(&meta) {
        return Err(not_regular(kind));
    }
    Ok(file)
}

/// Reads a whole regular file of at most `max` bytes as UTF-8 text; a larger one is refused
/// (the limit is in the message), without reading more than `max + 1` bytes.
pub fn read_text_bounded(path: &Path, max: u64) -> Result<String, String> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "{} is larger than {max} bytes, the most accepted here",
            path.display()
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{} is not UTF-8 text (byte {} is not valid UTF-8)",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// A reader that fails a CSV row longer than a limit, so a CSV parser on top never buffers
/// more than that for one record.
///
/// A row ends at a line feed outside double quotes (a quoted field may hold line feeds; `""`
/// inside quotes toggles twice, so it needs no special case). A row over the limit is an
/// `InvalidData` error that names its line; the reader then discards up to the next line feed
/// and goes on, so a reader that skips bad rows resumes at the next row, in bounded memory.
#[derive(Debug)]
pub struct RowLimit<R> {
    inner: R,
    max: usize,
    in_row: usize,
    quoted: bool,
    line: u64,
    discarding: bool,
    /// Bytes read but not yet passed on (after an over-long row was cut), at most `max`.
    stash: Vec<u8>,
}

impl<R: Read> RowLimit<R> {
    /// Bounds the rows of `inner` to `max` bytes (`max` >= 1).
    pub fn new(inner: R, max: usize) -> Self {
        RowLimit {
            inner,
            max: max.max(1),
            in_row: 0,
            quoted: false,
            line: 1,
            discarding: false,
            stash: Vec::new(),
        }
    }

    /// The row grew past the limit at `buf[i]`: every byte of the chunk up to there belongs to
    /// it (see `fill`); what follows is kept for after the row's line feed.
    fn cut(&mut self, buf: &[u8], i: usize, n: usize) -> io::Error {
        let mut rest = buf[i + 1..n].to_vec();
        rest.append(&mut self.stash);
        self.stash = rest;
        let line = self.line;
        self.in_row = 0;
        self.quoted = false;
        self.discarding = true;
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the row at line {line} is longer than {} bytes, the most a row may hold (no line end within {} bytes); the rest of the file is not read",
                self.max, self.max
            ),
        )
    }

    /// Next chunk, from the stash first; at most `max` bytes, so a row that goes over the
    /// limit in a chunk began in an earlier one.
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let cap = buf.len().min(self.max);
        if self.stash.is_empty() {
            return self.inner.read(&mut buf[..cap]);
        }
        let n = cap.min(self.stash.len());
        buf[..n].copy_from_slice(&self.stash[..n]);
        self.stash.drain(..n);
        Ok(n)
    }
}

impl<R: Read> Read for RowLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let mut n = self.fill(buf)?;
            if n == 0 {
                return Ok(0);
            }
            if self.discarding {
                // Drop what is left of the over-long row, up to and with its line feed.
                let Some(i) = buf[..n].iter().position(|&b| b == b'\n') else {
                    continue;
                };
                self.discarding = false;
                self.line += 1;
                buf.copy_within(i + 1..n, 0);
                n -= i + 1;
                if n == 0 {
                    continue;
                }
            }
            // Only quotes and line feeds change the state: jump between them (memchr).
            let mut pos = 0;
            for p in memchr::memchr2_iter(b'"', b'\n', &buf[..n]).chain(std::iter::once(n)) {
                let plain = p - pos;
                if self.in_row + plain > self.max {
                    return Err(self.cut(buf, pos + (self.max - self.in_row), n));
                }
                self.in_row += plain;
                if p == n {
                    break;
                }
                if buf[p] == b'"' {
                    self.quoted = !self.quoted;
                    self.in_row += 1;
                } else {
                    self.line += 1;
                    if self.quoted {
                        self.in_row += 1;
                    } else {
                        self.in_row = 0;
                    }
                }
                if self.in_row > self.max {
                    return Err(self.cut(buf, p, n));
                }
                pos = p + 1;
            }
            return Ok(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8], max: usize) -> (Vec<u8>, Vec<String>) {
        let mut r = RowLimit::new(data, max);
        let (mut out, mut errs) = (Vec::new(), Vec::new());
        let mut buf = [0u8; 7];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return (out, errs),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => errs.push(e.to_string()),
            }
        }
    }

    #[test]
    fn short_rows_pass_unchanged() {
        let data = b"a,b\n\"x\ny\",2\n3,4\n";
        let (out, errs) = read_all(data, 8);
        assert_eq!(out, data);
        assert!(errs.is_empty());
    }

    #[test]
    fn a_long_row_is_cut_and_the_next_row_follows() {
        let data = b"a,b\n0123456789abcdef,1\nok,2\n";
        let (out, errs) = read_all(data, 8);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains("line 2") && errs[0].contains("8 bytes"),
            "{errs:?}"
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("ok,2\n"), "{text:?}");
        assert!(!text.contains("cdef"), "{text:?}");
    }

    /// Longest row of `bytes` as `RowLimit` counts it.
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

    proptest::proptest! {
        /// The invariants of the `row_limit` fuzz target, on every chunk size.
        #[test]
        fn rows_over_the_limit_never_pass(
            body in proptest::collection::vec(
                proptest::prop_oneof![Just(b'a'), Just(b'"'), Just(b'\n'), Just(b',')], 0..300),
            limit in 1usize..40,
            chunk in 1usize..17,
        ) {
            let mut r = RowLimit::new(&body[..], limit);
            // What passes between two errors, each read from a fresh row state.
            let mut segments: Vec<Vec<u8>> = vec![Vec::new()];
            let mut buf = vec![0u8; chunk];
            loop {
                match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => segments.last_mut().unwrap().extend_from_slice(&buf[..n]),
                    Err(_) => segments.push(Vec::new()),
                }
                let out: usize = segments.iter().map(Vec::len).sum();
                proptest::prop_assert!(out <= body.len());
                proptest::prop_assert!(segments.len() <= body.len() + 1);
            }
            for seg in &segments {
                proptest::prop_assert!(longest_row(seg) <= limit, "{:?}", seg);
            }
            if longest_row(&body) <= limit {
                proptest::prop_assert_eq!(&segments, &vec![body.clone()]);
            } else {
                proptest::prop_assert!(segments.len() >= 2);
            }
        }
    }

    use proptest::strategy::Just;

    #[test]
    fn an_endless_row_ends_the_stream_after_one_error() {
        let mut r = RowLimit::new(std::io::repeat(b'0').take(1 << 20), 1000);
        let mut buf = vec![0u8; 4096];
        let mut errors = 0;
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => errors += 1,
            }
        }
        assert_eq!(errors, 1);
    }
}
