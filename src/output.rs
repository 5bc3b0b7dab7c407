//! Writing to stdout and stderr without ever panicking. Results (help, `--dry-run`, the IAM
//! policy) go through `stdout`, whose failure is an error with its own exit status: a closed
//! pipe is 141 with no message, as other Unix tools end; any other write error is 74. Diagnostic
//! lines go through `stderr_line`, which is best-effort: a closed or full stderr loses the line,
//! never the exit status.

use crate::error::Error;
use std::io::Write;

/// The error a failed write to `what` stands for.
pub fn write_error(e: &std::io::Error, what: &str) -> Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Error::BrokenPipe
    } else {
        Error::Output(format!(
            "cannot write to {what}: {e}; check where it goes (a full disk, a closed terminal)"
        ))
    }
}

/// Writes `bytes` to stdout and flushes.
pub fn stdout(bytes: &[u8]) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| write_error(&e, "stdout"))
}

/// Writes one line to stderr, ignoring failure: there is nowhere left to report it.
pub fn stderr_line(line: &str) {
    let mut err = std::io::stderr().lock();
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    let _ = err.write_all(&buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_errors_map_to_141_and_74() {
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(write_error(&pipe, "stdout").exit_code(), 141);
        let full = std::io::Error::from_raw_os_error(nix::libc::ENOSPC);
        let e = write_error(&full, "stdout");
        assert_eq!(e.exit_code(), 74);
        assert!(e.to_string().starts_with("cannot write to stdout: "), "{e}");
    }
}
