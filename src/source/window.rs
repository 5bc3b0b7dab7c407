//! The fetch window: the only place async code runs. One current-thread runtime, one deadline
//! over credentials and every call, and SIGTERM, SIGINT and SIGHUP ending it at once (as PID 1
//! in a container an unhandled SIGTERM would be ignored). The runtime is gone when this
//! returns, so no runtime thread or buffer can hold a copy of a value at execve.

use super::{Results, Versions, aws, describe};
use crate::config::AwsOptions;
use crate::error::Error;
use crate::plan::Plan;
use crate::spec::SecretRef;
use nix::sys::signal::Signal;
use std::future::Future;
use tokio::signal::unix::{SignalKind, signal};

/// Fetches every entry of `plan`, or fails with the deadline or the first signal.
pub fn fetch(aws: &AwsOptions, plan: &Plan) -> Result<Results, Error> {
    window(aws, plan, async {
        let clients = aws::clients(aws, plan).await?;
        Ok(super::fetch_all(&clients, plan).await)
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
    window(aws, plan, async {
        let clients = aws::clients(aws, plan).await?;
        describe::stage_versions(&clients, refs).await
    })
}

/// Runs `work` on a fresh current-thread runtime under `--timeout`, ended early by a signal.
fn window<T>(
    aws: &AwsOptions,
    plan: &Plan,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?;
    let result = rt.block_on(async {
        let watch = |sig: Signal| {
            signal(SignalKind::from_raw(sig as i32))
                .map_err(|e| Error::Internal(format!("cannot watch {}: {e}", sig.as_str())))
        };
        let (mut term, mut int, mut hup) = (
            watch(Signal::SIGTERM)?,
            watch(Signal::SIGINT)?,
            watch(Signal::SIGHUP)?,
        );
        tokio::select! {
            r = tokio::time::timeout(aws.timeout, work) => r.unwrap_or_else(|_| Err(Error::TimedOut {
                after: aws.timeout,
                secrets: plan.entries.iter().map(|e| e.secret.to_string()).collect(),
            })),
            _ = term.recv() => Err(Error::Signal(Signal::SIGTERM)),
            _ = int.recv() => Err(Error::Signal(Signal::SIGINT)),
            _ = hup.recv() => Err(Error::Signal(Signal::SIGHUP)),
        }
    });
    // Dropping the runtime joins its blocking threads (DNS, file reads) before we go on.
    drop(rt);
    result
}
