//! `--from-env`: inherited variables whose value is a reference, replaced in place by the value
//! it names. Recognised values, and nothing else: a full Secrets Manager secret ARN with the
//! optional ECS fields (`arn:…:secret:NAME[:KEY[:STAGE[:VERSION_ID]]]`), and
//! `secretsmanager:REF` (REF as in `--secret`). A value that merely contains `arn:` is not one.
//! A reference is parsed as the SPEC `NAME=REF`: the operator chose the name, so the
//! refused-name policy does not apply, and a malformed reference stops the launch (fail closed).

use crate::arn::Arn;
use crate::error::Error;
use crate::spec::{self, Spec};
use std::ffi::OsString;

/// One inherited variable holding a reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    /// `NAME=REF`; `raw` is that text, for messages and `--dry-run`.
    pub spec: Spec,
}

const PREFIX: &str = "secretsmanager:";

/// The REF a value names, if it is a reference at all.
fn reference_text(value: &str) -> Option<&str> {
    if let Some(rest) = value.strip_prefix(PREFIX) {
        return Some(rest);
    }
    let arn = Arn::parse(value)?;
    (arn.service == "secretsmanager" && arn.kind == "secret").then_some(value)
}

/// Every variable of `inherited` whose value is a reference, in environment order. An
/// unparsable reference is a usage error naming the variable: it must not reach the command
/// unresolved.
pub fn references(inherited: &[(OsString, OsString)]) -> Result<Vec<Reference>, Error> {
    let mut out = Vec::new();
    for (name, value) in inherited {
        // A value that is not UTF-8 cannot be a reference.
        let Some(reference) = value.to_str().and_then(reference_text) else {
            continue;
        };
        let Some(name) = name.to_str() else {
            return Err(Error::Usage(format!(
                "--from-env: a variable whose name is not UTF-8 ({}) holds a reference; rename it",
                name.to_string_lossy()
            )));
        };
        let raw = format!("{name}={}", value.to_string_lossy());
        let mut spec = spec::parse(&format!("X={reference}")).map_err(|e| {
            let why = e.split_once(": ").map_or(e.as_str(), |(_, why)| why);
            Error::Usage(format!(
                "--from-env: variable {name} holds a reference that does not parse ({why}); \
                 the form is arn:…:secret:NAME[:KEY[:STAGE[:VERSION_ID]]] or \
                 secretsmanager:ID[:KEY[:STAGE[:VERSION_ID]]]"
            ))
        })?;
        // The name may be one `--secret` would refuse as a target (e.g. lower case): it is the
        // operator's, inherited as it is.
        spec.target = spec::Target::Var(name.to_string());
        spec.raw = raw;
        out.push(Reference {
            name: name.to_string(),
            spec,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf";

    fn scan(pairs: &[(&str, &str)]) -> Result<Vec<Reference>, Error> {
        let env: Vec<(OsString, OsString)> =
            pairs.iter().map(|(k, v)| (k.into(), v.into())).collect();
        references(&env)
    }

    #[test]
    fn recognised_forms() {
        let arn_key = format!("{ARN}:password::");
        let arn_stage = format!("{ARN}:password:AWSPREVIOUS:");
        let arn_version = format!("{ARN}:::v-1");
        let short_arn = format!("secretsmanager:{ARN}:k");
        type Row<'a> = (
            &'a str,
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let rows: Vec<Row> = vec![
            (ARN, ARN, None, None, None),
            (&arn_key, ARN, Some("password"), None, None),
            (&arn_stage, ARN, Some("password"), Some("AWSPREVIOUS"), None),
            (&arn_version, ARN, None, None, Some("v-1")),
            ("secretsmanager:prod/db", "prod/db", None, None, None),
            (
                "secretsmanager:prod/db:password",
                "prod/db",
                Some("password"),
                None,
                None,
            ),
            (
                "secretsmanager:prod/db:/a/b:AWSPENDING",
                "prod/db",
                Some("/a/b"),
                Some("AWSPENDING"),
                None,
            ),
            ("secretsmanager:a=b", "a=b", None, None, None),
            (&short_arn, ARN, Some("k"), None, None),
        ];
        for (value, id, key, stage, version) in rows {
            let got = scan(&[("db_pass", value)]).unwrap();
            assert_eq!(got.len(), 1, "{value}");
            let s = &got[0].spec;
            assert_eq!(got[0].name, "db_pass");
            assert_eq!(s.target, spec::Target::Var("db_pass".into()));
            assert_eq!(s.raw, format!("db_pass={value}"));
            assert_eq!(s.secret.id, id, "{value}");
            assert_eq!(s.key_text.as_deref(), key, "{value}");
            assert_eq!(s.secret.stage.as_deref(), stage, "{value}");
            assert_eq!(s.secret.version_id.as_deref(), version, "{value}");
        }
    }

    #[test]
    fn other_values_are_untouched() {
        let inside = format!("see {ARN}");
        let rows = [
            "plain",
            "",
            &inside,
            "arn:aws:s3:::bucket",
            "arn:aws:iam::123456789012:role/app",
            "arn:aws:secretsmanager:eu-west-1:1:notsecret:x",
            "arn:",
            "arn:aws:secretsmanager",
            "SecretsManager:prod/db",
            " secretsmanager:prod/db",
            "ssm:/app/x",
        ];
        for value in rows {
            assert_eq!(scan(&[("V", value)]).unwrap(), vec![], "{value}");
        }
    }

    #[test]
    fn malformed_references_fail_closed() {
        let rows = [
            ("A", "secretsmanager:"),
            ("B", "secretsmanager::key"),
            ("C", "secretsmanager:prod/db:k:s:v:extra"),
            ("D", "arn:aws:secretsmanager:r:1:secret:"),
            ("E", "secretsmanager:prod/db:/a~2"),
        ];
        for (name, value) in rows {
            let err = scan(&[("OK", "x"), (name, value)]).expect_err(value);
            assert_eq!(err.exit_code(), 64, "{value}");
            let text = err.to_string();
            assert!(text.contains(&format!("variable {name} ")), "{text}");
            assert!(!text.contains("X="), "{text}");
        }
    }

    #[test]
    fn order_is_the_environment_order() {
        let got = scan(&[
            ("B", "secretsmanager:b"),
            ("X", "x"),
            ("A", "secretsmanager:a"),
        ])
        .unwrap();
        let names: Vec<&str> = got.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["B", "A"]);
    }
}
