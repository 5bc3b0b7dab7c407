//! Deliveries: how mapped values reach the command: the environment (merge and limits, then the
//! block handed to execve), and sealed memfds on fixed descriptors for `--file`. Owns what COMMAND
//! is started with ([`Delivery`]) and how `--watch` hands a new one over ([`Updates`]).

pub mod dir;
pub(crate) mod env_block;
pub mod environ;
pub mod files;

use crate::source::Versions;
use env_block::EnvBlock;
use files::Files;
use std::os::fd::OwnedFd;
use std::sync::mpsc::Receiver;

/// What COMMAND is started with: the environment block, checked against the kernel's limits
/// for `argv`, the `--file` memfds, and the versions they were built from.
pub struct Delivery {
    pub block: EnvBlock,
    pub files: Files,
    pub versions: Versions,
    /// The limit and the largest injected variables, for an E2BIG the limit check could not
    /// foresee (see `pipeline::size_report`). Names and sizes only.
    pub too_big: String,
}

/// The receiving end of `--watch`: readable `wake` means `next` holds a new delivery.
pub struct Updates {
    pub wake: OwnedFd,
    pub next: Receiver<Delivery>,
}
