//! The one error type. Every failure before exec is a variant here, and `exit_code` is the only
//! place the SPEC exit-code table lives. Variants carry secret ids, variable names and causes —
//! never a secret value — so `Display` is always safe to print.

use crate::sanitize::one_line;
use nix::sys::signal::Signal;
use std::fmt;
use std::time::Duration;

/// What went wrong, in the SPEC's exit-code classes. The message is complete: it says what,
/// for which secret, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags or SPEC (64).
    #[error("{0}")]
    Usage(String),
    /// The backend refused the request itself as malformed (64).
    #[error("{service} rejected secret '{secret}': {why}")]
    Rejected {
        service: &'static str,
        secret: String,
        why: String,
    },
    /// Secret content cannot be mapped to the environment (65).
    #[error("{what} for '{secret}': {why}")]
    Data {
        secret: String,
        what: String,
        why: String,
    },
    /// Environment-wide data problem not tied to one secret (65), e.g. total size.
    #[error("{0}")]
    DataGeneral(String),
    /// Secret, version or stage does not exist or is scheduled for deletion (66).
    #[error("secret '{secret}' not found: {why}")]
    NotFound { secret: String, why: String },
    /// Network, throttling or a malformed answer after every retry (69).
    #[error("cannot fetch secret '{secret}': {why}")]
    Unavailable { secret: String, why: String },
    /// The overall deadline passed before every secret was in (69).
    #[error(
        "timed out after {after:?} fetching {}: credentials and every call must finish within \
         --timeout; check the network path to Secrets Manager, or raise --timeout",
        quoted(.secrets)
    )]
    TimedOut {
        after: Duration,
        secrets: Vec<String>,
    },
    /// The deadline passed while a request-rate quota kept turning calls away (69); `why` names
    /// the quota and what helps (`source::aws::quota::advice`).
    #[error("timed out after {after:?} fetching {}: {why}", quoted(.secrets))]
    Throttled {
        after: Duration,
        secrets: Vec<String>,
        why: String,
    },
    /// A bug in secret-exec (70); reported without any payload that could hold a value.
    #[error("{0}")]
    Internal(String),
    /// Access denied or KMS decrypt refused for one secret (77).
    #[error("access denied to secret '{secret}': {why}")]
    Permission { secret: String, why: String },
    /// The credentials were found but are invalid or expired (77).
    #[error("AWS credentials are invalid or expired: {why}")]
    BadCredentials { why: String },
    /// A credentials source failed: it refused to hand out credentials (77), or it did not
    /// answer usefully after its retry (69). `what` names the source.
    #[error("{what}: {why}")]
    Credentials {
        refused: bool,
        what: String,
        why: String,
    },
    /// No region, no credentials, invalid AWS_* settings (78).
    #[error("{0}")]
    Config(String),
    /// COMMAND exists but cannot be executed (126).
    #[error("cannot execute '{command}': {why}")]
    NotExecutable { command: String, why: String },
    /// COMMAND not found (127).
    #[error("command '{command}' not found{why}")]
    CommandNotFound { command: String, why: String },
    /// stdout or stderr could not be written: a full disk, an I/O error (74).
    #[error("{0}")]
    Output(String),
    /// stdout is a closed pipe (141, as if killed by SIGPIPE; no message, as other tools).
    #[error("stdout is a closed pipe")]
    BrokenPipe,
    /// `--user` names a switch this process cannot make (77).
    #[error("{0}")]
    UserSwitch(String),
    /// Interrupted by a signal before exec (128+n).
    #[error("interrupted by signal {} before exec; the command was not started", .0.as_str())]
    Signal(Signal),
}

fn quoted(ids: &[String]) -> String {
    let quoted: Vec<String> = ids.iter().map(|id| format!("'{id}'")).collect();
    quoted.join(", ")
}

impl Error {
    /// The SPEC exit-code table. Nothing else in the program decides an exit status.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Rejected { .. } => 64,
            Error::Data { .. } | Error::DataGeneral(_) => 65,
            Error::NotFound { .. } => 66,
            Error::Unavailable { .. }
            | Error::TimedOut { .. }
            | Error::Throttled { .. }
            | Error::Credentials { refused: false, .. } => 69,
            Error::Internal(_) => 70,
            Error::Permission { .. }
            | Error::BadCredentials { .. }
            | Error::Credentials { refused: true, .. }
            | Error::UserSwitch(_) => 77,
            Error::Config(_) => 78,
            Error::NotExecutable { .. } => 126,
            Error::CommandNotFound { .. } => 127,
            Error::Output(_) => 74,
            Error::BrokenPipe => 128 + Signal::SIGPIPE as i32,
            Error::Signal(sig) => 128 + *sig as i32,
        }
    }

    /// Whether the error line is printed: a closed stdout ends silently, as other tools do.
    pub fn is_reported(&self) -> bool {
        !matches!(self, Error::BrokenPipe)
    }

    /// The secret the error is about, when it is about one (for the JSON log's `secret` field).
    pub fn secret(&self) -> Option<&str> {
        match self {
            Error::Rejected { secret, .. }
            | Error::Data { secret, .. }
            | Error::NotFound { secret, .. }
            | Error::Unavailable { secret, .. }
            | Error::Permission { secret, .. } => Some(secret),
            _ => None,
        }
    }

    /// A credentials source's failure: `refused` it (77), or unavailable (69).
    pub fn credentials(refused: bool, what: impl Into<String>, why: impl Into<String>) -> Self {
        Error::Credentials {
            refused,
            what: what.into(),
            why: why.into(),
        }
    }

    pub fn data(
        secret: impl Into<String>,
        what: impl Into<String>,
        why: impl Into<String>,
    ) -> Self {
        Error::Data {
            secret: secret.into(),
            what: what.into(),
            why: why.into(),
        }
    }
}

/// Writes the one stderr line for an error.
pub struct Report<'a>(pub &'a Error);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "secret-exec: {}", one_line(&self.0.to_string()))
    }
}

/// Test helper: asserts that `parse` refuses each `(input, part)` with exit code `code`, in a
/// message holding `part`.
#[cfg(test)]
#[track_caller]
pub(crate) fn assert_refuses<T: std::fmt::Debug>(
    parse: impl Fn(&str) -> Result<T, Error>,
    code: i32,
    rows: &[(&str, &str)],
) {
    for (raw, want) in rows {
        let e = parse(raw).expect_err(raw);
        assert_eq!(e.exit_code(), code, "{raw}");
        assert!(e.to_string().contains(want), "{raw}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which variant `e` is. No wildcard arm: a new variant does not compile until it is given
    /// the next number here, and `every_variant_is_sampled` then fails until `cases` has it.
    fn variant(e: &Error) -> usize {
        match e {
            Error::Usage(_) => 0,
            Error::Rejected { .. } => 1,
            Error::Data { .. } => 2,
            Error::DataGeneral(_) => 3,
            Error::NotFound { .. } => 4,
            Error::Unavailable { .. } => 5,
            Error::TimedOut { .. } => 6,
            Error::Internal(_) => 7,
            Error::Permission { .. } => 8,
            Error::BadCredentials { .. } => 9,
            Error::Credentials { .. } => 10,
            Error::Config(_) => 11,
            Error::NotExecutable { .. } => 12,
            Error::CommandNotFound { .. } => 13,
            Error::Output(_) => 14,
            Error::BrokenPipe => 15,
            Error::Signal(_) => 16,
            Error::Throttled { .. } => 17,
            Error::UserSwitch(_) => 18,
        }
    }
    const VARIANTS: usize = 19;

    /// One error of each variant (both sides of `Credentials`), with its exit code.
    fn cases() -> Vec<(Error, i32)> {
        let (secret, why) = (String::from("s"), String::from("y"));
        vec![
            (Error::Usage("x".into()), 64),
            (
                Error::Rejected {
                    service: "Secrets Manager",
                    secret: secret.clone(),
                    why: why.clone(),
                },
                64,
            ),
            (Error::data("s", "w", "y"), 65),
            (Error::DataGeneral("x".into()), 65),
            (
                Error::NotFound {
                    secret: secret.clone(),
                    why: why.clone(),
                },
                66,
            ),
            (
                Error::Unavailable {
                    secret: secret.clone(),
                    why: why.clone(),
                },
                69,
            ),
            (
                Error::TimedOut {
                    after: Duration::from_secs(1),
                    secrets: vec![secret.clone()],
                },
                69,
            ),
            (
                Error::Throttled {
                    after: Duration::from_secs(1),
                    secrets: vec![secret.clone()],
                    why: why.clone(),
                },
                69,
            ),
            (Error::Internal("x".into()), 70),
            (Error::UserSwitch("x".into()), 77),
            (
                Error::Permission {
                    secret: secret.clone(),
                    why: why.clone(),
                },
                77,
            ),
            (Error::BadCredentials { why: why.clone() }, 77),
            (Error::credentials(true, "w", "y"), 77),
            (Error::credentials(false, "w", "y"), 69),
            (Error::Config("x".into()), 78),
            (
                Error::NotExecutable {
                    command: "c".into(),
                    why: why.clone(),
                },
                126,
            ),
            (
                Error::CommandNotFound {
                    command: "c".into(),
                    why: String::new(),
                },
                127,
            ),
            (Error::Output("x".into()), 74),
            (Error::BrokenPipe, 141),
            (Error::Signal(Signal::SIGTERM), 143),
            (Error::Signal(Signal::SIGINT), 130),
        ]
    }

    #[test]
    fn exit_code_table() {
        for (err, code) in &cases() {
            assert_eq!(err.exit_code(), *code, "{err:?}");
        }
    }

    #[test]
    fn every_variant_is_sampled() {
        let seen: std::collections::BTreeSet<usize> =
            cases().iter().map(|(e, _)| variant(e)).collect();
        assert_eq!(seen, (0..VARIANTS).collect(), "a variant has no case");
    }

    /// The codes `--help` lists: each row's leading numbers (`126 / 127` is two), and `128+n`.
    fn help_codes() -> (std::collections::BTreeSet<i32>, bool) {
        let mut codes = std::collections::BTreeSet::new();
        let mut signals = false;
        for line in crate::cli::EXIT_CODES.lines().skip(1) {
            if !line.starts_with("  ") {
                break;
            }
            let head = line.trim_start().split("  ").next().unwrap_or("");
            for word in head.split(" / ") {
                match word.trim() {
                    "128+n" => signals = true,
                    w => {
                        if let Ok(n) = w.parse() {
                            codes.insert(n);
                        }
                    }
                }
            }
        }
        (codes, signals)
    }

    /// Every code an error can end a run with, and 75 (`--watch --on-change=exit`), is a row
    /// of the help's exit-code table; a signal's 128+n is the `128+n` row.
    #[test]
    fn every_exit_code_is_in_the_help_table() {
        let (codes, signals) = help_codes();
        assert!(signals, "no 128+n row in:\n{}", crate::cli::EXIT_CODES);
        let mut wanted: Vec<i32> = cases().iter().map(|(e, _)| e.exit_code()).collect();
        wanted.push(75);
        for code in wanted {
            let listed = codes.contains(&code) || (code > 128 && signals);
            assert!(listed, "exit code {code} is not in --help's table");
        }
        // The parse is not vacuous: the table's plain rows are all read.
        for code in [64, 65, 66, 69, 70, 74, 75, 77, 78, 126, 127] {
            assert!(codes.contains(&code), "{code} not parsed from the table");
        }
    }

    #[test]
    fn signal_and_timeout_messages_name_what_happened() {
        let e = Error::Signal(Signal::SIGHUP);
        assert!(e.to_string().contains("signal SIGHUP"), "{e}");
        let e = Error::TimedOut {
            after: Duration::from_millis(800),
            secrets: vec!["a".into(), "b".into()],
        };
        assert!(
            e.to_string()
                .starts_with("timed out after 800ms fetching 'a', 'b': "),
            "{e}"
        );
    }

    #[test]
    fn report_is_one_line() {
        let e = Error::Usage("bad\nthing".into());
        let line = Report(&e).to_string();
        assert_eq!(line, "secret-exec: bad thing");
    }
}
