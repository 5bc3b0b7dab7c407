//! `--db-url VAR=REF`: the connection URL built from an RDS-shaped secret (`engine`, `host`,
//! `port`, `username`, `password`, `dbname`), and the RFC 3986 percent-encoder that both it and
//! `--template`'s `|url` filter use. Pure; the URL is built in one buffer sized beforehand, so
//! the only copy of the password in it is wiped with the `SecretText`.

use super::{Via, flatten, select_error};
use crate::error::Error;
use crate::secret::SecretText;
use crate::source::{Fetched, Payload};
use crate::spec::{self, Spec};

/// One `--db-url VAR=REF`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbUrlSpec {
    pub var: String,
    /// The REF parsed as a `VAR=REF` SPEC (`target` is `Target::Var(var)`).
    pub spec: Spec,
}

/// Parses `--db-url VAR=REF`: a variable name, `=`, then a REF as `--secret` takes it (a KEY
/// selects an object inside the secret). A Parameter Store path (many values) is refused.
pub fn parse(raw: &str) -> Result<DbUrlSpec, Error> {
    let why = [
        "the form is VAR=REF, e.g. --db-url DATABASE_URL=prod/db",
        "VAR is not a variable name ([A-Za-z_][A-Za-z0-9_]*)",
        "a Parameter Store path names many parameters; name the one holding the JSON",
    ];
    let (var, spec) = spec::parse_one("--db-url", raw, why).map_err(Error::Usage)?;
    Ok(DbUrlSpec { var, spec })
}

/// The URL scheme for an RDS secret's `engine`, or why there is none. Redshift speaks the
/// PostgreSQL protocol and libpq-based clients take its URL as `postgresql://`; SQL Server and
/// Oracle have no URL form their drivers agree on, and DocumentDB (`mongo`) needs `tls` and
/// `replicaSet` options the secret does not hold: those are built with `--template`.
pub fn scheme(engine: &str) -> Result<&'static str, &'static str> {
    match engine.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" | "aurora-postgresql" | "redshift" => Ok("postgresql"),
        "mysql" | "aurora-mysql" | "mariadb" => Ok("mysql"),
        "sqlserver" | "oracle" | "mongo" | "mongodb" | "docdb" => {
            Err("has no single URL form its drivers agree on; build the string with --template")
        }
        _ => Err(
            "is not one secret-exec builds a URL for (postgres, aurora-postgresql, redshift, mysql, \
             aurora-mysql, mariadb); build the string with --template",
        ),
    }
}

/// RFC 3986 `unreserved`: the only bytes a component keeps as they are.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The length of `s` once [`encode`]d.
pub fn encoded_len(s: &str) -> usize {
    s.bytes().map(|b| if unreserved(b) { 1 } else { 3 }).sum()
}

/// Appends `s` percent-encoded (UTF-8 bytes, upper-case hex): everything but `unreserved`, so
/// the result is safe in userinfo, a path segment, a query name or value and a fragment.
pub fn encode(s: &str, out: &mut SecretText) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// The fields read, in the order a message lists missing ones.
const FIELDS: [&str; 6] = ["engine", "host", "port", "username", "password", "dbname"];

/// Builds the URL `spec` names in `fetched`: `SCHEME://USER:PASSWORD@HOST:PORT/DBNAME`, user,
/// password and database name percent-encoded, an IPv6 host in brackets.
pub fn build(spec: &Spec, fetched: &Fetched) -> Result<SecretText, Error> {
    let id = spec.secret.to_string();
    let what = || format!("--db-url '{}'", spec.raw);
    let data = |why: String| Error::data(&id, what(), why);
    let text = match &fetched.payload {
        Payload::Text(t) => t,
        Payload::Binary(_) => return Err(data("a SecretBinary is not an RDS JSON secret".into())),
        Payload::Tree(_) => {
            return Err(Error::Internal(format!(
                "a path answered for --db-url '{}'",
                spec.raw
            )));
        }
    };
    let parsed = super::json_of(&id, what(), text.expose())?.ok_or_else(|| {
        data(
            "the secret is not JSON; --db-url reads an RDS secret's engine, host, port, \
             username, password and dbname"
                .into(),
        )
    })?;
    let obj = match &spec.key {
        Some(key) => flatten::select(parsed, &key.path())
            .map_err(|e| select_error(spec, key, e, Via::DbUrl))?,
        None => parsed,
    };
    if !flatten::is_object(obj) {
        return Err(data("the value is not a JSON object".into()));
    }
    let mut values: Vec<Option<SecretText>> = Vec::with_capacity(FIELDS.len());
    for f in FIELDS {
        let v = match flatten::select(obj, &[f]) {
            Ok(raw) => {
                let t = flatten::value_text(raw).map_err(data)?;
                (!t.is_empty()).then_some(t)
            }
            Err(flatten::SelectError::Duplicate(_)) => {
                return Err(data(format!("key '{f}' appears more than once")));
            }
            Err(_) => None,
        };
        values.push(v);
    }
    let missing: Vec<&str> = FIELDS
        .iter()
        .zip(&values)
        .filter(|(_, v)| v.is_none())
        .map(|(f, _)| *f)
        .collect();
    if !missing.is_empty() {
        return Err(data(format!(
            "the secret has no {} (an RDS-managed master-user secret holds only username and \
             password); build the URL with --template from the values you have",
            missing.join(", ")
        )));
    }
    let [engine, host, port, user, password, dbname] = values
        .into_iter()
        .map(|v| v.unwrap_or_else(|| SecretText::with_capacity(0)))
        .collect::<Vec<_>>()
        .try_into()
        .map_err(|_| Error::Internal("db-url fields".into()))?;
    let scheme = scheme(engine.expose().trim()).map_err(|why| {
        // The engine names a product, not a credential: it is shown, control characters escaped.
        data(format!(
            "engine '{}' {why}",
            crate::sanitize::escaped(engine.expose())
        ))
    })?;
    let host = host.expose();
    let bracket = host.contains(':');
    if bracket {
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(data("host is neither a host name nor an IP address".into()));
        }
    } else if !host.bytes().all(unreserved) {
        return Err(data("host is neither a host name nor an IP address".into()));
    }
    let port = port.expose().trim();
    if !port.bytes().all(|b| b.is_ascii_digit()) || !matches!(port.parse::<u16>(), Ok(p) if p > 0) {
        return Err(data("port is not a number from 1 to 65535".into()));
    }
    let (user, password, dbname) = (user.expose(), password.expose(), dbname.expose());
    let len = scheme.len()
        + "://".len()
        + encoded_len(user)
        + 1
        + encoded_len(password)
        + 1
        + host.len()
        + if bracket { 2 } else { 0 }
        + 1
        + port.len()
        + 1
        + encoded_len(dbname);
    let mut url = SecretText::with_capacity(len);
    url.push_str(scheme);
    url.push_str("://");
    encode(user, &mut url);
    url.push(':');
    encode(password, &mut url);
    url.push('@');
    if bracket {
        url.push('[');
    }
    url.push_str(host);
    if bracket {
        url.push(']');
    }
    url.push(':');
    url.push_str(port);
    url.push('/');
    encode(dbname, &mut url);
    debug_assert_eq!(url.len(), len);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &str) -> String {
        let mut t = SecretText::with_capacity(encoded_len(s));
        encode(s, &mut t);
        assert_eq!(t.len(), encoded_len(s), "{s}");
        t.expose().to_string()
    }

    /// RFC 3986 §2.3: unreserved characters stay; §2.1: everything else is %XX with upper-case
    /// hex, per UTF-8 byte; gen-delims and sub-delims are encoded, so none can end a component.
    #[test]
    fn encoder_table() {
        let rows: &[(&str, &str)] = &[
            ("", ""),
            ("abcXYZ019", "abcXYZ019"),
            ("-._~", "-._~"),
            (":/?#[]@", "%3A%2F%3F%23%5B%5D%40"),
            ("!$&'()*+,;=", "%21%24%26%27%28%29%2A%2B%2C%3B%3D"),
            ("%", "%25"),
            ("%41", "%2541"),
            (" ", "%20"),
            ("\"<>\\^`{|}", "%22%3C%3E%5C%5E%60%7B%7C%7D"),
            ("é", "%C3%A9"),
            ("日本", "%E6%97%A5%E6%9C%AC"),
            ("🔑", "%F0%9F%94%91"),
            ("\u{7f}\n\t", "%7F%0A%09"),
            ("p@ss:w/rd", "p%40ss%3Aw%2Frd"),
        ];
        for (raw, want) in rows {
            assert_eq!(enc(raw), *want, "{raw:?}");
        }
        // Every ASCII byte: unreserved ones alone are left as they are.
        for b in 0u8..128 {
            let s = char::from(b).to_string();
            let e = enc(&s);
            if unreserved(b) {
                assert_eq!(e, s);
            } else {
                assert_eq!(e, format!("%{b:02X}"));
            }
        }
    }

    #[test]
    fn engine_table() {
        for (engine, want) in [
            ("postgres", "postgresql"),
            ("aurora-postgresql", "postgresql"),
            ("redshift", "postgresql"),
            ("POSTGRES", "postgresql"),
            ("mysql", "mysql"),
            ("aurora-mysql", "mysql"),
            ("mariadb", "mysql"),
        ] {
            assert_eq!(scheme(engine), Ok(want), "{engine}");
        }
        // Refused, each with its reason: no agreed URL form, or not an engine we know.
        for (engine, why) in [
            ("sqlserver", "no single URL form"),
            ("oracle", "no single URL form"),
            ("mongo", "no single URL form"),
            ("db2", "is not one secret-exec builds"),
            ("", "is not one secret-exec builds"),
        ] {
            assert!(scheme(engine).is_err_and(|e| e.contains(why)), "{engine}");
        }
    }

    fn fetched(text: &str) -> Fetched {
        Fetched {
            name: "prod/db".into(),
            version_id: Some("v1".into()),
            stages: vec!["AWSCURRENT".into()],
            payload: Payload::Text(SecretText::copy_of(text)),
        }
    }

    fn url(raw: &str, secret: &str) -> Result<String, Error> {
        let s = parse(raw)?;
        build(&s.spec, &fetched(secret)).map(|u| u.expose().to_string())
    }

    fn rds(engine: &str, host: &str, port: &str, password: &str) -> String {
        serde_json::json!({
            "engine": engine, "host": host, "port": serde_json::from_str::<serde_json::Value>(port).unwrap(),
            "username": "app user", "password": password, "dbname": "my/db",
        })
        .to_string()
    }

    #[test]
    fn url_table() {
        let rows: &[(String, &str)] = &[
            (
                rds("postgres", "db.example.com", "5432", "p@ss:w/rd?#%"),
                "postgresql://app%20user:p%40ss%3Aw%2Frd%3F%23%25@db.example.com:5432/my%2Fdb",
            ),
            (
                rds("aurora-mysql", "10.0.0.1", "\"3306\"", "x"),
                "mysql://app%20user:x@10.0.0.1:3306/my%2Fdb",
            ),
            (
                rds("mariadb", "::1", "3306", "é"),
                "mysql://app%20user:%C3%A9@[::1]:3306/my%2Fdb",
            ),
            (
                rds("redshift", "r.example.com", "5439", "a"),
                "postgresql://app%20user:a@r.example.com:5439/my%2Fdb",
            ),
        ];
        for (secret, want) in rows {
            assert_eq!(url("U=prod/db", secret).unwrap(), *want, "{secret}");
        }
        let nested = format!(r#"{{"primary":{}}}"#, rds("postgres", "h", "1", "p"));
        assert_eq!(
            url("U=prod/db:primary", &nested).unwrap(),
            "postgresql://app%20user:p@h:1/my%2Fdb"
        );
    }

    #[test]
    fn refusals() {
        let refused = |raw: &str, secret: &str, code: i32, want: &str| {
            let e = url(raw, secret).expect_err(raw);
            assert_eq!(e.exit_code(), code, "{raw}: {e}");
            let msg = e.to_string();
            assert!(msg.contains(want), "{raw}: {msg}");
            assert!(!msg.contains("hunter2"), "{msg}");
        };
        // RDS-shaped secrets (password hunter2) `U=prod/db` builds no URL from (65).
        for (engine, host, port, want) in [
            (
                "sqlserver",
                "h",
                "1433",
                "engine 'sqlserver' has no single URL form",
            ),
            (
                "db2",
                "h",
                "1",
                "engine 'db2' is not one secret-exec builds",
            ),
            ("postgres", "h", "0", "port is not a number"),
            ("postgres", "h", "\"54x\"", "port is not a number"),
            ("postgres", "h/x@evil", "1", "host is neither"),
            ("postgres", "fe80::zz", "1", "host is neither"),
        ] {
            refused("U=prod/db", &rds(engine, host, port, "hunter2"), 65, want);
        }
        // Other secrets it builds no URL from (65).
        for (secret, want) in [
            (
                r#"{"username":"u","password":"hunter2"}"#,
                "has no engine, host, port, dbname (an RDS-managed master-user secret",
            ),
            ("hunter2", "not JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"password":"hunter2","password":"x"}"#, "more than once"),
        ] {
            refused("U=prod/db", secret, 65, want);
        }
        let secret = rds("postgres", "h", "1", "hunter2");
        refused("U=prod/db:nope", &secret, 65, "'nope' does not exist");
        // Usage errors (64), whatever the secret.
        for (raw, want) in [
            ("prod/db", "the form is VAR=REF"),
            ("1X=prod/db", "not a variable name"),
            ("U=ssm:/app/", "Parameter Store path"),
            ("U=", "invalid --db-url"),
        ] {
            refused(raw, "", 64, want);
        }
    }
}
