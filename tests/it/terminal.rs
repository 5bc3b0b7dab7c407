//! secret-exec on a terminal: a pseudo-terminal opened here, with secret-exec as the leader of a
//! new session whose controlling terminal it is (as `docker run -t`, `script` or a login shell
//! set it up). COMMAND reports whether its process group holds the terminal; every wait is
//! bounded by HANG and driven by the terminal's output, never by a fixed time.

use crate::support::{HANG, Run, moto, se, seed};
use nix::libc;
use std::ffi::CStr;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, ExitStatus, Stdio};
use std::time::Instant;

/// COMMAND: says whether its group is the terminal's foreground group, and with which value.
const FOREGROUND: &str = r#"read -r _ _ _ _ pgrp _ _ tpgid _ < /proc/self/stat; if [ "$pgrp" = "$tpgid" ]; then echo "fg=yes v=$PASSWORD"; else echo "fg=no v=$PASSWORD"; fi"#;

/// A run of secret-exec on its own pseudo-terminal; the test holds the master side.
struct OnTerminal {
    child: Child,
    master: File,
    out: Vec<u8>,
}

/// Opens a pseudo-terminal: the master, and the slave's path.
fn open_pty() -> (File, String) {
    // SAFETY: posix_openpt returns a new fd or -1; the calls below act on that fd only.
    unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        let master = File::from_raw_fd(fd);
        assert_eq!(libc::grantpt(fd), 0, "grantpt");
        assert_eq!(libc::unlockpt(fd), 0, "unlockpt");
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
        let path = CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned();
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        (master, path)
    }
}

impl OnTerminal {
    /// Starts `run` with the terminal as stdin, stdout and stderr and as its controlling
    /// terminal; `tostop` sets TOSTOP, so a write from a background group raises SIGTTOU.
    fn start(mut run: Run, tostop: bool) -> OnTerminal {
        let (master, path) = open_pty();
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&path)
            .unwrap();
        // SAFETY: termios of the slave we just opened.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            assert_eq!(libc::tcgetattr(slave.as_raw_fd(), &mut t), 0);
            if tostop {
                t.c_lflag |= libc::TOSTOP;
            }
            t.c_oflag &= !libc::ONLCR;
            assert_eq!(libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t), 0);
        }
        let cmd = run
            .cmd
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and ioctl are async-signal-safe; fd 0 is the slave by now.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn secret-exec on a terminal");
        OnTerminal {
            child,
            master,
            out: Vec::new(),
        }
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }

    /// Waits up to `ms` for the terminal to have output, and takes what is there.
    fn pump(&mut self, ms: i32) {
        let mut fds = [libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: one pollfd we own.
        unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.master.read(&mut buf) {
            if n == 0 {
                break;
            }
            self.out.extend_from_slice(&buf[..n]);
        }
    }

    /// What the processes of secret-exec's session are doing, for a failure message.
    fn states(&self) -> String {
        let pid = self.child.id();
        let mut rows = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split(' ').collect();
            if fields.get(4) == Some(&pid.to_string().as_str()) {
                rows.push(format!("{:?} {}", entry.file_name(), fields[1]));
            }
        }
        rows.join(", ")
    }

    /// Waits until the terminal shows `text`; panics if secret-exec ends first or HANG passes.
    fn wait_output(&mut self, text: &str) -> String {
        let start = Instant::now();
        loop {
            self.pump(50);
            let out = self.output();
            if out.contains(text) {
                return out;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("secret-exec ended ({status}) before '{text}'; terminal: {out}");
            }
            assert!(
                start.elapsed() < HANG,
                "no '{text}' on the terminal (states: {}); terminal: {out}",
                self.states()
            );
        }
    }

    /// Waits for secret-exec to end; panics (after killing it) if HANG passes.
    fn wait(&mut self) -> (ExitStatus, String) {
        let start = Instant::now();
        loop {
            self.pump(50);
            if let Some(status) = self.child.try_wait().unwrap() {
                self.pump(0);
                return (status, self.output());
            }
            if start.elapsed() > HANG {
                let states = self.states();
                let _ = self.child.kill();
                panic!(
                    "secret-exec did not end on a terminal (states: {states}); terminal: {}",
                    self.output()
                );
            }
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }
}

impl Drop for OnTerminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json(password: &str) -> String {
    serde_json::json!({ "password": password }).to_string()
}

/// `--init` and `--watch` hand the terminal to COMMAND's group and end with its status; exec
/// mode keeps COMMAND in the group that holds it. With TOSTOP set too, where the resident
/// parent's `-v` lines are background writes once COMMAND has the terminal.
#[test]
fn command_gets_the_terminal_and_secret_exec_returns() {
    let name = seed("term-fg", &json("on-tty"));
    for mode in [None, Some("--init"), Some("--watch=1m")] {
        for (tostop, verbose) in [(false, None), (true, Some("-v"))] {
            let what = format!("{mode:?} tostop={tostop}");
            let run = se()
                .args(mode)
                .args(verbose)
                .args(["-s", &name, "--", "sh", "-c", FOREGROUND]);
            let mut t = OnTerminal::start(run, tostop);
            let (status, out) = t.wait();
            assert_eq!(status.code(), Some(0), "{what}: {out}");
            assert!(out.contains("fg=yes v=on-tty"), "{what}: {out}");
            if verbose.is_some() && mode.is_some() {
                assert!(out.contains("started sh as pid"), "{what}: {out}");
            }
        }
    }
}

/// A restart under `--watch` gives the terminal to the new COMMAND, and SIGTERM still ends the
/// run with COMMAND's status.
#[test]
fn a_restarted_command_gets_the_terminal_back() {
    let name = seed("term-watch", &json("first"));
    let script = format!("trap 'exit 42' TERM; {FOREGROUND}; while :; do sleep 0.05; done");
    let run = se().args(["-s", &name, "--watch=1s", "-v", "--", "sh", "-c", &script]);
    let mut t = OnTerminal::start(run, true);
    t.wait_output("fg=yes v=first");
    moto().put(&name, &json("second"));
    let out = t.wait_output("v=second");
    assert!(out.contains("fg=yes v=second"), "{out}");
    t.signal(libc::SIGTERM);
    let (status, out) = t.wait();
    assert_eq!(status.code(), Some(42), "{out}");
}

/// Started in the background (`secret-exec … &` at a shell with job control), secret-exec
/// leaves the terminal where it is, and on a `tostop` terminal its `-v` lines (background writes)
/// do not stop it, in exec mode or as the resident parent.
#[test]
fn a_background_start_neither_takes_the_terminal_nor_stops() {
    let name = seed("term-bg", &json("bg"));
    // COMMAND prints only where it may: without tostop; with tostop it only exits 7.
    let rows = [
        ("--init", false, FOREGROUND, 0, "fg=no v=bg"),
        ("--init", true, "exit 7", 7, "started sh as pid"),
        ("", true, "exit 7", 7, "secret-exec: "),
    ];
    for (mode, tostop, command, code, want) in rows {
        // The session leader is a shell with job control that keeps the terminal; secret-exec
        // is its background job, in a group of its own.
        let script = format!(
            "set -m; {bin} {mode} -v -s {name} -- sh -c '{command}' & wait $!; echo \"bg-status=$?\"",
            bin = crate::support::BIN,
        );
        let mut shell = std::process::Command::new("/bin/sh");
        shell.env_clear().envs(se().envs()).args(["-c", &script]);
        let mut t = OnTerminal::start(Run { cmd: shell }, tostop);
        let (status, out) = t.wait();
        let what = format!("'{mode}' tostop={tostop}");
        assert_eq!(status.code(), Some(0), "{what}: {out}");
        assert!(out.contains(&format!("bg-status={code}")), "{what}: {out}");
        assert!(out.contains(want), "{what}: {out}");
    }
}

/// Ctrl-Z: COMMAND, holding the terminal, is stopped (here it sends itself SIGTSTP, as the
/// terminal would); secret-exec stops with it, so the shell with job control that started it
/// sees its job stopped and gets the terminal back; `fg` hands the terminal back to COMMAND,
/// which runs on in the foreground and ends the run with its status. `bg` continues it in the
/// background instead, the terminal staying with the shell.
#[test]
fn a_stopped_command_stops_its_job_and_fg_resumes_it() {
    let name = seed("term-tstp", &json("z"));
    let command = format!("kill -TSTP $$; {FOREGROUND}; exit 5");
    for (resume, want) in [("fg", "fg=yes v=z"), ("bg; wait %1", "fg=no v=z")] {
        let script = format!(
            "set -m; {bin} --init -s {name} -- sh -c '{command}'; echo \"stopped=$?\"; \
             {resume}; echo \"after=$?\"",
            bin = crate::support::BIN,
        );
        let mut shell = std::process::Command::new("/bin/sh");
        shell.env_clear().envs(se().envs()).args(["-c", &script]);
        let mut t = OnTerminal::start(Run { cmd: shell }, false);
        let (status, out) = t.wait();
        assert_eq!(status.code(), Some(0), "{resume}: {out}");
        let stopped = out
            .find("stopped=")
            .unwrap_or_else(|| panic!("{resume}: job not stopped: {out}"));
        let resumed = out
            .find(want)
            .unwrap_or_else(|| panic!("{resume}: COMMAND not resumed as '{want}': {out}"));
        assert!(stopped < resumed, "{resume}: {out}");
        assert!(out.contains("after=5"), "{resume}: {out}");
    }
}
