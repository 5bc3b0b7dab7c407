//! Thin entry point: run, print the one error line, exit with its code.

use secret_exec::error::Error;
use secret_exec::log;

#[cfg(not(feature = "bench-system-allocator"))]
#[global_allocator]
static ALLOC: secret_exec::wipe_alloc::Wiping<std::alloc::System> =
    secret_exec::wipe_alloc::Wiping(std::alloc::System);

fn main() {
    // A panic message could carry data; report only where it happened. Unwinding (not abort)
    // runs every Drop on the way out, so secret buffers are still wiped.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        log::report_panic(&at);
    }));
    let outcome = std::panic::catch_unwind(|| secret_exec::run(std::env::args_os()));
    let code = match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            log::report(&e);
            e.exit_code()
        }
        Err(_) => Error::Internal(String::new()).exit_code(),
    };
    secret_exec::signals::exiting();
    std::process::exit(code);
}
