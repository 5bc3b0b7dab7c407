//! The validated configuration. Built once from `Cli` and the `AWS_*` variables secret-exec
//! reads itself (the SDK reads its own); every field is already checked, so later stages never
//! see raw flag text and nothing else reads an `AWS_*` variable.

use crate::cli::{self, Cli, DryRunFormat, OnChange};
use crate::deliver::files::{self, FileSpec};
use crate::error::Error;
use crate::launch::{supervise, watch};
use crate::source::agent::{self, AgentOptions};
use crate::source::{credentials, proxy};
use crate::spec::{self, Spec};
use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

/// A file a setting names: the setting (for messages) and the path, `~` expanded.
#[derive(Debug, Clone)]
pub struct FileSetting {
    pub var: String,
    pub path: PathBuf,
}

/// The AWS files a run may read (see `source::files`).
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

#[derive(Debug)]
pub enum Mode {
    Exec(Vec<OsString>),
    /// `--init`/`--watch`: COMMAND as a child of a resident secret-exec.
    Supervise(Vec<OsString>, supervise::Options),
    /// `command` is empty, or the COMMAND whose start the dry run predicts.
    DryRun {
        format: DryRunFormat,
        command: Vec<OsString>,
    },
    /// `watch`: the run would poll with `--watch`, so the policy grants `DescribeSecret`.
    PrintIamPolicy {
        watch: bool,
    },
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

#[derive(Debug, Clone, Default)]
pub struct MapOptions {
    pub keep_case: bool,
    pub allow_names: BTreeSet<String>,
}

#[derive(Debug, Clone, Default)]
pub struct EnvOptions {
    pub ignore_environment: bool,
    /// Names as `env -u` takes them: any bytes but `=`, not empty.
    pub unset: Vec<OsString>,
    pub no_override: bool,
}

#[derive(Debug)]
pub struct Config {
    pub specs: Vec<Spec>,
    /// `--file VAR=REF`, in command-line order (the order of their descriptors).
    pub files: Vec<FileSpec>,
    /// `--from-env`: resolve references in the inherited environment.
    pub from_env: bool,
    pub aws: AwsOptions,
    pub map: MapOptions,
    pub env: EnvOptions,
    pub mode: Mode,
    pub verbosity: u8,
    pub log_format: crate::log::Format,
}

fn check_name(flag: &str, name: &str) -> Result<(), Error> {
    if spec::is_var_name(name) {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{flag} '{name}' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)"
        )))
    }
}

/// Why `url` cannot be an endpoint: it needs http:// or https://, a host, and no spaces or
/// control characters (the SDK would otherwise fail later with a less helpful message).
pub fn endpoint_problem(url: &str) -> Option<&'static str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let Some(rest) = rest else {
        return Some("must start with http:// or https://");
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("must not contain spaces or control characters");
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        return Some("has no host");
    }
    if let Some((_, port)) = host.rsplit_once(':')
        && !host.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Some("has a port that is not a number from 0 to 65535");
    }
    None
}

/// `--init`, `--watch` and their settings; `None` when neither is given.
fn supervise_options(cli: &Cli) -> Result<Option<supervise::Options>, Error> {
    if cli.watch.is_none() {
        let given = [
            ("--on-change", cli.on_change.is_some()),
            ("--stop-signal", cli.stop_signal.is_some()),
            ("--stop-timeout", cli.stop_timeout.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
            return Err(Error::Usage(format!(
                "{flag} acts when a watched secret changes, so it needs --watch"
            )));
        }
    }
    if !cli.init && cli.watch.is_none() {
        return Ok(None);
    }
    let watch = cli
        .watch
        .as_deref()
        .map(|w| watch::parse_interval(w).map_err(|e| Error::Usage(format!("--watch: {e}"))))
        .transpose()?;
    let stop_signal = match &cli.stop_signal {
        Some(s) => {
            supervise::parse_signal(s).map_err(|e| Error::Usage(format!("--stop-signal: {e}")))?
        }
        None => nix::libc::SIGTERM,
    };
    let stop_timeout = cli::parse_duration(cli.stop_timeout.as_deref().unwrap_or("10s"))
        .map_err(|e| Error::Usage(format!("--stop-timeout: {e}")))?;
    Ok(Some(supervise::Options {
        watch,
        on_change: cli.on_change.unwrap_or(OnChange::Restart),
        stop_signal,
        stop_timeout,
    }))
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

impl Config {
    /// Validates the command line, then the `AWS_*` variables read through `env`.
    pub fn new(cli: Cli, env: &dyn Fn(&str) -> Option<OsString>) -> Result<Config, Error> {
        let env_specs =
            spec::parse_env_list(env(spec::ENV_VAR).as_deref()).map_err(Error::Usage)?;
        if cli.secrets.is_empty() && cli.files.is_empty() && !cli.from_env && env_specs.is_empty() {
            return Err(Error::Usage(
                "no --secret, --file or --from-env given; e.g. secret-exec --secret prod/db -- ./app"
                    .into(),
            ));
        }
        if cli.from_env && cli.ignore_environment {
            return Err(Error::Usage(
                "--from-env resolves references in the inherited environment, and -i leaves \
                 nothing inherited; drop one of them"
                    .into(),
            ));
        }
        let specs = cli
            .secrets
            .iter()
            .map(|s| spec::parse(s).map_err(Error::Usage))
            .chain(env_specs.into_iter().map(Ok))
            .collect::<Result<Vec<_>, _>>()?;
        let file_specs = cli
            .files
            .iter()
            .map(|f| files::parse(f))
            .collect::<Result<Vec<_>, _>>()?;

        if let Some(n) = cli.max_attempts
            && !(1..=20).contains(&n)
        {
            return Err(Error::Usage(format!(
                "--max-attempts {n} must be between 1 and 20"
            )));
        }
        if let Some(url) = &cli.endpoint_url
            && let Some(why) = endpoint_problem(url)
        {
            return Err(Error::Usage(format!(
                "--endpoint-url '{url}' {why}; e.g. https://secretsmanager.eu-west-1.amazonaws.com"
            )));
        }
        if cli.verbose > crate::log::MAX_LEVEL {
            return Err(Error::Usage(format!(
                "-v given {} times; -vvv is the most (see docs/logging.md)",
                cli.verbose
            )));
        }
        for (flag, value) in [("--region", &cli.region), ("--profile", &cli.profile)] {
            if value.as_deref() == Some("") {
                return Err(Error::Usage(format!("{flag} must not be empty")));
            }
        }
        for n in &cli.unset {
            use std::os::unix::ffi::OsStrExt;
            if n.is_empty() || n.as_bytes().contains(&b'=') {
                return Err(Error::Usage(format!(
                    "--unset '{}' is not a name env -u accepts (not empty, no '=')",
                    n.to_string_lossy()
                )));
            }
        }
        for n in &cli.allow_names {
            check_name("--allow-name", n)?;
        }

        let supervise = supervise_options(&cli)?;
        let mode = if cli.print_iam_policy {
            Mode::PrintIamPolicy {
                watch: supervise.as_ref().is_some_and(|s| s.watch.is_some()),
            }
        } else if let Some(format) = cli.dry_run {
            Mode::DryRun {
                format,
                command: cli.command,
            }
        } else if cli.command.is_empty() {
            return Err(Error::Usage(
                "no COMMAND given; put it after '--', e.g. secret-exec --secret prod/db -- ./app"
                    .into(),
            ));
        } else if let Some(opts) = supervise {
            Mode::Supervise(cli.command, opts)
        } else {
            Mode::Exec(cli.command)
        };

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
        let text = |name: &str| env(name).map(|v| v.to_string_lossy().into_owned());
        let retry = env_retry(
            text("AWS_MAX_ATTEMPTS").as_deref(),
            text("AWS_RETRY_MODE").as_deref(),
        )?;
        // Checked even when --log-format is given, as AWS_MAX_ATTEMPTS is: a set but unusable
        // variable is an error, never silently passed over.
        let env_format = match text("SECRET_EXEC_LOG_FORMAT").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(v) => Some(crate::log::Format::parse(&v).ok_or_else(|| {
                Error::Config(format!(
                    "SECRET_EXEC_LOG_FORMAT='{v}' is not 'text' or 'json'; fix or unset it"
                ))
            })?),
        };
        let log_format = cli
            .log_format
            .or(env_format)
            .unwrap_or(crate::log::Format::Text);
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
        let endpoint = configured_endpoint(
            cli.endpoint_url.as_deref(),
            text("AWS_ENDPOINT_URL_SECRETS_MANAGER").as_deref(),
            text("AWS_ENDPOINT_URL").as_deref(),
            text("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").as_deref(),
        );
        let ssm_endpoint = configured_endpoint(
            cli.endpoint_url.as_deref(),
            text("AWS_ENDPOINT_URL_SSM").as_deref(),
            text("AWS_ENDPOINT_URL").as_deref(),
            text("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").as_deref(),
        );
        let agent_url = match (&cli.agent, text("SECRET_EXEC_AGENT")) {
            (Some(flag), _) => Some(
                agent::parse_url(flag)
                    .map_err(|why| Error::Usage(format!("--agent='{flag}': {why}")))?,
            ),
            (None, Some(env)) if !env.is_empty() => {
                Some(agent::parse_url(&env).map_err(|why| {
                    Error::Config(format!("SECRET_EXEC_AGENT='{env}': {why}; fix or unset it"))
                })?)
            }
            _ => None,
        };
        let agent = match agent_url {
            Some(url) => {
                let token = agent::token_from(&|name| text(name));
                if token.is_none() && !matches!(mode, Mode::PrintIamPolicy { .. }) {
                    return Err(Error::Config(format!(
                        "--agent needs the agent's token and none is set: put it in AWS_TOKEN \
                         (or AWS_TOKEN=file://PATH), as the agent at {url} reads it"
                    )));
                }
                Some(AgentOptions { url, token })
            }
            None => None,
        };
        let env_region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|v| text(v).filter(|r| !r.trim().is_empty()));

        let credentials = credentials::Settings::from_lookup(cli.profile.as_deref(), env);
        // Credential endpoints the operator pointed elsewhere must not go through a proxy either.
        let direct: Vec<String> = [
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        ]
        .iter()
        .filter_map(|k| proxy::host_of(&text(k)?))
        .collect();
        let proxies = proxy::from_env(text, &direct)?;
        Ok(Config {
            specs,
            files: file_specs,
            from_env: cli.from_env,
            aws: AwsOptions {
                region: cli.region,
                env_region,
                profile: cli.profile,
                endpoint_url: cli.endpoint_url,
                endpoint,
                ssm_endpoint,
                agent,
                timeout: cli.timeout,
                max_attempts: cli.max_attempts.or(retry.max_attempts).unwrap_or(3),
                adaptive_retry: retry.adaptive,
                credentials,
                files: file_settings(env),
                proxies,
                aws_ca_bundle: env("AWS_CA_BUNDLE"),
                ssl_cert_file: env("SSL_CERT_FILE"),
                ssl_cert_dir: env("SSL_CERT_DIR"),
            },
            map: MapOptions {
                keep_case: cli.keep_case,
                allow_names: cli.allow_names.into_iter().collect(),
            },
            env: EnvOptions {
                ignore_environment: cli.ignore_environment,
                unset: cli.unset,
                no_override: cli.no_override,
            },
            mode,
            verbosity: cli.verbose,
            log_format,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_in(args: &[&str], env: &[(&str, &str)]) -> Result<Config, Error> {
        let full = ["secret-exec"].iter().chain(args).map(OsString::from);
        let cli = crate::cli::parse(full)?.expect("not --help or --version");
        let env: Vec<(String, OsString)> =
            env.iter().map(|(k, v)| (k.to_string(), v.into())).collect();
        Config::new(cli, &|name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    fn config(args: &[&str]) -> Result<Config, Error> {
        config_in(args, &[])
    }

    #[test]
    fn usage_errors() {
        let rows: &[(&[&str], &str)] = &[
            (&["--", "x"], "no --secret, --file or --from-env"),
            (&["--from-env", "-i", "--", "x"], "-i leaves"),
            (&["--file", "X", "--", "x"], "invalid --file 'X'"),
            (&["--file", "1=a", "--", "x"], "not a variable name"),
            (
                &["--file", "X=ssm:/a/b/", "--", "x"],
                "Parameter Store path",
            ),
            (&["-s", "a"], "no COMMAND"),
            (&["-s", "a", "--timeout", "0", "--", "x"], "--timeout"),
            (
                &["-s", "a", "--max-attempts", "0", "--", "x"],
                "--max-attempts",
            ),
            (
                &["-s", "a", "--endpoint-url", "ftp://x", "--", "x"],
                "--endpoint-url",
            ),
            (&["-s", "a", "-u", "A=B", "--", "x"], "--unset"),
            (&["-s", "a", "-u", "", "--", "x"], "--unset"),
            (&["-s", "a", "--allow-name", "", "--", "x"], "--allow-name"),
            (&["-s", "1=a", "--", "x"], "invalid --secret"),
            (&["-s", "a", "--region", "", "--", "x"], "--region"),
            (
                &["-s", "a", "--endpoint-url", "http://", "--", "x"],
                "--endpoint-url 'http://' has no host",
            ),
            (
                &["-s", "a", "--endpoint-url", "http://h:99999", "--", "x"],
                "port",
            ),
            (&["-s", "a", "-vvvv", "--", "x"], "-vvv is the most"),
            (
                &["-s", "a", "--log-format", "xml", "--", "x"],
                "--log-format",
            ),
            (&["-s", "a", "--watch=0s", "--", "x"], "--watch"),
            (&["-s", "a", "--watch=500ms", "--", "x"], "--watch"),
            (&["-s", "a", "--watch=abc", "--", "x"], "--watch"),
            (&["-s", "a", "--watch=25h", "--", "x"], "--watch"),
            (
                &["-s", "a", "--watch", "--stop-timeout", "0", "--", "x"],
                "--stop-timeout",
            ),
            (
                &["-s", "a", "--watch", "--stop-timeout", "x", "--", "x"],
                "--stop-timeout",
            ),
            (
                &["-s", "a", "--watch", "--stop-signal", "FOO", "--", "x"],
                "--stop-signal",
            ),
        ];
        for (args, want) in rows {
            let err = config(args).expect_err(&format!("{args:?}"));
            assert_eq!(err.exit_code(), 64);
            assert!(err.to_string().contains(want), "{args:?}: {err}");
        }
    }

    fn supervise(args: &[&str]) -> Option<supervise::Options> {
        match config(args).unwrap().mode {
            Mode::Supervise(_, o) => Some(o),
            _ => None,
        }
    }

    #[test]
    fn supervise_settings() {
        let o = supervise(&["-s", "a", "--watch", "--", "x"]).expect("supervised");
        assert_eq!(o.watch, Some(Duration::from_secs(300)));
        assert_eq!(o.on_change, OnChange::Restart);
        assert_eq!(
            (o.stop_signal, o.stop_timeout),
            (15, Duration::from_secs(10))
        );
        let o = supervise(&["-s", "a", "--init", "--", "x"]).expect("supervised");
        assert_eq!(o.watch, None);
        let o = supervise(&[
            "-s",
            "a",
            "--watch=30s",
            "--on-change=exit",
            "--stop-signal",
            "INT",
            "--stop-timeout",
            "2s",
            "--",
            "x",
        ])
        .expect("supervised");
        assert_eq!(o.watch, Some(Duration::from_secs(30)));
        assert_eq!(o.on_change, OnChange::Exit);
        assert_eq!((o.stop_signal, o.stop_timeout), (2, Duration::from_secs(2)));
        assert!(supervise(&["-s", "a", "--", "x"]).is_none());
        for (args, want) in [
            (&["-s", "a", "--print-iam-policy"][..], false),
            (&["-s", "a", "--print-iam-policy", "--init"], false),
            (&["-s", "a", "--print-iam-policy", "--watch"], true),
        ] {
            assert!(
                matches!(config(args).unwrap().mode, Mode::PrintIamPolicy { watch } if watch == want),
                "{args:?}"
            );
        }
    }

    #[test]
    fn modes() {
        assert!(matches!(
            config(&["-s", "a", "--", "x"]).unwrap().mode,
            Mode::Exec(_)
        ));
        assert!(matches!(
            config(&["-s", "a", "--dry-run"]).unwrap().mode,
            Mode::DryRun {
                format: DryRunFormat::Text,
                ..
            }
        ));
        assert!(matches!(
            config(&["-s", "a", "--print-iam-policy"]).unwrap().mode,
            Mode::PrintIamPolicy { .. }
        ));
        // --from-env and --file stand on their own.
        let c = config(&["--from-env", "--", "x"]).unwrap();
        assert!(c.from_env && c.specs.is_empty());
        let c = config(&["--file", "K=a:k", "--file", "C=b", "--", "x"]).unwrap();
        let vars: Vec<&str> = c.files.iter().map(|f| f.var.as_str()).collect();
        assert_eq!(vars, ["K", "C"]);
    }

    #[test]
    fn secret_exec_secrets_adds_specs_after_the_flags() {
        let env = [("SECRET_EXEC_SECRETS", " b  C=c:k ")];
        let c = config_in(&["--", "x"], &env).unwrap();
        let raws: Vec<&str> = c.specs.iter().map(|s| s.raw.as_str()).collect();
        assert_eq!(raws, ["b", "C=c:k"]);
        let c = config_in(&["-s", "a", "--", "x"], &env).unwrap();
        let raws: Vec<&str> = c.specs.iter().map(|s| s.raw.as_str()).collect();
        assert_eq!(raws, ["a", "b", "C=c:k"]);
        // Blank is none: the launch still needs something to fetch.
        let e = config_in(&["--", "x"], &[("SECRET_EXEC_SECRETS", "  ")]).unwrap_err();
        assert!(e.to_string().contains("no --secret"), "{e}");
        let e =
            config_in(&["-s", "a", "--", "x"], &[("SECRET_EXEC_SECRETS", "a 9=x")]).unwrap_err();
        assert_eq!(e.exit_code(), 64);
        assert!(
            e.to_string().contains("'9=x' in SECRET_EXEC_SECRETS"),
            "{e}"
        );
    }
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

    #[test]
    fn log_format_flag_beats_env() {
        use crate::log::Format;
        let args = ["-s", "a", "--", "x"];
        assert_eq!(config(&args).unwrap().log_format, Format::Text);
        let env = [("SECRET_EXEC_LOG_FORMAT", "json")];
        assert_eq!(config_in(&args, &env).unwrap().log_format, Format::Json);
        let flagged = ["--log-format", "text", "-s", "a", "--", "x"];
        assert_eq!(config_in(&flagged, &env).unwrap().log_format, Format::Text);
        let env = [("SECRET_EXEC_LOG_FORMAT", "yaml")];
        assert_eq!(config_in(&flagged, &env).unwrap_err().exit_code(), 78);
    }

    /// Every AWS_* variable secret-exec reads lands in `AwsOptions`, or is refused with 78.
    #[test]
    fn aws_variables_are_read_here() {
        let args = ["-s", "a", "--", "x"];
        let c = config_in(
            &args,
            &[
                ("AWS_REGION", " "),
                ("AWS_DEFAULT_REGION", "eu-west-1"),
                ("AWS_MAX_ATTEMPTS", "7"),
                ("AWS_RETRY_MODE", "adaptive"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
                ("AWS_ACCESS_KEY_ID", "AKIA"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
            ],
        )
        .unwrap();
        assert_eq!(c.aws.known_region(), Some("eu-west-1"));
        assert_eq!(c.aws.max_attempts, 7);
        assert!(c.aws.adaptive_retry && c.aws.credentials.env_keys);
        assert_eq!(c.aws.endpoint.as_deref(), Some("http://127.0.0.1:1"));

        let c = config_in(
            &[
                "--region",
                "us-east-1",
                "--max-attempts",
                "2",
                "-s",
                "a",
                "--",
                "x",
            ],
            &[("AWS_REGION", "eu-west-1"), ("AWS_MAX_ATTEMPTS", "7")],
        )
        .unwrap();
        assert_eq!(c.aws.known_region(), Some("us-east-1"));
        assert_eq!(c.aws.max_attempts, 2);
        let c = config(&args).unwrap();
        assert_eq!((c.aws.max_attempts, c.aws.credentials.env_keys), (3, false));
        assert_eq!(c.aws.known_region(), None);

        for (var, value) in [
            ("AWS_MAX_ATTEMPTS", "0"),
            ("AWS_RETRY_MODE", "fast"),
            ("AWS_ENDPOINT_URL", "localhost:4566"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "ftp://x"),
            ("AWS_ENDPOINT_URL", "http://a b"),
            ("SECRET_EXEC_LOG_FORMAT", "yaml"),
        ] {
            let err = config_in(&args, &[(var, value)]).expect_err(var);
            assert_eq!(err.exit_code(), 78, "{var}");
            assert!(err.to_string().contains(var), "{err}");
        }
    }
}
