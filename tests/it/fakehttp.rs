//! A scripted HTTP/1.1 server on loopback for endpoints no real component can play (ECS/EKS
//! container endpoints, IMDS, the SSO portal), and a recording relay in front of moto. Every
//! request is kept, so tests count and inspect what the binary actually sent.

use crate::loopback::{ask_moto, header, listen, read_body, read_head, respond};
use std::io::Write;
use std::net::TcpStream;
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
        header(&self.head, name)
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
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let port = listen("127.0.0.1", move |conn| serve(conn, &s, &handler));
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
    let head = read_head(conn)?;
    let mut first = head.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let body = read_body(conn, &head)?;
    let req = Req {
        method,
        path,
        head,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
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
            let headers: Vec<(&str, &str)> =
                r.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            respond(&mut conn, r.status, &headers, &r.body);
        }
        // Relayed unchanged: moto's raw reply goes back as it came.
        None => {
            if let Some(resp) = ask_moto(&req.head, &body) {
                let _ = conn.write_all(&resp);
            }
        }
    }
}
