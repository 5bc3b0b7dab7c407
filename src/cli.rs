//! The raw command line, as clap sees it. Nothing here is validated beyond clap's own parsing;
//! `Config::try_from` turns it into something the rest of the program can trust.

use crate::error::Error;
use clap::{ArgAction, Parser, ValueEnum};
use std::ffi::OsString;
use std::time::Duration;

/// Shown in `--help` after the options and rendered as the man page's EXAMPLES
/// (examples/gen-docs.rs parses it): a command line, then its effect indented below it. SPECs
/// with `*` are quoted: unquoted, zsh stops with "no matches found".
pub const EXAMPLES: &str = "\
Examples:
  secret-exec --secret prod/db -- ./app
      every key of the JSON secret prod/db: USERNAME, PASSWORD, HOST, PORT...
  secret-exec --secret 'DB_*=prod/db' -- ./app
      the same keys, prefixed: DB_USERNAME, DB_PASSWORD...
  secret-exec --secret DATABASE_PASSWORD=prod/db:password -- ./app
      one key, into a variable you name
  secret-exec --secret prod/db::AWSPREVIOUS -- ./app
      every key of the previous version (the ECS valueFrom form)
  secret-exec --file TLS_KEY_FILE=prod/tls:key -- ./server
      the key in a sealed in-memory file; TLS_KEY_FILE=/dev/fd/3
  DB_PASSWORD=secretsmanager:prod/db:password secret-exec --from-env -- ./app
      inherited references replaced by the values they name
  secret-exec --secret prod/db --dry-run
      what would be set (names, secrets, versions), never a value
  secret-exec --print-iam-policy --region eu-west-1 --secret prod/db
      the least-privilege IAM policy that run needs, without calling AWS";

/// Shown in `--help` after the examples and rendered as the man page's EXIT STATUS
/// (examples/gen-docs.rs parses it): the code, two or more spaces, its meaning.
pub const EXIT_CODES: &str = "\
Exit codes:
  COMMAND's   after a successful exec, secret-exec *is* COMMAND
  64          usage: bad flags or SPEC
  65          data: a secret cannot be mapped (missing key, collision, refused name, NUL, binary, too large)
  66          not found: secret, version or stage does not exist, or is scheduled for deletion
  69          unavailable: network, throttling or timeouts after every retry
  70          internal: a bug in secret-exec (please report it)
  77          permission: access denied, KMS decrypt refused, invalid or expired credentials
  78          configuration: no region, no credentials, invalid AWS_* settings
  126 / 127   COMMAND not executable / not found
  128+n       interrupted by signal n before exec

SPEC := [VAR= | PREFIX*=] ID[:KEY[:STAGE[:VERSION_ID]]]   (ECS valueFrom grammar; ID is a name or ARN)
--file VAR=ID[:KEY[:STAGE[:VERSION_ID]]]   (file descriptors from 3, after a LISTEN_FDS range of ours)";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DryRunFormat {
    Text,
    Json,
}

/// Inject AWS Secrets Manager secrets into a program's environment, then exec it.
#[derive(Debug, Parser)]
#[command(
    name = "secret-exec",
    version,
    about,
    after_help = format!("{EXAMPLES}\n\n{EXIT_CODES}"),
    override_usage = "secret-exec [OPTIONS] [--secret SPEC]... [--file VAR=REF]... [--from-env] -- COMMAND [ARG]..."
)]
pub struct Cli {
    /// Secret to inject: [VAR= | PREFIX*=] ID[:KEY[:STAGE[:VERSION_ID]]]. Repeatable.
    #[arg(short = 's', long = "secret", value_name = "SPEC")]
    pub secrets: Vec<String>,

    /// Deliver a value as a sealed in-memory file at VAR=/dev/fd/N: VAR=ID[:KEY[:STAGE[:VERSION_ID]]]
    /// (no KEY: the whole SecretString, or a SecretBinary's bytes). Repeatable.
    #[arg(long = "file", value_name = "VAR=REF")]
    pub files: Vec<String>,

    /// Replace every inherited variable whose value is a reference (a Secrets Manager ARN with the
    /// ECS fields, or secretsmanager:REF) with the value it names.
    #[arg(long)]
    pub from_env: bool,

    /// AWS region (default: AWS_REGION, the profile, the secret's ARN, then instance metadata).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Named profile from the AWS config files.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// Secrets Manager endpoint (default: AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Deadline for everything before exec: credentials, every call and retry (e.g. 10, 2.5, 800ms).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Attempts per AWS call, retries included (default: AWS_MAX_ATTEMPTS, else 3).
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,

    /// Keep the case of JSON keys instead of upper-casing them.
    #[arg(long)]
    pub keep_case: bool,

    /// Fail instead of overriding a variable already in the environment.
    #[arg(long)]
    pub no_override: bool,

    /// Start COMMAND with only the injected variables (like env -i).
    #[arg(short = 'i', long)]
    pub ignore_environment: bool,

    /// Remove NAME from the inherited environment (like env -u). Repeatable.
    #[arg(short = 'u', long = "unset", value_name = "NAME")]
    pub unset: Vec<String>,

    /// Let a refused name (e.g. PATH, NODE_OPTIONS) come from secret content. Repeatable.
    #[arg(long = "allow-name", value_name = "NAME")]
    pub allow_names: Vec<String>,

    /// Fetch and map everything, print what would be set (never a value), exit 0.
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, require_equals = true, default_missing_value = "text")]
    pub dry_run: Option<DryRunFormat>,

    /// Print the least-privilege IAM policy the given secrets need, without calling AWS.
    #[arg(long)]
    pub print_iam_policy: bool,

    /// Say what is happening on stderr (names and ids only, never values). Repeat for more.
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,

    /// The program to run, and its arguments.
    #[arg(value_name = "COMMAND", trailing_var_arg = true)]
    pub command: Vec<OsString>,
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

/// Parses the command line; help and version are printed here and reported as `Ok(None)`.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Option<Cli>, Error> {
    match Cli::try_parse_from(args) {
        Ok(cli) => Ok(Some(cli)),
        Err(e) if !e.use_stderr() => {
            // --help / --version: not errors.
            let _ = e.print();
            Ok(None)
        }
        Err(e) => {
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            Err(Error::Usage(format!("{first}; see secret-exec --help")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

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
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn command_after_double_dash_keeps_its_flags() {
        let cli =
            Cli::try_parse_from(["secret-exec", "-s", "a", "--", "ls", "-l", "--secret"]).unwrap();
        assert_eq!(cli.command, ["ls", "-l", "--secret"]);
        assert_eq!(cli.secrets, ["a"]);
    }

    #[test]
    fn dry_run_forms() {
        let rows = [
            (vec!["x", "-s", "a", "--dry-run"], Some(DryRunFormat::Text)),
            (
                vec!["x", "-s", "a", "--dry-run=json"],
                Some(DryRunFormat::Json),
            ),
            (vec!["x", "-s", "a", "--", "cmd"], None),
        ];
        for (args, want) in rows {
            assert_eq!(
                Cli::try_parse_from(&args).unwrap().dry_run,
                want,
                "{args:?}"
            );
        }
    }
}
