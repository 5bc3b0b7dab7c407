//! AWS set-up: region, credentials and the service clients (Secrets Manager, Parameter Store),
//! all bounded by the overall deadline. Every client is built by `service_client!`, so both
//! services share one HTTP client, endpoint rule and configuration. Credentials are resolved once, up front, so their failure is diagnosed on its own
//! (exit 78/77) instead of surfacing as an opaque request error, and so IMDS is asked once.

use crate::config::AwsOptions;
use crate::error::Error;
use crate::plan::{Backend, Plan};
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

pub type SsmClient = aws_sdk_ssm::Client;

/// One client per service and region the plan reads from; the default region is `default`.
pub struct Clients {
    pub default_region: String,
    by_region: BTreeMap<String, Client>,
    ssm_by_region: BTreeMap<String, SsmClient>,
}

/// The client for `region`, else the default region's. Only asked for regions the plan listed,
/// all of which were built.
fn pick<'a, C>(map: &'a BTreeMap<String, C>, region: &str, default: &str) -> &'a C {
    map.get(region)
        .or_else(|| map.get(default))
        .or_else(|| map.values().next())
        .expect("a client for every planned region")
}

impl Clients {
    pub fn for_region(&self, region: &str) -> &Client {
        pick(&self.by_region, region, &self.default_region)
    }

    pub fn ssm_for_region(&self, region: &str) -> &SsmClient {
        pick(&self.ssm_by_region, region, &self.default_region)
    }
}

/// A service client from the shared SDK configuration, for one region, with the resolved
/// credentials; a plain-http endpoint is pinned with its plain-http client. The one place a
/// client is built, so whatever one service's client gets (HTTP client, interceptors), every
/// service's client gets.
macro_rules! service_client {
    ($service:ident, $sdk:expr, $creds:expr, $region:expr, $plain:expr) => {{
        let mut conf = $service::config::Builder::from($sdk)
            .credentials_provider($creds.clone())
            .region(Region::new($region.to_string()));
        if let Some((url, http)) = $plain {
            conf = conf.endpoint_url(url.as_str()).http_client(http.clone());
        }
        $service::Client::from_conf(conf.build())
    }};
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
    // A plain-http endpoint (a local emulator, a sidecar proxy) needs no TLS: the default client
    // would still read every system root certificate (~300 files, several ms) before the first
    // request. Pinning the endpoint here keeps the client and the URL in step.
    let plain = |endpoint: &Option<String>| {
        endpoint
            .clone()
            .filter(|u| u.starts_with("http://"))
            .map(|u| (u, aws_smithy_http_client::Builder::new().build_http()))
    };
    let (sm_plain, ssm_plain) = (plain(&opts.endpoint), plain(&opts.ssm_endpoint));
    let wants = |backend: Backend| plan.entries.iter().any(|e| e.backend == backend);
    let mut by_region = BTreeMap::new();
    let mut ssm_by_region = BTreeMap::new();
    for r in regions {
        if wants(Backend::SecretsManager) {
            let c = service_client!(aws_sdk_secretsmanager, &sdk, creds, r, &sm_plain);
            by_region.insert(r.clone(), c);
        }
        if wants(Backend::ParameterStore) {
            let c = service_client!(aws_sdk_ssm, &sdk, creds, r, &ssm_plain);
            ssm_by_region.insert(r, c);
        }
    }
    Ok(Clients {
        default_region: region,
        by_region,
        ssm_by_region,
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
