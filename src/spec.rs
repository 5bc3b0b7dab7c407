//! The `--secret` SPEC grammar: `[TARGET=]REF`, REF being the ECS `valueFrom` form
//! `ID[:KEY[:STAGE[:VERSION_ID]]]`, or a Parameter Store ID (`ssm:NAME[:SELECTOR]`, `ssm:/PATH/`,
//! a parameter ARN) that takes no KEY. Parsing is pure and total: every input either yields a
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

/// Which store an id names. Parameter Store ids keep no `ssm:` prefix in `SecretRef::id`: the
/// id is the parameter name (or ARN) exactly as the API takes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Store {
    SecretsManager,
    /// One parameter; `selector` is a version number or label (SSM's `NAME:SELECTOR`).
    Parameter {
        selector: Option<String>,
    },
    /// Every parameter below a path; the id ends with `/`.
    ParameterPath,
}

/// One secret version to fetch. Two SPECs with equal `SecretRef`s share one fetch.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretRef {
    pub id: String,
    pub stage: Option<String>,
    pub version_id: Option<String>,
    pub store: Store,
}

impl SecretRef {
    /// A Secrets Manager reference.
    pub fn secret(
        id: impl Into<String>,
        stage: Option<String>,
        version_id: Option<String>,
    ) -> Self {
        SecretRef {
            id: id.into(),
            stage,
            version_id,
            store: Store::SecretsManager,
        }
    }

    /// The region named in a full ARN, if the id is one.
    pub fn arn_region(&self) -> Option<&str> {
        crate::arn::region_of(&self.id)
    }

    /// Plain AWSCURRENT reads are the ones `BatchGetSecretValue` can serve.
    pub fn is_current(&self) -> bool {
        self.store == Store::SecretsManager
            && self.version_id.is_none()
            && self.stage.as_deref().is_none_or(|s| s == "AWSCURRENT")
    }

    /// Whether Parameter Store serves it (one parameter or a path).
    pub fn is_ssm(&self) -> bool {
        self.store != Store::SecretsManager
    }

    /// Whether it is a Parameter Store path (`ssm:/PATH/`), which yields many values.
    pub fn is_ssm_path(&self) -> bool {
        self.store == Store::ParameterPath
    }

    /// The parameter name as `GetParameters` takes it: `NAME[:SELECTOR]` (or the ARN's).
    pub fn ssm_request_name(&self) -> String {
        match &self.store {
            Store::Parameter { selector: Some(s) } => format!("{}:{s}", self.id),
            _ => self.id.clone(),
        }
    }

    /// The parameter's name without its ARN: `arn:…:parameter/app/db` is `/app/db`.
    pub fn ssm_name(&self) -> String {
        ssm_name_of(&self.id)
    }
}

/// A parameter name from a name or a parameter ARN. Hierarchical names start with `/`, and
/// their ARN drops that `/` (`parameter/app/db`); a flat name's ARN is `parameter/db`.
pub fn ssm_name_of(id: &str) -> String {
    match id
        .strip_prefix("arn:")
        .and_then(|_| id.split_once(":parameter/"))
    {
        Some((_, tail)) if tail.contains('/') => format!("/{tail}"),
        Some((_, tail)) => tail.to_string(),
        None => id.to_string(),
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ssm() && !self.id.starts_with("arn:") {
            f.write_str("ssm:")?;
        }
        f.write_str(&self.id)?;
        if let Store::Parameter { selector: Some(s) } = &self.store {
            write!(f, ":{s}")?;
        }
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

/// SSM's own rule for parameter names: letters, digits and `_.-/`, at most 2048 characters; a
/// name with a `/` in it is a hierarchy and starts with one.
fn check_parameter_name(raw: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(usage(raw, "no parameter name after 'ssm:'"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_.-/".contains(*c)))
    {
        return Err(usage(
            raw,
            format_args!(
                "'{c}' cannot be in a parameter name (letters, digits and _.-/ only); \
                 Parameter Store IDs take no KEY: the form is ssm:NAME[:SELECTOR] or ssm:/PATH/"
            ),
        ));
    }
    if name.contains('/') && !name.starts_with('/') {
        return Err(usage(
            raw,
            "a parameter name with '/' in it is a path and starts with '/'",
        ));
    }
    if name.len() > 2048 {
        return Err(usage(raw, "a parameter name is at most 2048 characters"));
    }
    Ok(())
}

/// The part after `ssm:`, or a whole parameter ARN: `NAME[:SELECTOR]`, or a path ending in `/`.
fn parse_ssm(raw: &str, id: &str) -> Result<SecretRef, String> {
    let (name, selector) = if id.starts_with("arn:") {
        // arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME[:SELECTOR]
        let resource = id.splitn(6, ':').nth(5).unwrap_or("");
        let Some(tail) = resource.strip_prefix("parameter/") else {
            return Err(usage(
                raw,
                "a parameter ARN must look like arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME",
            ));
        };
        let (tail, selector) = match tail.split_once(':') {
            Some((t, s)) => (t, Some(s)),
            None => (tail, None),
        };
        let name_end = id.len() - resource.len() + "parameter/".len() + tail.len();
        let name = &id[..name_end];
        check_parameter_name(raw, &ssm_name_of(name))?;
        (name, selector)
    } else {
        let (name, selector) = match id.split_once(':') {
            Some((n, s)) => (n, Some(s)),
            None => (id, None),
        };
        check_parameter_name(raw, name)?;
        (name, selector)
    };
    let selector = selector.filter(|s| !s.is_empty());
    if let Some(s) = selector
        && (s.contains(':')
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)))
    {
        return Err(usage(
            raw,
            format_args!(
                "'{s}' is not a version number or label; Parameter Store IDs take no KEY: \
                 the form is ssm:NAME[:SELECTOR] or ssm:/PATH/"
            ),
        ));
    }
    if name.ends_with('/') {
        if selector.is_some() || name.starts_with("arn:") {
            return Err(usage(
                raw,
                "a path (ssm:/PATH/) takes every parameter below it, so it takes no selector",
            ));
        }
        return Ok(SecretRef {
            id: name.to_string(),
            stage: None,
            version_id: None,
            store: Store::ParameterPath,
        });
    }
    Ok(SecretRef {
        id: name.to_string(),
        stage: None,
        version_id: None,
        store: Store::Parameter {
            selector: selector.map(str::to_string),
        },
    })
}

fn is_parameter_arn(reference: &str) -> bool {
    reference.starts_with("arn:") && reference.split(':').nth(2) == Some("ssm")
}

/// The variable that carries SPECs where a launcher's arguments are fixed (a Lambda
/// `AWS_LAMBDA_EXEC_WRAPPER` script, an image's ENTRYPOINT): SPECs separated by whitespace,
/// each exactly as `--secret` takes it, read after the `--secret`s. Read outside Lambda too.
pub const ENV_VAR: &str = "SECRET_EXEC_SECRETS";

/// The SPECs of [`ENV_VAR`]'s value (`None`, empty or blank: none). A SPEC that does not parse,
/// or a value that is not UTF-8, is a usage message naming the variable: fail closed.
pub fn parse_env_list(value: Option<&std::ffi::OsStr>) -> Result<Vec<Spec>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Some(text) = value.to_str() else {
        return Err(format!(
            "{ENV_VAR} is not UTF-8; it holds SPECs separated by spaces"
        ));
    };
    text.split_whitespace()
        .map(|raw| {
            parse(raw).map_err(|e| {
                let why = e.split_once("': ").map_or(e.as_str(), |(_, why)| why);
                format!("invalid SPEC '{raw}' in {ENV_VAR}: {why}")
            })
        })
        .collect()
}

/// Parses the `VAR=REF` of a flag that delivers one value (`--file`, `--db-url`): a variable
/// name (no `PREFIX*=`), `=`, then a REF as `--secret` takes it, but no Parameter Store path.
/// `why` words the flag's three refusals: no `=`, not a variable name, a path.
pub fn parse_one(flag: &str, raw: &str, why: [&str; 3]) -> Result<(String, Spec), String> {
    let usage = |why: &str| format!("invalid {flag} '{raw}': {why}");
    let Some((var, reference)) = raw.split_once('=') else {
        return Err(usage(why[0]));
    };
    if !is_var_name(var) {
        return Err(usage(why[1]));
    }
    if reference.starts_with("ssm:") && reference.ends_with('/') {
        return Err(usage(why[2]));
    }
    // The SPEC parser words its messages for --secret; the reason after it is what matters.
    let spec =
        parse(raw).map_err(|e| e.replacen("invalid --secret", &format!("invalid {flag}"), 1))?;
    debug_assert_eq!(spec.target, Target::Var(var.to_string()));
    Ok((var.to_string(), spec))
}

pub fn parse(raw: &str) -> Result<Spec, String> {
    if raw.is_empty() {
        return Err(usage(raw, "empty"));
    }
    let (target, reference) = match raw.split_once('=') {
        Some((t, r)) => (parse_target(raw, t)?, r),
        None => (Target::Auto, raw),
    };

    let ssm = match reference.strip_prefix("ssm:") {
        Some(id) => Some(parse_ssm(raw, id)?),
        None if is_parameter_arn(reference) => Some(parse_ssm(raw, reference)?),
        None => None,
    };
    if let Some(secret) = ssm {
        return Ok(Spec {
            raw: raw.to_string(),
            target,
            secret,
            key: None,
            key_text: None,
        });
    }

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
        secret: SecretRef::secret(id, non_empty(field(1)), non_empty(field(2))),
        key,
        key_text,
    })
}

/// Test helper: each SPEC parsed, panicking on a bad one.
#[cfg(test)]
pub(crate) fn parse_all(raw: &[&str]) -> Vec<Spec> {
    raw.iter().map(|r| parse(r).unwrap()).collect()
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
    fn parameter_store_ids() {
        let arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/app/db";
        let arn_sel = format!("V={arn}:2");
        let rows: Vec<(&str, Target, &str, Store, &str)> = vec![
            (
                "ssm:/app/prod/db/password",
                Target::Auto,
                "/app/prod/db/password",
                Store::Parameter { selector: None },
                "ssm:/app/prod/db/password",
            ),
            (
                "ssm:/app/db:3",
                Target::Auto,
                "/app/db",
                Store::Parameter {
                    selector: Some("3".into()),
                },
                "ssm:/app/db:3",
            ),
            (
                "P=ssm:/app/db:prod-label",
                Target::Var("P".into()),
                "/app/db",
                Store::Parameter {
                    selector: Some("prod-label".into()),
                },
                "ssm:/app/db:prod-label",
            ),
            (
                "ssm:flat.name_1",
                Target::Auto,
                "flat.name_1",
                Store::Parameter { selector: None },
                "ssm:flat.name_1",
            ),
            (
                "ssm:/app/db:",
                Target::Auto,
                "/app/db",
                Store::Parameter { selector: None },
                "ssm:/app/db",
            ),
            (
                "APP_*=ssm:/app/prod/",
                Target::Prefix("APP_".into()),
                "/app/prod/",
                Store::ParameterPath,
                "ssm:/app/prod/",
            ),
            (
                arn,
                Target::Auto,
                arn,
                Store::Parameter { selector: None },
                arn,
            ),
            (
                &arn_sel,
                Target::Var("V".into()),
                arn,
                Store::Parameter {
                    selector: Some("2".into()),
                },
                &arn_sel[2..],
            ),
        ];
        for (raw, target, id, store, shown) in rows {
            let s = parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(s.target, target, "{raw}");
            assert_eq!(s.secret.id, id, "{raw}");
            assert_eq!(s.secret.store, store, "{raw}");
            assert_eq!(s.secret.to_string(), shown, "{raw}");
            assert_eq!(s.key, None, "{raw}");
            assert!(s.secret.is_ssm() && !s.secret.is_current(), "{raw}");
        }
        assert!(parse("ssm:/app/prod/").unwrap().secret.is_ssm_path());
        assert!(!parse("ssm:/app/db").unwrap().secret.is_ssm_path());
        assert!(!parse("prod/db").unwrap().secret.is_ssm());
        let s = parse(arn).unwrap().secret;
        assert_eq!(
            (s.arn_region(), s.ssm_name().as_str()),
            (Some("eu-west-1"), "/app/db")
        );
        assert_eq!(parse("ssm:/a:3").unwrap().secret.ssm_request_name(), "/a:3");
        assert_eq!(ssm_name_of("arn:aws:ssm:r:1:parameter/flat"), "flat");

        for (raw, want) in [
            ("ssm:", "no parameter name"),
            ("ssm:/a/b:key:AWSPREVIOUS", "take no KEY"),
            ("ssm:/a b", "cannot be in a parameter name"),
            ("ssm:app/db", "starts with '/'"),
            ("ssm:/app/prod/:3", "takes no selector"),
            ("ssm:/a:x/y", "not a version number or label"),
            ("arn:aws:ssm:r:1:document/x", "parameter ARN must look like"),
        ] {
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

    #[test]
    fn env_list() {
        use std::ffi::OsStr;
        let list = |v: &str| parse_env_list(Some(OsStr::new(v)));
        assert_eq!(parse_env_list(None).unwrap(), vec![]);
        assert_eq!(list("").unwrap(), vec![]);
        assert_eq!(list(" \t\n ").unwrap(), vec![]);
        let got = list(&format!(
            " prod/db\tDB_*=app/x\n  P={ARN}:password  ssm:/a/ "
        ))
        .unwrap();
        let raws: Vec<&str> = got.iter().map(|s| s.raw.as_str()).collect();
        assert_eq!(
            raws,
            [
                "prod/db",
                "DB_*=app/x",
                &format!("P={ARN}:password"),
                "ssm:/a/"
            ]
        );
        assert_eq!(got[1].target, Target::Prefix("DB_".into()));
        assert_eq!(got[2].key, top("password"));
        // Each SPEC is exactly what --secret would make of it.
        for s in &got {
            assert_eq!(*s, parse(&s.raw).unwrap());
        }
        for bad in ["ok 1BAD=x", "a:k:s:v:extra", "=x", "arn:aws:s3:::b"] {
            let e = list(bad).expect_err(bad);
            assert!(e.contains("in SECRET_EXEC_SECRETS: "), "{e}");
            assert!(!e.contains("--secret"), "{e}");
        }
        assert!(
            list("ok 1BAD=x")
                .unwrap_err()
                .starts_with("invalid SPEC '1BAD=x'")
        );
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let e = parse_env_list(Some(OsStr::from_bytes(b"a\xff"))).unwrap_err();
            assert!(e.contains("not UTF-8"), "{e}");
        }
    }
}
