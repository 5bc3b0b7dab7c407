//! The one error type. Every failure before exec is a variant here, and `exit_code` is the only
//! place the SPEC exit-code table lives. Variants carry secret ids, variable names and causes —
//! never a secret value — so `Display` is always safe to print.

use std::fmt;

/// What went wrong, in the SPEC's exit-code classes. The message is complete: it says what,
/// for which secret, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags or SPEC (64).
    #[error("{0}")]
    Usage(String),
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
    /// Network, throttling or timeouts after every retry (69).
    #[error("{what}: {why}")]
    Unavailable { what: String, why: String },
    /// Access denied, KMS decrypt refused, invalid or expired credentials (77).
    #[error("{what}: {why}")]
    Permission { what: String, why: String },
    /// No region, no credentials, invalid AWS_* settings (78).
    #[error("{0}")]
    Config(String),
    /// COMMAND exists but cannot be executed (126).
    #[error("cannot execute '{command}': {why}")]
    NotExecutable { command: String, why: String },
    /// COMMAND not found (127).
    #[error("command '{command}' not found{why}")]
    CommandNotFound { command: String, why: String },
    /// Interrupted by a signal before exec (128+n).
    #[error("interrupted by signal {name} before exec; the command was not started")]
    Signal { number: i32, name: String },
    /// A bug in secret-exec (70); reported without any payload that could hold a value.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The SPEC exit-code table. Nothing else in the program decides an exit status.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 64,
            Error::Data { .. } | Error::DataGeneral(_) => 65,
            Error::NotFound { .. } => 66,
            Error::Unavailable { .. } => 69,
            Error::Internal(_) => 70,
            Error::Permission { .. } => 77,
            Error::Config(_) => 78,
            Error::NotExecutable { .. } => 126,
            Error::CommandNotFound { .. } => 127,
            Error::Signal { number, .. } => 128 + number,
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

/// Strip control characters (and anything that could steer a terminal) from text that came from
/// outside — AWS error messages, secret ids echoed back — before it is printed.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}') {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    let trimmed = out.trim_end();
    trimmed.to_string()
}

/// Writes the one stderr line for an error.
pub struct Report<'a>(pub &'a Error);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "secret-exec: {}", sanitize(&self.0.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_table() {
        let cases: &[(Error, i32)] = &[
            (Error::Usage("x".into()), 64),
            (Error::data("s", "w", "y"), 65),
            (Error::DataGeneral("x".into()), 65),
            (
                Error::NotFound {
                    secret: "s".into(),
                    why: "y".into(),
                },
                66,
            ),
            (
                Error::Unavailable {
                    what: "w".into(),
                    why: "y".into(),
                },
                69,
            ),
            (Error::Internal("x".into()), 70),
            (
                Error::Permission {
                    what: "w".into(),
                    why: "y".into(),
                },
                77,
            ),
            (Error::Config("x".into()), 78),
            (
                Error::NotExecutable {
                    command: "c".into(),
                    why: "y".into(),
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
            (
                Error::Signal {
                    number: 15,
                    name: "SIGTERM".into(),
                },
                143,
            ),
        ];
        for (err, code) in cases {
            assert_eq!(err.exit_code(), *code, "{err:?}");
        }
    }

    #[test]
    fn sanitize_strips_controls() {
        let cases = [
            ("plain", "plain"),
            ("a\nb", "a b"),
            ("\x1b[31mred", " [31mred"),
            ("tail\n", "tail"),
            ("bidi\u{202e}x", "bidi x"),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize(input), want, "{input:?}");
        }
    }

    #[test]
    fn report_is_one_line() {
        let e = Error::Usage("bad\nthing".into());
        let line = Report(&e).to_string();
        assert_eq!(line, "secret-exec: bad thing");
    }
}
