//! Sources: one module per backend, each turning requests into fetched values.

pub mod aws;
pub mod secrets_manager;
