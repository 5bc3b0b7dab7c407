//! Signals before exec. From the first line of `run`, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1
//! and SIGALRM are caught by a handler that only records the first one and writes a byte to a
//! pipe; a watchdog thread reads that pipe, wakes the main flow (which unwinds, wiping its
//! buffers, and exits 128+n) and, should the main flow still be running after a grace period,
//! ends the process itself. So a signal never depends on the runtime thread being free.
//!
//! Invariants: every thread but the main one blocks every signal, so signals can be delivered
//! only to the main thread (where `--init` reads them, SIGCHLD included, from a signalfd); `seal_for_exec` blocks them there too, checks what arrived, and sets
//! every disposition to default *before* unblocking — a signal from then on either kills the
//! process before execve or is pending for COMMAND. No signal is lost.
//!
//! The terminal never stops secret-exec: SIGTTIN and SIGTTOU are ignored from `install` on, in
//! exec mode and in the resident parent, so a `-v` line written from a background job to a
//! `tostop` terminal goes through (a read would fail with EIO; nothing reads the terminal) and a
//! stopped process cannot sit on a SIGTERM. COMMAND gets them at their default again, with every
//! other disposition, before exec; a `credential_process` helper inherits the ignoring, so one
//! that reads the terminal from a background job fails at once instead of stopping.

use crate::error::Error;
use nix::libc;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// The signals that end a run before exec, with 128+n.
pub const WATCHED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGALRM,
];

/// How long the main flow has to unwind after a signal before the watchdog ends the process.
/// Unwinding is a few milliseconds; this only matters if a syscall on the main thread is stuck
/// where no deadline reaches (a write to a stdout nobody reads).
const GRACE: Duration = Duration::from_secs(2);

/// The first signal caught (0: none yet).
static CAUGHT: AtomicI32 = AtomicI32::new(0);
/// Write end of the self-pipe, non-blocking, or -1 before `install`.
static PIPE_W: AtomicI32 = AtomicI32::new(-1);
/// Wakes the async fetch window; holds a permit if nobody waits yet.
static WAKE: Notify = Notify::const_new();
/// Set by `main` once its error line is out and only `exit` is left: the watchdog stands down.
static EXITING: AtomicBool = AtomicBool::new(false);

/// Tells the watchdog that the main flow has reached its exit.
pub fn exiting() {
    EXITING.store(true, Ordering::SeqCst);
}

extern "C" fn on_signal(sig: libc::c_int) {
    // Async-signal-safe: an atomic store and write(2), nothing else.
    let _ = CAUGHT.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
    let fd = PIPE_W.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: the write end is never closed once stored (see `install`).
        let w = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        // nix's write is write(2) and nothing else; a full pipe (EAGAIN) already says "look".
        let _ = nix::unistd::write(w, &[sig as u8]);
    }
}

/// Blocks every signal in the calling thread. Every thread other than main calls this first
/// (the runtime's workers via `on_thread_start`, our own threads via `spawn`).
pub fn block_in_this_thread() {
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), None);
}

/// Spawns a thread that never receives a signal: the mask is blocked around the spawn, so the
/// thread starts with it blocked (there is no moment it could take one).
pub fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<T>> {
    let mut old = SigSet::empty();
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), Some(&mut old));
    let handle = std::thread::Builder::new().name(name.into()).spawn(f);
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    handle
}

/// Installs the handlers and the watchdog. Idempotent.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use nix::fcntl::{FcntlArg, OFlag, fcntl};
        use nix::sys::signal::{SaFlags, SigAction, SigHandler, sigaction};
        use std::os::fd::IntoRawFd;
        let Ok((r, w)) = nix::unistd::pipe2(OFlag::O_CLOEXEC) else {
            return;
        };
        // The handler must never block, even on a full pipe.
        if fcntl(&w, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).is_err() {
            return;
        }
        // Kept open for the life of the process: the handler may write to it at any time.
        PIPE_W.store(w.into_raw_fd(), Ordering::SeqCst);
        // Both ends stay open for the life of the process, as raw numbers: the watchdog must
        // never close its end, whose number `deliver::files::place` may reuse before exec.
        let r = r.into_raw_fd();
        if spawn("signal-watchdog", move || watchdog(r)).is_err() {
            return;
        }
        // Job-control stops are ignored for secret-exec's whole life (tini does the same): a
        // stopped secret-exec forwards nothing, reaps nothing and holds SIGTERM. COMMAND gets
        // them back at their default before exec.
        for sig in [Signal::SIGTTIN, Signal::SIGTTOU] {
            // SAFETY: SIG_IGN runs no code; this process's disposition only.
            if let Err(e) = unsafe { nix::sys::signal::signal(sig, SigHandler::SigIgn) } {
                crate::output::stderr_line(&format!(
                    "secret-exec: cannot ignore {sig}: {e}; a background terminal write may stop it"
                ));
            }
        }
        // SA_RESTART, so a signal never turns into a spurious EINTR elsewhere, and every
        // watched signal masked while the handler runs.
        let mask: SigSet = WATCHED.into_iter().collect();
        let act = SigAction::new(SigHandler::Handler(on_signal), SaFlags::SA_RESTART, mask);
        for sig in WATCHED {
            // SAFETY: the handler is async-signal-safe (an atomic store and a write).
            if let Err(e) = unsafe { sigaction(sig, &act) } {
                crate::output::stderr_line(&format!(
                    "secret-exec: cannot watch {sig}: {e}; it will end the process unannounced"
                ));
            }
        }
    });
}

fn watchdog(r: std::os::fd::RawFd) {
    // SAFETY: `install` never closes this end.
    let r = unsafe { std::os::fd::BorrowedFd::borrow_raw(r) };
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(r, &mut byte) {
            Ok(1) => break,
            Ok(0) => return,
            // An error (EINTR) is retried, as before.
            _ => {}
        }
    }
    WAKE.notify_one();
    std::thread::sleep(GRACE);
    // The main flow did not finish in time: end the process here, with the same line and code.
    if EXITING.load(Ordering::SeqCst) {
        // Stay put rather than end the thread: a thread ending unmaps its stacks while the
        // process exits, and nothing is gained by it.
        loop {
            std::thread::park();
        }
    }
    if let Some(sig) = caught() {
        let err = Error::Signal(sig);
        crate::output::stderr_line(&crate::error::Report(&err).to_string());
        // SAFETY: _exit ends the process without running anything else.
        unsafe { libc::_exit(err.exit_code()) };
    }
}

/// The first watched signal caught so far.
pub fn caught() -> Option<Signal> {
    match CAUGHT.load(Ordering::SeqCst) {
        0 => None,
        n => Signal::try_from(n).ok(),
    }
}

/// `Err(Signal)` once a watched signal has arrived: the check between stages.
pub fn check() -> Result<(), Error> {
    caught().map_or(Ok(()), |s| Err(Error::Signal(s)))
}

/// Resolves when a watched signal has arrived.
pub async fn interrupted() -> Signal {
    loop {
        if let Some(s) = caught() {
            return s;
        }
        WAKE.notified().await;
    }
}

/// The last step before execve: blocks every signal, fails with the first watched one that has
/// arrived (caught, or pending since the block), then resets every disposition to default and
/// only then unblocks. From here a watched signal kills the process before execve (COMMAND never
/// starts) or stays pending across it (COMMAND gets it). `reset` sets the dispositions.
pub fn seal_for_exec<T>(reset: impl FnOnce() -> T) -> Result<T, Error> {
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), None);
    check()?;
    if let Some(s) = first_pending() {
        return Err(Error::Signal(s));
    }
    let done = reset();
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    Ok(done)
}

/// The first watched signal pending for this thread or the process (blocked, so not delivered).
fn first_pending() -> Option<Signal> {
    // Raw: nix has no sigpending. SAFETY: it fills the zeroed set it is given.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        if libc::sigpending(&mut set) != 0 {
            return None;
        }
        SigSet::from_sigset_t_unchecked(set)
    };
    WATCHED.into_iter().find(|s| set.contains(*s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_threads_block_every_signal() {
        let mask = spawn("t", || {
            let mut m = SigSet::empty();
            pthread_sigmask(SigmaskHow::SIG_BLOCK, None, Some(&mut m)).unwrap();
            m
        })
        .unwrap()
        .join()
        .unwrap();
        for s in WATCHED
            .into_iter()
            .chain([Signal::SIGCHLD, Signal::SIGPIPE])
        {
            assert!(mask.contains(s), "{s}");
        }
        let mut here = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, None, Some(&mut here)).unwrap();
        assert!(!here.contains(Signal::SIGTERM), "the caller's mask changed");
    }
}
