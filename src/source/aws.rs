//! AWS set-up: region, credentials and the Secrets Manager clients, all bounded by the overall
//! deadline. Credentials are resolved once, up front, so their failure is diagnosed on its own
//! (exit 78/77) instead of surfacing as an opaque request error, and so IMDS is asked once.

use crate::config::AwsOptions;
use crate::error::Error;
use crate::plan::Plan;
use crate::source::credentials;
use crate::vlog;
use aws_config::BehaviorVersion;
use aws_config::meta::region::ProvideRegion;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_secretsmanager::config::Region;
use std::collections::BTreeMap;
use std::time::Duration;

pub type Client = aws_sdk_secretsmanager::Client;

/// One client per region the secrets live in; the default region is `default`.
pub struct Clients {
    pub default_region: String,
    by_region: BTreeMap<String, Client>,
}

impl Clients {
    pub fn for_region(&self, region: &str) -> &Client {
        self.by_region
            .get(region)
            .unwrap_or_else(|| &self.by_region[&self.default_region])
    }
}

/// Per-attempt and connect bounds derived from the overall deadline, so retries fit inside it.
pub fn timeouts(total: Duration, attempts: u32) -> TimeoutConfig {
    let attempt = (total / attempts.max(1))
        .max(Duration::from_millis(500))
        .min(total);
    TimeoutConfig::builder()
        .connect_timeout(attempt.min(Duration::from_secs(3)))
        .read_timeout(attempt)
        .operation_attempt_timeout(attempt)
        .operation_timeout(total)
        .build()
}

async fn resolve_region(
    opts: &AwsOptions,
    plan: &Plan,
    imds: &aws_config::imds::Client,
) -> Result<String, Error> {
    if let Some(r) = opts.known_region() {
        return Ok(r.to_string());
    }
    let mut profile = ProfileFileRegionProvider::builder();
    if let Some(p) = &opts.profile {
        profile = profile.profile_name(p);
    }
    if let Some(r) = profile.build().region().await {
        return Ok(r.to_string());
    }
    if let Some(r) = plan.region_from_arns() {
        vlog!(1, "no region configured; using {r} from the secret's ARN");
        return Ok(r.to_string());
    }
    let imds = aws_config::imds::region::ImdsRegionProvider::builder()
        .imds_client(imds.clone())
        .build();
    if let Some(r) = imds.region().await {
        vlog!(1, "region {r} from instance metadata");
        return Ok(r.to_string());
    }
    Err(Error::Config(
        "no AWS region configured; pass --region, set AWS_REGION, or give secrets by full ARN"
            .into(),
    ))
}

/// Builds every client the plan needs. Must run inside the overall deadline.
pub async fn clients(opts: &AwsOptions, plan: &Plan) -> Result<Clients, Error> {
    let attempts = opts.max_attempts;
    let retry = if opts.adaptive_retry {
        RetryConfig::adaptive()
    } else {
        RetryConfig::standard()
    }
    .with_max_attempts(attempts)
    // Tighter than the SDK's 1 s / 20 s: a launcher's whole budget is a few seconds.
    .with_initial_backoff(Duration::from_millis(100))
    .with_max_backoff(Duration::from_secs(2));

    // One IMDS client for region and credentials: one session token serves both.
    let imds = credentials::imds_client();
    let region = resolve_region(opts, plan, &imds).await?;
    let (source, creds) = credentials::resolve(&opts.credentials, &region, &imds).await?;
    vlog!(
        2,
        "credentials from {source:?} (access key id ending …{})",
        tail(creds.access_key_id())
    );
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.clone()))
        .retry_config(retry)
        .timeout_config(timeouts(opts.timeout, attempts))
        .credentials_provider(SharedCredentialsProvider::new(creds.clone()));
    if let Some(p) = &opts.profile {
        loader = loader.profile_name(p);
    }
    if let Some(url) = &opts.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let sdk = loader.load().await;

    let regions = plan.regions(&region);
    let endpoint = opts.endpoint.clone();
    // A plain-http endpoint (a local emulator, a sidecar proxy) needs no TLS: the default client
    // would still read every system root certificate (~300 files, several ms) before the first
    // request. Pinning the endpoint here keeps the client and the URL in step.
    let plain = endpoint
        .filter(|u| u.starts_with("http://"))
        .map(|u| (u, aws_smithy_http_client::Builder::new().build_http()));
    let by_region = regions
        .into_iter()
        .map(|r| {
            let mut conf = aws_sdk_secretsmanager::config::Builder::from(&sdk)
                .credentials_provider(creds.clone())
                .region(Region::new(r.clone()));
            if let Some((url, http)) = &plain {
                conf = conf.endpoint_url(url).http_client(http.clone());
            }
            (r, Client::from_conf(conf.build()))
        })
        .collect();
    Ok(Clients {
        default_region: region,
        by_region,
    })
}

/// The last four characters of an access key id: enough to tell keys apart in `-vv` output.
fn tail(s: &str) -> &str {
    let n = s.len().saturating_sub(4);
    s.get(n..).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_fit_the_deadline() {
        let rows = [
            (10_000, 3, 3_000, 3_333),
            (1_000, 3, 500, 500),
            (300, 5, 300, 300),
            (60_000, 1, 3_000, 60_000),
        ];
        for (total, attempts, connect, attempt) in rows {
            let t = timeouts(Duration::from_millis(total), attempts);
            assert_eq!(
                t.connect_timeout(),
                Some(Duration::from_millis(connect)),
                "{total}/{attempts}"
            );
            let got = t.operation_attempt_timeout().unwrap().as_millis();
            assert_eq!(got, attempt, "{total}/{attempts}");
            assert_eq!(t.operation_timeout(), Some(Duration::from_millis(total)));
        }
    }

    #[test]
    fn tail_is_safe_on_short_ids() {
        assert_eq!(tail("AKIAEXAMPLE1234"), "1234");
        assert_eq!(tail("ab"), "ab");
    }
}
