//! The jitter source for fetching: a uniform number in [0, 1) from the kernel, so launches that
//! a quota turned away together spread out again. Not secret; 0.5 if the kernel cannot give one.

pub fn unit() -> f64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most 8 bytes into `b`, which is 8 bytes long; nix 0.32 has no
    // wrapper for it.
    let n = unsafe { nix::libc::getrandom(b.as_mut_ptr().cast(), 8, 0) };
    if n != 8 {
        return 0.5;
    }
    (u64::from_ne_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    #[test]
    fn in_range_and_not_constant() {
        let draws: Vec<f64> = (0..32).map(|_| super::unit()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)), "{draws:?}");
        assert!(draws.iter().any(|u| *u != draws[0]), "{draws:?}");
    }
}
