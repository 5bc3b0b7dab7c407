//! AWS set-up: region, credentials and the Secrets Manager clients, all bounded by the overall
//! deadline. Credentials are resolved once, up front, so their failure is diagnosed on its own
//! (exit 78/77) instead of surfacing as an opaque request error, and so IMDS is asked once.

use crate::config::AwsOptions;
use crate::credentials;
use crate::error::Error;
use crate::spec::Spec;
use crate::vlog;
use aws_config::BehaviorVersion;
use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
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
    imds: &aws_config::imds::Client,
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

    // One IMDS client for region and credentials: one session token serves both.
    let imds = credentials::imds_client();
    let region = resolve_region(opts, specs, &imds).await?;
    let settings = credentials::Settings::from_env(opts.profile.as_deref());
    let (source, creds) = credentials::resolve(&settings, &region, &imds).await?;
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
