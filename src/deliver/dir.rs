//! Directory delivery: `--dir DIR` writes every variable the `--secret` SPECs map as the file
//! `DIR/NAME` (mode 0400, owned by the user COMMAND runs as) instead of an environment variable.
//! DIR must be on a memory file system (tmpfs or ramfs, checked with statfs before any fetch), so
//! a value never reaches a disk. Each file is written to a temporary in DIR and renamed over
//! NAME, so a reader sees the old value or the new one, never part of one.
//!
//! What leaves DIR: a resident secret-exec (`--init`/`--watch`) removes the files it wrote when
//! it ends (and DIR itself when it created it); in exec mode secret-exec is gone once COMMAND
//! starts, so the files stay until DIR is cleared (a service manager's `RuntimeDirectory=`, a
//! reboot). A failed start removes them in both modes.

use crate::error::Error;
use crate::map::Var;
use nix::libc;
use std::collections::BTreeSet;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// `TMPFS_MAGIC` and `RAMFS_MAGIC` (linux/magic.h).
const MEMORY_FS: [(i64, &str); 2] = [(0x0102_1994, "tmpfs"), (0x8584_58f6, "ramfs")];

/// `--dir DIR`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirOptions {
    pub path: PathBuf,
    /// `--user`'s uid and gid: the files (and a DIR made here) belong to COMMAND's user.
    pub owner: Option<(u32, u32)>,
}

/// `--dir`: not empty, and something to write (a `--secret`).
pub fn parse(dir: Option<&OsStr>, secrets: usize) -> Result<Option<DirOptions>, Error> {
    let Some(dir) = dir else {
        return Ok(None);
    };
    if dir.is_empty() || dir.as_bytes().contains(&0) {
        return Err(Error::Usage(
            "--dir needs a directory on a memory file system, e.g. --dir /run/secrets".into(),
        ));
    }
    if secrets == 0 {
        return Err(Error::Usage(
            "--dir writes the variables of --secret SPECs as files, and no --secret is given \
             (--file values stay sealed memfds, --from-env references stay variables)"
                .into(),
        ));
    }
    Ok(Some(DirOptions {
        path: PathBuf::from(dir),
        owner: None,
    }))
}

/// The file system `path` is on, by statfs: its name when it is a memory one, else its magic.
fn memory_fs(path: &Path) -> Result<Result<&'static str, i64>, std::io::Error> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: all-zero is a valid statfs; statfs fills it from a valid C path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)]
    let magic = st.f_type as i64;
    Ok(MEMORY_FS
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, name)| *name)
        .ok_or(magic))
}

/// Makes sure DIR can take the files, before anything is fetched: it is (or its parent, when DIR
/// is missing, is) on tmpfs or ramfs, else 78 naming it; a missing DIR is created 0700 (its
/// parent must exist).
pub fn prepare(opts: &DirOptions) -> Result<(), Error> {
    let dir = &opts.path;
    let shown = dir.display();
    let exists = match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => true,
        Ok(_) => {
            return Err(Error::Config(format!("--dir {shown} is not a directory")));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::Config(format!("--dir {shown}: {e}"))),
    };
    let probe = if exists {
        dir.clone()
    } else {
        match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    };
    match memory_fs(&probe) {
        Ok(Ok(_)) => {}
        Ok(Err(magic)) => {
            return Err(Error::Config(format!(
                "--dir {shown} is not on a memory file system ({} is on a file system with \
                 magic {magic:#x}, not tmpfs or ramfs), and values must never touch a disk; use \
                 a directory under /run, /dev/shm or a tmpfs mount",
                probe.display()
            )));
        }
        Err(e) => {
            return Err(Error::Config(format!(
                "--dir {shown}: cannot check its file system ({}: {e}); its parent must exist",
                probe.display()
            )));
        }
    }
    if !exists {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::Config(format!("--dir {shown}: cannot create it: {e}")))?;
        lock().created = true;
        // The umask may have taken bits from 0700: set it exactly.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::Config(format!("--dir {shown}: cannot set its mode: {e}")))?;
        if let Some((uid, gid)) = opts.owner {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(|e| {
                Error::Config(format!("--dir {shown}: cannot give it to uid {uid}: {e}"))
            })?;
        }
    }
    lock().dir = Some(dir.clone());
    Ok(())
}

/// What this process wrote into DIR, for [`cleanup`] and for dropping names a rotation no
/// longer maps. Names only.
#[derive(Default)]
struct Written {
    dir: Option<PathBuf>,
    created: bool,
    names: BTreeSet<String>,
}

static WRITTEN: Mutex<Written> = Mutex::new(Written {
    dir: None,
    created: false,
    names: BTreeSet::new(),
});

fn lock() -> std::sync::MutexGuard<'static, Written> {
    WRITTEN.lock().unwrap_or_else(|p| p.into_inner())
}

/// A file name for a variable: what the environment would call it; never a path.
fn file_name(var: &Var) -> Result<&str, Error> {
    let n = var.name.as_str();
    if n.is_empty() || n.starts_with('.') || n.contains('/') || n.contains('\0') {
        return Err(Error::data(
            &var.origin.secret_id,
            format!("variable {n} (from {})", var.origin),
            "it cannot be a file name in --dir",
        ));
    }
    Ok(n)
}

/// Two variables of one name cannot be two files.
pub fn check(vars: &[Var]) -> Result<(), Error> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for v in vars {
        if !seen.insert(file_name(v)?) {
            return Err(Error::DataGeneral(format!(
                "--dir: variable {} would be written twice (the second from {}); give one of \
                 them an explicit name (VAR=...) or a prefix (PREFIX*=...)",
                v.name, v.origin
            )));
        }
    }
    Ok(())
}

fn io_error(path: &Path, step: &str) -> Error {
    Error::Config(format!(
        "--dir: cannot {step} {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    ))
}

/// Writes `bytes` to a fresh temporary in `dir` (0400, exclusive, no symlink followed) and
/// renames it over `name`. The bytes go straight from `bytes` to the kernel.
fn write_one(dir: &Path, name: &str, bytes: &[u8], owner: Option<(u32, u32)>) -> Result<(), Error> {
    // SAFETY: getpid has no preconditions.
    let tmp = dir.join(format!(".{name}.secret-exec-{}", unsafe { libc::getpid() }));
    let target = dir.join(name);
    let c_tmp = CString::new(tmp.as_os_str().as_bytes()).map_err(|_| io_error(&tmp, "name"))?;
    let c_target =
        CString::new(target.as_os_str().as_bytes()).map_err(|_| io_error(&target, "name"))?;
    // A temporary left by an earlier, killed run of this pid.
    // SAFETY: unlink of a valid C path.
    unsafe { libc::unlink(c_tmp.as_ptr()) };
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: open of a valid C path; the descriptor is owned right below.
    let raw = unsafe { libc::open(c_tmp.as_ptr(), flags, 0o400 as libc::c_uint) };
    if raw < 0 {
        return Err(io_error(&tmp, "create"));
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let fail = |step: &str| {
        let e = io_error(&tmp, step);
        // SAFETY: unlink of a valid C path.
        unsafe { libc::unlink(c_tmp.as_ptr()) };
        e
    };
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: writes from a live slice of `rest.len()` bytes.
        let n = unsafe { libc::write(fd.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(fail("write"));
        }
        rest = &rest[n as usize..];
    }
    // The umask may have taken bits the mode never had, never added any: set it exactly.
    // SAFETY: fchmod on a descriptor we own.
    if unsafe { libc::fchmod(fd.as_raw_fd(), 0o400) } != 0 {
        return Err(fail("set the mode of"));
    }
    if let Some((uid, gid)) = owner {
        // SAFETY: fchown on a descriptor we own.
        if unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) } != 0 {
            return Err(fail("give to COMMAND's user"));
        }
    }
    drop(fd);
    // SAFETY: rename between two valid C paths in one directory.
    if unsafe { libc::rename(c_tmp.as_ptr(), c_target.as_ptr()) } != 0 {
        return Err(fail("rename into place"));
    }
    Ok(())
}

/// Writes every variable as `DIR/NAME`, each replaced atomically, then removes the files an
/// earlier delivery of this process wrote that this one no longer maps. The last step of a
/// delivery: nothing is written unless everything else checked out.
pub fn write(opts: &DirOptions, vars: &[Var]) -> Result<(), Error> {
    check(vars)?;
    let mut now = BTreeSet::new();
    for v in vars {
        let name = file_name(v)?;
        // Recorded before the write, so a failure halfway still leaves it to `cleanup`.
        lock().names.insert(name.to_string());
        write_one(&opts.path, name, v.value.expose().as_bytes(), opts.owner)?;
        now.insert(name.to_string());
    }
    let mut w = lock();
    let gone: Vec<String> = w.names.difference(&now).cloned().collect();
    for name in gone {
        let _ = std::fs::remove_file(opts.path.join(&name));
        w.names.remove(&name);
    }
    Ok(())
}

/// Removes the files this process wrote, and DIR when this process created it (if nothing else
/// was put there). For a resident secret-exec when COMMAND has ended, and for a failed start.
pub fn cleanup() {
    let mut w = lock();
    let Some(dir) = w.dir.take() else {
        return;
    };
    for name in std::mem::take(&mut w.names) {
        let _ = std::fs::remove_file(dir.join(name));
    }
    if w.created {
        let _ = std::fs::remove_dir(&dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rules() {
        assert_eq!(parse(None, 0).unwrap(), None);
        assert_eq!(
            parse(Some(OsStr::new("/run/s")), 1).unwrap(),
            Some(DirOptions {
                path: "/run/s".into(),
                owner: None,
            })
        );
        for (dir, n, want) in [("", 1, "--dir needs"), ("/run/s", 0, "no --secret")] {
            let e = parse(Some(OsStr::new(dir)), n).unwrap_err();
            assert_eq!(e.exit_code(), 64);
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    #[test]
    fn disk_is_refused_and_shm_is_not() {
        // The build directory is on a disk (or an overlay), never tmpfs in CI.
        let disk = DirOptions {
            path: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/no-such-dir"),
            owner: None,
        };
        let e = prepare(&disk).unwrap_err();
        assert_eq!(e.exit_code(), 78);
        assert!(e.to_string().contains("not on a memory file system"), "{e}");
        assert!(!disk.path.exists());
        assert_eq!(memory_fs(Path::new("/dev/shm")).unwrap(), Ok("tmpfs"));
    }
}
