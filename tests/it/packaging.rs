//! Issue 6: packaging checks that run as tests (IAM policy output, generated man page).

#[allow(unused_imports)]
use crate::support::*;
