//! The ECS task-role / EKS Pod Identity container credentials endpoint over plain HTTP: which
//! URL (pure), which authorization token (trimmed: a token file written with a trailing newline
//! is still a valid token), one GET with one quick retry. Errors never carry the token, the
//! URL's path (it names the credentials) or anything from the reply body.
//!
//! Why not the SDK's `EcsCredentialsProvider`: it sends the token file's bytes verbatim, so a
//! file ending in a newline fails as an invalid header, and its environment cannot be
//! substituted from outside the crate. HTTPS container endpoints still go through the SDK.

use crate::source::aws::loopback::{self, HttpError, Response};
use crate::source::aws::url;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, error::CredentialsError};
use std::fmt;
use std::time::{Duration, SystemTime};
use zeroize::Zeroizing;

/// The fixed host ECS puts in front of `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
pub const ECS_HOST: &str = "169.254.170.2";
const CONNECT: Duration = Duration::from_secs(1);
const READ: Duration = Duration::from_secs(2);
/// Credentials replies are a few KiB; anything far larger is not one.
const MAX_REPLY: usize = 64 * 1024;

/// Where to ask, already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Endpoint {
    /// `host:port`, the part of the URL safe to print.
    pub fn authority(&self) -> String {
        loopback::authority(&self.host, self.port)
    }
}

/// What the environment asks for: nothing, a plain-HTTP endpoint this module serves, or an
/// HTTPS one left to the SDK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerTarget {
    None,
    Http(Endpoint),
    Https,
}

/// Hosts the AWS SDKs accept for a full URI over plain HTTP: loopback and the ECS/EKS
/// link-local agents. Names other than `localhost` are refused rather than resolved.
fn allowed_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_loopback() => true,
        Ok(std::net::IpAddr::V4(v4)) => {
            v4 == std::net::Ipv4Addr::new(169, 254, 170, 2)
                || v4 == std::net::Ipv4Addr::new(169, 254, 170, 23)
        }
        Ok(std::net::IpAddr::V6(v6)) => v6 == "fd00:ec2::23".parse::<std::net::Ipv6Addr>().unwrap(),
        Err(_) => false,
    }
}

/// The endpoint from `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (wins, as in every SDK) or
/// `AWS_CONTAINER_CREDENTIALS_FULL_URI`. Err is a complete message for exit 78.
pub fn target(relative: Option<&str>, full: Option<&str>) -> Result<ContainerTarget, String> {
    if let Some(rel) = relative.filter(|r| !r.is_empty()) {
        if !rel.starts_with('/') || rel.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must be a path starting with '/'".into(),
            );
        }
        return Ok(ContainerTarget::Http(Endpoint {
            host: ECS_HOST.into(),
            port: 80,
            path: rel.into(),
        }));
    }
    let Some(full) = full.filter(|f| !f.is_empty()) else {
        return Ok(ContainerTarget::None);
    };
    if full.starts_with("https://") {
        return Ok(ContainerTarget::Https);
    }
    let bad = |why: &str| {
        format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI {why}; it must be https://, or http:// to a loopback address or the ECS/EKS agent (169.254.170.2, 169.254.170.23, fd00:ec2::23)"
        )
    };
    let Some(rest) = full.strip_prefix("http://") else {
        return Err(bad("does not start with http:// or https://"));
    };
    if rest.is_empty() {
        return Err(bad("names a host that is not allowed"));
    }
    let uri = url::parse(full).ok_or_else(|| bad("has a malformed host or path"))?;
    let authority = url::authority(&uri).ok_or_else(|| bad("has a malformed host"))?;
    if authority.user_info {
        return Err(bad("holds user information"));
    }
    let port = authority
        .port()
        .map_err(|_| bad("has an invalid port"))?
        .unwrap_or(80);
    let host = authority.bare;
    if host.is_empty() || !allowed_host(host) {
        return Err(bad("names a host that is not allowed"));
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let path = if path.is_empty() { "/" } else { path };
    Ok(ContainerTarget::Http(Endpoint {
        host: host.into(),
        port,
        path: path.into(),
    }))
}

/// The token as sent: surrounding whitespace dropped (files are often written with a trailing
/// newline); what remains must be a valid header value. Err says why, without the token.
pub fn clean_token(raw: &[u8]) -> Result<&str, &'static str> {
    let t = raw.trim_ascii();
    let t = std::str::from_utf8(t).map_err(|_| "is not UTF-8 text")?;
    if t.is_empty() {
        return Err("is empty");
    }
    if t.chars().any(|c| c.is_control()) {
        return Err("holds a line break or control character inside the token");
    }
    Ok(t)
}

/// Why the endpoint gave no credentials. Carries no reply text and no token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerError {
    /// The token could not be read or used (exit 78).
    Token(String),
    /// Connect, send or read failed or timed out, after the retry (69).
    Unreachable { authority: String, why: String },
    /// The endpoint answered with this HTTP status (4xx: 77; otherwise 69).
    Status { authority: String, status: u16 },
    /// 200 but not a credentials document (69).
    Malformed { authority: String },
}

impl fmt::Display for ContainerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContainerError::Token(why) => f.write_str(why),
            ContainerError::Unreachable { authority, why } => {
                write!(
                    f,
                    "the container credentials endpoint {authority} is unreachable: {why}"
                )
            }
            ContainerError::Status { authority, status } => write!(
                f,
                "the container credentials endpoint {authority} answered HTTP {status}"
            ),
            ContainerError::Malformed { authority } => write!(
                f,
                "the container credentials endpoint {authority} answered with something that is not a credentials document"
            ),
        }
    }
}

impl std::error::Error for ContainerError {}

/// Where the authorization token comes from; the file wins, as in the SDKs.
#[derive(Clone, Default)]
pub struct TokenSource {
    pub file: Option<std::path::PathBuf>,
    /// The file's contents as `files` read them, bounded, inside the deadline: never re-read.
    pub contents: Option<Zeroizing<Vec<u8>>>,
    pub value: Option<Zeroizing<String>>,
}

/// The token is a credential: `Debug` says whether there is one, never what it is.
impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("file", &self.file)
            .field("contents", &self.contents.as_ref().map(|_| "[redacted]"))
            .field("value", &self.value.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl TokenSource {
    fn load(&self) -> Result<Option<Zeroizing<String>>, ContainerError> {
        if let Some(path) = &self.file {
            let raw = self.contents.as_ref().ok_or_else(|| {
                ContainerError::Token(format!(
                    "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE '{}': it does not exist",
                    path.display()
                ))
            })?;
            let t = clean_token(raw).map_err(|why| {
                ContainerError::Token(format!(
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE '{}' {why}",
                    path.display()
                ))
            })?;
            return Ok(Some(Zeroizing::new(t.to_string())));
        }
        match &self.value {
            None => Ok(None),
            Some(v) => clean_token(v.as_bytes())
                .map(|t| Some(Zeroizing::new(t.to_string())))
                .map_err(|why| {
                    ContainerError::Token(format!("AWS_CONTAINER_AUTHORIZATION_TOKEN {why}"))
                }),
        }
    }
}

/// A credentials provider for one plain-HTTP container endpoint.
#[derive(Debug)]
pub struct ContainerProvider {
    pub endpoint: Endpoint,
    pub token: TokenSource,
}

/// Turns a 200 body into credentials, or None when it is not a credentials document.
pub fn parse_document(body: &[u8]) -> Option<Credentials> {
    let mut doc: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body).ok()?;
    // Taken out of the map, not copied, so each key exists once in memory.
    let mut take = |k: &str| match doc.get_mut(k)?.take() {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    };
    let access_key_id = take("AccessKeyId").filter(|v| !v.is_empty())?;
    let secret_access_key = take("SecretAccessKey").filter(|v| !v.is_empty())?;
    let token = take("Token");
    let expiry = match take("Expiration") {
        None => None,
        Some(t) => Some(
            aws_smithy_types::DateTime::from_str(&t, aws_smithy_types::date_time::Format::DateTime)
                .ok()
                .and_then(|d| SystemTime::try_from(d).ok())?,
        ),
    };
    Some(Credentials::new(
        access_key_id,
        secret_access_key,
        token,
        expiry,
        "EcsContainer",
    ))
}

impl ContainerProvider {
    async fn once(&self, token: Option<&str>) -> Result<Response, HttpError> {
        let ep = &self.endpoint;
        let timed_out = |what: &str| HttpError::Io(std::io::Error::other(what.to_string()));
        let stream = tokio::time::timeout(CONNECT, loopback::connect(&ep.host, ep.port))
            .await
            .map_err(|_| timed_out("connect timed out"))??;
        let mut headers = vec![("Accept", "application/json")];
        if let Some(t) = token {
            headers.push(("Authorization", t));
        }
        let authority = ep.authority();
        let io = loopback::get(stream, &authority, &ep.path, &headers, MAX_REPLY);
        tokio::time::timeout(READ, io)
            .await
            .map_err(|_| timed_out("no reply in time"))?
    }

    async fn credentials(&self) -> provider::Result {
        let token = self
            .token
            .load()
            .map_err(CredentialsError::invalid_configuration)?;
        let authority = self.endpoint.authority();
        let mut last = None;
        // One quick retry: a node starting many tasks at once can see the agent refuse or lag.
        for attempt in 0..2 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let err = match self.once(token.as_deref().map(String::as_str)).await {
                Err(HttpError::TooLarge(_)) => ContainerError::Malformed {
                    authority: authority.clone(),
                },
                Err(HttpError::Malformed(_)) => ContainerError::Unreachable {
                    authority: authority.clone(),
                    why: "the connection closed before a complete reply".into(),
                },
                Err(HttpError::Io(e)) => ContainerError::Unreachable {
                    authority: authority.clone(),
                    why: e.to_string(),
                },
                Ok(Response { status: 200, body }) => {
                    return parse_document(&body).ok_or_else(|| {
                        CredentialsError::provider_error(ContainerError::Malformed {
                            authority: authority.clone(),
                        })
                    });
                }
                Ok(Response { status, .. }) => ContainerError::Status {
                    authority: authority.clone(),
                    status,
                },
            };
            let transient = match &err {
                ContainerError::Status { status, .. } => *status == 429 || *status >= 500,
                ContainerError::Unreachable { .. } => true,
                _ => false,
            };
            last = Some(err);
            if !transient {
                break;
            }
        }
        Err(CredentialsError::provider_error(
            last.expect("the loop runs at least once"),
        ))
    }
}

provide_from_credentials_fn!(ContainerProvider);

#[cfg(test)]
mod tests {
    use super::*;

    fn http(host: &str, port: u16, path: &str) -> ContainerTarget {
        ContainerTarget::Http(Endpoint {
            host: host.into(),
            port,
            path: path.into(),
        })
    }

    #[test]
    fn relative_uri_is_rooted_at_the_ecs_agent() {
        // Real ECS tasks: the host is fixed and cannot be faked on loopback, so it is proven here.
        assert_eq!(
            target(Some("/v2/credentials/abc-123"), None),
            Ok(http(ECS_HOST, 80, "/v2/credentials/abc-123"))
        );
        // The relative form wins over a full URI, as in every SDK.
        assert_eq!(
            target(Some("/v2/c"), Some("http://127.0.0.1:9/x")),
            Ok(http(ECS_HOST, 80, "/v2/c"))
        );
        for bad in ["v2/credentials", "/a b", "/a\nb"] {
            assert!(target(Some(bad), None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn full_uri_table() {
        let ok: &[(&str, ContainerTarget)] = &[
            (
                "http://127.0.0.1:8080/creds",
                http("127.0.0.1", 8080, "/creds"),
            ),
            (
                "http://localhost/creds?x=1",
                http("localhost", 80, "/creds?x=1"),
            ),
            (
                "http://169.254.170.23/v1/credentials",
                http("169.254.170.23", 80, "/v1/credentials"),
            ),
            (
                "http://[fd00:ec2::23]:80/v1/c",
                http("fd00:ec2::23", 80, "/v1/c"),
            ),
            ("http://[::1]:9", http("::1", 9, "/")),
            ("https://creds.example/x", ContainerTarget::Https),
        ];
        for (uri, want) in ok {
            assert_eq!(target(None, Some(uri)).as_ref(), Ok(want), "{uri}");
        }
        assert_eq!(target(None, None), Ok(ContainerTarget::None));
        assert_eq!(target(Some(""), Some("")), Ok(ContainerTarget::None));
        for bad in [
            "http://10.0.0.1/creds",
            "http://creds.example/x",
            "http://user:pw@127.0.0.1/x",
            "ftp://127.0.0.1/x",
            "http://127.0.0.1:99999/x",
            "http://[::1/x",
        ] {
            let err = target(None, Some(bad)).unwrap_err();
            assert!(
                err.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
                "{bad}: {err}"
            );
            assert!(!err.contains("pw"), "{err}");
        }
    }

    #[test]
    fn token_table() {
        let rows: &[(&[u8], Result<&str, ()>)] = &[
            (b"tok", Ok("tok")),
            (b"tok\n", Ok("tok")),
            (b"  tok\r\n", Ok("tok")),
            (b"", Err(())),
            (b"\n", Err(())),
            (b"to\nk", Err(())),
            (b"\xff\xfe", Err(())),
        ];
        for (raw, want) in rows {
            assert_eq!(clean_token(raw).map_err(|_| ()), *want, "{raw:?}");
        }
    }

    #[test]
    fn documents() {
        let good = br#"{"AccessKeyId":"AKID","SecretAccessKey":"s","Token":"t","Expiration":"2099-01-01T00:00:00Z"}"#;
        let c = parse_document(good).unwrap();
        assert_eq!(c.access_key_id(), "AKID");
        assert_eq!(c.session_token(), Some("t"));
        assert!(c.expiry().is_some());
        for bad in [
            &br#"{"AccessKeyId":"AKID"}"#[..],
            br#"{"AccessKeyId":"","SecretAccessKey":"s"}"#,
            br#"{"AccessKeyId":"A","SecretAccessKey":"s","Expiration":"soon"}"#,
            b"<html>",
            b"",
        ] {
            assert!(parse_document(bad).is_none(), "{bad:?}");
        }
    }
}
