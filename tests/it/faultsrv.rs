//! A fault-injecting HTTP/1.1 proxy on loopback, in front of the shared moto server: per request
//! a rule picks forward, throttle, 500, stall, reset, truncated or non-JSON body, or deny; every
//! request is counted per Secrets Manager action, its User-Agent headers are kept, and tests can
//! wait until one has arrived.

use crate::loopback::{ask_moto, header, listen, read_body, read_head};
use crate::support::{HANG, Out, Run, TempDir, se, wait_stderr_out};
use nix::sys::signal::Signal;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What the proxy does with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Pass it to moto and relay the answer.
    Forward,
    /// HTTP 400 `ThrottlingException`, the code the SDK's standard retry treats as transient.
    Throttle,
    /// HTTP 500 `InternalServiceError`.
    ServerError,
    /// Keep the connection open and never answer.
    Stall,
    /// Close with unread data in the receive buffer, which makes the kernel send RST.
    Reset,
    /// 200 whose Content-Length promises more than is sent before the connection closes.
    Truncated,
    /// 200 with a complete body that is not JSON.
    NotJson,
    /// HTTP 400 `AccessDeniedException`, as IAM answers an action the policy lacks.
    Deny,
    /// HTTP 400 with this error code.
    Code(&'static str),
    /// Pass it to moto, but answer as if AWSCURRENT sat on a version GetSecretValue does not
    /// return: DescribeSecret's `VersionIdsToStages` names a made-up one (an endpoint lagging
    /// behind a stage move, or a misbehaving one).
    StaleCurrent,
}

/// The version [`Reply::StaleCurrent`] puts AWSCURRENT on.
const STALE_VERSION: &str = "00000000-0000-4000-8000-5ta1e0000000";

type Rule = dyn Fn(&str, usize) -> Reply + Send + Sync;

/// The attribution headers of one request, as the server received them.
#[derive(Clone, Debug)]
pub struct Seen {
    pub action: String,
    pub user_agent: String,
    pub x_amz_user_agent: String,
}

struct Shared {
    counts: Mutex<HashMap<String, usize>>,
    seen: Mutex<Vec<Seen>>,
    arrived: Condvar,
    rule: Box<Rule>,
}

pub struct FaultServer {
    pub endpoint: String,
    shared: Arc<Shared>,
}

impl FaultServer {
    /// Starts a proxy whose `rule(action, nth)` (nth counts from 1 per action) decides each reply.
    pub fn start(rule: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> FaultServer {
        let shared = Arc::new(Shared {
            counts: Mutex::new(HashMap::new()),
            seen: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            rule: Box::new(rule),
        });
        let s = shared.clone();
        let port = listen("127.0.0.1", move |conn| serve(conn, &s));
        FaultServer {
            endpoint: format!("http://127.0.0.1:{port}"),
            shared,
        }
    }

    /// A proxy that answers the first `first` requests for `action` with `reply` (`usize::MAX`:
    /// all of them) and forwards everything else.
    pub fn failing(action: &'static str, first: usize, reply: Reply) -> FaultServer {
        FaultServer::start(move |a, nth| {
            if a == action && nth <= first {
                reply
            } else {
                Reply::Forward
            }
        })
    }

    /// A run of secret-exec pointed at this proxy instead of moto.
    pub fn se(&self) -> Run {
        se().env("AWS_ENDPOINT_URL", &self.endpoint)
    }

    /// Requests seen so far for `action` (e.g. "GetSecretValue"); `"<action> ids"` counts the
    /// ids those requests listed in `SecretIdList` (or, for Parameter Store, `Names`);
    /// `"<action> <id>"` those naming `SecretId` id.
    pub fn count(&self, action: &str) -> usize {
        self.shared
            .counts
            .lock()
            .unwrap()
            .get(action)
            .copied()
            .unwrap_or(0)
    }

    /// The User-Agent headers of every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Blocks until `n` requests for `action` have arrived, or `limit` passes; true if they did.
    pub fn wait_for(&self, action: &str, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut counts = self.shared.counts.lock().unwrap();
        while counts.get(action).copied().unwrap_or(0) < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            counts = self.shared.arrived.wait_timeout(counts, left).unwrap().0;
        }
        true
    }
}

impl FaultServer {
    /// Launches secret-exec through this server with `--secret secret` and a COMMAND that
    /// touches a marker file; once its first GetSecretValue has arrived, sends `sig`, calls
    /// `then` (to let a held request through, say) and waits for the exit, failing the test
    /// if that takes `limit`. Returns the run and whether COMMAND ran.
    pub fn signal_while_fetching(
        &self,
        secret: &str,
        sig: Signal,
        then: impl FnOnce(),
        limit: Duration,
    ) -> (Out, bool) {
        let dir = TempDir::new("sig");
        let marker = dir.path().join("ran");
        let mut child = self
            .se()
            .args([
                "--timeout",
                "50s",
                "--secret",
                secret,
                "--",
                "/usr/bin/touch",
            ])
            .arg_path(&marker)
            .cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        assert!(
            self.wait_for("GetSecretValue", 1, HANG),
            "secret-exec never reached the server"
        );
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        let start = Instant::now();
        then();
        let out = wait_stderr_out(&mut child, start, limit, || format!("ignored {sig}"));
        (out, marker.exists())
    }
}

struct Request {
    head: String,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        header(&self.head, name)
    }
    fn action(&self) -> String {
        self.header("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown")
            .to_string()
    }
}

fn respond(conn: &mut TcpStream, status: &str, body: &[u8]) {
    let json = [("Content-Type", "application/x-amz-json-1.1")];
    crate::loopback::respond(conn, status, &json, body);
}

fn aws_error(conn: &mut TcpStream, status: &str, code: &str, message: &str) {
    let body = serde_json::json!({"__type": code, "message": message}).to_string();
    respond(conn, status, body.as_bytes());
}

/// One request per connection: every reply says `Connection: close`, so the client never reuses
/// a socket this proxy might be about to stall or reset.
fn serve(mut conn: TcpStream, shared: &Shared) {
    // The head only, so the body is still unread when a rule wants to reset the connection.
    let Some(head) = read_head(&mut conn) else {
        return;
    };
    let mut req = Request {
        head,
        body: Vec::new(),
    };
    let action = req.action();
    shared.seen.lock().unwrap().push(Seen {
        action: action.clone(),
        user_agent: req.header("user-agent").unwrap_or("").to_string(),
        x_amz_user_agent: req.header("x-amz-user-agent").unwrap_or("").to_string(),
    });
    let nth = {
        let mut counts = shared.counts.lock().unwrap();
        let c = counts.entry(action.clone()).or_insert(0);
        *c += 1;
        *c
    };
    shared.arrived.notify_all();
    let reply = (shared.rule)(&action, nth);
    if reply == Reply::Reset {
        // The body is still unread: closing now makes the kernel answer with RST, not FIN.
        return;
    }
    let Some(body) = read_body(&mut conn, &req.head) else {
        return;
    };
    req.body = body;
    if let Ok(body) = serde_json::from_slice::<serde_json::Value>(&req.body) {
        let mut counts = shared.counts.lock().unwrap();
        if let Some(ids) = body["SecretIdList"]
            .as_array()
            .or_else(|| body["Names"].as_array())
        {
            *counts.entry(format!("{action} ids")).or_insert(0) += ids.len();
        }
        if let Some(id) = body["SecretId"].as_str() {
            *counts.entry(format!("{action} {id}")).or_insert(0) += 1;
        }
    }
    match reply {
        Reply::Forward => forward(&mut conn, &req, false),
        Reply::StaleCurrent => forward(&mut conn, &req, true),
        Reply::Throttle => aws_error(
            &mut conn,
            "400 Bad Request",
            "ThrottlingException",
            "Rate exceeded",
        ),
        Reply::ServerError => aws_error(
            &mut conn,
            "500 Internal Server Error",
            "InternalServiceError",
            "injected failure",
        ),
        Reply::Deny => aws_error(
            &mut conn,
            "400 Bad Request",
            "AccessDeniedException",
            &format!("User is not authorized to perform: secretsmanager:{action}"),
        ),
        Reply::Code(code) => aws_error(&mut conn, "400 Bad Request", code, "injected error"),
        Reply::Stall => {
            // Hold the socket until the client gives up and closes it.
            let mut sink = Vec::new();
            let _ = conn.read_to_end(&mut sink);
        }
        Reply::Truncated => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n\
                        Content-Length: 400\r\nConnection: close\r\n\r\n";
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(br#"{"ARN":"arn:aws:secretsmanager:us-east-1:1:secret:x","Na"#);
        }
        Reply::NotJson => respond(
            &mut conn,
            "200 OK",
            b"<html><body>Service Unavailable</body></html>",
        ),
        Reply::Reset => unreachable!("handled before the body was read"),
    }
}

/// Relays the request to moto and passes its status and body back; `stale`: see
/// [`Reply::StaleCurrent`].
fn forward(conn: &mut TcpStream, req: &Request, stale: bool) {
    let Some(resp) = ask_moto(&req.head, &req.body) else {
        return respond(conn, "502 Bad Gateway", b"{}");
    };
    let Some(split) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        return respond(conn, "502 Bad Gateway", b"{}");
    };
    let status_line = String::from_utf8_lossy(&resp[..split]);
    let status = status_line
        .lines()
        .next()
        .and_then(|l| l.split_once(' '))
        .map(|(_, s)| s.to_string())
        .unwrap_or_else(|| "502 Bad Gateway".into());
    let body = &resp[split + 4..];
    if stale
        && let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body)
        && v.get("VersionIdsToStages").is_some()
    {
        v["VersionIdsToStages"] = serde_json::json!({ STALE_VERSION: ["AWSCURRENT"] });
        return respond(conn, &status, v.to_string().as_bytes());
    }
    respond(conn, &status, body);
}
