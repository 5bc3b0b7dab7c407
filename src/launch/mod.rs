//! Launching the command once its deliveries are ready.

pub mod exec;
