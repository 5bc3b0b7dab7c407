//! Golden files for the user-facing text: `--help`, the man page, the key error lines and the
//! JSON log schema, so any change to them is deliberate and shows in review. After an intended change, regenerate
//! with `UPDATE_GOLDEN=1 cargo test --test it golden` and commit the files under tests/golden/.

use crate::support::*;
use clap::CommandFactory;
use std::path::PathBuf;

/// Compares `got` with tests/golden/`name`, or rewrites the file when UPDATE_GOLDEN=1.
fn golden(name: &str, got: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with UPDATE_GOLDEN=1 cargo test --test it golden",
            path.display()
        )
    });
    assert!(
        got == want,
        "{name} differs from {}; if the change is intended, run \
         UPDATE_GOLDEN=1 cargo test --test it golden and commit it\n--- want\n{want}\n--- got\n{got}",
        path.display()
    );
}

#[test]
fn help_text() {
    let out = se().args(["--help"]).run();
    out.assert_code(0);
    golden("help.txt", &out.stdout);
}

#[test]
fn man_page() {
    let mut page = Vec::new();
    clap_mangen::Man::new(secret_exec::cli::Cli::command())
        .render(&mut page)
        .unwrap();
    golden("secret-exec.1", &String::from_utf8(page).unwrap());
}

/// One error line per exit class that a run can reach deterministically, as the operator sees it.
#[test]
fn error_lines() {
    moto().create("golden/refused", r#"{"path":"/tmp"}"#);
    moto().create("golden/ok", "ok-value");
    moto().create("golden/twokeys", r#"{"a-b":"1","a_b":"2"}"#);
    let cases: Vec<(&str, Run)> = vec![
        ("no --secret", se().args(["--", "/bin/true"])),
        ("bad SPEC", se().fetch_only("1bad=x")),
        (
            "bad --timeout",
            se().args(["--timeout", "0"]).fetch_only("x"),
        ),
        ("refused name", se().fetch_only("golden/refused")),
        ("missing secret", se().fetch_only("golden/absent")),
        (
            "no region",
            se().env_remove("AWS_REGION").fetch_only("golden/ok"),
        ),
        (
            "bad AWS_MAX_ATTEMPTS",
            se().env("AWS_MAX_ATTEMPTS", "0").fetch_only("golden/ok"),
        ),
        (
            "command not found",
            se().args(["--secret", "golden/ok", "--", "no-such-command-golden"]),
        ),
        (
            "misspelt flag",
            se().args(["--secrets", "golden/ok", "--", "/bin/true"]),
        ),
        (
            "bad --dry-run format",
            se().args(["--secret", "golden/ok", "--dry-run=xml"]),
        ),
        (
            "--dry-run with a bare COMMAND",
            se().args(["--secret", "golden/ok", "--dry-run", "./app"]),
        ),
        (
            "collision inside one secret",
            se().fetch_only("golden/twokeys"),
        ),
        (
            "bad --endpoint-url",
            se().args(["--endpoint-url", "http://"])
                .fetch_only("golden/ok"),
        ),
        (
            "bad AWS_ENDPOINT_URL_SECRETS_MANAGER",
            se().env("AWS_ENDPOINT_URL_SECRETS_MANAGER", "localhost:4566")
                .fetch_only("golden/ok"),
        ),
        (
            "bad --log-format",
            se().args(["--log-format", "yaml"]).fetch_only("golden/ok"),
        ),
        (
            "bad SECRET_EXEC_LOG_FORMAT",
            se().env("SECRET_EXEC_LOG_FORMAT", "yaml")
                .fetch_only("golden/ok"),
        ),
        ("-vvvv", se().args(["-vvvv"]).fetch_only("golden/ok")),
    ];
    let mut text = String::new();
    for (what, run) in cases {
        let out = run.run();
        text.push_str(&format!(
            "# {what}: exit {}\n{}",
            out.code().map_or("signal".into(), |c| c.to_string()),
            out.stderr
        ));
    }
    golden("errors.txt", &stable(&text));
}

/// The moto port changes per run; the golden files show it as PORT.
fn stable(text: &str) -> String {
    text.replace(&moto().endpoint, "http://127.0.0.1:PORT")
}

/// Replaces the value after `"key":` (a string or a number) with `with`.
fn mask(line: &str, key: &str, with: &str) -> String {
    let pat = format!("\"{key}\":");
    let Some(at) = line.find(&pat) else {
        return line.to_string();
    };
    let start = at + pat.len();
    let rest = &line[start..];
    let end = if let Some(body) = rest.strip_prefix('"') {
        body.find('"').map_or(rest.len(), |i| i + 2)
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    format!("{}{with}{}", &line[..start], &rest[end..])
}

/// The JSON log schema as lines really come out (docs/logging.md): a success at `-vv` and three
/// failures, with what varies per run (times, ids, ports) masked.
#[test]
fn log_json_schema() {
    moto().create("golden/log", r#"{"user":"u"}"#);
    moto().create("golden/log-collide", r#"{"a-b":"1","a_b":"2"}"#);
    let cases: Vec<(&str, Run)> = vec![
        (
            "success at -vv",
            se().args(["-vv", "--log-format", "json"])
                .fetch_only("golden/log"),
        ),
        (
            "not found at -v",
            se().args(["-v", "--log-format", "json"])
                .fetch_only("golden/log-absent"),
        ),
        (
            "collision, quiet",
            se().env("SECRET_EXEC_LOG_FORMAT", "json")
                .fetch_only("golden/log-collide"),
        ),
        (
            "usage error",
            se().args([
                "--log-format=json",
                "--secret",
                "golden/log",
                "--dry-run",
                "./app",
            ]),
        ),
    ];
    let mut text = String::new();
    for (what, run) in cases {
        let out = run.run();
        text.push_str(&format!(
            "# {what}: exit {}\n",
            out.code().map_or("signal".into(), |c| c.to_string())
        ));
        for line in out.stderr.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect(line);
            let mut line = line.to_string();
            for key in ["version_id", "request_id"] {
                if let Some(id) = v[key].as_str() {
                    line = line.replace(id, &format!("<{key}>"));
                }
            }
            for (key, with) in [
                ("ts", "\"<ts>\""),
                ("duration_ms", "<ms>"),
                ("message", "\"<message>\""),
            ] {
                // Messages of -v lines vary with times; the error line's message is kept.
                if key == "message" && v["event"] == "error" {
                    continue;
                }
                line = mask(&line, key, with);
            }
            text.push_str(&line);
            text.push('\n');
        }
    }
    golden("log-json.txt", &stable(&text));
}
