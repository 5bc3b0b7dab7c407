//! A quota-faithful Secrets Manager and Parameter Store endpoint on loopback, in front of the
//! shared moto: each request's region is read from its SigV4 credential scope, and each API is
//! held to AWS's published request rate for one account and region by a token bucket holding one
//! second of burst; past it the reply is HTTP 400 `ThrottlingException: Rate exceeded`, as AWS
//! answers. Served and throttled calls are counted per API and region. A region can also be made
//! to fail (5xx, a dropped connection, a stall) to play a regional outage. Moto serves the values,
//! from its store for the request's region.

use crate::loopback::{ask_moto, header, listen, read_body, read_head, respond};
use crate::support::{Run, se};
use std::collections::HashMap;
use std::io::Read;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// AWS's published rates, requests per second per account and region, and the bucket an API
/// draws from (APIs sharing one quota share a bucket). Sources, read December 2026: the Secrets
/// Manager quotas page (GetSecretValue 10,000/s and DescribeSecret 40,000/s since March 2025;
/// BatchGetSecretValue 100/s and ListSecrets 100/s, not adjustable) and the Systems Manager
/// quotas page (Parameter Store standard throughput: 40/s shared by GetParameter, GetParameters
/// and GetParametersByPath).
pub const PUBLISHED: &[(&str, &str, f64)] = &[
    ("GetSecretValue", "GetSecretValue", 10_000.0),
    ("DescribeSecret", "DescribeSecret", 40_000.0),
    ("BatchGetSecretValue", "BatchGetSecretValue", 100.0),
    ("ListSecrets", "ListSecrets", 100.0),
    ("GetParameter", "Parameter Store", 40.0),
    ("GetParameters", "Parameter Store", 40.0),
    ("GetParametersByPath", "Parameter Store", 40.0),
];

/// What a region does while it is out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outage {
    /// HTTP 500 `InternalServiceError` to every call.
    ServerError,
    /// The connection is closed with the request unread: a connection failure.
    Dead,
    /// The connection is held open and never answered.
    Stall,
    /// HTTP 400 with this error code (a definite answer: never a reason to fail over).
    Code(&'static str),
}

struct Bucket {
    tokens: f64,
    per_second: f64,
    burst: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Default)]
struct Shared {
    /// Rate and burst per bucket name and region (`None`: every region), overriding `PUBLISHED`.
    rates: Mutex<HashMap<(String, Option<String>), (f64, f64)>>,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
    /// (api, region, "served" | "throttled" | "failed") → calls.
    counts: Mutex<HashMap<(String, String, &'static str), usize>>,
    outages: Mutex<HashMap<String, Outage>>,
}

pub struct QuotaServer {
    pub endpoint: String,
    shared: Arc<Shared>,
}

impl QuotaServer {
    /// An endpoint holding every API to its published rate.
    pub fn start() -> QuotaServer {
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let port = listen("127.0.0.1", move |conn| serve(conn, &s));
        QuotaServer {
            endpoint: format!("http://127.0.0.1:{port}"),
            shared,
        }
    }

    /// Holds `bucket` (an API, or "Parameter Store") to `per_second` with `burst` tokens, full
    /// at the start: what a test uses to play a quota a busy fleet has already spent.
    pub fn rate(self, bucket: &str, per_second: f64, burst: f64) -> QuotaServer {
        let mut rates = self.shared.rates.lock().unwrap();
        rates.insert((bucket.to_string(), None), (per_second, burst));
        drop(rates);
        self
    }

    /// `rate` in `region` only.
    pub fn rate_in(self, region: &str, bucket: &str, per_second: f64, burst: f64) -> QuotaServer {
        let mut rates = self.shared.rates.lock().unwrap();
        let key = (bucket.to_string(), Some(region.to_string()));
        rates.insert(key, (per_second, burst));
        drop(rates);
        self
    }

    /// Makes `region` fail every call as `outage` says.
    pub fn outage(self, region: &str, outage: Outage) -> QuotaServer {
        let mut o = self.shared.outages.lock().unwrap();
        o.insert(region.to_string(), outage);
        drop(o);
        self
    }

    /// Calls of `api` in `region` that were `what` ("served", "throttled" or "failed").
    pub fn count(&self, api: &str, region: &str, what: &str) -> usize {
        let counts = self.shared.counts.lock().unwrap();
        counts
            .iter()
            .filter(|((a, r, w), _)| a == api && r == region && *w == what)
            .map(|(_, n)| *n)
            .sum()
    }

    /// A run of secret-exec pointed at this endpoint, for both services.
    pub fn se(&self) -> Run {
        se().env("AWS_ENDPOINT_URL", &self.endpoint)
    }
}

/// The region of a SigV4-signed request: `Credential=KEY/DATE/REGION/SERVICE/aws4_request`.
fn region_of(head: &str) -> String {
    header(head, "authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(2))
        .unwrap_or("unsigned")
        .to_string()
}

fn aws_error(conn: &mut TcpStream, status: &str, code: &str, message: &str) {
    let body = serde_json::json!({"__type": code, "message": message}).to_string();
    let json = [("Content-Type", "application/x-amz-json-1.1")];
    respond(conn, status, &json, body.as_bytes());
}

fn serve(mut conn: TcpStream, shared: &Shared) {
    let Some(head) = read_head(&mut conn) else {
        return;
    };
    let api = header(&head, "x-amz-target")
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("unknown")
        .to_string();
    let region = region_of(&head);
    let count = |what: &'static str| {
        let mut counts = shared.counts.lock().unwrap();
        *counts
            .entry((api.clone(), region.clone(), what))
            .or_insert(0) += 1;
    };
    let outage = shared.outages.lock().unwrap().get(&region).copied();
    if outage == Some(Outage::Dead) {
        count("failed");
        // The body is unread: closing now makes the kernel answer with RST.
        return;
    }
    let Some(body) = read_body(&mut conn, &head) else {
        return;
    };
    match outage {
        Some(Outage::ServerError) => {
            count("failed");
            return aws_error(
                &mut conn,
                "500 Internal Server Error",
                "InternalServiceError",
                "regional outage",
            );
        }
        Some(Outage::Code(code)) => {
            count("failed");
            return aws_error(&mut conn, "400 Bad Request", code, "injected error");
        }
        Some(Outage::Stall) => {
            count("failed");
            let mut sink = Vec::new();
            let _ = conn.read_to_end(&mut sink);
            return;
        }
        Some(Outage::Dead) | None => {}
    }
    let Some(&(_, bucket, published)) = PUBLISHED.iter().find(|(a, _, _)| *a == api) else {
        // Set-up calls (CreateSecret…) are not held to a quota.
        return relay(&mut conn, &head, &body);
    };
    let (per_second, burst) = {
        let rates = shared.rates.lock().unwrap();
        rates
            .get(&(bucket.to_string(), Some(region.clone())))
            .or_else(|| rates.get(&(bucket.to_string(), None)))
            .copied()
            .unwrap_or((published, published))
    };
    let allowed = {
        let mut buckets = shared.buckets.lock().unwrap();
        buckets
            .entry((bucket.to_string(), region.clone()))
            .or_insert(Bucket {
                tokens: burst,
                per_second,
                burst,
                at: Instant::now(),
            })
            .take()
    };
    if !allowed {
        count("throttled");
        return aws_error(
            &mut conn,
            "400 Bad Request",
            "ThrottlingException",
            "Rate exceeded",
        );
    }
    count("served");
    relay(&mut conn, &head, &body);
}

/// Relays the request to moto and passes its status and body back.
fn relay(conn: &mut TcpStream, head: &str, body: &[u8]) {
    let json = [("Content-Type", "application/x-amz-json-1.1")];
    let Some(resp) = ask_moto(head, body) else {
        return respond(conn, "502 Bad Gateway", &json, b"{}");
    };
    let Some(split) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        return respond(conn, "502 Bad Gateway", &json, b"{}");
    };
    let status = String::from_utf8_lossy(&resp[..split])
        .lines()
        .next()
        .and_then(|l| l.split_once(' '))
        .map(|(_, s)| s.to_string())
        .unwrap_or_else(|| "502 Bad Gateway".into());
    respond(conn, &status, &json, &resp[split + 4..]);
}
