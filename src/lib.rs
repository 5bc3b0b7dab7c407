//! secret-exec: fetch secrets from AWS Secrets Manager, put them in the environment, exec.
//! The binary is a thin `main` over [`run`]. The stages are the layout: `spec` → `plan` →
//! `source/` → `map/` → `deliver/` → `launch/`, with `iam` and `dryrun` as the modes that stop
//! early. Modules are crate-private unless the binary, an example or the tests need them.

pub(crate) mod arn;
pub(crate) mod bounded_read;
pub mod cli;
pub(crate) mod config;
pub mod deliver;
pub(crate) mod dryrun;
pub(crate) mod duration;
pub mod error;
pub(crate) mod from_env;
pub(crate) mod harden;
pub(crate) mod iam;
pub(crate) mod launch;
pub mod log;
pub(crate) mod map;
pub mod output;
pub(crate) mod plan;
pub mod run;
pub(crate) mod sanitize;
#[cfg(test)]
mod scratch;
pub(crate) mod secret;
pub mod signals;
pub(crate) mod source;
pub(crate) mod spec;
pub mod wipe_alloc;

pub use error::Error;
pub use run::run;
