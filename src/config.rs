//! The validated configuration. Built once from `Cli` (and nothing else); every field is already
//! checked, so later stages never see raw flag text.

use crate::cli::{Cli, DryRunFormat};
use crate::error::Error;
use crate::spec::{self, Spec};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::time::Duration;

#[derive(Debug)]
pub enum Mode {
    Exec(Vec<OsString>),
    /// `--init`/`--watch`: COMMAND as a child of a resident secret-exec (`Config::supervise`).
    Supervise(Vec<OsString>),
    DryRun(DryRunFormat),
    PrintIamPolicy,
}

#[derive(Debug, Clone)]
pub struct AwsOptions {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub timeout: Duration,
    pub max_attempts: Option<u32>,
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
    pub aws: AwsOptions,
    pub map: MapOptions,
    pub env: EnvOptions,
    pub mode: Mode,
    pub verbosity: u8,
    /// Set under `--init`/`--watch`.
    pub supervise: Option<crate::launch::supervise::Options>,
}

/// `10`, `2.5`, `10s`, `800ms`, `1m`: a positive duration of at most an hour.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration '{text}' (e.g. 10, 2.5, 800ms, 1m)"))?;
    let secs = value * scale;
    if !secs.is_finite() || secs <= 0.0 || secs > 3600.0 {
        return Err(format!(
            "duration '{text}' must be more than 0 and at most an hour"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
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

/// `--init`, `--watch` and their settings; `None` when neither is given.
fn supervise_options(cli: &Cli) -> Result<Option<crate::launch::supervise::Options>, Error> {
    use crate::launch::{supervise, watch};
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
    let stop_timeout = parse_duration(cli.stop_timeout.as_deref().unwrap_or("10s"))
        .map_err(|e| Error::Usage(format!("--stop-timeout: {e}")))?;
    Ok(Some(supervise::Options {
        watch,
        on_change: cli.on_change.unwrap_or(crate::cli::OnChange::Restart),
        stop_signal,
        stop_timeout,
    }))
}

impl TryFrom<Cli> for Config {
    type Error = Error;

    fn try_from(cli: Cli) -> Result<Self, Error> {
        if cli.secrets.is_empty() {
            return Err(Error::Usage(
                "no --secret given; e.g. secret-exec --secret prod/db -- ./app".into(),
            ));
        }
        let specs = cli
            .secrets
            .iter()
            .map(|s| spec::parse(s).map_err(Error::Usage))
            .collect::<Result<Vec<_>, _>>()?;

        let timeout =
            parse_duration(&cli.timeout).map_err(|e| Error::Usage(format!("--timeout: {e}")))?;
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

        let supervise = supervise_options(&cli)?;
        let mode = if cli.print_iam_policy {
            Mode::PrintIamPolicy
        } else if let Some(format) = cli.dry_run {
            Mode::DryRun(format)
        } else if cli.command.is_empty() {
            return Err(Error::Usage(
                "no COMMAND given; put it after '--', e.g. secret-exec --secret prod/db -- ./app"
                    .into(),
            ));
        } else if supervise.is_some() {
            Mode::Supervise(cli.command)
        } else {
            Mode::Exec(cli.command)
        };

        Ok(Config {
            specs,
            aws: AwsOptions {
                region: cli.region,
                profile: cli.profile,
                endpoint_url: cli.endpoint_url,
                timeout,
                max_attempts: cli.max_attempts,
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
            supervise,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Result<Config, Error> {
        let mut full = vec!["secret-exec"];
        full.extend_from_slice(args);
        Config::try_from(Cli::try_parse_from(full).unwrap())
    }

    #[test]
    fn durations() {
        let ok = [
            ("10", 10_000),
            ("2.5", 2_500),
            ("10s", 10_000),
            ("800ms", 800),
            ("1m", 60_000),
        ];
        for (text, ms) in ok {
            assert_eq!(
                parse_duration(text).unwrap(),
                Duration::from_millis(ms),
                "{text}"
            );
        }
        for bad in ["", "0", "-1", "abc", "2h", "NaN", "inf", "3601"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn usage_errors() {
        let rows: &[(&[&str], &str)] = &[
            (&["--", "x"], "no --secret"),
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

    #[test]
    fn supervise_settings() {
        let c = config(&["-s", "a", "--watch", "--", "x"]).unwrap();
        assert!(matches!(c.mode, Mode::Supervise(_)));
        let o = c.supervise.unwrap();
        assert_eq!(o.watch, Some(Duration::from_secs(300)));
        assert_eq!(o.on_change, crate::cli::OnChange::Restart);
        assert_eq!(
            (o.stop_signal, o.stop_timeout),
            (15, Duration::from_secs(10))
        );
        let c = config(&["-s", "a", "--init", "--", "x"]).unwrap();
        assert!(matches!(c.mode, Mode::Supervise(_)));
        assert_eq!(c.supervise.unwrap().watch, None);
        let c = config(&[
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
        .unwrap();
        let o = c.supervise.unwrap();
        assert_eq!(o.watch, Some(Duration::from_secs(30)));
        assert_eq!(o.on_change, crate::cli::OnChange::Exit);
        assert_eq!((o.stop_signal, o.stop_timeout), (2, Duration::from_secs(2)));
        assert!(config(&["-s", "a", "--", "x"]).unwrap().supervise.is_none());
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
    }
}
