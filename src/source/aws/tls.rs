//! Trust roots and the one HTTP client every AWS call shares (Secrets Manager, STS, SSO, the
//! credential endpoints): rustls with ring, offering the hybrid post-quantum key exchange
//! X25519MLKEM768 first (aws/tls_pq.rs; docs/tls.md), roots from ONE
//! source chosen as the AWS CLI chooses it, read only when a connection is first made — so a
//! plain-http endpoint never touches a certificate — and certificate or proxy failures turned
//! into typed errors that are never retried and name the host, the reason and the fix.

use crate::bounded_read;
use crate::error::Error;
use crate::source::aws::proxy::{Proxies, ProxyFailed};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, Connector};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use rustls::CertificateError;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// A CA bundle: the system's is a few hundred KiB; anything past this is not one.
const ROOTS_CAP: usize = 16 << 20;

/// Where distributions keep their one-file CA bundle (Debian/Ubuntu, RHEL/Fedora, SUSE, Alpine).
pub const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Which setting named the trust roots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootSetting {
    AwsCaBundle,
    ProfileCaBundle,
    SslCertFile,
    SslCertDir,
    System,
}

impl RootSetting {
    fn label(self) -> &'static str {
        match self {
            RootSetting::AwsCaBundle => "AWS_CA_BUNDLE",
            RootSetting::ProfileCaBundle => "the profile's ca_bundle",
            RootSetting::SslCertFile => "SSL_CERT_FILE",
            RootSetting::SslCertDir => "SSL_CERT_DIR",
            RootSetting::System => "the system CA bundle",
        }
    }
}

/// The one place trust roots come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootSource {
    pub origin: RootSetting,
    /// A file, or for `SslCertDir` a `:`-separated list of directories.
    pub path: OsString,
}

fn set(v: Option<&OsStr>) -> Option<&OsStr> {
    v.filter(|v| !v.is_empty())
}

/// First found wins, as in the AWS CLI: `AWS_CA_BUNDLE`, the profile's `ca_bundle`, then what
/// OpenSSL would read (`SSL_CERT_FILE`, else `SSL_CERT_DIR`), then the first system bundle that
/// `exists`. `None` when there is nothing at all (a scratch image with no bundle).
pub fn root_source(
    aws_ca_bundle: Option<&OsStr>,
    profile_ca_bundle: Option<&str>,
    ssl_cert_file: Option<&OsStr>,
    ssl_cert_dir: Option<&OsStr>,
    exists: impl Fn(&Path) -> bool,
) -> Option<RootSource> {
    let named = |origin, path: &OsStr| {
        Some(RootSource {
            origin,
            path: path.to_os_string(),
        })
    };
    if let Some(p) = set(aws_ca_bundle) {
        return named(RootSetting::AwsCaBundle, p);
    }
    if let Some(p) = profile_ca_bundle.map(str::trim).filter(|p| !p.is_empty()) {
        return named(RootSetting::ProfileCaBundle, OsStr::new(p));
    }
    if let Some(p) = set(ssl_cert_file) {
        return named(RootSetting::SslCertFile, p);
    }
    if let Some(p) = set(ssl_cert_dir) {
        return named(RootSetting::SslCertDir, p);
    }
    SYSTEM_BUNDLES
        .iter()
        .map(Path::new)
        .find(|p| exists(p))
        .and_then(|p| named(RootSetting::System, p.as_os_str()))
}

/// The PEM text of every certificate in `pem` that rustls accepts as a trust anchor, joined;
/// anything else in the file (keys, comments, broken blocks) is skipped, as OpenSSL does.
pub fn usable_pem(pem: &[u8]) -> (Vec<u8>, usize) {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let mut out = Vec::with_capacity(pem.len());
    let mut count = 0;
    let mut rest = pem;
    while let Some(start) = find(rest, BEGIN) {
        let Some(len) = find(&rest[start..], END) else {
            break;
        };
        let block = &rest[start..start + len + END.len()];
        rest = &rest[start + len + END.len()..];
        let Ok(der) = CertificateDer::from_pem_slice(block) else {
            continue;
        };
        if rustls::RootCertStore::empty().add(der).is_ok() {
            out.extend_from_slice(block);
            out.push(b'\n');
            count += 1;
        }
    }
    (out, count)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads the roots. A named file that is missing, unreadable or holds no certificate is a 78
/// that names it; so is having no roots at all.
pub fn load_roots(source: Option<&RootSource>) -> Result<Vec<u8>, Error> {
    let Some(source) = source else {
        return Err(Error::Config(format!(
            "no CA certificates for TLS: none of {} exists; install the distribution's \
             ca-certificates package, or point SSL_CERT_FILE or AWS_CA_BUNDLE at a PEM bundle",
            SYSTEM_BUNDLES.join(", ")
        )));
    };
    let label = source.origin.label();
    let shown = Path::new(&source.path).display().to_string();
    let unreadable = |path: &Path, e: &dyn std::fmt::Display| {
        Error::Config(format!(
            "{label} names '{}', which cannot be read ({e}); point it at a PEM file of CA \
             certificates or unset it",
            path.display()
        ))
    };
    let mut pem = Vec::new();
    let mut count = 0;
    if source.origin == RootSetting::SslCertDir {
        // OpenSSL's hashed directories hold each certificate under two names; read each once.
        let mut seen = std::collections::BTreeSet::new();
        for dir in std::env::split_paths(&source.path) {
            let entries = std::fs::read_dir(&dir).map_err(|e| unreadable(&dir, &e))?;
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(real) = std::fs::canonicalize(&path) else {
                    continue;
                };
                if !real.is_file() || !seen.insert(real.clone()) {
                    continue;
                }
                if let Ok(Some(bytes)) = bounded_read::read_now(&real, ROOTS_CAP) {
                    let (p, n) = usable_pem(&bytes);
                    pem.extend_from_slice(&p);
                    count += n;
                }
            }
        }
    } else {
        let path = PathBuf::from(&source.path);
        // Opened non-blocking and checked to be a regular file, so a FIFO is refused at once.
        let bytes = match bounded_read::read_now(&path, ROOTS_CAP) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                let gone = std::io::Error::from(nix::errno::Errno::ENOENT);
                return Err(unreadable(&path, &gone));
            }
            Err(e) => return Err(unreadable(&path, &e)),
        };
        (pem, count) = usable_pem(&bytes);
    }
    if count == 0 {
        return Err(Error::Config(format!(
            "{label} names '{shown}', which holds no PEM certificate; point it at a PEM file of \
             CA certificates or unset it"
        )));
    }
    Ok(pem)
}

/// ring with X25519MLKEM768 offered first (aws/tls_pq.rs).
fn crypto_mode() -> CryptoMode {
    CryptoMode::Custom(super::tls_pq::provider())
}

/// The HTTP client for every AWS call: TLS with `roots`, proxies from `proxies`. Nothing is
/// read until the first connection is made.
pub fn https_client(roots: Option<RootSource>, proxies: Proxies) -> SharedHttpClient {
    SharedHttpClient::new(Lazy(Arc::new(LazyInner {
        roots,
        proxies,
        plain: false,
        built: OnceLock::new(),
    })))
}

/// The client for a plain-http Secrets Manager endpoint: no TLS, no certificate read.
pub fn http_client(proxies: Proxies) -> SharedHttpClient {
    SharedHttpClient::new(Lazy(Arc::new(LazyInner {
        roots: None,
        proxies,
        plain: true,
        built: OnceLock::new(),
    })))
}

#[derive(Clone, Debug)]
struct Lazy(Arc<LazyInner>);

#[derive(Debug)]
struct LazyInner {
    roots: Option<RootSource>,
    proxies: Proxies,
    plain: bool,
    built: OnceLock<Result<SharedHttpClient, Arc<str>>>,
}

impl LazyInner {
    fn build(&self) -> Result<SharedHttpClient, Arc<str>> {
        let proxies = self.proxies.clone();
        if self.plain {
            let proxy = proxies.for_http();
            return Ok(
                Builder::new().build_with_connector_fn(move |settings, components| {
                    connector_builder(settings, components)
                        .proxy_config(proxy.clone())
                        .build_http()
                }),
            );
        }
        let pem = load_roots(self.roots.as_ref()).map_err(|e| Arc::from(e.to_string()))?;
        let context = TlsContext::builder()
            .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
            .build()
            .map_err(|e| Arc::from(format!("cannot set up TLS: {e}")))?;
        let proxy = proxies.for_https();
        Ok(
            Builder::new().build_with_connector_fn(move |settings, components| {
                connector_builder(settings, components)
                    .proxy_config(proxy.clone())
                    .tls_provider(tls::Provider::Rustls(crypto_mode()))
                    .tls_context(context.clone())
                    .build()
            }),
        )
    }
}

fn connector_builder(
    settings: Option<&HttpConnectorSettings>,
    components: Option<&RuntimeComponents>,
) -> aws_smithy_http_client::ConnectorBuilder {
    let mut b = Connector::builder();
    b.set_connector_settings(settings.cloned());
    if let Some(c) = components {
        b.set_sleep_impl(c.sleep_impl());
    }
    b
}

impl HttpClient for Lazy {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        match self.0.built.get_or_init(|| self.0.build()) {
            Ok(client) => SharedHttpConnector::new(Diagnose {
                inner: client.http_connector(settings, components),
                shared: self.0.clone(),
            }),
            Err(msg) => SharedHttpConnector::new(Refuse(msg.clone())),
        }
    }
}

/// Fails every request with the roots' configuration error (not retried).
#[derive(Debug)]
struct Refuse(Arc<str>);

impl HttpConnector for Refuse {
    fn call(&self, _: HttpRequest) -> HttpConnectorFuture {
        let err = RootsUnusable(self.0.clone());
        HttpConnectorFuture::ready(Err(ConnectorError::user(Box::new(err))))
    }
}

/// Turns certificate failures into `CertRejected` (not retried) and names the proxy a failed
/// connection went through.
#[derive(Debug)]
struct Diagnose {
    inner: SharedHttpConnector,
    shared: Arc<LazyInner>,
}

impl HttpConnector for Diagnose {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let uri: Option<http::Uri> = request.uri().parse().ok();
        let host = uri
            .as_ref()
            .and_then(|u| u.host())
            .unwrap_or_default()
            .to_string();
        let via = uri
            .as_ref()
            .and_then(|u| self.shared.proxies.route(u))
            .map(|p| (p.shown.clone(), p.var));
        let call = self.inner.call(request);
        HttpConnectorFuture::new(async move {
            call.await.map_err(|e| {
                if let Some(reason) = cert_reason(&e) {
                    return ConnectorError::other(Box::new(CertRejected { host, reason }), None);
                }
                match via {
                    Some((proxy, var)) if e.is_io() || e.is_timeout() => {
                        let timeout = e.is_timeout();
                        let wrapped = Box::new(ProxyFailed {
                            proxy,
                            var,
                            source: Box::new(e),
                        });
                        if timeout {
                            ConnectorError::timeout(wrapped)
                        } else {
                            ConnectorError::io(wrapped)
                        }
                    }
                    _ => e,
                }
            })
        })
    }
}

/// Every error in a chain, looking inside `io::Error`s (hyper-rustls nests rustls' error there,
/// and `io::Error::source` skips it).
fn chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |e| match e.downcast_ref::<std::io::Error>() {
        Some(io) => io
            .get_ref()
            .map(|inner| inner as &(dyn std::error::Error + 'static)),
        None => e.source(),
    })
}

/// Why a server certificate was refused, when that is what failed.
fn cert_reason(err: &(dyn std::error::Error + 'static)) -> Option<Reason> {
    chain(err).find_map(|e| match e.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidCertificate(c) => Some(match c {
            CertificateError::UnknownIssuer => Reason::UnknownIssuer,
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => Reason::Expired,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Reason::WrongName
            }
            CertificateError::Revoked => Reason::Other("revoked"),
            CertificateError::BadSignature => Reason::Other("bad signature"),
            CertificateError::BadEncoding => Reason::Other("malformed"),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                Reason::Other("not for server authentication")
            }
            _ => Reason::Other("rejected by the TLS library"),
        }),
        _ => None,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    UnknownIssuer,
    Expired,
    WrongName,
    /// A fixed phrase: the library's own rendering is a `Debug` dump.
    Other(&'static str),
}

/// A server's certificate was refused. Not retried: it will not change within a run.
#[derive(Debug)]
pub struct CertRejected {
    pub host: String,
    pub reason: Reason,
}

impl std::fmt::Display for CertRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (why, fix) = match &self.reason {
            Reason::UnknownIssuer => (
                "it is signed by an unknown issuer".to_string(),
                "if a TLS-inspecting proxy or a private CA signs it, give that CA's certificate \
                 with AWS_CA_BUNDLE=/path/ca.pem (or SSL_CERT_FILE, or ca_bundle in the profile)",
            ),
            Reason::Expired => (
                "it has expired or is not yet valid".to_string(),
                "check the system clock and the server's certificate; AWS_CA_BUNDLE or \
                 SSL_CERT_FILE set the trusted CAs",
            ),
            Reason::WrongName => (
                format!("it is not valid for the name '{}'", self.host),
                "check the endpoint URL (--endpoint-url, AWS_ENDPOINT_URL) names the host the \
                 certificate is for; AWS_CA_BUNDLE or SSL_CERT_FILE set the trusted CAs",
            ),
            Reason::Other(r) => (
                format!("it is invalid ({r})"),
                "check the server's certificate; AWS_CA_BUNDLE or SSL_CERT_FILE set the \
                 trusted CAs",
            ),
        };
        write!(
            f,
            "the TLS certificate of {} is not trusted: {why}; {fix}",
            self.host
        )
    }
}

impl std::error::Error for CertRejected {}

/// The trust roots could not be read (the message says which setting and what to do).
#[derive(Debug)]
pub struct RootsUnusable(Arc<str>);

impl std::fmt::Display for RootsUnusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RootsUnusable {}

/// The program error for a transport failure this module diagnosed, if `err`'s chain holds one:
/// certificate and root problems are configuration (78), a proxy failure is unavailable (69).
pub fn transport_error(err: &(dyn std::error::Error + 'static)) -> Option<Transport> {
    chain(err).find_map(|e| {
        if let Some(c) = e.downcast_ref::<CertRejected>() {
            return Some(Transport::Certificate(c.to_string()));
        }
        if let Some(r) = e.downcast_ref::<RootsUnusable>() {
            return Some(Transport::Certificate(r.to_string()));
        }
        let p = e.downcast_ref::<ProxyFailed>()?;
        let cause = chain(&*p.source)
            .last()
            .map(|c| c.to_string())
            .unwrap_or_default();
        Some(Transport::Proxy(format!(
            "cannot connect through the proxy {} (from {}): {cause}; check that the proxy \
             is running, or list the host in NO_PROXY",
            p.proxy, p.var
        )))
    })
}

/// A transport failure that says more than "the call failed": the caller turns it into its own
/// error class (a certificate problem is configuration, 78; a dead proxy is unavailable, 69).
#[derive(Debug)]
pub enum Transport {
    Certificate(String),
    Proxy(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_found_wins() {
        let all_exist = |_: &Path| true;
        let none_exist = |_: &Path| false;
        let o = |s: &str| Some(OsString::from(s));
        let rows: &[(
            Option<OsString>,
            Option<&str>,
            Option<OsString>,
            Option<OsString>,
            bool,
            Option<(RootSetting, &str)>,
        )] = &[
            (
                o("/a"),
                Some("/p"),
                o("/f"),
                o("/d"),
                true,
                Some((RootSetting::AwsCaBundle, "/a")),
            ),
            (
                o(""),
                Some("/p"),
                o("/f"),
                o("/d"),
                true,
                Some((RootSetting::ProfileCaBundle, "/p")),
            ),
            (
                None,
                Some(" "),
                o("/f"),
                o("/d"),
                true,
                Some((RootSetting::SslCertFile, "/f")),
            ),
            (
                None,
                None,
                None,
                o("/d"),
                true,
                Some((RootSetting::SslCertDir, "/d")),
            ),
            (
                None,
                None,
                None,
                None,
                true,
                Some((RootSetting::System, SYSTEM_BUNDLES[0])),
            ),
            (None, None, None, None, false, None),
        ];
        for (aws, profile, file, dir, exists, want) in rows {
            let got = root_source(
                aws.as_deref(),
                *profile,
                file.as_deref(),
                dir.as_deref(),
                |p| if *exists { all_exist(p) } else { none_exist(p) },
            );
            let want = want.map(|(origin, p)| RootSource {
                origin,
                path: OsString::from(p),
            });
            assert_eq!(got, want, "{aws:?} {profile:?} {file:?} {dir:?}");
        }
    }

    #[test]
    fn named_files_that_hold_no_certificate_are_78() {
        let dir = crate::scratch::Scratch::new("tls-unit");
        let empty = dir.file("empty.pem", "");
        let junk = dir.file(
            "junk.pem",
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        );
        for (origin, path) in [
            (RootSetting::AwsCaBundle, dir.join("missing.pem")),
            (RootSetting::ProfileCaBundle, empty.clone()),
            (RootSetting::SslCertFile, junk.clone()),
            (RootSetting::SslCertDir, dir.join("missing-dir")),
        ] {
            let src = RootSource {
                origin,
                path: path.clone().into_os_string(),
            };
            let err = load_roots(Some(&src)).unwrap_err();
            assert_eq!(err.exit_code(), 78, "{origin:?}");
            let msg = err.to_string();
            assert!(msg.contains(origin.label()), "{msg}");
            assert!(msg.contains(&*path.to_string_lossy()), "{msg}");
        }
        assert_eq!(load_roots(None).unwrap_err().exit_code(), 78);
    }

    #[test]
    fn usable_pem_skips_what_is_not_a_certificate() {
        let (out, n) = usable_pem(
            b"# comment\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n\
              -----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n\
              -----BEGIN CERTIFICATE-----\nunterminated",
        );
        assert_eq!((out.len(), n), (0, 0));
    }

    #[test]
    fn cert_messages_name_host_reason_and_fix() {
        for (reason, words) in [
            (
                Reason::UnknownIssuer,
                &["unknown issuer", "AWS_CA_BUNDLE"][..],
            ),
            (Reason::Expired, &["expired", "clock"][..]),
            (
                Reason::WrongName,
                &["not valid for the name 'h.example'", "--endpoint-url"][..],
            ),
        ] {
            let e = CertRejected {
                host: "h.example".into(),
                reason,
            };
            let Some(Transport::Certificate(msg)) = transport_error(&e) else {
                panic!("not a certificate failure: {e}");
            };
            assert!(msg.contains("h.example"), "{msg}");
            for w in words {
                assert!(msg.contains(w), "{msg} lacks {w}");
            }
        }
    }

    #[test]
    fn rustls_errors_inside_io_errors_are_found() {
        let inner = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::other(inner);
        assert_eq!(cert_reason(&io), Some(Reason::UnknownIssuer));
        let plain = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(cert_reason(&plain), None);
        assert!(transport_error(&plain).is_none());
    }

    #[test]
    fn proxy_failures_name_the_proxy() {
        let e = ProxyFailed {
            proxy: "http://127.0.0.1:9".into(),
            var: "HTTPS_PROXY",
            source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        };
        let Some(Transport::Proxy(msg)) = transport_error(&e) else {
            panic!("not a proxy failure");
        };
        assert!(
            msg.contains("http://127.0.0.1:9") && msg.contains("HTTPS_PROXY"),
            "{msg}"
        );
    }
}
