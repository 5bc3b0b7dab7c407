//! Proxy settings read as the AWS CLI reads them: `HTTPS_PROXY` for https requests, `HTTP_PROXY`
//! for http ones, `NO_PROXY` for exceptions, the lower-case spelling winning over the upper-case
//! one. A URL without a scheme means `http://`. A setting that is present but unusable is a 78,
//! never ignored; a proxy is only ever shown without the credentials its URL may hold. The
//! credential endpoints (IMDS, the ECS/EKS container endpoints) never go through a proxy.

use crate::error::Error;
use aws_smithy_http_client::proxy::ProxyConfig;
use hyper_util::client::proxy::matcher::Matcher;

/// Hosts of the link-local credential endpoints: they are only reachable directly.
pub const CREDENTIAL_HOSTS: &[&str] = &[
    "169.254.169.254",
    "169.254.170.2",
    "169.254.170.23",
    "fd00:ec2::254",
    "fd00:ec2::23",
];

/// One validated proxy URL.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// The URL handed to the HTTP client, credentials included.
    url: String,
    /// `scheme://host:port`, safe to print.
    pub shown: String,
    /// The variable it came from, for messages.
    pub var: &'static str,
}

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.shown, self.var)
    }
}

/// The proxy settings of one process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proxies {
    pub https: Option<ProxyUrl>,
    pub http: Option<ProxyUrl>,
    /// `NO_PROXY` plus the credential endpoints' hosts.
    pub no_proxy: String,
}

/// Picks a variable as Python's urllib (and so the AWS CLI) does: the lower-case one wins when it
/// is set, and a set but empty value means "no proxy".
fn pick(
    get: &impl Fn(&str) -> Option<String>,
    lower: &'static str,
    upper: &'static str,
) -> Option<(&'static str, String)> {
    let (var, value) = match get(lower) {
        Some(v) => (lower, v),
        None => (upper, get(upper)?),
    };
    let value = value.trim().to_string();
    (!value.is_empty()).then_some((var, value))
}

/// Reads the proxy variables through `get`; `extra_direct` are further hosts that must be reached
/// directly (the configured credential endpoints).
pub fn from_env(
    get: impl Fn(&str) -> Option<String>,
    extra_direct: &[String],
) -> Result<Proxies, Error> {
    let https = pick(&get, "https_proxy", "HTTPS_PROXY")
        .map(|(var, v)| parse(var, &v))
        .transpose()?;
    let http = pick(&get, "http_proxy", "HTTP_PROXY")
        .map(|(var, v)| parse(var, &v))
        .transpose()?;
    let mut no_proxy: Vec<String> = pick(&get, "no_proxy", "NO_PROXY")
        .map(|(_, v)| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    // The client's matcher applies `*` to host names only; an endpoint given by IP address
    // (a VPC endpoint, a sidecar, an emulator) is matched against addresses and networks.
    if no_proxy.iter().any(|h| h == "*") {
        no_proxy.extend(["0.0.0.0/0".to_string(), "::/0".to_string()]);
    }
    no_proxy.extend(CREDENTIAL_HOSTS.iter().map(|h| h.to_string()));
    no_proxy.extend(extra_direct.iter().cloned());
    Ok(Proxies {
        https,
        http,
        no_proxy: no_proxy.join(","),
    })
}

/// The host of a URL, for `extra_direct` (`None` when it has none).
pub fn host_of(url: &str) -> Option<String> {
    let uri: http::Uri = url.trim().parse().ok()?;
    super::url::authority(&uri).map(|a| a.bare.to_string())
}

/// Validates one proxy URL. The error shows the value with any credentials masked.
pub fn parse(var: &'static str, raw: &str) -> Result<ProxyUrl, Error> {
    let bad = |why: &str| {
        Error::Config(format!(
            "{var}='{}' is not a usable proxy URL ({why}); set it to http://HOST:PORT or unset it",
            mask(raw)
        ))
    };
    let url = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    let uri: http::Uri = url.parse().map_err(|_| bad("cannot be parsed"))?;
    let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(bad("only http:// and https:// proxies are supported"));
    }
    let authority = super::url::authority(&uri).filter(|a| !a.written.is_empty());
    let authority = authority.ok_or_else(|| bad("no host"))?;
    let host = authority.written;
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad("a proxy URL has no path"));
    }
    let port = authority
        .port()
        .map_err(|_| bad("the port is not a number"))?
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    Ok(ProxyUrl {
        url,
        shown: format!("{scheme}://{host}:{port}"),
        var,
    })
}

/// `raw` with the user-info part (`user:password@`) replaced by `***@`.
fn mask(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |i| i + 3);
    let authority_end = raw[start..].find('/').map_or(raw.len(), |i| start + i);
    match raw[start..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &raw[..start], &raw[start + at..]),
        None => raw.to_string(),
    }
}

impl Proxies {
    /// The client's proxy configuration for https requests (the TLS client; its plain-http
    /// requests go only to credential endpoints, which are never proxied).
    pub fn for_https(&self) -> ProxyConfig {
        self.https
            .as_ref()
            .and_then(|p| ProxyConfig::https(p.url.as_str()).ok())
            .map_or_else(ProxyConfig::disabled, |c| c.no_proxy(&self.no_proxy))
    }

    /// The proxy configuration for a plain-http Secrets Manager endpoint.
    pub fn for_http(&self) -> ProxyConfig {
        self.http
            .as_ref()
            .and_then(|p| ProxyConfig::http(p.url.as_str()).ok())
            .map_or_else(ProxyConfig::disabled, |c| c.no_proxy(&self.no_proxy))
    }

    /// Which proxy, if any, a request to `uri` goes through (the same rules the client applies),
    /// so a failure can name it.
    pub fn route(&self, uri: &http::Uri) -> Option<&ProxyUrl> {
        let proxy = match uri.scheme_str() {
            Some("https") => self.https.as_ref()?,
            Some("http") => self.http.as_ref()?,
            _ => return None,
        };
        let matcher = Matcher::builder()
            .all(proxy.url.clone())
            .no(self.no_proxy.clone())
            .build();
        matcher.intercept(uri).is_some().then_some(proxy)
    }
}

/// A connection through a proxy failed: the cause, with the proxy named (never its credentials).
#[derive(Debug)]
pub struct ProxyFailed {
    pub proxy: String,
    pub var: &'static str,
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl std::fmt::Display for ProxyFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the proxy {} (from {}) could not be used",
            self.proxy, self.var
        )
    }
}

impl std::error::Error for ProxyFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn variables_as_the_aws_cli_reads_them() {
        let rows: &[(&[(&str, &str)], Option<&str>, Option<&str>)] = &[
            (&[], None, None),
            (
                &[("HTTPS_PROXY", "http://upper:1")],
                Some("http://upper:1"),
                None,
            ),
            (
                &[
                    ("HTTPS_PROXY", "http://upper:1"),
                    ("https_proxy", "http://lower:2"),
                ],
                Some("http://lower:2"),
                None,
            ),
            // A set but empty lower-case variable turns the proxy off.
            (
                &[("HTTPS_PROXY", "http://upper:1"), ("https_proxy", "")],
                None,
                None,
            ),
            (
                &[("HTTP_PROXY", "proxy.corp:3128")],
                None,
                Some("http://proxy.corp:3128"),
            ),
            (&[("https_proxy", "https://p")], Some("https://p:443"), None),
        ];
        for (vars, https, http) in rows {
            let p = from_env(env(vars), &[]).unwrap();
            assert_eq!(
                p.https.as_ref().map(|u| u.shown.as_str()),
                *https,
                "{vars:?}"
            );
            assert_eq!(p.http.as_ref().map(|u| u.shown.as_str()), *http, "{vars:?}");
        }
    }

    #[test]
    fn malformed_urls_are_78_without_credentials() {
        for raw in [
            "http://user:hunter2@host:notaport",
            "socks5://user:hunter2@host:1080",
            "http://user:hunter2@",
            "http://user:hunter2@host:3128/path",
            "http://exa mple:3128",
        ] {
            let err = parse("HTTPS_PROXY", raw).unwrap_err();
            assert_eq!(err.exit_code(), 78, "{raw}");
            let msg = err.to_string();
            assert!(msg.contains("HTTPS_PROXY"), "{msg}");
            assert!(!msg.contains("hunter2"), "{msg}");
        }
    }

    #[test]
    fn shown_form_drops_credentials() {
        let p = parse("HTTPS_PROXY", "http://user:hunter2@proxy:3128/").unwrap();
        assert_eq!(p.shown, "http://proxy:3128");
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn no_proxy_and_credential_endpoints_bypass() {
        let p = from_env(
            env(&[
                ("HTTPS_PROXY", "http://proxy:3128"),
                ("HTTP_PROXY", "http://proxy:3128"),
                ("NO_PROXY", "internal.example, .corp"),
            ]),
            &["creds.local".to_string()],
        )
        .unwrap();
        let rows = [
            ("https://secretsmanager.us-east-1.amazonaws.com/", true),
            ("https://vault.internal.example/", false),
            ("https://internal.example/", false),
            ("https://sm.corp/", false),
            ("http://169.254.169.254/latest/api/token", false),
            ("http://169.254.170.2/v2/credentials", false),
            ("http://169.254.170.23/v1/credentials", false),
            ("http://[fd00:ec2::254]/latest/api/token", false),
            ("https://creds.local/creds", false),
            ("http://emulator.example:4566/", true),
        ];
        for (url, proxied) in rows {
            let uri: http::Uri = url.parse().unwrap();
            assert_eq!(p.route(&uri).is_some(), proxied, "{url}");
        }
    }

    #[test]
    fn no_proxy_star_bypasses_addresses_too() {
        for var in ["NO_PROXY", "no_proxy"] {
            for list in ["*", "example.com, *"] {
                let p = from_env(
                    env(&[
                        ("HTTPS_PROXY", "http://proxy:3128"),
                        ("HTTP_PROXY", "http://proxy:3128"),
                        (var, list),
                    ]),
                    &[],
                )
                .unwrap();
                for url in [
                    "https://127.0.0.1:4566/",
                    "https://10.0.3.7/",
                    "http://127.0.0.1:5000/",
                    "https://[::1]:4566/",
                    "https://[fd00::7]/",
                    "https://localhost:4566/",
                    "https://secretsmanager.us-east-1.amazonaws.com/",
                ] {
                    let uri: http::Uri = url.parse().unwrap();
                    assert!(p.route(&uri).is_none(), "{var}={list}: {url}");
                }
            }
        }
        // Without `*`, an address outside the list still goes through the proxy.
        let p = from_env(
            env(&[
                ("HTTPS_PROXY", "http://proxy:3128"),
                ("NO_PROXY", "10.0.0.0/8"),
            ]),
            &[],
        )
        .unwrap();
        let via = |url: &str| p.route(&url.parse().unwrap()).is_some();
        assert!(via("https://127.0.0.1:4566/"));
        assert!(!via("https://10.1.2.3/"));
    }

    #[test]
    fn masking() {
        assert_eq!(mask("http://u:p@h:1"), "http://***@h:1");
        assert_eq!(mask("u:p@h:1"), "***@h:1");
        assert_eq!(mask("http://h:1/a@b"), "http://h:1/a@b");
    }
}
