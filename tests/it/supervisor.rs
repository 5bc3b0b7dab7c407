//! `--init` and `--watch`: the resident parent against moto (rotation is PutSecretValue) and the
//! fault proxy. COMMAND is a shell that writes "<value> <pid>" to a state file once it runs;
//! tests wait for that file (readiness), never for a fixed time.

use crate::faultsrv::{FaultServer, Reply};
use crate::scan;
use crate::support::{HANG, TempDir, moto, se, seed, unique};
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// COMMAND: report "$PASSWORD $$" atomically, then idle; SIGTERM ends it with 42.
/// The trap is set before the report, so a reported COMMAND always answers SIGTERM with 42.
const REPORTER: &str = r#"trap 'exit 42' TERM; printf '%s %s\n' "$PASSWORD" "$$" > "$STATE_DIR/state.tmp" && mv "$STATE_DIR/state.tmp" "$STATE_DIR/state"; while :; do sleep 0.05; done"#;

struct Resident {
    child: Child,
    dir: TempDir,
}

impl Resident {
    /// Starts secret-exec with `args` (up to and including `--`) and `sh -c script`.
    fn start(run: crate::support::Run, args: &[&str], script: &str) -> Resident {
        let dir = TempDir::new("sup");
        let out = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let mut run = run
            .args(args)
            .args(["sh", "-c", script])
            .env("STATE_DIR", dir.path());
        let child = run
            .cmd
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("spawn secret-exec");
        Resident { child, dir }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn state_path(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Waits until COMMAND reported `value`; returns its pid.
    fn wait_value(&mut self, value: &str) -> i32 {
        let start = Instant::now();
        loop {
            if let Ok(s) = std::fs::read_to_string(self.state_path())
                && let Some((v, pid)) = s.trim().split_once(' ')
                && v == value
            {
                return pid.parse().unwrap();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "secret-exec ended ({status}) before COMMAND saw its value; stderr: {}",
                    self.stderr()
                );
            }
            assert!(
                start.elapsed() < HANG,
                "COMMAND never reported its value; stderr: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until stderr holds `text`.
    fn wait_stderr(&mut self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let e = self.stderr();
            if e.contains(text) {
                return e;
            }
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "secret-exec ended; stderr: {e}"
            );
            assert!(start.elapsed() < HANG, "no '{text}' on stderr: {e}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child.
        assert_eq!(unsafe { nix::libc::kill(self.pid(), sig) }, 0);
    }

    /// Rotates `name` to `new` and waits for a COMMAND other than `first` to report it;
    /// returns that COMMAND's pid.
    fn rotate(&mut self, name: &str, first: i32, new: &str) -> i32 {
        moto().put(name, &json(new));
        let second = self.wait_value(new);
        assert_ne!(first, second, "COMMAND was not started again");
        second
    }

    /// Stops the run with SIGTERM, which REPORTER (and FILE_REPORTER) answer with 42;
    /// returns stderr.
    fn terminate(self) -> String {
        self.signal(nix::libc::SIGTERM);
        let (status, stderr) = self.wait();
        assert_eq!(status.code(), Some(42), "{stderr}");
        stderr
    }

    fn wait(mut self) -> (ExitStatus, String) {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return (s, self.stderr());
            }
            if start.elapsed() > HANG {
                let _ = self.child.kill();
                panic!("secret-exec did not end; stderr: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Resident {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { nix::libc::kill(pid, 0) == 0 }
}

fn json(password: &str) -> String {
    serde_json::json!({ "password": password }).to_string()
}

#[test]
fn rotation_restarts_command_with_the_new_value() {
    let name = seed("sup-rotate", &json("old-value"));
    let mut r = Resident::start(
        se(),
        &["-s", &name, "--watch=1s", "--stop-timeout", "5s", "--"],
        REPORTER,
    );
    let first = r.wait_value("old-value");
    let second = r.rotate(&name, first, "new-value");
    assert!(
        !alive(first) || first == second,
        "the old COMMAND is still running"
    );
    let stderr = r.terminate();
    assert!(!stderr.contains("old-value") && !stderr.contains("new-value"));
}

#[test]
fn invalid_rotation_keeps_command_then_recovers() {
    let name = seed("sup-invalid", &json("good-one"));
    let mut r = Resident::start(se(), &["-s", &name, "--watch=1s", "--"], REPORTER);
    let pid = r.wait_value("good-one");
    // A name from content that could take over COMMAND: a normal start refuses it with 65.
    moto().put(
        &name,
        &serde_json::json!({"password": "broken-value", "LD_PRELOAD": "/tmp/x.so"}).to_string(),
    );
    let stderr = r.wait_stderr("keeps running with the old one");
    assert!(
        alive(pid),
        "COMMAND was stopped for a set that cannot be used"
    );
    for line in stderr.lines() {
        assert!(
            line.starts_with("secret-exec: "),
            "not one line per error: {line}"
        );
        assert!(
            !line.contains("broken-value") && !line.contains("good-one"),
            "{line}"
        );
    }
    moto().put(&name, &json("fixed-value"));
    let new = r.wait_value("fixed-value");
    assert_ne!(new, pid);
}

#[test]
fn on_change_exit_ends_with_75() {
    let name = seed("sup-exit", &json("before"));
    let mut r = Resident::start(
        se(),
        &["-s", &name, "--watch=1s", "--on-change=exit", "--"],
        REPORTER,
    );
    let pid = r.wait_value("before");
    moto().put(&name, &json("after"));
    let (status, stderr) = r.wait();
    assert_eq!(status.code(), Some(75), "{stderr}");
    assert!(!alive(pid), "COMMAND outlived secret-exec");
}

#[test]
fn exit_status_and_death_by_signal_pass_through() {
    let name = seed("sup-status", &json("x"));
    let rows: &[(&str, &str, i32)] = &[
        ("--init", "exit 7", 7),
        ("--init", "exit 0", 0),
        ("--init", "kill -KILL $$", 137),
        ("--init", "kill -USR1 $$", 128 + 10),
        ("--watch=1h", "exit 3", 3),
        ("--watch=1h", "kill -TERM $$", 143),
    ];
    for (mode, script, want) in rows {
        let out = se()
            .args(["-s", &name, mode, "--", "sh", "-c", script])
            .run();
        assert_eq!(out.code(), Some(*want), "{mode} {script}: {}", out.stderr);
    }
    let out = se()
        .args(["-s", &name, "--init", "--", "/nonexistent/cmd"])
        .run();
    out.assert_code(127);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn sigterm_and_sigint_reach_command() {
    let name = seed("sup-term", &json("v"));
    for (mode, sig, want) in [
        ("--init", nix::libc::SIGTERM, 42),
        ("--watch=1h", nix::libc::SIGTERM, 42),
        ("--init", nix::libc::SIGINT, 130),
    ] {
        let mut r = Resident::start(se(), &["-s", &name, mode, "--"], REPORTER);
        r.wait_value("v");
        r.signal(sig);
        let (status, stderr) = r.wait();
        assert_eq!(status.code(), Some(want), "{mode} {sig}: {stderr}");
    }
}

#[test]
fn child_gets_a_clean_slate() {
    let name = seed("sup-slate", &json("v"));
    // The resident parent blocks every signal it forwards; COMMAND must start with none blocked
    // or ignored. (Read by COMMAND itself: a shell blocks signals while it waits for a child.)
    let out = se()
        .args(["-s", &name, "--init", "--", "sh", "-c"])
        .args(["exec grep -E '^(SigBlk|SigIgn)' /proc/self/status"])
        .run();
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
    );
    let out = se()
        .args(["-s", &name, "--init", "--", "sh", "-c"])
        .args(["ls /proc/$$/fd; ps -o pgid= -p $$; echo $$"])
        .run();
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    let n = lines.len();
    assert_eq!(&lines[..n - 2], ["0", "1", "2"], "extra descriptors");
    assert_eq!(
        lines[n - 2],
        lines[n - 1],
        "COMMAND does not lead its own process group"
    );
}

#[test]
fn zombies_are_reaped_as_pid_1() {
    let name = seed("sup-pid1", &json("v"));
    let base = se();
    let mut cmd = std::process::Command::new("unshare");
    cmd.env_clear().envs(base.envs()).stdin(Stdio::null());
    // Orphans: each inner shell starts a short-lived child and exits at once, so the child is
    // re-parented to PID 1 — secret-exec — and only its reaping keeps it from staying a zombie.
    let script = r#"
        [ "$PPID" = 1 ] || { echo "parent is $PPID, not 1"; exit 90; }
        for i in 1 2 3 4 5; do sh -c 'sh -c "exit 0" & exit 0'; done
        n=0
        while :; do
            z=$(cat /proc/[0-9]*/stat 2>/dev/null | awk '$3 == "Z"' | wc -l)
            [ "$z" = 0 ] && break
            n=$((n+1)); [ $n -gt 1000 ] && { echo "zombies left: $z"; exit 91; }
            sleep 0.01
        done
        echo reaped"#;
    cmd.args([
        "--pid",
        "--fork",
        "--mount-proc",
        crate::support::BIN,
        "-s",
        &name,
        "--init",
        "--",
        "sh",
        "-c",
        script,
    ]);
    let out = cmd.output().expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "reaped");
}

/// SIGTTIN and SIGTTOU, which would stop a background process, are ignored by the resident
/// parent: afterwards it still forwards SIGTERM and reaps COMMAND. Own process group, so the
/// kernel cannot discard the stop as it does in an orphaned group.
#[test]
fn terminal_stop_signals_do_not_stop_the_resident_parent() {
    let name = seed("sup-ttin", &json("v"));
    for sig in [nix::libc::SIGTTIN, nix::libc::SIGTTOU] {
        let mut run = se();
        std::os::unix::process::CommandExt::process_group(&mut run.cmd, 0);
        let mut r = Resident::start(run, &["-s", &name, "--init", "--"], REPORTER);
        let pid = r.wait_value("v");
        r.signal(sig);
        r.signal(sig);
        let stderr = r.terminate();
        assert!(!alive(pid), "signal {sig}: COMMAND not reaped; {stderr}");
    }
}

/// DescribeSecret says AWSCURRENT moved, but GetSecretValue returns the version COMMAND already
/// runs with: nothing is restarted, the first such check says so without -v, and a real
/// rotation still restarts COMMAND.
#[test]
fn disagreeing_apis_restart_nothing() {
    let name = seed("sup-disagree", &json("steady"));
    let proxy = FaultServer::start(|action, _| {
        if action == "DescribeSecret" {
            Reply::StaleCurrent
        } else {
            Reply::Forward
        }
    });
    let mut r = Resident::start(proxy.se(), &["-s", &name, "--watch=1s", "--"], REPORTER);
    let pid = r.wait_value("steady");
    // The first fetch, then one re-fetch after each of three checks.
    assert!(
        proxy.wait_for("GetSecretValue", 4, HANG),
        "no re-fetch; stderr: {}",
        r.stderr()
    );
    let stderr = r.wait_stderr("returns the versions COMMAND already runs with");
    assert_eq!(
        r.wait_value("steady"),
        pid,
        "COMMAND was restarted: {stderr}"
    );
    assert!(alive(pid), "{stderr}");
    assert_eq!(
        stderr.matches("DescribeSecret reports").count(),
        1,
        "only the first check of a run says it without -v: {stderr}"
    );
    r.rotate(&name, pid, "rotated");
    r.terminate();
}

#[test]
fn throttled_polling_keeps_command() {
    let name = seed("sup-throttle", &json("steady"));
    let proxy = FaultServer::failing("DescribeSecret", 2, Reply::Throttle);
    let run = proxy.se();
    let mut r = Resident::start(
        run,
        &["-s", &name, "--watch=1s", "--max-attempts", "1", "-v", "--"],
        REPORTER,
    );
    let pid = r.wait_value("steady");
    assert!(
        proxy.wait_for("DescribeSecret", 3, HANG),
        "polling stopped after throttling"
    );
    assert!(
        alive(pid),
        "COMMAND was stopped because polling was throttled"
    );
    assert!(
        r.child.try_wait().unwrap().is_none(),
        "secret-exec exited: {}",
        r.stderr()
    );
    moto().put(&name, &json("rotated"));
    r.wait_value("rotated");
    let stderr = r.stderr();
    assert!(
        stderr.contains("ThrottlingException"),
        "-v does not say what happened: {stderr}"
    );
}

#[test]
fn pinned_versions_are_not_polled() {
    let pinned = unique("sup-pinned");
    let watched = unique("sup-watched");
    moto().create(&pinned, "pinned-value");
    let v = moto().put(&pinned, "pinned-value-2");
    moto().create(&watched, &json("w"));
    let proxy = FaultServer::start(|_, _| Reply::Forward);
    let run = proxy.se();
    let spec = format!("PINNED={pinned}:::{v}");
    let mut r = Resident::start(
        run,
        &["-s", &spec, "-s", &watched, "--watch=1s", "--"],
        REPORTER,
    );
    r.wait_value("w");
    assert!(
        proxy.wait_for(&format!("DescribeSecret {watched}"), 3, HANG),
        "the unpinned secret is not polled"
    );
    assert_eq!(
        proxy.count(&format!("DescribeSecret {pinned}")),
        0,
        "a version-pinned secret was polled"
    );
}

#[test]
fn resident_parent_holds_no_secret_value() {
    let name = unique("sup-memory");
    let first = format!("canary-first-{}", unique("c"));
    let second = format!("canary-second-{}", unique("c"));
    moto().create(&name, &json(&first));
    let mut r = Resident::start(se(), &["-s", &name, "--watch=1s", "--"], REPORTER);
    let child = r.wait_value(&first);
    let needles: [&[u8]; 2] = [first.as_bytes(), second.as_bytes()];
    // The scanner finds the value where it must be: in COMMAND's environment.
    let in_child = scan::attach_scan(child, &needles);
    assert!(
        !in_child.hits[0].is_empty(),
        "the scanner cannot see the value in COMMAND"
    );
    let parent = scan::attach_scan(r.pid(), &needles);
    assert!(parent.bytes_scanned > 0);
    assert!(
        parent.hits.iter().all(Vec::is_empty),
        "parent holds a value after start: {:?}",
        parent.hits
    );

    moto().put(&name, &json(&second));
    r.wait_value(&second);
    let parent = scan::attach_scan(r.pid(), &needles);
    assert!(
        parent.hits.iter().all(Vec::is_empty),
        "parent holds a value after a restart: {:?}",
        parent.hits
    );
}

#[test]
fn socket_activation_fds_are_passed_on() {
    let name = seed("sup-listen", &json("v"));
    let report = r#"echo "$LISTEN_PID $$"; ls /proc/$$/fd"#;
    for mode in ["--init", "--watch=1h", "--verbose"] {
        // fd 3 is the passed range (LISTEN_FDS=1, LISTEN_PID this very process); fd 4 is not.
        let outer = format!(
            "exec 3</dev/null 4</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 exec {} -s {name} {mode} -- sh -c '{}'",
            crate::support::BIN,
            report.replace('\'', "'\\''"),
        );
        let out = se().args(["-s", &name, "--", "sh", "-c", &outer]).run();
        // The outer secret-exec only supplies a hermetic start; the inner one is under test.
        assert_eq!(out.code(), Some(0), "{mode}: {}", out.stderr);
        let lines: Vec<&str> = out.stdout.lines().collect();
        let (listen_pid, pid) = lines[0].split_once(' ').unwrap();
        assert_eq!(listen_pid, pid, "{mode}: LISTEN_PID does not name COMMAND");
        assert_eq!(&lines[1..], ["0", "1", "2", "3"], "{mode}");
    }
}

#[test]
fn usage_errors() {
    let rows: &[(&[&str], &str)] = &[
        (&["--watch=0s"], "--watch"),
        (&["--watch=500ms"], "--watch"),
        (&["--watch=abc"], "--watch"),
        (&["--watch=25h"], "--watch"),
        (&["--watch", "--stop-timeout", "soon"], "--stop-timeout"),
        (&["--watch", "--stop-signal", "FOO"], "--stop-signal"),
        (&["--watch", "--on-change=x"], "--on-change"),
        (&["--on-change=exit"], "needs --watch"),
        (&["--init", "--stop-signal", "TERM"], "needs --watch"),
    ];
    for (args, want) in rows {
        let out = se()
            .args(["-s", "any"])
            .args(*args)
            .args(["--", "true"])
            .run();
        assert_eq!(out.code(), Some(64), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn iam_policy_with_watch_adds_describe_secret() {
    let out = se()
        .args(["-s", "prod/db", "--watch", "--print-iam-policy"])
        .run();
    out.assert_code(0);
    out.assert_stdout_has("secretsmanager:DescribeSecret");
    let out = se().args(["-s", "prod/db", "--print-iam-policy"]).run();
    assert!(!out.stdout.contains("DescribeSecret"), "{}", out.stdout);
}

/// COMMAND for `--file PWFILE=…`: report "<content of $PWFILE> $$", as REPORTER does for
/// $PASSWORD, after checking it got the file on the first descriptor after stdio.
const FILE_REPORTER: &str = r#"trap 'exit 42' TERM; [ "$PWFILE" = /dev/fd/3 ] || exit 3; printf '%s %s\n' "$(cat "$PWFILE")" "$$" > "$STATE_DIR/state.tmp" && mv "$STATE_DIR/state.tmp" "$STATE_DIR/state"; while :; do sleep 0.05; done"#;

/// The `--file` memfds the resident parent still holds (their /proc fd links name them).
fn memfds_of(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .map(|l| l.display().to_string())
                .filter(|l| l.contains("memfd:secret-exec:"))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until the parent has closed every memfd (it does right after the child is started).
fn wait_no_memfds(r: &mut Resident) {
    let start = Instant::now();
    while !memfds_of(r.pid()).is_empty() {
        assert!(
            r.child.try_wait().unwrap().is_none(),
            "secret-exec ended: {}",
            r.stderr()
        );
        assert!(
            start.elapsed() < HANG,
            "the resident parent keeps {:?}",
            memfds_of(r.pid())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn files_under_init_and_watch_are_new_memfds_on_each_start() {
    let name = seed("sup-file", &json("file-old"));
    let spec = format!("PWFILE={name}:password");
    let mut r = Resident::start(se(), &["--file", &spec, "--init", "--"], FILE_REPORTER);
    r.wait_value("file-old");
    wait_no_memfds(&mut r);
    r.terminate();

    let mut r = Resident::start(
        se(),
        &["--file", &spec, "--watch=1s", "--stop-timeout", "5s", "--"],
        FILE_REPORTER,
    );
    let first = r.wait_value("file-old");
    wait_no_memfds(&mut r);
    r.rotate(&name, first, "file-new");
    wait_no_memfds(&mut r);
    let stderr = r.terminate();
    assert!(!stderr.contains("file-old") && !stderr.contains("file-new"));
}

#[test]
fn from_env_references_are_resolved_again_on_rotation() {
    let name = seed("sup-from-env", &json("ref-old"));
    let run = se().env("PASSWORD", format!("secretsmanager:{name}:password"));
    let mut r = Resident::start(
        run,
        &["--from-env", "--watch=1s", "--stop-timeout", "5s", "--"],
        REPORTER,
    );
    let first = r.wait_value("ref-old");
    r.rotate(&name, first, "ref-new");
    r.terminate();
}

/// `--watch` with `--db-url`: a rotated password rebuilds the URL, and COMMAND restarts with it.
#[test]
fn rotation_rebuilds_a_db_url() {
    let rds = |pw: &str| {
        serde_json::json!({"engine": "mysql", "host": "127.0.0.1", "port": 3306,
            "username": "app", "password": pw, "dbname": "app"})
        .to_string()
    };
    let name = seed("sup-dburl", &rds("old/pw@1"));
    let mut r = Resident::start(
        se(),
        &["--db-url", &format!("PASSWORD={name}"), "--watch=1s", "--"],
        REPORTER,
    );
    let first = r.wait_value("mysql://app:old%2Fpw%401@127.0.0.1:3306/app");
    moto().put(&name, &rds("new:pw#2"));
    let second = r.wait_value("mysql://app:new%3Apw%232@127.0.0.1:3306/app");
    assert_ne!(first, second, "COMMAND was not started again");
    let stderr = r.terminate();
    assert!(
        !stderr.contains("pw@1") && !stderr.contains("pw#2"),
        "{stderr}"
    );
}
