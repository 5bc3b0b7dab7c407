//! The fetch window: the only place async code runs. One current-thread runtime, one deadline
//! over the AWS files, credentials and every call, and a watched signal (see `signals`) ending it
//! at once. The runtime's threads block those signals, so they reach the main thread only. The
//! runtime is shut down when this returns, so no runtime task can hold a copy of a value at
//! execve; a helper thread stuck in a syscall is abandoned (it holds no value), a helper process
//! is killed (see `orphans`).

use super::{Results, Versions, aws, describe};
use crate::error::Error;
use crate::plan::Plan;
use crate::signals;
use crate::source::options::AwsOptions;
use crate::spec::SecretRef;
use std::future::Future;
use std::time::{Duration, Instant};

/// Fetches every entry of `plan`, or fails with the deadline or the first signal. The deadline
/// starts at `start`, so mapping after the fetch can be held to the same one.
pub fn fetch(aws: &AwsOptions, plan: &Plan, start: Instant) -> Result<Results, Error> {
    window(aws, plan, start, async {
        // The agent alone needs no region, credentials or TLS: none of them is touched.
        let clients = if plan.needs_aws() {
            let files = super::aws::files::load(aws).await?;
            Some(aws::clients(aws, plan, files).await?)
        } else {
            None
        };
        Ok(super::fetch_all(clients.as_ref(), aws, plan).await)
    })
}

/// Where the stage of each of `refs` (secrets of `plan`) points now, for `--watch`: metadata
/// only, under the same deadline. Clients and credentials are built afresh, so rotated
/// credentials are picked up and nothing is kept between checks.
pub fn stage_versions(
    aws: &AwsOptions,
    plan: &Plan,
    refs: &[SecretRef],
) -> Result<Versions, Error> {
    window(aws, plan, Instant::now(), async {
        let files = super::aws::files::load(aws).await?;
        let clients = aws::clients(aws, plan, files).await?;
        describe::stage_versions(&clients, refs).await
    })
}

/// Runs `work` on a fresh current-thread runtime under what is left of `--timeout` since
/// `start`, ended early by a watched signal.
fn window<T>(
    aws: &AwsOptions,
    plan: &Plan,
    start: Instant,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    signals::check()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_start(signals::block_in_this_thread)
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?;
    let collecting = super::aws::orphans::begin();
    let remaining = aws.timeout.saturating_sub(start.elapsed());
    super::aws::attempts::forget_throttling();
    // A deadline a quota used up says which quota, never "check the network path".
    let timed_out = || {
        let secrets = plan.entries.iter().map(|e| e.secret.to_string()).collect();
        match super::aws::attempts::last_throttled() {
            Some((api, region, code)) => Error::Throttled {
                after: aws.timeout,
                secrets,
                why: format!(
                    "{code} past every retry; {}",
                    super::aws::quota::advice(&api, &region)
                ),
            },
            None => Error::TimedOut {
                after: aws.timeout,
                secrets,
            },
        }
    };
    let result = rt.block_on(async {
        tokio::select! {
            biased;
            sig = signals::interrupted() => Err(Error::Signal(sig)),
            r = tokio::time::timeout(remaining, work) => r.unwrap_or_else(|_| Err(timed_out())),
        }
    });
    // Blocking threads (DNS, file reads) hold no value; one stuck in a syscall is left behind
    // rather than waited for.
    rt.shutdown_timeout(Duration::from_millis(100));
    if collecting {
        super::aws::orphans::end();
    }
    result
}
