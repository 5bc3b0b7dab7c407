//! `--file VAR=REF` (sealed memfds on fixed descriptors) and `--from-env` (references in the
//! inherited environment resolved in place), end to end against moto.

use crate::faultsrv::{FaultServer, Reply};
use crate::memory::base64;
use crate::scan::{self, Stop};
use crate::support::*;

const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n";

fn read(dir: &TempDir, name: &str) -> Vec<u8> {
    std::fs::read(dir.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn sh(script: &str) -> [&str; 4] {
    ["--", "/bin/sh", "-c", script]
}

#[test]
fn pem_is_byte_exact_on_its_descriptor_and_its_path() {
    let name = unique("files/pem");
    moto().create(&name, PEM);
    let dir = TempDir::new("files-pem");
    let out = se()
        .env("OUT", dir.path())
        .args(["--file", &format!("TLS_KEY_FILE={name}")])
        .args(sh(
            "printf %s \"$TLS_KEY_FILE\"; cat <&3 >\"$OUT/fd\"; cat \"$TLS_KEY_FILE\" >\"$OUT/path\"; \
             cat /proc/self/fd/3 >\"$OUT/proc\"; cat \"$TLS_KEY_FILE\" >\"$OUT/again\"",
        ))
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout, "/dev/fd/3");
    // Read through the descriptor itself (from offset 0), and by re-opening the path twice.
    for f in ["fd", "path", "proc", "again"] {
        assert_eq!(read(&dir, f), PEM.as_bytes(), "{f}");
    }
}

#[test]
fn secret_binary_is_byte_exact() {
    let bytes: Vec<u8> = (0..=255u8).chain([0, 0, b'\n', 0xff]).collect();
    let name = unique("files/bin");
    moto().create_binary(&name, &base64(&bytes));
    let dir = TempDir::new("files-bin");
    let out = se()
        .env("OUT", dir.path())
        .args(["--file", &format!("KEYSTORE={name}")])
        .args(sh("cat \"$KEYSTORE\" >\"$OUT/ks\""))
        .run();
    out.assert_code(0);
    assert_eq!(read(&dir, "ks"), bytes);

    // The same secret in the environment is still refused (65), and a KEY into it is too.
    let out = se()
        .args(["--secret", &format!("KS={name}")])
        .args(sh("true"))
        .run();
    out.assert_code(65);
    let out = se()
        .args(["--file", &format!("KS={name}:k")])
        .args(sh("true"))
        .run();
    out.assert_code(65);
    out.assert_stderr_has("SecretBinary has no keys");
}

#[test]
fn files_follow_command_line_order_and_mix_with_secrets() {
    let name = unique("files/json");
    moto().create_json(
        &name,
        &serde_json::json!({"cert": "C\n", "key": "K", "user": "u"}),
    );
    let dir = TempDir::new("files-order");
    let out = se()
        .env("OUT", dir.path())
        .args(["--file", &format!("CERT={name}:cert")])
        .args(["--secret", &format!("USER={name}:user")])
        .args(["--file", &format!("KEY={name}:key")])
        .args(["--file", &format!("ALL={name}")])
        .args(sh(
            "echo \"$CERT $KEY $ALL $USER\"; cat <&3 >\"$OUT/3\"; cat <&4 >\"$OUT/4\"; cat <&5 >\"$OUT/5\"",
        ))
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout, "/dev/fd/3 /dev/fd/4 /dev/fd/5 u\n");
    assert_eq!(read(&dir, "3"), b"C\n");
    assert_eq!(read(&dir, "4"), b"K");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&read(&dir, "5")).unwrap()["user"],
        "u"
    );
}

#[test]
fn seals_refuse_writes_and_a_grandchild_inherits() {
    let name = unique("files/sealed");
    moto().create(&name, "sealed-value\n");
    let dir = TempDir::new("files-seal");
    // Appending, truncating and writing through the descriptor all fail; the content stays.
    let script = "(printf x >>\"$F\") 2>/dev/null && echo append-worked; \
                  (: >\"$F\") 2>/dev/null && echo truncate-worked; \
                  (printf x >&3) 2>/dev/null && echo write-worked; \
                  /bin/sh -c 'cat \"$F\"' >\"$OUT/grandchild\"; \
                  (cat <&3) >\"$OUT/subshell\"; \
                  echo done";
    let out = se()
        .env("OUT", dir.path())
        .args(["--file", &format!("F={name}")])
        .args(sh(script))
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout, "done\n", "a write got through the seals");
    assert_eq!(read(&dir, "grandchild"), b"sealed-value\n");
    assert_eq!(read(&dir, "subshell"), b"sealed-value\n");
}

#[test]
fn file_names_collide_as_variables_do() {
    let name = unique("files/collide");
    moto().create(&name, r#"{"a":"1","b":"2"}"#);
    let dir = TempDir::new("files-collide");
    let marker = dir.path().join("ran");
    let script = format!("touch {}", marker.display());
    let rows: Vec<(Vec<String>, Vec<(&str, &str)>, i32, &[&str])> = vec![
        (
            vec![
                "--secret".into(),
                format!("X={name}:a"),
                "--file".into(),
                format!("X={name}:b"),
            ],
            vec![],
            65,
            &["variable X would be set twice", "--secret", "--file"],
        ),
        (
            vec![
                "--file".into(),
                format!("X={name}:a"),
                "--file".into(),
                format!("X={name}:b"),
            ],
            vec![],
            65,
            &["variable X would be set twice", "by --file"],
        ),
        (
            vec![
                "--no-override".into(),
                "--file".into(),
                format!("HOME={name}:a"),
            ],
            vec![],
            65,
            &["HOME", "--no-override"],
        ),
    ];
    for (args, env, code, want) in rows {
        let mut run = se().args(&args);
        for (k, v) in env {
            run = run.env(k, v);
        }
        let out = run.args(["--", "/bin/sh", "-c", &script]).run();
        assert_eq!(out.code(), Some(code), "{args:?}: {}", out.stderr);
        for w in want {
            assert!(out.stderr.contains(w), "{args:?}: {}", out.stderr);
        }
        assert!(!marker.exists(), "{args:?}: the command ran");
    }
    // Without --no-override, a file path replaces an inherited variable of its name.
    let out = se()
        .env("CONF", "/etc/old")
        .args(["--file", &format!("CONF={name}:a")])
        .args(sh("printf %s \"$CONF\""))
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout, "/dev/fd/3");
}

#[test]
fn bad_input_is_64() {
    let rows: &[&[&str]] = &[
        &["--file", "NOEQUALS"],
        &["--file", "1X=prod/tls"],
        &["--file", "X*=prod/tls"],
        &["--file", "X=ssm:/app/prod/"],
        &["--from-env", "-i"],
    ];
    for args in rows {
        let out = se().args(*args).args(["--", "/bin/true"]).run();
        assert_eq!(out.code(), Some(64), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
}

/// With `LISTEN_PID` naming secret-exec itself, the socket-activation range stays where it is
/// and the files come after it.
#[test]
fn files_come_after_a_socket_activation_range() {
    let name = unique("files/listen");
    moto().create(&name, "after-listen");
    let run = se();
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.env_clear();
    for (k, v) in run.envs() {
        cmd.env(k, v);
    }
    // The shell opens fd 3 and 4 (as systemd would pass sockets), then execs secret-exec with
    // LISTEN_PID set to its own PID, which exec keeps.
    let script = format!(
        "exec 3</etc/hostname 4</etc/passwd; LISTEN_PID=$$ LISTEN_FDS=2 exec {BIN} \
         --file F={name} -- /bin/sh -c 'printf \"%s \" \"$F\"; readlink /proc/self/fd/3 /proc/self/fd/4 | tr \"\\n\" \" \"; cat \"$F\"'"
    );
    let out = cmd.args(["-c", &script]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "/dev/fd/5 /etc/hostname /etc/passwd after-listen");

    // Not ours: the variables are passed on, the range is not kept, files start at 3.
    let script = format!(
        "exec 3</etc/hostname; LISTEN_PID=1 LISTEN_FDS=1 exec {BIN} --file F={name} -- \
         /bin/sh -c 'printf %s \"$F\"'"
    );
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.env_clear();
    for (k, v) in run.envs() {
        cmd.env(k, v);
    }
    let out = cmd.args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "/dev/fd/3");
}

#[test]
fn dry_run_lists_files_and_references_never_content() {
    let name = unique("files/dry");
    moto().create(&name, PEM);
    let other = unique("files/dry-ref");
    let v = {
        let r = moto().call(
            "CreateSecret",
            &serde_json::json!({"Name": other, "SecretString": r#"{"password":"dry-ref-canary"}"#}),
        );
        r["VersionId"].as_str().unwrap().to_string()
    };
    let out = se()
        .env("DB_PASSWORD", format!("secretsmanager:{other}:password"))
        .args(["--from-env", "--file", &format!("TLS={name}"), "--dry-run"])
        .run();
    out.assert_code(0);
    out.assert_no_leak(&["MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "dry-ref-canary"]);
    let rows = out.dry_run_rows();
    let bytes = PEM.len().to_string();
    assert_eq!(rows[0][0], "TLS");
    assert_eq!(rows[0][1], name);
    assert_eq!(rows[0][6..], ["file", bytes.as_str()]);
    assert_eq!(
        rows[1],
        [
            "DB_PASSWORD",
            &other,
            "password",
            &v,
            "AWSCURRENT",
            "no",
            "from-env",
            "-"
        ]
    );
    assert_eq!(rows.len(), 2, "{}", out.stdout);
}

#[test]
fn iam_policy_names_files_and_references() {
    let ref_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/ref-AbCdEf";
    let out = se()
        .env("A", format!("{ref_arn}:password::"))
        .env("B", "secretsmanager:prod/short")
        .env("C", "not-a-reference arn:aws:secretsmanager:x")
        .args([
            "--from-env",
            "--file",
            "K=prod/tls:key",
            "--print-iam-policy",
        ])
        .run();
    out.assert_code(0);
    for want in [
        "secret:prod/tls-??????",
        "secret:prod/short-??????",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/ref-??????",
    ] {
        assert!(out.stdout.contains(want), "{want}: {}", out.stdout);
    }
    // Without a reference in the environment there is nothing to grant: refused, not an
    // empty policy IAM would reject.
    let out = se().args(["--from-env", "--print-iam-policy"]).run();
    out.assert_code(64);
}

// ---- --from-env ----

/// Runs `--from-env` with `env` added, the child printing its environment.
fn from_env(env: &[(&str, &str)], extra: &[&str]) -> Out {
    let mut run = se();
    for (k, v) in env {
        run = run.env(k, v);
    }
    run.args(["--from-env"])
        .args(extra)
        .args(["--", "/usr/bin/env", "-0"])
        .run()
}

#[test]
fn references_are_replaced_in_place_in_every_form() {
    let m = moto();
    let name = unique("fromenv/db");
    let arn = m.create(&name, r#"{"password":"pw-1","user":"admin"}"#);
    let v2 = m.put(&name, r#"{"password":"pw-2","user":"admin"}"#);
    let plain = unique("fromenv/plain");
    let plain_arn = m.create(&plain, "plain-text-value");
    let inside = format!("see {arn}:password");
    let env: Vec<(&str, String)> = vec![
        ("ECS_FORM", format!("{arn}:password::")),
        ("ECS_PREVIOUS", format!("{arn}:password:AWSPREVIOUS:")),
        ("ECS_VERSION", format!("{arn}:password::{v2}")),
        ("BARE_ARN", plain_arn.clone()),
        ("SHORT", format!("secretsmanager:{name}:user")),
        (
            "SHORT_STAGE",
            format!("secretsmanager:{name}:password:AWSPREVIOUS"),
        ),
        ("SHORT_WHOLE", format!("secretsmanager:{plain}")),
        // Operator-named: never refused, lower case kept.
        ("NODE_OPTIONS", format!("secretsmanager:{name}:user")),
        ("lower_case", format!("secretsmanager:{name}:user")),
        // Not references: untouched.
        ("INSIDE", inside.clone()),
        ("S3", "arn:aws:s3:::bucket".into()),
        ("OTHER", "value".into()),
    ];
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // --no-override does not stop a reference from taking its own variable's place.
    let out = from_env(&pairs, &["--no-override"]);
    out.assert_ok_vars(&[
        ("ECS_FORM", "pw-2"),
        ("ECS_PREVIOUS", "pw-1"),
        ("ECS_VERSION", "pw-2"),
        ("BARE_ARN", "plain-text-value"),
        ("SHORT", "admin"),
        ("SHORT_STAGE", "pw-1"),
        ("SHORT_WHOLE", "plain-text-value"),
        ("NODE_OPTIONS", "admin"),
        ("lower_case", "admin"),
        ("INSIDE", &inside),
        ("S3", "arn:aws:s3:::bucket"),
        ("OTHER", "value"),
    ]);
    // Each name once: replaced, not added beside the reference.
    let names: Vec<String> = out.env0().into_iter().map(|(k, _)| k).collect();
    assert_eq!(names.iter().filter(|n| *n == "ECS_FORM").count(), 1);
    for (k, v) in out.env0() {
        assert!(
            k == "INSIDE" || !v.contains("secretsmanager:"),
            "the reference in {k} reached the child"
        );
    }
}

#[test]
fn a_failed_reference_stops_the_launch() {
    let m = moto();
    let name = unique("fromenv/ok");
    m.create(&name, r#"{"k":"v"}"#);
    let rows: Vec<(String, i32)> = vec![
        (format!("secretsmanager:{}", unique("fromenv/missing")), 66),
        (format!("secretsmanager:{name}:nokey"), 65),
        (format!("secretsmanager:{name}::NOSUCHSTAGE"), 66),
        ("secretsmanager:".into(), 64),
        (
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:".into(),
            64,
        ),
    ];
    for (value, code) in rows {
        let out = from_env(
            &[
                ("GOOD", &format!("secretsmanager:{name}:k")),
                ("BAD", &value),
            ],
            &[],
        );
        assert_eq!(out.code(), Some(code), "{value}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{value}: the command ran");
        if code == 64 {
            assert!(
                out.stderr.contains("variable BAD "),
                "{value}: {}",
                out.stderr
            );
        }
    }
}

#[test]
fn without_references_the_environment_passes_unchanged() {
    let out = from_env(
        &[
            ("PLAIN", "x"),
            ("ARNISH", "prefix arn:aws:secretsmanager:a"),
        ],
        &["-v"],
    );
    out.assert_ok_vars(&[
        ("PLAIN", "x"),
        ("ARNISH", "prefix arn:aws:secretsmanager:a"),
    ]);
    assert!(
        out.stderr
            .contains("no inherited variable holds a reference"),
        "{}",
        out.stderr
    );
    // No AWS call was needed: with an endpoint that refuses connections it still runs.
    let out = se()
        .env(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", free_port()),
        )
        .args(["--from-env", "--", "/bin/true"])
        .run();
    out.assert_code(0);
}

/// References and `--secret`s share one plan: 100 references are 5 batch calls of 20, and a
/// secret both referenced and named by `--secret` is fetched once.
#[test]
fn a_hundred_references_are_batched() {
    let m = moto();
    let names: Vec<String> = (0..100)
        .map(|i| {
            let n = unique("fromenv/many");
            m.create(&n, &format!("value-{i}"));
            n
        })
        .collect();
    let srv = FaultServer::start(|_, _| Reply::Forward);
    let mut run = srv.se();
    for (i, n) in names.iter().enumerate() {
        run = run.env(&format!("REF_{i}"), format!("secretsmanager:{n}"));
    }
    // The same secret again, by --secret and by a second reference: no extra id.
    run = run.env("DUP", format!("secretsmanager:{}", names[0]));
    let out = run
        .args(["--from-env", "--secret", &format!("S={}", names[1])])
        .args(["--", "/usr/bin/env", "-0"])
        .run();
    out.assert_ok_vars(&[
        ("REF_0", "value-0"),
        ("REF_99", "value-99"),
        ("DUP", "value-0"),
        ("S", "value-1"),
    ]);
    assert_eq!(srv.count("BatchGetSecretValue"), 5);
    assert_eq!(srv.count("BatchGetSecretValue ids"), 100);
    assert_eq!(srv.count("GetSecretValue"), 0);
}

// ---- memory ----

/// At the execve that starts COMMAND, no copy of a `--file` value is left anywhere in the
/// process's memory: the value is in the memfd (kernel memory) and the environment holds only
/// its path. Control needles (an inherited variable, an argument) prove the scan read memory.
#[test]
fn at_execve_no_file_value_is_in_memory() {
    if !have_root("at_execve_no_file_value_is_in_memory") {
        return;
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = unique(&format!("f{t:x}")).replace('-', "");
    let whole = format!("-----BEGIN KEY-----\nFileWhole{n}Z\n-----END KEY-----\n");
    let member = format!("FileMember{n}Z");
    let binary = format!("FileBinary{n}Z").into_bytes();
    let m = moto();
    let (a, b, c) = (
        unique("files/mem-a"),
        unique("files/mem-b"),
        unique("files/mem-c"),
    );
    m.create(&a, &whole);
    m.create_json(&b, &serde_json::json!({"key": member, "other": "x"}));
    m.create_binary(&c, &base64(&binary));
    let (ctl_env, ctl_arg) = (format!("CtlEnv{n}Z"), format!("CtlArg{n}Z"));
    let dir = TempDir::new("files-mem");
    let mut cmd = se()
        .env("SE_TEST_CONTROL", &ctl_env)
        .env("OUT", dir.path())
        .args(["--file", &format!("A={a}"), "--file", &format!("B={b}:key")])
        .args(["--file", &format!("C={c}")])
        .args([
            "--",
            "/bin/sh",
            "-c",
            "cat \"$A\" \"$B\" \"$C\" >\"$OUT/all\"",
            "sh",
            &ctl_arg,
        ])
        .cmd;
    cmd.stdin(std::process::Stdio::null());
    let whole_probe = format!("FileWhole{n}Z");
    let probes: Vec<&[u8]> = vec![
        whole_probe.as_bytes(),
        member.as_bytes(),
        &binary,
        ctl_env.as_bytes(),
        ctl_arg.as_bytes(),
    ];
    let traced = scan::trace(cmd, Stop::Execve, &probes);
    assert_eq!(
        traced.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&traced.stderr)
    );
    let s = &traced.scan;
    assert!(s.bytes_scanned > 1 << 20, "{} bytes", s.bytes_scanned);
    for (what, i) in [("control env", 3), ("control arg", 4)] {
        assert!(
            s.hits[i].iter().any(|h| h.mapping == "[stack]"),
            "{what} not found on the stack: {:?}",
            s.hits[i]
        );
    }
    for (what, i) in [("whole PEM", 0), ("JSON member", 1), ("SecretBinary", 2)] {
        let at: Vec<&str> = s.hits[i].iter().map(|h| h.mapping.as_str()).collect();
        assert!(
            at.is_empty(),
            "{what}: {} copies in memory at execve: {at:?}",
            at.len()
        );
    }
    // The environment handed over holds the paths, and the child read every value intact.
    let paths: Vec<String> = s
        .env
        .iter()
        .filter(|e| ["A", "B", "C"].contains(&e.name().as_str()))
        .map(|e| String::from_utf8_lossy(&e.bytes).into_owned())
        .collect();
    assert_eq!(paths, ["A=/dev/fd/3", "B=/dev/fd/4", "C=/dev/fd/5"]);
    let mut want = whole.into_bytes();
    want.extend_from_slice(member.as_bytes());
    want.extend_from_slice(&binary);
    assert_eq!(read(&dir, "all"), want);
}
