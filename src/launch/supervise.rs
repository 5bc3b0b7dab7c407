//! The resident parent for `--init`/`--watch`, after tini: COMMAND runs as a child in its own
//! process group; every catchable signal is forwarded to that group; every zombie is reaped
//! (orphans too: as PID 1, or as a child subreaper otherwise); secret-exec ends with the child's
//! status, 128+n for a death by signal n; a COMMAND stopped from the terminal it was handed
//! stops secret-exec too, for the shell's job control. Under `--watch`, a new delivery handed
//! over by the watcher stops the child (stop signal, timeout, SIGKILL) and starts it again, or
//! exits 75. The supervisor receives deliveries; it never sees the configuration or the plan.
//!
//! Signals are blocked and read from a signalfd, so none is lost and none runs a handler. The
//! parent holds no secret value while the child runs: the block is dropped (wiped) and the
//! `--file` memfds closed the moment a child has been started from them (a sealed memfd cannot
//! be wiped; it dies with the last child holding it), and the stack the fetch used is scrubbed.

use crate::deliver::{Delivery, Updates};
use crate::error::Error;
use crate::launch::{child, listen};
use crate::log::{self, Event};
use crate::secret::scrub_stack;
use crate::source::Versions;
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// What `--watch` does once the changed secrets are fetched and valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnChange {
    /// Stop COMMAND and start it again with the new environment.
    Restart,
    /// Stop COMMAND and exit 75, for the orchestrator to restart the task.
    Exit,
    /// `signal:SIG`: the `--dir` files are rewritten, then SIG goes to COMMAND's process group;
    /// COMMAND keeps running.
    Signal(i32),
}

impl OnChange {
    /// `restart`, `exit` or `signal:SIG` (SIG as `--stop-signal` takes it).
    pub fn parse(text: &str) -> Result<OnChange, String> {
        match text {
            "restart" => Ok(OnChange::Restart),
            "exit" => Ok(OnChange::Exit),
            _ => match text.strip_prefix("signal:") {
                Some(sig) => parse_signal(sig).map(OnChange::Signal),
                None => Err(format!(
                    "unknown action '{text}' (restart, exit, or signal:SIG, e.g. signal:HUP)"
                )),
            },
        }
    }
}

/// `--init`/`--watch` settings, validated.
#[derive(Debug, Clone)]
pub struct Options {
    /// `Some(interval)` under `--watch`.
    pub watch: Option<Duration>,
    pub on_change: OnChange,
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    /// The most a change waits, at random, before it is acted on (`--splay`).
    pub splay: Duration,
}

/// The flags `Options::new` reads, as given (`None`: not given). The durations come already
/// parsed and bounded by the command line's one grammar (`duration`).
#[derive(Debug, Default)]
pub struct Flags<'a> {
    pub init: bool,
    pub watch: Option<Duration>,
    pub on_change: Option<&'a str>,
    pub stop_signal: Option<&'a str>,
    pub stop_timeout: Option<Duration>,
    pub splay: Option<Duration>,
}

impl Options {
    /// `--init`, `--watch` and their settings; `None` when neither is given.
    pub fn new(flags: Flags<'_>) -> Result<Option<Options>, Error> {
        if flags.watch.is_none() {
            let given = [
                ("--on-change", flags.on_change.is_some()),
                ("--stop-signal", flags.stop_signal.is_some()),
                ("--stop-timeout", flags.stop_timeout.is_some()),
                ("--splay", flags.splay.is_some()),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
                return Err(Error::Usage(format!(
                    "{flag} acts when a watched secret changes, so it needs --watch"
                )));
            }
        }
        if !flags.init && flags.watch.is_none() {
            return Ok(None);
        }
        let watch = flags.watch;
        let stop_signal = match flags.stop_signal {
            Some(s) => parse_signal(s).map_err(|e| Error::Usage(format!("--stop-signal: {e}")))?,
            None => libc::SIGTERM,
        };
        let stop_timeout = flags.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT);
        let on_change = flags
            .on_change
            .map(OnChange::parse)
            .transpose()
            .map_err(|e| Error::Usage(format!("--on-change: {e}")))?
            .unwrap_or(OnChange::Restart);
        let splay = flags
            .splay
            .unwrap_or_else(|| watch.map_or(Duration::ZERO, |w| w / DEFAULT_SPLAY_DIVISOR));
        Ok(Some(Options {
            watch,
            on_change,
            stop_signal,
            stop_timeout,
            splay,
        }))
    }

    /// `--on-change=signal:SIG` leaves COMMAND running, and a running process's environment
    /// and descriptors cannot be changed: every value must reach it through the `--dir` files.
    pub fn check_delivery(&self, dir: bool, files: bool, from_env: bool) -> Result<(), Error> {
        if !matches!(self.on_change, OnChange::Signal(_)) {
            return Ok(());
        }
        let why = if !dir {
            "the values would be in COMMAND's environment, which cannot change under a running              process; deliver them with --dir"
        } else if files {
            "a --file memfd is sealed and COMMAND's descriptors cannot be replaced; use --dir              for every value"
        } else if from_env {
            "--from-env values are variables, which cannot change under a running process;              use --secret with --dir instead"
        } else {
            return Ok(());
        };
        Err(Error::Usage(format!(
            "--on-change=signal keeps COMMAND running, so every value must reach it through              --dir files: {why}"
        )))
    }
}

/// `--splay` unless given: a tenth of the `--watch` interval (30s at the default 5m).
pub const DEFAULT_SPLAY_DIVISOR: u32 = 10;

/// How long COMMAND has to stop before SIGKILL, unless `--stop-timeout` says.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

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
/// a `-v` line to a `tostop` terminal can stop the parent. tini's set. Also left alone: the
/// real-time signals the C library keeps for itself, below `SIGRTMIN()` (32 and 33 under glibc,
/// 32 to 34 under musl, whose `sigaddset` refuses them: the static binary could not even build
/// its signal set with 34 in it).
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
    ) && (sig < 32 || (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&sig))
}

/// Blocks every forwarded signal and SIGCHLD, and returns a signalfd that reads them.
fn signal_fd() -> Result<OwnedFd, Error> {
    // SAFETY: sigset manipulation on a local, then the process mask and a new fd.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut ok = libc::sigemptyset(&mut set) == 0;
        for sig in 1..=64 {
            if forwarded(sig) || sig == libc::SIGCHLD {
                ok &= libc::sigaddset(&mut set, sig) == 0;
            }
        }
        if !ok {
            return Err(Error::Internal("cannot build the signal set".into()));
        }
        // Raw: nix's SigSet holds only the classic signals, and the real-time ones are here too.
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(Error::Internal(
                "cannot block signals (pthread_sigmask)".into(),
            ));
        }
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
    use nix::sys::wait::{Id, waitid};
    matches!(
        waitid(Id::Pid(child), WaitPidFlag::WSTOPPED | WaitPidFlag::WNOHANG),
        Ok(WaitStatus::Stopped(pid, _)) if pid == child
    )
}

/// COMMAND, holding the terminal, was stopped from it (Ctrl-Z sends SIGTSTP to its group):
/// secret-exec stops too, so the job-control shell that started it sees its job stopped and
/// takes the terminal back instead of waiting on a stopped COMMAND; on `fg` (SIGCONT with the
/// terminal), the terminal goes on to COMMAND's group, which is continued (`bg`: continued
/// only). Not as PID 1 (the kernel does not stop a namespace's init from inside), and only when
/// the parent is a job-control parent (in another group of this session), so the group is not
/// orphaned and someone can continue it.
fn follow_stop(child: Pid) {
    use nix::sys::signal::{Signal, kill, killpg};
    use nix::unistd::{getpgid, getpgrp, getpid, getppid, getsid, tcgetpgrp, tcsetpgrp};
    let me = getpid();
    let parent = getppid();
    let own_group = getpgid(Some(parent)).is_ok_and(|g| g == getpgrp());
    let same_session = getsid(Some(parent)).ok() == getsid(None).ok();
    if me.as_raw() == 1 || own_group || !same_session {
        return;
    }
    log::at(1, Event::Supervise).say(format_args!(
        "COMMAND was stopped; stopping with it until continued"
    ));
    if let Err(e) = kill(me, Signal::SIGSTOP) {
        log::at(1, Event::Supervise).say(format_args!("cannot stop with COMMAND: {e}"));
        return;
    }
    // Continued: by `fg` when the shell gave our group the terminal (hand it on), by `bg`
    // when it kept it (COMMAND then runs in the background, as the user asked).
    let stdin = std::io::stdin();
    if tcgetpgrp(&stdin).is_ok_and(|g| g == getpgrp())
        && let Err(e) = tcsetpgrp(&stdin, child)
    {
        log::at(1, Event::Supervise).say(format_args!(
            "cannot hand the terminal back to COMMAND: {e}"
        ));
    }
    if let Err(e) = killpg(child, Signal::SIGCONT) {
        log::at(1, Event::Supervise).say(format_args!("cannot continue COMMAND: {e}"));
    }
}

/// Raw `kill`: nix's takes only the classic signals, and every one up to 64 is forwarded.
fn kill_group(child: Pid, sig: i32) {
    // SAFETY: signalling the child's process group (its pgid is its pid, set before exec).
    if unsafe { libc::kill(-child.as_raw(), sig) } != 0 {
        // The group may be gone already while the child is a zombie; try the child itself.
        // SAFETY: as above, for the one process.
        if unsafe { libc::kill(child.as_raw(), sig) } != 0 {
            log::at(2, Event::Supervise).say(format_args!(
                "signal {sig} not delivered: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
}

/// Starts COMMAND from `first` (environment block and `--file` memfds) and stays resident until
/// it ends. Returns the exit status. `watch` is called once COMMAND runs and signals are blocked
/// (a thread it starts inherits the mask), with the versions COMMAND got; the `Updates` it
/// returns, if any, hand over each new delivery.
pub fn run(
    argv: Vec<OsString>,
    opts: Options,
    first: Delivery,
    watch: impl FnOnce(Versions) -> Result<Option<Updates>, Error>,
) -> Result<i32, Error> {
    let signals = signal_fd()?;
    if nix::unistd::getpid().as_raw() != 1
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
    scrub_stack();
    log::at(1, Event::Supervise).say(format_args!(
        "started {} as pid {child}",
        argv[0].to_string_lossy()
    ));

    let watcher = watch(baseline)?;

    let mut pending: Option<Delivery> = None;
    let mut stop_deadline: Option<Instant> = None;
    let mut stopping = false;
    let mut terminating = false;
    loop {
        let timeout = match stop_deadline {
            Some(d) => PollTimeout::try_from(d.saturating_duration_since(Instant::now()))
                .unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
        };
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let Some(w) = &watcher {
            fds.push(PollFd::new(w.wake.as_fd(), PollFlags::POLLIN));
        }
        // EINTR only wakes the loop early: what is ready is read below, then it polls again.
        if let Err(e) = poll(&mut fds, timeout)
            && e != nix::errno::Errno::EINTR
        {
            return Err(Error::Internal(format!(
                "cannot wait for signals (poll): {e}"
            )));
        }
        drop(fds);

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
            scrub_stack();
            log::at(1, Event::Supervise).say(format_args!(
                "restarted {} with the new secrets as pid {child}",
                argv[0].to_string_lossy()
            ));
        }

        if let Some(w) = &watcher {
            let mut byte = [0u8; 64];
            // Drains the non-blocking wake pipe: EAGAIN ends it once it is empty.
            while nix::unistd::read(&w.wake, &mut byte).is_ok_and(|n| n > 0) {}
            while let Ok(delivery) = w.next.try_recv() {
                if terminating {
                    continue;
                }
                if let OnChange::Signal(sig) = opts.on_change {
                    // The watcher rewrote the --dir files before handing this over; the block
                    // holds no value (config allows signal mode with --dir only) and is wiped.
                    drop(delivery);
                    scrub_stack();
                    log::at(1, Event::Supervise).say(format_args!(
                        "a watched secret changed; the --dir files are rewritten, sending \
                         signal {sig} to COMMAND (--on-change=signal)"
                    ));
                    kill_group(child, sig);
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
        for sig in [
            1,
            2,
            3,
            10,
            12,
            14,
            15,
            17 + 1,
            20,
            28,
            libc::SIGRTMIN(),
            64,
        ] {
            assert!(forwarded(sig), "{sig}");
        }
        for sig in [4, 5, 6, 7, 8, 9, 11, 17, 19, 21, 22, 31, 32, 33, 65] {
            assert!(!forwarded(sig), "{sig}");
        }
        // Every signal forwarded is one this C library lets a set hold (signal_fd's set).
        for sig in (1..=64).filter(|&s| forwarded(s)) {
            // SAFETY: sigset manipulation on a local.
            let added = unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, sig)
            };
            assert_eq!(added, 0, "sigaddset refuses {sig}");
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
