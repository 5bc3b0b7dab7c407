//! `--watch`: a background thread asks Secrets Manager every INTERVAL (±10 % jitter) which
//! version each watched secret's stage points at, compares with the versions the running
//! COMMAND was started with, and on a change fetches and maps everything again. Only a complete,
//! valid environment block is handed to the supervisor; a failed re-fetch is one stderr line and
//! the running COMMAND is kept. A re-fetch that returns exactly the versions COMMAND runs with
//! (DescribeSecret and GetSecretValue disagree) restarts nothing. Polling failures back off and
//! never end anything. The rebuild goes through the same [`super::delivery`] as the first start;
//! the supervisor only receives what it hands over (a `deliver::Updates`).

use crate::config::Config;
use crate::deliver::{Delivery, Updates};
use crate::error::Error;
use crate::from_env::Reference;
use crate::log::{self, Event};
use crate::plan::Plan;
use crate::secret::scrub_stack;
use crate::source::{Versions, window};
use crate::spec::SecretRef;
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::sync::mpsc::{Sender, channel};
use std::time::Duration;

/// Failed polls double the delay up to this (or the interval, when that is longer).
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// `d` scaled by a factor in [0.9, 1.1): `r` in [0, 1) picks where, so a fleet started together
/// spreads its polls.
pub fn jittered(d: Duration, r: f64) -> Duration {
    d.mul_f64(0.9 + 0.2 * r.clamp(0.0, 1.0))
}

/// The delay before acting on a change (`--splay`): `r` in [0, 1) picks where in [0, `splay`].
pub fn splay_delay(splay: Duration, r: f64) -> Duration {
    splay.mul_f64(r.clamp(0.0, 1.0))
}

/// The wait before the next poll after `failures` failed ones in a row: the interval, doubled
/// per failure, capped at the larger of the interval and `MAX_BACKOFF`.
pub fn poll_delay(interval: Duration, failures: u32) -> Duration {
    let cap = interval.max(MAX_BACKOFF);
    interval.saturating_mul(1 << failures.min(16)).min(cap)
}

/// The watched references whose stage now points somewhere other than the baseline says.
pub fn changed<'a>(baseline: &Versions, now: &'a Versions) -> Vec<&'a SecretRef> {
    now.iter()
        .filter(|(r, v)| baseline.get(r) != Some(v))
        .map(|(r, _)| r)
        .collect()
}

/// The watcher thread's stack: the SDK's futures are deep, and the scrub must fit under them.
const WATCHER_STACK: usize = 4 << 20;

/// Starts the watcher thread. `baseline` holds the versions the running COMMAND got.
pub fn spawn(
    job: Job,
    interval: Duration,
    splay: Duration,
    baseline: Versions,
) -> Result<Updates, Error> {
    let watched = job.plan.watched();
    use nix::fcntl::OFlag;
    let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
        .map_err(|e| Error::Internal(format!("cannot create the watcher's pipe: {e}")))?;
    let (tx, rx) = channel();
    if watched.is_empty() {
        log::at(1, Event::Watch).say(format_args!(
            "--watch: every secret is pinned to a version; nothing to watch"
        ));
    } else {
        std::thread::Builder::new()
            .name("watch".into())
            .stack_size(WATCHER_STACK)
            .spawn(move || watch_loop(&job, (interval, splay), watched, baseline, tx, wr))
            .map_err(|e| Error::Internal(format!("cannot start the watcher: {e}")))?;
    }
    Ok(Updates { wake: rd, next: rx })
}

/// What a re-fetch needs: the same configuration, plan, `--from-env` references and COMMAND as
/// the first start.
pub struct Job {
    pub config: Config,
    pub plan: Plan,
    pub refs: Vec<Reference>,
    pub argv: Vec<OsString>,
}

fn watch_loop(
    job: &Job,
    (interval, splay): (Duration, Duration),
    refs: Vec<SecretRef>,
    mut baseline: Versions,
    tx: Sender<Delivery>,
    wake: OwnedFd,
) {
    let mut failures = 0u32;
    // Checks in a row whose re-fetch returned the running versions: the first says so on stderr.
    let mut disagreements = 0u32;
    loop {
        std::thread::sleep(jittered(
            poll_delay(interval, failures),
            crate::duration::random_unit(),
        ));
        let now = match window::stage_versions(&job.config.aws, &job.plan, &refs) {
            Ok(now) => now,
            Err(e) => {
                failures = failures.saturating_add(1);
                let next = poll_delay(interval, failures);
                let transient = matches!(e, Error::Unavailable { .. } | Error::TimedOut { .. });
                if failures == 1 && !transient {
                    log::warn_error(
                        Event::Watch,
                        &e,
                        "--watch keeps COMMAND running and retries",
                    );
                } else {
                    log::at(1, Event::Watch).say(format_args!(
                        "--watch: {e}; next check in about {}s",
                        next.as_secs()
                    ));
                }
                continue;
            }
        };
        failures = 0;
        let ids: Vec<String> = changed(&baseline, &now)
            .iter()
            .map(|r| format!("'{r}'"))
            .collect();
        if ids.is_empty() {
            disagreements = 0;
            log::at(2, Event::Watch).say(format_args!("--watch: no change"));
            continue;
        }
        log::at(1, Event::Watch).say(format_args!(
            "--watch: {} changed; fetching everything again",
            ids.join(", ")
        ));
        if !splay.is_zero() {
            let wait = splay_delay(splay, crate::duration::random_unit());
            log::at(1, Event::Watch).say(format_args!(
                "--watch: acting on the change in {}ms (--splay up to {}ms)",
                wait.as_millis(),
                splay.as_millis()
            ));
            std::thread::sleep(wait);
        }
        match super::delivery(&job.config, &job.plan, &job.refs, &job.argv) {
            // Eventual consistency after a stage move, or an endpoint or proxy that misbehaves:
            // restarting would give COMMAND the environment it already has, at every check.
            Ok(delivery) if delivery.versions == baseline => {
                drop(delivery);
                disagreements = disagreements.saturating_add(1);
                log::at(u8::from(disagreements > 1), Event::Watch).say(format_args!(
                    "--watch: DescribeSecret reports another version for {}, but GetSecretValue \
                     returns the versions COMMAND already runs with; COMMAND keeps running, \
                     asking again at the next check",
                    ids.join(", ")
                ));
            }
            Ok(delivery) => {
                disagreements = 0;
                baseline = delivery.versions.clone();
                // The fetch's dead frames are scrubbed before the supervisor is woken: once it
                // has restarted COMMAND, nothing of the new set may be left on this stack.
                scrub_stack();
                if tx.send(delivery).is_err() {
                    return;
                }
                // One byte to the pipe we own; a full pipe (EAGAIN) already means "look".
                let _ = nix::unistd::write(&wake, b"!");
            }
            Err(e) => log::warn_error(
                Event::Watch,
                &e,
                &format!(
                    "{} changed but the new set cannot be used, so COMMAND keeps running with \
                     the old one; retrying at the next check",
                    ids.join(", ")
                ),
            ),
        }
        scrub_stack();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        let d = Duration::from_secs(300);
        let rows = [
            (0.0, 270_000),
            (0.5, 300_000),
            (0.999_999, 329_999),
            (-1.0, 270_000),
            (2.0, 330_000),
        ];
        for (r, ms) in rows {
            assert_eq!(jittered(d, r).as_millis(), ms, "{r}");
        }
    }

    #[test]
    fn splay_stays_within_its_bound() {
        let s = Duration::from_secs(30);
        for (r, ms) in [
            (0.0, 0),
            (0.5, 15_000),
            (0.999_999, 29_999),
            (-1.0, 0),
            (2.0, 30_000),
        ] {
            assert_eq!(splay_delay(s, r).as_millis(), ms, "{r}");
        }
        assert_eq!(splay_delay(Duration::ZERO, 0.7), Duration::ZERO);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = Duration::from_secs;
        let rows = [
            (s(1), 0, s(1)),
            (s(1), 1, s(2)),
            (s(1), 3, s(8)),
            (s(1), 10, s(900)),
            (s(1), u32::MAX, s(900)),
            (s(300), 1, s(600)),
            (s(300), 2, s(900)),
            (s(3600), 0, s(3600)),
            (s(3600), 5, s(3600)),
        ];
        for (interval, failures, want) in rows {
            assert_eq!(
                poll_delay(interval, failures),
                want,
                "{interval:?} {failures}"
            );
        }
    }

    #[test]
    fn change_detection() {
        let r = |id: &str| SecretRef::secret(id, None, None);
        let mut base = Versions::new();
        base.insert(r("a"), Some("v1".into()));
        base.insert(r("b"), Some("v1".into()));
        let now = |a: Option<&str>, b: Option<&str>| -> Versions {
            [(r("a"), a.map(String::from)), (r("b"), b.map(String::from))].into()
        };
        let same = now(Some("v1"), Some("v1"));
        assert!(changed(&base, &same).is_empty());
        let moved = now(Some("v2"), Some("v1"));
        assert_eq!(changed(&base, &moved), [&r("a")]);
        let gone = now(Some("v1"), None);
        assert_eq!(changed(&base, &gone), [&r("b")]);
    }
}
