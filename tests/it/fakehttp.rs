//! A scripted HTTP/1.1 server on loopback for endpoints no real component can play (ECS/EKS
//! container endpoints, IMDS, the SSO portal), and a recording relay in front of moto. Every
//! request is kept, so tests count and inspect what the binary actually sent.

use crate::support::moto;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub head: String,
    pub body: String,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
    /// The access key id the request was signed with (SigV4 `Credential=`).
    pub fn signed_by(&self) -> Option<&str> {
        let auth = self.header("authorization")?;
        let rest = &auth[auth.find("Credential=")? + "Credential=".len()..];
        rest.split('/').next()
    }
}

/// What a handler answers: status line tail, extra headers, body.
pub struct Reply {
    pub status: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

pub fn reply(status: &'static str, body: impl Into<Vec<u8>>) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.into(),
    }
}

type Handler = dyn Fn(&Req, usize) -> Option<Reply> + Send + Sync;

pub struct FakeHttp {
    pub endpoint: String,
    seen: Arc<Mutex<Vec<Req>>>,
}

impl FakeHttp {
    /// Starts a server whose `handler(request, nth)` (nth counts all requests from 1) answers;
    /// `None` relays the request to moto unchanged.
    pub fn start(
        handler: impl Fn(&Req, usize) -> Option<Reply> + Send + Sync + 'static,
    ) -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake server");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let s = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (s, h) = (s.clone(), handler.clone());
                std::thread::spawn(move || serve(conn, &s, &*h));
            }
        });
        FakeHttp {
            endpoint: format!("http://127.0.0.1:{port}"),
            seen,
        }
    }

    /// A relay to moto that records every request.
    pub fn moto_relay() -> FakeHttp {
        FakeHttp::start(|_, _| None)
    }

    pub fn requests(&self) -> Vec<Req> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests whose method and path start match.
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(path_prefix))
            .count()
    }

    /// The access key ids that signed Secrets Manager calls.
    pub fn secretsmanager_signers(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| {
                r.header("x-amz-target")
                    .is_some_and(|t| t.starts_with("secretsmanager."))
            })
            .filter_map(|r| r.signed_by().map(str::to_string))
            .collect()
    }

    /// STS actions seen (query protocol: `Action=` in the form body).
    pub fn sts_actions(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter_map(|r| {
                r.body
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("Action="))
                    .map(str::to_string)
            })
            .collect()
    }
}

fn read_request(conn: &mut TcpStream) -> Option<(Req, Vec<u8>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut first = head.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let mut req = Req {
        method,
        path,
        head,
        body: String::new(),
    };
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    conn.read_exact(&mut body).ok()?;
    req.body = String::from_utf8_lossy(&body).into_owned();
    Some((req, body))
}

fn serve(mut conn: TcpStream, seen: &Mutex<Vec<Req>>, handler: &Handler) {
    let Some((req, body)) = read_request(&mut conn) else {
        return;
    };
    let nth = {
        let mut s = seen.lock().unwrap();
        s.push(req.clone());
        s.len()
    };
    match handler(&req, nth) {
        Some(r) => {
            let mut head = format!(
                "HTTP/1.1 {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                r.status,
                r.body.len()
            );
            for (k, v) in &r.headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&r.body);
        }
        None => relay(&mut conn, &req, &body),
    }
}

/// Sends the request to moto with `Connection: close` and copies its raw reply back.
fn relay(conn: &mut TcpStream, req: &Req, body: &[u8]) {
    let Ok(mut up) = TcpStream::connect(("127.0.0.1", moto().port)) else {
        return;
    };
    let mut head = String::new();
    for (i, line) in req.head.split("\r\n").enumerate() {
        let name = line.split(':').next().unwrap_or("").trim();
        if line.is_empty() || (i > 0 && name.eq_ignore_ascii_case("connection")) {
            continue;
        }
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut resp = Vec::new();
    if up.write_all(head.as_bytes()).is_ok()
        && up.write_all(body).is_ok()
        && up.read_to_end(&mut resp).is_ok()
    {
        let _ = conn.write_all(&resp);
    }
}
