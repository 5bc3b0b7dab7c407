//! AWS set-up: region, credentials and the Secrets Manager clients, all bounded by the overall
//! deadline. Credentials are resolved once, up front, so their failure is diagnosed on its own
//! (exit 78/77) instead of surfacing as an opaque request error, and so IMDS is asked once.

use crate::config::AwsOptions;
use crate::error::Error;
use crate::spec::Spec;
use crate::vlog;
use aws_config::BehaviorVersion;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_secretsmanager::config::Region;
use aws_smithy_types::error::display::DisplayErrorContext;
use std::collections::BTreeMap;
use std::ffi::OsStr;
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

/// Settings read from AWS_* variables that the SDK would otherwise panic on or ignore.
#[derive(Debug, PartialEq, Eq)]
pub struct EnvRetry {
    pub max_attempts: Option<u32>,
    pub adaptive: bool,
}

/// Validates AWS_MAX_ATTEMPTS and AWS_RETRY_MODE (the SDK panics on some invalid values).
pub fn env_retry(max_attempts: Option<&str>, mode: Option<&str>) -> Result<EnvRetry, Error> {
    let max_attempts = match max_attempts.map(str::trim) {
        None | Some("") => None,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=20).contains(&n) => Some(n),
            _ => {
                return Err(Error::Config(format!(
                    "AWS_MAX_ATTEMPTS='{v}' is not a whole number from 1 to 20; fix or unset it"
                )));
            }
        },
    };
    let adaptive = match mode.map(|m| m.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("standard") | Some("legacy") => false,
        Some("adaptive") => true,
        Some(other) => {
            return Err(Error::Config(format!(
                "AWS_RETRY_MODE='{other}' is not 'standard' or 'adaptive'; fix or unset it"
            )));
        }
    };
    Ok(EnvRetry {
        max_attempts,
        adaptive,
    })
}

fn check_endpoint_env() -> Result<(), Error> {
    for var in ["AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
            && !(v.starts_with("http://") || v.starts_with("https://"))
        {
            return Err(Error::Config(format!(
                "{var}='{v}' must start with http:// or https://"
            )));
        }
    }
    Ok(())
}

/// IMDS answers in milliseconds when it is there; when its packets are dropped (a container
/// behind an IMDSv2 hop limit of 1) the SDK's defaults would wait seconds per attempt.
fn fast_imds(provider: &ProviderConfig) -> aws_config::imds::Client {
    aws_config::imds::Client::builder()
        .configure(provider)
        .connect_timeout(Duration::from_millis(300))
        .read_timeout(Duration::from_millis(500))
        .max_attempts(1)
        .build()
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

fn in_container() -> bool {
    std::path::Path::new("/.dockerenv").exists()
        || std::path::Path::new("/run/.containerenv").exists()
        || std::env::var_os("ECS_CONTAINER_METADATA_URI_V4").is_some()
        || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
        || std::fs::read_to_string("/proc/1/cgroup")
            .map(|c| {
                ["docker", "kubepods", "containerd", "ecs"]
                    .iter()
                    .any(|k| c.contains(k))
            })
            .unwrap_or(false)
}

fn credentials_error(e: CredentialsError) -> Error {
    if let Some(err) = crate::tls::transport_error(&e, "cannot load AWS credentials") {
        return err;
    }
    match e {
        CredentialsError::CredentialsNotLoaded(_) => {
            let mut msg = String::from(
                "no AWS credentials found (tried: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the \
                 shared config and credentials files for AWS_PROFILE, web identity token \
                 (AWS_WEB_IDENTITY_TOKEN_FILE), the ECS container endpoint, EC2 instance \
                 metadata); provide one of them",
            );
            if in_container() {
                msg.push_str(
                    ". In a container on EC2, IMDSv2 needs a hop limit of 2 to be reachable: \
                     aws ec2 modify-instance-metadata-options --http-put-response-hop-limit 2",
                );
            }
            Error::Config(msg)
        }
        CredentialsError::ProviderError(_) => Error::Permission {
            what: "AWS credentials are invalid or expired".into(),
            why: format!(
                "{}; refresh them (e.g. aws sso login) and retry",
                DisplayErrorContext(&e)
            ),
        },
        other => Error::Config(format!(
            "cannot load AWS credentials: {}",
            DisplayErrorContext(&other)
        )),
    }
}

/// The region of the first ARN among the specs, if any.
fn arn_region(specs: &[Spec]) -> Option<String> {
    specs
        .iter()
        .find_map(|s| s.secret.arn_region())
        .map(str::to_string)
}

async fn resolve_region(
    opts: &AwsOptions,
    specs: &[Spec],
    provider: &ProviderConfig,
) -> Result<String, Error> {
    if let Some(r) = &opts.region {
        return Ok(r.clone());
    }
    let mut profile = ProfileFileRegionProvider::builder();
    if let Some(p) = &opts.profile {
        profile = profile.profile_name(p);
    }
    let configured = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(profile.build());
    if let Some(r) = configured.region().await {
        return Ok(r.to_string());
    }
    let names_only_by_arn = specs.iter().all(|s| s.secret.arn_region().is_some());
    if names_only_by_arn && let Some(r) = arn_region(specs) {
        vlog!(1, "no region configured; using {r} from the secret's ARN");
        return Ok(r);
    }
    let imds = aws_config::imds::region::ImdsRegionProvider::builder()
        .imds_client(fast_imds(provider))
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

/// Builds every client the specs need. Must run inside the overall deadline.
pub async fn clients(opts: &AwsOptions, specs: &[Spec]) -> Result<Clients, Error> {
    let env = env_retry(
        std::env::var("AWS_MAX_ATTEMPTS").ok().as_deref(),
        std::env::var("AWS_RETRY_MODE").ok().as_deref(),
    )?;
    check_endpoint_env()?;
    let attempts = opts.max_attempts.or(env.max_attempts).unwrap_or(3);
    let retry = if env.adaptive {
        RetryConfig::adaptive()
    } else {
        RetryConfig::standard()
    }
    .with_max_attempts(attempts)
    // Tighter than the SDK's 1 s / 20 s: a launcher's whole budget is a few seconds.
    .with_initial_backoff(Duration::from_millis(100))
    .with_max_backoff(Duration::from_secs(2));

    // One HTTP client for every AWS call (TLS roots and proxies as the AWS CLI reads them);
    // the credential chain and IMDS get it too, since no other client is compiled in.
    let direct: Vec<String> = [
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    ]
    .iter()
    .filter_map(|k| crate::proxy::host_of(&std::env::var(k).ok()?))
    .collect();
    let proxies = crate::proxy::from_env(|k| std::env::var(k).ok(), &direct)?;
    let profile_ca_bundle = if std::env::var_os("AWS_CA_BUNDLE").is_some_and(|v| !v.is_empty()) {
        None
    } else {
        crate::tls::profile_ca_bundle(opts.profile.as_deref()).await
    };
    let roots = crate::tls::root_source(
        std::env::var_os("AWS_CA_BUNDLE").as_deref(),
        profile_ca_bundle.as_deref(),
        std::env::var_os("SSL_CERT_FILE").as_deref(),
        std::env::var_os("SSL_CERT_DIR").as_deref(),
        std::path::Path::exists,
    );
    let https = crate::tls::https_client(roots, proxies.clone());
    let provider_config = ProviderConfig::without_region().with_http_client(https.clone());

    let region = resolve_region(opts, specs, &provider_config).await?;

    // Static keys in the environment are the default chain's first link, so the chain would
    // return them anyway; building it would also build its web-identity STS client, and that
    // reads every system root certificate even when nothing is fetched over TLS.
    let provider = if static_keys_in_env(
        std::env::var_os("AWS_ACCESS_KEY_ID").as_deref(),
        std::env::var_os("AWS_SECRET_ACCESS_KEY").as_deref(),
    ) {
        vlog!(
            2,
            "credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        );
        SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new())
    } else {
        let mut chain =
            aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                .configure(provider_config.clone())
                .imds_client(fast_imds(&provider_config))
                .region(Region::new(region.clone()));
        if let Some(p) = &opts.profile {
            chain = chain.profile_name(p);
        }
        SharedCredentialsProvider::new(chain.build().await)
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.clone()))
        .retry_config(retry)
        .timeout_config(timeouts(opts.timeout, attempts))
        .http_client(https)
        .credentials_provider(provider);
    if let Some(p) = &opts.profile {
        loader = loader.profile_name(p);
    }
    if let Some(url) = &opts.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let sdk = loader.load().await;

    let provider = sdk
        .credentials_provider()
        .ok_or_else(|| Error::Internal("no credentials provider configured".into()))?;
    let creds = provider
        .provide_credentials()
        .await
        .map_err(credentials_error)?;
    vlog!(
        2,
        "credentials loaded (access key id ending …{})",
        tail(creds.access_key_id())
    );

    let mut regions: Vec<String> = specs
        .iter()
        .filter_map(|s| s.secret.arn_region().map(str::to_string))
        .collect();
    regions.push(region.clone());
    regions.sort();
    regions.dedup();
    let endpoint = configured_endpoint(
        opts.endpoint_url.as_deref(),
        std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER")
            .ok()
            .as_deref(),
        std::env::var("AWS_ENDPOINT_URL").ok().as_deref(),
        std::env::var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .ok()
            .as_deref(),
    );
    // A plain-http endpoint (a local emulator, a sidecar proxy) needs no TLS: the default client
    // would still read every system root certificate (~300 files, several ms) before the first
    // request. Pinning the endpoint here keeps the client and the URL in step.
    let plain = endpoint
        .filter(|u| u.starts_with("http://"))
        .map(|u| (u, crate::tls::http_client(proxies.clone())));
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

/// Whether the environment holds a complete static key pair (what the default chain's
/// environment link accepts; a lone half falls through to the full chain and its diagnosis).
fn static_keys_in_env(id: Option<&OsStr>, secret: Option<&OsStr>) -> bool {
    id.is_some_and(|v| !v.is_empty()) && secret.is_some_and(|v| !v.is_empty())
}

/// The Secrets Manager endpoint set by the operator, in the SDK's order: `--endpoint-url`, then
/// `AWS_ENDPOINT_URL_SECRETS_MANAGER`, then `AWS_ENDPOINT_URL` (both ignored when
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is true). Endpoints in profile files are left to the
/// SDK, which then keeps its TLS-capable client.
pub fn configured_endpoint(
    flag: Option<&str>,
    service_env: Option<&str>,
    global_env: Option<&str>,
    ignore_env: Option<&str>,
) -> Option<String> {
    if let Some(url) = flag {
        return Some(url.to_string());
    }
    if ignore_env.is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return None;
    }
    [service_env, global_env]
        .into_iter()
        .flatten()
        .find(|u| !u.is_empty())
        .map(str::to_string)
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
    fn env_retry_table() {
        let ok: &[(Option<&str>, Option<&str>, Option<u32>, bool)] = &[
            (None, None, None, false),
            (Some("5"), None, Some(5), false),
            (Some(""), Some("adaptive"), None, true),
            (None, Some("Standard"), None, false),
            (None, Some("legacy"), None, false),
        ];
        for (m, r, want_m, want_a) in ok {
            let got = env_retry(*m, *r).unwrap();
            assert_eq!(
                got,
                EnvRetry {
                    max_attempts: *want_m,
                    adaptive: *want_a
                }
            );
        }
        for (m, r) in [
            (Some("0"), None),
            (Some("x"), None),
            (Some("-1"), None),
            (Some("99"), None),
            (None, Some("fast")),
        ] {
            let err = env_retry(m, r).unwrap_err();
            assert_eq!(err.exit_code(), 78, "{m:?} {r:?}");
        }
    }

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
    fn static_keys_need_both_halves() {
        let rows = [
            (Some("AKIA"), Some("s3cr3t"), true),
            (Some("AKIA"), None, false),
            (None, Some("s3cr3t"), false),
            (Some(""), Some("s3cr3t"), false),
            (Some("AKIA"), Some(""), false),
            (None, None, false),
        ];
        for (id, secret, want) in rows {
            let got = static_keys_in_env(id.map(OsStr::new), secret.map(OsStr::new));
            assert_eq!(got, want, "{id:?}");
        }
    }

    #[test]
    fn endpoint_precedence() {
        let (f, s, g) = ("http://flag", "http://service", "https://global");
        let rows: &[(
            Option<&str>,
            Option<&str>,
            Option<&str>,
            Option<&str>,
            Option<&str>,
        )] = &[
            (None, None, None, None, None),
            (Some(f), Some(s), Some(g), None, Some(f)),
            (None, Some(s), Some(g), None, Some(s)),
            (None, None, Some(g), None, Some(g)),
            (None, Some(""), Some(g), None, Some(g)),
            (None, Some(s), Some(g), Some("true"), None),
            (None, Some(s), Some(g), Some("TRUE"), None),
            (Some(f), Some(s), Some(g), Some("true"), Some(f)),
            (None, Some(s), None, Some("false"), Some(s)),
        ];
        for (flag, service, global, ignore, want) in rows {
            assert_eq!(
                configured_endpoint(*flag, *service, *global, *ignore).as_deref(),
                *want,
                "{flag:?} {service:?} {global:?} {ignore:?}"
            );
        }
    }

    #[test]
    fn tail_is_safe_on_short_ids() {
        assert_eq!(tail("AKIAEXAMPLE1234"), "1234");
        assert_eq!(tail("ab"), "ab");
    }
}
