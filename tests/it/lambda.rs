//! AWS Lambda: the layer's `packaging/lambda/secret-exec-wrapper` in front of the real runtime
//! interface client (PyPI `awslambdaric`, pinned in tests/requirements.txt) against a Runtime
//! API played on loopback (no real component can play it), and `SECRET_EXEC_SECRETS`, the
//! environment form of whole-secret SPECs, outside Lambda.

use crate::fakehttp::{FakeHttp, Reply, Req, reply};
use crate::support::{
    BIN, HANG, TempDir, moto, se, seed, unique, venv_imports, venv_python, wait_exit,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const REQUEST_ID: &str = "5e1a6a2c-test-0001";

/// The test venv's python, which has `awslambdaric` (scripts/venv installs it).
fn python() -> PathBuf {
    let p = venv_python();
    assert!(
        venv_imports("awslambdaric"),
        "{} cannot import awslambdaric; run scripts/venv",
        p.display()
    );
    p
}

/// A layer as Lambda mounts it at /opt: the wrapper at the root, the binary at bin/secret-exec.
/// Beside it, a task root whose handler compares each variable it is told about (in the event)
/// with its environment and answers only true/false, and writes a marker when it is imported.
struct Function {
    dir: TempDir,
}

const HANDLER: &str = r#"
import json, os
open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "imported"), "w").close()

def fn(event, context):
    seen = {k: os.environ.get(k) == v for k, v in event["expect"].items()}
    return {"seen": seen, "next_wrapper": os.environ.get("NEXT_WRAPPER_RAN")}
"#;

impl Function {
    fn new() -> Function {
        let dir = TempDir::new("lambda");
        let opt = dir.path().join("opt");
        std::fs::create_dir_all(opt.join("bin")).unwrap();
        let wrapper =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/lambda/secret-exec-wrapper");
        std::fs::copy(&wrapper, opt.join("secret-exec-wrapper")).unwrap();
        std::os::unix::fs::symlink(BIN, opt.join("bin/secret-exec")).unwrap();
        let task = dir.path().join("task");
        std::fs::create_dir_all(&task).unwrap();
        std::fs::write(task.join("handler.py"), HANDLER).unwrap();
        Function { dir }
    }
    fn task(&self) -> PathBuf {
        self.dir.path().join("task")
    }
    fn imported(&self) -> bool {
        self.task().join("imported").exists()
    }

    /// Starts `AWS_LAMBDA_EXEC_WRAPPER python -m awslambdaric handler.fn` the way a managed
    /// runtime does, against `api`, with the hermetic test environment plus `env`; stdout and
    /// stderr go to files.
    fn start(&self, api: &FakeHttp, python: &Path, env: &[(&str, &str)]) -> Child {
        let mut cmd = Command::new(self.dir.path().join("opt/secret-exec-wrapper"));
        let base = se();
        cmd.env_clear().envs(base.envs());
        let task = self.task();
        cmd.env(
            "AWS_LAMBDA_RUNTIME_API",
            api.endpoint.trim_start_matches("http://"),
        )
        .env("LAMBDA_TASK_ROOT", &task)
        .env("PYTHONPATH", &task)
        .env("_HANDLER", "handler.fn")
        .envs(env.iter().copied())
        .arg(python)
        .args(["-m", "awslambdaric", "handler.fn"])
        .current_dir(&task)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(self.dir.path().join("stdout")).unwrap())
        .stderr(std::fs::File::create(self.dir.path().join("stderr")).unwrap());
        cmd.spawn().expect("start the wrapper")
    }
    fn output(&self) -> (String, String) {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        (read("stdout"), read("stderr"))
    }
}

/// The Runtime API: the first `/next` hands out `event`; a later one is held (as Lambda freezes
/// an idle runtime); every post is accepted and recorded.
fn runtime_api(event: String) -> FakeHttp {
    let nexts = AtomicUsize::new(0);
    FakeHttp::start(move |req: &Req, _| {
        if req.method != "GET" || req.path != NEXT {
            return Some(reply("202 Accepted", r#"{"status":"OK"}"#));
        }
        if nexts.fetch_add(1, Ordering::SeqCst) > 0 {
            std::thread::sleep(HANG);
        }
        let deadline = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
            + 60_000;
        let mut r: Reply = reply("200 OK", event.clone());
        r.headers = vec![
            ("Content-Type", "application/json".into()),
            ("Lambda-Runtime-Aws-Request-Id", REQUEST_ID.into()),
            ("Lambda-Runtime-Deadline-Ms", deadline.to_string()),
            (
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:123456789012:function:test".into(),
            ),
        ];
        Some(r)
    })
}

/// Waits, probing the recorded requests, until one matches `pred`; the runtime exiting first
/// or `HANG` passing fails the test.
fn wait_for(api: &FakeHttp, child: &mut Child, what: &str, pred: impl Fn(&Req) -> bool) {
    let start = Instant::now();
    while !api.requests().iter().any(&pred) {
        if let Some(s) = child.try_wait().unwrap() {
            panic!("the runtime exited ({s}) before {what}");
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            panic!("no {what} within {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Everything the runtime sent the Runtime API, heads and bodies, as one text.
fn all_sent(api: &FakeHttp) -> String {
    api.requests()
        .iter()
        .map(|r| format!("{}{}", r.head, r.body))
        .collect()
}

#[test]
fn the_handler_sees_resolved_values_and_nothing_posted_holds_one() {
    let python = python();
    let m = moto();
    let password = format!("pw-{}", unique("lambda"));
    let token = format!("tok-{}", unique("lambda"));
    let db = seed(
        "lambda/db",
        &format!(r#"{{"password":"{password}","user":"app"}}"#),
    );
    let arn = m.create(
        &unique("lambda/ecs"),
        &format!(r#"{{"password":"{password}"}}"#),
    );
    let whole = seed("lambda/whole", &format!(r#"{{"API_TOKEN":"{token}"}}"#));
    let event = serde_json::json!({"expect": {
        "DB_PASSWORD": password, "ECS_PASSWORD": password, "API_TOKEN": token, "OTHER": "plain",
    }})
    .to_string();
    let api = runtime_api(event);
    let f = Function::new();
    let ecs_ref = format!("{arn}:password::");
    let mut child = f.start(
        &api,
        &python,
        &[
            ("DB_PASSWORD", &format!("secretsmanager:{db}:password")),
            ("ECS_PASSWORD", &ecs_ref),
            ("SECRET_EXEC_SECRETS", &whole),
            ("OTHER", "plain"),
        ],
    );
    let response = format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/response");
    wait_for(&api, &mut child, "the invocation's response", |r| {
        r.method == "POST" && r.path == response
    });
    let _ = child.kill();
    let _ = child.wait();

    let reqs = api.requests();
    let posted = reqs.iter().find(|r| r.path == response).unwrap();
    let body: serde_json::Value = serde_json::from_str(&posted.body).expect("a JSON response");
    assert_eq!(
        body["seen"],
        serde_json::json!({"DB_PASSWORD": true, "ECS_PASSWORD": true, "API_TOKEN": true, "OTHER": true}),
        "{body}"
    );
    assert!(reqs.iter().all(|r| !r.path.ends_with("/error")), "{reqs:?}");
    let (stdout, stderr) = f.output();
    for text in [all_sent(&api), stdout, stderr] {
        assert!(
            !text.contains(&password) && !text.contains(&token),
            "a value leaked: {text}"
        );
    }
}

#[test]
fn another_layers_wrapper_runs_after_the_values_are_in_place() {
    let python = python();
    let password = format!("pw-{}", unique("lambda"));
    let db = seed("lambda/chain", &format!(r#"{{"password":"{password}"}}"#));
    let event = serde_json::json!({"expect": {"DB_PASSWORD": password}}).to_string();
    let api = runtime_api(event);
    let f = Function::new();
    // The vendor wrapper sees the resolved value (it records whether it did) and execs the
    // runtime with its arguments intact.
    let next = f.dir.path().join("opt/vendor-wrapper");
    std::fs::write(
        &next,
        "#!/bin/sh\n[ \"$DB_PASSWORD\" = \"$EXPECT\" ] && NEXT_WRAPPER_RAN=resolved || NEXT_WRAPPER_RAN=unresolved\nexport NEXT_WRAPPER_RAN\nexec \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&next, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut child = f.start(
        &api,
        &python,
        &[
            ("DB_PASSWORD", &format!("secretsmanager:{db}:password")),
            ("EXPECT", &password),
            ("SECRET_EXEC_NEXT_WRAPPER", next.to_str().unwrap()),
        ],
    );
    let response = format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/response");
    wait_for(&api, &mut child, "the invocation's response", |r| {
        r.path == response
    });
    let _ = child.kill();
    let _ = child.wait();
    let reqs = api.requests();
    let posted = reqs.iter().find(|r| r.path == response).unwrap();
    let body: serde_json::Value = serde_json::from_str(&posted.body).unwrap();
    assert_eq!(body["seen"]["DB_PASSWORD"], true, "{body}");
    assert_eq!(body["next_wrapper"], "resolved", "{body}");
}

#[test]
fn a_missing_secret_fails_init_and_the_handler_never_runs() {
    let python = python();
    let api = runtime_api("{}".into());
    let f = Function::new();
    let missing = unique("lambda/missing");
    let mut child = f.start(
        &api,
        &python,
        &[("DB_PASSWORD", &format!("secretsmanager:{missing}:password"))],
    );
    let status = wait_exit(&mut child, HANG, || "the failing INIT hung".into());
    let (stdout, stderr) = f.output();
    assert_eq!(status.code(), Some(66), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line for CloudWatch: {stderr}");
    assert!(
        lines[0].starts_with("secret-exec: ") && lines[0].contains(&missing),
        "{stderr}"
    );
    assert_eq!(stdout, "");
    // The runtime never started: no request to the Runtime API, the handler never imported.
    assert!(api.requests().is_empty(), "{:?}", api.requests());
    assert!(!f.imported());
}

// ---- SECRET_EXEC_SECRETS outside Lambda ----

#[test]
fn secret_exec_secrets_fetches_whole_secrets_after_the_flags() {
    let a = seed("specenv/a", r#"{"A_ONE":"1"}"#);
    let b = seed("specenv/b", r#"{"B_TWO":"2"}"#);
    let c = seed("specenv/c", r#"{"k":"kv"}"#);
    let out = se()
        .env("SECRET_EXEC_SECRETS", format!("\t{b}\n  K={c}:k  P_*={a} "))
        .args(["--secret", &a, "--", "/usr/bin/env", "-0"])
        .run();
    out.assert_ok_vars(&[
        ("A_ONE", "1"),
        ("B_TWO", "2"),
        ("K", "kv"),
        ("P_A_ONE", "1"),
    ]);
}

#[test]
fn secret_exec_secrets_alone_is_enough_and_a_bad_spec_stops_the_launch() {
    let a = seed("specenv/alone", r#"{"ALONE":"yes"}"#);
    let out = se()
        .env("SECRET_EXEC_SECRETS", &a)
        .args(["--", "/usr/bin/env", "-0"])
        .run();
    out.assert_ok_vars(&[("ALONE", "yes")]);

    let out = se()
        .env("SECRET_EXEC_SECRETS", format!("{a} 1BAD={a}"))
        .args(["--", "/bin/sh", "-c", "echo ran"])
        .run();
    out.assert_code(64);
    out.assert_one_clean_line();
    out.assert_stderr_has("'1BAD=");
    out.assert_stderr_has("SECRET_EXEC_SECRETS");
    assert_eq!(out.stdout, "");
}
