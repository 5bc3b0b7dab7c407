//! Deliveries: how mapped values reach the command. Today the environment (merge and limits,
//! then the block handed to execve); file delivery (memfd) belongs here too.

pub(crate) mod env_block;
pub mod environ;
