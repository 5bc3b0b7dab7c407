//! `--watch`'s question to Secrets Manager: which version holds a stage now. `DescribeSecret`
//! answers with metadata only (`VersionIdsToStages`), so polling never moves a secret value.

use crate::aws::Client;
use crate::error::Error;
use crate::fetch;
use crate::spec::SecretRef;

/// The stage a reference follows: its own, or AWSCURRENT.
pub fn stage_of(r: &SecretRef) -> &str {
    r.stage.as_deref().unwrap_or("AWSCURRENT")
}

/// The version id that carries `r`'s stage now (`None` when no version does).
pub async fn stage_version(client: &Client, r: &SecretRef) -> Result<Option<String>, Error> {
    let out = client
        .describe_secret()
        .secret_id(&r.id)
        .send()
        .await
        .map_err(|e| fetch::sdk_error(r, e))?;
    let stage = stage_of(r);
    Ok(out.version_ids_to_stages().and_then(|m| {
        m.iter()
            .find(|(_, stages)| stages.iter().any(|s| s == stage))
            .map(|(v, _)| v.clone())
    }))
}
