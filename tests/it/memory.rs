//! Memory hygiene, proven by scanning the process at execve, and no leak to any output.
//!
//! The scans stop secret-exec with ptrace (see `scan.rs`) at the entry of the `execve` that
//! launches COMMAND, or at `exit_group` when it fails, and count every canary in every readable
//! mapping. Canaries carry a per-run nonce, so nothing but this run can put them in memory.

use crate::scan::{self, Scan, Stop, Traced};
use crate::support::*;
use std::process::Command;

/// A secret value and the unique probes whose occurrences in memory are counted: a short value
/// is its own probe; a long one has probes spread over its length, so a partial copy shows too.
struct Canary {
    /// The variable that must carry it into the child.
    var: &'static str,
    value: String,
    probes: Vec<String>,
}

fn nonce() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    unique(&format!("q{t:x}")).replace('-', "")
}

/// Secrets that cover every way a value reaches the environment: flattened from an object
/// (top-level and nested), an explicit `VAR=id:key`, a whole plain-text secret near the size
/// limit, a multi-line value with JSON escapes on the wire, and a version-pinned read (which
/// goes through GetSecretValue; the others too, unless enough fillers join them to be batched).
struct Fixture {
    canaries: Vec<Canary>,
    specs: Vec<String>,
    /// The id of the flattened secret, for failure cases that reuse it.
    flat: String,
}

fn fixture() -> Fixture {
    let n = nonce();
    let m = moto();
    let pass = format!("CanPass{n}Z");
    let tok = format!("CanTok{n}Z");
    let key = format!("CanKey{n}Z");
    let ver = format!("CanVer{n}Z");
    // 60 000 bytes of distinct segments; AWS caps a SecretString at 64 KiB.
    let long: String = (0..6000).map(|i| format!("[{i:06}{:.2}]", n)).collect();
    let long = format!("CanLong{n}Z{long}");
    let long_probes = vec![
        long[..32].to_string(),
        long[30_000..30_032].to_string(),
        long[long.len() - 32..].to_string(),
    ];
    let line1 = format!("CanLineOne{n}Z");
    let line2 = format!("CanLineTwo{n}Z");
    let pem = format!("-----BEGIN KEY-----\n{line1}\n{line2}\n-----END KEY-----\n");

    let flat = unique("mem/flat");
    m.create(
        &flat,
        &serde_json::json!({"username": "admin", "password": pass, "nested": {"token": tok}})
            .to_string(),
    );
    let api = unique("mem/api");
    m.create_json(&api, &serde_json::json!({"api_key": key, "region": "x"}));
    let big = unique("mem/long");
    m.create(&big, &long);
    let multi = unique("mem/pem");
    m.create_json(&multi, &serde_json::json!({"tls_key": pem}));
    let pinned = unique("mem/pinned");
    m.create(&pinned, "an-older-value");
    let vid = m.put(&pinned, &ver);

    let canaries = vec![
        Canary {
            var: "PASSWORD",
            probes: vec![pass.clone()],
            value: pass,
        },
        Canary {
            var: "NESTED_TOKEN",
            probes: vec![tok.clone()],
            value: tok,
        },
        Canary {
            var: "API",
            probes: vec![key.clone()],
            value: key,
        },
        Canary {
            var: "LONG",
            probes: long_probes,
            value: long,
        },
        Canary {
            var: "TLS_KEY",
            probes: vec![line1, line2, pem.clone()],
            value: pem,
        },
        Canary {
            var: "PINNED",
            probes: vec![ver.clone()],
            value: ver,
        },
    ];
    let specs = vec![
        flat.clone(),
        format!("API={api}:api_key"),
        format!("LONG={big}"),
        format!("{multi}:tls_key"),
        format!("PINNED={pinned}:::{vid}"),
    ];
    Fixture {
        canaries,
        specs,
        flat,
    }
}

impl Fixture {
    fn probes(&self) -> Vec<&str> {
        self.canaries
            .iter()
            .flat_map(|c| c.probes.iter().map(String::as_str))
            .collect()
    }
}

/// Known-present controls: one inherited variable and one COMMAND argument. secret-exec keeps
/// the variable for the child and the argument for execve, so both must be found (at least on
/// the stack where the kernel put them) whenever the scan really reads the process.
struct Control {
    env: String,
    arg: String,
}

fn control() -> Control {
    let n = nonce();
    Control {
        env: format!("CtlEnv{n}Z"),
        arg: format!("CtlArg{n}Z"),
    }
}

const CONTROL_VAR: &str = "SE_TEST_CONTROL";

/// secret-exec with `specs`, then COMMAND: a shell that gets the control argument as `$1`.
fn command(specs: &[String], ctl: &Control, script: &str) -> Command {
    let mut cmd = se()
        .env(CONTROL_VAR, &ctl.env)
        .secrets(specs)
        .args(["--", "/bin/sh", "-c", script, "sh", &ctl.arg])
        .cmd;
    cmd.stdin(std::process::Stdio::null());
    cmd
}

fn needles<'a>(probes: &[&'a str], ctl: &'a Control) -> Vec<&'a [u8]> {
    let mut v: Vec<&[u8]> = probes.iter().map(|p| p.as_bytes()).collect();
    v.push(ctl.env.as_bytes());
    v.push(ctl.arg.as_bytes());
    v
}

/// The scan read real memory: the controls are found on the stack, where the kernel placed the
/// initial environment and argv.
fn assert_controls_found(scan: &Scan, n_probes: usize) {
    assert!(
        scan.mappings.iter().any(|m| m == "[stack]") && scan.mappings.iter().any(|m| m == "[heap]"),
        "scan skipped the stack or heap: {:?}",
        scan.mappings
    );
    assert!(scan.bytes_scanned > 1 << 20, "{} bytes", scan.bytes_scanned);
    for (what, hits) in [
        ("control env", &scan.hits[n_probes]),
        ("control arg", &scan.hits[n_probes + 1]),
    ] {
        assert!(
            hits.iter().any(|h| h.mapping == "[stack]"),
            "{what} not found on the stack at {:?}: {hits:?}",
            scan.stop
        );
    }
}

fn stderr(t: &Traced) -> String {
    String::from_utf8_lossy(&t.stderr).into_owned()
}

#[test]
fn at_execve_each_secret_is_only_in_the_env_block() {
    let fx = fixture();
    let ctl = control();
    let probes = fx.probes();
    let cmd = command(&fx.specs, &ctl, "exec /usr/bin/env -0");
    let t = scan::trace(cmd, Stop::Execve, &needles(&probes, &ctl));
    assert_eq!(t.status.code(), Some(0), "{}", stderr(&t));
    let scan = &t.scan;
    assert_controls_found(scan, probes.len());

    // Positive control of the address check: the inherited variable's block entry is found.
    let ctl_hits = &scan.hits[probes.len()];
    assert!(
        ctl_hits.iter().any(|h| scan
            .env_entry_of(h, ctl.env.len())
            .map(|e| e.name())
            .as_deref()
            == Some(CONTROL_VAR)),
        "the control variable was not found in the envp block: {ctl_hits:?}"
    );

    let mut i = 0;
    for c in &fx.canaries {
        for (p, probe) in c.probes.iter().enumerate() {
            let hits = &scan.hits[i];
            i += 1;
            let places: Vec<String> = hits
                .iter()
                .map(|h| {
                    let entry = scan.env_entry_of(h, probe.len()).map(|e| e.name());
                    format!("{:#x} in {:?} (env entry {entry:?})", h.addr, h.mapping)
                })
                .collect();
            assert_eq!(
                hits.len(),
                1,
                "{} probe {p}: want exactly one copy, found {places:?}",
                c.var
            );
            let entry = scan.env_entry_of(&hits[0], probe.len()).map(|e| e.name());
            assert_eq!(
                entry.as_deref(),
                Some(c.var),
                "{} probe {p}: the one copy is not in the envp block: {places:?}",
                c.var
            );
        }
    }

    // The scan stopped at the exec that worked: the child got every value intact.
    let out = Out {
        status: t.status,
        stdout: String::from_utf8_lossy(&t.stdout).into_owned(),
        stderr: stderr(&t),
        pid: 0,
        elapsed: Default::default(),
    };
    for c in &fx.canaries {
        assert!(
            out.var(c.var).as_deref() == Some(c.value.as_str()),
            "{} did not reach the child intact",
            c.var
        );
    }
}

/// Every way a run can end without exec (and `--dry-run`, which ends on purpose): the leak test
/// and the exit scan both go through all of them.
const CLASSES: &[&str] = &[
    "not found",
    "missing key",
    "refused name",
    "collision",
    "nul",
    "binary",
    "command not found",
    "command not found by path",
    "not executable",
    "unavailable",
    "no credentials",
    "dry-run",
    "template name missing",
];

#[test]
fn at_exit_without_exec_no_secret_is_left_in_memory() {
    let fx = fixture();
    let dir = TempDir::new("mem-exit");
    for class in CLASSES {
        let case = leak_case(class, &fx, &dir);
        let ctl = control();
        let probes: Vec<&str> = case.probes.iter().map(String::as_str).collect();
        let cmd = case
            .run(&[], &[])
            .env(CONTROL_VAR, &ctl.env)
            .args([&ctl.arg])
            .cmd;
        let t = scan::trace(cmd, Stop::ExitGroup, &needles(&probes, &ctl));
        assert_eq!(t.status.code(), Some(case.code), "{class}: {}", stderr(&t));
        assert_controls_found(&t.scan, probes.len());
        let left: Vec<String> = probes
            .iter()
            .zip(&t.scan.hits)
            .filter(|(_, h)| !h.is_empty())
            .map(|(p, h)| {
                let var = fx
                    .canaries
                    .iter()
                    .find(|c| c.probes.iter().any(|q| q == p))
                    .map_or("the class's own value", |c| c.var);
                let at: Vec<&str> = h.iter().map(|h| h.mapping.as_str()).collect();
                format!("{var}: {} copies in {at:?}", h.len())
            })
            .collect();
        assert!(left.is_empty(), "{class}: values left at exit: {left:?}");
    }
}

/// Every verbosity a user can turn on: our own `-v` levels, and the AWS SDK's logging switches
/// (which must stay inert: the SDK's tracing output is never installed).
const VERBOSITY: &[(&str, &[&str], &[(&str, &str)])] = &[
    ("quiet", &[], &[]),
    ("-v", &["-v"], &[]),
    ("-vv", &["-vv"], &[]),
    ("-vvv", &["-vvv"], &[]),
    ("RUST_LOG=trace", &[], &[("RUST_LOG", "trace")]),
    (
        "LOG_SENSITIVE_BODIES=true",
        &["-vvv"],
        &[("LOG_SENSITIVE_BODIES", "true"), ("RUST_LOG", "trace")],
    ),
    ("json", &["--log-format", "json"], &[]),
    ("json -v", &["--log-format", "json", "-v"], &[]),
    ("json -vv", &["--log-format=json", "-vv"], &[]),
    (
        "json -vvv",
        &["-vvv"],
        &[("SECRET_EXEC_LOG_FORMAT", "json")],
    ),
];

/// One failure class for the leak test: extra secrets seeded for it, the arguments after the
/// fixture's specs, environment changes, and the exit code that proves the class was reached.
struct LeakCase {
    specs: Vec<String>,
    tail: Vec<String>,
    env: Vec<(&'static str, String)>,
    remove: Vec<&'static str>,
    probes: Vec<String>,
    code: i32,
}

fn leak_case(class: &str, fx: &Fixture, dir: &TempDir) -> LeakCase {
    let m = moto();
    let n = nonce();
    let mut c = LeakCase {
        specs: fx.specs.clone(),
        tail: vec!["--".into(), "/bin/true".into()],
        env: Vec::new(),
        remove: Vec::new(),
        probes: Vec::new(),
        code: 65,
    };
    match class {
        "not found" => {
            // The secret exists with a value, but not at this stage.
            c.specs.push(format!("{}::AWSPREVIOUS", fx.flat));
            c.code = 66;
        }
        "missing key" => c.specs.push(format!("{}:no_such_key", fx.flat)),
        "refused name" => c.fetch_probe("leak/refused", "LD_PRELOAD", format!("CanRefused{n}Z")),
        "collision" => c.fetch_probe("leak/collide", "password", format!("CanCollide{n}Z")),
        "nul" => {
            let (head, tail) = (format!("CanNulHead{n}Z"), format!("CanNulTail{n}Z"));
            let id = unique("leak/nul");
            m.create_json(
                &id,
                &serde_json::json!({"nul_token": format!("{head}\0{tail}")}),
            );
            c.specs.push(id);
            c.probes.extend([head, tail]);
        }
        "binary" => {
            let raw = format!("CanBinary{n}Z-padding");
            let b64 = base64(raw.as_bytes());
            let id = unique("leak/binary");
            m.create_binary(&id, &b64);
            c.specs.push(format!("BIN={id}"));
            c.probes.extend([raw, b64]);
        }
        "command not found" => {
            c.tail = vec!["--".into(), "secret-exec-test-no-such-cmd".into()];
            c.code = 127;
        }
        "command not found by path" => {
            c.tail = vec!["--".into(), "/nonexistent/secret-exec-test-cmd".into()];
            c.code = 127;
        }
        "not executable" => {
            let p = dir.path().join("not-executable");
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            c.tail = vec!["--".into(), p.display().to_string()];
            c.code = 126;
        }
        "unavailable" => {
            c.env.push((
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", free_port()),
            ));
            c.tail.splice(
                0..0,
                ["--max-attempts", "1", "--timeout", "5s"].map(String::from),
            );
            c.code = 69;
        }
        "no credentials" => {
            c.remove = vec!["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];
            c.code = 78;
        }
        "dry-run" => {
            c.tail = vec!["--dry-run".into(), "--".into(), "/bin/true".into()];
            c.code = 0;
        }
        "template name missing" => {
            // A URL built, then a template over it that names a variable nobody sets.
            let pw = format!("CanDbUrl{n}Z");
            let id = unique("leak/dburl");
            m.create(&id, &rds_json(&pw));
            c.tail = [
                "--db-url",
                &format!("U={id}"),
                "--template",
                "X={{U|url}}{{NOPE}}",
            ]
            .into_iter()
            .map(String::from)
            .chain(c.tail)
            .collect();
            c.probes.push(pw);
        }
        other => panic!("unknown class {other}"),
    }
    c.probes.extend(fx.probes().into_iter().map(String::from));
    c
}

impl LeakCase {
    /// Also fetches a fresh secret `{key: probe}`, and looks for `probe` afterwards.
    fn fetch_probe(&mut self, stem: &str, key: &str, probe: String) {
        self.specs
            .push(seed(stem, &serde_json::json!({ key: probe }).to_string()));
        self.probes.push(probe);
    }

    /// secret-exec for this case, with extra flags and environment for the verbosity.
    fn run(&self, flags: &[&str], env: &[(&str, &str)]) -> Run {
        let mut run = se().args(flags).secrets(&self.specs);
        for (k, v) in env
            .iter()
            .copied()
            .chain(self.env.iter().map(|(k, v)| (*k, v.as_str())))
        {
            run = run.env(k, v);
        }
        for k in &self.remove {
            run = run.env_remove(k);
        }
        run.args(&self.tail)
    }
}

/// Standard base64 with padding: the SecretBinary wire form, which must not leak either.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_table() {
    for (raw, want) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
    ] {
        assert_eq!(base64(raw.as_bytes()), want, "{raw}");
    }
}

fn assert_no_output_leak(class: &str) {
    let fx = fixture();
    let dir = TempDir::new("mem-leak");
    let case = leak_case(class, &fx, &dir);
    for (level, flags, env) in VERBOSITY {
        let out = case.run(flags, env).run();
        assert_eq!(
            out.code(),
            Some(case.code),
            "{class} at {level}: {}",
            out.stderr
        );
        let verbose = flags.iter().any(|f| f.starts_with("-v"));
        if verbose && case.code != 78 {
            assert!(
                !out.stderr.is_empty(),
                "{class} at {level}: -v printed nothing"
            );
        }
        if level.starts_with("json") {
            // Every line is one JSON object, the error line included.
            let lines = crate::logging::json_lines(&out.stderr);
            let last = lines.last().map(|v| v["event"].clone());
            let want_error = case.code != 0;
            assert_eq!(
                last.as_ref().is_some_and(|e| e == "error"),
                want_error,
                "{class} at {level}: last line {last:?}"
            );
        }
        for (i, p) in case.probes.iter().enumerate() {
            // The message names the probe by index only: printing it would be the leak.
            assert!(
                !out.stdout.contains(p.as_str()),
                "{class} at {level}: stdout leaks probe {i}"
            );
            assert!(
                !out.stderr.contains(p.as_str()),
                "{class} at {level}: stderr leaks probe {i}"
            );
        }
    }
}

macro_rules! leak_tests {
    ($($name:ident => $class:literal,)*) => {
        $(#[test] fn $name() { assert_no_output_leak($class); })*

        #[test]
        fn leak_tests_cover_every_class() {
            assert_eq!(&[$($class),*], CLASSES);
        }
    };
}

leak_tests! {
    no_leak_when_not_found => "not found",
    no_leak_when_key_missing => "missing key",
    no_leak_when_name_refused => "refused name",
    no_leak_on_collision => "collision",
    no_leak_on_nul => "nul",
    no_leak_on_binary => "binary",
    no_leak_when_command_not_found => "command not found",
    no_leak_when_command_path_not_found => "command not found by path",
    no_leak_when_not_executable => "not executable",
    no_leak_when_unavailable => "unavailable",
    no_leak_without_credentials => "no credentials",
    no_leak_in_dry_run => "dry-run",
    no_leak_when_template_name_missing => "template name missing",
}

/// `run` started from a shell that first runs `prefix` (e.g. opens an fd without CLOEXEC), with
/// the same hermetic environment.
fn from_shell(prefix: &str, run: Run) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!("{prefix}; exec \"$@\""))
        .arg("sh")
        .arg(run.cmd.get_program())
        .args(run.cmd.get_args())
        .env_clear()
        .envs(run.envs());
    cmd
}

fn output(cmd: Command) -> Out {
    Run { cmd }.run()
}

/// `ls -l /proc/self/fd` of a child, as (fd, target) pairs, without the one fd `ls` opens on
/// the directory it lists.
fn child_fds(out: &Out) -> Vec<(u32, String)> {
    out.stdout
        .lines()
        .filter_map(|l| {
            let (left, target) = l.split_once(" -> ")?;
            let fd = left.split_whitespace().last()?.parse().ok()?;
            Some((fd, target.to_string()))
        })
        .filter(|(_, t)| !(t.starts_with("/proc/") && t.ends_with("/fd")))
        .collect()
}

#[test]
fn child_inherits_only_fds_0_to_2() {
    let dir = TempDir::new("mem-fds");
    let file = dir.path().join("extra-fd");
    std::fs::write(&file, "x").unwrap();
    let name = unique("mem/fds");
    moto().create(&name, r#"{"fd_test":"v"}"#);
    let prefix = format!("exec 7<'{}'", file.display());
    let ls = ["/bin/ls", "-l", "/proc/self/fd"];

    // Control: the shell's fd 7 does reach a child started by env(1).
    let plain = output(from_shell(
        &prefix,
        Run {
            cmd: {
                let mut c = Command::new("/usr/bin/env");
                c.args(ls);
                c
            },
        },
    ));
    plain.assert_code(0);
    let want_leak = file.display().to_string();
    assert!(
        child_fds(&plain).contains(&(7, want_leak.clone())),
        "control: fd 7 was not inherited by env: {:?}",
        child_fds(&plain)
    );

    let out = output(from_shell(
        &prefix,
        se().args(["--secret", &name, "--"]).args(ls),
    ));
    out.assert_code(0);
    let fds: Vec<u32> = child_fds(&out).into_iter().map(|(fd, _)| fd).collect();
    assert_eq!(fds, [0, 1, 2], "child fds: {:?}", child_fds(&out));
}

/// Sets a signal's disposition with the raw syscall, which (unlike glibc's wrappers) also
/// reaches the signals glibc reserves (32, 33).
fn raw_disposition(sig: i32, handler: nix::libc::sighandler_t) {
    #[repr(C)]
    struct KernelSigaction {
        handler: nix::libc::sighandler_t,
        flags: nix::libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let act = KernelSigaction {
        handler,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: a valid kernel sigaction of the size passed; only the calling process changes.
    unsafe {
        nix::libc::syscall(
            nix::libc::SYS_rt_sigaction,
            sig,
            &act as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            8usize,
        )
    };
}

/// Puts the child in a known signal state before it execs: `dirty` is what a careless
/// supervisor leaves behind (signals blocked and ignored, including 32/33 that glibc reserves
/// and SIGRTMAX where off-by-one loops stop); otherwise everything is default and unblocked,
/// whatever this test process inherited.
fn signal_state(cmd: &mut Command, dirty: bool) {
    use nix::libc;
    use std::os::unix::process::CommandExt;
    // SAFETY: sigprocmask and rt_sigaction are async-signal-safe and touch only the child.
    unsafe {
        cmd.pre_exec(move || {
            for s in 1..=64 {
                if s != libc::SIGKILL && s != libc::SIGSTOP {
                    raw_disposition(s, libc::SIG_DFL);
                }
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            if dirty {
                for s in [
                    libc::SIGUSR1,
                    libc::SIGTERM,
                    libc::SIGINT,
                    libc::SIGRTMIN() + 2,
                ] {
                    libc::sigaddset(&mut set, s);
                }
                for s in [libc::SIGUSR2, libc::SIGHUP, libc::SIGPIPE, 32, 33, 64] {
                    raw_disposition(s, libc::SIG_IGN);
                }
            }
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
}

fn sig_lines(out: &Out) -> Vec<String> {
    let lines: Vec<String> = out
        .stdout
        .lines()
        .filter(|l| {
            l.starts_with("SigBlk:") || l.starts_with("SigIgn:") || l.starts_with("SigCgt:")
        })
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 3, "no signal lines in: {}", out.stdout);
    lines
}

#[test]
fn child_gets_empty_mask_and_default_dispositions() {
    let name = unique("mem/sig");
    moto().create(&name, r#"{"sig_test":"v"}"#);
    let status = ["/bin/cat", "/proc/self/status"];
    let env_launch = |dirty: bool| {
        let mut c = Command::new("/usr/bin/env");
        c.args(status);
        signal_state(&mut c, dirty);
        sig_lines(&output(c))
    };
    let clean = env_launch(false);
    let zero = "0000000000000000";
    let want: Vec<String> = ["SigBlk", "SigIgn", "SigCgt"]
        .iter()
        .map(|k| format!("{k}:\t{zero}"))
        .collect();
    assert_eq!(clean, want, "a clean parent gives a clean env child");
    // Control: the dirty state does survive a plain exec, so the comparison below can fail.
    let dirty = env_launch(true);
    assert_ne!(
        clean, dirty,
        "the dirty parent state did not reach env's child"
    );

    let mut run = se().args(["--secret", &name, "--"]).args(status);
    signal_state(&mut run.cmd, true);
    let out = run.run();
    out.assert_code(0);
    assert_eq!(
        sig_lines(&out),
        clean,
        "secret-exec's child vs a clean env launch"
    );
}

/// During the fetch the process is not dumpable: the kernel then makes its /proc files
/// root-owned, which is visible from outside when it runs as another user. The fetch is held
/// open by a loopback listener that accepts and never answers.
#[test]
fn not_dumpable_during_the_fetch() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;
    const NOBODY: u32 = 65534;
    if !have_root("not_dumpable_during_the_fetch") {
        return;
    }
    // A copy that the unprivileged user can execute wherever the checkout lives.
    let dir = TempDir::new("mem-dump");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("secret-exec");
    std::fs::copy(BIN, &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();

    // Control: an ordinary process of that user owns its /proc files.
    let mut sleeper = Command::new("/bin/sleep")
        .arg("60")
        .uid(NOBODY)
        .spawn()
        .unwrap();
    let owner = std::fs::metadata(format!("/proc/{}/status", sleeper.id())).map(|m| m.uid());
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(
        owner.ok(),
        Some(NOBODY),
        "control: a dumpable process's /proc owner"
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Hold the connection open without answering until the test ends.
        let conn = listener.accept();
        let _ = tx.send(());
        std::thread::sleep(HANG);
        drop(conn);
    });
    let mut run = se()
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .args(["--timeout", "120s"])
        .fetch_only("mem/stalled");
    let mut child = Command::new(&bin);
    child
        .args(run.cmd.get_args())
        .env_clear()
        .envs(run.envs())
        .uid(NOBODY);
    run.cmd = child;
    let mut child = run.cmd.stdout(std::process::Stdio::null()).spawn().unwrap();
    let reached = rx.recv_timeout(HANG);
    let owner = std::fs::metadata(format!("/proc/{}/status", child.id())).map(|m| m.uid());
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        reached.is_ok(),
        "secret-exec never connected to the stalled endpoint"
    );
    assert_eq!(
        owner.ok(),
        Some(0),
        "/proc/PID of secret-exec mid-fetch is not root-owned"
    );
}

/// SIGTERM while a fetch is still in flight (128+15): the values already fetched are in memory
/// when the signal arrives, and gone when the process exits. The fault proxy answers the batch
/// call and stalls the version-pinned GetSecretValue, which secret-exec sends only after the
/// batch is in, so the stall is the moment the other values are held.
#[test]
fn interrupted_fetch_leaves_no_secret_at_exit() {
    use crate::faultsrv::{FaultServer, Reply};
    use nix::sys::signal::Signal;
    let fx = fixture();
    let ctl = control();
    let proxy = std::sync::Arc::new(FaultServer::failing(
        "GetSecretValue",
        usize::MAX,
        Reply::Stall,
    ));
    // The pinned secret is the one that stalls, so its value is never fetched; a multi-line
    // value exists decoded only after mapping (on the wire its newlines are JSON escapes).
    let batched: Vec<&str> = fx
        .canaries
        .iter()
        .filter(|c| c.var != "PINNED")
        .flat_map(|c| c.probes.iter().map(String::as_str))
        .filter(|p| !p.contains('\n'))
        .collect();
    // Enough plain AWSCURRENT reads to be batched (17, `plan::MIN_BATCH`): fillers beside the
    // fixture's four, so the canaries come in one BatchGetSecretValue before the pinned read.
    let fillers: Vec<String> = (0..13)
        .map(|i| format!("F{i}={}", seed("mem/filler", "filler")))
        .collect();
    let cmd = proxy
        .se()
        .env(CONTROL_VAR, &ctl.env)
        .args(["--timeout", "120s"])
        .secrets(&fx.specs)
        .secrets(&fillers)
        .args(["--", "/bin/true", &ctl.arg])
        .cmd;
    let waiter = proxy.clone();
    let t = scan::trace_stops(
        cmd,
        &[Stop::Signal(Signal::SIGTERM), Stop::ExitGroup],
        &needles(&batched, &ctl),
        move |pid| {
            std::thread::spawn(move || {
                if waiter.wait_for("GetSecretValue", 1, HANG) {
                    // At the main thread, which runs the fetch and is the one being traced.
                    // SAFETY: tgkill to our own child's main thread.
                    unsafe {
                        nix::libc::syscall(nix::libc::SYS_tgkill, pid, pid, nix::libc::SIGTERM)
                    };
                }
            });
        },
    );
    assert_eq!(t.status.code(), Some(143), "{}", stderr(&t));
    let held = &t.scans[0];
    assert_controls_found(held, batched.len());
    for (i, hits) in held.hits[..batched.len()].iter().enumerate() {
        assert!(
            !hits.is_empty(),
            "probe {i} was not in memory during the fetch, so the exit scan proves nothing"
        );
    }
    assert_controls_found(&t.scan, batched.len());
    for (i, hits) in t.scan.hits[..batched.len()].iter().enumerate() {
        let at: Vec<&str> = hits.iter().map(|h| h.mapping.as_str()).collect();
        assert!(
            hits.is_empty(),
            "probe {i} left at exit after SIGTERM: {at:?}"
        );
    }
}

/// An RDS-shaped secret whose password is `password`.
fn rds_json(password: &str) -> String {
    serde_json::json!({"engine": "postgres", "host": "127.0.0.1", "port": 5432,
        "username": "app", "password": password, "dbname": "app"})
    .to_string()
}

/// `--db-url` and `--template`: at execve the password is only inside the variables built from
/// it (the URL, and a template over the URL), each in the envp block; the fetched JSON and every
/// intermediate buffer are gone.
#[test]
fn at_execve_built_values_are_only_in_the_env_block() {
    let n = nonce();
    let pw = format!("CanBuilt{n}Z");
    let id = unique("mem/dburl");
    moto().create(&id, &rds_json(&pw));
    let ctl = control();
    let mut cmd = se()
        .env(CONTROL_VAR, &ctl.env)
        .args(["--db-url", &format!("DATABASE_URL={id}")])
        .args(["--template", "TPL=x{{DATABASE_URL|json}}"])
        .args([
            "--",
            "/bin/sh",
            "-c",
            "exec /usr/bin/env -0",
            "sh",
            &ctl.arg,
        ])
        .cmd;
    cmd.stdin(std::process::Stdio::null());
    let t = scan::trace(cmd, Stop::Execve, &needles(&[&pw], &ctl));
    assert_eq!(t.status.code(), Some(0), "{}", stderr(&t));
    assert_controls_found(&t.scan, 1);
    let mut places: Vec<Option<String>> = t.scan.hits[0]
        .iter()
        .map(|h| t.scan.env_entry_of(h, pw.len()).map(|e| e.name()))
        .collect();
    places.sort();
    assert_eq!(
        places,
        [Some("DATABASE_URL".to_string()), Some("TPL".to_string())],
        "copies of the password at execve"
    );
}
