//! Starting COMMAND. Exec in place is `crate::exec`; the modules here are the opt-in resident
//! parent for `--init`/`--watch`: the child's clean start, the supervision loop, and the watcher.

pub mod child;
pub mod listen;
pub mod supervise;
pub mod watch;
