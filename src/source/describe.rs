//! `--watch`'s question to Secrets Manager: which version holds a stage now. `DescribeSecret`
//! answers with metadata only (`VersionIdsToStages`), so polling never moves a secret value.
//! Its errors are classified like every other Secrets Manager call.

use super::aws::{Client, Clients};
use super::secrets_manager::{Asked, classify_sdk};
use super::{Class, Versions};
use crate::error::Error;
use crate::log::{self, Event};
use crate::spec::SecretRef;
use std::time::Instant;
use tokio::task::JoinSet;

/// The stage a reference follows: its own, or AWSCURRENT.
pub fn stage_of(r: &SecretRef) -> &str {
    r.stage.as_deref().unwrap_or("AWSCURRENT")
}

/// The version id that carries `r`'s stage now (`None` when no version does).
async fn stage_version(
    client: &Client,
    r: &SecretRef,
    asked: &Asked,
) -> Result<Option<String>, Error> {
    let started = Instant::now();
    let out = client
        .describe_secret()
        .secret_id(&r.id)
        .send()
        .await
        .map_err(|e| {
            let mut f = classify_sdk(&e, asked);
            if f.class == Class::Permission {
                f.why.push_str(
                    " (--watch also needs secretsmanager:DescribeSecret; see \
                     --print-iam-policy --watch)",
                );
            }
            f.for_secret(r)
        })?;
    let stage = stage_of(r);
    log::at(2, Event::Watch)
        .source("secretsmanager")
        .call("DescribeSecret")
        .secret(&r.id)
        .stage(Some(stage))
        .region(&asked.region)
        .took(started.elapsed())
        .say(format_args!("DescribeSecret '{}'", r.id));
    Ok(out.version_ids_to_stages().and_then(|m| {
        m.iter()
            .find(|(_, stages)| stages.iter().any(|s| s == stage))
            .map(|(v, _)| v.clone())
    }))
}

/// One `DescribeSecret` per reference, concurrent: where each stage points now.
pub async fn stage_versions(clients: &Clients, refs: &[SecretRef]) -> Result<Versions, Error> {
    let mut calls = JoinSet::new();
    for r in refs {
        let region = r.arn_region().unwrap_or(&clients.default_region);
        let client = clients.for_region(region).clone();
        let asked = Asked {
            region: region.to_string(),
            endpoint: clients.endpoint(region).to_string(),
        };
        let r = r.clone();
        calls.spawn(async move {
            let v = stage_version(&client, &r, &asked).await;
            (r, v)
        });
    }
    let mut now = Versions::new();
    while let Some(joined) = calls.join_next().await {
        let (r, v) = joined.map_err(|_| Error::Internal("a poll task failed".into()))?;
        now.insert(r, v?);
    }
    Ok(now)
}
