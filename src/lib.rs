//! secret-exec: fetch secrets from AWS Secrets Manager, put them in the environment, exec.
//! The binary is a thin `main` over [`run`]; every stage is its own module (see STYLE.md).

pub mod arn;
pub mod cli;
pub mod config;
pub mod deliver;
pub mod dryrun;
pub mod error;
pub mod harden;
pub mod iam;
pub mod launch;
pub mod log;
pub mod map;
pub mod plan;
pub mod run;
pub mod sanitize;
pub mod secret;
pub mod source;
pub mod spec;
pub mod wipe_alloc;

pub use error::Error;
pub use run::run;
