//! `--agent`: the real AWS Secrets Manager Agent (built by scripts/agent, path in
//! $SECRET_EXEC_TEST_AGENT) on a free loopback port, in front of moto — with secret-exec given no
//! AWS credentials, region or endpoint at all — and loopback fakes for every error class the
//! agent can answer with (bad token, forwarded, connection limit, upstream 502/504), plus an
//! agent that is not there.

use crate::faultsrv::{FaultServer, Reply};
use crate::loopback::{listen, read_head, respond};
use crate::support::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "agent-ssrf-t0ken-for-tests";

/// The agent binary: $SECRET_EXEC_TEST_AGENT (scripts/test sets it), else where scripts/agent
/// caches it outside the clone ($SECRET_EXEC_CACHE, $XDG_CACHE_HOME/secret-exec or
/// ~/.cache/secret-exec).
/// None (the test is skipped with a line) only outside CI; under CI a missing agent fails.
fn agent_bin() -> Option<PathBuf> {
    let from_env = std::env::var_os("SECRET_EXEC_TEST_AGENT").map(PathBuf::from);
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let cached = var("SECRET_EXEC_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("secret-exec")))
        .or_else(|| var("HOME").map(|h| h.join(".cache/secret-exec")))
        .map(|c| c.join("agent-2.1.0/bin/aws_secretsmanager_agent"));
    let found = from_env.or(cached).filter(|p| p.exists());
    if found.is_none() {
        skip("the Secrets Manager Agent is missing (scripts/agent builds it)");
    }
    found
}

/// A running agent, killed on drop.
struct Agent {
    _child: Reaped,
    url: String,
    _dir: TempDir,
}

/// Starts the agent against `upstream` (moto, or a proxy in front of it) and waits for /ping.
fn start_agent(upstream: &str) -> Option<Agent> {
    let bin = agent_bin()?;
    for _ in 0..5 {
        let dir = TempDir::new("agent");
        let port = free_port();
        let config = dir.path().join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "log_level = \"error\"\nlog_to_file = false\nhttp_port = \"{port}\"\n\
                 region = \"{REGION}\"\nvalidate_credentials = false\nttl_seconds = 300\n"
            ),
        )
        .unwrap();
        let mut child = Reaped(
            Command::new(&bin)
                .args(["--config"])
                .arg(&config)
                .current_dir(dir.path())
                .env_clear()
                .env("HOME", "/nonexistent")
                .env("AWS_TOKEN", TOKEN)
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_REGION", REGION)
                .env("AWS_ENDPOINT_URL", upstream)
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env("AWS_CONFIG_FILE", "/nonexistent/config")
                .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn the agent"),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break; // the port was taken in between: try another
            }
            if let Ok((200, body)) = http(plain, port, "GET", "/ping", &[], "")
                && body.contains("healthy")
            {
                return Some(Agent {
                    _child: child,
                    url: format!("http://127.0.0.1:{port}"),
                    _dir: dir,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("the Secrets Manager Agent did not start");
}

/// secret-exec with the agent as its only source: no AWS credentials, region or endpoint.
fn through(url: &str) -> Run {
    se().env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_REGION")
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_TOKEN", TOKEN)
        .args([format!("--agent={url}")])
}

/// Fetches `fake/s` through the agent at `url`, with one retry so failures stay quick.
fn fetch_fake_s(url: &str) -> Out {
    through(url)
        .args(["--max-attempts", "2"])
        .fetch_only("fake/s")
        .run()
}

#[test]
fn the_real_agent_serves_every_version_form_without_aws_settings() {
    let Some(agent) = start_agent(&moto().endpoint) else {
        return;
    };
    let m = moto();
    let name = unique("agent/db");
    m.create(&name, r#"{"username":"admin","password":"first-pw"}"#);
    let v2 = m.put(&name, r#"{"username":"admin","password":"second-pw"}"#);
    let plain = unique("agent/plain");
    m.create(&plain, "plain-text-value");

    let out = through(&agent.url)
        .args([
            "--secret",
            &name,
            "--secret",
            &format!("OLD={name}:password:AWSPREVIOUS"),
            "--secret",
            &format!("BYID={name}:password::{v2}"),
            "--secret",
            &plain,
            "--",
            "/usr/bin/env",
            "-0",
        ])
        .run();
    out.assert_ok_vars(&[
        ("USERNAME", "admin"),
        ("PASSWORD", "second-pw"),
        ("OLD", "first-pw"),
        ("BYID", "second-pw"),
    ]);
    let last = default_var(&plain);
    assert_eq!(out.var(&last).as_deref(), Some("plain-text-value"));
    // The child inherits AWS_TOKEN like any variable; secret-exec itself never prints it.
    assert!(!out.stderr.contains(TOKEN), "{}", out.stderr);
    let verbose = through(&agent.url).args(["-vvv"]).fetch_only(&name).run();
    verbose.assert_code(0);
    verbose.assert_stderr_has("through the agent");
    assert!(!verbose.stderr.contains(TOKEN), "{}", verbose.stderr);
}

#[test]
fn token_sources_and_the_environment_switch() {
    let Some(agent) = start_agent(&moto().endpoint) else {
        return;
    };
    let name = seed("agent/tok", r#"{"k":"v"}"#);
    let dir = TempDir::new("agent-token");
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let runs = [
        through(&agent.url).env("AWS_TOKEN", format!("file://{}", file.display())),
        through(&agent.url)
            .env_remove("AWS_TOKEN")
            .env("AWS_SESSION_TOKEN", TOKEN),
        through(&agent.url)
            .env_remove("AWS_TOKEN")
            .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", TOKEN),
        se().env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_TOKEN", TOKEN)
            .env("SECRET_EXEC_AGENT", &agent.url),
    ];
    for run in runs {
        let out = run.run_env0(&name);
        out.assert_ok_vars(&[("K", "v")]);
    }
}

#[test]
fn the_real_agent_refuses_a_wrong_token_and_reports_missing_secrets() {
    let Some(agent) = start_agent(&moto().endpoint) else {
        return;
    };
    let name = seed("agent/refused", r#"{"k":"v"}"#);
    let out = through(&agent.url)
        .env("AWS_TOKEN", "not-the-token")
        .fetch_only(&name)
        .run();
    out.assert_code(77);
    out.assert_stderr_has("AWS_TOKEN");
    assert!(!out.stderr.contains("not-the-token"), "{}", out.stderr);

    let out = through(&agent.url).fetch_only(&unique("agent/none")).run();
    out.assert_code(66);
    out.assert_stderr_has("ResourceNotFoundException");
}

#[test]
fn a_warm_agent_answers_without_calling_secrets_manager() {
    let srv = FaultServer::start(|_, _| Reply::Forward);
    let Some(agent) = start_agent(&srv.endpoint) else {
        return;
    };
    let name = seed("agent/warm", r#"{"k":"v"}"#);
    for _ in 0..3 {
        let out = through(&agent.url).run_env0(&name);
        out.assert_ok_vars(&[("K", "v")]);
    }
    assert_eq!(
        srv.count("GetSecretValue"),
        1,
        "the agent's cache serves the rest"
    );
}

/// A loopback stand-in for the agent: answers the nth request with `reply(n)` (status line and
/// body) and keeps every request head it saw.
struct FakeAgent {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

fn fake_agent(
    reply: impl Fn(usize) -> (&'static str, &'static str) + Send + Sync + 'static,
) -> FakeAgent {
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    let n = std::sync::atomic::AtomicUsize::new(0);
    let port = listen("127.0.0.1", move |mut conn| {
        let nth = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let head = read_head(&mut conn).unwrap_or_default();
        seen.lock().unwrap().push(head);
        let (status, body) = reply(nth);
        respond(&mut conn, status, &[], body.as_bytes());
    });
    let url = format!("http://127.0.0.1:{port}");
    FakeAgent { url, heads }
}

const ANSWER: &str = r#"{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:fake/s-AbCdEf","Name":"fake/s","VersionId":"v1","SecretString":"{\"answer\":\"42\"}","VersionStages":["AWSCURRENT"],"CreatedDate":"1700000000.123"}"#;

#[test]
fn the_request_carries_the_token_header_and_an_encoded_id() {
    let fake = fake_agent(|_| ("200 OK", ANSWER));
    let out = through(&fake.url).run_env0("fake/s a+b::AWSPREVIOUS");
    out.assert_ok_vars(&[("ANSWER", "42")]);
    let heads = fake.heads.lock().unwrap();
    assert_eq!(heads.len(), 1);
    let head = &heads[0];
    assert!(
        head.starts_with(
            "GET /secretsmanager/get?secretId=fake%2Fs%20a%2Bb&versionStage=AWSPREVIOUS HTTP/1.1\r\n"
        ),
        "{head}"
    );
    assert!(
        head.contains(&format!("X-Aws-Parameters-Secrets-Token: {TOKEN}\r\n")),
        "{head}"
    );
    assert!(
        !head.to_ascii_lowercase().contains("x-forwarded-for"),
        "{head}"
    );
}

#[test]
fn connection_limit_is_retried() {
    let fake = fake_agent(|n| {
        if n <= 2 {
            ("429 Too Many Requests", "Connection limit exceeded")
        } else {
            ("200 OK", ANSWER)
        }
    });
    let out = through(&fake.url).run_env0("fake/s");
    out.assert_ok_vars(&[("ANSWER", "42")]);
    assert_eq!(fake.heads.lock().unwrap().len(), 3);
}

#[test]
fn every_agent_error_class() {
    let rows: &[(&str, &str, i32, &str)] = &[
        ("403 Forbidden", "Bad Token", 77, "AWS_TOKEN"),
        ("400 Bad Request", "Forwarded", 77, "AWS_TOKEN"),
        (
            "429 Too Many Requests",
            "Connection limit exceeded",
            69,
            "connection limit",
        ),
        (
            "502 Bad Gateway",
            r#"{"__type":"ConnectionError","message":"Read Error"}"#,
            69,
            "ConnectionError",
        ),
        (
            "504 Gateway Timeout",
            r#"{"__type":"TimeoutError","message":"Timeout"}"#,
            69,
            "TimeoutError",
        ),
        ("502 Bad Gateway", "", 69, "could not reach Secrets Manager"),
        (
            "400 Bad Request",
            r#"{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}"#,
            66,
            "ResourceNotFoundException",
        ),
        (
            "400 Bad Request",
            r#"{"__type":"AccessDeniedException","message":"not authorized"}"#,
            77,
            "AccessDeniedException",
        ),
        (
            "404 Not Found",
            "Not found",
            69,
            "not a Secrets Manager Agent response",
        ),
        ("200 OK", "{\"Name\":\"fake/s\"", 69, "is not a JSON object"),
    ];
    for (status, body, code, want) in rows {
        let fake = fake_agent(move |_| (*status, *body));
        let out = fetch_fake_s(&fake.url);
        assert_eq!(out.code(), Some(*code), "{status} {body}: {}", out.stderr);
        assert!(out.stderr.contains(want), "{status} {body}: {}", out.stderr);
        out.assert_stderr_has("'fake/s'");
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(!out.stderr.contains(TOKEN), "{}", out.stderr);
    }
}

#[test]
fn an_agent_that_is_not_there_is_69_naming_the_url() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = fetch_fake_s(&url);
    out.assert_code(69);
    out.assert_stderr_has(&url);
}

#[test]
fn bad_agent_settings() {
    let rows: &[(&[&str], &[(&str, &str)], i32, &str)] = &[
        (&["--agent=https://localhost:2773"], &[], 64, "--agent"),
        (&["--agent=localhost:2773"], &[], 64, "http://"),
        (
            &[],
            &[("SECRET_EXEC_AGENT", "ftp://x")],
            78,
            "SECRET_EXEC_AGENT",
        ),
        (&["--agent"], &[("AWS_TOKEN", "")], 78, "AWS_TOKEN"),
    ];
    for (args, env, code, want) in rows {
        let mut run = se().env_remove("AWS_TOKEN");
        for (k, v) in *env {
            run = run.env(k, v);
        }
        let out = run.args(*args).fetch_only("x").run();
        assert_eq!(out.code(), Some(*code), "{args:?} {env:?}: {}", out.stderr);
        out.assert_stderr_has(want);
    }
    let dir = TempDir::new("agent-missing-token");
    let out = through("http://127.0.0.1:9")
        .env(
            "AWS_TOKEN",
            format!("file://{}", dir.path().join("nope").display()),
        )
        .fetch_only("x")
        .run();
    out.assert_code(78);
    out.assert_stderr_has("file://");
}
