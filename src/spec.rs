//! The `--secret` SPEC grammar: `[TARGET=]REF`, REF being the ECS `valueFrom` form
//! `ID[:KEY[:STAGE[:VERSION_ID]]]`. Parsing is pure and total: every input either yields a
//! `Spec` or a usage message; nothing past this module re-checks the raw text.

use crate::arn::Arn;
use std::fmt;

/// Where the selected value goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// No `TARGET=`: names come from the secret (keys, or the secret name).
    Auto,
    /// `VAR=`: one variable, named by the operator.
    Var(String),
    /// `PREFIX*=`: every key flattened, each name prefixed.
    Prefix(String),
}

/// A KEY field: a top-level key, or an RFC 6901 JSON Pointer when it starts with `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    Top(String),
    Pointer(Vec<String>),
}

impl Key {
    /// The path of object keys / array indices the KEY selects.
    pub fn path(&self) -> Vec<&str> {
        match self {
            Key::Top(k) => vec![k.as_str()],
            Key::Pointer(tokens) => tokens.iter().map(String::as_str).collect(),
        }
    }

    /// The key whose name a `Target::Auto` variable takes: the last pointer token.
    pub fn leaf(&self) -> &str {
        match self {
            Key::Top(k) => k,
            Key::Pointer(tokens) => tokens.last().map(String::as_str).unwrap_or(""),
        }
    }
}

/// One secret version to fetch. Two SPECs with equal `SecretRef`s share one fetch.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretRef {
    pub id: String,
    pub stage: Option<String>,
    pub version_id: Option<String>,
}

impl SecretRef {
    /// The region named in a full ARN, if the id is one.
    pub fn arn_region(&self) -> Option<&str> {
        Arn::parse(&self.id).and_then(|a| a.region())
    }

    /// Plain AWSCURRENT reads are the ones `BatchGetSecretValue` can serve.
    pub fn is_current(&self) -> bool {
        self.version_id.is_none() && self.stage.as_deref().is_none_or(|s| s == "AWSCURRENT")
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)?;
        if let Some(stage) = &self.stage {
            write!(f, " (stage {stage})")?;
        }
        if let Some(v) = &self.version_id {
            write!(f, " (version {v})")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// The SPEC as the operator wrote it, for messages.
    pub raw: String,
    pub target: Target,
    pub secret: SecretRef,
    pub key: Option<Key>,
    /// The KEY field as written, for messages and `--dry-run`.
    pub key_text: Option<String>,
}

fn usage(raw: &str, why: impl fmt::Display) -> String {
    format!("invalid --secret '{raw}': {why}")
}

pub fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_target(raw: &str, t: &str) -> Result<Target, String> {
    if let Some(prefix) = t.strip_suffix('*') {
        if prefix.is_empty() || is_var_name(prefix) {
            return Ok(Target::Prefix(prefix.to_string()));
        }
        return Err(usage(
            raw,
            format_args!(
                "prefix '{prefix}' must be letters, digits and '_', not starting with a digit"
            ),
        ));
    }
    if is_var_name(t) {
        return Ok(Target::Var(t.to_string()));
    }
    Err(usage(
        raw,
        format_args!(
            "target '{t}' is not a variable name ([A-Za-z_][A-Za-z0-9_]*) or PREFIX*; \
             a secret whose name contains '=' needs an explicit target, e.g. VAR=name=with=equals"
        ),
    ))
}

/// RFC 6901: `~1` is `/`, `~0` is `~`, any other `~` escape is invalid.
fn parse_pointer(raw: &str, p: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    for part in p[1..].split('/') {
        let mut token = String::with_capacity(part.len());
        let mut chars = part.chars();
        while let Some(c) = chars.next() {
            if c == '~' {
                match chars.next() {
                    Some('0') => token.push('~'),
                    Some('1') => token.push('/'),
                    _ => {
                        return Err(usage(
                            raw,
                            format_args!("JSON Pointer '{p}' has '~' not followed by 0 or 1"),
                        ));
                    }
                }
            } else {
                token.push(c);
            }
        }
        tokens.push(token);
    }
    Ok(tokens)
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

pub fn parse(raw: &str) -> Result<Spec, String> {
    if raw.is_empty() {
        return Err(usage(raw, "empty"));
    }
    let (target, reference) = match raw.split_once('=') {
        Some((t, r)) => (parse_target(raw, t)?, r),
        None => (Target::Auto, raw),
    };

    // An ARN's own colons belong to the id: the REF fields start after its 7th field.
    let (id, rest) = match Arn::parse(reference) {
        Some(arn) => {
            if arn.service != "secretsmanager" || arn.kind != "secret" {
                return Err(usage(
                    raw,
                    "an ARN must look like arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME",
                ));
            }
            let name_and_rest = arn.rest;
            let (name, rest) = match name_and_rest.split_once(':') {
                Some((n, r)) => (n, Some(r)),
                None => (name_and_rest, None),
            };
            if name.is_empty() {
                return Err(usage(raw, "the ARN has no secret name"));
            }
            let id_len = reference.len() - name_and_rest.len() + name.len();
            (&reference[..id_len], rest)
        }
        None if reference.starts_with("arn:") => {
            return Err(usage(
                raw,
                "an ARN must look like arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME",
            ));
        }
        None => match reference.split_once(':') {
            Some((n, r)) => (n, Some(r)),
            None => (reference, None),
        },
    };
    if id.is_empty() {
        return Err(usage(raw, "no secret name or ARN"));
    }

    let fields: Vec<&str> = rest.map(|r| r.split(':').collect()).unwrap_or_default();
    if fields.len() > 3 {
        return Err(usage(
            raw,
            "too many ':' fields; the form is ID[:KEY[:STAGE[:VERSION_ID]]]",
        ));
    }
    let field = |i: usize| fields.get(i).copied().unwrap_or("");
    let key_text = non_empty(field(0));
    let key = match &key_text {
        Some(k) if k.starts_with('/') => Some(Key::Pointer(parse_pointer(raw, k)?)),
        Some(k) => Some(Key::Top(k.clone())),
        None => None,
    };
    Ok(Spec {
        raw: raw.to_string(),
        target,
        secret: SecretRef {
            id: id.to_string(),
            stage: non_empty(field(1)),
            version_id: non_empty(field(2)),
        },
        key,
        key_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf";

    fn top(k: &str) -> Option<Key> {
        Some(Key::Top(k.into()))
    }

    #[test]
    fn parses_valid_specs() {
        let arn_key_stage = format!("{ARN}:password:AWSPREVIOUS:");
        let var_arn_stage = format!("P={ARN}::AWSPENDING");
        let arn_pointer_version = format!("{ARN}:/replica/host::v9");
        let cn = "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:app/key-Zz0011";
        let cn_key = format!("{cn}:k");
        type Row<'a> = (
            &'a str,
            Target,
            &'a str,
            Option<Key>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let rows: Vec<Row> = vec![
            ("prod/db", Target::Auto, "prod/db", None, None, None),
            (
                "prod/db:password",
                Target::Auto,
                "prod/db",
                top("password"),
                None,
                None,
            ),
            (
                "prod/db::AWSPREVIOUS",
                Target::Auto,
                "prod/db",
                None,
                Some("AWSPREVIOUS"),
                None,
            ),
            (
                "prod/db:::v1",
                Target::Auto,
                "prod/db",
                None,
                None,
                Some("v1"),
            ),
            (
                "prod/db:k:AWSCURRENT:v1",
                Target::Auto,
                "prod/db",
                top("k"),
                Some("AWSCURRENT"),
                Some("v1"),
            ),
            ("prod/db:", Target::Auto, "prod/db", None, None, None),
            (
                "DB_PASS=prod/db:password",
                Target::Var("DB_PASS".into()),
                "prod/db",
                top("password"),
                None,
                None,
            ),
            (
                "DB_*=prod/db",
                Target::Prefix("DB_".into()),
                "prod/db",
                None,
                None,
                None,
            ),
            (
                "*=prod/db",
                Target::Prefix(String::new()),
                "prod/db",
                None,
                None,
                None,
            ),
            ("X=a=b", Target::Var("X".into()), "a=b", None, None, None),
            (ARN, Target::Auto, ARN, None, None, None),
            (
                &arn_key_stage,
                Target::Auto,
                ARN,
                top("password"),
                Some("AWSPREVIOUS"),
                None,
            ),
            (
                &var_arn_stage,
                Target::Var("P".into()),
                ARN,
                None,
                Some("AWSPENDING"),
                None,
            ),
            (
                &arn_pointer_version,
                Target::Auto,
                ARN,
                Some(Key::Pointer(vec!["replica".into(), "host".into()])),
                None,
                Some("v9"),
            ),
            (&cn_key, Target::Auto, cn, top("k"), None, None),
            ("prod/db:::", Target::Auto, "prod/db", None, None, None),
            (
                "db_*=prod/db::AWSPREVIOUS",
                Target::Prefix("db_".into()),
                "prod/db",
                None,
                Some("AWSPREVIOUS"),
                None,
            ),
            (
                "prod/db:/replica/host",
                Target::Auto,
                "prod/db",
                Some(Key::Pointer(vec!["replica".into(), "host".into()])),
                None,
                None,
            ),
            (
                "prod/db:/a~1b/c~0d",
                Target::Auto,
                "prod/db",
                Some(Key::Pointer(vec!["a/b".into(), "c~d".into()])),
                None,
                None,
            ),
            (
                "prod/db:/",
                Target::Auto,
                "prod/db",
                Some(Key::Pointer(vec![String::new()])),
                None,
                None,
            ),
        ];
        for (raw, target, id, key, stage, version) in rows {
            let s = parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(s.target, target, "{raw}");
            assert_eq!(s.secret.id, id, "{raw}");
            assert_eq!(s.key, key, "{raw}");
            assert_eq!(s.secret.stage.as_deref(), stage, "{raw}");
            assert_eq!(s.secret.version_id.as_deref(), version, "{raw}");
        }
    }

    #[test]
    fn rejects_invalid_specs() {
        let rows = [
            ("", "empty"),
            ("=prod/db", "not a variable name"),
            ("1X=prod/db", "not a variable name"),
            ("A-B=prod/db", "not a variable name"),
            ("prod/a=b", "needs an explicit target"),
            ("9*=prod/db", "prefix"),
            ("X=", "no secret name"),
            (":key", "no secret name"),
            ("prod/db:k:s:v:extra", "too many"),
            ("arn:aws:s3:::bucket", "an ARN must look like"),
            ("arn:aws:secretsmanager:r:1:secret:", "no secret name"),
            ("prod/db:/a~2", "'~' not followed"),
            ("prod/db:/a~", "'~' not followed"),
            ("X*Y=prod/db", "not a variable name"),
            ("**=prod/db", "prefix"),
            (
                "arn:aws:secretsmanager:r:1:notsecret:prod/db",
                "an ARN must look like",
            ),
            ("arn:aws:secretsmanager", "an ARN must look like"),
        ];
        for (raw, want) in rows {
            let err = parse(raw).expect_err(raw);
            assert!(err.contains(want), "{raw}: {err}");
        }
    }

    #[test]
    fn arn_region_and_current() {
        let s = parse(ARN).unwrap();
        assert_eq!(s.secret.arn_region(), Some("eu-west-1"));
        assert!(s.secret.is_current());
        assert_eq!(parse("prod/db").unwrap().secret.arn_region(), None);
        assert!(!parse("prod/db::AWSPREVIOUS").unwrap().secret.is_current());
        assert!(parse("prod/db::AWSCURRENT").unwrap().secret.is_current());
        assert!(!parse("prod/db:::v1").unwrap().secret.is_current());
    }
}
