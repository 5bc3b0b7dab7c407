//! Deliveries: how mapped values reach the command: the environment (merge and limits, then the
//! block handed to execve), and sealed memfds on fixed descriptors for `--file`.

pub(crate) mod env_block;
pub mod environ;
pub mod files;
