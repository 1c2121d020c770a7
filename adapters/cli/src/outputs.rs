//! Outputs checked before any work starts: two flags that name one file would have one output
//! destroy the other (`-o F --json F` truncates the profile), and an output that is the input
//! of `ea2p report` would be emptied before it is read.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What makes two paths the same file.
#[derive(Debug, PartialEq, Eq)]
enum Identity {
    /// An existing regular file (links and other names of it included).
    Inode(u64, u64),
    /// A file not created yet: its canonical directory and its name.
    Path(PathBuf),
}

/// `None` for what is not a regular file (`/dev/stdout` to a terminal or a pipe, `/dev/null`):
/// several outputs may share those.
fn identity(path: &Path) -> Option<Identity> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Some(Identity::Inode(m.dev(), m.ino())),
        Ok(_) => None,
        Err(_) => {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let dir = parent
                .canonicalize()
                .unwrap_or_else(|_| parent.to_path_buf());
            Some(Identity::Path(
                dir.join(path.file_name().unwrap_or(path.as_os_str())),
            ))
        }
    }
}

/// Refuses two outputs that are one file, and an output that is one of the inputs; each item is
/// (the flag, the path). The error names both flags and the file.
pub fn check_distinct(inputs: &[(&str, &Path)], outputs: &[(&str, &Path)]) -> anyhow::Result<()> {
    let outs: Vec<(&str, &Path, Option<Identity>)> =
        outputs.iter().map(|&(f, p)| (f, p, identity(p))).collect();
    for (i, (flag, path, id)) in outs.iter().enumerate() {
        let Some(id) = id else { continue };
        for (other, _, oid) in &outs[..i] {
            if oid.as_ref() == Some(id) {
                anyhow::bail!(
                    "{other} and {flag} name the same file {}: one output would destroy the \
                     other; give each its own file",
                    path.display()
                );
            }
        }
        for &(input, ipath) in inputs {
            if identity(ipath).as_ref() == Some(id) {
                anyhow::bail!(
                    "{flag} names {}, which is the {input} being read: it would be emptied \
                     before it is read; write to another file",
                    path.display()
                );
            }
        }
    }
    Ok(())
}

/// Refuses an output whose directory does not exist, before any output is created: one bad path
/// among several then leaves no empty file behind.
pub fn check_directories(outputs: &[(&str, &Path)]) -> anyhow::Result<()> {
    for &(flag, path) in outputs {
        if path.exists() {
            continue;
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            let what = match flag {
                "-o" => "the profile ",
                "--json" => "the summary ",
                "--csv" => "the timeline ",
                "--plot" => "the plot ",
                _ => "",
            };
            anyhow::bail!(
                "cannot create {what}{} ({flag}): the directory {} does not exist",
                path.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_file_refused_under_any_name() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let e = check_distinct(&[], &[("-o", &a), ("--json", &dir.path().join("./a"))])
            .unwrap_err()
            .to_string();
        assert!(e.contains("-o and --json name the same file"), "{e}");
        std::fs::write(&a, "x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        assert!(check_distinct(&[], &[("-o", &a), ("--csv", &link)]).is_err());
        assert!(check_distinct(&[("profile", &a)], &[("--json", &link)]).is_err());
        assert!(check_distinct(&[], &[("-o", &a), ("--csv", &dir.path().join("b"))]).is_ok());
        assert!(check_directories(&[("--json", &dir.path().join("nope/x"))]).is_err());
        assert!(check_directories(&[("--json", &dir.path().join("x"))]).is_ok());
        let null = Path::new("/dev/null");
        assert!(check_distinct(&[], &[("--json", null), ("--csv", null)]).is_ok());
    }
}
