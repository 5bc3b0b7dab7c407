//! TLS, private CAs and proxies end to end: a second moto server speaking TLS with a throwaway
//! CA made by openssl, another CA that did not sign it, and a CONNECT proxy on loopback that
//! counts the tunnels it opens (so "not retried" and "bypassed" are counted, not timed); and a
//! rustls server in front of moto that records the key exchange each handshake negotiated.

use crate::loopback::{ask_moto, listen, read_body, read_head, respond};
use crate::support::{
    REGION, TempDir, aws_json, free_port, http, moto, plain, se, serve_moto, unique,
};
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

struct Pki {
    _dir: TempDir,
    ca: PathBuf,
    other_ca: PathBuf,
    empty: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

/// A CA, a server certificate it signed for IP 127.0.0.1 only (so `localhost` is the wrong
/// name), and a second CA that signed nothing the server shows.
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = TempDir::new("tls-pki");
        let d = dir.path();
        make_ca(d, "ca");
        make_ca(d, "other-ca");
        std::fs::write(d.join("san.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "san.cnf",
                "-out",
                "server.pem",
            ],
        );
        std::fs::write(d.join("empty.pem"), "").unwrap();
        Pki {
            ca: d.join("ca.pem"),
            other_ca: d.join("other-ca.pem"),
            empty: d.join("empty.pem"),
            _dir: dir,
        }
    })
}

/// Opens a TLS connection to a loopback port with a test-side rustls client that trusts `ca`,
/// for `support::http`.
fn tls_to(ca: &Path) -> impl FnOnce(u16) -> std::io::Result<TlsStream> + '_ {
    move |port| {
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(ca)?;
        for cert in
            <rustls_pki_types::CertificateDer as rustls_pki_types::pem::PemObject>::pem_slice_iter(
                &pem,
            )
        {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(crypto()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn =
            rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
        Ok(rustls::StreamOwned::new(conn, plain(port)?))
    }
}

/// The tests' own TLS clients and servers: rustls with graviola, an implementation of
/// X25519MLKEM768 independent of secret-exec's (ring with ML-KEM-768 from RustCrypto), so a
/// handshake between them shows the two interoperate.
fn crypto() -> rustls::crypto::CryptoProvider {
    rustls_graviola::default_provider()
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A moto server speaking TLS with the test CA's server certificate.
fn tls_moto() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let p = pki();
        let dir = p.ca.parent().unwrap();
        let ca = p.ca.clone();
        let args = vec![
            "-c".into(),
            dir.join("server.pem").into(),
            "-k".into(),
            dir.join("server.key").into(),
        ];
        serve_moto(args, move |port| {
            matches!(
                http(tls_to(&ca), port, "GET", "/moto-api/data.json", &[], ""),
                Ok((200, _))
            )
        })
    })
}

/// Creates a secret on the TLS moto; returns its name.
fn tls_secret(value: &str) -> String {
    let name = unique("tls");
    let send = |h: &[(&str, &str)], b: &str| http(tls_to(&pki().ca), tls_moto(), "POST", "/", h, b);
    aws_json(
        send,
        ("secretsmanager", "secretsmanager", REGION),
        "CreateSecret",
        &serde_json::json!({"Name": name, "SecretString": value}),
    );
    name
}

/// A run against the TLS moto at `host` (127.0.0.1, or localhost for the wrong-name case).
fn over_tls(host: &str, name: &str) -> crate::support::Run {
    se().env("AWS_ENDPOINT_URL", format!("https://{host}:{}", tls_moto()))
        .args([
            "--timeout",
            "20",
            "--secret",
            &format!("V={name}"),
            "--",
            "/usr/bin/env",
            "-0",
        ])
}

/// A CONNECT proxy on loopback that records every tunnel's target.
struct ConnectProxy {
    url: String,
    tunnels: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    fn start() -> ConnectProxy {
        let tunnels = Arc::new(Mutex::new(Vec::new()));
        let t = tunnels.clone();
        let port = listen("127.0.0.1", move |conn| tunnel(conn, &t));
        ConnectProxy {
            url: format!("http://127.0.0.1:{port}"),
            tunnels,
        }
    }
    fn tunnels(&self) -> Vec<String> {
        self.tunnels.lock().unwrap().clone()
    }
}

fn tunnel(mut client: TcpStream, log: &Mutex<Vec<String>>) {
    let Some(head) = read_head(&mut client) else {
        return;
    };
    let mut words = head.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (words.next(), words.next()) else {
        let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    log.lock().unwrap().push(target.to_string());
    let Ok(upstream) = TcpStream::connect(target) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let mut upstream = upstream;
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut u2);
        let _ = u2.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut upstream, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}

#[test]
fn private_ca_is_trusted_the_aws_way() {
    let name = tls_secret("over-tls");
    let dir = TempDir::new("tls-profile");
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!("[default]\nca_bundle = {}\n", pki().ca.display()),
    )
    .unwrap();
    let runs = [
        (
            "AWS_CA_BUNDLE",
            over_tls("127.0.0.1", &name).env("AWS_CA_BUNDLE", &pki().ca),
        ),
        (
            "profile ca_bundle",
            over_tls("127.0.0.1", &name).env("AWS_CONFIG_FILE", &config),
        ),
        (
            "SSL_CERT_FILE",
            over_tls("127.0.0.1", &name).env("SSL_CERT_FILE", &pki().ca),
        ),
        // AWS_CA_BUNDLE wins over a profile bundle that would not do.
        (
            "AWS_CA_BUNDLE over profile",
            over_tls("127.0.0.1", &name)
                .env("AWS_CA_BUNDLE", &pki().ca)
                .env("SSL_CERT_FILE", &pki().other_ca),
        ),
    ];
    for (what, run) in runs {
        let out = run.run();
        assert_eq!(out.code(), Some(0), "{what}: {}", out.stderr);
        out.assert_vars(&[("V", "over-tls")]);
    }
}

#[test]
fn missing_or_empty_bundle_is_78_naming_it() {
    let name = tls_secret("x");
    let missing = pki().ca.with_file_name("no-such.pem");
    for (var, path) in [
        ("AWS_CA_BUNDLE", &missing),
        ("AWS_CA_BUNDLE", &pki().empty),
        ("SSL_CERT_FILE", &pki().empty),
    ] {
        let out = over_tls("127.0.0.1", &name).env(var, path).run();
        assert_eq!(out.code(), Some(78), "{var}: {}", out.stderr);
        out.assert_stderr_has(var);
        out.assert_stderr_has(&path.to_string_lossy());
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
}

#[test]
fn plain_http_endpoints_read_no_certificate() {
    let m = crate::support::moto();
    let name = unique("plain");
    m.create(&name, "plain-value");
    let out = se()
        .env("AWS_CA_BUNDLE", "/nonexistent/ca.pem")
        .run_env0(&format!("V={name}"));
    out.assert_ok_vars(&[("V", "plain-value")]);
}

/// `over_tls` to 127.0.0.1 trusting `ca`, through a fresh CONNECT proxy named in `var`;
/// returns the proxy, for its tunnels, and the run.
fn via_proxy(name: &str, ca: &Path, var: &str) -> (ConnectProxy, crate::support::Run) {
    let proxy = ConnectProxy::start();
    let run = over_tls("127.0.0.1", name)
        .env("AWS_CA_BUNDLE", ca)
        .env(var, &proxy.url);
    (proxy, run)
}

/// Asserts that `proxy` carried at least one tunnel and only to the TLS moto.
#[track_caller]
fn assert_tunnels_to_tls_moto(proxy: &ConnectProxy, label: &str) {
    let want = format!("127.0.0.1:{}", tls_moto());
    let tunnels = proxy.tunnels();
    assert!(!tunnels.is_empty(), "{label}: no tunnel");
    assert!(tunnels.iter().all(|t| *t == want), "{label}: {tunnels:?}");
}

#[test]
fn untrusted_certificate_is_78_once_naming_host_reason_and_fix() {
    let name = tls_secret("x");
    let (proxy, run) = via_proxy(&name, &pki().other_ca, "HTTPS_PROXY");
    let out = run.args(["--max-attempts", "3"]).run();
    out.assert_code(78);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    for want in ["127.0.0.1", "unknown issuer", "AWS_CA_BUNDLE"] {
        assert!(out.stderr.contains(want), "{want}: {}", out.stderr);
    }
    // Counted at the proxy: one connection, not one per attempt.
    assert_eq!(proxy.tunnels().len(), 1, "{:?}", proxy.tunnels());
}

#[test]
fn certificate_for_another_name_is_78() {
    let name = tls_secret("x");
    let out = over_tls("localhost", &name)
        .env("AWS_CA_BUNDLE", &pki().ca)
        .run();
    out.assert_code(78);
    out.assert_stderr_has("not valid for the name 'localhost'");
}

#[test]
fn https_goes_through_the_connect_proxy_in_either_case() {
    let name = tls_secret("via-proxy");
    for var in ["HTTPS_PROXY", "https_proxy"] {
        let (proxy, run) = via_proxy(&name, &pki().ca, var);
        let out = run.run();
        assert_eq!(out.code(), Some(0), "{var}: {}", out.stderr);
        out.assert_vars(&[("V", "via-proxy")]);
        assert_tunnels_to_tls_moto(&proxy, var);
    }
}

#[test]
fn no_proxy_bypasses_the_proxy() {
    let name = tls_secret("direct");
    let (proxy, run) = via_proxy(&name, &pki().ca, "HTTPS_PROXY");
    let out = run.env("NO_PROXY", "example.com,127.0.0.1").run();
    out.assert_ok_vars(&[("V", "direct")]);
    assert_eq!(proxy.tunnels(), Vec::<String>::new());
}

/// `*` means every host, an endpoint given by IP address (127.0.0.1 here) included, in either
/// spelling of the variable.
#[test]
fn no_proxy_star_bypasses_an_endpoint_given_by_address() {
    let name = tls_secret("star");
    for var in ["NO_PROXY", "no_proxy"] {
        let (proxy, run) = via_proxy(&name, &pki().ca, "HTTPS_PROXY");
        let out = run.env(var, "*").run();
        assert_eq!(out.code(), Some(0), "{var}=*: {}", out.stderr);
        out.assert_vars(&[("V", "star")]);
        assert_eq!(proxy.tunnels(), Vec::<String>::new(), "{var}=*");
    }
}

#[test]
fn dead_proxy_is_69_naming_it_without_credentials() {
    let name = tls_secret("x");
    let port = free_port();
    let out = over_tls("127.0.0.1", &name)
        .env("AWS_CA_BUNDLE", &pki().ca)
        .env(
            "HTTPS_PROXY",
            format!("http://user:hunter2@127.0.0.1:{port}"),
        )
        .run();
    out.assert_code(69);
    assert!(
        out.stderr.contains(&format!("http://127.0.0.1:{port}"))
            && out.stderr.contains("HTTPS_PROXY"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

#[test]
fn malformed_proxy_is_78() {
    for (var, value) in [
        ("HTTPS_PROXY", "http://127.0.0.1:notaport"),
        ("https_proxy", "socks5://127.0.0.1:1080"),
        ("HTTP_PROXY", "http://"),
    ] {
        let out = se().env(var, value).fetch_only("any").run();
        assert_eq!(out.code(), Some(78), "{var}={value}: {}", out.stderr);
        out.assert_stderr_has(var);
    }
}

/// A container credentials endpoint (as ECS serves at AWS_CONTAINER_CREDENTIALS_FULL_URI) that
/// counts the requests reaching it directly. On 127.0.0.2 (loopback too, so the SDK accepts it):
/// its host is put in NO_PROXY, and Secrets Manager on 127.0.0.1 must still use the proxy.
fn container_credentials() -> (String, Arc<Mutex<usize>>) {
    let hits = Arc::new(Mutex::new(0));
    let h = hits.clone();
    let port = listen("127.0.0.2", move |mut conn| {
        let _ = read_head(&mut conn);
        *h.lock().unwrap() += 1;
        let body = r#"{"AccessKeyId":"AKIDCONTAINER","SecretAccessKey":"container-secret","Token":"container-token","Expiration":"2099-01-01T00:00:00Z"}"#;
        let json = [("Content-Type", "application/json")];
        respond(&mut conn, "200 OK", &json, body.as_bytes());
    });
    (format!("http://127.0.0.2:{port}/creds"), hits)
}

#[test]
fn credential_endpoints_bypass_the_proxy() {
    let name = tls_secret("container-role");
    let (proxy, run) = via_proxy(&name, &pki().ca, "HTTPS_PROXY");
    let (creds_url, hits) = container_credentials();
    let out = run
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &creds_url)
        .env("HTTP_PROXY", &proxy.url)
        .run();
    out.assert_ok_vars(&[("V", "container-role")]);
    assert!(
        *hits.lock().unwrap() >= 1,
        "the credentials endpoint was not asked"
    );
    assert_tunnels_to_tls_moto(&proxy, "with container credentials");
}

#[test]
fn sts_for_web_identity_uses_the_same_trust_roots() {
    let name = tls_secret("irsa");
    let dir = TempDir::new("tls-irsa");
    let token = dir.path().join("token");
    std::fs::write(&token, "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl").unwrap();
    let run = |ca: &Path| {
        over_tls("127.0.0.1", &name)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token)
            .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/tls-test")
            .env("AWS_ROLE_SESSION_NAME", "tls-test")
            .env("AWS_CA_BUNDLE", ca)
            .run()
    };
    let out = run(&pki().ca);
    out.assert_ok_vars(&[("V", "irsa")]);
    // The STS call is the first over TLS: with the wrong CA it is the one that fails, as a
    // certificate problem (78), not as "invalid credentials" (77).
    let out = run(&pki().other_ca);
    out.assert_code(78);
    out.assert_stderr_has("unknown issuer");
    out.assert_stderr_has("credentials");
}

/// What the TLS server in front of moto saw of one handshake.
#[derive(Clone, Debug, PartialEq)]
struct Handshake {
    group: Option<rustls::NamedGroup>,
    hello_retry: bool,
}

/// A rustls server with the same crypto as secret-exec (`crypto()`) but only the key-exchange
/// `groups`, holding the test CA's certificate for 127.0.0.1: it ends TLS, passes each request
/// to the shared plain-http moto, and records every handshake.
struct PqServer {
    port: u16,
    seen: Arc<Mutex<Vec<Handshake>>>,
}

impl PqServer {
    fn start(groups: &[rustls::NamedGroup]) -> PqServer {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let dir = pki().ca.parent().unwrap();
        let certs = CertificateDer::pem_file_iter(dir.join("server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
        let mut provider = crypto();
        provider.kx_groups.retain(|g| groups.contains(&g.name()));
        assert_eq!(provider.kx_groups.len(), groups.len(), "{groups:?}");
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(provider))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let port = listen("127.0.0.1", move |tcp| {
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            // The first read completes the handshake.
            let Some(head) = read_head(&mut tls) else {
                return;
            };
            log.lock().unwrap().push(Handshake {
                group: tls.conn.negotiated_key_exchange_group().map(|g| g.name()),
                hello_retry: tls.conn.handshake_kind()
                    == Some(rustls::HandshakeKind::FullWithHelloRetryRequest),
            });
            let Some(body) = read_body(&mut tls, &head) else {
                return;
            };
            if let Some(reply) = ask_moto(&head, &body) {
                let _ = tls.write_all(&reply);
            }
            tls.conn.send_close_notify();
            let _ = tls.flush();
        });
        PqServer { port, seen }
    }

    /// Fetches one secret through this server; returns every handshake it saw.
    fn fetch(&self) -> Vec<Handshake> {
        let name = unique("pq");
        moto().create(&name, "through-pq");
        let out = se()
            .env(
                "AWS_ENDPOINT_URL",
                format!("https://127.0.0.1:{}", self.port),
            )
            .env("SSL_CERT_FILE", &pki().ca)
            .args(["--timeout", "20", "--secret", &format!("V={name}")])
            .args(["--", "/usr/bin/env", "-0"])
            .run();
        assert_eq!(out.code(), Some(0), "{}", out.stderr);
        out.assert_vars(&[("V", "through-pq")]);
        let seen = self.seen.lock().unwrap().clone();
        assert!(!seen.is_empty(), "no TLS handshake reached the server");
        seen
    }
}

fn all_were(seen: &[Handshake], group: rustls::NamedGroup, hello_retry: bool) {
    let want = Handshake {
        group: Some(group),
        hello_retry,
    };
    assert!(
        seen.iter().all(|h| *h == want),
        "want {want:?}, saw {seen:?}"
    );
}

#[test]
fn hybrid_post_quantum_key_exchange_is_negotiated_without_a_retry() {
    use rustls::NamedGroup as G;
    let server = PqServer::start(&[G::X25519MLKEM768, G::X25519, G::secp256r1, G::secp384r1]);
    all_were(&server.fetch(), G::X25519MLKEM768, false);
}

#[test]
fn classical_only_servers_still_work() {
    use rustls::NamedGroup as G;
    // The X25519 key share is sent beside the hybrid one: no extra round trip.
    let x25519 = PqServer::start(&[G::X25519]);
    all_were(&x25519.fetch(), G::X25519, false);
    // A server that knows neither asks for P-256 with a HelloRetryRequest: one round trip more.
    let p256 = PqServer::start(&[G::secp256r1]);
    all_were(&p256.fetch(), G::secp256r1, true);
}
