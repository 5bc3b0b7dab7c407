//! File delivery: `--file VAR=REF` puts a value in an anonymous memfd, sealed against any change
//! (`F_SEAL_WRITE|F_SEAL_GROW|F_SEAL_SHRINK|F_SEAL_SEAL`), and the child finds it on a fixed
//! descriptor with `VAR=/dev/fd/N`. Nothing touches a filesystem, and the value is written from
//! the fetched buffer straight into the kernel, so no copy stays in this process's memory.
//!
//! Descriptor numbers: after 0-2 and after a socket-activation range (`LISTEN_FDS` when
//! `LISTEN_PID` is this process), in command-line order. The memfds are close-on-exec until
//! [`place`] dup2s them onto those numbers, the last step before execve (or between fork and
//! exec in a resident parent: `place` only makes async-signal-safe syscalls).

use crate::error::Error;
use crate::spec::{self, Spec};
use nix::libc;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The first descriptor a child gets beyond stdio.
pub const FIRST_FD: RawFd = 3;

/// One `--file VAR=REF`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    pub var: String,
    /// The REF parsed as a `VAR=REF` SPEC: `target` is always `Target::Var(var)`.
    pub spec: Spec,
}

/// Parses `--file VAR=REF`. A `PREFIX*=` target, a missing `=` and a Parameter Store path
/// (which names many values, a file holds one) are usage errors.
pub fn parse(raw: &str) -> Result<FileSpec, Error> {
    let why = [
        "the form is VAR=REF, e.g. --file TLS_KEY_FILE=prod/tls:key",
        "VAR is not a variable name ([A-Za-z_][A-Za-z0-9_]*); a file holds one value, so \
         PREFIX*= does not apply",
        "a Parameter Store path names many parameters and a file holds one value; name one \
         parameter, or use --secret for the path",
    ];
    let (var, spec) = spec::parse_one("--file", raw, why).map_err(Error::Usage)?;
    Ok(FileSpec { var, spec })
}

/// The child's descriptor for the `i`-th `--file`.
pub fn fd_number(listen: RawFd, i: usize) -> RawFd {
    FIRST_FD + listen + RawFd::try_from(i).unwrap_or(RawFd::MAX - FIRST_FD - listen)
}

/// `/dev/fd/N` for a child descriptor: the variable's value, the only part of a file that
/// reaches the environment.
pub fn path(fd: RawFd) -> String {
    format!("/dev/fd/{fd}")
}

fn os_error(var: &str, step: &str, e: nix::errno::Errno) -> Error {
    let e = std::io::Error::from(e);
    Error::Config(format!(
        "cannot {step} the in-memory file for --file {var}: {e}; file delivery needs Linux 3.17+ \
         (memfd_create with sealing) and a free descriptor (ulimit -n)"
    ))
}

/// A memfd holding `bytes`, sealed and rewound to offset 0; close-on-exec until [`place`]d.
/// The bytes go from `bytes` to the kernel in `write` calls: no buffer of ours holds a copy.
pub fn memfd(var: &str, bytes: &[u8]) -> Result<OwnedFd, Error> {
    // The name shows in /proc/PID/fd links ("/memfd:secret-exec:VAR"); it is the variable name,
    // never content.
    let name = std::ffi::CString::new(format!("secret-exec:{var}"))
        .map_err(|_| Error::Usage(format!("--file {var}: the name contains a NUL byte")))?;
    use nix::fcntl::{FcntlArg, SealFlag, fcntl};
    use nix::sys::memfd::{MFdFlags, memfd_create};
    use nix::unistd::{Whence, lseek};
    let fd = memfd_create(
        name.as_c_str(),
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(|e| os_error(var, "create", e))?;
    let mut rest = bytes;
    while !rest.is_empty() {
        match nix::unistd::write(&fd, rest) {
            Ok(n) => rest = &rest[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(os_error(var, "write", e)),
        }
    }
    let seals = SealFlag::F_SEAL_WRITE
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_SEAL;
    fcntl(&fd, FcntlArg::F_ADD_SEALS(seals)).map_err(|e| os_error(var, "seal", e))?;
    if lseek(&fd, 0, Whence::SeekSet).map_err(|e| os_error(var, "rewind", e))? != 0 {
        return Err(os_error(var, "rewind", nix::errno::Errno::EIO));
    }
    Ok(fd)
}

/// The memfds of a run, in command-line order, and where the child gets them.
#[derive(Debug, Default)]
pub struct Files {
    pub fds: Vec<OwnedFd>,
    /// Descriptors from 3 kept for socket activation; the first file goes right after them.
    pub listen: RawFd,
}

impl Files {
    /// The raw descriptors, for [`place`] (which must not allocate).
    pub fn raw(&self) -> Vec<RawFd> {
        self.fds.iter().map(AsRawFd::as_raw_fd).collect()
    }
}

/// Puts `fds[i]` on descriptor `first + i`, without close-on-exec and at offset 0; overwrites
/// `fds` with scratch copies (close-on-exec, so exec drops them). Async-signal-safe: it only
/// makes fcntl, dup3 and lseek calls and never allocates, so a resident parent may call it
/// between fork and exec. A source may sit on another one's target, so every source is first
/// moved above the whole target range.
pub fn place(fds: &mut [RawFd], first: RawFd) -> Result<(), i32> {
    let Ok(count) = RawFd::try_from(fds.len()) else {
        return Err(libc::EMFILE);
    };
    let above = first.checked_add(count).ok_or(libc::EMFILE)?;
    let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    for fd in fds.iter_mut() {
        // SAFETY: F_DUPFD_CLOEXEC duplicates a descriptor we own; no memory is touched.
        let moved = unsafe { libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, above) };
        if moved < 0 {
            return Err(errno());
        }
        *fd = moved;
    }
    for (i, fd) in fds.iter().enumerate() {
        let target = first + i as RawFd;
        // SAFETY: dup3 without O_CLOEXEC onto a number we chose; whatever was there was ours
        // (0-2 and a socket-activation range are below `first`).
        if unsafe { libc::dup3(*fd, target, 0) } < 0 {
            return Err(errno());
        }
        // The description is shared with `fd`: a resident parent's earlier child may have
        // moved the offset, and every child must start at 0.
        // SAFETY: lseek on the descriptor just placed.
        if unsafe { libc::lseek(target, 0, libc::SEEK_SET) } != 0 {
            return Err(errno());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn parse_table() {
        let ok: &[(&str, &str, &str, Option<&str>)] = &[
            ("TLS=prod/tls", "TLS", "prod/tls", None),
            ("K=prod/tls:key", "K", "prod/tls", Some("key")),
            ("K=prod/tls:/a/b::v1", "K", "prod/tls", Some("/a/b")),
            (
                "K=arn:aws:secretsmanager:eu-west-1:1:secret:x-AbCdEf:k",
                "K",
                "arn:aws:secretsmanager:eu-west-1:1:secret:x-AbCdEf",
                Some("k"),
            ),
        ];
        for (raw, var, id, key) in ok {
            let f = parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(f.var, *var);
            assert_eq!(f.spec.secret.id, *id);
            assert_eq!(f.spec.key_text.as_deref(), *key, "{raw}");
        }
        let bad: &[(&str, &str)] = &[
            ("prod/tls", "the form is VAR=REF"),
            ("1X=prod/tls", "not a variable name"),
            ("X*=prod/tls", "not a variable name"),
            ("=prod/tls", "not a variable name"),
            ("X=ssm:/app/prod/", "Parameter Store path"),
            ("X=", "invalid --file 'X=': no secret name"),
            ("X=a:b:c:d:e", "too many"),
        ];
        crate::error::assert_refuses(parse, 64, bad);
    }

    #[test]
    fn numbers() {
        assert_eq!(fd_number(0, 0), 3);
        assert_eq!(fd_number(2, 1), 6);
        assert_eq!(path(4), "/dev/fd/4");
    }

    use nix::errno::Errno;
    use nix::fcntl::{FcntlArg, FdFlag, SealFlag, fcntl};
    use std::os::fd::BorrowedFd;

    /// A descriptor the test owns, open for the whole call.
    fn fd_ref(fd: RawFd) -> BorrowedFd<'static> {
        // SAFETY: every caller passes a descriptor it holds open while using the borrow.
        unsafe { BorrowedFd::borrow_raw(fd) }
    }

    fn cloexec(fd: RawFd) -> bool {
        let flags = fcntl(fd_ref(fd), FcntlArg::F_GETFD).unwrap();
        FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC)
    }

    fn seals(fd: RawFd) -> SealFlag {
        SealFlag::from_bits_truncate(fcntl(fd_ref(fd), FcntlArg::F_GET_SEALS).unwrap())
    }

    #[test]
    fn memfd_is_sealed_and_exact() {
        let bytes = b"-----BEGIN\x00\xff\n";
        let fd = memfd("T", bytes).unwrap();
        let raw = fd.as_raw_fd();
        let all = SealFlag::F_SEAL_WRITE
            | SealFlag::F_SEAL_GROW
            | SealFlag::F_SEAL_SHRINK
            | SealFlag::F_SEAL_SEAL;
        assert_eq!(seals(raw), all);
        assert!(cloexec(raw));
        let mut got = Vec::new();
        std::fs::File::from(fd.try_clone().unwrap())
            .read_to_end(&mut got)
            .unwrap();
        assert_eq!(got, bytes);
        // The seals refuse a write and a shrink.
        let file = std::fs::File::from(fd.try_clone().unwrap());
        let refused = std::os::unix::fs::FileExt::write_at(&file, b"x", 0).unwrap_err();
        assert_eq!(refused.raw_os_error(), Some(Errno::EPERM as i32));
        assert_eq!(nix::unistd::ftruncate(&fd, 0), Err(Errno::EPERM));
        assert_eq!(memfd("E", b"").map(|f| seals(f.as_raw_fd())).unwrap(), all);
    }

    /// `place` lands each file on its number even when a source already sits on another's
    /// target (both swap places here), clears close-on-exec there and rewinds. The test works
    /// at 800 and up, away from descriptors other tests in this process may hold.
    #[test]
    fn place_handles_overlaps_and_rewinds() {
        let high = |fd: OwnedFd, at: RawFd| {
            // Onto the lowest free number >= at; `fd` itself closes when dropped.
            let n = fcntl(&fd, FcntlArg::F_DUPFD_CLOEXEC(at)).unwrap();
            assert!(n >= at);
            n
        };
        let a = high(memfd("A", b"aaa").unwrap(), 800);
        let b = high(memfd("B", b"bbbb").unwrap(), a + 1);
        let mut one = [0u8; 1];
        // One byte read, so `place` has an offset to rewind.
        assert_eq!(nix::unistd::read(fd_ref(b), &mut one), Ok(1));
        let mut fds = [b, a];
        place(&mut fds, a).unwrap();
        for (target, want) in [(a, &b"bbbb"[..]), (a + 1, b"aaa")] {
            assert!(!cloexec(target));
            let mut got = vec![0u8; 8];
            let n = nix::unistd::read(fd_ref(target), &mut got).unwrap();
            assert_eq!(&got[..n], want);
        }
        // Every one is a descriptor this test created; `b` is also `fds[0]`'s source, so a
        // second close may find it gone (EBADF).
        for fd in [a, a + 1, b].into_iter().chain(fds) {
            let _ = nix::unistd::close(fd);
        }
    }
}
