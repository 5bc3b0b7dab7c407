//! A cap on every response body, so a server that streams without end (or a 200 MB reply) fails
//! the call at the cap instead of growing memory until the deadline. It wraps the body before the
//! SDK reads it, whatever HTTP client is underneath. The error it raises is found again in the
//! SDK error's source chain by [`exceeded`], to name the endpoint in the one line.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use http_body_1x::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

/// The largest legal reply with room to spare: a batch page holds 20 secrets of up to 64 KiB,
/// each up to 6× larger once JSON-escaped (`\u00XX`), plus names, ARNs and versions.
pub const MAX_BODY: usize = 8 << 20;

/// A body grew past its cap.
#[derive(Debug)]
pub struct TooLarge {
    pub endpoint: String,
    pub cap: usize,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the reply from {} is larger than {} bytes, more than any Secrets Manager answer",
            self.endpoint, self.cap
        )
    }
}

impl std::error::Error for TooLarge {}

/// The cap error inside an SDK error, if that is what ended the call.
pub fn exceeded<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a TooLarge> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(t) = e.downcast_ref::<TooLarge>() {
            return Some(t);
        }
        next = e.source();
    }
    None
}

/// Counts bytes as they arrive and fails the body once they pass `left`.
struct Capped {
    inner: SdkBody,
    left: usize,
    endpoint: String,
    cap: usize,
}

impl Body for Capped {
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.len());
                if n > this.left {
                    this.left = 0;
                    return Poll::Ready(Some(Err(Box::new(TooLarge {
                        endpoint: this.endpoint.clone(),
                        cap: this.cap,
                    }))));
                }
                this.left -= n;
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        Body::size_hint(&self.inner)
    }
}

/// Wraps every response body of a client in a [`MAX_BODY`] cap.
#[derive(Debug)]
pub struct BodyCap {
    pub endpoint: String,
    pub cap: usize,
}

impl Intercept for BodyCap {
    fn name(&self) -> &'static str {
        "BodyCap"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response_mut();
        let body = response.take_body();
        *response.body_mut() = SdkBody::from_body_1_x(Capped {
            inner: body,
            left: self.cap,
            endpoint: self.endpoint.clone(),
            cap: self.cap,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: SdkBody, cap: usize) -> Result<usize, BoxError> {
        let mut capped = Capped {
            inner: body,
            left: cap,
            endpoint: "http://x".into(),
            cap,
        };
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut total = 0;
        loop {
            match Pin::new(&mut capped).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(f))) => total += f.data_ref().map_or(0, |d| d.len()),
                Poll::Ready(Some(Err(e))) => return Err(e),
                Poll::Ready(None) => return Ok(total),
                Poll::Pending => panic!("an in-memory body is never pending"),
            }
        }
    }

    #[test]
    fn bodies_up_to_the_cap_pass_and_longer_ones_fail() {
        assert_eq!(read(SdkBody::from(vec![1u8; 10]), 10).unwrap(), 10);
        assert_eq!(read(SdkBody::empty(), 0).unwrap(), 0);
        let err = read(SdkBody::from(vec![1u8; 11]), 10).unwrap_err();
        let t = exceeded(&*err).expect("the cap error");
        assert_eq!((t.endpoint.as_str(), t.cap), ("http://x", 10));
        assert!(err.to_string().contains("larger than 10 bytes"), "{err}");
    }
}
