//! The launcher end to end — fetch from moto, flatten, exec — and its exit codes.

use crate::support::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;

const RDS_PASSWORD: &str = "Rds-Pa55word!canary-7c1f";

fn rds_json() -> String {
    serde_json::json!({
        "username": "admin",
        "password": RDS_PASSWORD,
        "engine": "mysql",
        "host": "db.example",
        "port": 3306,
        "dbInstanceIdentifier": "database-1"
    })
    .to_string()
}

#[test]
fn rds_secret_becomes_exact_variables() {
    let name = unique("core/rds");
    moto().create(&name, &rds_json());
    let out = se().run_env0(&name);
    out.assert_ok_vars(&[
        ("USERNAME", "admin"),
        ("PASSWORD", RDS_PASSWORD),
        ("ENGINE", "mysql"),
        ("HOST", "db.example"),
        ("PORT", "3306"),
        ("DBINSTANCEIDENTIFIER", "database-1"),
    ]);
    assert!(!out.stderr.contains(RDS_PASSWORD));
}

#[test]
fn plain_text_secret_is_named_after_last_segment() {
    let name = unique("core/plain");
    moto().create(&name, "just-a-token-4411");
    let var = default_var(&name);
    let out = se().run_env0(&name);
    out.assert_code(0);
    assert_eq!(out.var(&var).as_deref(), Some("just-a-token-4411"));
}

#[test]
fn secret_by_full_arn() {
    let name = unique("core/arn");
    let arn = moto().create(&name, r#"{"api_key":"k-by-arn"}"#);
    assert!(arn.starts_with("arn:aws:secretsmanager:"), "{arn}");
    let out = se().run_env0(&arn);
    out.assert_code(0);
    assert_eq!(out.var("API_KEY").as_deref(), Some("k-by-arn"));
}

#[test]
fn multi_line_value_is_intact() {
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8w\nggE7AgEAAkEAq7BFUpkGp3+LQmlQ==\n-----END PRIVATE KEY-----\n";
    let name = unique("core/pem");
    moto().create_json(&name, &serde_json::json!({"tls_key": pem}));
    let out = se().run_env0(&name);
    out.assert_code(0);
    assert_eq!(out.var("TLS_KEY").as_deref(), Some(pem));
}

#[test]
fn missing_secret_is_66() {
    let out = se().fetch_only(&unique("core/absent")).run();
    out.assert_code(66);
    assert!(out.stderr.starts_with("secret-exec: "), "{}", out.stderr);
    out.assert_stderr_has("core/absent");
    assert_eq!(out.stderr.trim_end().lines().count(), 1, "{}", out.stderr);
}

#[test]
fn deleted_secret_is_66() {
    let name = unique("core/deleted");
    moto().create(&name, "deleted-value-9911");
    moto().delete(&name);
    let out = se().fetch_only(&name).run();
    out.assert_code(66);
    out.assert_no_leak(&["deleted-value-9911"]);
}

#[test]
fn unreachable_endpoint_is_69_within_the_timeout() {
    // A port nobody listens on: connections are refused at once, every retry fails the same way.
    let port = free_port();
    let out = se()
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .args(["--timeout", "3s"])
        .fetch_only("core/anything")
        .run();
    out.assert_code(69);
    out.assert_stderr_has("core/anything");
}

#[test]
fn missing_command_is_127_and_non_executable_is_126() {
    let name = unique("core/cmd");
    let value = "cmd-test-value-5150";
    moto().create(&name, value);
    let out = se()
        .args(["--secret", &name, "--", "definitely-not-a-command-xyz"])
        .run();
    out.assert_code(127);
    out.assert_no_leak(&[value]);

    let dir = TempDir::new("noexec");
    let file = dir.path().join("script");
    std::fs::write(&file, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = se().args(["--secret", &name, "--"]).arg_path(&file).run();
    out.assert_code(126);
    out.assert_no_leak(&[value]);
}

#[test]
fn child_exit_status_passes_through() {
    let name = unique("core/status");
    moto().create(&name, "status-value");
    for code in [0, 1, 42, 255] {
        let out = run_sh(&name, &format!("exit {code}"));
        assert_eq!(out.code(), Some(code), "{}", out.stderr);
    }
}

#[test]
fn child_killed_by_sigterm_is_seen_as_killed() {
    let name = unique("core/sigterm");
    moto().create(&name, "sigterm-value");
    let out = run_sh(&name, "kill -TERM $$");
    assert_eq!(
        out.status.signal(),
        Some(15),
        "{:?} {}",
        out.status,
        out.stderr
    );
}

#[test]
fn child_keeps_our_pid() {
    let name = unique("core/pid");
    moto().create(&name, "pid-value");
    let out = run_sh(&name, "echo $$");
    out.assert_code(0);
    assert_eq!(out.stdout.trim(), out.pid.to_string());
}

#[test]
fn usage_errors_are_64_on_one_line() {
    let rows: &[&[&str]] = &[
        &["--", "/bin/true"],
        &["--secret", "1bad=x", "--", "/bin/true"],
        &["--secret", "x"],
        &["--no-such-flag"],
        &["--secret", "x", "--timeout", "forever", "--", "/bin/true"],
    ];
    for args in rows {
        let out = se().args(*args).run();
        assert_eq!(out.code(), Some(64), "{args:?}: {}", out.stderr);
        assert_eq!(
            out.stderr.trim_end().lines().count(),
            1,
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stderr.starts_with("secret-exec: "), "{}", out.stderr);
    }
}

#[test]
fn help_and_version_exit_zero() {
    let out = se().args(["--help"]).run();
    assert_eq!(out.code(), Some(0));
    assert!(out.stdout.contains("--secret"));
    assert!(out.stdout.contains("Exit codes"));
    let out = se().args(["--version"]).run();
    assert_eq!(out.code(), Some(0));
    assert!(out.stdout.starts_with("secret-exec "));
}

#[test]
fn no_region_is_78() {
    let out = se().env_remove("AWS_REGION").fetch_only("some/name").run();
    out.assert_code(78);
    out.assert_stderr_has("region");
}
