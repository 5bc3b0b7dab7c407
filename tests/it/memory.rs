//! Issue 5: memory hygiene, proven by scanning the process at execve, and no leak to any output.

#[allow(unused_imports)]
use crate::support::*;
