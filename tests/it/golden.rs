//! Golden files for the user-facing text: `--help`, the man page and the key error lines, so
//! any change to them is deliberate and shows in review. After an intended change, regenerate
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
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
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
    let cases: Vec<(&str, Run)> = vec![
        ("no --secret", se().args(["--", "/bin/true"])),
        (
            "bad SPEC",
            se().args(["--secret", "1bad=x", "--", "/bin/true"]),
        ),
        (
            "bad --timeout",
            se().args(["--timeout", "0", "--secret", "x", "--", "/bin/true"]),
        ),
        (
            "refused name",
            se().args(["--secret", "golden/refused", "--", "/bin/true"]),
        ),
        (
            "missing secret",
            se().args(["--secret", "golden/absent", "--", "/bin/true"]),
        ),
        (
            "no region",
            se().env_remove("AWS_REGION")
                .args(["--secret", "golden/ok", "--", "/bin/true"]),
        ),
        (
            "bad AWS_MAX_ATTEMPTS",
            se().env("AWS_MAX_ATTEMPTS", "0")
                .args(["--secret", "golden/ok", "--", "/bin/true"]),
        ),
        (
            "command not found",
            se().args(["--secret", "golden/ok", "--", "no-such-command-golden"]),
        ),
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
    golden("errors.txt", &text);
}
