//! Secret-bearing text. A `SecretText` is the only type that holds a secret value; its memory is
//! wiped on drop and its `Debug` never shows the value. Buffers are sized once and filled without
//! reallocating, so no stale partial copy is left behind by a growing `String`.

use std::fmt;
use zeroize::Zeroizing;

pub struct SecretText(Zeroizing<String>);

impl SecretText {
    /// Takes ownership of a `String` (e.g. the SDK's `secret_string`) without copying it.
    pub fn from_owned(s: String) -> Self {
        SecretText(Zeroizing::new(s))
    }

    /// An empty buffer that can hold `capacity` bytes without reallocating.
    pub fn with_capacity(capacity: usize) -> Self {
        SecretText(Zeroizing::new(String::with_capacity(capacity)))
    }

    /// Copies `s` into a buffer of exactly the right size.
    pub fn copy_of(s: &str) -> Self {
        let mut t = Self::with_capacity(s.len());
        t.push_str(s);
        t
    }

    /// Appends without ever growing the buffer: a caller that sized it wrong has a bug, and
    /// growing would leave an unwiped copy in the old allocation.
    pub fn push_str(&mut self, s: &str) {
        assert!(
            self.0.len() + s.len() <= self.0.capacity(),
            "SecretText capacity exceeded"
        );
        self.0.push_str(s);
    }

    pub fn push(&mut self, c: char) {
        assert!(
            self.0.len() + c.len_utf8() <= self.0.capacity(),
            "SecretText capacity exceeded"
        );
        self.0.push(c);
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Raw secret bytes (SecretBinary). Same guarantees as `SecretText`. The environment cannot
/// carry them; only file delivery reads them, writing them straight into a memfd.
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    pub fn from_owned(v: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(v))
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Overwrites the stack below the caller with zeros: the fetch's deeper frames are dead but
/// their bytes stay in the stack mapping, and a resident process keeps running.
#[inline(never)]
pub fn scrub_stack() {
    let mut area = [0u8; SCRUB_BYTES];
    zeroize::Zeroize::zeroize(&mut area[..]);
    std::hint::black_box(&area);
}
const SCRUB_BYTES: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretText::copy_of("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([redacted])");
        let b = SecretBytes::from_owned(b"hunter2".to_vec());
        assert_eq!(format!("{b:?}"), "[redacted]");
    }

    #[test]
    fn copy_is_exact_size() {
        let s = SecretText::copy_of("abc");
        assert_eq!(s.expose(), "abc");
        assert_eq!(s.0.capacity(), 3);
    }

    #[test]
    #[should_panic(expected = "capacity exceeded")]
    fn refuses_to_grow() {
        let mut s = SecretText::with_capacity(2);
        s.push_str("abc");
    }
}
