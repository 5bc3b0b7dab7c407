//! The resident parent for `--init`/`--watch`, after tini: COMMAND runs as a child in its own
//! process group; every catchable signal is forwarded to that group; every zombie is reaped
//! (orphans too: as PID 1, or as a child subreaper otherwise); secret-exec ends with the child's
//! status, 128+n for a death by signal n; a COMMAND stopped from the terminal it was handed
//! stops secret-exec too, for the shell's job control. Under `--watch`, a new environment block
//! from the watcher stops the child (stop signal, timeout, SIGKILL) and starts it again, or
//! exits 75.
//!
//! Signals are blocked and read from a signalfd, so none is lost and none runs a handler. The
//! parent holds no secret value while the child runs: the block is dropped (wiped) and the
//! `--file` memfds closed the moment a child has been started from them (a sealed memfd cannot
//! be wiped; it dies with the last child holding it), and the stack the fetch used is scrubbed.

use crate::cli::OnChange;
use crate::config::Config;
use crate::error::Error;
use crate::from_env::Reference;
use crate::launch::{child, listen, watch};
use crate::log::{self, Event};
use crate::plan::Plan;
use crate::run::Delivery;
use nix::libc;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// `--init`/`--watch` settings, validated.
#[derive(Debug, Clone)]
pub struct Options {
    /// `Some(interval)` under `--watch`.
    pub watch: Option<Duration>,
    pub on_change: OnChange,
    pub stop_signal: i32,
    pub stop_timeout: Duration,
}

/// Exit status when a watched secret changed under `--on-change=exit` (EX_TEMPFAIL).
pub const EXIT_CHANGED: i32 = 75;

/// `SIGTERM`, `TERM`, `term` or `15`: a signal that can stop a process.
pub fn parse_signal(text: &str) -> Result<i32, String> {
    let t = text.trim();
    let bad = || format!("unknown signal '{text}' (e.g. SIGTERM, SIGINT, SIGQUIT, or a number)");
    if let Ok(n) = t.parse::<i32>() {
        return if (1..=64).contains(&n) && n != libc::SIGSTOP && n != 32 && n != 33 {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = t.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    match name.parse::<nix::sys::signal::Signal>() {
        Ok(s) if s != nix::sys::signal::Signal::SIGSTOP => Ok(s as i32),
        _ => Err(bad()),
    }
}

/// Signals left alone: the ones that cannot be caught, the synchronous ones (a fault of our
/// own), and the terminal stops a background process would get: secret-exec ignores those
/// (`signals::install`), so once COMMAND's group holds the terminal, neither a `kill -TTIN` nor
/// a `-v` line to a `tostop` terminal can stop the parent. tini's set.
fn forwarded(sig: i32) -> bool {
    !matches!(
        sig,
        libc::SIGKILL
            | libc::SIGSTOP
            | libc::SIGILL
            | libc::SIGTRAP
            | libc::SIGABRT
            | libc::SIGBUS
            | libc::SIGFPE
            | libc::SIGSEGV
            | libc::SIGSYS
            | libc::SIGTTIN
            | libc::SIGTTOU
            | libc::SIGCHLD
    ) && !(32..=33).contains(&sig)
}

/// Blocks every forwarded signal and SIGCHLD, and returns a signalfd that reads them.
fn signal_fd() -> Result<OwnedFd, Error> {
    // SAFETY: sigset manipulation on a local, then the process mask and a new fd.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in 1..=64 {
            if forwarded(sig) || sig == libc::SIGCHLD {
                libc::sigaddset(&mut set, sig);
            }
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(Error::Internal(format!(
                "cannot read signals (signalfd): {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// The next signal waiting on `fd`, if any.
fn next_signal(fd: &OwnedFd) -> Option<i32> {
    // SAFETY: all-zero is a valid signalfd_siginfo; read fills at most its size.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: reads one record into `info`.
    let n = unsafe {
        libc::read(
            fd.as_raw_fd(),
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            size,
        )
    };
    (n == size as isize).then_some(info.ssi_signo as i32)
}

/// The exit status a wait status stands for: the code, or 128+n for a death by signal n.
pub fn status_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Reaps every child that has ended; returns `child`'s status code if it was one of them.
fn reap_all(child: Pid) -> Option<i32> {
    let mut ours = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return ours,
            Ok(status) => {
                if status.pid() == Some(child) {
                    ours = status_code(status);
                } else {
                    log::at(2, Event::Supervise).say(format_args!(
                        "reaped orphan {}",
                        status.pid().map_or(0, |p| p.as_raw())
                    ));
                }
            }
        }
    }
}

/// Whether `child` has stopped since the last look, taking that report. Without WEXITED,
/// waitid reports stops only: an exit is left for [`reap_all`].
fn stopped(child: Pid) -> bool {
    // SAFETY: waitid fills the zeroed siginfo it is given; si_pid reads the field it set.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_PID,
            child.as_raw() as libc::id_t,
            &mut info,
            libc::WSTOPPED | libc::WNOHANG,
        ) == 0
            && info.si_pid() == child.as_raw()
    }
}

/// COMMAND, holding the terminal, was stopped from it (Ctrl-Z sends SIGTSTP to its group):
/// secret-exec stops too, so the job-control shell that started it sees its job stopped and
/// takes the terminal back instead of waiting on a stopped COMMAND; on `fg` (SIGCONT with the
/// terminal), the terminal goes on to COMMAND's group, which is continued (`bg`: continued only). Not as PID 1 (the kernel does not
/// stop a namespace's init from inside), and only when the parent is a job-control parent (in
/// another group of this session), so the group is not orphaned and someone can continue it.
fn follow_stop(child: Pid) {
    // SAFETY: queries of this process and its parent, a stop of our own, then the terminal
    // handed to COMMAND's group and a SIGCONT to it.
    unsafe {
        let me = libc::getpid();
        let parent = libc::getppid();
        if me == 1
            || libc::getpgid(parent) == libc::getpgrp()
            || libc::getsid(parent) != libc::getsid(0)
        {
            return;
        }
        log::at(1, Event::Supervise).say(format_args!(
            "COMMAND was stopped; stopping with it until continued"
        ));
        libc::kill(me, libc::SIGSTOP);
        // Continued: by `fg` when the shell gave our group the terminal (hand it on), by `bg`
        // when it kept it (COMMAND then runs in the background, as the user asked).
        if libc::tcgetpgrp(0) == libc::getpgrp() {
            libc::tcsetpgrp(0, child.as_raw());
        }
        libc::kill(-child.as_raw(), libc::SIGCONT);
    }
}

fn kill_group(child: Pid, sig: i32) {
    // SAFETY: signalling the child's process group (its pgid is its pid, set before exec).
    if unsafe { libc::kill(-child.as_raw(), sig) } != 0 {
        // The group may be gone already while the child is a zombie; try the child itself.
        // SAFETY: as above, for the one process.
        unsafe { libc::kill(child.as_raw(), sig) };
    }
}

/// Starts COMMAND from `first` (environment block and `--file` memfds) and stays resident until
/// it ends. Returns the exit status.
pub fn run(
    config: Config,
    plan: Plan,
    refs: Vec<Reference>,
    argv: Vec<OsString>,
    opts: Options,
    first: Delivery,
) -> Result<i32, Error> {
    let signals = signal_fd()?;
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } != 1
        && let Err(e) = nix::sys::prctl::set_child_subreaper(true)
    {
        log::at(1, Event::Supervise).say(format_args!(
            "cannot become a child subreaper ({e}); orphans of COMMAND go to PID 1"
        ));
    }
    let listen_fds = listen::from_env();
    let mut terminal = child::terminal_is_ours(false);
    let mut child = child::spawn(&argv, &first.block, &first.files, listen_fds, terminal)?;
    let baseline = first.versions.clone();
    drop(first);
    watch::scrub_stack();
    log::at(1, Event::Supervise).say(format_args!(
        "started {} as pid {child}",
        argv[0].to_string_lossy()
    ));

    let watcher = match opts.watch {
        Some(interval) => Some(watch::spawn(
            config,
            plan,
            refs,
            argv.clone(),
            interval,
            baseline,
        )?),
        None => None,
    };

    let mut pending: Option<Delivery> = None;
    let mut stop_deadline: Option<Instant> = None;
    let mut stopping = false;
    let mut terminating = false;
    loop {
        let timeout_ms = match stop_deadline {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .as_millis()
                .min(i32::MAX as u128) as i32,
            None => -1,
        };
        let mut fds = [
            libc::pollfd {
                fd: signals.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: watcher.as_ref().map_or(-1, |w| w.wake.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: polls two pollfds we own; a negative fd is ignored by the kernel.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };

        while let Some(sig) = next_signal(&signals) {
            if sig != libc::SIGCHLD {
                log::at(2, Event::Supervise)
                    .say(format_args!("forwarding signal {sig} to COMMAND"));
                kill_group(child, sig);
                if sig == libc::SIGTERM || sig == libc::SIGINT {
                    terminating = true;
                    pending = None;
                }
                continue;
            }
            if terminal && stopped(child) {
                follow_stop(child);
            }
            let Some(code) = reap_all(child) else {
                continue;
            };
            if !stopping || terminating {
                return Ok(code);
            }
            // The child ended because we stopped it for new secrets.
            stopping = false;
            stop_deadline = None;
            if opts.on_change == OnChange::Exit {
                log::at(1, Event::Supervise).say(format_args!(
                    "a watched secret changed; exiting {EXIT_CHANGED} (--on-change=exit)"
                ));
                return Ok(EXIT_CHANGED);
            }
            let Some(next) = pending.take() else {
                return Ok(code);
            };
            terminal = terminal && child::terminal_is_ours(true);
            child = child::spawn(&argv, &next.block, &next.files, listen_fds, terminal)?;
            drop(next);
            watch::scrub_stack();
            log::at(1, Event::Supervise).say(format_args!(
                "restarted {} with the new secrets as pid {child}",
                argv[0].to_string_lossy()
            ));
        }

        if let Some(w) = &watcher {
            let mut byte = [0u8; 64];
            // SAFETY: drains the non-blocking wake pipe into a local buffer.
            while unsafe { libc::read(w.wake.as_raw_fd(), byte.as_mut_ptr().cast(), byte.len()) }
                > 0
            {}
            while let Ok(delivery) = w.updates.try_recv() {
                if terminating {
                    continue;
                }
                // A newer set replaces one still waiting for the old child to go.
                pending = Some(delivery);
                if !stopping {
                    stopping = true;
                    stop_deadline = Some(Instant::now() + opts.stop_timeout);
                    log::at(1, Event::Supervise).say(format_args!(
                        "a watched secret changed; stopping COMMAND (signal {})",
                        opts.stop_signal
                    ));
                    kill_group(child, opts.stop_signal);
                }
            }
        }

        if let Some(d) = stop_deadline
            && Instant::now() >= d
        {
            log::at(1, Event::Supervise).say(format_args!(
                "COMMAND outlived --stop-timeout; sending SIGKILL to its process group"
            ));
            kill_group(child, libc::SIGKILL);
            stop_deadline = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        let ok = [
            ("SIGTERM", 15),
            ("TERM", 15),
            ("sigint", 2),
            ("quit", 3),
            ("9", 9),
            ("SIGKILL", 9),
            ("SIGUSR1", 10),
            ("34", 34),
        ];
        for (text, n) in ok {
            assert_eq!(parse_signal(text), Ok(n), "{text}");
        }
        for bad in ["FOO", "", "0", "65", "SIGSTOP", "19", "32", "SIG", "-15"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_set() {
        for sig in [1, 2, 3, 10, 12, 14, 15, 17 + 1, 20, 28, 34, 64] {
            assert!(forwarded(sig), "{sig}");
        }
        for sig in [4, 5, 6, 7, 8, 9, 11, 17, 19, 21, 22, 31, 32, 33] {
            assert!(!forwarded(sig), "{sig}");
        }
    }

    #[test]
    fn status_codes() {
        let p = Pid::from_raw(1);
        use nix::sys::signal::Signal;
        assert_eq!(status_code(WaitStatus::Exited(p, 3)), Some(3));
        assert_eq!(
            status_code(WaitStatus::Signaled(p, Signal::SIGKILL, false)),
            Some(137)
        );
        assert_eq!(status_code(WaitStatus::StillAlive), None);
    }
}
