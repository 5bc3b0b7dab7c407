//! Launching: how the command starts once its deliveries are ready. Today exec in place; the
//! resident supervisor (`--init`/`--watch`) belongs here too.

pub mod exec;
