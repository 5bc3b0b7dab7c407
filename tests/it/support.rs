//! Test harness: one moto server (real AWS API emulator) for the whole test binary, started on a
//! free loopback port and waited for with a readiness probe; a raw HTTP client to seed it; and a
//! builder that runs the real secret-exec binary with a hermetic environment.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_secret-exec");
pub const REGION: &str = "us-east-1";

/// Upper bound on any single run of the binary: a run that takes this long has hung.
pub const HANG: Duration = Duration::from_secs(60);

pub struct Moto {
    pub port: u16,
    pub endpoint: String,
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The moto_server executable: $MOTO_SERVER, else the project's .venv (scripts/test makes it).
pub fn moto_server_path() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let p = manifest_dir().join(".venv/bin/moto_server");
    assert!(
        p.exists(),
        "moto_server not found at {}; run scripts/test (it creates .venv with moto[server])",
        p.display()
    );
    p
}

/// The test venv's Python (beside moto_server: scripts/venv installs every test requirement
/// there), or $SECRET_EXEC_TEST_PYTHON.
pub fn venv_python() -> PathBuf {
    std::env::var_os("SECRET_EXEC_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| moto_server_path().with_file_name("python"))
}

/// Whether the test venv's python can import `modules` (a comma-separated list).
pub fn venv_imports(modules: &str) -> bool {
    Command::new(venv_python())
        .args(["-c", &format!("import {modules}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

/// The shared moto server, started on first use and killed when the test process exits.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let port = serve_moto(Vec::new(), |port| {
            matches!(
                http(plain, port, "GET", "/moto-api/data.json", &[], ""),
                Ok((200, _))
            )
        });
        Moto {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    })
}

/// Starts a moto server on a free loopback port with `extra` arguments (a TLS certificate and
/// key, say) and returns the port once `ready(port)` holds. It lives as long as the test process.
pub fn serve_moto(
    extra: Vec<std::ffi::OsString>,
    ready: impl Fn(u16) -> bool + Send + 'static,
) -> u16 {
    let path = moto_server_path();
    let (tx, rx) = std::sync::mpsc::channel();
    // PR_SET_PDEATHSIG fires when the spawning *thread* exits, so spawn from a thread that
    // lives as long as the test process.
    std::thread::spawn(move || {
        for _ in 0..5 {
            let port = free_port();
            // SAFETY: the pre_exec hook makes one prctl syscall, which is async-signal-safe.
            let child = unsafe {
                Command::new(&path)
                    .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                    .args(&extra)
                    .env("MOTO_PORT", port.to_string())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .pre_exec(|| {
                        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                            .map_err(std::io::Error::from)
                    })
                    .spawn()
                    .expect("spawn moto_server")
            };
            if wait_ready(port, child, &ready) {
                tx.send(port).unwrap();
                loop {
                    std::thread::park();
                }
            }
        }
        panic!("moto_server did not start");
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("moto_server ready")
}

/// Polls `ready` until it holds (or the process dies).
fn wait_ready(port: u16, mut child: Child, ready: &dyn Fn(u16) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if ready(port) {
            std::mem::forget(child);
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    false
}

/// A plain TCP connection to a loopback port, for `http`.
pub fn plain(port: u16) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(s)
}

/// Minimal HTTP/1.1 client, enough to talk JSON to moto without another dependency: one request
/// with `Connection: close` over the stream `connect(port)` opens (`plain`, or TLS); returns
/// the status and body. What arrived before a read error is the answer: a TLS server may close
/// without close_notify.
pub fn http<S: Read + Write>(
    connect: impl FnOnce(u16) -> std::io::Result<S>,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = connect(port)?;
    let first = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}");
    let mut req = crate::loopback::message_head(first, body.len(), headers);
    req.push_str(body);
    stream.write_all(req.as_bytes())?;
    let mut resp = Vec::new();
    let read = stream.read_to_end(&mut resp);
    if resp.is_empty() {
        read?;
    }
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Calls one AWS JSON-1.1 action (`X-Amz-Target: <target>.<action>`) through `send` and
/// returns the parsed answer, failing the test unless it is 200. moto checks no signature,
/// only the credential scope, which picks its region and service.
pub fn aws_json(
    send: impl FnOnce(&[(&str, &str)], &str) -> std::io::Result<(u16, String)>,
    (target, service, region): (&str, &str, &str),
    action: &str,
    body: &serde_json::Value,
) -> serde_json::Value {
    let target = format!("{target}.{action}");
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    );
    let headers = [
        ("X-Amz-Target", target.as_str()),
        ("Content-Type", "application/x-amz-json-1.1"),
        ("Authorization", &auth),
    ];
    let (status, text) = send(&headers, &body.to_string()).expect("moto answers");
    assert_eq!(status, 200, "{action} failed: {text}");
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

impl Moto {
    /// Calls a Secrets Manager action on moto (it does not check signatures).
    pub fn call(&self, action: &str, body: &serde_json::Value) -> serde_json::Value {
        self.call_in(REGION, action, body)
    }

    /// `call` against another region: moto keeps one store per region, picked from the SigV4
    /// credential scope.
    pub fn call_in(
        &self,
        region: &str,
        action: &str,
        body: &serde_json::Value,
    ) -> serde_json::Value {
        let send = |h: &[(&str, &str)], b: &str| http(plain, self.port, "POST", "/", h, b);
        aws_json(
            send,
            ("secretsmanager", "secretsmanager", region),
            action,
            body,
        )
    }

    /// Calls a Parameter Store action on moto (same port, same unchecked signatures).
    pub fn ssm(&self, action: &str, body: &serde_json::Value) -> serde_json::Value {
        let send = |h: &[(&str, &str)], b: &str| http(plain, self.port, "POST", "/", h, b);
        aws_json(send, ("AmazonSSM", "ssm", REGION), action, body)
    }

    /// Puts a parameter (`String`, `SecureString` or `StringList`), overwriting: each put is a
    /// new version. Returns the version.
    pub fn put_parameter(&self, name: &str, kind: &str, value: &str) -> i64 {
        let r = self.ssm(
            "PutParameter",
            &serde_json::json!({"Name": name, "Type": kind, "Value": value, "Overwrite": true}),
        );
        r["Version"].as_i64().expect("Version")
    }

    /// Creates a secret with a SecretString; returns its ARN.
    pub fn create(&self, name: &str, value: &str) -> String {
        let r = self.call(
            "CreateSecret",
            &serde_json::json!({"Name": name, "SecretString": value}),
        );
        r["ARN"].as_str().expect("ARN").to_string()
    }

    /// Creates a secret whose SecretString is `value` as JSON; returns its ARN.
    pub fn create_json(&self, name: &str, value: &serde_json::Value) -> String {
        self.create(name, &value.to_string())
    }

    /// Creates a secret with a SecretBinary (base64 on the wire); returns its ARN.
    pub fn create_binary(&self, name: &str, base64: &str) -> String {
        let r = self.call(
            "CreateSecret",
            &serde_json::json!({"Name": name, "SecretBinary": base64}),
        );
        r["ARN"].as_str().expect("ARN").to_string()
    }

    /// Adds a version (moto moves AWSCURRENT to it and the old one to AWSPREVIOUS); returns its id.
    pub fn put(&self, name: &str, value: &str) -> String {
        let r = self.call(
            "PutSecretValue",
            &serde_json::json!({"SecretId": name, "SecretString": value}),
        );
        r["VersionId"].as_str().expect("VersionId").to_string()
    }

    pub fn delete(&self, name: &str) {
        self.call(
            "DeleteSecret",
            &serde_json::json!({"SecretId": name, "RecoveryWindowInDays": 7}),
        );
    }
}

/// Whether a test that needs root may go on. Without root it prints one line and is skipped —
/// unless CI=true, where a test that did not run is a failure.
pub fn have_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    skip(&format!("{test} needs root"));
    false
}

/// The one skip policy, for a test that cannot run here (`why` says what is missing and what
/// installs it): one `skipped:` line outside CI, a failure under CI=true.
pub fn skip(why: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(!ci, "{why}, and CI=true forbids skipping");
    eprintln!("skipped: {why}");
}

/// A name no other test uses, so tests can share one moto server.
pub fn unique(stem: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{stem}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(stem: &str) -> TempDir {
        TempDir::under(&std::env::temp_dir(), stem)
    }
    /// A fresh directory inside `base` (which must exist).
    pub fn under(base: &Path, stem: &str) -> TempDir {
        let p = base.join(unique(&format!("secret-exec-{stem}")));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed and reaped on drop.
pub struct Reaped(pub Child);

impl std::ops::Deref for Reaped {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Builder for one run of the binary with a hermetic environment pointed at moto.
pub struct Run {
    pub cmd: Command,
}

pub fn se() -> Run {
    let m = moto();
    let mut cmd = Command::new(BIN);
    // env_clear: nothing of the host leaks in, in particular AWS_CA_BUNDLE, SSL_CERT_FILE,
    // SSL_CERT_DIR and the *_PROXY variables, which only the tests that need them set.
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", "/nonexistent")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        .env("AWS_ENDPOINT_URL", &m.endpoint)
        .stdin(Stdio::null());
    Run { cmd }
}

/// Runs secret-exec with one `--secret` and `/bin/sh -c script` as the command.
pub fn run_sh(secret: &str, script: &str) -> Out {
    se().args(["--secret", secret, "--", "/bin/sh", "-c", script])
        .run()
}

pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub pid: u32,
    pub elapsed: Duration,
}

impl Out {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    /// Parses `env -0` output of the child.
    pub fn env0(&self) -> Vec<(String, String)> {
        self.stdout
            .split('\0')
            .filter(|e| !e.is_empty())
            .filter_map(|e| {
                e.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect()
    }
    pub fn var(&self, name: &str) -> Option<String> {
        self.env0()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
    /// Asserts that the child saw each `(name, value)` exactly (stdout of `env -0`).
    pub fn assert_vars(&self, want: &[(&str, &str)]) {
        self.assert_vars_each(want.iter().copied());
    }
    /// `assert_vars` for names and values computed on the fly.
    #[track_caller]
    pub fn assert_vars_each<K: AsRef<str>, V: AsRef<str>>(
        &self,
        want: impl IntoIterator<Item = (K, V)>,
    ) {
        for (k, v) in want {
            let k = k.as_ref();
            assert_eq!(self.var(k).as_deref(), Some(v.as_ref()), "{k}");
        }
    }
    /// Asserts a clean exit (0) in which the child saw each `(name, value)` exactly.
    #[track_caller]
    pub fn assert_ok_vars(&self, want: &[(&str, &str)]) {
        self.assert_code(0);
        self.assert_vars(want);
    }
    /// The rows of a `--dry-run` table (stdout), split at tabs, after asserting its header.
    #[track_caller]
    pub fn dry_run_rows(&self) -> Vec<Vec<&str>> {
        let mut lines = self
            .stdout
            .lines()
            .map(|l| l.split('\t').collect::<Vec<_>>());
        let header = lines.next().unwrap_or_default();
        let want = [
            "NAME",
            "SECRET",
            "KEY",
            "VERSION",
            "STAGE",
            "OVERRIDES",
            "VIA",
            "BYTES",
        ];
        assert_eq!(header, want, "{}", self.stdout);
        lines.collect()
    }
    /// Asserts that none of `values` appears in stdout or stderr.
    pub fn assert_no_leak(&self, values: &[&str]) {
        for v in values {
            assert!(
                !self.stderr.contains(v),
                "stderr leaks a value: {}",
                self.stderr
            );
            assert!(!self.stdout.contains(v), "stdout leaks a value");
        }
    }
}

impl Run {
    /// Adds one `--secret` per spec, in order.
    pub fn secrets<I, S>(mut self, specs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        for spec in specs {
            self.cmd.arg("--secret").arg(spec);
        }
        self
    }
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }
    pub fn arg_path(mut self, p: &Path) -> Self {
        self.cmd.arg(p);
        self
    }
    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }
    /// The hermetic environment this run was given, to start the binary some other way.
    pub fn envs(&self) -> impl Iterator<Item = (&std::ffi::OsStr, &std::ffi::OsStr)> {
        self.cmd.get_envs().filter_map(|(k, v)| Some((k, v?)))
    }
    pub fn env_remove(mut self, k: &str) -> Self {
        self.cmd.env_remove(k);
        self
    }
    /// Adds `--secret secret -- /bin/true`: a run that only fetches, maps and checks.
    pub fn fetch_only(self, secret: &str) -> Self {
        self.args(["--secret", secret, "--", "/bin/true"])
    }
    /// Runs with `--secret secret` and `env -0` as the command, whose output `Out::var` reads.
    pub fn run_env0(self, secret: &str) -> Out {
        self.run_env0_all([secret])
    }
    /// `run_env0` with one `--secret` per spec, in order.
    pub fn run_env0_all<I, S>(self, specs: I) -> Out
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.secrets(specs).args(["--", "/usr/bin/env", "-0"]).run()
    }
    /// Runs to completion, failing the test if it outlives `HANG`.
    pub fn run(self) -> Out {
        let (out, ()) = self.run_waiting(|child| {
            let status = wait_exit(child, HANG, || format!("secret-exec hung for {HANG:?}"));
            (status, ())
        });
        out
    }
    /// Runs with stdout and stderr captured, leaving the wait to `wait`, which must reap the
    /// child within `HANG` and returns its status and whatever else it learnt doing so.
    pub fn run_waiting<T>(mut self, wait: impl FnOnce(&mut Child) -> (ExitStatus, T)) -> (Out, T) {
        let start = Instant::now();
        let mut child = self
            .cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn secret-exec");
        let pid = child.id();
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out_t = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = stdout.read_to_end(&mut b);
            b
        });
        let err_t = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = stderr.read_to_end(&mut b);
            b
        });
        let (status, learnt) = wait(&mut child);
        let elapsed = start.elapsed();
        let out = Out {
            status,
            stdout: String::from_utf8_lossy(&out_t.join().unwrap()).into_owned(),
            stderr: String::from_utf8_lossy(&err_t.join().unwrap()).into_owned(),
            pid,
            elapsed,
        };
        (out, learnt)
    }
}

/// Waits for `child` to exit; after `limit` kills it and fails the test with `hung()`.
pub fn wait_exit(child: &mut Child, limit: Duration, hung: impl FnOnce() -> String) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{}", hung());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `wait_exit` for a child spawned with only stderr piped; returns its run as an `Out` with
/// that stderr, no stdout, and the time since `start`.
pub fn wait_stderr_out(
    child: &mut Child,
    start: Instant,
    limit: Duration,
    hung: impl FnOnce() -> String,
) -> Out {
    let status = wait_exit(child, limit, hung);
    let mut stderr = String::new();
    child
        .stderr
        .as_mut()
        .expect("stderr piped")
        .read_to_string(&mut stderr)
        .unwrap();
    Out {
        status,
        stdout: String::new(),
        stderr,
        pid: child.id(),
        elapsed: start.elapsed(),
    }
}

impl Out {
    /// Asserts the exit code, showing stderr when it is another.
    #[track_caller]
    pub fn assert_code(&self, code: i32) {
        assert_eq!(self.code(), Some(code), "{}", self.stderr);
    }
    /// Asserts that stderr contains `part`, showing it when it does not.
    #[track_caller]
    pub fn assert_stderr_has(&self, part: &str) {
        assert_has("stderr", &self.stderr, part);
    }
    /// Asserts that stdout contains `part`, showing it when it does not.
    #[track_caller]
    pub fn assert_stdout_has(&self, part: &str) {
        assert_has("stdout", &self.stdout, part);
    }
    /// Asserts that the failure was reported as exactly one `secret-exec:` line, with no panic
    /// and no internal error.
    #[track_caller]
    pub fn assert_one_clean_line(&self) {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "want one stderr line: {}", self.stderr);
        assert!(lines[0].starts_with("secret-exec: "), "{}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        assert!(!self.stderr.contains("internal error"), "{}", self.stderr);
    }
}

/// Asserts that `text` (the child's `stream`) contains `part`, showing it when it does not.
#[track_caller]
fn assert_has(stream: &str, text: &str, part: &str) {
    assert!(text.contains(part), "{stream} lacks {part:?}: {text}");
}

/// A secret in moto holding `value`, under a fresh name made from `stem`; returns the name.
pub fn seed(stem: &str, value: &str) -> String {
    let name = unique(stem);
    moto().create(&name, value);
    name
}

/// The variable a plain-text secret lands in: its name's last segment, upper-cased, `-` as `_`.
pub fn default_var(name: &str) -> String {
    name.rsplit('/')
        .next()
        .unwrap()
        .to_uppercase()
        .replace('-', "_")
}
