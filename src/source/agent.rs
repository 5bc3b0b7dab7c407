//! The AWS Secrets Manager Agent as the source (`--agent`): every Secrets Manager read becomes
//! `GET /secretsmanager/get?secretId=…` to the node-local agent over plain loopback HTTP, with
//! the agent's SSRF token in `X-Aws-Parameters-Secrets-Token`. No AWS credentials, region or TLS
//! are involved: the agent holds those. The HTTP exchange is `aws::loopback`'s single bounded
//! HTTP/1.1 GET on a fresh connection, so a misbehaving listener can cost at most one bounded
//! read per attempt. The token is secret: it is only ever written to the socket.

use super::aws::loopback::{self, HttpError, Response};
use super::aws::url;
use super::secrets_manager::{Asked, coded};
use super::{Class, Failure, Fetched, Outcome, Payload};
use crate::error::Error;
use crate::log::{self, Event};
use crate::plan::{Call, RegionCalls};
use crate::sanitize::one_line;
use crate::secret::{SecretBytes, SecretText};
use crate::spec::SecretRef;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

const SERVICE: &str = "Secrets Manager Agent";
/// A secret is at most 64 KiB; as base64 in JSON with its metadata it stays far below this.
const MAX_RESPONSE: usize = 1 << 20;
/// A token file holds one token; anything larger is not one.
const MAX_TOKEN_FILE: usize = 4096;
/// Where the agent answers, in the order it reads them itself.
const TOKEN_VARS: [&str; 3] = [
    "AWS_TOKEN",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

/// `http://HOST[:PORT]`: where the agent listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentUrl {
    /// As written in a URL (an IPv6 address keeps its brackets), for the Host header.
    pub host: String,
    pub port: u16,
}

impl AgentUrl {
    /// The host to connect to (an IPv6 address without its brackets).
    fn connect_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }
}

impl fmt::Display for AgentUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}:{}", self.host, self.port)
    }
}

/// Parses `http://HOST[:PORT][/]`. Only plain HTTP: the agent listens on loopback and serves no
/// TLS, and a path or query would be silently dropped, so both are refused.
pub fn parse_url(text: &str) -> Result<AgentUrl, String> {
    let scheme_only =
        "the agent URL must be http://HOST[:PORT] (the agent serves plain HTTP on loopback)";
    if !text.starts_with("http://") {
        return Err(scheme_only.into());
    }
    let uri = url::parse(text).ok_or(scheme_only)?;
    let authority = url::authority(&uri).ok_or(scheme_only)?;
    if authority.user_info || url::has_path_or_query(&uri, text) {
        return Err("the agent URL takes no path, query or user; give http://HOST[:PORT]".into());
    }
    let port = match authority.port_text {
        None => 80,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("'{p}' is not a port number"))?,
    };
    let host = authority.written;
    let ok_host = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    };
    if !ok_host {
        return Err(format!("'{host}' is not a host name or address"));
    }
    Ok(AgentUrl {
        host: host.to_string(),
        port,
    })
}

/// The agent's SSRF token: a value, or a file to read it from (`file://PATH`, as the agent does).
pub enum Token {
    Value {
        var: &'static str,
        value: SecretText,
    },
    File {
        var: &'static str,
        path: PathBuf,
    },
}

impl Clone for Token {
    fn clone(&self) -> Self {
        match self {
            Token::Value { var, value } => Token::Value {
                var,
                value: SecretText::copy_of(value.expose()),
            },
            Token::File { var, path } => Token::File {
                var,
                path: path.clone(),
            },
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Value { var, .. } => write!(f, "Token({var}: [redacted])"),
            Token::File { var, path } => write!(f, "Token({var}: file {})", path.display()),
        }
    }
}

/// The first non-empty token variable, in the agent's own order.
pub fn token_from(env: &dyn Fn(&str) -> Option<String>) -> Option<Token> {
    TOKEN_VARS.iter().find_map(|var| {
        let value = env(var).filter(|v| !v.is_empty())?;
        Some(match value.strip_prefix("file://") {
            Some(path) => Token::File {
                var,
                path: PathBuf::from(path),
            },
            None => Token::Value {
                var,
                value: SecretText::from_owned(value),
            },
        })
    })
}

#[derive(Clone, Debug)]
pub struct AgentOptions {
    pub url: AgentUrl,
    /// `None` only when nothing is fetched (`--print-iam-policy`); `Config` refuses it otherwise.
    pub token: Option<Token>,
}

/// The token's text, read from its file when it is one (bounded, see `bounded_read`, so a FIFO
/// or a stalled mount cannot outlast the deadline), and checked to be one header value.
async fn token_text(token: Option<&Token>) -> Result<SecretText, Error> {
    let (var, text) = match token {
        None => return Err(Error::Config("no agent token; set AWS_TOKEN".into())),
        Some(Token::Value { var, value }) => (*var, SecretText::copy_of(value.expose())),
        Some(Token::File { var, path }) => {
            let unreadable = |why: &dyn fmt::Display| {
                Error::Config(format!(
                    "cannot read the agent token from {var}=file://{}: {why}; check the path and its permissions",
                    path.display()
                ))
            };
            let buf = match crate::bounded_read::read(path.clone(), MAX_TOKEN_FILE).await {
                Ok(Some(buf)) => buf,
                Ok(None) => {
                    return Err(unreadable(&std::io::Error::from(nix::errno::Errno::ENOENT)));
                }
                Err(e) => return Err(unreadable(&e)),
            };
            let text = std::str::from_utf8(&buf).map_err(|_| unreadable(&"not UTF-8"))?;
            (*var, SecretText::copy_of(text.trim()))
        }
    };
    if text.expose().trim().is_empty() || text.expose().chars().any(|c| c.is_control()) {
        return Err(Error::Config(format!(
            "the agent token in {var} is empty or holds control characters; it must be one line"
        )));
    }
    Ok(text)
}

/// RFC 3986 percent-encoding of a query value: everything but the unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The request target for one secret version.
fn target(secret: &SecretRef) -> String {
    let mut t = format!("/secretsmanager/get?secretId={}", encode(&secret.id));
    if let Some(stage) = &secret.stage {
        t.push_str(&format!("&versionStage={}", encode(stage)));
    }
    if let Some(v) = &secret.version_id {
        t.push_str(&format!("&versionId={}", encode(v)));
    }
    t
}

/// One GET to the agent on a fresh connection, read to the end of the response (at most
/// `MAX_RESPONSE`).
async fn get(url: &AgentUrl, target: &str, token: &SecretText) -> Result<Response, HttpError> {
    let stream = loopback::connect(url.connect_host(), url.port).await?;
    let user_agent = concat!("secret-exec/", env!("CARGO_PKG_VERSION"));
    let headers = [
        ("X-Aws-Parameters-Secrets-Token", token.expose()),
        ("User-Agent", user_agent),
    ];
    let authority = format!("{}:{}", url.host, url.port);
    loopback::get(stream, &authority, target, &headers, MAX_RESPONSE).await
}

fn failure(class: Class, why: String) -> Failure {
    Failure {
        service: SERVICE,
        class,
        why,
    }
}

/// What one answer means.
#[derive(Debug)]
enum Verdict {
    /// 200: the body is a `GetSecretValue` answer.
    Value,
    /// Worth another attempt (the agent's connection limit).
    Retry(String),
    Fail(Failure),
}

const TOKEN_HINT: &str = "set AWS_TOKEN (or AWS_TOKEN=file://PATH) to the token the agent reads, \
                          and reach the agent directly, not through a proxy (add it to NO_PROXY)";

/// Maps the agent's answers: upstream errors come back with the upstream status and `__type`
/// (classified as the direct Secrets Manager path does); the agent's own refusals are plain text.
fn verdict(status: u16, body: &[u8], url: &AgentUrl) -> Verdict {
    if status == 200 {
        return Verdict::Value;
    }
    let typed = serde_json::from_slice::<BTreeMap<String, &RawValue>>(body)
        .ok()
        .and_then(|m| {
            let text = |k: &str| {
                m.get(k)
                    .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
            };
            Some((text("__type")?, text("message").or_else(|| text("Message"))))
        });
    let plain = || one_line(&String::from_utf8_lossy(&body[..body.len().min(200)]));
    match (status, typed) {
        (429, _) => Verdict::Retry("the agent is at its connection limit (HTTP 429)".into()),
        (_, Some((code, message))) => {
            let asked = Asked {
                region: "configured in the agent".into(),
                endpoint: url.to_string(),
            };
            Verdict::Fail(coded(&code, message.as_deref(), &asked))
        }
        (403, None) => Verdict::Fail(failure(
            Class::Permission,
            format!(
                "the agent refused the token (HTTP 403 {}); {TOKEN_HINT}",
                plain()
            ),
        )),
        (400, None) if body.trim_ascii() == b"Forwarded" => Verdict::Fail(failure(
            Class::Permission,
            format!("the agent refused a forwarded request (HTTP 400 Forwarded); {TOKEN_HINT}"),
        )),
        (502 | 504, None) => Verdict::Fail(failure(
            Class::Unavailable,
            format!(
                "the agent could not reach Secrets Manager (HTTP {status}); check the agent's \
                 network path and logs, or raise --timeout"
            ),
        )),
        (_, None) => Verdict::Fail(failure(
            Class::Unavailable,
            format!(
                "the answer (HTTP {status}) is not a Secrets Manager Agent response; check the \
                 --agent URL"
            ),
        )),
    }
}

/// Moves a 200 body's fields into a `Fetched`; the value goes straight into a wiped buffer.
fn fetched(body: &[u8], secret: &SecretRef) -> Result<Fetched, Error> {
    let bad = |why: &str| Error::Unavailable {
        secret: secret.to_string(),
        why: format!("the agent's answer {why}"),
    };
    let m: BTreeMap<String, &RawValue> =
        serde_json::from_slice(body).map_err(|_| bad("is not a JSON object"))?;
    let text = |k: &str| -> Option<String> {
        m.get(k).and_then(|v| {
            serde_json::from_str::<Option<String>>(v.get())
                .ok()
                .flatten()
        })
    };
    let stages = m
        .get("VersionStages")
        .and_then(|v| serde_json::from_str::<Vec<String>>(v.get()).ok())
        .unwrap_or_default();
    let payload = match (text("SecretString"), text("SecretBinary")) {
        (Some(s), _) => Payload::Text(SecretText::from_owned(s)),
        (None, Some(b64)) => {
            let b64 = Zeroizing::new(b64);
            let bytes = aws_smithy_types::base64::decode(b64.as_str())
                .map_err(|_| bad("has a SecretBinary that is not base64"))?;
            Payload::Binary(SecretBytes::from_owned(bytes))
        }
        (None, None) => return Err(bad("has neither SecretString nor SecretBinary")),
    };
    Ok(Fetched {
        name: text("Name").unwrap_or_else(|| secret.id.clone()),
        version_id: text("VersionId"),
        stages,
        payload,
    })
}

/// Backoff before attempt `n + 1`: 100 ms doubling to 2 s, with jitter so a herd of launches
/// turned away together does not come back together.
fn backoff(n: u32) -> Duration {
    let base = Duration::from_millis(100) * 2u32.saturating_pow(n.saturating_sub(1));
    let jitter = Duration::from_millis(100).mul_f64(crate::duration::random_unit());
    base.min(Duration::from_secs(2)) + jitter
}

async fn get_one(
    url: Arc<AgentUrl>,
    token: Arc<SecretText>,
    secret: SecretRef,
    attempts: u32,
    per_attempt: Duration,
) -> Outcome {
    let target = target(&secret);
    let mut last = String::new();
    for n in 1..=attempts {
        if n > 1 {
            tokio::time::sleep(backoff(n - 1)).await;
        }
        match tokio::time::timeout(per_attempt, get(&url, &target, &token)).await {
            Err(_) => last = format!("the agent at {url} did not answer within {per_attempt:?}"),
            Ok(Err(e)) => {
                last = format!(
                    "cannot reach the agent at {url}: {}",
                    one_line(&e.to_string())
                )
            }
            Ok(Ok(resp)) => match verdict(resp.status, &resp.body, &url) {
                Verdict::Value => {
                    let result = fetched(&resp.body, &secret);
                    return (secret, result);
                }
                Verdict::Retry(why) => last = why,
                Verdict::Fail(f) => {
                    let err = f.for_secret(&secret);
                    return (secret, Err(err));
                }
            },
        }
        log::at(2, Event::Fetch).source("agent").say(format_args!(
            "agent attempt {n}/{attempts} for {secret}: {last}"
        ));
    }
    let why = format!(
        "{last} (after {attempts} attempts); check that the agent runs and listens there \
         (it serves 127.0.0.1 only: share its network namespace), or raise --timeout"
    );
    let err = failure(Class::Unavailable, why).for_secret(&secret);
    (secret, Err(err))
}

/// Reads every secret of the plan through the agent, concurrently (see `in_flight`).
pub async fn fetch(
    opts: &AgentOptions,
    timeout: Duration,
    attempts: u32,
    plan: Vec<RegionCalls>,
) -> Vec<Outcome> {
    let secrets: Vec<SecretRef> = plan
        .into_iter()
        .flat_map(|rc| rc.calls)
        .flat_map(|c| match c {
            Call::One(r) => vec![r],
            Call::Batch(rs) => rs,
        })
        .collect();
    let token = match token_text(opts.token.as_ref()).await {
        Ok(t) => Arc::new(t),
        Err(e) => {
            let why = e.to_string();
            return secrets
                .into_iter()
                .map(|s| (s, Err(Error::Config(why.clone()))))
                .collect();
        }
    };
    log::at(1, Event::Fetch).source("agent").say(format_args!(
        "reading {} secret(s) through the agent at {}",
        secrets.len(),
        opts.url
    ));
    let per_attempt = (timeout / attempts.max(1)).max(Duration::from_millis(500));
    let url = Arc::new(opts.url.clone());
    let gets = secrets
        .into_iter()
        .map(|s| get_one(url.clone(), token.clone(), s, attempts, per_attempt));
    super::in_flight(gets).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_table() {
        let ok = [
            ("http://localhost:2773", "localhost", 2773),
            ("http://127.0.0.1:2773/", "127.0.0.1", 2773),
            ("http://agent", "agent", 80),
            ("http://[::1]:2773", "[::1]", 2773),
        ];
        for (text, host, port) in ok {
            let u = parse_url(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((u.host.as_str(), u.port), (host, port), "{text}");
        }
        assert_eq!(parse_url("http://[::1]:1").unwrap().connect_host(), "::1");
        for bad in [
            "https://localhost:2773",
            "localhost:2773",
            "http://",
            "http://:2773",
            "http://h:0",
            "http://h:99999",
            "http://h:x",
            "http://h/secretsmanager",
            "http://u@h",
            "http://h?x",
            "http://h_h",
            "http://[nope]:1",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn token_order_and_file_form() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let t = token_from(&env(&[("AWS_SESSION_TOKEN", "b"), ("AWS_TOKEN", "a")]));
        assert!(matches!(
            t,
            Some(Token::Value {
                var: "AWS_TOKEN",
                ..
            })
        ));
        let t = token_from(&env(&[
            ("AWS_TOKEN", ""),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "c"),
        ]));
        assert!(matches!(
            t,
            Some(Token::Value {
                var: "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                ..
            })
        ));
        let t = token_from(&env(&[("AWS_TOKEN", "file:///run/token")])).unwrap();
        assert!(
            matches!(&t, Token::File { path, .. } if path == std::path::Path::new("/run/token"))
        );
        assert!(token_from(&env(&[])).is_none());
        let v = token_from(&env(&[("AWS_TOKEN", "s3cr3t-token")])).unwrap();
        assert!(!format!("{v:?}").contains("s3cr3t"));
        for bad in ["a\r\nX-Forwarded-For: 1", " "] {
            let t = Token::Value {
                var: "AWS_TOKEN",
                value: SecretText::copy_of(bad),
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let err = rt.block_on(token_text(Some(&t))).unwrap_err();
            assert_eq!(err.exit_code(), 78);
            assert!(!err.to_string().contains("Forwarded"), "{err}");
        }
    }

    #[test]
    fn targets_are_encoded() {
        let r = SecretRef::secret(
            "arn:aws:secretsmanager:us-east-1:1:secret:a/b+c d-AbCdEf",
            Some("AWSPREVIOUS".into()),
            Some("v&1".into()),
        );
        assert_eq!(
            target(&r),
            "/secretsmanager/get?secretId=arn%3Aaws%3Asecretsmanager%3Aus-east-1%3A1%3Asecret%3Aa%2Fb%2Bc%20d-AbCdEf&versionStage=AWSPREVIOUS&versionId=v%261"
        );
    }

    #[test]
    fn verdict_table() {
        let r = SecretRef::secret("prod/db", None, None);
        let rows: &[(u16, &str, Option<i32>, &str)] = &[
            (200, "{}", None, ""),
            (429, "Connection limit exceeded", None, "connection limit"),
            (403, "Bad Token", Some(77), "AWS_TOKEN"),
            (400, "Forwarded", Some(77), "forwarded"),
            (
                400,
                r#"{"__type":"ResourceNotFoundException","message":"no such secret"}"#,
                Some(66),
                "ResourceNotFoundException: no such secret",
            ),
            (
                403,
                r#"{"__type":"AccessDeniedException","message":"not allowed"}"#,
                Some(77),
                "AccessDeniedException",
            ),
            (
                502,
                r#"{"__type":"ConnectionError","message":"Read Error"}"#,
                Some(69),
                "ConnectionError",
            ),
            (504, "", Some(69), "could not reach Secrets Manager"),
            (502, "Bad Gateway", Some(69), "HTTP 502"),
            (
                500,
                r#"{"__type":"InternalFailure"}"#,
                Some(69),
                "InternalFailure",
            ),
            (
                404,
                "Not found",
                Some(69),
                "not a Secrets Manager Agent response",
            ),
            (
                400,
                r#"{"__type":"InvalidParameterException","message":"bad"}"#,
                Some(64),
                "InvalidParameterException",
            ),
        ];
        for (status, body, code, want) in rows {
            let url = parse_url("http://127.0.0.1:2773").unwrap();
            match (verdict(*status, body.as_bytes(), &url), code) {
                (Verdict::Value, None) => assert_eq!(*status, 200),
                (Verdict::Retry(why), None) => assert!(why.contains(want), "{why}"),
                (Verdict::Fail(f), Some(code)) => {
                    let e = f.for_secret(&r);
                    assert_eq!(e.exit_code(), *code, "{status} {body}: {e}");
                    assert!(e.to_string().contains(want), "{status} {body}: {e}");
                    assert!(e.to_string().contains("'prod/db'"), "{e}");
                }
                (v, _) => panic!("{status} {body}: {v:?}"),
            }
        }
    }

    #[test]
    fn answers_become_fetched() {
        let r = SecretRef::secret("prod/db", None, None);
        let body = br#"{"ARN":"arn:x","Name":"prod/db","VersionId":"v1","SecretString":"{\"a\":\"b\"}","VersionStages":["AWSCURRENT"],"CreatedDate":"1700000000.5"}"#;
        let f = fetched(body, &r).unwrap();
        assert_eq!(
            (f.name.as_str(), f.version_id.as_deref()),
            ("prod/db", Some("v1"))
        );
        assert_eq!(f.stages, ["AWSCURRENT"]);
        assert!(matches!(&f.payload, Payload::Text(t) if t.expose() == r#"{"a":"b"}"#));
        let bin = fetched(br#"{"Name":"b","SecretBinary":"AAEC"}"#, &r).unwrap();
        assert!(matches!(bin.payload, Payload::Binary(_)));
        for bad in [&b"[]"[..], b"{}", b"{\"SecretBinary\":\"**\"}", b"not json"] {
            let e = fetched(bad, &r).unwrap_err();
            assert_eq!(e.exit_code(), 69);
        }
    }
}
