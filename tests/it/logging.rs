//! What operators monitor: the User-Agent every AWS call carries (captured on a loopback proxy),
//! the JSON log lines (every stderr line one object, the error line included), timings at `-v`,
//! request ids and retries at `-vv`, the wire at `-vvv`, and the refusal of bad log settings.

use crate::faultsrv::{FaultServer, Reply};
use crate::support::*;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `event` vocabulary of docs/logging.md.
const EVENTS: &[&str] = &[
    "region",
    "supervise",
    "watch",
    "credentials",
    "fetch",
    "fallback",
    "attempt",
    "map",
    "override",
    "dry_run",
    "exec",
    "warning",
    "error",
];

fn seeded(stem: &str) -> String {
    let name = unique(stem);
    moto().create(&name, r#"{"user":"u","pass":"CanLogP4ss"}"#);
    name
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn is_rfc3339_utc(ts: &str) -> bool {
    // `d` stands for any ASCII digit; every other byte must match exactly.
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd.dddZ";
    ts.len() == SHAPE.len()
        && ts.bytes().zip(SHAPE).all(|(c, &want)| match want {
            b'd' => c.is_ascii_digit(),
            _ => c == want,
        })
}

/// Every stderr line parsed as one JSON object with the schema's fixed fields checked.
pub fn json_lines(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            let ts = v["ts"].as_str().unwrap_or("");
            assert!(is_rfc3339_utc(ts), "ts {ts:?}: {line}");
            let level = v["level"].as_str().unwrap_or("");
            assert!(
                ["error", "warn", "info", "debug", "trace"].contains(&level),
                "{line}"
            );
            let event = v["event"].as_str().unwrap_or("");
            assert!(EVENTS.contains(&event), "event {event:?}: {line}");
            assert!(v["message"].is_string(), "{line}");
            if let Some(d) = v.get("duration_ms") {
                assert!(d.as_f64().is_some_and(|d| d >= 0.0), "{line}");
            }
            v
        })
        .collect()
}

fn events(lines: &[serde_json::Value]) -> Vec<&str> {
    lines.iter().map(|v| v["event"].as_str().unwrap()).collect()
}

#[test]
fn every_aws_call_names_secret_exec_in_its_user_agent() {
    // 17 secrets, the fewest that are batched (`plan::MIN_BATCH`); the batch call is denied, so
    // both actions are seen: BatchGetSecretValue, then one GetSecretValue per secret.
    let specs: Vec<String> = (0..17)
        .map(|i| format!("S{i}_*={}", seeded("log/ua")))
        .collect();
    let srv = FaultServer::failing("BatchGetSecretValue", usize::MAX, Reply::Deny);
    let out = srv.se().secrets(&specs).args(["--", "/bin/true"]).run();
    out.assert_code(0);
    let seen = srv.seen();
    let actions: Vec<&str> = seen.iter().map(|s| s.action.as_str()).collect();
    assert!(actions.contains(&"BatchGetSecretValue"), "{actions:?}");
    assert_eq!(
        actions.iter().filter(|a| **a == "GetSecretValue").count(),
        17,
        "{actions:?}"
    );
    let product = format!("lib/secret-exec/{VERSION}");
    for s in &seen {
        assert!(s.user_agent.contains(&product), "{s:?}");
        assert!(s.x_amz_user_agent.contains(&product), "{s:?}");
    }
}

/// Runs `run` with what every JSON-log run here passes: `--log-format json`, `--secret name`
/// and a COMMAND that succeeds.
fn run_json(run: Run, name: &str) -> Out {
    run.args(["--log-format", "json", "--secret", name, "--", "/bin/true"])
        .run()
}

#[test]
fn json_success_has_ids_and_timings_for_each_stage() {
    let name = seeded("log/ok");
    let out = run_json(se().args(["-v"]), &name);
    out.assert_code(0);
    let lines = json_lines(&out.stderr);
    assert_eq!(
        events(&lines),
        ["region", "credentials", "fetch", "map", "exec"],
        "{}",
        out.stderr
    );
    for v in &lines {
        assert!(v["duration_ms"].is_number(), "{v}");
        assert_eq!(v["level"], "info", "{v}");
        // Request ids are -vv detail.
        assert!(v.get("request_id").is_none(), "{v}");
    }
    let fetch = &lines[2];
    assert_eq!(fetch["secret"], name.as_str());
    assert_eq!(fetch["region"], REGION);
    assert_eq!(fetch["stage"], "AWSCURRENT");
    assert_eq!(fetch["source"], "secretsmanager");
    assert_eq!(fetch["call"], "GetSecretValue");
    assert!(fetch["version_id"].as_str().is_some_and(|v| !v.is_empty()));
    assert_eq!(lines[3]["count"], 2);
}

/// Quiet or not, a failure in JSON ends with one `error` object carrying the exit code; the
/// format applies from the first argument on, so a usage error is JSON too.
#[test]
fn json_error_line_is_one_object_with_the_exit_code() {
    let name = seeded("log/err");
    let absent = unique("log/absent");
    let cases: Vec<(&str, Run, i32, Option<&str>)> = vec![
        (
            "not found",
            se().args(["--log-format=json"]).fetch_only(&absent),
            66,
            Some(absent.as_str()),
        ),
        (
            "usage error, format from the environment",
            se().env("SECRET_EXEC_LOG_FORMAT", "json").args([
                "--secrets",
                &name,
                "--",
                "/bin/true",
            ]),
            64,
            None,
        ),
        (
            "missing key",
            se().args(["--log-format", "json", "--secret", &format!("{name}:nokey")])
                .args(["--", "/bin/true"]),
            65,
            Some(name.as_str()),
        ),
        (
            "command not found",
            se().args(["--log-format", "json", "--secret", &name])
                .args(["--", "no-such-command-log"]),
            127,
            None,
        ),
    ];
    for (what, run, code, secret) in cases {
        let out = run.run();
        assert_eq!(out.code(), Some(code), "{what}: {}", out.stderr);
        let lines = json_lines(&out.stderr);
        assert_eq!(lines.len(), 1, "{what}: {}", out.stderr);
        let e = &lines[0];
        assert_eq!(e["event"], "error", "{what}");
        assert_eq!(e["level"], "error", "{what}");
        assert_eq!(e["exit_code"], code, "{what}");
        assert_eq!(e["secret"].as_str(), secret, "{what}: {e}");
        assert!(
            !e["message"].as_str().unwrap().starts_with("secret-exec:"),
            "{e}"
        );
    }
}

#[test]
fn bad_log_settings_are_refused() {
    let name = seeded("log/bad");
    let rows: Vec<(Run, i32, &str)> = vec![
        (
            se().args(["--log-format", "yaml"]).fetch_only(&name),
            64,
            "[possible values: text, json]",
        ),
        (
            se().env("SECRET_EXEC_LOG_FORMAT", "yaml").fetch_only(&name),
            78,
            "SECRET_EXEC_LOG_FORMAT='yaml'",
        ),
        (
            se().args(["-vvvv"]).fetch_only(&name),
            64,
            "-vvv is the most",
        ),
    ];
    for (run, code, want) in rows {
        let out = run.run();
        assert_eq!(out.code(), Some(code), "{}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        out.assert_stderr_has(want);
    }
}

/// The flag and the variable read the format the same way, in any case; only the variable
/// ignores surrounding spaces (a typed flag has none to forgive; see docs/logging.md).
#[test]
fn log_format_takes_any_case_from_the_flag_and_the_variable() {
    let absent = unique("log/case");
    let rows: Vec<(&str, Run)> = vec![
        ("flag JSON", se().args(["--log-format", "JSON"])),
        ("flag =Json", se().args(["--log-format=Json"])),
        (
            "variable ' JSON '",
            se().env("SECRET_EXEC_LOG_FORMAT", " JSON "),
        ),
    ];
    for (what, run) in rows {
        let out = run.fetch_only(&absent).run();
        assert_eq!(out.code(), Some(66), "{what}: {}", out.stderr);
        let lines = json_lines(&out.stderr);
        assert_eq!(lines.len(), 1, "{what}: {}", out.stderr);
        assert_eq!(lines[0]["exit_code"], 66, "{what}");
    }
    let out = se()
        .args(["--log-format", " json"])
        .fetch_only(&absent)
        .run();
    out.assert_code(64);
    out.assert_stderr_has("[possible values: text, json]");
}

/// `-v` says what happened and how long each stage took; `-vv` adds the credential source,
/// request ids and each attempt; `-vvv` adds the wire, without credentials or bodies.
#[test]
fn each_level_adds_what_the_table_says() {
    let name = seeded("log/levels");
    let run = |v: &str| {
        let out = se().args([v, "--secret", &name, "--", "/bin/true"]).run();
        out.assert_code(0);
        out.stderr
    };
    let (v1, v2, v3) = (run("-v"), run("-vv"), run("-vvv"));
    for want in [
        "credentials resolved (",
        &format!("GetSecretValue '{name}': version "),
        "mapped 1 secret(s) to 2 variables (",
        "total time before exec (",
    ] {
        assert!(v1.contains(want), "-v lacks {want:?}:\n{v1}");
    }
    for detail in ["[request id ", "credentials from ", "attempt 1: HTTP 200"] {
        assert!(!v1.contains(detail), "-v has {detail:?}:\n{v1}");
        assert!(v2.contains(detail), "-vv lacks {detail:?}:\n{v2}");
    }
    let wire = format!("POST {}/, User-Agent '", moto().endpoint);
    assert!(!v2.contains(&wire), "{v2}");
    assert!(v3.contains(&wire), "-vvv lacks the wire:\n{v3}");
    assert!(v3.contains(&format!("lib/secret-exec/{VERSION}")), "{v3}");
    for never in ["AWS4-HMAC-SHA256", "Signature=", "CanLogP4ss"] {
        assert!(!v3.contains(never), "-vvv shows {never:?}:\n{v3}");
    }
    assert!(v2.lines().count() > v1.lines().count());
    assert!(v3.lines().count() > v2.lines().count());
}

#[test]
fn each_retry_is_a_line_at_vv() {
    let name = seeded("log/retry");
    let srv = FaultServer::failing("GetSecretValue", 1, Reply::Throttle);
    let out = run_json(srv.se().args(["-vv"]), &name);
    out.assert_code(0);
    let attempts: Vec<(u64, String)> = json_lines(&out.stderr)
        .iter()
        .filter(|v| v["event"] == "attempt")
        .map(|v| {
            assert_eq!(v["call"], "GetSecretValue", "{v}");
            assert_eq!(v["level"], "debug", "{v}");
            (
                v["attempt"].as_u64().unwrap(),
                v["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(attempts.len(), 2, "{}", out.stderr);
    assert_eq!(attempts[0].0, 1);
    assert!(attempts[0].1.ends_with("HTTP 400"), "{attempts:?}");
    assert_eq!(attempts[1].0, 2);
    assert!(attempts[1].1.ends_with("HTTP 200"), "{attempts:?}");
}
