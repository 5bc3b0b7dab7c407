//! The raw command line, as clap sees it. Nothing here is validated beyond clap's own parsing;
//! `Config::try_from` turns it into something the rest of the program can trust.

use clap::{ArgAction, Parser, ValueEnum};
use std::ffi::OsString;

pub const EXIT_CODES: &str = "\
Exit codes:
  COMMAND's   after a successful exec, secret-exec *is* COMMAND
  64          usage: bad flags or SPEC
  65          data: a secret cannot be mapped (missing key, collision, refused name, NUL, binary, too large)
  66          not found: secret, version or stage does not exist, or is scheduled for deletion
  69          unavailable: network, throttling or timeouts after every retry
  75          --watch --on-change=exit: a watched secret changed; restart me
  77          permission: access denied, KMS decrypt refused, invalid or expired credentials
  78          configuration: no region, no credentials, invalid AWS_* settings
  126 / 127   COMMAND not executable / not found
  128+n       interrupted by signal n before exec; with --init/--watch, COMMAND died of signal n

SPEC := [VAR= | PREFIX*=] ID[:KEY[:STAGE[:VERSION_ID]]]   (ECS valueFrom grammar; ID is a name or ARN)";

/// What `--watch` does once the changed secrets are fetched and valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnChange {
    /// Stop COMMAND and start it again with the new environment.
    Restart,
    /// Stop COMMAND and exit 75, for the orchestrator to restart the task.
    Exit,
}

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
    after_help = EXIT_CODES,
    override_usage = "secret-exec [OPTIONS] --secret SPEC [--secret SPEC]... -- COMMAND [ARG]..."
)]
pub struct Cli {
    /// Secret to inject: [VAR= | PREFIX*=] ID[:KEY[:STAGE[:VERSION_ID]]]. Repeatable.
    #[arg(short = 's', long = "secret", value_name = "SPEC")]
    pub secrets: Vec<String>,

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
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub timeout: String,

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

    /// Stay resident as COMMAND's init: start it as a child in its own process group, forward
    /// every signal, reap zombies, exit with its status (for containers without tini).
    #[arg(long)]
    pub init: bool,

    /// Restart COMMAND when a watched secret's version changes, checking every INTERVAL (1s to
    /// 24h, units s/m/h, ±10 % jitter; default 5m). Implies --init.
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, require_equals = true, default_missing_value = "5m")]
    pub watch: Option<String>,

    /// On a change: restart COMMAND (default), or stop it and exit 75.
    #[arg(long, value_name = "ACTION", value_enum)]
    pub on_change: Option<OnChange>,

    /// Signal that stops COMMAND on a change (default SIGTERM).
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,

    /// How long COMMAND has to stop before SIGKILL (default 10s).
    #[arg(long, value_name = "DURATION")]
    pub stop_timeout: Option<String>,

    /// The program to run, and its arguments.
    #[arg(value_name = "COMMAND", trailing_var_arg = true)]
    pub command: Vec<OsString>,
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
