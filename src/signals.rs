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
        let byte = sig as u8;
        // SAFETY: writes one byte from a live stack variable to a pipe fd we own.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
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
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills the two-int array it is given.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return;
        }
        let (r, w) = (fds[0], fds[1]);
        // The handler must never block, even on a full pipe.
        // SAFETY: fcntl on the write end we just created.
        unsafe { libc::fcntl(w, libc::F_SETFL, libc::O_NONBLOCK) };
        PIPE_W.store(w, Ordering::SeqCst);
        if spawn("signal-watchdog", move || watchdog(r)).is_err() {
            return;
        }
        for sig in [libc::SIGTTIN, libc::SIGTTOU] {
            // SAFETY: SIG_IGN runs no code; this process's disposition only.
            unsafe { libc::signal(sig, libc::SIG_IGN) };
        }
        for sig in WATCHED {
            // SAFETY: a zeroed sigaction with our handler, SA_RESTART (so a signal never turns
            // into a spurious EINTR elsewhere) and every watched signal masked while it runs.
            unsafe {
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = on_signal as *const () as libc::sighandler_t;
                act.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut act.sa_mask);
                for s in WATCHED {
                    libc::sigaddset(&mut act.sa_mask, s as i32);
                }
                libc::sigaction(sig as i32, &act, std::ptr::null_mut());
            }
        }
    });
}

fn watchdog(r: libc::c_int) {
    let mut byte = 0u8;
    loop {
        // SAFETY: reads one byte into a live stack variable from a pipe fd we own.
        let n = unsafe { libc::read(r, (&mut byte as *mut u8).cast(), 1) };
        if n == 1 {
            break;
        }
        if n == 0 {
            return;
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
    // SAFETY: sigpending fills the set it is given; sigismember only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        if libc::sigpending(&mut set) != 0 {
            return None;
        }
        WATCHED
            .into_iter()
            .find(|s| libc::sigismember(&set, *s as i32) == 1)
    }
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
