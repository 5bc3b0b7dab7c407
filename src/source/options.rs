//! The source stage's options: the AWS settings a run uses, from the flags and the `AWS_*`
//! variables secret-exec reads itself (the SDK reads its own). Every field is checked here, so
//! the backends and the client plumbing never see raw text, and nothing else reads an `AWS_*`
//! variable.

use crate::error::Error;
use crate::source::agent::{self, AgentOptions};
use crate::source::aws::{credentials, proxy, url};
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

/// A file a setting names: the setting (for messages) and the path, `~` expanded.
#[derive(Debug, Clone)]
pub struct FileSetting {
    pub var: String,
    pub path: PathBuf,
}

/// The AWS files a run may read (see `source::aws::files`).
#[derive(Debug, Clone, Default)]
pub struct AwsFileSettings {
    /// `AWS_CONFIG_FILE`, else `~/.aws/config` (none without a HOME).
    pub config: Option<FileSetting>,
    /// `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
    pub credentials: Option<FileSetting>,
    /// `AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` when set.
    pub tokens: Vec<FileSetting>,
}

/// The settings read as text (the SDK's `AWS_*` ones, the proxy variables). A value that is not
/// UTF-8 would be dropped as if unset (a request could go to the public endpoint, or around the
/// proxy), so it is a 78 here.
pub const TEXT_SETTINGS: &[&str] = &[
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_SSO",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// `~` at the start of a path is HOME, as the AWS CLI and SDK read it.
fn expand_home(path: &OsStr, home: Option<&OsStr>) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_bytes();
    match (bytes.strip_prefix(b"~"), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with(b"/") => {
            let mut p = home.to_os_string();
            p.push(OsStr::from_bytes(rest));
            PathBuf::from(p)
        }
        _ => PathBuf::from(path),
    }
}

fn file_settings(env: &dyn Fn(&str) -> Option<OsString>) -> AwsFileSettings {
    let home = env("HOME").filter(|h| !h.is_empty());
    let named = |var: &str, default: &str| -> Option<FileSetting> {
        match env(var).filter(|v| !v.is_empty()) {
            Some(p) => Some(FileSetting {
                var: var.to_string(),
                path: expand_home(&p, home.as_deref()),
            }),
            None => home.as_ref().map(|h| FileSetting {
                var: format!("the default {var} location (~/{default})"),
                path: PathBuf::from(h).join(default),
            }),
        }
    };
    AwsFileSettings {
        config: named("AWS_CONFIG_FILE", ".aws/config"),
        credentials: named("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"),
        tokens: [
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        ]
        .iter()
        .filter_map(|var| {
            env(var).filter(|v| !v.is_empty()).map(|p| FileSetting {
                var: var.to_string(),
                path: expand_home(&p, home.as_deref()),
            })
        })
        .collect(),
    }
}

#[derive(Debug, Clone)]
pub struct AwsOptions {
    /// `--region`.
    pub region: Option<String>,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION` (blank counts as unset).
    pub env_region: Option<String>,
    pub profile: Option<String>,
    /// `--endpoint-url`.
    pub endpoint_url: Option<String>,
    /// The Secrets Manager endpoint the operator set, by flag or environment (see
    /// [`configured_endpoint`]).
    pub endpoint: Option<String>,
    /// The Parameter Store endpoint, the same way (`AWS_ENDPOINT_URL_SSM`).
    pub ssm_endpoint: Option<String>,
    /// `--agent` / `SECRET_EXEC_AGENT`: Secrets Manager reads go to the local agent.
    pub agent: Option<AgentOptions>,
    /// `--failover-region` / `SECRET_EXEC_FAILOVER_REGION` (see `plan::failover_region`).
    pub failover_region: Option<String>,
    pub timeout: Duration,
    /// `--max-attempts`, else `AWS_MAX_ATTEMPTS`, else 3.
    pub max_attempts: u32,
    /// `AWS_RETRY_MODE=adaptive`.
    pub adaptive_retry: bool,
    /// What chooses the credentials source (key variables, profile, container endpoint…).
    pub credentials: credentials::Settings,
    pub files: AwsFileSettings,
    /// `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` (either case), credential endpoints always direct.
    pub proxies: proxy::Proxies,
    /// Trust-root settings, first found wins (see `tls::root_source`).
    pub aws_ca_bundle: Option<OsString>,
    pub ssl_cert_file: Option<OsString>,
    pub ssl_cert_dir: Option<OsString>,
}

impl AwsOptions {
    /// The default region as far as flags and environment say (the profile and instance
    /// metadata are the run's to ask).
    pub fn known_region(&self) -> Option<&str> {
        self.region.as_deref().or(self.env_region.as_deref())
    }
}

/// Why `url` cannot be an endpoint: it needs http:// or https://, a host, and no spaces or
/// control characters (the SDK would otherwise fail later with a less helpful message).
pub fn endpoint_problem(text: &str) -> Option<&'static str> {
    let Some(rest) = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
    else {
        return Some("must start with http:// or https://");
    };
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("must not contain spaces or control characters");
    }
    let Some(uri) = url::parse(text) else {
        return Some(if rest.is_empty() {
            "has no host"
        } else {
            "is not a valid URL"
        });
    };
    match url::authority(&uri) {
        None => Some("has no host"),
        Some(a) if a.written.is_empty() => Some("has no host"),
        Some(a) if a.port().is_err() => Some("has a port that is not a number from 0 to 65535"),
        Some(_) => None,
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

/// The flags `AwsOptions::new` reads, as given (borrowed from the command line).
#[derive(Debug, Default)]
pub struct Flags<'a> {
    pub region: Option<&'a str>,
    pub profile: Option<&'a str>,
    pub endpoint_url: Option<&'a str>,
    /// `--agent[=URL]`.
    pub agent: Option<&'a str>,
    /// `--failover-region`.
    pub failover_region: Option<&'a str>,
    pub timeout: Duration,
    pub max_attempts: Option<u32>,
}

impl Flags<'_> {
    /// What can be refused from the flags alone (64), before the environment is read.
    pub fn check(&self) -> Result<(), Error> {
        if let Some(n) = self.max_attempts
            && !(1..=20).contains(&n)
        {
            return Err(Error::Usage(format!(
                "--max-attempts {n} must be between 1 and 20"
            )));
        }
        if let Some(url) = self.endpoint_url
            && let Some(why) = endpoint_problem(url)
        {
            return Err(Error::Usage(format!(
                "--endpoint-url '{url}' {why}; e.g. https://secretsmanager.eu-west-1.amazonaws.com"
            )));
        }
        for (flag, value) in [("--region", &self.region), ("--profile", &self.profile)] {
            if *value == Some("") {
                return Err(Error::Usage(format!("{flag} must not be empty")));
            }
        }
        Ok(())
    }
}

/// Every setting read as text must be UTF-8 (see [`TEXT_SETTINGS`]).
fn check_text(env: &dyn Fn(&str) -> Option<OsString>) -> Result<(), Error> {
    for var in TEXT_SETTINGS {
        if let Some(v) = env(var)
            && v.to_str().is_none()
        {
            return Err(Error::Config(format!(
                "{var}='{}' is not valid UTF-8, so the AWS SDK would ignore it; fix or unset it",
                v.to_string_lossy()
            )));
        }
    }
    Ok(())
}

/// The endpoint variables, checked (an empty one would make the SDK panic).
fn check_endpoints(text: &dyn Fn(&str) -> Option<String>) -> Result<(), Error> {
    let ignore_endpoints = text("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    for var in [
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "AWS_ENDPOINT_URL_SSM",
        "AWS_ENDPOINT_URL",
    ] {
        match text(var) {
            // Ignored by the SDK too; an empty one would make it panic otherwise.
            _ if ignore_endpoints => {}
            Some(v) if v.is_empty() => {
                return Err(Error::Config(format!(
                    "{var} is set but empty; give a URL or unset it"
                )));
            }
            Some(v) => {
                if let Some(why) = endpoint_problem(&v) {
                    return Err(Error::Config(format!(
                        "{var}='{v}' {why}; fix or unset it (--endpoint-url overrides it)"
                    )));
                }
            }
            None => {}
        }
    }
    Ok(())
}

/// `--agent` / `SECRET_EXEC_AGENT`, with the agent's token; `needs_token` when the run will
/// call the agent (every mode but `--print-iam-policy`).
fn agent_options(
    flag: Option<&str>,
    text: &dyn Fn(&str) -> Option<String>,
    needs_token: bool,
) -> Result<Option<AgentOptions>, Error> {
    let url = match (flag, text("SECRET_EXEC_AGENT")) {
        (Some(flag), _) => agent::parse_url(flag)
            .map_err(|why| Error::Usage(format!("--agent='{flag}': {why}")))?,
        (None, Some(env)) if !env.is_empty() => agent::parse_url(&env).map_err(|why| {
            Error::Config(format!("SECRET_EXEC_AGENT='{env}': {why}; fix or unset it"))
        })?,
        _ => return Ok(None),
    };
    let token = agent::token_from(&|name| text(name));
    if token.is_none() && needs_token {
        return Err(Error::Config(format!(
            "--agent needs the agent's token and none is set: put it in AWS_TOKEN \
             (or AWS_TOKEN=file://PATH), as the agent at {url} reads it"
        )));
    }
    Ok(Some(AgentOptions { url, token }))
}

impl AwsOptions {
    /// From the checked flags and the variables read through `env`. `needs_token`: see
    /// [`agent_options`].
    pub fn new(
        flags: Flags<'_>,
        env: &dyn Fn(&str) -> Option<OsString>,
        needs_token: bool,
    ) -> Result<AwsOptions, Error> {
        check_text(env)?;
        let text = |name: &str| env(name).map(|v| v.to_string_lossy().into_owned());
        let retry = env_retry(
            text("AWS_MAX_ATTEMPTS").as_deref(),
            text("AWS_RETRY_MODE").as_deref(),
        )?;
        check_endpoints(&text)?;
        let endpoint_for = |service_var: &str| {
            configured_endpoint(
                flags.endpoint_url,
                text(service_var).as_deref(),
                text("AWS_ENDPOINT_URL").as_deref(),
                text("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").as_deref(),
            )
        };
        let endpoint = endpoint_for("AWS_ENDPOINT_URL_SECRETS_MANAGER");
        let ssm_endpoint = endpoint_for("AWS_ENDPOINT_URL_SSM");
        let agent = agent_options(flags.agent, &text, needs_token)?;
        let failover_region = crate::plan::failover_region(
            flags.failover_region,
            text("SECRET_EXEC_FAILOVER_REGION").as_deref(),
        )?;
        let env_region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|v| text(v).filter(|r| !r.trim().is_empty()));
        let credentials = credentials::Settings::from_lookup(flags.profile, env);
        // Credential endpoints the operator pointed elsewhere must not go through a proxy either.
        let direct: Vec<String> = [
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        ]
        .iter()
        .filter_map(|k| proxy::host_of(&text(k)?))
        .collect();
        let proxies = proxy::from_env(text, &direct)?;
        Ok(AwsOptions {
            region: flags.region.map(str::to_string),
            env_region,
            profile: flags.profile.map(str::to_string),
            endpoint_url: flags.endpoint_url.map(str::to_string),
            endpoint,
            ssm_endpoint,
            agent,
            failover_region,
            timeout: flags.timeout,
            max_attempts: flags.max_attempts.or(retry.max_attempts).unwrap_or(3),
            adaptive_retry: retry.adaptive,
            credentials,
            files: file_settings(env),
            proxies,
            aws_ca_bundle: env("AWS_CA_BUNDLE"),
            ssl_cert_file: env("SSL_CERT_FILE"),
            ssl_cert_dir: env("SSL_CERT_DIR"),
        })
    }
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
    fn endpoint_problems() {
        let ok = [
            "http://127.0.0.1:4566",
            "https://secretsmanager.eu-west-1.amazonaws.com",
            "http://[::1]:8080/",
            "http://host/path?q",
        ];
        for url in ok {
            assert_eq!(endpoint_problem(url), None, "{url}");
        }
        for url in [
            "localhost:4566",
            "http://",
            "https://:80",
            "http://h:x",
            "http://a b",
            "",
        ] {
            assert!(endpoint_problem(url).is_some(), "{url}");
        }
    }
}
