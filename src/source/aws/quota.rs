//! AWS's published request quotas for the read APIs secret-exec calls, and the line a throttled
//! launch ends with: which API's quota, in which region, was exceeded, and what helps. The quota
//! is per account and region and shared by every caller there, so a fleet that starts together
//! can exceed it however few calls each launch makes; retrying harder only makes it worse.
//!
//! Sources (read December 2026): the Secrets Manager quotas page (`reference_limits`: 10,000
//! GetSecretValue/s and 40,000 DescribeSecret/s since March 2025, 100 BatchGetSecretValue/s and
//! 100 ListSecrets/s, none adjustable) and the Systems Manager quotas page (Parameter Store
//! standard throughput 40/s shared by GetParameter, GetParameters and GetParametersByPath; the
//! higher-throughput setting 3,000/s for GetParameter and GetParameters, 100/s for
//! GetParametersByPath). `tests/it/quota.rs` enforces the same table.

/// Requests per second AWS allows one account in one region, by API (Parameter Store at its
/// standard throughput, the default).
pub const PER_SECOND: &[(&str, u32)] = &[
    ("GetSecretValue", 10_000),
    ("DescribeSecret", 40_000),
    ("BatchGetSecretValue", 100),
    ("ListSecrets", 100),
    ("GetParameter", 40),
    ("GetParameters", 40),
    ("GetParametersByPath", 40),
];

/// The published quota of `api`, requests per second.
pub fn per_second(api: &str) -> Option<u32> {
    PER_SECOND.iter().find(|(a, _)| *a == api).map(|(_, n)| *n)
}

/// The error codes AWS services answer when a request-rate quota is exceeded.
pub fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "Throttling"
            | "ThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "SlowDown"
    )
}

/// What a launch throttled past its retries says after the code: the quota exceeded, and what
/// helps (never "check the network": the network is fine, the account is busy).
pub fn advice(api: &str, region: &str) -> String {
    if api.starts_with("GetParameter") {
        return format!(
            "the account's Parameter Store throughput in {region} (40 requests/s at the standard \
             setting, shared by GetParameter, GetParameters and GetParametersByPath) was \
             exceeded; it is shared by every caller in the account and region: spread the \
             fleet's starts, enable higher throughput, or raise --timeout"
        );
    }
    let rate = match per_second(api) {
        Some(n) => format!(" ({} requests/s)", thousands(n)),
        None => String::new(),
    };
    format!(
        "the account's {api} request quota in {region}{rate} was exceeded; it is shared by every \
         caller in the account and region: spread the fleet's starts, read through the local \
         agent (--agent), or raise --timeout"
    )
}

/// `10000` as `10,000`.
fn thousands(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_names_the_quota_and_what_helps() {
        // (API, region, parts the advice holds, parts it must not hold)
        let rows: &[(&str, &str, &[&str], &[&str])] = &[
            (
                "BatchGetSecretValue",
                "eu-west-1",
                &[
                    "BatchGetSecretValue request quota in eu-west-1 (100 requests/s)",
                    "--agent",
                    "spread",
                ],
                &["network"],
            ),
            ("GetSecretValue", "us-east-1", &["(10,000 requests/s)"], &[]),
            ("Unknown", "r", &["Unknown request quota in r was"], &[]),
            (
                "GetParameters",
                "r",
                &["Parameter Store throughput in r (40 requests/s"],
                &["--agent"],
            ),
        ];
        for (api, region, has, lacks) in rows {
            let text = advice(api, region);
            for part in *has {
                assert!(text.contains(part), "{api}: {text}");
            }
            for part in *lacks {
                assert!(!text.contains(part), "{api}: {text}");
            }
        }
    }

    #[test]
    fn throttling_codes() {
        for code in ["ThrottlingException", "TooManyRequestsException"] {
            assert!(is_throttling(code), "{code}");
        }
        for code in ["AccessDeniedException", "InternalServiceError", ""] {
            assert!(!is_throttling(code), "{code}");
        }
        assert_eq!(thousands(40_000), "40,000");
        assert_eq!(thousands(100), "100");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
