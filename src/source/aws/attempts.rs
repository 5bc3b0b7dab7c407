//! Every HTTP attempt an AWS client makes, retries included, as a log line: `-vv` the call, the
//! attempt number, the status, how long it took and the request id; `-vvv` also the URL (without
//! user info or query), the User-Agent sent and the sizes. Never a body, never a header that
//! carries credentials (Authorization, X-Amz-Security-Token). Added to every service client's
//! config by `aws::observe`, the one place clients are finished.

use crate::log::{self, Event};
use aws_sdk_secretsmanager::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_secretsmanager::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use std::time::Instant;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
        if !log::enabled(2) {
            return Ok(());
        }
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
