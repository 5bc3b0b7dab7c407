//! Packaging checks that run as tests — `--print-iam-policy` output as a user gets it
//! (valid JSON, every secret named, no AWS call), and the committed example policy kept in step
//! with what the binary prints.

use crate::support::*;

/// A run that cannot reach AWS: no credentials, and an endpoint nobody listens on.
fn offline() -> Run {
    se().env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", free_port()),
        )
}

fn resources(doc: &serde_json::Value, action: &str) -> Vec<String> {
    let s = doc["Statement"]
        .as_array()
        .expect("Statement is a list")
        .iter()
        .find(|s| s["Action"] == action)
        .unwrap_or_else(|| panic!("no {action} statement in {doc}"));
    match &s["Resource"] {
        serde_json::Value::String(r) => vec![r.clone()],
        serde_json::Value::Array(a) => a.iter().map(|r| r.as_str().unwrap().into()).collect(),
        other => panic!("Resource is {other}"),
    }
}

#[test]
fn iam_policy_is_json_naming_each_secret_without_calling_aws() {
    let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shared/api-AbCdEf";
    let out = offline()
        .args([
            "--print-iam-policy",
            "--region",
            "us-east-1",
            "--secret",
            "prod/db",
            "--secret",
            "TOKEN=prod/token:value:AWSPREVIOUS",
            "--secret",
            arn,
        ])
        .run();
    out.assert_code(0);
    assert_eq!(out.stderr, "");
    let doc: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert_eq!(doc["Version"], "2012-10-17");
    assert_eq!(
        resources(&doc, "secretsmanager:GetSecretValue"),
        [
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shared/api-??????",
            "arn:aws:secretsmanager:us-east-1:*:secret:prod/db-??????",
            "arn:aws:secretsmanager:us-east-1:*:secret:prod/token-??????",
        ]
    );
    // prod/db is the only AWSCURRENT read in us-east-1: the run never batches.
    assert!(
        !out.stdout.contains("BatchGetSecretValue"),
        "{}",
        out.stdout
    );
    assert_eq!(
        resources(&doc, "kms:Decrypt"),
        [
            "arn:aws:kms:eu-west-1:123456789012:key/*",
            "arn:aws:kms:us-east-1:*:key/*",
        ]
    );
}

#[test]
fn iam_policy_grants_batch_when_the_run_batches() {
    // 17 AWSCURRENT reads in one region: the fewest the run batches (`plan::MIN_BATCH`).
    let names: Vec<String> = (0..17).map(|i| format!("a/s{i:02}")).collect();
    let mut run = offline().args(["--print-iam-policy"]);
    for n in &names {
        run = run.args(["-s", n]);
    }
    let out = run.run();
    out.assert_code(0);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    // The harness's AWS_REGION is the region the run would use.
    let want: Vec<String> = names
        .iter()
        .map(|n| format!("arn:aws:secretsmanager:{REGION}:*:secret:{n}-??????"))
        .collect();
    assert_eq!(resources(&doc, "secretsmanager:GetSecretValue"), want);
    assert_eq!(resources(&doc, "secretsmanager:BatchGetSecretValue"), ["*"]);
    // Two would be read one by one: no batch permission.
    let out = offline()
        .args(["--print-iam-policy", "-s", "a/one", "-s", "a/two"])
        .run();
    out.assert_code(0);
    assert!(
        !out.stdout.contains("BatchGetSecretValue"),
        "{}",
        out.stdout
    );
}

#[test]
fn iam_policy_refuses_a_bad_spec() {
    let out = offline()
        .args(["--print-iam-policy", "-s", "arn:aws:nope"])
        .run();
    out.assert_code(64);
    assert_eq!(out.stdout, "");
}

/// packaging/iam/example-policy.json is what the README shows; it must be what the binary prints.
#[test]
fn committed_example_policy_matches_the_binary() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/iam/example-policy.json");
    let committed = std::fs::read_to_string(&path).expect("packaging/iam/example-policy.json");
    let out = offline().args(EXAMPLE_POLICY_ARGS).run();
    out.assert_code(0);
    assert_eq!(
        out.stdout.trim_end(),
        committed.trim_end(),
        "regenerate with: secret-exec {}",
        EXAMPLE_POLICY_ARGS.join(" ")
    );
}

/// The flags that produce packaging/iam/example-policy.json.
const EXAMPLE_POLICY_ARGS: &[&str] = &[
    "--print-iam-policy",
    "--region",
    "eu-west-1",
    "--secret",
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf",
    "--secret",
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/api-key",
];
