//! The mapping contract end to end against moto (SPEC forms, naming, policy, limits, --dry-run).

use crate::support::*;
use secret_exec::deliver::environ::Limits;

const ENV0: [&str; 2] = ["/usr/bin/env", "-0"];

/// Runs `secret-exec <args> -- env -0` and insists it succeeded.
fn env_of(run: Run, args: &[&str]) -> Out {
    let out = run.args(args).args(["--"]).args(ENV0).run();
    assert_eq!(out.code(), Some(0), "{args:?}: {}", out.stderr);
    out
}

/// Runs `secret-exec <args> -- /bin/true` and insists it failed with 65 on one clean line.
fn refused(run: Run, args: &[&str]) -> Out {
    let out = run.args(args).args(["--", "/bin/true"]).run();
    assert_eq!(out.code(), Some(65), "{args:?}: {}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
    assert!(out.stderr.starts_with("secret-exec: "), "{}", out.stderr);
    assert!(!out.stderr.contains("E2BIG"), "{}", out.stderr);
    out
}

fn assert_mentions(out: &Out, parts: &[&str]) {
    for p in parts {
        assert!(out.stderr.contains(p), "stderr lacks {p:?}: {}", out.stderr);
    }
}

/// Creates a secret and returns (name, ARN, version id).
fn create(stem: &str, value: &str) -> (String, String, String) {
    let name = unique(stem);
    let r = moto().call(
        "CreateSecret",
        &serde_json::json!({"Name": name, "SecretString": value}),
    );
    let arn = r["ARN"].as_str().expect("ARN").to_string();
    let version = r["VersionId"].as_str().expect("VersionId").to_string();
    (name, arn, version)
}

fn json(v: serde_json::Value) -> String {
    v.to_string()
}

const OLD_PW: &str = "old-pw-canary-81f3";
const NEW_PW: &str = "new-pw-canary-2b9e";

/// A secret with an AWSPREVIOUS version: (name, ARN, previous version id, current version id).
fn rotated(stem: &str) -> (String, String, String, String) {
    let (name, arn, old) = create(stem, &json(serde_json::json!({"password": OLD_PW})));
    let new = moto().put(&name, &json(serde_json::json!({"password": NEW_PW})));
    (name, arn, old, new)
}

#[test]
fn stage_and_version_select_the_right_value() {
    let (name, _, old, new) = rotated("map/rotated");
    let rows: &[(String, &str, &str)] = &[
        (name.clone(), "PASSWORD", NEW_PW),
        (format!("{name}::AWSCURRENT"), "PASSWORD", NEW_PW),
        (format!("{name}::AWSPREVIOUS"), "PASSWORD", OLD_PW),
        (format!("{name}:::{old}"), "PASSWORD", OLD_PW),
        (format!("{name}:::{new}"), "PASSWORD", NEW_PW),
        (format!("{name}:password:AWSPREVIOUS"), "PASSWORD", OLD_PW),
        (format!("P={name}:password:AWSPREVIOUS:{old}"), "P", OLD_PW),
        (format!("P={name}:password:AWSCURRENT:{new}"), "P", NEW_PW),
    ];
    for (spec, var, want) in rows {
        let out = env_of(se(), &["--secret", spec]);
        assert_eq!(out.var(var).as_deref(), Some(*want), "{spec}");
        assert!(!out.stderr.contains(OLD_PW) && !out.stderr.contains(NEW_PW));
    }
}

#[test]
fn stage_and_version_that_disagree_are_not_found() {
    let (name, _, old, _) = rotated("map/disagree");
    let spec = format!("P={name}:password:AWSCURRENT:{old}");
    let out = se().fetch_only(&spec).run();
    out.assert_code(66);
    assert_mentions(&out, &[&name]);
    out.assert_no_leak(&[OLD_PW, NEW_PW]);
}

#[test]
fn arn_with_key_and_stage() {
    let (_, arn, old, _) = rotated("map/arn");
    // The ECS valueFrom form, trailing empty VERSION_ID included.
    let out = env_of(se(), &["--secret", &format!("{arn}:password:AWSPREVIOUS:")]);
    assert_eq!(out.var("PASSWORD").as_deref(), Some(OLD_PW));
    let out = env_of(se(), &["--secret", &format!("DB_PW={arn}:password::{old}")]);
    assert_eq!(out.var("DB_PW").as_deref(), Some(OLD_PW));
    let out = env_of(se(), &["--secret", &format!("DB_*={arn}")]);
    assert_eq!(out.var("DB_PASSWORD").as_deref(), Some(NEW_PW));
}

const NESTED: &str = r#"{"db":{"replica":{"host":"r.example","port":5432}},"hosts":["a.example","b.example"],"a/b":{"c~d":"escaped"}}"#;

#[test]
fn json_pointer_into_objects_and_arrays() {
    let (name, ..) = create("map/pointer", NESTED);
    let rows: &[(String, &str, &str)] = &[
        (format!("{name}:/db/replica/host"), "HOST", "r.example"),
        (format!("{name}:/db/replica/port"), "PORT", "5432"),
        (format!("H={name}:/hosts/1"), "H", "b.example"),
        (
            format!("{name}:/hosts"),
            "HOSTS",
            r#"["a.example","b.example"]"#,
        ),
        (
            format!("{name}:/db/replica"),
            "REPLICA",
            r#"{"host":"r.example","port":5432}"#,
        ),
        (format!("E={name}:/a~1b/c~0d"), "E", "escaped"),
        (format!("R_*={name}:/db/replica"), "R_HOST", "r.example"),
        (format!("R_*={name}:/db/replica"), "R_PORT", "5432"),
    ];
    for (spec, var, want) in rows {
        let out = env_of(se(), &["--secret", spec]);
        assert_eq!(out.var(var).as_deref(), Some(*want), "{spec}");
    }
    for missing in ["/hosts/2", "/db/nope", "/hosts/01"] {
        let out = refused(se(), &["--secret", &format!("X={name}:{missing}")]);
        assert_mentions(&out, &[missing, &name, "does not exist"]);
    }
}

const TYPED: &str = r#"{"user":"admin","ratio":0.10,"big":1e6,"on":true,"off":false,"none":null,"list":[1, "two"],"multi":"line1\nline2\n","replica":{"host":"r","port":3306},"9lives":"cat","api-key.v2":"k"}"#;

#[test]
fn every_target_form_and_value_type() {
    let (name, ..) = create("map/forms", TYPED);
    // Bare REF: every key, flattened.
    let out = env_of(se(), &["--secret", &name]);
    let want = [
        ("USER", "admin"),
        ("RATIO", "0.10"),
        ("BIG", "1e6"),
        ("ON", "true"),
        ("OFF", "false"),
        ("NONE", ""),
        ("LIST", r#"[1,"two"]"#),
        ("MULTI", "line1\nline2\n"),
        ("REPLICA_HOST", "r"),
        ("REPLICA_PORT", "3306"),
        ("_9LIVES", "cat"),
        ("API_KEY_V2", "k"),
    ];
    out.assert_vars(&want);
    // PREFIX*=: the same names, prefixed.
    let out = env_of(se(), &["--secret", &format!("APP_*={name}")]);
    for (k, v) in want {
        let k = format!("APP_{}", k.trim_start_matches('_'));
        assert_eq!(out.var(&k).as_deref(), Some(v), "prefix: {k}");
    }
    // Empty prefix: exactly the bare names.
    let out = env_of(se(), &["-i", "--secret", &format!("*={name}")]);
    let mut got: Vec<String> = out.env0().into_iter().map(|(k, _)| k).collect();
    let mut names: Vec<String> = want.iter().map(|(k, _)| k.to_string()).collect();
    got.sort();
    names.sort();
    assert_eq!(got, names);
    // VAR= without KEY: the whole SecretString; with KEY: that value.
    let out = env_of(
        se(),
        &[
            "--secret",
            &format!("WHOLE={name}"),
            "--secret",
            &format!("R={name}:replica"),
            "--secret",
            &format!("N={name}:none"),
        ],
    );
    assert_eq!(out.var("WHOLE").as_deref(), Some(TYPED));
    assert_eq!(out.var("R").as_deref(), Some(r#"{"host":"r","port":3306}"#));
    assert_eq!(out.var("N").as_deref(), Some(""));
}

#[test]
fn plain_text_secret_and_explicit_target() {
    let (name, ..) = create("map/plain-tok", "plain-token-canary-55");
    let last = default_var(&name);
    let out = env_of(se(), &["--secret", &name, "--secret", &format!("T={name}")]);
    assert_eq!(out.var(&last).as_deref(), Some("plain-token-canary-55"));
    assert_eq!(out.var("T").as_deref(), Some("plain-token-canary-55"));
    let out = refused(se(), &["--secret", &format!("{name}:key")]);
    assert_mentions(&out, &["not JSON", &name]);
    out.assert_no_leak(&["plain-token-canary-55"]);
}

#[test]
fn several_secrets_combine() {
    let (a, ..) = create("map/multi-a", r#"{"db_user":"u1","db_pass":"p1"}"#);
    let (_, b_arn, _) = create("map/multi-b", r#"{"api_token":"t2"}"#);
    let (c, ..) = create("map/multi-c", "c3-plain");
    let out = env_of(
        se(),
        &[
            "--secret",
            &a,
            "--secret",
            &b_arn,
            "--secret",
            &format!("C={c}"),
            "--secret",
            &format!("U={a}:db_user"),
        ],
    );
    out.assert_vars(&[
        ("DB_USER", "u1"),
        ("DB_PASS", "p1"),
        ("API_TOKEN", "t2"),
        ("C", "c3-plain"),
        ("U", "u1"),
    ]);
}

#[test]
fn keep_case_keeps_case() {
    let (name, ..) = create("map/case", r#"{"dbName":"x","api-Key":"y"}"#);
    let out = env_of(se(), &["--keep-case", "--secret", &name]);
    assert_eq!(out.var("dbName").as_deref(), Some("x"));
    assert_eq!(out.var("api_Key").as_deref(), Some("y"));
    assert_eq!(out.var("DBNAME"), None);
    let out = env_of(se(), &["--secret", &name]);
    assert_eq!(out.var("DBNAME").as_deref(), Some("x"));
    assert_eq!(out.var("API_KEY").as_deref(), Some("y"));
}

#[test]
fn missing_key_names_the_key_and_the_secret() {
    let (name, ..) = create("map/missing", r#"{"password":"pw-canary-missing-1"}"#);
    for spec in [
        format!("{name}:passwrd"),
        format!("P={name}:passwrd"),
        format!("P_*={name}:passwrd"),
    ] {
        let out = refused(se(), &["--secret", &spec]);
        assert_mentions(&out, &["key 'passwrd'", &name, "does not exist"]);
        out.assert_no_leak(&["pw-canary-missing-1"]);
    }
}

#[test]
fn refused_names_one_per_family() {
    // (family, JSON key, variable name)
    let rows = [
        ("loader", "LD_PRELOAD", "LD_PRELOAD"),
        ("loader", "dyld_insert_libraries", "DYLD_INSERT_LIBRARIES"),
        ("glibc", "GCONV_PATH", "GCONV_PATH"),
        ("glibc", "glibc.tunables", "GLIBC_TUNABLES"),
        ("glibc", "resolv_host_conf", "RESOLV_HOST_CONF"),
        ("shell", "path", "PATH"),
        ("shell", "BASH_ENV", "BASH_ENV"),
        ("shell", "BASH_FUNC_ls%%", "BASH_FUNC_LS__"),
        ("interpreter", "node_options", "NODE_OPTIONS"),
        ("interpreter", "PYTHONPATH", "PYTHONPATH"),
        ("interpreter", "JAVA_TOOL_OPTIONS", "JAVA_TOOL_OPTIONS"),
        ("proxy", "https_proxy", "HTTPS_PROXY"),
        ("CA", "SSL_CERT_FILE", "SSL_CERT_FILE"),
        (
            "CA",
            "node_tls_reject_unauthorized",
            "NODE_TLS_REJECT_UNAUTHORIZED",
        ),
        ("AWS", "aws_access_key_id", "AWS_ACCESS_KEY_ID"),
        ("ours", "secret_exec_timeout", "SECRET_EXEC_TIMEOUT"),
    ];
    let value = "refused-value-canary-3c4d";
    for (family, key, var) in rows {
        let (name, ..) = create("map/refused", &json(serde_json::json!({ key: value })));
        let out = refused(se(), &["--secret", &name]);
        for want in [
            &format!("refused variable name {var}"),
            &name,
            "--allow-name",
        ] {
            assert!(out.stderr.contains(want), "{family}: {}", out.stderr);
        }
        out.assert_no_leak(&[value]);
        // Key-derived names are content too.
        let out = refused(se(), &["--secret", &format!("{name}:{key}")]);
        assert!(out.stderr.contains(var), "{family}: {}", out.stderr);
    }
    // A secret's own name is content when it names the variable.
    let pathlike = format!("{}/PATH", unique("map/dir"));
    moto().create(&pathlike, "/evil");
    let out = refused(se(), &["--secret", &pathlike]);
    assert_mentions(&out, &["refused variable name"]);
    // A prefix given by the operator does not launder content-derived names.
    let (name, ..) = create("map/awsprefix", r#"{"region":"x"}"#);
    let out = refused(se(), &["--secret", &format!("AWS_*={name}")]);
    assert_mentions(&out, &["AWS_REGION"]);
}

#[test]
fn allow_name_and_explicit_target_let_a_refused_name_through() {
    let (name, ..) = create(
        "map/allow",
        r#"{"node_options":"--max-old-space-size=64","LD_PRELOAD":"x.so"}"#,
    );
    // One allowed name is not enough: the other one is still refused.
    let out = refused(se(), &["--allow-name", "NODE_OPTIONS", "--secret", &name]);
    assert_mentions(&out, &["LD_PRELOAD"]);
    let out = env_of(
        se(),
        &[
            "--allow-name",
            "NODE_OPTIONS",
            "--allow-name",
            "LD_PRELOAD",
            "--secret",
            &format!("{name}:node_options"),
        ],
    );
    assert_eq!(
        out.var("NODE_OPTIONS").as_deref(),
        Some("--max-old-space-size=64")
    );
    // An operator's explicit VAR= is trusted as it is.
    let out = env_of(
        se(),
        &["--secret", &format!("NODE_OPTIONS={name}:node_options")],
    );
    assert_eq!(
        out.var("NODE_OPTIONS").as_deref(),
        Some("--max-old-space-size=64")
    );
}

#[test]
fn every_collision_kind_names_both_sources() {
    let (a, ..) = create("map/coll-a", r#"{"user":"ua","token":"ta"}"#);
    let (b, ..) = create("map/coll-b", r#"{"user":"ub"}"#);
    // Two secrets.
    let out = refused(se(), &["--secret", &a, "--secret", &b]);
    assert_mentions(
        &out,
        &[
            "USER",
            &format!("--secret '{a}' (key '/user')"),
            &format!("--secret '{b}' (key '/user')"),
        ],
    );
    // Flatten vs an explicit target.
    let out = refused(
        se(),
        &["--secret", &a, "--secret", &format!("TOKEN={b}:user")],
    );
    assert_mentions(
        &out,
        &[
            "TOKEN",
            &format!("--secret '{a}' (key '/token')"),
            &format!("--secret 'TOKEN={b}:user'"),
        ],
    );
    // Two keys that sanitise to one name.
    let (c, ..) = create("map/coll-c", r#"{"db-host":"x","db.host":"y"}"#);
    let out = refused(se(), &["--secret", &c]);
    assert_mentions(&out, &["DB_HOST", "(key '/db-host')", "(key '/db.host')"]);
    // Nested flatten against a flat key.
    let (d, ..) = create("map/coll-d", r#"{"a_b":"flat","a":{"b":"nested"}}"#);
    let out = refused(se(), &["--secret", &d]);
    assert_mentions(&out, &["A_B", "(key '/a_b')", "(key '/a/b')"]);
    // Case differences collide once upper-cased, not with --keep-case.
    let (e, ..) = create("map/coll-e", r#"{"user":"x","USER":"y"}"#);
    let out = refused(se(), &["--secret", &e]);
    assert_mentions(&out, &["USER", "(key '/user')", "(key '/USER')"]);
    env_of(se(), &["--keep-case", "--secret", &e]);
    // A duplicate JSON key: two values for one name.
    let (f, ..) = create(
        "map/coll-f",
        r#"{"pw":"first-dup-canary","pw":"second-dup-canary"}"#,
    );
    for spec in [f.clone(), format!("P={f}:pw")] {
        let out = refused(se(), &["--secret", &spec]);
        assert_mentions(&out, &[&f, "pw' appears more than once"]);
        out.assert_no_leak(&["first-dup-canary", "second-dup-canary"]);
    }
}

#[test]
fn inherited_variables_are_overridden_and_logged_by_name() {
    let value = "secret-host-canary-7e";
    let (name, ..) = create("map/override", &json(serde_json::json!({"host": value})));
    let out = se()
        .env("HOST", "inherited-host")
        .args(["-v", "--secret", &name, "--"])
        .args(ENV0)
        .run();
    out.assert_code(0);
    assert_eq!(out.var("HOST").as_deref(), Some(value));
    assert_eq!(out.env0().iter().filter(|(k, _)| k == "HOST").count(), 1);
    out.assert_stderr_has("HOST overrides an inherited variable");
    assert!(!out.stderr.contains(value), "{}", out.stderr);

    let out = refused(
        se().env("HOST", "inherited-host"),
        &["--no-override", "--secret", &name],
    );
    assert_mentions(&out, &["variable HOST", &name, "--no-override"]);
    out.assert_no_leak(&[value]);
    // Without the inherited variable, --no-override has nothing to refuse.
    let out = env_of(se(), &["--no-override", "--secret", &name]);
    assert_eq!(out.var("HOST").as_deref(), Some(value));
}

#[test]
fn ignore_environment_and_unset_behave_like_env() {
    let (name, ..) = create("map/env", r#"{"k":"v"}"#);
    let out = env_of(
        se().env("KEEP", "1").env("DROP", "2"),
        &["-u", "DROP", "--secret", &name],
    );
    assert_eq!(out.var("KEEP").as_deref(), Some("1"));
    assert_eq!(out.var("DROP"), None);
    assert_eq!(out.var("K").as_deref(), Some("v"));
    // -u of a name that is not set is fine, as in env(1).
    env_of(se(), &["-u", "NOT_SET_ANYWHERE", "--secret", &name]);

    let out = env_of(se().env("KEEP", "1"), &["-i", "--secret", &name]);
    assert_eq!(out.env0(), [("K".to_string(), "v".to_string())]);
    // With -i, --no-override has nothing to collide with.
    let out = env_of(
        se().env("K", "inherited"),
        &["-i", "--no-override", "--secret", &name],
    );
    assert_eq!(out.env0(), [("K".to_string(), "v".to_string())]);
    // -u frees the name for --no-override.
    let out = env_of(
        se().env("K", "inherited"),
        &["-u", "K", "--no-override", "--secret", &name],
    );
    assert_eq!(out.var("K").as_deref(), Some("v"));
}

#[test]
fn nul_byte_is_refused_naming_the_variable() {
    let (name, ..) = create("map/nul", r#"{"ok":"fine","bad":"nul-canary\u0000tail"}"#);
    let out = refused(se(), &["--secret", &name]);
    assert_mentions(&out, &["variable BAD", &name, "NUL"]);
    out.assert_no_leak(&["nul-canary", "fine"]);
    let (plain, ..) = create("map/nulplain", "raw\u{0}nul-canary");
    let out = refused(se(), &["--secret", &format!("RAW={plain}")]);
    assert_mentions(&out, &["variable RAW", &plain, "NUL"]);
}

#[test]
fn secret_binary_points_to_file_delivery() {
    let name = unique("map/binary");
    // "binary-canary" in base64.
    moto().create_binary(&name, "YmluYXJ5LWNhbmFyeQ==");
    for spec in [name.clone(), format!("B={name}")] {
        let out = refused(se(), &["--secret", &spec]);
        assert_mentions(&out, &[&name, "SecretBinary", "file delivery"]);
        out.assert_no_leak(&["binary-canary", "YmluYXJ5LWNhbmFyeQ"]);
    }
}

#[test]
fn dry_run_prints_provenance_and_never_a_value() {
    let (rds, _, rds_v) = create(
        "map/dry-rds",
        r#"{"username":"dry-user-canary","password":"dry-pass-canary","port":31415926535}"#,
    );
    let (name, _, old, _) = rotated("map/dry-rot");
    let values = [
        "dry-user-canary",
        "dry-pass-canary",
        "31415926535",
        OLD_PW,
        NEW_PW,
    ];
    let args = [
        "--secret".to_string(),
        rds.clone(),
        "--secret".into(),
        format!("OLD={name}:password:AWSPREVIOUS"),
        "--secret".into(),
        format!("V={name}:::{old}"),
        "-vv".into(),
    ];
    let out = se()
        .env("USERNAME", "someone")
        .args(&args)
        .args(["--dry-run"])
        .run();
    out.assert_code(0);
    out.assert_no_leak(&values);
    let rows = out.dry_run_rows();
    let want: [[&str; 8]; 5] = [
        [
            "USERNAME",
            &rds,
            "/username",
            &rds_v,
            "AWSCURRENT",
            "yes",
            "secret",
            "-",
        ],
        [
            "PASSWORD",
            &rds,
            "/password",
            &rds_v,
            "AWSCURRENT",
            "no",
            "secret",
            "-",
        ],
        [
            "PORT",
            &rds,
            "/port",
            &rds_v,
            "AWSCURRENT",
            "no",
            "secret",
            "-",
        ],
        [
            "OLD",
            &name,
            "password",
            &old,
            "AWSPREVIOUS",
            "no",
            "secret",
            "-",
        ],
        ["V", &name, "-", &old, "AWSPREVIOUS", "no", "secret", "-"],
    ];
    assert_eq!(rows.len(), want.len(), "{}", out.stdout);
    for (row, want) in rows.iter().zip(want) {
        assert_eq!(row.as_slice(), want.as_slice());
    }

    let out = se()
        .env("USERNAME", "someone")
        .args(&args)
        .args(["--dry-run=json"])
        .run();
    out.assert_code(0);
    out.assert_no_leak(&values);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    let items = v.as_array().expect("an array");
    assert_eq!(items.len(), want.len());
    for (item, want) in items.iter().zip(want) {
        assert_eq!(item["name"], want[0]);
        assert_eq!(item["secret"], want[1]);
        if want[2] == "-" {
            assert!(item["key"].is_null());
        } else {
            assert_eq!(item["key"], want[2]);
        }
        assert_eq!(item["version_id"], want[3]);
        assert_eq!(item["stage"], want[4]);
        assert_eq!(item["overrides"], want[5] == "yes");
    }
    assert_eq!(items[3]["explicit"], true);
    assert_eq!(items[0]["explicit"], false);
}

#[test]
fn dry_run_refuses_what_a_real_run_would() {
    let (name, ..) = create("map/dry-refuse", r#"{"LD_PRELOAD":"dry-refused-canary"}"#);
    let out = se().args(["--secret", &name, "--dry-run"]).run();
    out.assert_code(65);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    out.assert_no_leak(&["dry-refused-canary"]);
}

/// A value of `len` bytes that is easy to spot in output.
fn big(len: usize) -> String {
    "big-canary-".chars().cycle().take(len).collect()
}

#[test]
fn a_variable_over_the_per_string_limit_is_refused_by_name() {
    let limits = Limits::current();
    // NAME=value with its NUL: "BIG=" is 4 bytes, so this is exactly one byte over.
    let over = big(limits.max_string - 4);
    let (name, ..) = create("map/oversize", &json(serde_json::json!({ "big": over })));
    let out = refused(se(), &["--secret", &name]);
    assert_mentions(
        &out,
        &[
            "variable BIG",
            &name,
            &format!("{} bytes", limits.max_string + 1),
        ],
    );
    assert!(!out.stderr.contains("big-canary-big"), "{}", out.stderr);
    let out = se().args(["--secret", &name, "--dry-run"]).run();
    out.assert_code(65);
    assert_mentions(&out, &["variable BIG"]);
    // One byte less is exactly at the limit, and the child gets it whole.
    let at = big(limits.max_string - 5);
    let (name, ..) = create("map/atsize", &json(serde_json::json!({ "big": at })));
    let out = run_sh(&name, "printf %s \"$BIG\" | wc -c");
    out.assert_code(0);
    assert_eq!(out.stdout.trim(), (limits.max_string - 5).to_string());
}

#[test]
fn an_environment_over_the_total_limit_is_refused_naming_the_largest_variable() {
    // secret-exec inherits this process's stack limit, so it computes the same total.
    let limits = Limits::current();
    assert!(
        limits.max_total >= 512 << 10,
        "this test needs ulimit -s of at least 2 MiB, not {limits:?}"
    );
    // Inherited padding leaves 150 kB: room for one ~90 kB secret, not for two.
    let padding = limits.max_total - 150_000;
    let chunk = 100_000;
    let run = || {
        let mut r = se();
        for i in 0..padding.div_ceil(chunk) {
            let len = chunk.min(padding - i * chunk);
            r = r.env(&format!("PAD{i}"), "p".repeat(len));
        }
        r
    };
    let (a, ..) = create("map/total-a", &json(serde_json::json!({"a": big(90_000)})));
    let (b, ..) = create("map/total-b", &json(serde_json::json!({"bb": big(95_000)})));
    // One secret fits.
    let out = run().fetch_only(&a).run();
    out.assert_code(0);
    // Two push the whole environment over what the kernel takes.
    let out = refused(run(), &["--secret", &a, "--secret", &b]);
    assert_mentions(
        &out,
        &[
            "the largest injected variable is BB (95000 bytes",
            &b,
            &format!("over the {} bytes the kernel accepts", limits.max_total),
        ],
    );
    assert!(!out.stderr.contains("big-canary-big"), "{}", out.stderr);
}

#[test]
fn dry_run_keeps_one_line_per_variable_whatever_the_key() {
    let (name, ..) = create(
        "map/dry-keys",
        r#"{"a\nb":"v1-canary","tab\there":"v2-canary","esc\u001b[2J":"v3-canary"}"#,
    );
    let out = se().args(["--secret", &name, "--dry-run"]).run();
    out.assert_code(0);
    out.assert_no_leak(&["v1-canary", "v2-canary", "v3-canary"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    assert!(!out.stdout.contains('\u{1b}'));
    for (line, (var, key)) in lines[1..].iter().zip([
        ("A_B", r"/a\nb"),
        ("TAB_HERE", r"/tab\there"),
        ("ESC__2J", r"/esc\u{1b}[2J"),
    ]) {
        assert_eq!(
            line.split('\t').take(3).collect::<Vec<_>>(),
            [var, &name, key]
        );
    }
}

/// `--dry-run json` (a space) is the JSON format, never text with `json` taken as COMMAND; a
/// COMMAND after `--` is checked and its 126/127 predicted, and the dry run still exits 0.
#[test]
fn dry_run_json_with_a_space_and_a_predicted_command() {
    let name = unique("map/dry-cmd");
    moto().create(&name, r#"{"user":"u"}"#);
    let dir = TempDir::new("dry-cmd");
    let plain = dir.path().join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    let plain = plain.display().to_string();

    let out = se().args(["--secret", &name, "--dry-run", "json"]).run();
    out.assert_code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON, not text");
    assert_eq!(v[0]["name"], "USER");

    let rows: &[(&str, &str, Option<i32>)] = &[
        ("sh", "/bin/sh", None),
        ("no-such-command-dry", "", Some(127)),
        ("/nonexistent/app", "", Some(127)),
        (&plain, "", Some(126)),
    ];
    for (command, path, exit) in rows {
        let out = se()
            .env("PATH", "/bin:/usr/bin")
            .args(["--secret", &name, "--dry-run", "json", "--", command, "arg"])
            .run();
        assert_eq!(out.code(), Some(0), "{command}: {}", out.stderr);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
        assert_eq!(v["variables"][0]["name"], "USER");
        let c = &v["command"];
        assert_eq!(c["name"], *command);
        assert_eq!(c["would_start"], exit.is_none(), "{c}");
        assert_eq!(c["exit_code"].as_i64(), exit.map(i64::from), "{c}");
        if exit.is_none() {
            assert_eq!(c["path"], *path);
        }

        let out = se()
            .env("PATH", "/bin:/usr/bin")
            .args(["--secret", &name, "--dry-run", "--", command])
            .run();
        assert_eq!(out.code(), Some(0), "{command}: {}", out.stderr);
        let last = out.stdout.lines().last().unwrap_or("");
        let want = match exit {
            None => format!("# COMMAND {command}: would run {path}"),
            Some(code) => format!("# COMMAND {command}: would not start, exit {code}: "),
        };
        assert!(last.starts_with(&want), "{command}: {last}");
    }

    // A bare word after --dry-run is a format or an error, never a silent COMMAND.
    let out = se().args(["--secret", &name, "--dry-run", "./app"]).run();
    out.assert_code(64);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    out.assert_stderr_has("--dry-run -- COMMAND");
}
