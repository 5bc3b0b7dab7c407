//! The core every fake HTTP server in these tests shares: a listener on a free loopback port
//! serving each connection on its own thread, reading a request head a byte at a time (so a
//! fake can still act before the body is read), the body, a reply, and a relay to moto.

use crate::support::moto;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

/// Listens on a free port of `host` (a loopback address) and hands every connection to
/// `serve` on a thread of its own; returns the port.
pub fn listen(host: &str, serve: impl Fn(TcpStream) + Send + Sync + 'static) -> u16 {
    let listener = TcpListener::bind((host, 0)).expect("bind a loopback fake server");
    let port = listener.local_addr().unwrap().port();
    let serve = std::sync::Arc::new(serve);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let serve = serve.clone();
            std::thread::spawn(move || serve(conn));
        }
    });
    port
}

/// Reads a request (or response) head up to the blank line, leaving the body unread. None when
/// the peer closed first.
pub fn read_head(conn: &mut impl Read) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// The value of header `name` (any case) in `head`.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads the `Content-Length` bytes of body that follow `head`.
pub fn read_body(conn: &mut impl Read, head: &str) -> Option<Vec<u8>> {
    let len: usize = header(head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    conn.read_exact(&mut body).ok()?;
    Some(body)
}

/// Writes a whole reply with `Connection: close`: `status` is the status line's tail.
pub fn respond(conn: &mut impl Write, status: &str, headers: &[(&str, &str)], body: &[u8]) {
    let head = message_head(format!("HTTP/1.1 {status}"), body.len(), headers);
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
}

/// The head of a request or reply: `first` line, `Content-Length`, `Connection: close`, then
/// `headers`, and the blank line.
pub fn message_head(first: String, len: usize, headers: &[(&str, &str)]) -> String {
    let mut head = format!("{first}\r\nContent-Length: {len}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Sends the request to the shared moto with `Connection: close` (whatever the client asked)
/// and returns moto's raw reply; None when moto could not be reached or read.
pub fn ask_moto(head: &str, body: &[u8]) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(("127.0.0.1", moto().port)).ok()?;
    let mut sent = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        let name = line.split(':').next().unwrap_or("").trim();
        if line.is_empty() || (i > 0 && name.eq_ignore_ascii_case("connection")) {
            continue;
        }
        sent.push_str(line);
        sent.push_str("\r\n");
    }
    sent.push_str("Connection: close\r\n\r\n");
    let mut resp = Vec::new();
    up.write_all(sent.as_bytes()).ok()?;
    up.write_all(body).ok()?;
    up.read_to_end(&mut resp).ok()?;
    Some(resp)
}
