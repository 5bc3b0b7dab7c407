//! Where AWS credentials come from and what their failures mean. The sources and their order
//! follow the AWS CLI (a `--profile` flag drops the key variables); each is asked in turn, so
//! a failure is pinned to the source that caused it and classified here into one exit code and
//! one line. Messages render causes with `Display` only — an SDK error's `Debug` form can run
//! to pages — and never include a reply body, so a malformed answer cannot echo a credential.

/// The SDK's provider trait for a provider of ours, whose work is a plain
/// `async fn credentials(&self) -> provider::Result`: the trait wants it boxed, with its lifetime
/// spelled out, and that wrapping is the same for every one of them.
macro_rules! provide_from_credentials_fn {
    ($provider:ty) => {
        impl aws_credential_types::provider::ProvideCredentials for $provider {
            fn provide_credentials<'a>(
                &'a self,
            ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
            where
                Self: 'a,
            {
                aws_credential_types::provider::future::ProvideCredentials::new(self.credentials())
            }
        }
    };
}

pub mod container;
pub mod process;

use crate::error::Error;
use crate::source::aws::sdk::cause_chain;
use crate::source::aws::tls::{self, Transport};
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::imds::client::error::ImdsError;
use aws_config::profile::{ProfileFileLoadError, ProfileSet};
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_runtime::env_config::file::EnvConfigFiles;
use aws_sdk_secretsmanager::config::Region;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, SharedRetryClassifier,
};
use aws_smithy_types::retry::ErrorKind;
use container::{ContainerError, ContainerTarget, TokenSource};
use std::ffi::OsStr;
use std::time::Duration;
use zeroize::Zeroizing;

/// One place credentials can come from, in the order they are asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    EnvKeys,
    Profile,
    WebIdentity,
    Container,
    Imds,
}

impl CredentialSource {
    /// How the source is named in messages, with the settings that turn it on.
    pub fn describe(self, profile: &str) -> String {
        match self {
            CredentialSource::EnvKeys => "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY".into(),
            CredentialSource::Profile => format!(
                "profile '{profile}' in the shared config and credentials files (--profile, AWS_PROFILE)"
            ),
            CredentialSource::WebIdentity => {
                "web identity (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN)".into()
            }
            CredentialSource::Container => {
                "the ECS container / EKS Pod Identity endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI)".into()
            }
            CredentialSource::Imds => "EC2 instance metadata".into(),
        }
    }
}

/// What decides the sources, read once from the flags and the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--profile`: it wins over the key variables, as in the AWS CLI.
    pub profile_flag: Option<String>,
    /// `AWS_PROFILE` (non-empty).
    pub profile_env: Option<String>,
    /// Both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set and non-empty.
    pub env_keys: bool,
    /// AWS_EC2_METADATA_DISABLED=true.
    pub imds_disabled: bool,
    /// The container endpoint, or why its settings are invalid.
    pub container: Result<ContainerTarget, String>,
    pub token: TokenSource,
    /// Running in a container (for the IMDS hop-limit hint).
    pub in_container: bool,
    /// The shared files as messages name them.
    pub config_file: String,
    pub credentials_file: String,
}

impl Settings {
    /// Built by `Config` from its one environment lookup: the AWS_* variables that choose a
    /// credentials source.
    pub fn from_lookup(
        profile_flag: Option<&str>,
        env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Settings {
        let var = |k: &str| {
            env(k)
                .and_then(|v| v.into_string().ok())
                .filter(|v| !v.is_empty())
        };
        let file = |k: &str, default: &str| {
            env(k).map_or_else(|| default.to_string(), |v| v.to_string_lossy().into_owned())
        };
        Settings {
            profile_flag: profile_flag.map(str::to_string),
            profile_env: var("AWS_PROFILE"),
            env_keys: static_keys_in_env(
                env("AWS_ACCESS_KEY_ID").as_deref(),
                env("AWS_SECRET_ACCESS_KEY").as_deref(),
            ),
            imds_disabled: var("AWS_EC2_METADATA_DISABLED")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            container: container::target(
                var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").as_deref(),
                var("AWS_CONTAINER_CREDENTIALS_FULL_URI").as_deref(),
            ),
            token: TokenSource {
                file: env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
                    .filter(|v| !v.is_empty())
                    .map(Into::into),
                contents: None,
                value: var("AWS_CONTAINER_AUTHORIZATION_TOKEN").map(Zeroizing::new),
            },
            in_container: in_container(env),
            config_file: file("AWS_CONFIG_FILE", "~/.aws/config"),
            credentials_file: file("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
        }
    }

    /// The profile whose name messages use.
    pub fn profile(&self) -> &str {
        self.profile_flag
            .as_deref()
            .or(self.profile_env.as_deref())
            .unwrap_or("default")
    }

    /// A profile the user named, which must then exist.
    fn named_profile(&self) -> Option<&str> {
        self.profile_flag.as_deref().or(self.profile_env.as_deref())
    }
}

/// Whether the environment holds a complete static key pair (what the default chain's
/// environment link accepts; a lone half falls through to the full chain and its diagnosis).
pub fn static_keys_in_env(id: Option<&OsStr>, secret: Option<&OsStr>) -> bool {
    id.is_some_and(|v| !v.is_empty()) && secret.is_some_and(|v| !v.is_empty())
}

/// The sources to ask, in order. Static keys in the environment end the search before it
/// starts (unless `--profile` overrides them), so nothing else is built or contacted.
pub fn sources(s: &Settings) -> Vec<CredentialSource> {
    if s.env_keys && s.profile_flag.is_none() {
        return vec![CredentialSource::EnvKeys];
    }
    let mut v = Vec::with_capacity(5);
    if s.profile_flag.is_none() {
        v.push(CredentialSource::EnvKeys);
    }
    v.extend([
        CredentialSource::Profile,
        CredentialSource::WebIdentity,
        CredentialSource::Container,
    ]);
    if !s.imds_disabled {
        v.push(CredentialSource::Imds);
    }
    v
}

/// The SDK's wrapper text adds nothing ("an error occurred while loading credentials"); its
/// cause is what to show.
fn cause(e: &CredentialsError) -> String {
    let text = match std::error::Error::source(e) {
        Some(inner) => cause_chain(inner),
        None => cause_chain(e),
    };
    without_helper_stderr(text)
}

/// The SDK quotes a failed `credential_process` helper's whole stderr, which may hold anything
/// (a token, a dump); only the fact that it failed and its status are shown.
fn without_helper_stderr(text: String) -> String {
    match text.find(". Stderr:") {
        Some(at) => format!(
            "{} (its stderr is not shown; run the credential_process command by hand to see it)",
            &text[..at]
        ),
        None => text,
    }
}

/// What one source's failure means for the whole search.
#[derive(Debug)]
pub enum Step {
    /// Not configured here; ask the next source.
    Next,
    /// Configured but gave nothing; the search ends with "no credentials" and this reason.
    NoCredentials(String),
    /// A failure worth its own line and exit code.
    Fail(Error),
}

/// The source did not answer usefully after its retry (69).
fn unavailable(what: &str, why: String) -> Step {
    Step::Fail(Error::credentials(false, what, why))
}

/// The source refused to hand out credentials (77).
fn refused(what: impl Into<String>, why: String) -> Step {
    Step::Fail(Error::credentials(true, what, why))
}

/// Classifies one source's error. Pure over the error value.
pub fn classify(source: CredentialSource, profile: &str, e: &CredentialsError) -> Step {
    if let CredentialsError::CredentialsNotLoaded(_) = e {
        return Step::Next;
    }
    // An untrusted certificate (an STS or SSO endpoint behind a TLS-inspecting proxy) is the
    // same configuration problem wherever it shows up; retrying another source would hide it.
    match tls::transport_error(e) {
        Some(Transport::Certificate(why)) => {
            return Step::Fail(Error::Config(format!("cannot load AWS credentials: {why}")));
        }
        Some(Transport::Proxy(why)) => return unavailable("cannot load AWS credentials", why),
        None => {}
    }
    let inner = std::error::Error::source(e);
    match source {
        CredentialSource::Imds => {
            if let Some(ImdsError::ErrorResponse(r)) = inner.and_then(|i| i.downcast_ref()) {
                let status = r.response().status().as_u16();
                if status == 429 || status >= 500 {
                    return unavailable(
                        "EC2 instance metadata is unavailable",
                        format!("it answered HTTP {status} after a retry; retry the start"),
                    );
                }
            }
            if let CredentialsError::Unhandled(_) = e {
                // A reply that did not parse; its text could hold a key, so it is not shown.
                return Step::NoCredentials(
                    "EC2 instance metadata answered with something that is not credentials".into(),
                );
            }
            Step::NoCredentials(format!("EC2 instance metadata: {}", cause(e)))
        }
        CredentialSource::Container => match inner.and_then(|i| i.downcast_ref::<ContainerError>())
        {
            Some(ContainerError::Token(why)) => Step::Fail(Error::Config(why.clone())),
            Some(err @ ContainerError::Status { status, .. })
                if (400..500).contains(status) && *status != 429 =>
            {
                refused(
                    "container credentials refused",
                    format!(
                        "{err}; check AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or \
                         AWS_CONTAINER_AUTHORIZATION_TOKEN and the task or pod role"
                    ),
                )
            }
            Some(err) => unavailable(
                "no credentials from the container endpoint",
                format!("{err}; retry the start"),
            ),
            None => match e {
                CredentialsError::InvalidConfiguration(_) => Step::Fail(Error::Config(cause(e))),
                _ => unavailable("no credentials from the container endpoint", cause(e)),
            },
        },
        CredentialSource::EnvKeys => Step::Fail(Error::Config(format!(
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: {}",
            cause(e)
        ))),
        CredentialSource::Profile => match e {
            CredentialsError::ProviderError(_)
                if let Some(p) = inner.and_then(|i| i.downcast_ref::<process::ProcessError>()) =>
            {
                refused(
                    format!("the credential_process of profile '{}' failed", p.profile),
                    p.why.to_string(),
                )
            }
            CredentialsError::ProviderError(_) => refused(
                format!("credentials of profile '{profile}' are invalid or expired"),
                format!(
                    "{}; refresh them (for an SSO profile: aws sso login --profile {profile}) \
                     and retry",
                    cause(e)
                ),
            ),
            _ => Step::Fail(Error::Config(format!(
                "cannot load credentials of profile '{profile}': {}",
                cause(e)
            ))),
        },
        CredentialSource::WebIdentity => match e {
            CredentialsError::ProviderError(_) => refused(
                "web identity credentials were refused",
                format!(
                    "{}; check AWS_ROLE_ARN, the role's trust policy and \
                     AWS_WEB_IDENTITY_TOKEN_FILE",
                    cause(e)
                ),
            ),
            _ => Step::Fail(Error::Config(format!(
                "cannot use web identity (AWS_WEB_IDENTITY_TOKEN_FILE): {}",
                cause(e)
            ))),
        },
    }
}

/// The "no credentials" line: only the sources actually asked, and a command only when it is
/// complete and relevant (IMDS was asked, from inside a container).
pub fn no_credentials(
    tried: &[CredentialSource],
    profile: &str,
    reasons: &[String],
    in_container: bool,
) -> Error {
    let list: Vec<String> = tried.iter().map(|s| s.describe(profile)).collect();
    let mut msg = format!("no AWS credentials found (tried: {})", list.join(", "));
    for r in reasons {
        msg.push_str("; ");
        msg.push_str(r);
    }
    msg.push_str("; provide one of them");
    if in_container && tried.contains(&CredentialSource::Imds) {
        msg.push_str(
            ". In a container on EC2, IMDSv2 needs a hop limit of 2 to be reachable: \
             aws ec2 modify-instance-metadata-options --instance-id <instance-id> \
             --http-endpoint enabled --http-put-response-hop-limit 2",
        );
    }
    Error::Config(msg)
}

/// IMDS retry policy: server errors, throttling (429, what a herd of starting containers
/// meets), an expired token (401) and no answer at all get one retry; 403 (IMDS turned off)
/// and 404 do not.
#[derive(Debug, Default)]
struct HerdRetry;

impl ClassifyRetry for HerdRetry {
    fn name(&self) -> &'static str {
        "secret-exec IMDS retry"
    }

    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        // The SDK's standard backoff waits up to a full second; a fixed short pause keeps the
        // retry inside the ~1 s an IMDS operation is allowed.
        let quick = RetryAction::retryable_error_with_explicit_delay(
            ErrorKind::ServerError,
            Duration::from_millis(50),
        );
        match ctx.response().map(|r| r.status().as_u16()) {
            Some(s) if s >= 500 || s == 429 || s == 401 => quick,
            Some(_) => RetryAction::NoActionIndicated,
            // No answer at all (timeout, refused, reset); not a failed token fetch, which has
            // had its own retry already.
            None => match ctx.output_or_error() {
                Some(Err(e)) if e.is_timeout_error() || e.is_connector_error() => quick,
                _ => RetryAction::NoActionIndicated,
            },
        }
    }
}

/// One IMDS client for region and credentials, so one session token serves both. IMDS answers
/// in milliseconds when it is there; each operation (token included) has two attempts and ends
/// within 1.2 s, so a dropped-packet IMDS still gives "no credentials" well under 2 s.
pub fn imds_client(conf: &ProviderConfig) -> aws_config::imds::Client {
    aws_config::imds::Client::builder()
        .configure(conf)
        .connect_timeout(Duration::from_millis(250))
        .read_timeout(Duration::from_millis(400))
        .operation_attempt_timeout(Duration::from_millis(450))
        .operation_timeout(Duration::from_millis(1200))
        .max_attempts(2)
        .retry_classifier(SharedRetryClassifier::new(HerdRetry))
        .build()
}

fn in_container(env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    std::path::Path::new("/.dockerenv").exists()
        || std::path::Path::new("/run/.containerenv").exists()
        || env("ECS_CONTAINER_METADATA_URI_V4").is_some()
        || env("KUBERNETES_SERVICE_HOST").is_some()
        || std::fs::read_to_string("/proc/1/cgroup")
            .map(|c| {
                ["docker", "kubepods", "containerd", "ecs"]
                    .iter()
                    .any(|k| c.contains(k))
            })
            .unwrap_or(false)
}

/// A named profile must exist in one of the files; the SDK would fall through silently.
fn check_profile(
    name: &str,
    s: &Settings,
    loaded: &Result<ProfileSet, ProfileFileLoadError>,
) -> Result<(), Error> {
    let set = loaded.as_ref().map_err(|e| {
        Error::Config(format!(
            "cannot read the AWS config files: {}",
            cause_chain(e)
        ))
    })?;
    if set.get_profile(name).is_none() {
        return Err(Error::Config(format!(
            "profile '{name}' not found in {} or {}; check --profile and AWS_PROFILE",
            s.config_file, s.credentials_file,
        )));
    }
    Ok(())
}

/// What the sources are built from besides the settings, all read once by `files`.
pub struct ProfileInputs<'a> {
    /// The profile files' contents, for the SDK's own profile provider.
    pub files: EnvConfigFiles,
    /// The same contents parsed once (see `files::AwsFiles::profiles`).
    pub profiles: &'a Result<ProfileSet, ProfileFileLoadError>,
    pub http: SharedHttpClient,
    /// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE's contents, when it is set and exists.
    pub container_token: Option<&'a Zeroizing<Vec<u8>>>,
}

/// Builds the provider for each source. STS and SSO clients inside the profile and web
/// identity providers follow the usual endpoint settings (AWS_ENDPOINT_URL_STS, …).
/// A profile chain whose base is a `credential_process` gets secret-exec's bounded provider
/// (see `process`); every other one is the SDK's.
async fn provider(
    source: CredentialSource,
    s: &Settings,
    conf: &ProviderConfig,
    imds: &aws_config::imds::Client,
    region: &str,
    inputs: &ProfileInputs<'_>,
    profiles: Option<&ProfileSet>,
) -> Result<SharedCredentialsProvider, Error> {
    Ok(match source {
        CredentialSource::EnvKeys => {
            SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new())
        }
        CredentialSource::Profile => {
            // Profiles that do not parse stay with the SDK's provider, which reports them.
            let own =
                profiles.and_then(|set| Some((process::chain(set, set.selected_profile())?, set)));
            if let Some((chain, set)) = own {
                return Ok(SharedCredentialsProvider::new(process::ProcessProvider {
                    chain,
                    region: Region::new(region.to_string()),
                    http: inputs.http.clone(),
                    files: inputs.files.clone(),
                    profile_name: set.selected_profile().to_string(),
                }));
            }
            let mut b = aws_config::profile::ProfileFileCredentialsProvider::builder()
                .configure(conf)
                .profile_files(inputs.files.clone());
            if let Some(p) = s.named_profile() {
                b = b.profile_name(p);
            }
            SharedCredentialsProvider::new(b.build())
        }
        CredentialSource::WebIdentity => SharedCredentialsProvider::new(
            aws_config::web_identity_token::WebIdentityTokenCredentialsProvider::builder()
                .configure(conf)
                .build(),
        ),
        CredentialSource::Container => match &s.container {
            Err(why) => return Err(Error::Config(why.clone())),
            Ok(ContainerTarget::Http(endpoint)) => {
                SharedCredentialsProvider::new(container::ContainerProvider {
                    endpoint: endpoint.clone(),
                    token: TokenSource {
                        contents: inputs.container_token.cloned(),
                        ..s.token.clone()
                    },
                })
            }
            Ok(_) => SharedCredentialsProvider::new(
                aws_config::ecs::EcsCredentialsProvider::builder()
                    .configure(conf)
                    .build(),
            ),
        },
        CredentialSource::Imds => SharedCredentialsProvider::new(
            aws_config::imds::credentials::ImdsCredentialsProvider::builder()
                .configure(conf)
                .imds_client(imds.clone())
                .build(),
        ),
    })
}

/// Asks each source in turn; the first credentials win.
pub async fn resolve(
    s: &Settings,
    region: &str,
    imds: &aws_config::imds::Client,
    conf: &ProviderConfig,
    inputs: &ProfileInputs<'_>,
) -> Result<(CredentialSource, Credentials), Error> {
    let list = sources(s);
    let uses_profiles = list.contains(&CredentialSource::Profile);
    if let (true, Some(name)) = (uses_profiles, s.named_profile()) {
        check_profile(name, s, inputs.profiles)?;
    }
    let profiles = inputs.profiles.as_ref().ok().filter(|_| uses_profiles);
    let conf = conf
        .clone()
        .with_region(Some(Region::new(region.to_string())));
    let mut reasons = Vec::new();
    for &source in &list {
        let p = provider(source, s, &conf, imds, region, inputs, profiles).await?;
        match p.provide_credentials().await {
            Ok(c) => return Ok((source, c)),
            Err(e) => match classify(source, s.profile(), &e) {
                Step::Next => {}
                Step::NoCredentials(r) => reasons.push(r),
                Step::Fail(err) => return Err(err),
            },
        }
    }
    Err(no_credentials(&list, s.profile(), &reasons, s.in_container))
}

#[cfg(test)]
mod tests {
    use super::*;
    use CredentialSource::*;

    fn settings(flag: Option<&str>, env_keys: bool, imds_disabled: bool) -> Settings {
        Settings {
            profile_flag: flag.map(str::to_string),
            env_keys,
            imds_disabled,
            profile_env: None,
            container: Ok(ContainerTarget::None),
            token: TokenSource::default(),
            in_container: false,
            config_file: String::new(),
            credentials_file: String::new(),
        }
    }

    #[test]
    fn source_order() {
        let rows: &[(Option<&str>, bool, bool, &[CredentialSource])] = &[
            (None, true, false, &[EnvKeys]),
            (None, true, true, &[EnvKeys]),
            (
                None,
                false,
                false,
                &[EnvKeys, Profile, WebIdentity, Container, Imds],
            ),
            (
                None,
                false,
                true,
                &[EnvKeys, Profile, WebIdentity, Container],
            ),
            // --profile wins over the key variables, as in the AWS CLI.
            (
                Some("p"),
                true,
                false,
                &[Profile, WebIdentity, Container, Imds],
            ),
            (Some("p"), false, true, &[Profile, WebIdentity, Container]),
        ];
        for (flag, keys, off, want) in rows {
            assert_eq!(
                sources(&settings(*flag, *keys, *off)),
                *want,
                "{flag:?} {keys} {off}"
            );
        }
    }

    #[test]
    fn no_credentials_lists_only_what_was_tried() {
        let all = [EnvKeys, Profile, WebIdentity, Container, Imds];
        let msg = no_credentials(&all[..4], "default", &[], true).to_string();
        assert!(!msg.contains("instance metadata"), "{msg}");
        assert!(!msg.contains("hop limit"), "{msg}");
        let msg = no_credentials(&all, "dev", &["EC2 instance metadata: x".into()], true);
        assert_eq!(msg.exit_code(), 78);
        let msg = msg.to_string();
        for want in [
            "AWS_ACCESS_KEY_ID",
            "profile 'dev'",
            "web identity",
            "ECS container",
            "EC2 instance metadata: x",
            "--instance-id <instance-id>",
            "--http-put-response-hop-limit 2",
        ] {
            assert!(msg.contains(want), "{want}: {msg}");
        }
        let msg = no_credentials(&all, "default", &[], false).to_string();
        assert!(!msg.contains("hop limit"), "{msg}");
    }

    #[test]
    fn helper_stderr_is_never_quoted() {
        let got = without_helper_stderr(
            "Error retrieving credentials: external process exited with code exit status: 1. \
             Stderr: token=abc123"
                .into(),
        );
        assert!(!got.contains("abc123"), "{got}");
        assert!(got.contains("exit status: 1"), "{got}");
        assert_eq!(without_helper_stderr("plain".into()), "plain");
    }

    #[test]
    fn classification_table() {
        let status = |status| {
            CredentialsError::provider_error(ContainerError::Status {
                authority: "127.0.0.1:9".into(),
                status,
            })
        };
        let failed = |why: &'static str| CredentialsError::provider_error(why);
        let invalid = |why: &'static str| CredentialsError::invalid_configuration(why);
        let malformed = CredentialsError::provider_error(ContainerError::Malformed {
            authority: "a:1".into(),
        });
        let bad_token = CredentialsError::invalid_configuration(ContainerError::Token("t".into()));
        let rows: Vec<(CredentialSource, CredentialsError, Option<i32>)> = vec![
            (Imds, CredentialsError::not_loaded("off"), None),
            (Container, CredentialsError::not_loaded("unset"), None),
            (Container, status(403), Some(77)),
            (Container, status(429), Some(69)),
            (Container, status(503), Some(69)),
            (Container, malformed, Some(69)),
            (Container, bad_token, Some(78)),
            (Profile, failed("expired"), Some(77)),
            (Profile, invalid("bad"), Some(78)),
            (WebIdentity, failed("denied"), Some(77)),
            (WebIdentity, invalid("bad"), Some(78)),
            (EnvKeys, invalid("half"), Some(78)),
        ];
        for (source, err, want) in rows {
            let got = match classify(source, "p", &err) {
                Step::Next => None,
                Step::NoCredentials(_) => Some(78),
                Step::Fail(e) => Some(e.exit_code()),
            };
            assert_eq!(got, want, "{source:?} {err}");
        }
        // IMDS failures that are not throttling are "no credentials", whatever their kind.
        for err in [
            CredentialsError::provider_error("token forbidden"),
            CredentialsError::unhandled("{\"SecretAccessKey\":\"canary\""),
        ] {
            match classify(Imds, "p", &err) {
                Step::NoCredentials(r) => assert!(!r.contains("canary"), "{r}"),
                other => panic!("{other:?}"),
            }
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
    fn cause_is_display_only() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("outer")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = CredentialsError::provider_error(Outer(std::io::Error::other("inner")));
        let text = cause(&e);
        assert_eq!(text, "outer: inner");
        assert!(!text.contains("Outer("), "{text}");
    }
}
