//! The one duration grammar of the command line, and each flag's bounds. A duration is a
//! number (whole or decimal) with an optional unit, `ms`, `s`, `m` or `h`; a bare number is
//! seconds: `10`, `2.5`, `800ms`, `30s`, `1.5m`, `1h`. Every flag parses with this grammar (as a
//! clap value parser) and differs only in its bounds, which the error names. The one jitter
//! source for waits (retry backoff, watch polls) lives here too.

use std::time::Duration;

/// What a flag accepts: more than `min` when `min` is zero (unless `zero` allows it), else at
/// least `min`; at most `max`.
struct Bounds {
    min: Duration,
    /// Zero is accepted (it turns the wait off).
    zero: bool,
    max: Duration,
    /// The bounds in words, for the error.
    said: &'static str,
}

const TIMEOUT: Bounds = Bounds {
    min: Duration::ZERO,
    zero: false,
    max: Duration::from_secs(3600),
    said: "more than 0 and at most 1h",
};
const SPLAY: Bounds = Bounds {
    min: Duration::ZERO,
    zero: true,
    max: Duration::from_secs(3600),
    said: "from 0 (act at once) to 1h",
};
const INTERVAL: Bounds = Bounds {
    min: Duration::from_secs(1),
    zero: false,
    max: Duration::from_secs(24 * 3600),
    said: "from 1s to 24h",
};

/// The text as a duration, unbounded but positive-or-zero and finite.
fn grammar(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (num, scale) = [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)]
        .iter()
        .find_map(|(unit, scale)| t.strip_suffix(unit).map(|n| (n, *scale)))
        .unwrap_or((t, 1.0));
    // Digits and at most one dot: no sign, exponent, `inf` or `NaN` reaches `parse`.
    let digits = num.bytes().filter(u8::is_ascii_digit).count();
    let dots = num.bytes().filter(|&b| b == b'.').count();
    if digits == 0 || digits + dots != num.len() || dots > 1 {
        return None;
    }
    let secs = num.parse::<f64>().ok()? * scale;
    Duration::try_from_secs_f64(secs).ok()
}

fn bounded(text: &str, b: &Bounds) -> Result<Duration, String> {
    let d = grammar(text).ok_or_else(|| {
        format!(
            "not a duration (e.g. 10, 2.5, 800ms, 30s, 1.5m, 1h); it must be {}",
            b.said
        )
    })?;
    let low = if b.min.is_zero() {
        d.is_zero() && !b.zero
    } else {
        d < b.min
    };
    if low || d > b.max {
        return Err(format!("it must be {}", b.said));
    }
    Ok(d)
}

/// `--timeout` and `--stop-timeout`: more than 0, at most an hour.
pub fn timeout(text: &str) -> Result<Duration, String> {
    bounded(text, &TIMEOUT)
}

/// `--splay`: from 0 (act at once) to an hour.
pub fn splay(text: &str) -> Result<Duration, String> {
    bounded(text, &SPLAY)
}

/// `--watch`'s interval: from 1s (a poll is a paid call per secret) to 24h.
pub fn interval(text: &str) -> Result<Duration, String> {
    bounded(text, &INTERVAL)
}

/// A uniform number in [0, 1), to spread waits: std's random SipHash keys (seeded from the
/// kernel once per thread, then stepped) hashed, so there is no raw system call and no failure.
pub fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let n = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (n >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_grammar() {
        let ok = [
            ("10", 10_000),
            ("2.5", 2_500),
            ("10s", 10_000),
            ("800ms", 800),
            ("1m", 60_000),
            ("1.5m", 90_000),
            ("1h", 3_600_000),
            (" 30s ", 30_000),
            (".5", 500),
        ];
        for (text, ms) in ok {
            assert_eq!(grammar(text), Some(Duration::from_millis(ms)), "{text}");
        }
        for bad in [
            "", "s", "abc", "-1", "+1", "1e3", "NaN", "inf", "1.2.3", "1d", "5 m", "1hs", "ms",
        ] {
            assert_eq!(grammar(bad), None, "{bad}");
        }
    }

    #[test]
    fn jitter_is_in_range_and_varies() {
        let draws: Vec<f64> = (0..64).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|r| (0.0..1.0).contains(r)), "{draws:?}");
        let distinct: std::collections::BTreeSet<u64> = draws.iter().map(|r| r.to_bits()).collect();
        assert!(distinct.len() > 60, "{draws:?}");
    }

    #[test]
    fn each_flag_its_bounds() {
        assert_eq!(timeout("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(timeout("1ms"), Ok(Duration::from_millis(1)));
        for bad in ["0", "0s", "3601", "61m", "2h"] {
            let e = timeout(bad).unwrap_err();
            assert!(e.contains("more than 0 and at most 1h"), "{bad}: {e}");
        }
        assert_eq!(interval("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(interval("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(interval("2.5s"), Ok(Duration::from_millis(2500)));
        for bad in ["500ms", "0s", "0.9", "25h", "86401"] {
            let e = interval(bad).unwrap_err();
            assert!(e.contains("from 1s to 24h"), "{bad}: {e}");
        }
        let e = interval("abc").unwrap_err();
        assert!(e.starts_with("not a duration"), "{e}");
        for (text, ms) in [
            ("0", 0),
            ("0s", 0),
            ("0.0m", 0),
            ("250ms", 250),
            ("1h", 3_600_000),
        ] {
            assert_eq!(splay(text), Ok(Duration::from_millis(ms)), "{text}");
        }
        for bad in ["61m", "3601", "-1", "x"] {
            let e = splay(bad).unwrap_err();
            assert!(e.contains("from 0 (act at once) to 1h"), "{bad}: {e}");
        }
    }
}
