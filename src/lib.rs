//! secret-exec: fetch secrets from AWS Secrets Manager, put them in the environment, exec.
//! The binary is a thin `main` over [`run`]; every stage is its own module (see STYLE.md).

pub mod aws;
pub mod cli;
pub mod config;
pub mod dryrun;
pub mod environ;
pub mod error;
pub mod exec;
pub mod fetch;
pub mod flatten;
pub mod harden;
pub mod iam;
pub mod log;
pub mod map;
pub mod names;
pub mod proxy;
pub mod run;
pub mod secret;
pub mod spec;
pub mod tls;
pub mod wipe_alloc;

pub use error::Error;
pub use run::run;
