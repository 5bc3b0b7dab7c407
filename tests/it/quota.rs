//! AWS's real request quotas (a quota-faithful endpoint on loopback, `quotasrv`): a throttled
//! batch never fails a launch, a few secrets are read one by one and many in batches of 20,
//! throttling past every retry or past the deadline names the quota that was exceeded, and
//! `--failover-region` reads replicas when the primary region cannot answer — never after a
//! definite answer — with no value in any log line.

use crate::quotasrv::{Outage, QuotaServer};
use crate::support::*;

const GET: &str = "GetSecretValue";
const BATCH: &str = "BatchGetSecretValue";
/// The replica region of the failover tests.
const REPLICA: &str = "us-west-2";
/// The fewest AWSCURRENT reads in one region that secret-exec batches (`plan::MIN_BATCH`).
const MIN_BATCH: usize = 17;

/// `n` plain-text secrets `val-<stem>-<i>` in moto; their names.
fn many(stem: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let name = unique(stem);
            moto().create(&name, &format!("val-{stem}-{i}"));
            name
        })
        .collect()
}

/// Every secret of `names` delivered, by its default variable.
fn assert_all(out: &Out, stem: &str, names: &[String]) {
    out.assert_code(0);
    for (i, n) in names.iter().enumerate() {
        let var = default_var(n);
        assert_eq!(out.var(&var), Some(format!("val-{stem}-{i}")), "{var}");
    }
}

#[test]
fn a_throttled_batch_is_read_one_by_one_without_a_failed_launch() {
    let names = many("quota/fb", MIN_BATCH);
    // One batch call left in the account's bucket, none coming back for ten minutes: a fleet
    // already spent the rest of the 100/s.
    let srv = QuotaServer::start().rate(BATCH, 1.0 / 600.0, 1.0);
    for _ in 0..2 {
        let out = srv.se().args(["-v"]).run_env0_all(&names);
        assert_all(&out, "quota/fb", &names);
        assert!(!out.stderr.contains("val-quota"), "{}", out.stderr);
    }
    assert_eq!(srv.count(BATCH, REGION, "served"), 1);
    // The batch call is tried once, never retried into a quota that is spent.
    assert_eq!(srv.count(BATCH, REGION, "throttled"), 1);
    assert_eq!(srv.count(GET, REGION, "served"), MIN_BATCH);
    assert_eq!(srv.count(GET, REGION, "throttled"), 0);
}

#[test]
fn the_fallback_is_logged_without_values() {
    let names = many("quota/fblog", MIN_BATCH);
    let srv = QuotaServer::start().rate(BATCH, 1.0 / 600.0, 0.0);
    let out = srv
        .se()
        .args(["-vv"])
        .secrets(&names)
        .args(["--", "/bin/true"])
        .run();
    out.assert_code(0);
    out.assert_stderr_has(&format!(
        "BatchGetSecretValue throttled or unanswered in {REGION}; falling back to \
         GetSecretValue for {MIN_BATCH} secrets"
    ));
    assert!(!out.stderr.contains("val-quota"), "{}", out.stderr);
}

#[test]
fn a_hundred_secrets_take_five_calls() {
    let names = many("quota/hundred", 100);
    let srv = QuotaServer::start();
    let out = srv.se().run_env0_all(&names);
    assert_all(&out, "quota/hundred", &names);
    assert_eq!(srv.count(BATCH, REGION, "served"), 5);
    assert_eq!(srv.count(GET, REGION, "served"), 0);
}

#[test]
fn a_few_secrets_cost_no_batch_quota() {
    for n in [1, 3, MIN_BATCH - 1] {
        let names = many("quota/few", n);
        let srv = QuotaServer::start();
        let out = srv.se().run_env0_all(&names);
        assert_all(&out, "quota/few", &names);
        assert_eq!(srv.count(BATCH, REGION, "served"), 0, "{n}");
        assert_eq!(srv.count(GET, REGION, "served"), n, "{n}");
    }
}

/// Throttling that outlasts every retry, or the deadline: one line that names the account's
/// quota for that API in that region and what helps, never "check the network path".
#[test]
fn throttling_past_the_retries_or_the_deadline_names_the_quota() {
    // (stem, flags, what the line says of how it ended, throttled calls when all were counted)
    let rows: [(&str, [&str; 4], &str, Option<usize>); 2] = [
        (
            "quota/spent",
            ["--max-attempts", "3", "--timeout", "30s"],
            "ThrottlingException",
            Some(3),
        ),
        (
            "quota/deadline",
            ["--max-attempts", "20", "--timeout", "1500ms"],
            "timed out after",
            None,
        ),
    ];
    for (stem, flags, ended, throttled) in rows {
        let names = many(stem, 1);
        let srv = QuotaServer::start().rate(GET, 0.0, 0.0);
        let out = srv.se().args(flags).fetch_only(&names[0]).run();
        out.assert_code(69);
        out.assert_one_clean_line();
        out.assert_stderr_has(ended);
        out.assert_stderr_has(&format!(
            "the account's GetSecretValue request quota in {REGION} (10,000 requests/s) was exceeded"
        ));
        out.assert_stderr_has("--agent");
        assert!(
            !out.stderr.contains("network path"),
            "{stem}: {}",
            out.stderr
        );
        if let Some(n) = throttled {
            assert_eq!(srv.count(GET, REGION, "throttled"), n, "{stem}");
        }
    }
}

/// A secret under one name in the primary region and its replica in `REPLICA`, each with a value
/// that says where it was read; returns the name.
/// A server whose primary region answers HTTP 500 to everything, and a run against it given
/// 20 s, time enough to fail over.
fn primary_down() -> (QuotaServer, Run) {
    let srv = QuotaServer::start().outage(REGION, Outage::ServerError);
    let run = srv.se().args(["--timeout", "20s"]);
    (srv, run)
}

fn replicated(stem: &str) -> String {
    let name = unique(stem);
    moto().create(&name, &format!("{stem}-primary"));
    moto().call_in(
        REPLICA,
        "CreateSecret",
        &serde_json::json!({"Name": name, "SecretString": format!("{stem}-replica")}),
    );
    name
}

/// Reads `name` with `--failover-region REPLICA` through `srv`, printing the environment.
fn failover_run(srv: &QuotaServer, name: &str, flags: &[&str]) -> Out {
    srv.se()
        .args(["--failover-region", REPLICA])
        .args(flags)
        .run_env0_all([format!("V={name}")])
}

#[test]
fn failover_reads_the_replica_when_the_primary_cannot_answer() {
    for (outage, flags) in [
        (Outage::ServerError, &["--timeout", "20s"][..]),
        (Outage::Dead, &["--timeout", "20s"]),
        // A stalled primary: the replica is asked once the primary's share (half) has passed,
        // and the run still ends inside --timeout.
        (Outage::Stall, &["--timeout", "6s"]),
    ] {
        let stem = "quota/failover";
        let name = replicated(stem);
        let srv = QuotaServer::start().outage(REGION, outage);
        let out = failover_run(&srv, &name, flags);
        out.assert_code(0);
        assert_eq!(out.var("V"), Some(format!("{stem}-replica")), "{outage:?}");
        assert!(srv.count(GET, REGION, "failed") >= 1, "{outage:?}");
        assert_eq!(srv.count(GET, REPLICA, "served"), 1, "{outage:?}");
        // The switch is one warning naming both regions, and no value.
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains("failover"))
            .unwrap_or_else(|| panic!("no failover line for {outage:?}: {}", out.stderr));
        assert!(
            line.contains(&format!("from {REGION} to {REPLICA}")),
            "{line}"
        );
        assert!(!out.stderr.contains("-replica"), "{}", out.stderr);
        assert!(!out.stderr.contains("-primary"), "{}", out.stderr);
    }
}

#[test]
fn failover_when_the_primary_quota_is_spent() {
    let name = replicated("quota/fothrottle");
    let srv = QuotaServer::start().rate_in(REGION, GET, 0.0, 0.0);
    let out = failover_run(&srv, &name, &["--timeout", "20s"]);
    out.assert_code(0);
    assert_eq!(out.var("V").as_deref(), Some("quota/fothrottle-replica"));
    assert!(srv.count(GET, REGION, "throttled") >= 1);
    assert_eq!(srv.count(GET, REPLICA, "served"), 1);
}

#[test]
fn a_definite_answer_never_fails_over() {
    for (code, exit) in [
        ("ResourceNotFoundException", 66),
        ("AccessDeniedException", 77),
        ("DecryptionFailure", 77),
        ("KMSAccessDeniedException", 77),
    ] {
        let name = replicated("quota/final");
        let srv = QuotaServer::start().outage(REGION, Outage::Code(code));
        let out = failover_run(&srv, &name, &["--timeout", "20s"]);
        out.assert_code(exit);
        out.assert_one_clean_line();
        out.assert_stderr_has(code);
        assert_eq!(srv.count(GET, REPLICA, "served"), 0, "{code}");
        assert!(!out.stderr.contains("failover"), "{}", out.stderr);
    }
}

#[test]
fn the_failover_region_comes_from_the_environment_too() {
    let name = replicated("quota/foenv");
    let (_srv, run) = primary_down();
    let out = run
        .env("SECRET_EXEC_FAILOVER_REGION", REPLICA)
        .run_env0_all([format!("V={name}")]);
    out.assert_code(0);
    assert_eq!(out.var("V").as_deref(), Some("quota/foenv-replica"));
}

#[test]
fn failover_is_refused_for_what_it_cannot_protect() {
    let out = se()
        .args([
            "--failover-region",
            REPLICA,
            "-s",
            "a",
            "-s",
            "P=ssm:/app/p",
        ])
        .args(["--", "/bin/true"])
        .run();
    out.assert_code(64);
    out.assert_one_clean_line();
    out.assert_stderr_has("'ssm:/app/p'");
    out.assert_stderr_has("Parameter Store has no replication");
    let out = se()
        .args([
            "--failover-region",
            "Not A Region",
            "-s",
            "a",
            "--",
            "/bin/true",
        ])
        .run();
    out.assert_code(64);
    out.assert_one_clean_line();
}

#[test]
fn dry_run_shows_the_failover() {
    let name = replicated("quota/fodry");
    let (_srv, run) = primary_down();
    let out = run
        .args(["--failover-region", REPLICA, "--dry-run"])
        .secrets([format!("V={name}")])
        .run();
    out.assert_code(0);
    out.assert_stderr_has(&format!(
        "failover from {REGION} to {REPLICA} for 1 secrets"
    ));
    out.assert_stdout_has("V");
    out.assert_no_leak(&["quota/fodry-replica", "quota/fodry-primary"]);
}

#[test]
fn many_secrets_fail_over_in_batches() {
    let stem = "quota/fomany";
    let names: Vec<String> = (0..MIN_BATCH)
        .map(|i| {
            let name = unique(stem);
            moto().create(&name, "primary");
            moto().call_in(
                REPLICA,
                "CreateSecret",
                &serde_json::json!({"Name": name, "SecretString": format!("val-{stem}-{i}")}),
            );
            name
        })
        .collect();
    let (srv, run) = primary_down();
    let out = run
        .args(["--failover-region", REPLICA])
        .run_env0_all(&names);
    assert_all(&out, stem, &names);
    assert_eq!(srv.count(BATCH, REPLICA, "served"), 1);
    assert_eq!(srv.count(GET, REPLICA, "served"), 0);
}

#[test]
fn parameter_store_throttling_names_its_throughput() {
    let name = format!("/{}", unique("quota/param"));
    moto().put_parameter(&name, "String", "param-value");
    let srv = QuotaServer::start().rate("Parameter Store", 0.0, 0.0);
    let out = srv
        .se()
        .args(["--max-attempts", "2", "--timeout", "30s"])
        .fetch_only(&format!("P=ssm:{name}"))
        .run();
    out.assert_code(69);
    out.assert_one_clean_line();
    out.assert_stderr_has(&format!(
        "Parameter Store throughput in {REGION} (40 requests/s at the standard setting"
    ));
    assert!(!out.stderr.contains("network path"), "{}", out.stderr);
    assert_eq!(srv.count("GetParameters", REGION, "throttled"), 2);
}
