//! Deliveries: how mapped values reach the command.

pub mod environ;
