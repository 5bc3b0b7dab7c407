//! The one plain-HTTP client, for the node-local endpoints the SDK does not serve: the Secrets
//! Manager Agent and the container credentials endpoint. One bounded HTTP/1.1 GET on a fresh
//! connection (`Connection: close`), so a misbehaving listener costs at most one bounded read.
//! The request (which carries a token) and the reply (which carries a secret or credentials) live
//! in buffers wiped on drop; headers are only ever written to the socket. Timeouts are the
//! caller's.

use std::fmt;
use std::io::Write as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

/// A parsed reply: status and the (de-chunked) body, in a buffer wiped on drop.
pub struct Response {
    pub status: u16,
    pub body: Zeroizing<Vec<u8>>,
}

/// Why an exchange gave no response.
#[derive(Debug)]
pub enum HttpError {
    /// Connecting, writing or reading failed.
    Io(std::io::Error),
    /// The reply grew past the caller's cap.
    TooLarge(usize),
    /// What came back is not a complete HTTP/1.x reply.
    Malformed(&'static str),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Io(e) => write!(f, "{e}"),
            HttpError::TooLarge(max) => write!(f, "the answer is larger than {max} bytes"),
            HttpError::Malformed(why) => f.write_str(why),
        }
    }
}

impl From<std::io::Error> for HttpError {
    fn from(e: std::io::Error) -> Self {
        HttpError::Io(e)
    }
}

/// `host:port` as a URL and a Host header write it (an IPv6 address in brackets). `host` is
/// bare (no brackets).
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A connection to `host` (bare, no brackets) and `port`, without Nagle's delay.
pub async fn connect(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Sends `GET target` with `headers` (after `Host` and before `Connection: close`) on `stream`
/// and reads the reply to its end, at most `max` bytes.
pub async fn get(
    mut stream: TcpStream,
    authority: &str,
    target: &str,
    headers: &[(&str, &str)],
    max: usize,
) -> Result<Response, HttpError> {
    let size = 64 + target.len() + authority.len();
    let size = size
        + headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>();
    let mut req = Zeroizing::new(Vec::with_capacity(size));
    write!(req, "GET {target} HTTP/1.1\r\nHost: {authority}\r\n")?;
    for (name, value) in headers {
        write!(req, "{name}: {value}\r\n")?;
    }
    req.extend_from_slice(b"Connection: close\r\n\r\n");
    stream.write_all(&req).await?;
    drop(req);
    let mut buf = Zeroizing::new(Vec::with_capacity(16 * 1024));
    let mut chunk = Zeroizing::new([0u8; 8192]);
    loop {
        let n = stream.read(&mut chunk[..]).await?;
        if n == 0 {
            break;
        }
        if buf.len() + n > max {
            return Err(HttpError::TooLarge(max));
        }
        buf.extend_from_slice(&chunk[..n]);
        if complete(&buf) {
            break;
        }
    }
    parse_response(&buf).map_err(HttpError::Malformed)
}

/// Where the header block ends (the index after `\r\n\r\n`).
fn header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Splits a complete response (read to its end) into status and body. Handles a
/// Content-Length body, a chunked one, and one delimited by the connection closing.
pub fn parse_response(raw: &[u8]) -> Result<Response, &'static str> {
    let end = header_end(raw).ok_or("the answer has no complete HTTP header")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "the HTTP header is not text")?;
    let status = head
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.get(2..5))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("the answer is not HTTP/1.x")?;
    let rest = &raw[end..];
    let mut body = Zeroizing::new(Vec::with_capacity(rest.len()));
    if header(head, "transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        let mut at = 0;
        loop {
            let line_end = rest[at..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("a chunked body ends early")?;
            let size_text = std::str::from_utf8(&rest[at..at + line_end])
                .map_err(|_| "a chunk size is not text")?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| "a chunk size is not a number")?;
            at += line_end + 2;
            if size == 0 {
                break;
            }
            let chunk = rest.get(at..at + size).ok_or("a chunked body ends early")?;
            body.extend_from_slice(chunk);
            at += size + 2;
        }
    } else if let Some(len) = header(head, "content-length") {
        let len: usize = len.parse().map_err(|_| "Content-Length is not a number")?;
        body.extend_from_slice(
            rest.get(..len)
                .ok_or("the body is shorter than its Content-Length")?,
        );
    } else {
        body.extend_from_slice(rest);
    }
    Ok(Response { status, body })
}

/// Whether a partial read already holds the whole response (so a listener that keeps the
/// connection open despite `Connection: close` costs nothing).
fn complete(buf: &[u8]) -> bool {
    let Some(end) = header_end(buf) else {
        return false;
    };
    let Ok(head) = std::str::from_utf8(&buf[..end]) else {
        return false;
    };
    header(head, "content-length")
        .and_then(|l| l.parse::<usize>().ok())
        .is_some_and(|len| buf.len() >= end + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse() {
        let rows: &[(&[u8], u16, &[u8])] = &[
            (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", 200, b"{}"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}extra", 200, b"{}"),
            (b"HTTP/1.0 403 Forbidden\r\n\r\nBad Token", 403, b"Bad Token"),
            (b"HTTP/1.0 200 OK\r\nA: b\r\n\r\n{}", 200, b"{}"),
            (b"HTTP/1.1 503 x\r\n\r\n", 503, b""),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
                200,
                b"abcde",
            ),
        ];
        for (raw, status, body) in rows {
            let r = parse_response(raw).unwrap();
            assert_eq!((r.status, r.body.as_slice()), (*status, *body));
        }
        for bad in [
            &b"HTTP/1.1 200 OK\r\n"[..],
            b"garbage\r\n\r\n",
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        ] {
            assert!(parse_response(bad).is_err(), "{bad:?}");
        }
        assert!(complete(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"));
        assert!(!complete(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n{}"));
    }

    #[test]
    fn authorities() {
        assert_eq!(authority("127.0.0.1", 80), "127.0.0.1:80");
        assert_eq!(authority("localhost", 2773), "localhost:2773");
        assert_eq!(authority("::1", 8080), "[::1]:8080");
        assert_eq!(authority("fd00:ec2::23", 80), "[fd00:ec2::23]:80");
    }
}
