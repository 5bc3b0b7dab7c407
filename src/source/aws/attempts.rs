//! Every HTTP attempt an AWS client makes, retries included, as a log line: `-vv` the call, the
//! attempt number, the status, how long it took and the request id; `-vvv` also the URL (without
//! user info or query), the User-Agent sent and the sizes. Never a body, never a header that
//! carries credentials (Authorization, X-Amz-Security-Token). Added to every service client's
//! config by `aws::observe`, the one place clients are finished. It also notes the last
//! throttled call (API and region, never a body) so a deadline that throttling used up says so.

use crate::log::{self, Event};
use aws_sdk_secretsmanager::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_secretsmanager::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use std::time::Instant;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The last call a quota turned away in this fetch window: API, region and error code.
static THROTTLED: std::sync::Mutex<Option<(String, String, String)>> = std::sync::Mutex::new(None);

/// The last throttled call since `forget_throttling` (API, region, error code).
pub fn last_throttled() -> Option<(String, String, String)> {
    THROTTLED.lock().ok().and_then(|t| t.clone())
}

/// Starts a new fetch window with no throttling seen.
pub fn forget_throttling() {
    if let Ok(mut t) = THROTTLED.lock() {
        *t = None;
    }
}

/// The error code of a throttled reply: 429, or a 400 whose JSON `__type` (or `x-amzn-errortype`
/// header) is a throttling code. Only error replies are read, and only that one field.
fn throttling_code(status: u16, headers: Option<&str>, body: Option<&[u8]>) -> Option<String> {
    if status != 400 && status != 429 {
        return None;
    }
    // The `__type` field's text, found without a JSON parser (the binary has a size budget).
    let from_body = body.and_then(|b| {
        let b = std::str::from_utf8(b).ok()?;
        let rest = &b[b.find("\"__type\"")? + 8..];
        let rest = rest
            .trim_start()
            .strip_prefix(':')?
            .trim_start()
            .strip_prefix('"')?;
        Some(rest[..rest.find('"')?].to_string())
    });
    let code = from_body
        .or(headers.map(str::to_string))
        .unwrap_or_default();
    // `__type` may carry a namespace (`com.amazonaws…#ThrottlingException`) or a `:` suffix.
    let code = code
        .rsplit('#')
        .next()
        .unwrap_or("")
        .split(':')
        .next()
        .unwrap_or("");
    if super::quota::is_throttling(code) {
        Some(code.to_string())
    } else if status == 429 {
        Some("TooManyRequestsException".into())
    } else {
        None
    }
}

#[derive(Debug)]
pub struct Attempts;

/// The current attempt of one operation, kept in the operation's own config bag. The request is
/// described before it is sent: after the attempt the SDK no longer holds it.
#[derive(Clone, Debug)]
struct Current {
    n: u32,
    started: Instant,
    call: String,
    /// `-vvv` only: method, URL (without credentials), User-Agent and size.
    wire: Option<String>,
}

impl Storable for Current {
    type Storer = StoreReplace<Current>;
}

/// `scheme://host[:port]/path` of a request URI: user info and query string left out, as they
/// are the parts of a URL that can carry credentials.
pub fn shown_url(uri: &str) -> String {
    let parsed = super::url::parse(uri);
    let Some((parsed, a)) = parsed
        .as_ref()
        .and_then(|p| Some((p, super::url::authority(p)?)))
    else {
        return "(a URL that cannot be parsed)".into();
    };
    let port = a.port_text.map(|p| format!(":{p}")).unwrap_or_default();
    let scheme = parsed.scheme_str().unwrap_or_default();
    format!("{scheme}://{}{port}{}", a.written, parsed.path())
}

impl Intercept for Attempts {
    fn name(&self) -> &'static str {
        "secret-exec attempts"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let n = cfg.load::<Current>().map_or(0, |c| c.n) + 1;
        cfg.interceptor_state().store_put(Current {
            n,
            started: Instant::now(),
            call: String::new(),
            wire: None,
        });
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The call's name is kept at every level: a throttled attempt names it (`THROTTLED`).
        let Some(mut current) = cfg.load::<Current>().cloned() else {
            return Ok(());
        };
        let r = context.request();
        current.call = r
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("request")
            .to_string();
        if log::enabled(3) {
            current.wire = Some(format!(
                "{} {}, User-Agent '{}', {} bytes sent",
                r.method(),
                shown_url(r.uri()),
                r.headers().get("user-agent").unwrap_or(""),
                r.body().content_length().unwrap_or(0)
            ));
        }
        cfg.interceptor_state().store_put(current);
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(r) = context.response() {
            let code = throttling_code(
                r.status().as_u16(),
                r.headers().get("x-amzn-errortype"),
                r.body().bytes(),
            );
            if let (Some(code), Ok(mut t)) = (code, THROTTLED.lock()) {
                let api = cfg.load::<Current>().map_or("request", |c| c.call.as_str());
                let region = cfg
                    .load::<aws_types::region::Region>()
                    .map_or("its region", |r| r.as_ref());
                *t = Some((api.to_string(), region.to_string(), code));
            }
        }
        let line = log::at(2, Event::Attempt);
        if !line.on() {
            return Ok(());
        }
        let Some(current) = cfg.load::<Current>() else {
            return Ok(());
        };
        let call = if current.call.is_empty() {
            "request"
        } else {
            current.call.as_str()
        };
        let response = context.response();
        let request_id = response.and_then(|r| {
            r.headers()
                .get("x-amzn-requestid")
                .or_else(|| r.headers().get("x-amz-request-id"))
        });
        let status = response.map_or_else(
            || "no response (connection failed or timed out)".to_string(),
            |r| format!("HTTP {}", r.status().as_u16()),
        );
        line.call(call)
            .attempt(current.n)
            .request_id(request_id)
            .took(current.started.elapsed())
            .say(format_args!("{call} attempt {}: {status}", current.n));
        if let Some(wire) = &current.wire {
            let received = response
                .and_then(|r| r.headers().get("content-length"))
                .unwrap_or("?");
            log::at(3, Event::Attempt)
                .call(call)
                .attempt(current.n)
                .say(format_args!(
                    "{call} attempt {}: {wire}, {received} bytes received",
                    current.n
                ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_replies() {
        let body = br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
        let rows: &[(u16, Option<&str>, Option<&[u8]>, Option<&str>)] = &[
            (400, None, Some(body), Some("ThrottlingException")),
            (
                400,
                None,
                Some(br#"{"__type":"com.amazonaws.x#ThrottlingException"}"#),
                Some("ThrottlingException"),
            ),
            (
                400,
                Some("ThrottlingException:http://x"),
                None,
                Some("ThrottlingException"),
            ),
            (429, None, Some(b"<html>"), Some("TooManyRequestsException")),
            (
                400,
                None,
                Some(br#"{"__type":"AccessDeniedException"}"#),
                None,
            ),
            (500, None, Some(body), None),
            (200, None, Some(body), None),
        ];
        for (status, header, body, want) in rows {
            assert_eq!(
                throttling_code(*status, *header, *body).as_deref(),
                *want,
                "{status} {header:?}"
            );
        }
    }

    #[test]
    fn urls_lose_credentials() {
        let rows = [
            (
                "https://secretsmanager.eu-west-1.amazonaws.com/",
                "https://secretsmanager.eu-west-1.amazonaws.com/",
            ),
            ("http://127.0.0.1:4566", "http://127.0.0.1:4566/"),
            (
                "http://user:pw@proxy:8080/a?X-Amz-Signature=abc",
                "http://proxy:8080/a",
            ),
            ("https://h/p#frag", "https://h/p"),
            ("http://[::1]:9/x?q", "http://[::1]:9/x"),
        ];
        for (uri, want) in rows {
            assert_eq!(shown_url(uri), want, "{uri}");
        }
        assert_eq!(shown_url("no url"), "(a URL that cannot be parsed)");
    }
}
