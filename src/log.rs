//! `-v` diagnostics on stderr. Callers pass names, ids and counts — there is deliberately no way
//! to log a `SecretText` (it has no `Display`). The AWS SDK's own `tracing` output is never
//! installed, so `RUST_LOG` and `LOG_SENSITIVE_BODIES` cannot make it print bodies.

use std::sync::atomic::{AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(0);

pub fn set_level(level: u8) {
    LEVEL.store(level, Ordering::Relaxed);
}

pub fn enabled(level: u8) -> bool {
    LEVEL.load(Ordering::Relaxed) >= level
}

/// `vlog!(level, "format", args...)`: one sanitised stderr line when `-v` is given `level` times.
#[macro_export]
macro_rules! vlog {
    ($level:expr, $($arg:tt)*) => {
        if $crate::log::enabled($level) {
            $crate::output::stderr_line(&format!(
                "secret-exec: {}",
                $crate::sanitize::one_line(&format!($($arg)*))
            ));
        }
    };
}
