//! Bounded reads of kernel files: every file a reader opens may be hostile (a FIFO that never
//! gives end of file, a link to `/dev/zero` that never ends, a directory, a socket). A sysfs
//! attribute is at most a page; a procfs file has a sane maximum. Opening never blocks (a FIFO is
//! opened with `O_NONBLOCK` and then refused), what is not a regular file is refused with what it
//! is, and a read stops at its bound with an error that says so.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// A sysfs attribute is at most one page (the kernel's `sysfs_emit` writes into `PAGE_SIZE`).
pub const SYSFS_ATTR_MAX: usize = 4096;
/// The largest procfs file read whole (`/proc/cpuinfo` of a 1024-thread machine is about 1.5 MiB).
pub const PROC_FILE_MAX: usize = 4 << 20;

/// What a file that is not regular is, in words, for the error.
fn kind_of(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading without ever blocking, and refuses anything but a regular file
/// (links are followed: what counts is what they point to).
pub fn open_regular(path: &Path) -> io::Result<File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let t = f.metadata()?.file_type();
    if !t.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("is {}, expected a regular file", kind_of(t)),
        ));
    }
    Ok(f)
}

/// Reads at most `max` bytes of `f` into `out`; more is an error (the file is not what it
/// should be), so memory never grows with a hostile file.
pub fn read_limited(f: &mut File, max: usize, out: &mut Vec<u8>) -> io::Result<()> {
    out.clear();
    let n = f.take(max as u64 + 1).read_to_end(out)?;
    if n > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("longer than {max} bytes, which no such file is"),
        ));
    }
    Ok(())
}

/// The text of the regular file `path`, at most `max` bytes.
pub fn read_to_string(path: &Path, max: usize) -> io::Result<String> {
    let mut f = open_regular(path)?;
    let mut buf = Vec::new();
    read_limited(&mut f, max, &mut buf)?;
    String::from_utf8(buf).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "is not text (invalid UTF-8)".to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(p: &Path) {
        // No unsafe in this crate: the `mkfifo` program makes the FIFO.
        let ok = std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let e = read_to_string(&fifo, 10).unwrap_err().to_string();
        assert!(e.contains("FIFO"), "{e}");
        let e = read_to_string(dir.path(), 10).unwrap_err().to_string();
        assert!(e.contains("directory"), "{e}");
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = read_to_string(&zero, 10).unwrap_err().to_string();
        assert!(e.contains("character device"), "{e}");
    }

    #[test]
    fn bounds_the_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::write(&p, "x".repeat(11)).unwrap();
        let e = read_to_string(&p, 10).unwrap_err().to_string();
        assert!(e.contains("longer than 10 bytes"), "{e}");
        std::fs::write(&p, "x".repeat(10)).unwrap();
        assert_eq!(read_to_string(&p, 10).unwrap().len(), 10);
    }
}
