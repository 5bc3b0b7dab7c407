//! The fetch window: the only place async code runs. One current-thread runtime, one deadline
//! over the AWS files, credentials and every call, and a watched signal (see `signals`) ending it
//! at once. The runtime's threads block those signals, so they reach the main thread only. The
//! runtime is shut down when this returns, so no runtime task can hold a copy of a value at
//! execve; a helper thread stuck in a syscall is abandoned (it holds no value).

use super::{Results, aws};
use crate::config::AwsOptions;
use crate::error::Error;
use crate::plan::Plan;
use crate::signals;
use crate::vlog;
use std::time::{Duration, Instant};

/// Fetches every entry of `plan`, or fails with the deadline or the first signal. The deadline
/// starts at `start`, so mapping after the fetch can be held to the same one.
pub fn fetch(aws: &AwsOptions, plan: &Plan, start: Instant) -> Result<Results, Error> {
    signals::check()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_start(signals::block_in_this_thread)
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?;
    let remaining = aws.timeout.saturating_sub(start.elapsed());
    let timed_out = || Error::TimedOut {
        after: aws.timeout,
        secrets: plan.entries.iter().map(|e| e.secret.to_string()).collect(),
    };
    let result = rt.block_on(async {
        let work = async {
            let files = super::files::load(aws).await?;
            let clients = aws::clients(aws, plan, files).await?;
            vlog!(
                1,
                "fetching {} secret(s), default region {}",
                plan.entries.len(),
                clients.default_region
            );
            Ok::<_, Error>(super::fetch_all(&clients, plan).await)
        };
        tokio::select! {
            biased;
            sig = signals::interrupted() => Err(Error::Signal(sig)),
            r = tokio::time::timeout(remaining, work) => r.unwrap_or_else(|_| Err(timed_out())),
        }
    });
    // Blocking threads (DNS, file reads) hold no value; one stuck in a syscall is left behind
    // rather than waited for.
    rt.shutdown_timeout(Duration::from_millis(100));
    result
}
