//! Starting COMMAND as a child with the clean slate exec mode gives it: its own process group
//! (made the foreground group of the terminal on stdin when secret-exec holds that foreground),
//! default signal dispositions, an empty mask, fds 0-2 plus the socket-activation range,
//! LISTEN_PID naming the child, then the `--file` memfds on their numbers. Everything the child
//! touches is built before fork; between fork and exec it makes raw syscalls only (the parent
//! may have other threads, so no allocation, no locks).

use crate::deliver::env_block::EnvBlock;
use crate::deliver::files::{self, Files};
use crate::error::Error;
use crate::launch::exec::{self, Next};
use nix::errno::Errno;
use nix::libc;
use nix::unistd::{ForkResult, Pid};
use std::ffi::{CString, OsString};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

const LISTEN_PID: &[u8] = b"LISTEN_PID=";
/// `LISTEN_PID=` plus room for any pid and its NUL.
const SLOT: usize = 11 + 21;

/// What the forked child needs, owned by the parent across fork and exec.
struct Prepared {
    paths: Vec<CString>,
    _args: Vec<CString>,
    arg_ptrs: Vec<*const libc::c_char>,
    env_ptrs: Vec<*const libc::c_char>,
    /// `LISTEN_PID=` rewritten in the child, when the block has one and fds are passed on.
    slot: Option<Box<[u8; SLOT]>>,
    listen_fds: u32,
    /// The `--file` memfds; the child overwrites its own copy of this array in [`files::place`].
    file_fds: Vec<libc::c_int>,
    /// Make the child's group the foreground group of the terminal on stdin.
    take_terminal: bool,
}

/// The status record's "candidate" when placing the `--file` descriptors failed, not exec.
const AT_PLACING: i32 = -2;
/// ... when becoming the `--user` failed.
const AT_USER: i32 = -3;

/// Writes the status record for the parent and ends the child. Async-signal-safe.
unsafe fn report(status_fd: libc::c_int, errno: i32, at: i32) -> ! {
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&errno.to_ne_bytes());
    bytes[4..].copy_from_slice(&at.to_ne_bytes());
    // SAFETY: writes 8 bytes from a local buffer, then exits without running any destructor.
    unsafe {
        libc::write(status_fd, bytes.as_ptr().cast(), 8);
        libc::_exit(127)
    }
}

fn prepare(
    argv: &[OsString],
    env: &EnvBlock,
    files: &Files,
    listen_fds: u32,
    take_terminal: bool,
) -> Result<Prepared, Error> {
    let args = exec::c_args(argv)?;
    let paths: Vec<CString> = exec::candidates(argv[0].as_bytes(), env.value_of(b"PATH"))
        .into_iter()
        .filter_map(|p| CString::new(p).ok())
        .collect();
    let arg_ptrs = exec::pointers(&args);
    let mut env_ptrs = env.pointers();
    let mut slot = None;
    if listen_fds > 0 {
        let at = env_ptrs.iter().position(|&p| {
            // SAFETY: every non-null pointer of the array is a NUL-terminated string in `env`.
            !p.is_null()
                && unsafe { std::ffi::CStr::from_ptr(p) }
                    .to_bytes()
                    .starts_with(LISTEN_PID)
        });
        if let Some(at) = at {
            let mut s = Box::new([0u8; SLOT]);
            s[..LISTEN_PID.len()].copy_from_slice(LISTEN_PID);
            env_ptrs[at] = s.as_ptr() as *const libc::c_char;
            slot = Some(s);
        }
    }
    Ok(Prepared {
        paths,
        _args: args,
        arg_ptrs,
        env_ptrs,
        slot,
        listen_fds,
        file_fds: files.raw(),
        take_terminal,
    })
}

/// Whether COMMAND's group should be made the foreground group of the terminal on stdin. At the
/// first start, when that foreground group is secret-exec's own: a terminal another job holds
/// (secret-exec started with `&` at an interactive shell) is left alone. At a `restart`, when
/// the first start took it and it is still this session's controlling terminal: the foreground
/// is then wherever the previous COMMAND left it.
pub fn terminal_is_ours(restart: bool) -> bool {
    use nix::sys::termios::tcgetsid;
    use nix::unistd::{getpgrp, getsid, isatty, tcgetpgrp};
    let stdin = std::io::stdin();
    if !isatty(&stdin).unwrap_or(false) {
        return false;
    }
    if restart {
        matches!((tcgetsid(&stdin), getsid(None)), (Ok(t), Ok(s)) if t == s)
    } else {
        tcgetpgrp(&stdin).is_ok_and(|g| g == getpgrp())
    }
}

/// Forks and execs COMMAND with `files` placed after the socket-activation range, handing it
/// the terminal when `take_terminal` (see [`terminal_is_ours`]). Returns once
/// the child has exec'd (or with the reason it could not, the failed child already reaped), so
/// a missing command is a 127 before anything runs.
pub fn spawn(
    argv: &[OsString],
    env: &EnvBlock,
    files: &Files,
    listen_fds: u32,
    take_terminal: bool,
) -> Result<Pid, Error> {
    let mut p = prepare(argv, env, files, listen_fds, take_terminal)?;
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::Internal(format!("cannot create a pipe: {e}")))?;
    let slot = p.slot.as_mut().map(|s| s.as_mut_ptr());
    let file_fds = p.file_fds.as_mut_ptr();
    // SAFETY: the child branch only runs `in_child`, which makes async-signal-safe calls on
    // memory prepared above and never returns.
    let forked = unsafe { nix::unistd::fork() };
    if let Ok(ForkResult::Child) = forked {
        // SAFETY: we are the new child; see `in_child`.
        unsafe { in_child(&p, slot, file_fds, wr.as_raw_fd()) };
    }
    // Our copy of the write end closes, so EOF means exec closed the child's.
    drop(wr);
    let pid = match forked {
        Ok(ForkResult::Parent { child }) => child,
        Ok(ForkResult::Child) => unreachable!("in_child never returns"),
        Err(e) => return Err(Error::Internal(format!("cannot fork: {e}"))),
    };
    let mut status = [0u8; 8];
    let n = loop {
        match nix::unistd::read(&rd, &mut status) {
            Err(Errno::EINTR) => continue,
            other => break other.unwrap_or(0),
        }
    };
    drop(rd);
    if n != 8 {
        // EOF: exec succeeded and closed the write end (close-on-exec).
        return Ok(pid);
    }
    let _ = nix::sys::wait::waitpid(pid, None);
    let errno = i32::from_ne_bytes([status[0], status[1], status[2], status[3]]);
    let at = i32::from_ne_bytes([status[4], status[5], status[6], status[7]]);
    if at == AT_USER
        && let Some(user) = crate::launch::user::target()
    {
        return Err(crate::launch::user::failed(user, errno));
    }
    if at == AT_PLACING {
        let first = i32::try_from(3 + listen_fds).unwrap_or(i32::MAX);
        return Err(exec::placing(first, errno));
    }
    let failed = usize::try_from(at)
        .ok()
        .and_then(|i| p.paths.get(i))
        .map(|path| (path.as_c_str(), Errno::from_raw(errno)));
    Err(exec::failure(&argv[0], failed, env))
}

/// The child between fork and exec. Async-signal-safe calls only; never returns.
unsafe fn in_child(
    p: &Prepared,
    slot: Option<*mut u8>,
    file_fds: *mut libc::c_int,
    status_fd: libc::c_int,
) -> ! {
    // SAFETY: the whole body makes raw syscalls on this process's own state and on memory that
    // fork copied; nothing allocates or takes a lock.
    unsafe {
        libc::setpgid(0, 0);
        // From its new group the child is in the background, where tcsetpgrp stops the caller
        // with SIGTTOU unless that is ignored or blocked. secret-exec ignores it
        // (`signals::install`; the signalfd mask does not hold it), and this copy of the
        // dispositions is reset to default below, before exec.
        if p.take_terminal {
            libc::tcsetpgrp(0, libc::getpid());
        }
        if let Some(slot) = slot {
            write_pid(slot.add(LISTEN_PID.len()), libc::getpid() as u32);
        }
        let first = 3 + p.listen_fds;
        for fd in 3..first {
            let flags = libc::fcntl(fd as i32, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd as i32, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            }
        }
        if libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) != 0
        {
            let mut lim: libc::rlimit = std::mem::zeroed();
            let top = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                lim.rlim_cur.min(1 << 20) as i32
            } else {
                1024
            };
            for fd in first as i32..top {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                }
            }
        }
        // The status pipe may sit where a file goes: move it above them first.
        let count = p.file_fds.len() as i32;
        let mut status_fd = status_fd;
        if count > 0 {
            let moved = libc::fcntl(status_fd, libc::F_DUPFD_CLOEXEC, first as i32 + count);
            let placed = if moved < 0 {
                Err(*libc::__errno_location())
            } else {
                status_fd = moved;
                // SAFETY: our own copy (fork's) of the array built before fork, of `count` fds.
                let fds = std::slice::from_raw_parts_mut(file_fds, p.file_fds.len());
                files::place(fds, first as i32)
            };
            if let Err(errno) = placed {
                let mut bytes = [0u8; 8];
                bytes[..4].copy_from_slice(&errno.to_ne_bytes());
                bytes[4..].copy_from_slice(&AT_PLACING.to_ne_bytes());
                libc::write(status_fd, bytes.as_ptr().cast(), 8);
                libc::_exit(127)
            }
        }
        if let Err((_, errno)) = crate::launch::user::switch_to_target() {
            report(status_fd, errno, AT_USER);
        }
        exec::reset_signals();
        // The errno and candidate that ended the search, as `exec::exec` reports them; -1: none.
        let mut denied: (i32, i32) = (0, -1);
        let mut stopped: Option<(i32, i32)> = None;
        for (i, path) in p.paths.iter().enumerate() {
            libc::execve(path.as_ptr(), p.arg_ptrs.as_ptr(), p.env_ptrs.as_ptr());
            let e = *libc::__errno_location();
            match exec::next(e) {
                Next::Continue => continue,
                Next::Denied => {
                    if denied.1 < 0 {
                        denied = (e, i as i32);
                    }
                }
                Next::Stop => {
                    stopped = Some((e, i as i32));
                    break;
                }
            }
        }
        let (errno, at) = stopped.unwrap_or(denied);
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&errno.to_ne_bytes());
        bytes[4..].copy_from_slice(&at.to_ne_bytes());
        libc::write(status_fd, bytes.as_ptr().cast(), 8);
        libc::_exit(127)
    }
}

/// Writes `pid` in decimal and a NUL at `at` (room for 21 bytes), without allocating.
unsafe fn write_pid(at: *mut u8, pid: u32) {
    let mut digits = [0u8; 10];
    let mut n = pid;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        // SAFETY: the slot has room for 20 digits and a NUL; a u32 has at most 10.
        unsafe { *at.add(i) = digits[len - 1 - i] };
    }
    // SAFETY: as above.
    unsafe { *at.add(len) = 0 };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_digits() {
        for (pid, want) in [
            (0u32, "0"),
            (7, "7"),
            (4_194_304, "4194304"),
            (u32::MAX, "4294967295"),
        ] {
            let mut buf = [0xffu8; 21];
            // SAFETY: 21 bytes of room.
            unsafe { write_pid(buf.as_mut_ptr(), pid) };
            let end = buf.iter().position(|&b| b == 0).unwrap();
            assert_eq!(&buf[..end], want.as_bytes());
        }
    }
}
