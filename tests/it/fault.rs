//! Issue 4: fetching under faults (a fault-injecting server on loopback), batching, deadlines, signals.

#[allow(unused_imports)]
use crate::support::*;
