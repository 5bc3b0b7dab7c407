//! The validated configuration, assembled once from `Cli` and the environment lookup. Each stage
//! builds its own options (`source::options`, `map::MapOptions`, `deliver::environ::EnvOptions`,
//! `launch::supervise::Options`); this file only calls those builders in order and picks the
//! mode, so later stages never see raw flag text.

use crate::cli::{Cli, DryRunFormat};
use crate::deliver::environ::EnvOptions;
use crate::deliver::files::{self, FileSpec};
use crate::error::Error;
use crate::launch::supervise;
use crate::map::MapOptions;
use crate::source::{self, options::AwsOptions};
use crate::spec::{self, Spec};
use std::ffi::OsString;

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

#[derive(Debug)]
pub struct Config {
    pub specs: Vec<Spec>,
    /// `--file VAR=REF`, in command-line order (the order of their descriptors).
    pub files: Vec<FileSpec>,
    /// `--dir DIR`: the `--secret` variables become files there instead of variables.
    pub dir: Option<crate::deliver::dir::DirOptions>,
    /// `--user`: who COMMAND runs as.
    pub user: Option<crate::launch::user::User>,
    /// `--from-env`: resolve references in the inherited environment.
    pub from_env: bool,
    pub aws: AwsOptions,
    pub map: MapOptions,
    /// `--db-url` and `--template`: variables built from others (the map stage's own options).
    pub compose: crate::map::compose::Options,
    pub env: EnvOptions,
    pub mode: Mode,
    pub verbosity: u8,
    pub log_format: crate::log::Format,
}

impl Config {
    /// Validates the command line, then the variables read through `env`: each stage's options
    /// are built by that stage; this only assembles them, flag checks (64) before the
    /// environment (78).
    pub fn new(cli: Cli, env: &dyn Fn(&str) -> Option<OsString>) -> Result<Config, Error> {
        let env_specs =
            spec::parse_env_list(env(spec::ENV_VAR).as_deref()).map_err(Error::Usage)?;
        check_inputs(&cli, !env_specs.is_empty())?;
        let specs = cli
            .secrets
            .iter()
            .map(|s| spec::parse(s).map_err(Error::Usage))
            .chain(env_specs.into_iter().map(Ok))
            .collect::<Result<Vec<_>, _>>()?;
        let files = cli
            .files
            .iter()
            .map(|f| files::parse(f))
            .collect::<Result<Vec<_>, _>>()?;
        let dir = crate::deliver::dir::parse(cli.dir.as_deref(), specs.len())?;
        let aws_flags = source::options::Flags {
            region: cli.region.as_deref(),
            profile: cli.profile.as_deref(),
            endpoint_url: cli.endpoint_url.as_deref(),
            agent: cli.agent.as_deref(),
            failover_region: cli.failover_region.as_deref(),
            timeout: cli.timeout,
            max_attempts: cli.max_attempts,
        };
        aws_flags.check()?;
        if cli.verbose > crate::log::MAX_LEVEL {
            return Err(Error::Usage(format!(
                "-v given {} times; -vvv is the most (see docs/logging.md)",
                cli.verbose
            )));
        }
        let env_opts = EnvOptions::new(cli.ignore_environment, cli.unset, cli.no_override)?;
        let map = MapOptions::new(cli.keep_case, cli.allow_names)?;
        let compose = crate::map::compose::parse(&cli.db_urls, &cli.templates)?;
        let supervise = supervise::Options::new(supervise::Flags {
            init: cli.init,
            watch: cli.watch,
            on_change: cli.on_change.as_deref(),
            splay: cli.splay,
            stop_signal: cli.stop_signal.as_deref(),
            stop_timeout: cli.stop_timeout,
        })?;
        if let Some(s) = &supervise {
            s.check_delivery(dir.is_some(), !files.is_empty(), cli.from_env)?;
        }
        let mode = mode(cli.print_iam_policy, cli.dry_run, cli.command, supervise)?;
        // Resolved and checked before any fetch; only a run that starts COMMAND switches.
        let user = crate::launch::user::parse(cli.user.as_deref())?;
        if let Some(u) = user
            && matches!(mode, Mode::Exec(_) | Mode::Supervise(..))
        {
            crate::launch::user::check_permitted(u)?;
        }
        let mut dir = dir;
        if let (Some(d), Some(u)) = (dir.as_mut(), user) {
            d.owner = Some((u.uid, u.gid));
        }
        let needs_token = !matches!(mode, Mode::PrintIamPolicy { .. });
        let aws = AwsOptions::new(aws_flags, env, needs_token)?;
        let log_format = log_format(cli.log_format, env)?;
        Ok(Config {
            specs,
            files,
            dir,
            user,
            from_env: cli.from_env,
            aws,
            map,
            compose,
            env: env_opts,
            mode,
            verbosity: cli.verbose,
            log_format,
        })
    }
}

/// Something to read (`env_specs`: `SECRET_EXEC_SECRETS` named some), and `--from-env` with
/// something inherited to read it in.
fn check_inputs(cli: &Cli, env_specs: bool) -> Result<(), Error> {
    if cli.secrets.is_empty()
        && cli.files.is_empty()
        && cli.db_urls.is_empty()
        && !cli.from_env
        && !env_specs
    {
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
    Ok(())
}

/// The one mode a run is in.
fn mode(
    print_iam_policy: bool,
    dry_run: Option<DryRunFormat>,
    command: Vec<OsString>,
    supervise: Option<supervise::Options>,
) -> Result<Mode, Error> {
    Ok(if print_iam_policy {
        Mode::PrintIamPolicy {
            watch: supervise.as_ref().is_some_and(|s| s.watch.is_some()),
        }
    } else if let Some(format) = dry_run {
        Mode::DryRun { format, command }
    } else if command.is_empty() {
        return Err(Error::Usage(
            "no COMMAND given; put it after '--', e.g. secret-exec --secret prod/db -- ./app"
                .into(),
        ));
    } else if let Some(opts) = supervise {
        Mode::Supervise(command, opts)
    } else {
        Mode::Exec(command)
    })
}

/// `--log-format`, else `SECRET_EXEC_LOG_FORMAT`, else text. The variable is checked even when
/// the flag is given, as `AWS_MAX_ATTEMPTS` is: a set but unusable variable is an error, never
/// silently passed over.
fn log_format(
    flag: Option<crate::log::Format>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<crate::log::Format, Error> {
    let text = env("SECRET_EXEC_LOG_FORMAT").map(|v| v.to_string_lossy().into_owned());
    let env_format = match text.filter(|v| !v.trim().is_empty()) {
        None => None,
        Some(v) => Some(crate::log::Format::parse(&v).ok_or_else(|| {
            Error::Config(format!(
                "SECRET_EXEC_LOG_FORMAT='{v}' is not 'text' or 'json'; fix or unset it"
            ))
        })?),
    };
    Ok(flag.or(env_format).unwrap_or(crate::log::Format::Text))
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::supervise::OnChange;
    use std::time::Duration;

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
            (&["-s", "a", "--splay", "1s", "--", "x"], "needs --watch"),
            (
                &["-s", "a", "--watch", "--splay", "x", "--", "x"],
                "--splay",
            ),
            (
                &["-s", "a", "--watch", "--splay", "2h", "--", "x"],
                "--splay",
            ),
            (
                &["-s", "a", "--watch", "--on-change=hup", "--", "x"],
                "--on-change",
            ),
            (
                &["-s", "a", "--watch", "--on-change=signal:FOO", "--", "x"],
                "--on-change",
            ),
            (
                &["-s", "a", "--watch", "--on-change=signal:HUP", "--", "x"],
                "deliver them with --dir",
            ),
            (
                &[
                    "-s",
                    "a",
                    "--dir",
                    "/d",
                    "--file",
                    "F=b",
                    "--watch",
                    "--on-change=signal:HUP",
                    "--",
                    "x",
                ],
                "--file memfd is sealed",
            ),
            (
                &[
                    "-s",
                    "a",
                    "--dir",
                    "/d",
                    "--from-env",
                    "--watch",
                    "--on-change=signal:HUP",
                    "--",
                    "x",
                ],
                "--from-env values are variables",
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
        // The default splay is a tenth of the interval; 0 turns it off.
        assert_eq!(o.splay, Duration::from_secs(30));
        let o = supervise(&["-s", "a", "--watch=1h", "--splay", "0", "--", "x"]).unwrap();
        assert_eq!(o.splay, Duration::ZERO);
        let o = supervise(&["-s", "a", "--watch", "--splay", "90s", "--", "x"]).unwrap();
        assert_eq!(o.splay, Duration::from_secs(90));
        let o = supervise(&[
            "-s",
            "a",
            "--dir",
            "/d",
            "--watch",
            "--on-change=signal:HUP",
            "--",
            "x",
        ])
        .unwrap();
        assert_eq!(o.on_change, OnChange::Signal(1));
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
