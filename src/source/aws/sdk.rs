//! AWS SDK errors into `Failure`s for every AWS source: a service names its code classes and its
//! advice (`Rules`); how an `SdkError` is read — transport (certificate, proxy), service error,
//! timeout, dispatch failure, unreadable response — and what of it may be shown is decided here.
//! A service that words its failures further (Secrets Manager names the region asked) takes the
//! reading (`read`, `read_code`) and builds the `Failure` itself.

use super::tls::{self, Transport};
use crate::sanitize::one_line;
use crate::source::{Class, Failure};
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};

/// How one service's errors read.
pub struct Rules {
    pub service: &'static str,
    /// The SPEC class of one of the service's error codes.
    pub classify: fn(&str) -> Class,
    /// What to do about a failure of each class; ends every message.
    pub advice: fn(Class) -> &'static str,
}

/// Codes every AWS service answers for an IAM denial or bad, expired or unsigned credentials.
pub fn is_denial_or_credentials(code: &str) -> bool {
    matches!(
        code,
        "AccessDeniedException"
            | "AccessDenied"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "InvalidSignatureException"
            | "SignatureDoesNotMatch"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "RequestExpired"
    )
}

impl Rules {
    pub fn failure(&self, class: Class, what: String) -> Failure {
        Failure {
            service: self.service,
            class,
            why: format!("{what}; {}", (self.advice)(class)),
        }
    }

    pub fn sdk<E>(&self, err: &SdkError<E, HttpResponse>) -> Failure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (class, what) = self.read(err);
        self.failure(class, what)
    }

    /// A call of `api` in `region` that a request-rate quota turned away past every retry: the
    /// failure names that quota and what helps, instead of the service's generic advice.
    pub fn throttled<E>(
        &self,
        err: &SdkError<E, HttpResponse>,
        api: &str,
        region: &str,
    ) -> Option<Failure>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = err.as_service_error().and_then(|e| e.code())?;
        if !super::quota::is_throttling(code) {
            return None;
        }
        let (_, what) = self.read(err);
        Some(Failure {
            service: self.service,
            class: Class::Unavailable,
            why: format!("{what}; {}", super::quota::advice(api, region)),
        })
    }

    /// The class of an AWS error code, and the code with its remote message (sanitised, without
    /// the full stop that would run into our "; ").
    pub fn read_code(&self, code: &str, message: Option<&str>) -> (Class, String) {
        let class = (self.classify)(code);
        let message = message.map(|m| one_line(m).trim_end_matches('.').to_string());
        match message {
            Some(m) if !m.is_empty() => (class, format!("{code}: {m}")),
            _ => (class, code.to_string()),
        }
    }

    /// The class of a failed SDK call and what may be shown of it, before any advice.
    pub fn read<E>(&self, err: &SdkError<E, HttpResponse>) -> (Class, String)
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let unavailable = |what: String| (Class::Unavailable, what);
        if let Some(t) = tls::transport_error(err) {
            return match t {
                Transport::Certificate(why) => (Class::Config, why),
                Transport::Proxy(why) => unavailable(why),
            };
        }
        match err {
            SdkError::ServiceError(se) => match se.err().code() {
                Some(code) => self.read_code(code, se.err().message()),
                // No `__type`: whatever answered is not the service (a proxy page, a stub).
                None => unavailable(format!(
                    "the reply (HTTP {}) is not a {} response",
                    se.raw().status().as_u16(),
                    self.service
                )),
            },
            SdkError::TimeoutError(_) => unavailable("timed out after every attempt".into()),
            SdkError::DispatchFailure(df) => {
                let kind = if df.is_timeout() {
                    "connection timed out"
                } else if df.is_io() {
                    "connection failed"
                } else {
                    "request could not be sent"
                };
                // The connector's error chain names hosts and OS errors, never bodies.
                unavailable(format!("{kind} ({})", cause_chain(err)))
            }
            // A body that does not parse may hold anything, so its parser's message is not shown.
            SdkError::ResponseError(_) => unavailable(format!(
                "the response could not be read (truncated or not {} JSON)",
                self.service
            )),
            SdkError::ConstructionFailure(_) => (Class::Config, cause_chain(err)),
            _ => unavailable("unexpected SDK error".into()),
        }
    }
}

/// The `Display` texts of an error and its sources, deduplicated, joined with ": ". Unlike the
/// SDK's `DisplayErrorContext` it never appends a `Debug` dump of the whole chain.
pub fn cause_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    one_line(&parts.join(": "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_and_credentials() {
        for code in [
            "AccessDeniedException",
            "ExpiredTokenException",
            "InvalidClientTokenId",
        ] {
            assert!(is_denial_or_credentials(code), "{code}");
        }
        for code in ["ThrottlingException", "ParameterNotFound", ""] {
            assert!(!is_denial_or_credentials(code), "{code}");
        }
    }

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);
    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn cause_chain_is_display_only() {
        let chain = |texts: &[&'static str]| {
            texts
                .iter()
                .rev()
                .fold(None, |inner, t| Some(Box::new(Layer(t, inner))))
                .unwrap()
        };
        let rows: &[(&[&'static str], &str)] = &[
            (&["dispatch failure"], "dispatch failure"),
            (
                &[
                    "dispatch failure",
                    "io error",
                    "Connection reset by peer (os error 104)",
                ],
                "dispatch failure: io error: Connection reset by peer (os error 104)",
            ),
            // A layer that repeats its source's text adds nothing.
            (&["timeout: read", "read", ""], "timeout: read"),
        ];
        for (layers, want) in rows {
            assert_eq!(cause_chain(&*chain(layers)), *want, "{layers:?}");
        }
    }
}
