//! ARNs, split once: `arn:PARTITION:SERVICE:REGION:ACCOUNT:TYPE:NAME`, and the one rule for the
//! random `-XXXXXX` suffix AWS appends to a secret's name. The SPEC parser, the plan, the
//! fetcher and the IAM printer all read ARNs through this type, so they cannot disagree.

/// The fields of an ARN, borrowed from the id. `rest` is everything after the sixth `:`, so a
/// name (or a SPEC's trailing `:KEY:STAGE` fields) may itself hold colons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub kind: &'a str,
    pub rest: &'a str,
}

impl<'a> Arn<'a> {
    /// Splits `id` if it is an ARN (starts with `arn:` and has all seven fields).
    pub fn parse(id: &'a str) -> Option<Arn<'a>> {
        let mut f = id.strip_prefix("arn:")?.splitn(6, ':');
        Some(Arn {
            partition: f.next()?,
            service: f.next()?,
            region: f.next()?,
            account: f.next()?,
            kind: f.next()?,
            rest: f.next()?,
        })
    }
}

/// The region field of any ARN (a parameter ARN has no seventh field, so `Arn::parse` does not
/// take it), when it names one.
pub fn region_of(id: &str) -> Option<&str> {
    id.strip_prefix("arn:")?
        .split(':')
        .nth(2)
        .filter(|r| !r.is_empty())
}

/// `name` without AWS's random suffix: a hyphen and six letters or digits at its end. AWS itself
/// reads a trailing `-XXXXXX` this way (and advises against names that end so).
pub fn strip_suffix(name: &str) -> &str {
    let b = name.as_bytes();
    let n = b.len();
    if n > 7 && b[n - 7] == b'-' && b[n - 6..].iter().all(u8::is_ascii_alphanumeric) {
        &name[..n - 7]
    } else {
        name
    }
}

/// Whether a secret AWS reports as `name`/`arn` is the one requested as `id`: by name, by full
/// ARN, or by partial ARN (the ARN without its suffix).
pub fn answers(id: &str, name: Option<&str>, arn: Option<&str>) -> bool {
    name == Some(id) || arn.is_some_and(|a| a == id || strip_suffix(a) == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:1:secret:prod/db-AbCdEf";

    #[test]
    fn parse_table() {
        let a = Arn::parse("arn:aws-cn:secretsmanager:cn-north-1:123:secret:a:b:c").unwrap();
        assert_eq!(
            (a.partition, a.service, a.region, a.account, a.kind, a.rest),
            (
                "aws-cn",
                "secretsmanager",
                "cn-north-1",
                "123",
                "secret",
                "a:b:c"
            )
        );
        assert_eq!(
            Arn::parse("arn:aws:secretsmanager:::secret:x")
                .unwrap()
                .region,
            ""
        );
        for not in [
            "prod/db",
            "arn:aws:secretsmanager",
            "arn:aws:s3:::",
            "xarn:a:b:c:d:e:f",
        ] {
            assert_eq!(Arn::parse(not), None, "{not}");
        }
    }

    #[test]
    fn regions_of_any_arn() {
        let rows = [
            (ARN, Some("us-east-1")),
            (
                "arn:aws:ssm:eu-west-1:1:parameter/app/db",
                Some("eu-west-1"),
            ),
            ("arn:aws:ssm::1:parameter/db", None),
            ("/app/db", None),
            ("arn:aws", None),
        ];
        for (id, want) in rows {
            assert_eq!(region_of(id), want, "{id}");
        }
    }

    #[test]
    fn suffix_stripping() {
        for name in ["prod/db-AbCdEf", "prod/db-a1b2c3"] {
            assert_eq!(strip_suffix(name), "prod/db", "{name}");
        }
        // No suffix, five characters, one not alphanumeric, nothing before it: kept whole.
        for name in ["prod/db", "db-AbCdE", "db-AbCd_f", "-AbCdEf"] {
            assert_eq!(strip_suffix(name), name, "{name}");
        }
    }

    #[test]
    fn batch_entries_match_requested_ids() {
        let rows = [
            ("prod/db", Some("prod/db"), Some(ARN), true),
            (ARN, Some("prod/db"), Some(ARN), true),
            (
                "arn:aws:secretsmanager:us-east-1:1:secret:prod/db",
                Some("prod/db"),
                Some(ARN),
                true,
            ),
            ("prod/d", Some("prod/db"), Some(ARN), false),
            (
                "arn:aws:secretsmanager:us-east-1:1:secret:prod",
                Some("prod/db"),
                Some(ARN),
                false,
            ),
            ("other", None, None, false),
        ];
        for (id, name, a, want) in rows {
            assert_eq!(answers(id, name, a), want, "{id}");
        }
    }
}
