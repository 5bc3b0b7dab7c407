//! Launching: how the command starts once its deliveries are ready. Exec in place by default;
//! `--init`/`--watch` keep a resident parent instead: the child's clean start, the supervision
//! loop.

pub mod child;
pub mod exec;
pub mod listen;
pub mod supervise;
pub mod user;
