//! Fetching under faults (a fault-injecting proxy on loopback in front of moto), batching,
//! deduplication, regions from ARNs, deadlines, missing credentials, and signals while fetching.

use crate::faultsrv::{FaultServer, Reply};
use crate::support::*;
use std::time::Duration;

const GET: &str = "GetSecretValue";
const BATCH: &str = "BatchGetSecretValue";

/// A secret `{"<key>": "<value>"}` in moto; returns its name.
fn seeded(stem: &str, key: &str, value: &str) -> String {
    seed(stem, &serde_json::json!({ key: value }).to_string())
}

/// Runs `env -0` with one `--secret` per spec through a proxy that forwards every call to
/// moto; returns the proxy, for its call counts, and the run.
fn forwarded<S: AsRef<std::ffi::OsStr>>(specs: impl IntoIterator<Item = S>) -> (FaultServer, Out) {
    let srv = FaultServer::start(|_, _| Reply::Forward);
    let out = srv.se().run_env0_all(specs);
    (srv, out)
}

#[test]
fn throttled_twice_then_succeeds() {
    let name = seeded("fault/throttle", "token", "t-after-throttle");
    let srv = FaultServer::failing(GET, 2, Reply::Throttle);
    let out = srv.se().run_env0(&name);
    out.assert_code(0);
    assert_eq!(out.var("TOKEN").as_deref(), Some("t-after-throttle"));
    assert_eq!(srv.count(GET), 3);
}

/// Fetches a fresh secret holding `value` with `flags`, through a proxy that answers every
/// call with `reply`, and runs /bin/true; returns the proxy, for its counts, and the run.
fn answered(reply: Reply, flags: &[&str], value: &str) -> (FaultServer, Out) {
    let name = seeded("fault/answered", "k", value);
    let srv = FaultServer::start(move |_, _| reply);
    let out = srv.se().args(flags).fetch_only(&name).run();
    (srv, out)
}

#[test]
fn persistent_500_is_69_after_every_attempt() {
    let flags = ["--timeout", "30s", "--max-attempts", "3"];
    let (srv, out) = answered(Reply::ServerError, &flags, "v");
    out.assert_code(69);
    out.assert_one_clean_line();
    // Ended by the retry budget, not by the overall deadline.
    assert_eq!(srv.count(GET), 3);
    out.assert_stderr_has("InternalServiceError");
    assert!(!out.stderr.contains("timed out after"), "{}", out.stderr);
}

#[test]
fn throttling_is_retried_but_access_denied_is_not() {
    let (srv, out) = answered(Reply::Deny, &["--max-attempts", "5"], "v");
    out.assert_code(77);
    assert_eq!(srv.count(GET), 1, "a denial must not be retried");
}

#[test]
fn stalled_server_is_69_at_the_deadline() {
    let (srv, out) = answered(Reply::Stall, &["--timeout", "2s"], "v");
    out.assert_code(69);
    out.assert_one_clean_line();
    assert!(srv.count(GET) >= 1);
    // Not a timed assertion: only a bound far above the 2 s deadline that still catches a hang.
    assert!(out.elapsed < Duration::from_secs(30), "{:?}", out.elapsed);
}

#[test]
fn faulty_replies_are_69_without_panic() {
    for reply in [Reply::Reset, Reply::Truncated, Reply::NotJson] {
        let (srv, out) = answered(reply, &["--timeout", "20s"], "v-faulty-reply");
        assert_eq!(out.code(), Some(69), "{reply:?}: {}", out.stderr);
        out.assert_one_clean_line();
        assert!(srv.count(GET) >= 1, "{reply:?}");
        // Causes in words, not a Debug dump of the SDK's error structs.
        assert!(!out.stderr.contains(" { "), "{reply:?}: {}", out.stderr);
        assert!(!out.stderr.contains("v-faulty-reply"));
    }
}

#[test]
fn one_missing_among_many_is_66_and_no_exec() {
    let mut names: Vec<String> = (0..25)
        .map(|i| seeded("fault/many", &format!("k{i}"), "v"))
        .collect();
    let missing = unique("fault/absent");
    names.insert(13, missing.clone());
    let srv = FaultServer::start(|_, _| Reply::Forward);
    let dir = TempDir::new("nexec");
    let marker = dir.path().join("ran");
    let out = srv
        .se()
        .secrets(&names)
        .args(["--", "/usr/bin/touch"])
        .arg_path(&marker)
        .run();
    out.assert_code(66);
    out.assert_one_clean_line();
    out.assert_stderr_has(&missing);
    assert!(!marker.exists(), "the command ran despite a missing secret");
    assert_eq!(srv.count(BATCH), 2);
    assert_eq!(srv.count(GET), 0);
}

#[test]
fn batch_denied_falls_back_to_get_secret_value() {
    // 17: the fewest AWSCURRENT reads in one region that are batched (`plan::MIN_BATCH`).
    let names: Vec<String> = (0..17)
        .map(|i| seeded("fault/fallback", &format!("fb{i}"), &format!("val{i}")))
        .collect();
    let srv = FaultServer::failing(BATCH, usize::MAX, Reply::Deny);
    let out = srv.se().args(["-v"]).run_env0_all(&names);
    out.assert_code(0);
    out.assert_vars_each((0..17).map(|i| (format!("FB{i}"), format!("val{i}"))));
    assert_eq!(srv.count(BATCH), 1);
    assert_eq!(srv.count(GET), 17);
    assert!(
        out.stderr
            .contains("BatchGetSecretValue denied; falling back"),
        "{}",
        out.stderr
    );
}

#[test]
fn batch_refused_for_bad_credentials_does_not_fall_back() {
    let names: Vec<String> = (0..17)
        .map(|i| seeded("fault/expired", &format!("ex{i}"), "v"))
        .collect();
    let srv = FaultServer::failing(BATCH, usize::MAX, Reply::Code("ExpiredTokenException"));
    let out = srv.se().secrets(&names).args(["--", "/bin/true"]).run();
    out.assert_code(77);
    out.assert_one_clean_line();
    out.assert_stderr_has("ExpiredTokenException");
    assert_eq!(srv.count(BATCH), 1);
    assert_eq!(
        srv.count(GET),
        0,
        "expired credentials would fail every single call too"
    );
}

#[test]
fn duplicates_are_fetched_once() {
    let name = seeded("fault/dup", "user", "u1");
    let other = seeded("fault/dup2", "pass", "p1");
    let (srv, out) = forwarded([
        format!("A={name}:user"),
        format!("B={name}:user"),
        format!("P_*={name}"),
        format!("C={other}:pass"),
        format!("D={other}"),
    ]);
    out.assert_ok_vars(&[("A", "u1"), ("P_USER", "u1"), ("C", "p1")]);
    // Two distinct secrets (too few to batch): one read each, never the same id twice.
    assert_eq!(srv.count(BATCH), 0);
    assert_eq!(srv.count(GET), 2);
    assert_eq!(srv.count(&format!("GetSecretValue {name}")), 1);
    assert_eq!(srv.count(&format!("GetSecretValue {other}")), 1);

    let (srv, out) = forwarded([
        format!("A={name}:user"),
        format!("B={name}:user"),
        name.clone(),
    ]);
    out.assert_ok_vars(&[("USER", "u1")]);
    assert_eq!(srv.count(GET), 1);
    assert_eq!(srv.count(BATCH), 0);
}

#[test]
fn batches_hold_twenty_ids_each() {
    for n in [17usize, 20, 21, 45] {
        let names: Vec<String> = (0..n)
            .map(|i| seeded("fault/chunk", &format!("c{i}"), &format!("{i}")))
            .collect();
        let (srv, out) = forwarded(&names);
        assert_eq!(out.code(), Some(0), "{n}: {}", out.stderr);
        assert_eq!(out.var(&format!("C{}", n - 1)), Some(format!("{}", n - 1)));
        assert_eq!(srv.count(BATCH), n.div_ceil(20), "{n} secrets");
        assert_eq!(srv.count("BatchGetSecretValue ids"), n, "{n} secrets");
        assert_eq!(srv.count(GET), 0, "{n} secrets");
    }
}

#[test]
fn pinned_stages_use_get_secret_value() {
    let name = seeded("fault/pinned", "v", "one");
    moto().put(&name, r#"{"v":"two"}"#);
    let other = seeded("fault/pinned2", "w", "three");
    let (srv, out) = forwarded([
        format!("OLD={name}:v:AWSPREVIOUS"),
        format!("NEW={name}:v"),
        other,
    ]);
    out.assert_ok_vars(&[("OLD", "one"), ("NEW", "two"), ("W", "three")]);
    // Two AWSCURRENT reads are too few to batch; the pinned one is always a single read.
    assert_eq!(srv.count(BATCH), 0);
    assert_eq!(srv.count(GET), 3);
}

/// Creates a secret in another region of the shared moto; returns its ARN.
fn create_in(region: &str, name: &str, value: &str) -> String {
    let r = moto().call_in(
        region,
        "CreateSecret",
        &serde_json::json!({"Name": name, "SecretString": value}),
    );
    r["ARN"].as_str().expect("ARN").to_string()
}

#[test]
fn arn_in_another_region_is_fetched_there() {
    let name = unique("fault/euwest");
    let arn = create_in("eu-west-1", &name, r#"{"eu_key":"from-eu-west-1"}"#);
    assert!(arn.contains(":eu-west-1:"), "{arn}");
    let home = seeded("fault/home", "home_key", "from-us-east-1");

    // Region configured as us-east-1: the ARN still goes to eu-west-1, the name to us-east-1.
    let out = se()
        .args(["--secret", &arn, "--secret", &home])
        .args(["--", "/usr/bin/env", "-0"])
        .run();
    out.assert_code(0);
    assert_eq!(out.var("EU_KEY").as_deref(), Some("from-eu-west-1"));
    assert_eq!(out.var("HOME_KEY").as_deref(), Some("from-us-east-1"));

    // By name alone it does not exist in us-east-1.
    let out = se().fetch_only(&name).run();
    out.assert_code(66);

    // No region anywhere (IMDS disabled, no config file): the ARN supplies it.
    let out = se()
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .args(["-v", "--secret", &arn, "--", "/usr/bin/env", "-0"])
        .run();
    out.assert_code(0);
    assert_eq!(out.var("EU_KEY").as_deref(), Some("from-eu-west-1"));
    out.assert_stderr_has("eu-west-1");
}

/// A loopback listener that accepts connections and never answers: metadata-service packets
/// silently dropped, as in a container behind an IMDSv2 hop limit of 1.
fn black_hole() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming() {
            held.push(c);
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[test]
fn no_credentials_with_silent_imds_is_78_and_says_what_was_tried() {
    let name = seeded("fault/nocreds", "k", "v");
    let out = se()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_EC2_METADATA_DISABLED")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .env_remove("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", black_hole())
        .fetch_only(&name)
        .run();
    out.assert_code(78);
    out.assert_one_clean_line();
    for tried in [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "web identity",
        "ECS container",
        "instance metadata",
    ] {
        assert!(out.stderr.contains(tried), "{tried}: {}", out.stderr);
    }
}

#[test]
fn invalid_retry_settings_are_78() {
    let name = seeded("fault/retryenv", "k", "v");
    let rows = [
        ("AWS_MAX_ATTEMPTS", "0"),
        ("AWS_MAX_ATTEMPTS", "many"),
        ("AWS_MAX_ATTEMPTS", "-3"),
        ("AWS_MAX_ATTEMPTS", "4294967296"),
        ("AWS_RETRY_MODE", "fastest"),
        ("AWS_RETRY_MODE", "legacy-ish"),
    ];
    for (var, value) in rows {
        let out = se().env(var, value).fetch_only(&name).run();
        assert_eq!(out.code(), Some(78), "{var}={value:?}: {}", out.stderr);
        out.assert_one_clean_line();
        out.assert_stderr_has(var);
    }
}

/// Starts secret-exec against a stalled server, waits until its request has arrived, sends
/// `sig`, and asserts exit `code`, a message naming the signal, and that the command never ran.
fn assert_interrupted_while_fetching(sig: nix::sys::signal::Signal, code: i32) {
    let name = seeded("fault/signal", "k", "v");
    let srv = FaultServer::start(|_, _| Reply::Stall);
    // The deadline is 50 s: an exit well before it can only come from the signal.
    let (out, ran) = srv.signal_while_fetching(&name, sig, || {}, Duration::from_secs(40));
    out.assert_code(code);
    assert!(!ran, "{sig}: the command ran");
    out.assert_stderr_has(sig.as_str());
}

#[test]
fn sigterm_while_fetching_is_143_and_no_exec() {
    assert_interrupted_while_fetching(nix::sys::signal::Signal::SIGTERM, 143);
}

#[test]
fn sigint_while_fetching_is_130_and_no_exec() {
    assert_interrupted_while_fetching(nix::sys::signal::Signal::SIGINT, 130);
}
