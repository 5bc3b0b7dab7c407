//! systemd socket activation (`sd_listen_fds`): descriptors 3..3+LISTEN_FDS are passed on when
//! LISTEN_PID names this process. Anything else above fd 2 is never handed to COMMAND.

/// The most descriptors taken from LISTEN_FDS; a larger number is not a real socket set.
const MAX_LISTEN_FDS: u32 = 4096;

/// How many descriptors from 3 on belong to COMMAND: LISTEN_FDS when LISTEN_PID is `own`,
/// otherwise none (the variables were meant for another process, e.g. our parent).
pub fn passed(listen_pid: Option<&str>, listen_fds: Option<&str>, own: u32) -> u32 {
    let ours = listen_pid.and_then(|p| p.trim().parse::<u32>().ok()) == Some(own);
    match listen_fds.and_then(|n| n.trim().parse::<u32>().ok()) {
        Some(n) if ours && n <= MAX_LISTEN_FDS => n,
        _ => 0,
    }
}

/// [`passed`] for this process's environment.
pub fn from_env() -> u32 {
    passed(
        std::env::var("LISTEN_PID").ok().as_deref(),
        std::env::var("LISTEN_FDS").ok().as_deref(),
        std::process::id(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passed_table() {
        let rows: &[(Option<&str>, Option<&str>, u32)] = &[
            (Some("42"), Some("2"), 2),
            (Some("42"), Some("0"), 0),
            (Some("43"), Some("2"), 0),
            (None, Some("2"), 0),
            (Some("42"), None, 0),
            (Some("42"), Some("x"), 0),
            (Some("42"), Some("-1"), 0),
            (Some("42"), Some("5000"), 0),
            (Some(" 42"), Some("1 "), 1),
        ];
        for (pid, fds, want) in rows {
            assert_eq!(passed(*pid, *fds, 42), *want, "{pid:?} {fds:?}");
        }
    }
}
