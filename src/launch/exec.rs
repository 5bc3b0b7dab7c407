//! Becoming COMMAND in place: the PATH search, the clean slate the child gets (default signal
//! dispositions, empty mask, only fds 0-2, the socket-activation range, then the `--file`
//! descriptors), and execve with the delivered environment block. The supervisor's forked child
//! shares the search and its errors.

use crate::deliver::env_block::EnvBlock;
use crate::deliver::files::{self, Files};
use crate::error::Error;
use nix::errno::Errno;
use nix::libc;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Resets what a child would otherwise inherit from us: ignored or caught signals (exec keeps an
/// ignored disposition), and every fd above 2 but the socket-activation range (marked
/// close-on-exec, so they stay usable if exec fails). Runs with every signal blocked; see
/// `signals::seal_for_exec`, which unblocks them after, so the child starts with an empty mask.
fn clean_slate() -> u32 {
    let first = 3 + crate::launch::listen::from_env();
    // SAFETY: plain syscalls on this process's own signal state and fds, all signals blocked.
    unsafe {
        reset_dispositions();
        for fd in 3..first {
            let flags = libc::fcntl(fd as i32, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd as i32, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            }
        }
        let rc = libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        if rc != 0 {
            cloexec_fallback(first as i32);
        }
    }
    first
}

/// Every signal back to its default disposition, then an empty mask. Raw syscalls only, so a
/// forked child of a multi-threaded parent may call it too.
///
/// # Safety
/// Changes the whole process's signal state; call only right before exec.
pub(crate) unsafe fn reset_signals() {
    // SAFETY: see the function's contract.
    unsafe {
        reset_dispositions();
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// Every signal back to its default disposition.
///
/// # Safety
/// As [`reset_signals`].
unsafe fn reset_dispositions() {
    for sig in 1..=NSIG {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: see the function's contract.
        unsafe { default_disposition(sig) };
    }
}

/// The highest signal number the kernel knows (`_NSIG - 1`): SIGRTMAX is a valid signal too.
const NSIG: i32 = 64;

/// The kernel's `struct sigaction` for rt_sigaction on x86_64 and aarch64.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Sets `sig` to SIG_DFL with the raw syscall: glibc's `signal`/`sigaction` refuse the signals
/// it reserves for itself (32 and 33), yet a parent can leave those ignored and exec would pass
/// that on. This process is single-threaded here and about to exec, so glibc no longer needs
/// them.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
unsafe fn default_disposition(sig: i32) {
    let act = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: `act` is a valid kernel sigaction of the size passed; no old action is read.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &act as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            std::mem::size_of::<u64>(),
        )
    };
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn default_disposition(sig: i32) {
    // SAFETY: resetting a disposition; glibc-reserved signals fail harmlessly with EINVAL.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

/// For kernels before 5.11: walk /proc/self/fd.
fn cloexec_fallback(first: i32) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= first)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on an fd number; a stale one (the dir's own) just fails with EBADF.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

/// glibc's execvp default when PATH is unset.
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// Candidate paths for `command`, searched like env(1)/execvp: a name with a `/` is used as is,
/// otherwise each PATH entry in turn (an empty entry is the current directory).
pub fn candidates(command: &[u8], path: Option<&[u8]>) -> Vec<Vec<u8>> {
    if command.contains(&b'/') {
        return vec![command.to_vec()];
    }
    path.unwrap_or(DEFAULT_PATH)
        .split(|&b| b == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { &b"."[..] } else { dir };
            let mut p = dir.to_vec();
            if !p.ends_with(b"/") {
                p.push(b'/');
            }
            p.extend_from_slice(command);
            p
        })
        .collect()
}

/// `argv` as C strings, refusing what execve cannot take: an empty command name, a NUL byte.
pub(crate) fn c_args(argv: &[OsString]) -> Result<Vec<CString>, Error> {
    if argv[0].is_empty() {
        return Err(Error::CommandNotFound {
            command: String::new(),
            why: " (empty command name)".into(),
        });
    }
    argv.iter()
        .map(|a| CString::new(a.clone().into_vec()))
        .collect::<Result<_, _>>()
        .map_err(|_| Error::Usage("COMMAND or an argument contains a NUL byte".into()))
}

/// The NUL-terminated pointer array execve takes for `args`.
pub(crate) fn pointers(args: &[CString]) -> Vec<*const libc::c_char> {
    let mut p: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    p.push(std::ptr::null());
    p
}

/// What a failed execve of one PATH candidate means for the search (execvp's rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Not there: try the next candidate.
    Continue,
    /// There but not allowed: remember it, try the next candidate.
    Denied,
    /// A real failure of this candidate: stop and report it.
    Stop,
}

/// Classifies an execve errno. Async-signal-safe (a forked child calls it before exec).
pub(crate) fn next(errno: i32) -> Next {
    match errno {
        libc::ENOENT | libc::ENOTDIR | libc::ENAMETOOLONG | libc::ELOOP => Next::Continue,
        libc::EACCES | libc::EPERM => Next::Denied,
        _ => Next::Stop,
    }
}

/// How a candidate may appear in a message: as found, unless it was built from a PATH a secret
/// set (`path_shown` false). Then the directory is part of a secret value, and only the command
/// as given is shown.
fn shown_as(candidate: &[u8], command: &[u8], path_shown: bool) -> String {
    let text = if path_shown || command.contains(&b'/') {
        candidate
    } else {
        command
    };
    String::from_utf8_lossy(text).into_owned()
}

/// The error for a PATH search that ended without exec: `failed` is the candidate that stopped
/// it (or the first one denied) with its errno, `None` when no candidate exists.
pub(crate) fn failure(command: &OsStr, failed: Option<(&CStr, Errno)>, env: &EnvBlock) -> Error {
    let path_shown = env.shown_path().is_some();
    let path = |p: &CStr| shown_as(p.to_bytes(), command.as_bytes(), path_shown);
    match failed {
        Some((_, Errno::E2BIG)) => Error::DataGeneral(
            "the kernel refused the environment as too large (E2BIG); \
             inject fewer or smaller values, or start with -i"
                .into(),
        ),
        Some((p, Errno::ENOEXEC)) => Error::NotExecutable {
            command: path(p),
            why: "not a binary this system can run and no #! line".into(),
        },
        Some((p, e)) if next(e as i32) == Next::Denied => Error::NotExecutable {
            command: path(p),
            why: format!("{}; check its mode (chmod +x) and mount options", e.desc()),
        },
        Some((p, e)) => Error::NotExecutable {
            command: path(p),
            why: e.desc().to_string(),
        },
        None => not_found(command.as_bytes(), env.shown_path()),
    }
}

/// Replaces this process with `argv[0]`, the `--file` memfds on their descriptors right after
/// the socket-activation range. Returns only on failure, with the buffers still owned by the
/// caller so they are wiped when it exits. `too_big` names the limit and the largest injected
/// variables, for an E2BIG the limit check could not foresee (what a chain of `#!` interpreters
/// adds).
pub fn exec(argv: &[OsString], env: &EnvBlock, files: &Files, too_big: &str) -> Error {
    let args = match c_args(argv) {
        Ok(a) => a,
        Err(e) => return e,
    };
    let arg_ptrs = pointers(&args);
    let env_ptrs = env.pointers();
    let paths: Vec<CString> = candidates(argv[0].as_bytes(), env.value_of(b"PATH"))
        .into_iter()
        .filter_map(|p| CString::new(p).ok())
        .collect();

    let mut fds = files.raw();

    let first = match crate::signals::seal_for_exec(clean_slate) {
        Ok(first) => first,
        Err(e) => return e,
    };
    if let Err(e) = place_files(&mut fds, first) {
        return e;
    }
    if let Err((user, errno)) = crate::launch::user::switch_to_target() {
        return crate::launch::user::failed(user, errno);
    }
    let mut denied = None;
    for cpath in &paths {
        // SAFETY: all three arrays are NUL-terminated and point into buffers alive across the call.
        unsafe { libc::execve(cpath.as_ptr(), arg_ptrs.as_ptr(), env_ptrs.as_ptr()) };
        let e = Errno::last();
        match next(e as i32) {
            Next::Continue => continue,
            Next::Denied => {
                denied.get_or_insert((cpath.as_c_str(), e));
            }
            Next::Stop if e == Errno::E2BIG => {
                return Error::DataGeneral(format!(
                    "the kernel refused to start '{}' (E2BIG): its arguments and environment, \
                     with what its #! interpreters add, exceed {too_big}; inject fewer or \
                     smaller values, start with -i, or raise ulimit -s",
                    shown_as(
                        cpath.to_bytes(),
                        argv[0].as_bytes(),
                        env.shown_path().is_some()
                    )
                ));
            }
            Next::Stop => return failure(&argv[0], Some((cpath, e)), env),
        }
    }
    failure(&argv[0], denied, env)
}

/// [`files::place`] from `first` on, its errno turned into the error both launch paths report.
pub(crate) fn place_files(fds: &mut [i32], first: u32) -> Result<(), Error> {
    let first = i32::try_from(first).unwrap_or(i32::MAX);
    files::place(fds, first).map_err(|errno| placing(first, errno))
}

/// The error for a `--file` descriptor that could not be put at its number.
pub(crate) fn placing(first: i32, errno: i32) -> Error {
    Error::Config(format!(
        "cannot put the --file descriptors at {first} and up: {}; raise the open-files limit \
         (ulimit -n)",
        Errno::from_raw(errno).desc()
    ))
}

/// No candidate for `command` exists. `path` is the PATH searched as it may be shown (`None`
/// when a secret set it: then it stays out of the message); a command with a `/` searched none.
fn not_found(command: &[u8], path: Option<Option<&[u8]>>) -> Error {
    let command_shown = String::from_utf8_lossy(command).into_owned();
    let why = match path {
        Some(p) if !command.contains(&b'/') => format!(
            " in PATH ({})",
            String::from_utf8_lossy(p.unwrap_or(DEFAULT_PATH))
        ),
        _ => String::new(),
    };
    Error::CommandNotFound {
        command: command_shown,
        why,
    }
}

/// What `exec` would do with `command` under `path`, without doing it (for `--dry-run`): the
/// file it would run, or the 126/127 error it would end with. Same search, same order; "would
/// run" means a regular file with an execute bit for us, which is what execve checks first.
/// `path_shown` is false when PATH comes from a secret: what is shown then leaves it out.
pub fn predict(command: &[u8], path: Option<&[u8]>, path_shown: bool) -> Result<String, Error> {
    use std::os::unix::fs::PermissionsExt;
    let shown = String::from_utf8_lossy(command).into_owned();
    if command.is_empty() {
        return Err(Error::CommandNotFound {
            command: shown,
            why: " (empty command name)".into(),
        });
    }
    let mut denied = None;
    for candidate in candidates(command, path) {
        let p = std::path::Path::new(std::ffi::OsStr::from_bytes(&candidate));
        let Ok(meta) = std::fs::metadata(p) else {
            continue;
        };
        let runnable = meta.is_file()
            && meta.permissions().mode() & 0o111 != 0
            && nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok();
        if runnable {
            return Ok(shown_as(&candidate, command, path_shown));
        }
        denied.get_or_insert_with(|| shown_as(&candidate, command, path_shown));
    }
    Err(match denied {
        Some(p) => Error::NotExecutable {
            command: p,
            why: "not a regular file with execute permission; check its mode (chmod +x)".into(),
        },
        None => not_found(command, path_shown.then_some(path)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predictions() {
        let dir = crate::scratch::Scratch::new("predict");
        dir.file("plain", "#!/bin/sh\n");
        let d = dir.path().display().to_string();
        let rows: &[(&str, Option<&str>, Result<&str, i32>)] = &[
            ("sh", Some("/nonexistent:/bin"), Ok("/bin/sh")),
            ("/bin/sh", None, Ok("/bin/sh")),
            ("no-such-cmd-x", Some("/bin"), Err(127)),
            ("/nonexistent/x", None, Err(127)),
            ("plain", Some(&d), Err(126)),
            ("", None, Err(127)),
        ];
        for (cmd, path, want) in rows {
            let got = predict(cmd.as_bytes(), path.map(str::as_bytes), true);
            match (got, want) {
                (Ok(p), Ok(w)) => assert_eq!(p, *w, "{cmd}"),
                (Err(e), Err(code)) => assert_eq!(e.exit_code(), *code, "{cmd}: {e}"),
                (got, _) => panic!("{cmd}: {got:?}"),
            }
        }
        let hidden = predict(b"no-such-cmd-x", Some(b"/secret/dir"), false).unwrap_err();
        assert!(!hidden.to_string().contains("/secret/dir"), "{hidden}");
        // Found, or found but not runnable, on a PATH from a secret: the command name only.
        assert_eq!(predict(b"sh", Some(b"/bin"), false).unwrap(), "sh");
        let denied = predict(b"plain", Some(d.as_bytes()), false).unwrap_err();
        assert!(!denied.to_string().contains(&d), "{denied}");
    }

    #[test]
    fn candidate_table() {
        let rows: &[(&str, Option<&str>, &[&str])] = &[
            ("./app", Some("/bin"), &["./app"]),
            ("/usr/bin/env", None, &["/usr/bin/env"]),
            ("ls", Some("/a:/b/"), &["/a/ls", "/b/ls"]),
            ("ls", Some(":/a"), &["./ls", "/a/ls"]),
            ("ls", None, &["/bin/ls", "/usr/bin/ls"]),
        ];
        for (cmd, path, want) in rows {
            let got = candidates(cmd.as_bytes(), path.map(str::as_bytes));
            let got: Vec<String> = got
                .into_iter()
                .map(|p| String::from_utf8(p).unwrap())
                .collect();
            assert_eq!(got, *want, "{cmd} {path:?}");
        }
    }
}
