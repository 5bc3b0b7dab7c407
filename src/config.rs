//! The validated configuration. Built once from `Cli` and the `AWS_*` variables secret-exec
//! reads itself (the SDK reads its own); every field is already checked, so later stages never
//! see raw flag text and nothing else reads an `AWS_*` variable.

use crate::cli::{Cli, DryRunFormat};
use crate::deliver::files::{self, FileSpec};
use crate::error::Error;
use crate::source::credentials;
use crate::spec::{self, Spec};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::time::Duration;

#[derive(Debug)]
pub enum Mode {
    Exec(Vec<OsString>),
    DryRun(DryRunFormat),
    PrintIamPolicy,
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
    pub timeout: Duration,
    /// `--max-attempts`, else `AWS_MAX_ATTEMPTS`, else 3.
    pub max_attempts: u32,
    /// `AWS_RETRY_MODE=adaptive`.
    pub adaptive_retry: bool,
    /// What chooses the credentials source (key variables, profile, container endpoint…).
    pub credentials: credentials::Settings,
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
    pub unset: Vec<String>,
    pub no_override: bool,
}

#[derive(Debug)]
pub struct Config {
    pub specs: Vec<Spec>,
    /// `--file VAR=REF`, in command-line order (the order of their descriptors).
    pub files: Vec<FileSpec>,
    /// `--from-env`: resolve references in the inherited environment.
    pub from_env: bool,
    /// Descriptors from 3 that belong to socket activation (`LISTEN_FDS` of ours).
    pub listen_fds: std::os::fd::RawFd,
    pub aws: AwsOptions,
    pub map: MapOptions,
    pub env: EnvOptions,
    pub mode: Mode,
    pub verbosity: u8,
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
        if cli.secrets.is_empty() && cli.files.is_empty() && !cli.from_env {
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
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(Error::Usage(format!(
                "--endpoint-url '{url}' must start with http:// or https://"
            )));
        }
        for (flag, value) in [("--region", &cli.region), ("--profile", &cli.profile)] {
            if value.as_deref() == Some("") {
                return Err(Error::Usage(format!("{flag} must not be empty")));
            }
        }
        for n in &cli.unset {
            check_name("--unset", n)?;
        }
        for n in &cli.allow_names {
            check_name("--allow-name", n)?;
        }

        let mode = if cli.print_iam_policy {
            Mode::PrintIamPolicy
        } else if let Some(format) = cli.dry_run {
            Mode::DryRun(format)
        } else if cli.command.is_empty() {
            return Err(Error::Usage(
                "no COMMAND given; put it after '--', e.g. secret-exec --secret prod/db -- ./app"
                    .into(),
            ));
        } else {
            Mode::Exec(cli.command)
        };

        let text = |name: &str| env(name).map(|v| v.to_string_lossy().into_owned());
        let retry = env_retry(
            text("AWS_MAX_ATTEMPTS").as_deref(),
            text("AWS_RETRY_MODE").as_deref(),
        )?;
        for var in ["AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"] {
            if let Some(v) = text(var)
                && !v.is_empty()
                && !(v.starts_with("http://") || v.starts_with("https://"))
            {
                return Err(Error::Config(format!(
                    "{var}='{v}' must start with http:// or https://"
                )));
            }
        }
        let endpoint = configured_endpoint(
            cli.endpoint_url.as_deref(),
            text("AWS_ENDPOINT_URL_SECRETS_MANAGER").as_deref(),
            text("AWS_ENDPOINT_URL").as_deref(),
            text("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").as_deref(),
        );
        let env_region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|v| text(v).filter(|r| !r.trim().is_empty()));

        let listen_fds = files::listen_fds(
            text("LISTEN_PID").as_deref(),
            text("LISTEN_FDS").as_deref(),
            std::process::id(),
        )?;
        let credentials = credentials::Settings::from_lookup(cli.profile.as_deref(), env);
        Ok(Config {
            specs,
            files: file_specs,
            from_env: cli.from_env,
            listen_fds,
            aws: AwsOptions {
                region: cli.region,
                env_region,
                profile: cli.profile,
                endpoint_url: cli.endpoint_url,
                endpoint,
                timeout: cli.timeout,
                max_attempts: cli.max_attempts.or(retry.max_attempts).unwrap_or(3),
                adaptive_retry: retry.adaptive,
                credentials,
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
            (&["-s", "a", "--allow-name", "", "--", "x"], "--allow-name"),
            (&["-s", "1=a", "--", "x"], "invalid --secret"),
            (&["-s", "a", "--region", "", "--", "x"], "--region"),
        ];
        for (args, want) in rows {
            let err = config(args).expect_err(&format!("{args:?}"));
            assert_eq!(err.exit_code(), 64);
            assert!(err.to_string().contains(want), "{args:?}: {err}");
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
            Mode::DryRun(DryRunFormat::Text)
        ));
        assert!(matches!(
            config(&["-s", "a", "--print-iam-policy"]).unwrap().mode,
            Mode::PrintIamPolicy
        ));
        // --from-env and --file stand on their own.
        let c = config(&["--from-env", "--", "x"]).unwrap();
        assert!(c.from_env && c.specs.is_empty());
        let c = config(&["--file", "K=a:k", "--file", "C=b", "--", "x"]).unwrap();
        let vars: Vec<&str> = c.files.iter().map(|f| f.var.as_str()).collect();
        assert_eq!(vars, ["K", "C"]);
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
        ] {
            let err = config_in(&args, &[(var, value)]).expect_err(var);
            assert_eq!(err.exit_code(), 78, "{var}");
            assert!(err.to_string().contains(var), "{err}");
        }
    }
}
