//! The AWS client plumbing below the backends: client set-up (here), credentials, TLS, proxy,
//! body cap, attempts, SDK error reading, the AWS files, orphaned tasks.
//!
//! AWS set-up: region, credentials and the service clients (Secrets Manager, Parameter Store),
//! all bounded by the overall deadline. Every client is built by `service_client!`, so both
//! services share one HTTP client, endpoint rule and interceptors. Credentials are resolved once, up front, so their failure is diagnosed on its own
//! (exit 78/77) instead of surfacing as an opaque request error, and so IMDS is asked once.
//! Every client is built from one `SdkConfig` that names secret-exec in the User-Agent, and
//! finished by [`observe`], so any client a source adds is attributed and logged the same way.

pub mod attempts;
pub mod body_cap;
pub mod credentials;
pub mod files;
pub mod loopback;
pub mod orphans;
pub mod proxy;
pub mod quota;
pub(crate) mod sdk;
pub mod tls;
pub mod tls_pq;
pub mod url;

use crate::error::Error;
use crate::log::{self, Event};
use crate::plan::{Backend, Plan};
use crate::source::options::AwsOptions;
use aws_config::BehaviorVersion;
use aws_config::profile::ProfileSet;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_secretsmanager::config::Region;
use files::AwsFiles;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub type Client = aws_sdk_secretsmanager::Client;

/// The User-Agent product secret-exec adds to every AWS call, rendered by the SDK as
/// `lib/secret-exec/VERSION`, so CloudTrail's `userAgent` tells its calls from other SDK clients.
pub const UA_NAME: &str = "secret-exec";
pub const UA_VERSION: &str = env!("CARGO_PKG_VERSION");

pub type SsmClient = aws_sdk_ssm::Client;

/// One client per service and region the plan reads from; the default region is `default`.
pub struct Clients {
    pub default_region: String,
    by_region: BTreeMap<String, (Client, String)>,
    ssm_by_region: BTreeMap<String, SsmClient>,
}

impl Clients {
    pub fn for_region(&self, region: &str) -> &Client {
        &self.entry(region).0
    }

    /// The Secrets Manager endpoint asked in `region`, for messages that must say where.
    pub fn endpoint(&self, region: &str) -> &str {
        &self.entry(region).1
    }

    fn entry(&self, region: &str) -> &(Client, String) {
        self.by_region
            .get(region)
            .unwrap_or_else(|| &self.by_region[&self.default_region])
    }

    pub fn ssm_for_region(&self, region: &str) -> &SsmClient {
        self.ssm_by_region
            .get(region)
            .unwrap_or_else(|| &self.ssm_by_region[&self.default_region])
    }
}

/// A service client from the shared SDK configuration, for one region, with the resolved
/// credentials and `observe()`'s interceptor; a plain-http endpoint is pinned with its plain-http
/// client. The one place a client is built, so whatever one service's client gets, every
/// service's client gets.
macro_rules! service_client {
    ($service:ident, $sdk:expr, $creds:expr, $region:expr, $endpoint:expr, $shown:expr, $proxies:expr) => {{
        let mut conf = $service::config::Builder::from($sdk)
            .credentials_provider($creds.clone())
            .region(Region::new($region.to_string()))
            .interceptor(observe());
        // The endpoint secret-exec validated, pinned on the client.
        if let Some(url) = $endpoint {
            conf = conf.endpoint_url(url.as_str());
            // A plain-http endpoint (a local emulator, a sidecar proxy) needs no TLS: the
            // default client would still read every system root certificate before the first
            // request.
            if url.starts_with("http://") {
                conf = conf.http_client(tls::http_client($proxies.clone()));
            }
        }
        conf = conf.interceptor(body_cap::BodyCap {
            endpoint: $shown,
            cap: body_cap::MAX_BODY,
        });
        conf = conf.interceptor(Product);
        $service::Client::from_conf(conf.build())
    }};
}

/// Puts `lib/secret-exec/VERSION` in the User-Agent of every call a service client makes. Newer
/// service crates copy the `SdkConfig`'s framework metadata into their own configuration; the
/// pinned Parameter Store crate (see Cargo.toml) predates that, so the entry is appended to each
/// request's configuration before the User-Agent is built. The SDK drops a repeated entry, so a
/// client that already carries it still sends it once.
#[derive(Debug)]
struct Product;

impl aws_sdk_secretsmanager::config::Intercept for Product {
    fn name(&self) -> &'static str {
        "secret-exec product"
    }

    fn read_before_execution(
        &self,
        _: &aws_sdk_secretsmanager::config::interceptors::BeforeSerializationInterceptorContextRef<
            '_,
        >,
        cfg: &mut aws_sdk_secretsmanager::config::ConfigBag,
    ) -> Result<(), aws_sdk_secretsmanager::error::BoxError> {
        let product = aws_config::FrameworkMetadata::new(UA_NAME, Some(UA_VERSION))?;
        cfg.interceptor_state().store_append(product);
        Ok(())
    }
}

/// What every service client gets on top of the shared `SdkConfig`: the attempt log. Service
/// builders differ in type, so each source calls this on its own builder (one line each).
pub fn observe() -> aws_sdk_secretsmanager::config::SharedInterceptor {
    aws_sdk_secretsmanager::config::SharedInterceptor::new(attempts::Attempts)
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

/// The selected profile's `region`, else its `source_profile`'s, and so on (as the SDK's
/// profile region provider reads it), from the one parsed set.
fn profile_region(set: &ProfileSet) -> Option<String> {
    let mut name = set.selected_profile();
    // A chain without a loop visits each profile at most once; one with a loop finds nothing.
    for _ in 0..set.profiles().count() {
        let profile = set.get_profile(name)?;
        match profile.get("region") {
            Some(r) => return Some(r.to_string()),
            None => name = profile.get("source_profile")?,
        }
    }
    None
}

async fn resolve_region(
    opts: &AwsOptions,
    plan: &Plan,
    imds: &aws_config::imds::Client,
    profiles: Option<&ProfileSet>,
) -> Result<String, Error> {
    let started = Instant::now();
    let (region, from) = find_region(opts, plan, imds, profiles).await?;
    log::at(1, Event::Region)
        .region(&region)
        .took(started.elapsed())
        .say(format_args!("region {region} from {from}"));
    Ok(region)
}

async fn find_region(
    opts: &AwsOptions,
    plan: &Plan,
    imds: &aws_config::imds::Client,
    profiles: Option<&ProfileSet>,
) -> Result<(String, &'static str), Error> {
    if let Some(r) = &opts.region {
        return Ok((r.clone(), "--region"));
    }
    if let Some(r) = &opts.env_region {
        return Ok((r.clone(), "AWS_REGION/AWS_DEFAULT_REGION"));
    }
    if let Some(r) = profiles.and_then(profile_region) {
        return Ok((r, "the profile"));
    }
    if let Some(r) = plan.region_from_arns() {
        return Ok((r.to_string(), "the secret's ARN (no region configured)"));
    }
    let imds = aws_config::imds::region::ImdsRegionProvider::builder()
        .imds_client(imds.clone())
        .build();
    if let Some(r) = imds.region().await {
        return Ok((r.to_string(), "instance metadata"));
    }
    Err(Error::Config(
        "no AWS region configured; pass --region, set AWS_REGION, or give secrets by full ARN"
            .into(),
    ))
}

/// Builds every client the plan needs. Must run inside the overall deadline.
pub async fn clients(opts: &AwsOptions, plan: &Plan, files: AwsFiles) -> Result<Clients, Error> {
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

    // One HTTP client for every AWS call (TLS roots and proxies as the AWS CLI reads them); the
    // credential chain and IMDS get it too, since no other client is compiled in.
    // The profiles, parsed once: a file that does not parse is left to the credential chain,
    // which reports it.
    let profiles = files.profiles(opts.credentials.profile()).await;
    let set = profiles.as_ref().ok();
    let roots = tls::root_source(
        opts.aws_ca_bundle.as_deref(),
        set.and_then(|p| p.get("ca_bundle")),
        opts.ssl_cert_file.as_deref(),
        opts.ssl_cert_dir.as_deref(),
        std::path::Path::exists,
    );
    let https = tls::https_client(roots, opts.proxies.clone());
    let provider_config = ProviderConfig::without_region().with_http_client(https.clone());

    // One IMDS client for region and credentials: one session token serves both.
    let imds = credentials::imds_client(&provider_config);
    let region = resolve_region(opts, plan, &imds, set).await?;
    let started = Instant::now();
    let (source, creds) = credentials::resolve(
        &opts.credentials,
        &region,
        &imds,
        &provider_config,
        &credentials::ProfileInputs {
            files: files.profile_files(),
            profiles: &profiles,
            http: https.clone(),
            container_token: files.container_token.as_ref(),
        },
    )
    .await?;
    log::at(1, Event::Credentials)
        .took(started.elapsed())
        .say(format_args!("credentials resolved"));
    log::at(2, Event::Credentials).say(format_args!(
        "credentials from {} (access key id ending …{}{})",
        source.describe(opts.credentials.profile()),
        tail(creds.access_key_id()),
        if creds.expiry().is_some() {
            ", temporary"
        } else {
            ""
        }
    ));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.clone()))
        .retry_config(retry)
        .timeout_config(timeouts(opts.timeout, attempts))
        .http_client(https)
        .framework_metadata(
            aws_config::FrameworkMetadata::new(UA_NAME, Some(UA_VERSION))
                .map_err(|_| Error::Internal("invalid User-Agent product".into()))?,
        )
        .credentials_provider(SharedCredentialsProvider::new(creds.clone()))
        .profile_files(files.profile_files());
    if let Some(p) = &opts.profile {
        loader = loader.profile_name(p);
    }
    if let Some(url) = &opts.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let sdk = loader.load().await;

    let regions = plan.regions(&region);
    let wants = |backend: Backend| plan.entries.iter().any(|e| e.backend == backend);
    let mut by_region = BTreeMap::new();
    let mut ssm_by_region = BTreeMap::new();
    for r in regions {
        if wants(Backend::SecretsManager) {
            let shown = endpoint_of(opts.endpoint.as_deref(), &sdk, &r).await;
            let client = service_client!(
                aws_sdk_secretsmanager,
                &sdk,
                creds,
                r,
                &opts.endpoint,
                shown.clone(),
                opts.proxies
            );
            by_region.insert(r.clone(), (client, shown));
        }
        if wants(Backend::ParameterStore) {
            let shown = opts
                .ssm_endpoint
                .clone()
                .unwrap_or_else(|| format!("Parameter Store in {r}"));
            let client = service_client!(
                aws_sdk_ssm,
                &sdk,
                creds,
                r,
                &opts.ssm_endpoint,
                shown,
                opts.proxies
            );
            ssm_by_region.insert(r, client);
        }
    }
    Ok(Clients {
        default_region: region,
        by_region,
        ssm_by_region,
    })
}

/// The Secrets Manager endpoint a client for `region` calls: the configured one, else what the
/// SDK's own endpoint rules give for the region (FIPS and dual-stack settings included).
async fn endpoint_of(
    configured: Option<&str>,
    sdk: &aws_config::SdkConfig,
    region: &str,
) -> String {
    use aws_sdk_secretsmanager::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
    if let Some(url) = configured.or(sdk.endpoint_url()) {
        return url.to_string();
    }
    let params = Params::builder()
        .region(region)
        .set_use_fips(sdk.use_fips())
        .set_use_dual_stack(sdk.use_dual_stack())
        .build();
    match params {
        Ok(p) => match DefaultResolver::new().resolve_endpoint(&p).await {
            Ok(e) => e.url().to_string(),
            Err(_) => "the SDK's default endpoint".into(),
        },
        Err(_) => "the SDK's default endpoint".into(),
    }
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

    #[test]
    fn profile_region_follows_source_profile_and_stops_at_loops() {
        let config = "[profile a]\nsource_profile = b\n[profile b]\nregion = eu-west-3\n\
                      [profile c]\nregion = ap-south-1\nsource_profile = b\n\
                      [profile x]\nsource_profile = y\n[profile y]\nsource_profile = x\n\
                      [profile s]\nsource_profile = s\n";
        let region = |name: &str| profile_region(&crate::source::aws::files::parsed(config, name));
        assert_eq!(region("a").as_deref(), Some("eu-west-3"));
        assert_eq!(region("c").as_deref(), Some("ap-south-1"));
        for none in ["x", "s", "missing"] {
            assert_eq!(region(none), None, "{none}");
        }
    }
}
