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
  secret-exec --secret ssm:/app/prod/ -- ./app
      every Parameter Store parameter below /app/prod/: /app/prod/db/password is DB_PASSWORD
  secret-exec --agent --secret prod/db -- ./app
      read through the local Secrets Manager Agent (its token from AWS_TOKEN)
  secret-exec --file TLS_KEY_FILE=prod/tls:key -- ./server
      the key in a sealed in-memory file; TLS_KEY_FILE=/dev/fd/3
  secret-exec --db-url DATABASE_URL=prod/db -- ./app
      postgresql://USER:PASSWORD@HOST:PORT/DBNAME from an RDS secret, percent-encoded
  secret-exec --db-url DB_URL=prod/db --template 'DATABASE_URL={{DB_URL}}?sslmode=verify-full' -- ./app
      text with other variables' values; {{NAME|url}} percent-encodes one
  DB_PASSWORD=secretsmanager:prod/db:password secret-exec --from-env -- ./app
      inherited references replaced by the values they name
  secret-exec --secret prod/db --dry-run
      what would be set (names, secrets, versions), never a value
  secret-exec --watch=1m --secret prod/db -- ./app
      stay resident; restart ./app with the new value when prod/db rotates
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
  74          output: stdout could not be written (a full disk...); a closed pipe ends silently with 141
  75          --watch --on-change=exit: a watched secret changed; restart me
  77          permission: access denied, KMS decrypt refused, invalid or expired credentials; --user not permitted
  78          configuration: no region, no credentials, invalid AWS_* settings, --dir not on tmpfs, unknown --user
  126 / 127   COMMAND not executable / not found
  128+n       interrupted by signal n before exec; with --init/--watch, COMMAND died of signal n

SPEC := [VAR= | PREFIX*=] ID[:KEY[:STAGE[:VERSION_ID]]]   (ECS valueFrom grammar; ID is a name or ARN)
      | [VAR= | PREFIX*=] ssm:NAME[:SELECTOR] | ssm:/PATH/ | parameter ARN   (Parameter Store)
--file VAR=ID[:KEY[:STAGE[:VERSION_ID]]]   (file descriptors from 3, after a LISTEN_FDS range of ours)
--db-url VAR=ID[:KEY[:STAGE[:VERSION_ID]]]   (engine postgres/aurora-postgresql/redshift, mysql/aurora-mysql/mariadb)";

/// Where the AWS Secrets Manager Agent listens unless told otherwise (its own default port).
pub const DEFAULT_AGENT: &str = "http://localhost:2773";

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
    override_usage = "secret-exec [OPTIONS] [--secret SPEC]... [--file VAR=REF]... [--db-url VAR=REF]... [--template VAR=TEXT]... [--from-env] [--init | --watch[=INTERVAL]] -- COMMAND [ARG]..."
)]
pub struct Cli {
    /// Secret to inject: [VAR= | PREFIX*=] ID[:KEY[:STAGE[:VERSION_ID]]]. Repeatable.
    #[arg(short = 's', long = "secret", value_name = "SPEC")]
    pub secrets: Vec<String>,

    /// Deliver a value as a sealed in-memory file at VAR=/dev/fd/N: VAR=ID[:KEY[:STAGE[:VERSION_ID]]]
    /// (no KEY: the whole SecretString, or a SecretBinary's bytes). Repeatable.
    #[arg(long = "file", value_name = "VAR=REF")]
    pub files: Vec<String>,

    /// Set VAR to the connection URL built from an RDS secret's engine, host, port, username,
    /// password and dbname (percent-encoded): postgresql://… or mysql://…. Repeatable.
    #[arg(long = "db-url", value_name = "VAR=REF")]
    pub db_urls: Vec<String>,

    /// Set VAR to TEXT with {{NAME}} replaced by NAME's value in the command's environment,
    /// {{NAME|url}} percent-encoded, {{NAME|json}} a JSON string; \{{ is a literal {{. Repeatable.
    #[arg(long = "template", value_name = "VAR=TEXT")]
    pub templates: Vec<String>,
    /// Run COMMAND as USER (and GROUP; names from /etc/passwd and /etc/group, or numbers);
    /// secret-exec fetches as itself.
    #[arg(long = "user", value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// Write the --secret variables as files DIR/NAME (mode 0400) instead of variables; DIR must
    /// be on tmpfs or ramfs.
    #[arg(long = "dir", value_name = "DIR")]
    pub dir: Option<OsString>,

    /// Replace every inherited variable whose value is a reference (a Secrets Manager ARN with the
    /// ECS fields, or secretsmanager:REF) with the value it names.
    #[arg(long)]
    pub from_env: bool,

    /// AWS region (default: AWS_REGION, the profile, the secret's ARN, then instance metadata).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Read Secrets Manager replicas from REGION when the primary region cannot answer (5xx,
    /// timeouts, connection failures, throttling); never after a definite answer (not found,
    /// denied). Also SECRET_EXEC_FAILOVER_REGION.
    #[arg(long, value_name = "REGION")]
    pub failover_region: Option<String>,

    /// Named profile from the AWS config files.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// Endpoint for Secrets Manager and Parameter Store (default: AWS_ENDPOINT_URL_SECRETS_MANAGER
    /// or AWS_ENDPOINT_URL_SSM, then AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Read secrets through the local AWS Secrets Manager Agent (default URL
    /// http://localhost:2773; also SECRET_EXEC_AGENT). Its token comes from AWS_TOKEN.
    #[arg(long, value_name = "URL", num_args = 0..=1, require_equals = true, default_missing_value = DEFAULT_AGENT)]
    pub agent: Option<String>,

    /// Deadline for everything before exec: credentials, every call and retry (more than 0, at
    /// most 1h; e.g. 10, 2.5, 800ms, 1m).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::duration::timeout)]
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
    pub unset: Vec<OsString>,

    /// Let a refused name (e.g. PATH, NODE_OPTIONS) come from secret content. Repeatable.
    #[arg(long = "allow-name", value_name = "NAME")]
    pub allow_names: Vec<String>,

    /// Fetch and map everything, print what would be set (never a value) and whether COMMAND
    /// would start, exit 0.
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, default_missing_value = "text")]
    pub dry_run: Option<DryRunFormat>,

    /// Print the least-privilege IAM policy the given secrets need, without calling AWS.
    #[arg(long)]
    pub print_iam_policy: bool,

    /// Say what is happening on stderr, never a value: -v events and timings, -vv request ids,
    /// credential source and retries, -vvv each attempt's URL, User-Agent and status.
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,

    /// Format of every stderr line: text, or one JSON object per line (default:
    /// SECRET_EXEC_LOG_FORMAT, else text).
    #[arg(long, value_name = "FORMAT", ignore_case = true)]
    pub log_format: Option<crate::log::Format>,

    /// Stay resident as COMMAND's init: start it as a child in its own process group, forward
    /// every signal, reap zombies, exit with its status (for containers without tini).
    #[arg(long)]
    pub init: bool,

    /// Restart COMMAND when a watched secret's version changes, checking every INTERVAL (a
    /// DURATION from 1s to 24h, ±10 % jitter; default 5m). Implies --init.
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, require_equals = true, default_missing_value = DEFAULT_INTERVAL, value_parser = crate::duration::interval)]
    pub watch: Option<Duration>,

    /// On a change: restart COMMAND (default), stop it and exit 75 (exit), or rewrite the --dir
    /// files and send it a signal (signal:SIG, e.g. signal:HUP).
    #[arg(long, value_name = "ACTION")]
    pub on_change: Option<String>,

    /// Wait a random delay up to DURATION before acting on a change (default: a tenth of the
    /// --watch interval; 0 acts at once).
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::splay)]
    pub splay: Option<Duration>,

    /// Signal that stops COMMAND on a change (default SIGTERM).
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,

    /// How long COMMAND has to stop before SIGKILL (a DURATION like --timeout; default 10s).
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::timeout)]
    pub stop_timeout: Option<Duration>,

    /// The program to run, and its arguments.
    #[arg(value_name = "COMMAND", trailing_var_arg = true)]
    pub command: Vec<OsString>,
}

/// `--watch` without a value.
pub const DEFAULT_INTERVAL: &str = "5m";

/// Parses the command line; help and version are printed here and reported as `Ok(None)`.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Option<Cli>, Error> {
    match Cli::try_parse_from(args) {
        Ok(cli) => Ok(Some(cli)),
        Err(e) if !e.use_stderr() => {
            // --help / --version: not errors, but output that can fail like any other.
            crate::output::stdout(e.render().to_string().as_bytes())?;
            Ok(None)
        }
        Err(e) => {
            let mut line = one_line_usage(&e.render().to_string());
            // `--dry-run ./app`: the value slot took the COMMAND; say where a COMMAND goes.
            let dry_run = e
                .get(clap::error::ContextKind::InvalidArg)
                .is_some_and(|a| a.to_string().starts_with("--dry-run"));
            if e.kind() == clap::error::ErrorKind::InvalidValue && dry_run {
                line = line.replace(
                    "; see secret-exec --help",
                    "; a COMMAND to check goes after '--': --dry-run -- COMMAND",
                );
            }
            Err(Error::Usage(line))
        }
    }
}

/// clap's multi-line error folded into the one line every error gets: the error, then its tip
/// ("a similar argument exists") and the possible values, without the usage block clap repeats.
fn one_line_usage(rendered: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    while let Some(line) = lines.next() {
        if line.starts_with("Usage:") {
            // The usage text follows up to clap's "For more information" line.
            for rest in lines.by_ref() {
                if rest.starts_with("For more information") {
                    break;
                }
            }
            continue;
        }
        if line.starts_with("For more information") {
            continue;
        }
        let line = line.strip_prefix("error: ").unwrap_or(line);
        parts.push(line.to_string());
    }
    if parts.is_empty() {
        parts.push("invalid arguments".into());
    }
    format!("{}; see secret-exec --help", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

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

    /// `--dry-run json` (a space) is the JSON format, never text with `json` as COMMAND; a
    /// COMMAND after a dry run goes after `--`.
    #[test]
    fn dry_run_forms() {
        let rows: &[(&[&str], Option<DryRunFormat>, &[&str])] = &[
            (&["--dry-run"], Some(DryRunFormat::Text), &[]),
            (&["--dry-run=json"], Some(DryRunFormat::Json), &[]),
            (&["--dry-run", "json"], Some(DryRunFormat::Json), &[]),
            (&["--dry-run", "text"], Some(DryRunFormat::Text), &[]),
            (
                &["--dry-run", "--", "json"],
                Some(DryRunFormat::Text),
                &["json"],
            ),
            (
                &["--dry-run", "json", "--", "cmd"],
                Some(DryRunFormat::Json),
                &["cmd"],
            ),
            (&["--", "cmd"], None, &["cmd"]),
        ];
        for (args, want, command) in rows {
            let full = ["x", "-s", "a"].iter().chain(args.iter());
            let cli = Cli::try_parse_from(full).unwrap();
            assert_eq!(cli.dry_run, *want, "{args:?}");
            assert_eq!(cli.command, *command, "{args:?}");
        }
        let err = parse(["x", "-s", "a", "--dry-run", "./app"].map(OsString::from)).unwrap_err();
        assert_eq!(err.exit_code(), 64);
    }

    /// clap's tip and possible values survive in the one line; the usage block does not.
    #[test]
    fn clap_errors_fold_into_one_line() {
        let rows: &[(&[&str], &[&str])] = &[
            (
                &["--secrets", "a"],
                &["'--secrets'", "tip: a similar argument exists: '--secret'"],
            ),
            (
                &["--dry-run=xml"],
                &["'xml'", "[possible values: text, json]"],
            ),
            (
                &["--log-format", "yaml"],
                &["'yaml'", "[possible values: text, json]"],
            ),
        ];
        for (args, want) in rows {
            let full = std::iter::once("x")
                .chain(args.iter().copied())
                .map(OsString::from);
            let err = parse(full).unwrap_err();
            let text = err.to_string();
            assert_eq!(err.exit_code(), 64, "{text}");
            assert!(!text.contains('\n') && !text.contains("Usage:"), "{text}");
            let hint = [
                "; see secret-exec --help",
                "goes after '--': --dry-run -- COMMAND",
            ];
            assert!(hint.iter().any(|h| text.ends_with(h)), "{text}");
            for w in *want {
                assert!(text.contains(w), "{args:?}: {text}");
            }
        }
    }
}
