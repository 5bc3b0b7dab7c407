//! What the fetch window leaves running is ended with it. A `credential_process` helper the SDK
//! started (and whatever it started in turn) is not killed when its future is dropped at the
//! deadline or on a signal; left alone it would outlive secret-exec, reparented to PID 1. During
//! the first fetch secret-exec is a child subreaper, so the helper's orphans come back to it, and
//! afterwards every process below it is killed. Only on the main thread and before any COMMAND
//! exists: a `--watch` re-fetch runs beside the supervised COMMAND and must not touch it.

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{Pid, getpid, gettid};

/// Whether the caller is the main thread (the first fetch runs there, a `--watch` re-fetch not).
fn on_main_thread() -> bool {
    getpid() == gettid()
}

/// Starts collecting orphans: returns whether [`end`] must be called.
pub fn begin() -> bool {
    on_main_thread() && nix::sys::prctl::set_child_subreaper(true).is_ok()
}

/// The direct children of `pid`, as the kernel lists them per thread.
fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| {
            let path = t.ok()?.path().join("children");
            std::fs::read_to_string(path).ok()
        })
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// Kills every process below this one (depth first, each before its children could be
/// re-parented), reaps the direct children, and stops being a subreaper (exec would keep it).
pub fn end() {
    let me = getpid().as_raw();
    for _ in 0..3 {
        let direct = children(me);
        if direct.is_empty() {
            break;
        }
        let mut stack = direct.clone();
        while let Some(pid) = stack.pop() {
            stack.extend(children(pid));
            // A process that already ended (ESRCH) needs nothing more.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        for pid in direct {
            // Our own child, just sent SIGKILL, so this returns; ECHILD means it is reaped.
            let _ = waitpid(Pid::from_raw(pid), None);
        }
    }
    let _ = nix::sys::prctl::set_child_subreaper(false);
}
