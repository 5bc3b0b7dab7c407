//! Hostile inputs that must neither hang, panic nor start COMMAND after a signal: files that never
//! end or never open, signals at any moment of a launch (and while stdout is stuck), closed and
//! full outputs, unusable settings, malformed and deeply nested secrets, odd `-u` names, `#!`
//! chains that push an exec past the kernel's limit.

use crate::faultsrv::{FaultServer, Reply};
use crate::support::{HANG, Out, Run, TempDir, se, seed, unique, wait_exit, wait_stderr_out};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::Signal;
use secret_exec::deliver::environ::{HEADROOM, Limits, exec_bytes};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const GET: &str = "GetSecretValue";

fn seeded(value: &str) -> String {
    seed("robust/s", value)
}

fn assert_one_line(out: &Out) {
    out.assert_one_clean_line();
}

/// A FIFO (a stand-in for a stalled network mount), a device that never ends, a file over the
/// cap and a directory, named by each file setting: 78 at once, naming the setting and the path.
#[test]
fn aws_files_that_cannot_be_read_are_78() {
    let name = seeded(r#"{"k":"v"}"#);
    let dir = TempDir::new("files");
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let big = dir.path().join("big");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(2 << 20)
        .unwrap();
    let kinds = [
        (fifo.clone(), "FIFO"),
        ("/dev/zero".into(), "character device"),
        (big, "larger than"),
        (dir.path().to_path_buf(), "directory"),
    ];
    for var in [
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    ] {
        for (path, why) in &kinds {
            let out = se().env(var, path).fetch_only(&name).run();
            assert_eq!(
                out.code(),
                Some(78),
                "{var}={}: {}",
                path.display(),
                out.stderr
            );
            assert_one_line(&out);
            let line = &out.stderr;
            assert!(line.contains(var), "{line}");
            assert!(line.contains(&path.display().to_string()), "{line}");
            assert!(line.contains(why), "{line}");
        }
    }

    // The default location under HOME is read the same way.
    let home = TempDir::new("home");
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    nix::unistd::mkfifo(
        &home.path().join(".aws/config"),
        nix::sys::stat::Mode::S_IRWXU,
    )
    .unwrap();
    let out = se()
        .env("HOME", home.path())
        .env_remove("AWS_CONFIG_FILE")
        .fetch_only(&name)
        .run();
    out.assert_code(78);
    out.assert_stderr_has("~/.aws/config");
}

/// The files read later in a run — AWS_CA_BUNDLE and the profile's `ca_bundle` when the first
/// HTTPS connection is made, AWS_TOKEN=file:// when the agent is asked — are opened the same
/// bounded way: a FIFO is a 78 naming the setting within the 2 s deadline (each was a run that
/// blocked its runtime thread, so `--timeout` could not fire). Each run is held to 15 s.
#[test]
fn fifos_named_by_later_settings_are_78_within_the_deadline() {
    let dir = TempDir::new("late-fifo");
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!("[default]\nca_bundle = {}\n", fifo.display()),
    )
    .unwrap();
    // Nothing listens there: the roots are read before any connection is tried.
    let https = format!("https://127.0.0.1:{}", crate::support::free_port());
    let fetch = [
        "--timeout",
        "2s",
        "--secret",
        "robust/none",
        "--",
        "/bin/true",
    ];
    let runs = [
        (
            "AWS_CA_BUNDLE",
            se().env("AWS_ENDPOINT_URL", &https)
                .env("AWS_CA_BUNDLE", &fifo)
                .args(fetch),
        ),
        (
            "the profile's ca_bundle",
            se().env("AWS_ENDPOINT_URL", &https)
                .env("AWS_CONFIG_FILE", &config)
                .args(fetch),
        ),
        (
            "AWS_TOKEN",
            se().env("AWS_TOKEN", format!("file://{}", fifo.display()))
                .args(["--agent"])
                .args(fetch),
        ),
    ];
    for (setting, run) in runs {
        let bound = Duration::from_secs(15);
        let (out, ()) = run.run_waiting(|child| {
            let hung = || format!("{setting} naming a FIFO: still running after {bound:?}");
            (wait_exit(child, bound, hung), ())
        });
        assert_eq!(out.code(), Some(78), "{setting}: {}", out.stderr);
        assert_one_line(&out);
        out.assert_stderr_has(setting);
        out.assert_stderr_has(&fifo.display().to_string());
        out.assert_stderr_has("FIFO");
    }
}

/// What secret-exec reads from the config file reaches the SDK: the region comes only from it.
#[test]
fn the_config_file_read_here_is_the_one_the_sdk_uses() {
    let name = seeded(r#"{"k":"from-config"}"#);
    let dir = TempDir::new("cfg");
    let cfg = dir.path().join("config");
    std::fs::write(&cfg, "[default]\nregion = us-east-1\n").unwrap();
    let out = se()
        .env_remove("AWS_REGION")
        .env("AWS_CONFIG_FILE", &cfg)
        .run_env0(&name);
    out.assert_ok_vars(&[("K", "from-config")]);
}

/// `/dev/null` is how users (and the demo) say "no config file": it reads as empty, while
/// every other device stays refused.
#[test]
fn dev_null_config_files_read_as_empty() {
    let name = seeded(r#"{"k":"with-dev-null"}"#);
    let out = se()
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .run_env0(&name);
    out.assert_ok_vars(&[("K", "with-dev-null")]);
}

/// A PATH set by a secret is a secret value: a failed search must not print it (the dry-run
/// prediction already left it out; the real exec did not).
#[test]
fn a_path_from_a_secret_stays_out_of_command_not_found() {
    let name = seeded("/secret-exec-canary-dir");
    let out = se()
        .args([
            "--secret",
            &format!("PATH={name}"),
            "--",
            "no-such-command-x",
        ])
        .run();
    out.assert_code(127);
    out.assert_stderr_has("no-such-command-x");
    assert!(!out.stderr.contains("canary"), "{}", out.stderr);
}

/// The same for a command found on that PATH but not runnable (126): the message names the
/// command, not the secret directory it was found in.
#[test]
fn a_path_from_a_secret_stays_out_of_not_executable() {
    let dir = TempDir::new("canary-dir");
    std::fs::write(dir.path().join("not-runnable"), "#!/bin/sh\n").unwrap();
    let name = seeded(dir.path().to_str().unwrap());
    let out = se()
        .args(["--secret", &format!("PATH={name}"), "--", "not-runnable"])
        .run();
    assert_eq!(out.code(), Some(126), "{}", out.stderr);
    assert_one_line(&out);
    out.assert_stderr_has("'not-runnable'");
    assert!(!out.stderr.contains("canary"), "{}", out.stderr);
}

/// A gate a fault-server rule waits on, opened by the test.
#[derive(Default)]
struct Gate(Mutex<bool>, Condvar);

impl Gate {
    fn wait(&self) {
        let mut open = self.0.lock().unwrap();
        let deadline = Instant::now() + HANG;
        while !*open && Instant::now() < deadline {
            open = self.1.wait_timeout(open, HANG).unwrap().0;
        }
    }
    fn open(&self) {
        *self.0.lock().unwrap() = true;
        self.1.notify_all();
    }
}

/// Runs a launch whose GetSecretValue is held until `sig` has been sent, then let through.
fn signal_during_fetch(sig: Signal) -> (Out, bool) {
    let name = seeded(r#"{"k":"v"}"#);
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let srv = FaultServer::start(move |action, _| {
        if action == GET {
            g.wait();
        }
        Reply::Forward
    });
    // Let the held request through: a run the signal did not end completes now.
    srv.signal_while_fetching(&name, sig, || gate.open(), HANG)
}

/// SIGQUIT, SIGUSR1 and SIGALRM (and SIGHUP) before exec: one line naming the signal, 128+n,
/// COMMAND never started.
#[test]
fn other_signals_before_exec_are_128_plus_n() {
    for sig in [
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGALRM,
        Signal::SIGHUP,
    ] {
        let (out, ran) = signal_during_fetch(sig);
        assert_eq!(out.code(), Some(128 + sig as i32), "{sig}: {}", out.stderr);
        assert!(!ran, "{sig}: COMMAND started");
        assert_one_line(&out);
        out.assert_stderr_has(sig.as_str());
    }
}

/// SIGPIPE during the fetch changes nothing: the run completes and COMMAND starts.
#[test]
fn sigpipe_during_the_fetch_does_not_stall() {
    let (out, ran) = signal_during_fetch(Signal::SIGPIPE);
    out.assert_code(0);
    assert!(ran);
}

/// No signal is lost: SIGTERM sent at spread moments of a launch (8 secrets of 400 keys, so
/// mapping and building the environment take a while) either stops it (143, COMMAND never
/// started) or reaches COMMAND, whose trap then exits 99 (or which dies of it before the trap
/// is set). A lost signal leaves COMMAND looping until the harness calls it a hang.
#[test]
fn sigterm_at_any_moment_stops_the_launch_or_reaches_command() {
    let obj: serde_json::Map<String, serde_json::Value> = (0..400)
        .map(|i| {
            (
                format!("k{i}"),
                serde_json::Value::from(format!("value-{i}")),
            )
        })
        .collect();
    let text = serde_json::Value::Object(obj).to_string();
    let specs: Vec<String> = (0..8)
        .map(|p| format!("P{p}_*={}", seeded(&text)))
        .collect();
    let launch = |script: &str| {
        se().secrets(&specs)
            .args(["--", "/bin/sh", "-c", script])
            .cmd
    };
    let start = Instant::now();
    let out = launch("exit 0").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let whole = start.elapsed();

    const LAUNCHES: u32 = 24;
    let mut tally = [0u32; 3];
    for i in 0..LAUNCHES {
        let mut child = launch("trap 'exit 99' TERM; while :; do sleep 0.01; done")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Spread over the launch; any moment must do, so this is not a readiness wait.
        std::thread::sleep(whole * i / LAUNCHES);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            Signal::SIGTERM,
        )
        .unwrap();
        let status = wait_exit(&mut child, HANG, || {
            format!("launch {i}: SIGTERM was lost; COMMAND kept running")
        });
        match (status.code(), status.signal()) {
            (Some(143), _) => tally[0] += 1,
            (Some(99), _) => tally[1] += 1,
            (None, Some(15)) => tally[2] += 1,
            other => panic!("launch {i}: unexpected end {other:?}"),
        }
    }
    eprintln!(
        "stopped before exec: {}, trapped by COMMAND: {}, killed by SIGTERM: {}",
        tally[0], tally[1], tally[2]
    );
}

fn dev_full() -> Stdio {
    Stdio::from(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap(),
    )
}

fn closed_pipe() -> Stdio {
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r);
    Stdio::from(w)
}

/// Every output path: a full device is one line and 74, a closed pipe is silent and 141; an
/// error line that cannot be written leaves the exit status alone. Never 70.
#[test]
fn closed_and_full_outputs() {
    let name = seeded(r#"{"k":"v"}"#);
    let modes: &[&[&str]] = &[
        &["--print-iam-policy", "--secret", &name],
        &["--dry-run", "--secret", &name],
        &["--help"],
        &["--version"],
    ];
    for args in modes {
        let out = se().args(*args).cmd.stdout(dev_full()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(74), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("secret-exec: cannot write to stdout"),
            "{err}"
        );

        let out = se().args(*args).cmd.stdout(closed_pipe()).output().unwrap();
        assert_eq!(out.status.code(), Some(141), "{args:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {:?}", out.stderr);
    }
    // The error line itself into a full or closed stderr: the exit status is the error's.
    for stderr in [dev_full(), closed_pipe()] {
        let status = se()
            .fetch_only(&unique("robust/missing"))
            .cmd
            .stderr(stderr)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(66));
    }
    // -v lines into a closed stderr do not stop a good run.
    let status = se()
        .args(["-vv"])
        .fetch_only(&name)
        .cmd
        .stderr(closed_pipe())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// A setting that is present but unusable is 78, never ignored (a request meant for an emulator
/// must not go to AWS), never a panic.
#[test]
fn unusable_settings_are_78() {
    let name = seeded(r#"{"k":"v"}"#);
    let not_utf8 = OsStr::from_bytes(b"http://127.0.0.1:1\xff");
    for var in [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "AWS_MAX_ATTEMPTS",
        "AWS_RETRY_MODE",
        "AWS_REGION",
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "HTTPS_PROXY",
        "HTTP_PROXY",
    ] {
        let out = se().env(var, not_utf8).fetch_only(&name).run();
        assert_eq!(out.code(), Some(78), "{var}: {}", out.stderr);
        assert_one_line(&out);
        out.assert_stderr_has(var);
    }
    for (var, value) in [
        ("AWS_ENDPOINT_URL", ""),
        ("AWS_ENDPOINT_URL", "http://"),
        ("AWS_ENDPOINT_URL", "https:///path"),
        ("AWS_ENDPOINT_URL", "http://:4566"),
        ("AWS_ENDPOINT_URL", "http://host:port"),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", ""),
        // A proxy that cannot be used must not become a direct connection.
        ("HTTPS_PROXY", "http://"),
        ("HTTP_PROXY", "::not a url"),
        ("https_proxy", "ftp://proxy:21"),
    ] {
        let out = se().env(var, value).fetch_only(&name).run();
        assert_eq!(out.code(), Some(78), "{var}={value}: {}", out.stderr);
        assert_one_line(&out);
        assert!(!out.stderr.contains("{ "), "a Debug dump: {}", out.stderr);
    }
}

/// A console edit that leaves a trailing comma: 65 with the position, never the text as one
/// variable; VAR= takes the whole text on purpose; a BOM is skipped; a repeated key inside an
/// explicitly selected object is refused.
#[test]
fn malformed_json_fails_closed() {
    let bad = seeded("{\"password\":\"hunter2-canary\",}");
    let out = se().run_env0(&bad);
    out.assert_code(65);
    assert_one_line(&out);
    out.assert_stderr_has("line 1, column");
    out.assert_no_leak(&["hunter2-canary"]);

    let out = se().run_env0(&format!("RAW={bad}"));
    out.assert_ok_vars(&[("RAW", "{\"password\":\"hunter2-canary\",}")]);

    let bom = seeded("\u{feff}{\"user\":\"u1\"}");
    let out = se().run_env0(&bom);
    out.assert_ok_vars(&[("USER", "u1")]);

    let dup = seeded(r#"{"o":{"pw":"A-canary","pw":"B-canary"}}"#);
    let out = se().fetch_only(&format!("R={dup}:o")).run();
    out.assert_code(65);
    out.assert_stderr_has("'/o/pw' appears more than once");
    out.assert_no_leak(&["A-canary", "B-canary"]);
}

fn nested(levels: usize) -> String {
    format!(
        "{}\"deep-canary\"{}",
        "{\"k\":".repeat(levels),
        "}".repeat(levels)
    )
}

/// 200 levels map; a legal-size secret nested 11,000 levels deep is 65 naming the secret.
#[test]
fn deep_secrets_map_up_to_the_bound_and_are_refused_past_it() {
    let ok = seeded(&nested(200));
    let out = se().run_env0(&ok);
    out.assert_code(0);
    let name = vec!["K"; 200].join("_");
    out.assert_vars(&[(name.as_str(), "deep-canary")]);

    let deep = seeded(&nested(11_000));
    let out = se().fetch_only(&deep).run();
    out.assert_code(65);
    assert_one_line(&out);
    out.assert_stderr_has(&format!("'{deep}'"));
    out.assert_stderr_has("deeper than 256 levels");
    out.assert_no_leak(&["deep-canary"]);
}

/// `-u` takes what `env -u` takes: a dotted name, a name that is not UTF-8.
#[test]
fn unset_takes_any_name_env_takes() {
    let name = seeded(r#"{"k":"v"}"#);
    let odd = OsStr::from_bytes(b"odd\xffname");
    let mut cmd = se().cmd;
    cmd.env("my.var", "1")
        .env(odd, "x")
        .args(["-u", "my.var", "-u"])
        .arg(odd)
        .args(["--secret", &name, "--", "/usr/bin/env", "-0"]);
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let entries: Vec<&[u8]> = out.stdout.split(|b| *b == 0).collect();
    assert!(entries.contains(&&b"K=v"[..]), "{err}");
    assert!(!entries.iter().any(|e| e.starts_with(b"my.var=")));
    assert!(!entries.iter().any(|e| e.starts_with(odd.as_bytes())));
}

/// A server whose every reply is a 200 with a body that does not stop: chunked without end, or
/// a Content-Length of 200 MB. Returns its endpoint.
fn flooding_server(chunked: bool) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let _ = conn.read(&mut buf);
                let head = if chunked {
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n\
                     Transfer-Encoding: chunked\r\n\r\n"
                        .to_string()
                } else {
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n\
                     Content-Length: 200000000\r\n\r\n"
                        .to_string()
                };
                if conn.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let data = vec![b'a'; 64 << 10];
                let mut first = true;
                loop {
                    let mut piece = Vec::new();
                    let payload: &[u8] = if first {
                        b"{\"SecretString\":\""
                    } else {
                        &data
                    };
                    first = false;
                    if chunked {
                        piece.extend_from_slice(format!("{:x}\r\n", payload.len()).as_bytes());
                        piece.extend_from_slice(payload);
                        piece.extend_from_slice(b"\r\n");
                    } else {
                        piece.extend_from_slice(payload);
                    }
                    // Ends when the client closes the connection.
                    if conn.write_all(&piece).is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// An endless or huge body fails at the cap with 69 naming the endpoint, long before the
/// deadline (which would say "timed out").
#[test]
fn endless_and_huge_bodies_are_69_at_the_cap() {
    for chunked in [true, false] {
        let endpoint = flooding_server(chunked);
        let out = se()
            .env("AWS_ENDPOINT_URL", &endpoint)
            .args(["--timeout", "50s", "--max-attempts", "1"])
            .fetch_only("robust/flood")
            .run();
        assert_eq!(out.code(), Some(69), "chunked={chunked}: {}", out.stderr);
        assert_one_line(&out);
        out.assert_stderr_has(&endpoint);
        out.assert_stderr_has("larger than 8388608 bytes");
    }
}

/// Whether `pid` is still a live process (not gone, not a zombie).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

/// A `credential_process` helper that hangs (and a process it started) is killed at the
/// deadline, not left running after secret-exec exits; one that fails never has its stderr
/// quoted.
#[test]
fn credential_process_helpers_end_with_the_run() {
    let dir = TempDir::new("cp");
    let pids = dir.path().join("pids");
    let cfg = dir.path().join("config");
    std::fs::write(
        &cfg,
        format!(
            "[default]\ncredential_process = /bin/sh -c 'sleep 1000 & echo $$ $! > {}; wait'\n",
            pids.display()
        ),
    )
    .unwrap();
    let out = se()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", &cfg)
        .args(["--timeout", "2s"])
        .fetch_only("robust/cp")
        .run();
    out.assert_code(69);
    let text = std::fs::read_to_string(&pids).expect("the helper ran");
    let pids: Vec<i32> = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{text}");
    let start = Instant::now();
    while pids.iter().any(|p| alive(*p)) {
        assert!(
            start.elapsed() < HANG,
            "helper processes {pids:?} outlived secret-exec"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    std::fs::write(
        &cfg,
        "[default]\ncredential_process = /bin/sh -c 'echo token=stderr-canary >&2; exit 3'\n",
    )
    .unwrap();
    let out = se()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", &cfg)
        .fetch_only("robust/cp")
        .run();
    assert_ne!(out.code(), Some(0), "{}", out.stderr);
    assert_one_line(&out);
    assert!(!out.stderr.contains("stderr-canary"), "{}", out.stderr);
}

/// Whether `pid`'s main thread sleeps in write(2) on fd 1: /proc/PID/syscall shows the call and
/// its arguments only while the thread is blocked in it ("running" otherwise).
fn blocked_writing_stdout(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/syscall")).is_ok_and(|s| {
        let mut fields = s.split_whitespace();
        fields.next() == Some(nix::libc::SYS_write.to_string().as_str())
            && fields.next() == Some("0x1")
    })
}

/// The watchdog's forced exit: a signal while the main flow is stuck where nothing reaches it (a
/// `--dry-run` report into a full pipe nobody reads) still ends the run with 128+n, one line
/// naming the signal, and no value in it.
#[test]
fn a_signal_while_stdout_is_stuck_ends_the_run() {
    let obj: serde_json::Map<String, serde_json::Value> = (0..200)
        .map(|i| (format!("k{i}"), format!("stuck-canary-{i}").into()))
        .collect();
    let name = seeded(&serde_json::Value::Object(obj).to_string());
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let (unread, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        // One page of room, so the report (a row per key) cannot fit.
        nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
        let mut child = se()
            .args(["--dry-run", "--secret", &name])
            .cmd
            .stdout(Stdio::from(w))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while !blocked_writing_stdout(child.id()) {
            assert!(
                child.try_wait().unwrap().is_none(),
                "{sig}: ended before blocking on stdout"
            );
            assert!(start.elapsed() < HANG, "{sig}: never blocked on stdout");
            std::thread::sleep(Duration::from_millis(5));
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        let out = wait_stderr_out(&mut child, start, HANG, || format!("{sig}: still stuck"));
        drop(unread);
        assert_eq!(out.code(), Some(128 + sig as i32), "{sig}: {}", out.stderr);
        assert_one_line(&out);
        out.assert_stderr_has(sig.as_str());
        out.assert_no_leak(&["stuck-canary"]);
    }
}

/// The stack soft limit the E2BIG test runs under: its quarter is below ARG_MAX, so the kernel's
/// total is ARG_MAX (128 KiB) whatever this machine's own limit.
const SMALL_STACK: u64 = 512 << 10;

/// `run` with its stack soft limit set to `stack` in the child, before secret-exec starts.
fn with_stack(mut run: Run, stack: u64) -> Run {
    let (_, hard) = getrlimit(Resource::RLIMIT_STACK).unwrap();
    // SAFETY: the hook makes one setrlimit syscall, which is async-signal-safe.
    unsafe {
        run.cmd.pre_exec(move || {
            setrlimit(Resource::RLIMIT_STACK, stack, hard).map_err(std::io::Error::from)
        })
    };
    run
}

/// What execve counts against the limit (as [`exec_bytes`]) for `filename`, `argv` and `envs`
/// once binfmt_script has followed `chain`, the interpreter and argument of each `#!` line in
/// turn. Each level drops argv[0] and copies in the script path (the filename, then the previous
/// interpreter), the argument and the interpreter (load_script); the pointers were reserved for
/// the first argv and envp only (bprm_stack_limits), so the new strings add no pointer.
fn kernel_bytes(filename: &[u8], argv: &[usize], envs: &[usize], chain: &[(&str, &str)]) -> usize {
    let mut total = exec_bytes(filename.len(), argv, envs);
    let (mut script, mut arg0) = (filename.len(), argv[0]);
    for (interp, arg) in chain {
        total -= arg0 + 1;
        total += script + 1 + interp.len() + 1;
        if !arg.is_empty() {
            total += arg.len() + 1;
        }
        (script, arg0) = (interp.len(), interp.len());
    }
    total
}

/// Writes an executable script at `path`.
fn script(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The longest `#!` line the kernel reads whole: BINPRM_BUF_SIZE (256) must hold its newline.
const SHEBANG_MAX: usize = 255;

/// An argument that makes `#!interp arg` a line of SHEBANG_MAX bytes with its newline.
fn filler(interp: &str) -> String {
    "a".repeat(SHEBANG_MAX - "#! \n".len() - interp.len())
}

/// A chain of `#!` interpreters adds strings in the kernel that the limit check cannot see, so
/// an environment inside secret-exec's prediction can still get E2BIG from execve. The check
/// keeps HEADROOM (two PATH_MAX paths and one #! line) for them, so it takes a command found on
/// PATH in a directory whose script path is PATH_MAX - 1 bytes (the kernel copies it twice while
/// argv[0] stays "s0") and two nested `#!` lines of SHEBANG_MAX bytes to get past it. The environment is
/// padded so the prediction is exactly the limit: one byte more is refused by the check, the
/// chain is E2BIG and reported naming the limit and the injected variables largest first, and
/// a script with one plain `#!` line runs with the very same environment.
#[test]
fn e2big_from_a_chain_of_interpreters_names_the_limit_and_the_largest_variables() {
    let dir = TempDir::new("e2big");
    // Components of 255 bytes (NAME_MAX), then one that makes .../s0 exactly PATH_MAX - 1.
    let mut long = dir.path().as_os_str().as_bytes().to_vec();
    while long.len() + 1 + 255 + "/s0".len() < 4095 {
        long.push(b'/');
        long.extend_from_slice(&[b'd'; 255]);
    }
    let last = 4095 - long.len() - 1 - "/s0".len();
    long.push(b'/');
    long.extend_from_slice(&vec![b'd'; last]);
    let long = PathBuf::from(OsStr::from_bytes(&long));
    std::fs::create_dir_all(&long).unwrap();
    let (i1, i2) = (dir.path().join("i1"), dir.path().join("i2"));
    let (i1s, i2s) = (i1.to_str().unwrap(), i2.to_str().unwrap());
    let (a1, a2) = (filler(i1s), filler(i2s));
    // s0 runs i1, which runs i2, which runs /bin/sh; s1 runs /bin/sh at once.
    script(&i2, "#!/bin/sh\nexit 42\n");
    script(&i1, &format!("#!{i2s} {a2}\n"));
    script(&long.join("s0"), &format!("#!{i1s} {a1}\n"));
    script(&long.join("s1"), "#!/bin/sh\nexit 42\n");
    let filename = long.join("s0");
    let filename = filename.as_os_str().as_bytes();
    assert_eq!(filename.len(), 4095);

    let big_value = format!("canary-big-{}", "b".repeat(60_000));
    let small_value = format!("canary-small-{}", "s".repeat(30_000));
    let (big, small) = (seeded(&big_value), seeded(&small_value));
    let launch = |command: &str, pad: usize| {
        with_stack(se(), SMALL_STACK)
            .env("PATH", &long)
            .env("PAD", "p".repeat(pad))
            .args(["--secret", &format!("BIG={big}")])
            .args(["--secret", &format!("SMALL={small}")])
            .args(["--", command])
    };
    let envs = |pad: usize| -> Vec<usize> {
        launch("s0", pad)
            .envs()
            .map(|(k, v)| k.len() + 1 + v.len())
            .chain([
                "BIG=".len() + big_value.len(),
                "SMALL=".len() + small_value.len(),
            ])
            .collect()
    };
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .unwrap()
        .unwrap() as usize;
    let limit = Limits::for_stack(SMALL_STACK, page).max_total;
    let argv = ["s0".len()];
    // What secret-exec predicts: the strings we see, with HEADROOM for the path and a #! line.
    let predicted = |pad: usize| exec_bytes(HEADROOM - 1, &argv, &envs(pad));
    let pad = limit - predicted(0);
    assert_eq!(predicted(pad), limit);
    let chain = kernel_bytes(
        filename,
        &argv,
        &envs(pad),
        &[(i1s, &a1), (i2s, &a2), ("/bin/sh", "")],
    );
    let plain = kernel_bytes(filename, &argv, &envs(pad), &[("/bin/sh", "")]);
    eprintln!(
        "limit {limit}; predicted {}; kernel: {chain} through the chain, {plain} through one #!",
        predicted(pad)
    );
    assert!(plain <= limit && limit < chain, "{plain} {limit} {chain}");

    let out = launch("s0", pad + 1).run();
    assert_eq!(out.code(), Some(65), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("would be {} bytes", limit + 1)),
        "{}",
        out.stderr
    );

    let out = launch("s0", pad).run();
    assert_eq!(out.code(), Some(65), "{}", out.stderr);
    assert_one_line(&out);
    let line = &out.stderr;
    assert!(line.contains("(E2BIG)"), "{line}");
    assert!(
        line.contains(&format!("the {limit} bytes the kernel accepts")),
        "{line}"
    );
    let big_at = line
        .find(&format!(
            "BIG ({} bytes, from --secret 'BIG={big}')",
            "BIG=".len() + big_value.len()
        ))
        .expect(line);
    let small_at = line
        .find(&format!(
            "SMALL ({} bytes, from --secret 'SMALL={small}')",
            "SMALL=".len() + small_value.len()
        ))
        .expect(line);
    assert!(big_at < small_at, "not largest first: {line}");
    out.assert_no_leak(&["canary-big", "canary-small"]);

    // The model is the kernel's to the byte: the chain runs at exactly the limit, E2BIG one over.
    let fits = pad - (chain - limit);
    let out = launch("s0", fits).run();
    assert_eq!(out.code(), Some(42), "{}", out.stderr);
    let out = launch("s0", fits + 1).run();
    assert_eq!(out.code(), Some(65), "{}", out.stderr);
    out.assert_stderr_has("(E2BIG)");

    let out = launch("s1", pad).run();
    assert_eq!(out.code(), Some(42), "{}", out.stderr);
}
