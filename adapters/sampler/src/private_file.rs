//! Output files that hold readings (profiles, and the JSON, CSV and SVG made from them), readable
//! by their owner only.
//!
//! Since Linux 5.10 `energy_uj` is readable by root only: fine-grained energy readings are a
//! side channel (PLATYPUS, CVE-2020-8694) that recovers secrets such as AES keys. ea2p run as root
//! must not hand them to every local user through a file its umask made 0644. So every output is
//! opened with mode 0600 and set to it with `fchmod` (the umask cannot widen it); an existing
//! file that others could read is replaced by a new one, since narrowing it would not close a
//! descriptor someone opened while it was readable. Under `sudo` the file is given (`fchown`) to
//! the user who ran sudo (`SUDO_UID`/`SUDO_GID`), who asked for it. Checks and changes are made
//! on the open descriptor, so the path cannot be swapped between them and the writes.
//!
//! Refused, because root writing through them could hand someone else's file to a user: a final
//! path component that is a symbolic link to a regular file (a link to a pipe, a terminal or this
//! process' own output, such as `/dev/stdout`, is written as it is), an existing file that
//! belongs to neither this user nor the sudo user, and a file with other hard links. Pipes, terminals and `/dev/null` are written
//! without changing their mode: their permissions are not ea2p's to change.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of every output file that holds readings.
pub const MODE: u32 = 0o600;

/// Why an output file was not created.
#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    /// Opening, narrowing or handing over the file failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The path is a symbolic link to a regular file (or a dangling one).
    #[error(
        "it is a symbolic link; ea2p writes readings only to a file's own path, so that it \
         cannot be led to overwrite or give away another file (give the target's path)"
    )]
    Symlink,
    /// An existing file that belongs to another user.
    #[error(
        "it exists and belongs to uid {owner}, not to uid {user}: ea2p does not write readings \
         into another user's file (remove it or choose another path)"
    )]
    ForeignOwner {
        /// The file's owner.
        owner: u32,
        /// The user who would get the readings.
        user: u32,
    },
    /// An existing file with other names: writing to it would write to them too.
    #[error(
        "it has {0} hard links; ea2p does not write readings into a file with other names \
         (remove it or choose another path)"
    )]
    HardLinks(u64),
    /// Another process holds the file's lock: another `ea2p` is writing it now.
    #[error(
        "another process is writing it now (it holds the file's lock: another ea2p run or \
         report with the same output); wait for it to end or choose another path"
    )]
    Locked,
    /// A FIFO that nobody reads: writing to it would block for ever.
    #[error("it is a FIFO (named pipe) that no process is reading")]
    FifoWithoutReader,
    /// `SUDO_UID` or `SUDO_GID` is not a number.
    #[error("{var} is {value:?}, expected a numeric id (as sudo sets it)")]
    BadSudoId {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
}

impl From<PrivateFileError> for io::Error {
    fn from(e: PrivateFileError) -> io::Error {
        match e {
            PrivateFileError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::PermissionDenied, other),
        }
    }
}

/// Who gets the output files: under sudo (this process is root and `SUDO_UID` is set), the
/// user who ran sudo; otherwise this process' user, and no `fchown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipient {
    /// The owner the files get.
    pub uid: u32,
    /// Their group, when it is changed (`SUDO_GID`).
    pub gid: Option<u32>,
    /// True when the files are handed over with `fchown`.
    pub handed_over: bool,
}

impl Recipient {
    /// From the effective uid and the environment (`SUDO_UID`, `SUDO_GID`, read only as root:
    /// another user cannot give files away).
    pub fn from_env(
        euid: u32,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Recipient, PrivateFileError> {
        let id = |var: &'static str| -> Result<Option<u32>, PrivateFileError> {
            match env(var) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u32>()
                    .map(Some)
                    .map_err(|_| PrivateFileError::BadSudoId { var, value: v }),
            }
        };
        if euid != 0 {
            return Ok(Recipient {
                uid: euid,
                gid: None,
                handed_over: false,
            });
        }
        Ok(match id("SUDO_UID")? {
            Some(uid) => Recipient {
                uid,
                gid: id("SUDO_GID")?,
                handed_over: true,
            },
            None => Recipient {
                uid: 0,
                gid: None,
                handed_over: false,
            },
        })
    }

    /// This process' recipient.
    pub fn current() -> Result<Recipient, PrivateFileError> {
        Recipient::from_env(geteuid(), |k| std::env::var(k).ok())
    }
}

fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Creates (or truncates) `path` for writing readings: mode 0600 whatever the umask, owned by
/// [`Recipient::current`]; see the module docs for what is refused.
pub fn create(path: &Path) -> Result<File, PrivateFileError> {
    create_for(path, Recipient::current()?)
}

/// [`create`] for an explicit recipient.
pub fn create_for(path: &Path, to: Recipient) -> Result<File, PrivateFileError> {
    let euid = geteuid();
    // No O_TRUNC: an existing file is emptied only once it passed the checks below.
    // O_NONBLOCK: opening a FIFO nobody reads fails at once instead of waiting for ever.
    let opened = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return open_link(path),
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            return Err(PrivateFileError::FifoWithoutReader)
        }
        Err(e) => return Err(e.into()),
    };
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        // /dev/null, a pipe, a terminal: written as they are, with blocking writes.
        set_blocking(&file)?;
        return Ok(file);
    }
    set_blocking(&file)?;
    // One writer at a time: a second `ea2p run -o F` is refused before it empties F.
    lock(&file)?;
    if meta.uid() != euid && meta.uid() != to.uid {
        return Err(PrivateFileError::ForeignOwner {
            owner: meta.uid(),
            user: to.uid,
        });
    }
    if meta.nlink() > 1 {
        return Err(PrivateFileError::HardLinks(meta.nlink()));
    }
    let file = if meta.mode() & 0o077 != 0 {
        // Readable by others until now: someone may hold it open, and narrowing the mode does
        // not close their descriptor. A new file under the same name is one nobody holds.
        drop(file);
        std::fs::remove_file(path)?;
        let new = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(MODE)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(path)?;
        lock(&new)?;
        new
    } else {
        file
    };
    file.set_permissions(Permissions::from_mode(MODE))?;
    file.set_len(0)?;
    if to.handed_over {
        std::os::unix::fs::fchown(&file, Some(to.uid), to.gid)?;
    }
    Ok(file)
}

/// Takes the file's exclusive lock (held while the descriptor is open), or says who holds it.
fn lock(file: &File) -> Result<(), PrivateFileError> {
    // SAFETY: flock on a descriptor the caller owns; no memory is passed.
    let r = unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(file),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    };
    if r == 0 {
        Ok(())
    } else if io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK) {
        Err(PrivateFileError::Locked)
    } else {
        // A file system without locks (some network mounts): written unlocked.
        Ok(())
    }
}

/// Clears `O_NONBLOCK` (set only so that the open could not hang).
fn set_blocking(file: &File) -> io::Result<()> {
    let fd = std::os::fd::AsRawFd::as_raw_fd(file);
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The path is a symbolic link: followed only to something that is not a regular file
/// (`/dev/stdout` to a pipe or a terminal), or to this process' own standard output or error
/// (`--json /dev/stdout > out.json`: the file the caller's shell opened), written as it is.
fn open_link(path: &Path) -> Result<File, PrivateFileError> {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|_| PrivateFileError::Symlink)?;
    let meta = file.metadata()?;
    if meta.file_type().is_file() && !is_own_output(&meta) {
        return Err(PrivateFileError::Symlink);
    }
    Ok(file)
}

/// True when `meta` is the file behind this process' stdout or stderr.
fn is_own_output(meta: &std::fs::Metadata) -> bool {
    ["/proc/self/fd/1", "/proc/self/fd/2"].iter().any(|fd| {
        std::fs::metadata(fd).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
    })
}

/// Writes `bytes` to `path` through [`create`].
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), PrivateFileError> {
    let mut f = create(path)?;
    f.write_all(bytes)?;
    Ok(())
}

/// A one-line warning when the profile at `path` is readable by its group or by others, with
/// why and the fix; `None` when it is private (or cannot be inspected: reading it will say why).
pub fn readable_by_others(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let mode = meta.mode() & 0o777;
    (meta.file_type().is_file() && mode & 0o044 != 0).then(|| {
        format!(
            "warning: {} is readable by {} (mode {mode:04o}): its energy readings are a side \
             channel on the measured machine (CVE-2020-8694, the reason energy_uj is root-only); \
             make it private with `chmod 600 {}`",
            path.display(),
            if mode & 0o004 != 0 {
                "every user"
            } else {
                "its group"
            },
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn me() -> Recipient {
        Recipient::from_env(geteuid(), |_| None).unwrap()
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn recipients() {
        let r = Recipient::from_env(0, env(&[("SUDO_UID", "1000"), ("SUDO_GID", "1001")]));
        assert_eq!(
            r.unwrap(),
            Recipient {
                uid: 1000,
                gid: Some(1001),
                handed_over: true
            }
        );
        let r = Recipient::from_env(0, env(&[])).unwrap();
        assert!(!r.handed_over);
        // Not root: SUDO_UID (left by `sudo -u other`) is not ours to honour.
        let r = Recipient::from_env(1000, env(&[("SUDO_UID", "7")])).unwrap();
        assert_eq!(r.uid, 1000);
        assert!(!r.handed_over);
        let e = Recipient::from_env(0, env(&[("SUDO_UID", "bob")])).unwrap_err();
        assert!(e.to_string().contains("SUDO_UID is \"bob\""), "{e}");
    }

    #[test]
    fn new_and_existing_files_become_0600() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new.json");
        create_for(&p, me()).unwrap().write_all(b"x").unwrap();
        assert_eq!(mode(&p), 0o600);
        let old = dir.path().join("old.json");
        std::fs::write(&old, "previous content").unwrap();
        std::fs::set_permissions(&old, Permissions::from_mode(0o644)).unwrap();
        // Someone who opened it while it was 0644 does not see what is written now.
        let mut reader = File::open(&old).unwrap();
        create_for(&old, me()).unwrap().write_all(b"y").unwrap();
        assert_eq!(mode(&old), 0o600);
        assert_eq!(std::fs::read(&old).unwrap(), b"y", "emptied, then written");
        let mut seen = String::new();
        std::io::Read::read_to_string(&mut reader, &mut seen).unwrap();
        assert_eq!(seen, "previous content");
        // A private file of ours is rewritten in place.
        let ino = std::fs::metadata(&old).unwrap().ino();
        create_for(&old, me()).unwrap().write_all(b"z").unwrap();
        assert_eq!(std::fs::metadata(&old).unwrap().ino(), ino);
        assert_eq!(std::fs::read(&old).unwrap(), b"z");
    }

    #[test]
    fn links_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        std::fs::set_permissions(&target, Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("link");
        symlink(&target, &link).unwrap();
        let e = create_for(&link, me()).unwrap_err();
        assert!(matches!(e, PrivateFileError::Symlink), "{e}");
        let dangling = dir.path().join("dangling");
        symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(matches!(
            create_for(&dangling, me()).unwrap_err(),
            PrivateFileError::Symlink
        ));
        assert!(!dir.path().join("nowhere").exists());
        let hard = dir.path().join("hard");
        std::fs::hard_link(&target, &hard).unwrap();
        let e = create_for(&hard, me()).unwrap_err();
        assert!(matches!(e, PrivateFileError::HardLinks(2)), "{e}");
        // Nothing of the target was touched.
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert_eq!(mode(&target), 0o644);
        // A file of another user, seen by a recipient that is neither its owner nor us.
        let other = Recipient {
            uid: 4242,
            gid: None,
            handed_over: false,
        };
        if geteuid() == 0 {
            std::os::unix::fs::chown(&target, Some(4343), None).unwrap();
            let e = create_for(&target, other).unwrap_err();
            assert!(e.to_string().contains("belongs to uid 4343"), "{e}");
            assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        }
    }

    #[test]
    fn devices_are_written_as_they_are() {
        let f = create_for(Path::new("/dev/null"), me());
        assert!(f.is_ok(), "{f:?}");
        assert_eq!(mode(Path::new("/dev/null")), 0o666, "not ours to narrow");
    }

    #[test]
    fn readable_profiles_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.ea2p");
        std::fs::write(&p, "").unwrap();
        std::fs::set_permissions(&p, Permissions::from_mode(0o644)).unwrap();
        let w = readable_by_others(&p).unwrap();
        assert!(
            w.contains("CVE-2020-8694") && w.contains("chmod 600"),
            "{w}"
        );
        assert!(w.contains("every user") && !w.contains('\n'), "{w}");
        std::fs::set_permissions(&p, Permissions::from_mode(0o640)).unwrap();
        assert!(readable_by_others(&p).unwrap().contains("its group"));
        std::fs::set_permissions(&p, Permissions::from_mode(0o600)).unwrap();
        assert_eq!(readable_by_others(&p), None);
    }
}
