//! Process hardening for the fetch window: no core dumps, no same-uid ptrace, `/proc/PID/mem`
//! closed. `RLIMIT_CORE` is left alone on purpose: it would outlive exec and change the child,
//! whereas the dumpable flag is reset by the kernel when COMMAND is executed.

use crate::log::{self, Event};

pub fn no_dumps() {
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        log::at(1, Event::Warning).say(format_args!(
            "could not clear the dumpable flag ({e}); core dumps stay possible"
        ));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dumpable_flag_is_cleared() {
        super::no_dumps();
        assert_eq!(nix::sys::prctl::get_dumpable().ok(), Some(false));
        nix::sys::prctl::set_dumpable(true).unwrap();
    }
}
