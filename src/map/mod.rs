//! SPEC + fetched secret → named variables. Applies the naming rules and the refused-name policy;
//! pure over plain data, so every rule is table-tested without AWS.

pub mod compose;
pub mod db_url;
pub mod file;
pub mod flatten;
pub mod names;
pub mod template;

use crate::error::Error;
use crate::secret::SecretText;
use crate::source::{Fetched, Payload};
use crate::spec::{Key, Spec, Target};
use flatten::SelectError;
use std::collections::BTreeSet;
use std::fmt;

/// `--keep-case` and `--allow-name`: the naming policy the map stage applies.
#[derive(Debug, Clone, Default)]
pub struct MapOptions {
    pub keep_case: bool,
    pub allow_names: BTreeSet<String>,
}

impl MapOptions {
    /// From the flags; every `--allow-name` must be a variable name.
    pub fn new(keep_case: bool, allow_names: Vec<String>) -> Result<MapOptions, Error> {
        for name in &allow_names {
            if !crate::spec::is_var_name(name) {
                return Err(Error::Usage(format!(
                    "--allow-name '{name}' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)"
                )));
            }
        }
        Ok(MapOptions {
            keep_case,
            allow_names: allow_names.into_iter().collect(),
        })
    }
}

/// The flag that asked for a variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// `--secret SPEC`.
    Secret,
    /// `--file VAR=REF`: the variable holds the path of a memfd, never the value.
    File,
    /// `--from-env`: an inherited variable whose value was a reference, replaced in place.
    FromEnv,
    /// `--db-url VAR=REF`: a connection URL built from an RDS secret.
    DbUrl,
    /// `--template VAR=TEXT`: text with other variables' values substituted.
    Template,
}

impl Via {
    pub fn flag(self) -> &'static str {
        match self {
            Via::Secret => "--secret",
            Via::File => "--file",
            Via::FromEnv => "--from-env",
            Via::DbUrl => "--db-url",
            Via::Template => "--template",
        }
    }
}

/// Where a variable came from: everything `--dry-run` and error messages may say about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub via: Via,
    /// What the operator wrote: the SPEC, the `VAR=REF` of a `--file`, or `NAME=reference`.
    pub spec: String,
    pub secret_id: String,
    /// The key or JSON Pointer inside the secret, when the value is one member of it.
    pub key: Option<String>,
    pub version_id: Option<String>,
    pub stage: String,
    /// Named by the operator (`VAR=`), so the refused-name policy does not apply.
    pub explicit: bool,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} '{}'", self.via.flag(), self.spec)?;
        match (&self.key, self.via) {
            (Some(k), Via::Template) => write!(f, " (reads {k})")?,
            (Some(k), _) => write!(f, " (key '{k}')")?,
            (None, _) => {}
        }
        Ok(())
    }
}

/// One variable to deliver. `value` is the only secret part, and redacts itself in `Debug`.
#[derive(Debug)]
pub struct Var {
    pub name: String,
    pub value: SecretText,
    pub origin: Origin,
}

fn select_error(spec: &Spec, key: &Key, e: SelectError, via: Via) -> Error {
    let path = key.path();
    const CHECK: &str = "check the key names with --dry-run on the whole secret";
    let (i, why, todo) = match e {
        SelectError::Missing(i) => (i, "does not exist", CHECK),
        SelectError::NotContainer(i) => {
            (i, "is inside a value that is not an object or array", CHECK)
        }
        SelectError::Duplicate(i) => (
            i,
            "appears more than once in its object, so which value is meant is ambiguous",
            "remove the duplicate key from the secret",
        ),
    };
    let step = path.get(i).copied().unwrap_or("");
    Error::data(
        &spec.secret.id,
        format!(
            "key '{}' (from {} '{}')",
            spec.key_text.as_deref().unwrap_or(""),
            via.flag(),
            spec.raw
        ),
        format!("'{step}' {why}; {todo}"),
    )
}

/// The origin of a value `spec` selected from `fetched` (`key`: the member, if it is one).
pub fn origin_of(spec: &Spec, fetched: &Fetched, key: Option<String>, via: Via) -> Origin {
    Origin {
        via,
        spec: spec.raw.clone(),
        secret_id: spec.secret.id.clone(),
        key,
        version_id: fetched.version_id.clone(),
        stage: spec
            .secret
            .stage
            .clone()
            .or_else(|| (spec.secret.version_id.is_none()).then(|| "AWSCURRENT".to_string()))
            .or_else(|| fetched.stages.first().cloned())
            .unwrap_or_default(),
        explicit: matches!(spec.target, Target::Var(_)),
    }
}

/// Maps one SPEC over its fetched secret to variables, applying names and policy.
pub fn map_spec(spec: &Spec, fetched: &Fetched, opts: &MapOptions) -> Result<Vec<Var>, Error> {
    if spec.secret.is_ssm() {
        return map_parameters(spec, fetched, opts);
    }
    let id = &spec.secret.id;
    let text = match &fetched.payload {
        Payload::Text(t) => t,
        Payload::Tree(_) => {
            return Err(Error::Internal(format!(
                "a secret answered with many values for '{id}'"
            )));
        }
        Payload::Binary(_) => {
            return Err(Error::data(
                id,
                "binary secret",
                "SecretBinary cannot go into the environment; store it as SecretString \
                 (e.g. base64) or use file delivery once available",
            ));
        }
    };
    let origin = |key: Option<String>| origin_of(spec, fetched, key, Via::Secret);
    // The whole text, asked for by name, is taken as it is: no JSON rule applies to it.
    if let (Target::Var(name), None) = (&spec.target, &spec.key) {
        return Ok(vec![Var {
            name: name.clone(),
            value: SecretText::copy_of(text.expose()),
            origin: origin(None),
        }]);
    }
    let what = || format!("--secret '{}'", spec.raw);
    let parsed = json_of(id, what(), text.expose())?;
    let need_json = || {
        parsed.ok_or_else(|| {
            Error::data(
                id,
                format!("--secret '{}'", spec.raw),
                "the secret is not JSON, so it has no keys; drop the key, or use VAR=",
            )
        })
    };
    let selected = |key: &Key| -> Result<&serde_json::value::RawValue, Error> {
        flatten::select(need_json()?, &key.path())
            .map_err(|e| select_error(spec, key, e, Via::Secret))
    };

    // A selected object or array becomes JSON text: one with a repeated key inside is as
    // ambiguous as it is when flattened.
    let selected_value = |key: &Key| -> Result<SecretText, Error> {
        let raw = selected(key)?;
        flatten::check_duplicates(raw.get(), &pointer_of(key))
            .map_err(|e| Error::data(id, what(), e))?;
        flatten::value_text(raw).map_err(|e| Error::data(id, "value", e))
    };

    let mut vars = Vec::new();
    match (&spec.target, &spec.key) {
        (Target::Var(_), None) => {} // the whole text, returned above
        (Target::Var(name), Some(key)) => vars.push(Var {
            name: name.clone(),
            value: selected_value(key)?,
            origin: origin(spec.key_text.clone()),
        }),
        (Target::Prefix(prefix), key) => {
            let (raw, ptr) = match key {
                Some(k) => (selected(k)?, pointer_of(k)),
                None => (need_json()?, String::new()),
            };
            if !flatten::is_object(raw) {
                return Err(Error::data(
                    id,
                    format!("--secret '{}'", spec.raw),
                    "PREFIX*= flattens a JSON object, and this value is not one; use VAR= for a single value",
                ));
            }
            flatten_into(spec, raw, &ptr, prefix, opts, &origin, &mut vars)?;
        }
        (Target::Auto, Some(key)) => {
            let value = selected_value(key)?;
            let name = content_name(spec, "", key.leaf(), opts)?;
            vars.push(Var {
                name,
                value,
                origin: origin(spec.key_text.clone()),
            });
        }
        (Target::Auto, None) => match parsed {
            Some(raw) if flatten::is_object(raw) => {
                flatten_into(spec, raw, "", "", opts, &origin, &mut vars)?
            }
            _ => {
                let name = content_name(spec, "", names::last_segment(&fetched.name), opts)?;
                vars.push(Var {
                    name,
                    value: SecretText::copy_of(text.expose()),
                    origin: origin(None),
                });
            }
        },
    }
    if !matches!(spec.target, Target::Var(_)) {
        for v in &vars {
            check_refused(spec, v, opts)?;
        }
    }
    Ok(vars)
}

/// Parameters are text, never flattened (a JSON-looking value stays one variable): one parameter
/// is named after its last path segment; a path's parameters after the rest of their path below
/// it (`/` → `_`). `PREFIX*=` prefixes either; `VAR=` names a single parameter.
fn map_parameters(spec: &Spec, fetched: &Fetched, opts: &MapOptions) -> Result<Vec<Var>, Error> {
    let shown = spec.secret.to_string();
    let origin = |key: Option<String>| Origin {
        via: Via::Secret,
        spec: spec.raw.clone(),
        secret_id: shown.clone(),
        key,
        version_id: fetched.version_id.clone(),
        stage: match &spec.secret.store {
            crate::spec::Store::Parameter { selector: Some(s) } => s.clone(),
            _ => String::new(),
        },
        explicit: matches!(spec.target, Target::Var(_)),
    };
    let prefix = match &spec.target {
        Target::Prefix(p) => p.as_str(),
        _ => "",
    };
    let empty_name = || {
        Error::data(
            &shown,
            format!("--secret '{}'", spec.raw),
            "a parameter name gives an empty variable name; name it with VAR=",
        )
    };
    let mut vars = Vec::new();
    match (&fetched.payload, &spec.target) {
        (Payload::Text(t), Target::Var(name)) => vars.push(Var {
            name: name.clone(),
            value: SecretText::copy_of(t.expose()),
            origin: origin(None),
        }),
        (Payload::Text(t), _) => vars.push(Var {
            name: names::from_key(prefix, names::last_segment(&fetched.name), opts.keep_case)
                .ok_or_else(empty_name)?,
            value: SecretText::copy_of(t.expose()),
            origin: origin(None),
        }),
        (Payload::Tree(_), Target::Var(_)) => {
            return Err(Error::data(
                &shown,
                format!("--secret '{}'", spec.raw),
                "a path takes many parameters, so it cannot go into one variable; use PREFIX*= \
                 or name one parameter",
            ));
        }
        (Payload::Tree(params), _) => {
            let base = spec.secret.id.as_str();
            for p in params {
                let rest = p
                    .name
                    .strip_prefix(base)
                    .unwrap_or_else(|| p.name.trim_start_matches('/'));
                vars.push(Var {
                    name: names::from_key(prefix, rest, opts.keep_case).ok_or_else(empty_name)?,
                    value: SecretText::copy_of(p.value.expose()),
                    origin: origin(Some(p.name.clone())),
                });
            }
        }
        (Payload::Binary(_), _) => {
            return Err(Error::Internal(format!(
                "Parameter Store answered binary for '{shown}'"
            )));
        }
    }
    if !matches!(spec.target, Target::Var(_)) {
        for v in &vars {
            check_refused(spec, v, opts)?;
        }
    }
    Ok(vars)
}

/// The secret's JSON, `None` for plain text; 65 for text that starts like JSON but does not
/// parse (its position, never content) and for nesting past [`flatten::MAX_DEPTH`].
pub(crate) fn json_of<'a>(
    id: &str,
    what: String,
    text: &'a str,
) -> Result<Option<&'a serde_json::value::RawValue>, Error> {
    match flatten::parse(text) {
        flatten::Parsed::Json(raw) => Ok(Some(raw)),
        flatten::Parsed::Plain => Ok(None),
        flatten::Parsed::Malformed { line, column } => Err(Error::data(
            id,
            what,
            format!(
                "the secret starts like JSON but does not parse (line {line}, column {column}); \
                 fix the JSON (a trailing comma?), or take the whole text with VAR={id}"
            ),
        )),
        flatten::Parsed::TooDeep => Err(Error::data(
            id,
            what,
            format!(
                "the JSON nests deeper than {} levels, the most secret-exec maps; flatten the \
                 secret, or take the whole text with VAR={id}",
                flatten::MAX_DEPTH
            ),
        )),
    }
}

fn pointer_of(key: &Key) -> String {
    key.path()
        .iter()
        .map(|t| format!("/{}", flatten::escape(t)))
        .collect()
}

fn flatten_into(
    spec: &Spec,
    raw: &serde_json::value::RawValue,
    ptr: &str,
    prefix: &str,
    opts: &MapOptions,
    origin: &dyn Fn(Option<String>) -> Origin,
    vars: &mut Vec<Var>,
) -> Result<(), Error> {
    let leaves = flatten::flatten(raw, ptr)
        .map_err(|e| Error::data(&spec.secret.id, format!("--secret '{}'", spec.raw), e))?;
    for leaf in leaves {
        let name = content_name(spec, prefix, &leaf.key, opts)?;
        vars.push(Var {
            name,
            value: leaf.value,
            origin: origin(Some(leaf.pointer)),
        });
    }
    Ok(())
}

fn content_name(spec: &Spec, prefix: &str, key: &str, opts: &MapOptions) -> Result<String, Error> {
    names::from_key(prefix, key, opts.keep_case).ok_or_else(|| {
        Error::data(
            &spec.secret.id,
            format!("--secret '{}'", spec.raw),
            "a key gives an empty variable name; select it with VAR=ID:KEY instead",
        )
    })
}

fn check_refused(spec: &Spec, v: &Var, opts: &MapOptions) -> Result<(), Error> {
    match names::refusal(&v.name) {
        Some(rule) if !opts.allow_names.contains(&v.name) => Err(Error::data(
            &spec.secret.id,
            format!("refused variable name {} (from {})", v.name, v.origin),
            format!(
                "names matching {rule} could take over the command; if this is intended, \
                 pass --allow-name {} or name it explicitly with {}=...",
                v.name, v.name
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretBytes;
    use crate::spec;

    fn fetched(name: &str, text: &str) -> Fetched {
        Fetched {
            name: name.into(),
            version_id: Some("v1".into()),
            stages: vec!["AWSCURRENT".into()],
            payload: Payload::Text(SecretText::copy_of(text)),
        }
    }

    fn run(
        spec_text: &str,
        secret: &str,
        opts: &MapOptions,
    ) -> Result<Vec<(String, String)>, Error> {
        let s = spec::parse(spec_text).unwrap();
        let f = fetched(&s.secret.id, secret);
        Ok(map_spec(&s, &f, opts)?
            .into_iter()
            .map(|v| (v.name, v.value.expose().to_string()))
            .collect())
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    const RDS: &str = r#"{"username":"admin","password":"pw","port":3306,"replica":{"host":"r"}}"#;

    #[test]
    fn mapping_table() {
        let o = MapOptions::default();
        let rows: &[(&str, &str, &[(&str, &str)])] = &[
            (
                "prod/db",
                RDS,
                &[
                    ("USERNAME", "admin"),
                    ("PASSWORD", "pw"),
                    ("PORT", "3306"),
                    ("REPLICA_HOST", "r"),
                ],
            ),
            (
                "DB_*=prod/db",
                RDS,
                &[
                    ("DB_USERNAME", "admin"),
                    ("DB_PASSWORD", "pw"),
                    ("DB_PORT", "3306"),
                    ("DB_REPLICA_HOST", "r"),
                ],
            ),
            (
                "*=prod/db",
                RDS,
                &[
                    ("USERNAME", "admin"),
                    ("PASSWORD", "pw"),
                    ("PORT", "3306"),
                    ("REPLICA_HOST", "r"),
                ],
            ),
            ("R_*=prod/db:replica", RDS, &[("R_HOST", "r")]),
            ("prod/db:password", RDS, &[("PASSWORD", "pw")]),
            ("prod/db:/replica/host", RDS, &[("HOST", "r")]),
            ("prod/db:replica", RDS, &[("REPLICA", r#"{"host":"r"}"#)]),
            ("DSN=prod/db", RDS, &[("DSN", RDS)]),
            ("P=prod/db:port", RDS, &[("P", "3306")]),
            ("prod/api-token", "s3cr3t", &[("API_TOKEN", "s3cr3t")]),
            ("T=prod/api-token", "s3cr3t", &[("T", "s3cr3t")]),
            ("prod/list", "[1,2]", &[("LIST", "[1,2]")]),
            ("prod/n", "42", &[("N", "42")]),
            ("s", "\u{feff}{\"a\":\"1\"}", &[("A", "1")]),
            ("W=s", "{\"a\":1,}", &[("W", "{\"a\":1,}")]),
            ("W=s", "\u{feff}x", &[("W", "\u{feff}x")]),
            (
                "R=s:o",
                r#"{"o":{"a":[1,{"b":2}]}}"#,
                &[("R", r#"{"a":[1,{"b":2}]}"#)],
            ),
        ];
        for (spec_text, secret, want) in rows {
            assert_eq!(
                run(spec_text, secret, &o).unwrap(),
                pairs(want),
                "{spec_text}"
            );
        }
    }

    #[test]
    fn keep_case() {
        let o = MapOptions {
            keep_case: true,
            ..Default::default()
        };
        assert_eq!(
            run("s", r#"{"dbName":"x"}"#, &o).unwrap(),
            pairs(&[("dbName", "x")])
        );
    }

    #[test]
    fn refusals_and_data_errors() {
        let o = MapOptions::default();
        let deep = "[".repeat(300);
        let rows: &[(&str, &str, &str)] = &[
            (
                "s",
                r#"{"LD_PRELOAD":"/tmp/x.so"}"#,
                "refused variable name LD_PRELOAD",
            ),
            ("s", r#"{"path":"/tmp"}"#, "refused variable name PATH"),
            (
                "s",
                r#"{"ld_library_path":"/tmp"}"#,
                "LD_LIBRARY_PATH (from --secret 's' (key '/ld_library_path')) for 's': names \
                 matching LD_* could take over the command; if this is intended, pass \
                 --allow-name LD_LIBRARY_PATH or name it explicitly with LD_LIBRARY_PATH=...",
            ),
            (
                "s:node_options",
                r#"{"node_options":"--require x"}"#,
                "refused variable name NODE_OPTIONS",
            ),
            (
                "AWS_*=s",
                r#"{"secret_access_key":"x"}"#,
                "refused variable name AWS_SECRET_ACCESS_KEY",
            ),
            ("prod/PATH", "/evil", "refused variable name PATH"),
            ("s:missing", RDS, "'missing' does not exist"),
            ("s:/replica/nope", RDS, "'nope' does not exist"),
            ("s:/password/x", RDS, "not an object or array"),
            (
                "X=s:a",
                r#"{"a":"1","a":"2"}"#,
                "key 'a' (from --secret 'X=s:a') for 's': 'a' appears more than once",
            ),
            (
                "s:/r/h",
                r#"{"r":{"h":1,"h":2}}"#,
                "'h' appears more than once",
            ),
            (
                "s:missing",
                RDS,
                "key 'missing' (from --secret 's:missing') for 's': 'missing' does not exist",
            ),
            ("s:key", "plain text", "not JSON"),
            (
                "s",
                "{\"a\":\"1\",}",
                "--secret 's' for 's': the secret starts like JSON but does not parse (line 1, \
                 column 10)",
            ),
            ("s:a", " [1,2", "(line 1, column 5)"),
            ("P_*=s", "\u{feff}\n{\"a\":}", "(line 2, column 6)"),
            ("s", &deep, "nests deeper than 256 levels"),
            (
                "R=s:o",
                r#"{"o":{"pw":"A","pw":"B"}}"#,
                "key '/o/pw' appears more than once",
            ),
            ("R=s:o", r#"{"o":[{"x":1,"x":2}]}"#, "key '/o/0/x' appears"),
            ("X_*=s", "plain", "not JSON"),
            ("X_*=s:password", RDS, "not one"),
            ("s", r#"{"":"x"}"#, "empty variable name"),
            (
                "s",
                r#"{"a":"1","a":"2"}"#,
                "--secret 's' for 's': key '/a' appears more than once",
            ),
            (
                "P_*=s:r",
                r#"{"r":{"x":{"y":1},"x":{"z":1}}}"#,
                "key '/r/x' appears more than once",
            ),
        ];
        for (spec_text, secret, want) in rows {
            let err = run(spec_text, secret, &o).expect_err(spec_text);
            assert_eq!(err.exit_code(), 65, "{spec_text}");
            let msg = err.to_string();
            assert!(msg.contains(want), "{spec_text}: {msg}");
        }
    }

    #[test]
    fn allow_name_and_explicit_target_pass_the_policy() {
        let o = MapOptions {
            allow_names: ["PATH".to_string()].into(),
            ..Default::default()
        };
        assert_eq!(
            run("s", r#"{"path":"/opt"}"#, &o).unwrap(),
            pairs(&[("PATH", "/opt")])
        );
        let o = MapOptions::default();
        assert_eq!(
            run("LD_PRELOAD=s:x", r#"{"x":"y"}"#, &o).unwrap(),
            pairs(&[("LD_PRELOAD", "y")])
        );
    }

    #[test]
    fn binary_is_refused() {
        let s = spec::parse("bin").unwrap();
        let f = Fetched {
            payload: Payload::Binary(SecretBytes::from_owned(vec![0, 1])),
            ..fetched("bin", "")
        };
        let err = map_spec(&s, &f, &MapOptions::default()).unwrap_err();
        assert_eq!(err.exit_code(), 65);
        assert!(err.to_string().contains("SecretBinary"));
    }

    #[test]
    fn parameters_table() {
        let one = |name: &str, value: &str| Fetched {
            name: name.into(),
            version_id: Some("3".into()),
            stages: Vec::new(),
            payload: Payload::Text(SecretText::copy_of(value)),
        };
        let tree = |items: &[(&str, &str)]| Fetched {
            name: "/app/prod/".into(),
            version_id: None,
            stages: Vec::new(),
            payload: Payload::Tree(
                items
                    .iter()
                    .map(|(n, v)| crate::source::Named {
                        name: n.to_string(),
                        value: SecretText::copy_of(v),
                    })
                    .collect(),
            ),
        };
        let o = MapOptions::default();
        let run = |raw: &str, f: &Fetched| -> Result<Vec<(String, String)>, Error> {
            let s = spec::parse(raw).unwrap();
            Ok(map_spec(&s, f, &o)?
                .into_iter()
                .map(|v| (v.name, v.value.expose().to_string()))
                .collect())
        };
        let json = one("/app/prod/db-config", r#"{"user":"u"}"#);
        let db = one("/app/prod/db/password", "pw");
        let path = tree(&[
            ("/app/prod/db/password", "pw"),
            ("/app/prod/api.key", "k"),
            ("/app/prod/1st", "x"),
        ]);
        let rows: &[(&str, &Fetched, &[(&str, &str)])] = &[
            ("ssm:/app/prod/db/password", &db, &[("PASSWORD", "pw")]),
            ("ssm:/app/prod/db/password:3", &db, &[("PASSWORD", "pw")]),
            ("P=ssm:/app/prod/db/password", &db, &[("P", "pw")]),
            (
                "DB_*=ssm:/app/prod/db/password",
                &db,
                &[("DB_PASSWORD", "pw")],
            ),
            // Never flattened: a JSON-looking parameter is one variable.
            (
                "ssm:/app/prod/db-config",
                &json,
                &[("DB_CONFIG", r#"{"user":"u"}"#)],
            ),
            (
                "ssm:/app/prod/",
                &path,
                &[("DB_PASSWORD", "pw"), ("API_KEY", "k"), ("_1ST", "x")],
            ),
            (
                "APP_*=ssm:/app/prod/",
                &path,
                &[
                    ("APP_DB_PASSWORD", "pw"),
                    ("APP_API_KEY", "k"),
                    ("APP_1ST", "x"),
                ],
            ),
        ];
        for (raw, f, want) in rows {
            assert_eq!(run(raw, f).unwrap(), pairs(want), "{raw}");
        }
        let refused = tree(&[("/app/prod/ld_preload", "/x.so")]);
        for (raw, f, want) in [
            (
                "ssm:/app/prod/",
                &refused,
                "refused variable name LD_PRELOAD",
            ),
            (
                "ssm:/app/path",
                &one("/app/path", "/x"),
                "refused variable name PATH",
            ),
            ("X=ssm:/app/prod/", &path, "cannot go into one variable"),
        ] {
            let e = run(raw, f).unwrap_err();
            assert_eq!(e.exit_code(), 65, "{raw}");
            assert!(e.to_string().contains(want), "{raw}: {e}");
        }
        assert_eq!(
            run("PATH=ssm:/app/path", &one("/app/path", "/x")).unwrap(),
            pairs(&[("PATH", "/x")])
        );
    }

    #[test]
    fn sources_name_the_key_and_stage() {
        let s = spec::parse("prod/db::AWSPREVIOUS").unwrap();
        let f = fetched("prod/db", r#"{"a":{"b":1}}"#);
        let vars = map_spec(&s, &f, &MapOptions::default()).unwrap();
        assert_eq!(vars[0].origin.key.as_deref(), Some("/a/b"));
        assert_eq!(vars[0].origin.stage, "AWSPREVIOUS");
        assert_eq!(vars[0].origin.version_id.as_deref(), Some("v1"));
        assert!(!vars[0].origin.explicit);
        assert_eq!(format!("{:?}", vars[0]).matches("[redacted]").count(), 1);
    }
}
