//! Issue 3: the mapping contract end to end against moto (SPEC forms, naming, policy, limits, --dry-run).

#[allow(unused_imports)]
use crate::support::*;
