//! Becoming COMMAND in place: the PATH search, the clean slate the child gets (default signal
//! dispositions, empty mask, only fds 0-2, a socket-activation range of ours, then the `--file`
//! descriptors), and execve with the delivered environment block.

use crate::deliver::env_block::EnvBlock;
use crate::deliver::files::{self, Files};
use crate::error::Error;
use nix::errno::Errno;
use nix::libc;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Resets what a child would otherwise inherit from us: blocked and ignored signals (exec keeps
/// both), and every fd above 2 and above `listen` socket-activation fds (marked close-on-exec,
/// so they stay usable if exec fails).
fn clean_slate(listen: i32) {
    let keep = u32::try_from(files::FIRST_FD + listen).unwrap_or(u32::MAX);
    // SAFETY: plain syscalls on this process's own signal state and fds, single-threaded here.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        for sig in 1..=NSIG {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            default_disposition(sig);
        }
        let rc = libc::syscall(
            libc::SYS_close_range,
            keep,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        if rc != 0 {
            cloexec_fallback(keep);
        }
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
fn cloexec_fallback(keep: u32) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| u32::try_from(*fd).is_ok_and(|fd| fd >= keep))
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

/// Replaces this process with `argv[0]`, the `--file` memfds on their descriptors. Returns only
/// on failure, with the buffers still owned by the caller so they are wiped when it exits.
pub fn exec(argv: &[OsString], env: &EnvBlock, files: &Files) -> Error {
    let command = argv[0].clone();
    let shown = command.to_string_lossy().into_owned();
    if command.is_empty() {
        return Error::CommandNotFound {
            command: shown,
            why: " (empty command name)".into(),
        };
    }
    let args: Vec<CString> = match argv
        .iter()
        .map(|a| CString::new(a.clone().into_vec()))
        .collect::<Result<_, _>>()
    {
        Ok(a) => a,
        Err(_) => return Error::Usage("COMMAND or an argument contains a NUL byte".into()),
    };
    let mut arg_ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    arg_ptrs.push(std::ptr::null());
    let env_ptrs = env.pointers();
    let mut fds = files.raw();

    clean_slate(files.listen);
    let first = files::FIRST_FD + files.listen;
    if let Err(errno) = files::place(&mut fds, first) {
        return Error::Config(format!(
            "cannot put the --file descriptors at {first} and up: {}; raise the open-files \
             limit (ulimit -n)",
            Errno::from_raw(errno).desc()
        ));
    }
    let mut denied = None;
    for path in candidates(command.as_bytes(), env.value_of(b"PATH")) {
        let Ok(cpath) = CString::new(path) else {
            continue;
        };
        // SAFETY: all three arrays are NUL-terminated and point into buffers alive across the call.
        unsafe { libc::execve(cpath.as_ptr(), arg_ptrs.as_ptr(), env_ptrs.as_ptr()) };
        match Errno::last() {
            Errno::ENOENT | Errno::ENOTDIR | Errno::ENAMETOOLONG | Errno::ELOOP => continue,
            Errno::EACCES | Errno::EPERM => {
                denied.get_or_insert((cpath, Errno::last()));
                continue;
            }
            Errno::E2BIG => {
                return Error::DataGeneral(
                    "the kernel refused the environment as too large (E2BIG); \
                     inject fewer or smaller values, or start with -i"
                        .into(),
                );
            }
            Errno::ENOEXEC => {
                return Error::NotExecutable {
                    command: cpath.to_string_lossy().into_owned(),
                    why: "not a binary this system can run and no #! line".into(),
                };
            }
            e => {
                return Error::NotExecutable {
                    command: cpath.to_string_lossy().into_owned(),
                    why: e.desc().to_string(),
                };
            }
        }
    }
    match denied {
        Some((p, e)) => Error::NotExecutable {
            command: p.to_string_lossy().into_owned(),
            why: format!("{}; check its mode (chmod +x) and mount options", e.desc()),
        },
        None if command.as_bytes().contains(&b'/') => Error::CommandNotFound {
            command: shown,
            why: String::new(),
        },
        None => Error::CommandNotFound {
            command: shown,
            why: format!(
                " in PATH ({})",
                String::from_utf8_lossy(env.value_of(b"PATH").unwrap_or(DEFAULT_PATH))
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
