//! Parameter Store against moto: every ID form (name, version, label, ARN, path), SecureString
//! decrypted, StringList as text, a path of 25 parameters over several pages, missing names and
//! paths, denial, and the shape of the calls (10 names per GetParameters, duplicates once).

use crate::faultsrv::{FaultServer, Reply};
use crate::support::*;

/// moto's fixed account id, as it appears in the ARNs it reports.
const ACCOUNT: &str = "123456789012";

fn env0(specs: &[&str]) -> Out {
    let mut args: Vec<&str> = Vec::new();
    for s in specs {
        args.extend(["--secret", s]);
    }
    args.extend(["--", "/usr/bin/env", "-0"]);
    se().args(args).run()
}

#[test]
fn every_single_parameter_form() {
    let m = moto();
    let base = format!("/{}", unique("params/forms"));
    let (plain, secure, list, versioned) = (
        format!("{base}/db/host"),
        format!("{base}/db/password"),
        format!("{base}/hosts"),
        format!("{base}/api-key"),
    );
    m.put_parameter(&plain, "String", "db.internal");
    m.put_parameter(&secure, "SecureString", "pw-s3cr3t");
    m.put_parameter(&list, "StringList", "a,b,c");
    assert_eq!(m.put_parameter(&versioned, "SecureString", "key-v1"), 1);
    assert_eq!(m.put_parameter(&versioned, "SecureString", "key-v2"), 2);
    m.ssm(
        "LabelParameterVersion",
        &serde_json::json!({"Name": versioned, "ParameterVersion": 1, "Labels": ["previous"]}),
    );
    let arn = format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{plain}");

    let out = env0(&[
        &format!("ssm:{plain}"),
        &format!("ssm:{secure}"),
        &format!("ssm:{list}"),
        &format!("ssm:{versioned}"),
        &format!("V1=ssm:{versioned}:1"),
        &format!("LABELLED=ssm:{versioned}:previous"),
        &format!("BY_ARN={arn}"),
        &format!("JSON_*=ssm:{secure}"),
    ]);
    out.assert_ok_vars(&[
        ("HOST", "db.internal"),
        ("PASSWORD", "pw-s3cr3t"),
        ("HOSTS", "a,b,c"),
        ("API_KEY", "key-v2"),
        ("V1", "key-v1"),
        ("LABELLED", "key-v1"),
        ("BY_ARN", "db.internal"),
        ("JSON_PASSWORD", "pw-s3cr3t"),
    ]);
    out.assert_no_leak(&[]);
    assert!(!out.stderr.contains("s3cr3t"), "{}", out.stderr);
}

#[test]
fn a_path_of_twenty_five_parameters_over_pages() {
    let m = moto();
    let base = format!("/{}", unique("params/path"));
    for i in 0..20 {
        m.put_parameter(&format!("{base}/svc/key{i:02}"), "String", &format!("v{i}"));
    }
    for i in 0..5 {
        m.put_parameter(
            &format!("{base}/svc/nested/deep/s{i}"),
            "SecureString",
            &format!("secure-{i}"),
        );
    }
    m.put_parameter(&format!("{base}/other"), "String", "not below");
    let srv = FaultServer::start(|_, _| Reply::Forward);
    let out = srv
        .se()
        .args([
            "--secret",
            &format!("ssm:{base}/svc/"),
            "--secret",
            &format!("APP_*=ssm:{base}/svc/nested/"),
            "--",
            "/usr/bin/env",
            "-0",
        ])
        .run();
    out.assert_code(0);
    out.assert_vars_each((0..20).map(|i| (format!("KEY{i:02}"), format!("v{i}"))));
    out.assert_vars_each((0..5).flat_map(|i| {
        let v = format!("secure-{i}");
        [
            (format!("NESTED_DEEP_S{i}"), v.clone()),
            (format!("APP_DEEP_S{i}"), v),
        ]
    }));
    assert_eq!(out.var("OTHER"), None);
    // 25 parameters at 10 a page is 3 pages; the nested path's 5 are one more call.
    assert_eq!(srv.count("GetParametersByPath"), 4);
}

#[test]
fn missing_parameters_are_66_and_each_is_named() {
    let m = moto();
    let base = format!("/{}", unique("params/missing"));
    m.put_parameter(&format!("{base}/there"), "String", "x");
    let (a, b) = (format!("{base}/gone-a"), format!("{base}/gone-b"));
    let out = env0(&[
        &format!("ssm:{base}/there"),
        &format!("ssm:{a}"),
        &format!("ssm:{b}"),
    ]);
    out.assert_code(66);
    assert!(out.stdout.is_empty(), "the command must not start");
    out.assert_stderr_has(&format!("'ssm:{a}'"));
    out.assert_stderr_has(&format!("'ssm:{b}'"));
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);

    // A version that does not exist is missing too.
    let out = env0(&[&format!("ssm:{base}/there:7")]);
    out.assert_code(66);
    out.assert_stderr_has(":7");

    let out = env0(&[&format!("ssm:{base}/empty/")]);
    out.assert_code(66);
    out.assert_stderr_has("no parameters under");
}

#[test]
fn denied_is_77_and_bad_ids_are_64() {
    let srv = FaultServer::start(|_, _| Reply::Deny);
    for spec in ["ssm:/app/db", "ssm:/app/"] {
        let out = srv.se().fetch_only(spec).run();
        assert_eq!(out.code(), Some(77), "{spec}: {}", out.stderr);
        out.assert_stderr_has("ssm:GetParameters");
    }
    for spec in ["ssm:/a/b:key:AWSPREVIOUS", "ssm:/a b", "ssm:/app/:3"] {
        let out = env0(&[spec]);
        assert_eq!(out.code(), Some(64), "{spec}: {}", out.stderr);
    }
}

#[test]
fn ten_names_per_call_and_duplicates_once() {
    let m = moto();
    let base = format!("/{}", unique("params/calls"));
    let mut specs: Vec<String> = Vec::new();
    for i in 0..12 {
        let name = format!("{base}/p{i:02}");
        m.put_parameter(&name, "String", &format!("value-{i}"));
        specs.push(format!("ssm:{name}"));
    }
    // The same parameter again, under an explicit name: fetched once.
    specs.push(format!("AGAIN=ssm:{base}/p00"));
    let srv = FaultServer::start(|_, _| Reply::Forward);
    let mut args: Vec<String> = Vec::new();
    for s in &specs {
        args.extend(["--secret".to_string(), s.clone()]);
    }
    let out = srv
        .se()
        .args(&args)
        .args(["--", "/usr/bin/env", "-0"])
        .run();
    out.assert_ok_vars(&[
        ("P00", "value-0"),
        ("P11", "value-11"),
        ("AGAIN", "value-0"),
    ]);
    assert_eq!(srv.count("GetParameters"), 2);
    assert_eq!(srv.count("GetParameters ids"), 12);
    // Parameter Store calls are attributed like Secrets Manager's: the same client set-up.
    let product = format!("lib/secret-exec/{}", env!("CARGO_PKG_VERSION"));
    for seen in srv.seen() {
        assert!(seen.user_agent.contains(&product), "{seen:?}");
    }
}

#[test]
fn secrets_and_parameters_in_one_run() {
    let m = moto();
    let secret = unique("params/mixed-secret");
    m.create(&secret, r#"{"user":"admin"}"#);
    let param = format!("/{}/token", unique("params/mixed"));
    m.put_parameter(&param, "SecureString", "tok");
    let out = env0(&[&secret, &format!("ssm:{param}")]);
    out.assert_ok_vars(&[("USER", "admin"), ("TOKEN", "tok")]);
}

#[test]
fn content_derived_parameter_names_pass_the_policy() {
    let m = moto();
    let base = format!("/{}", unique("params/policy"));
    m.put_parameter(&format!("{base}/ld_preload"), "String", "/tmp/x.so");
    let out = env0(&[&format!("ssm:{base}/")]);
    out.assert_code(65);
    out.assert_stderr_has("LD_PRELOAD");
}

#[test]
fn iam_policy_for_parameters() {
    let out = se()
        .args([
            "--print-iam-policy",
            "--region",
            "eu-west-1",
            "--secret",
            "ssm:/app/prod/db",
            "--secret",
            "ssm:/app/prod/",
        ])
        .run();
    out.assert_code(0);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let text = doc.to_string();
    for want in [
        "\"ssm:GetParameters\"",
        "arn:aws:ssm:eu-west-1:*:parameter/app/prod/db",
        "\"ssm:GetParametersByPath\"",
        "arn:aws:ssm:eu-west-1:*:parameter/app/prod\"",
        "arn:aws:ssm:eu-west-1:*:parameter/app/prod/*",
        "ssm.eu-west-1.amazonaws.com",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    assert!(!text.contains("secretsmanager"), "{text}");
}
