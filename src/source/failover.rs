//! `--failover-region`: Secrets Manager reads that the primary region could not answer — 5xx,
//! timeouts, connection failures, throttling past every retry, or no answer within the
//! primary's share of the deadline — are read again from the replica region, where replication
//! keeps each secret under the same name (ARNs are moved there with `plan::in_region`). A
//! definite answer (not found, denied, a KMS refusal, a rejected request) is final: it is never
//! retried elsewhere. Both regions stay inside the one fetch window.

use super::aws::Clients;
use super::{Fetched, secrets_manager};
use crate::error::Error;
use crate::log::{self, Event};
use crate::plan::{self, RegionCalls};
use crate::spec::SecretRef;
use std::collections::BTreeMap;
use std::time::Duration;

type Outcome = (SecretRef, Result<Fetched, Error>);

/// The part of `--timeout` the primary region gets before its unanswered secrets go to the
/// failover region: half, so the replica has as long again.
pub fn primary_share(timeout: Duration) -> Duration {
    timeout / 2
}

/// Whether an outcome is the primary region failing to answer (rather than answering no).
fn unanswered(result: &Result<Fetched, Error>) -> bool {
    matches!(result, Err(Error::Unavailable { .. }))
}

/// Reads the plan's Secrets Manager `calls`; with a failover region `to`, what the primary
/// regions leave unanswered within `share` is read from `to`.
pub async fn fetch(
    clients: &Clients,
    calls: Vec<RegionCalls>,
    to: Option<&str>,
    share: Duration,
) -> Vec<Outcome> {
    let Some(to) = to else {
        return secrets_manager::fetch(clients, calls).await;
    };
    // Which region each secret was asked in, for the log line and to skip the replica region.
    let asked: BTreeMap<SecretRef, String> = calls
        .iter()
        .flat_map(|rc| {
            rc.calls.iter().flat_map(move |c| {
                let refs: Vec<&SecretRef> = match c {
                    plan::Call::Batch(rs) => rs.iter().collect(),
                    plan::Call::One(r) => vec![r],
                };
                refs.into_iter()
                    .map(move |r| (r.clone(), rc.region.clone()))
            })
        })
        .collect();
    let (mut kept, retry, why) =
        match tokio::time::timeout(share, secrets_manager::fetch(clients, calls)).await {
            Ok(outcomes) => {
                let mut why = String::new();
                let (retry, kept): (Vec<Outcome>, Vec<Outcome>) =
                    outcomes.into_iter().partition(|(r, res)| {
                        unanswered(res) && asked.get(r).is_some_and(|region| region != to)
                    });
                if let Some((_, Err(e))) = retry.first() {
                    why = e.to_string();
                }
                // The primary's failures are dropped here: the replica's outcome replaces them.
                let retry: Vec<SecretRef> = retry.into_iter().map(|(r, _)| r).collect();
                (kept, retry, why)
            }
            Err(_) => {
                // Nothing of the primary's is kept: every secret is read from the replica region
                // (one already there gets its second try).
                let retry: Vec<SecretRef> = asked.keys().cloned().collect();
                let why = format!("no answer within {share:?}, its share of --timeout");
                (Vec::new(), retry, why)
            }
        };
    if retry.is_empty() {
        return kept;
    }
    let mut from: Vec<&str> = retry
        .iter()
        .filter_map(|r| asked.get(r).map(String::as_str))
        .filter(|region| *region != to)
        .collect();
    from.sort();
    from.dedup();
    let from = from.join(", ");
    log::at(0, Event::Failover)
        .source("secretsmanager")
        .region(to)
        .count(retry.len())
        .say(format_args!(
            "failover from {from} to {to} for {} secrets: {}",
            retry.len(),
            crate::sanitize::one_line(&why)
        ));
    let moved: BTreeMap<SecretRef, SecretRef> = retry
        .into_iter()
        .map(|r| (plan::in_region(&r, to), r))
        .collect();
    let refs: Vec<SecretRef> = moved.keys().cloned().collect();
    let outcomes = secrets_manager::fetch(clients, vec![plan::Plan::calls_in(to, refs)]).await;
    for (r, res) in outcomes {
        let original = moved.get(&r).cloned().unwrap_or(r);
        kept.push((original, res));
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unanswered_reads_fail_over() {
        let r = |e: Error| unanswered(&Err(e));
        let (secret, why) = (String::from("s"), String::from("w"));
        assert!(r(Error::Unavailable {
            secret: secret.clone(),
            why: why.clone()
        }));
        assert!(!r(Error::NotFound {
            secret: secret.clone(),
            why: why.clone()
        }));
        assert!(!r(Error::Permission {
            secret: secret.clone(),
            why: why.clone()
        }));
        assert!(!r(Error::Rejected {
            service: "Secrets Manager",
            secret,
            why
        }));
        assert_eq!(
            primary_share(Duration::from_secs(10)),
            Duration::from_secs(5)
        );
    }
}
