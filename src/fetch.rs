//! Fetching: every distinct secret version once, plain AWSCURRENT reads through
//! `BatchGetSecretValue` (20 ids a call, calls concurrent), the rest — and everything when the
//! batch call is denied — through concurrent `GetSecretValue`. SDK strings are moved into
//! `SecretText` the moment a response is in hand. Errors map to the SPEC classes here.

use crate::aws::{Client, Clients};
use crate::error::{Error, sanitize};
use crate::map::{Fetched, Payload};
use crate::secret::{SecretBytes, SecretText};
use crate::spec::SecretRef;
use crate::vlog;
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// `BatchGetSecretValue` takes at most 20 ids per call.
pub const BATCH_SIZE: usize = 20;
/// Fewer AWSCURRENT reads than this in one region go through `GetSecretValue`: a batch of one
/// costs the same call and needs one more IAM permission.
pub const MIN_BATCH: usize = 2;
/// In-flight `GetSecretValue` calls at once: enough to hide latency, few enough not to trip
/// the account's request-rate limit when a fleet starts together.
const CONCURRENCY: usize = 16;

pub type Results = BTreeMap<SecretRef, Result<Fetched, Error>>;

/// The SPEC class of an AWS error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    NotFound,
    Permission,
    Unavailable,
    Usage,
}

pub fn classify(code: &str) -> Class {
    match code {
        "ResourceNotFoundException" | "InvalidRequestException" => Class::NotFound,
        "AccessDeniedException"
        | "AccessDenied"
        | "DecryptionFailure"
        | "KMSAccessDeniedException"
        | "KMSDisabledException"
        | "KMSInvalidStateException"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "RequestExpired" => Class::Permission,
        "InvalidParameterException" | "ValidationException" => Class::Usage,
        _ => Class::Unavailable,
    }
}

/// Whether a failed `BatchGetSecretValue` is IAM refusing that action, which the per-secret
/// `GetSecretValue` fallback can work around. Bad or expired credentials, KMS refusals and the
/// like would fail every single call the same way, so they are reported as they are instead.
fn is_policy_denial(code: &str) -> bool {
    matches!(code, "AccessDeniedException" | "AccessDenied")
}

fn advice(class: Class) -> &'static str {
    match class {
        Class::NotFound => {
            "check the name, region and stage/version (a secret scheduled for deletion counts as missing)"
        }
        Class::Permission => {
            "check the IAM policy (secretsmanager:GetSecretValue, kms:Decrypt) and that the credentials are current"
        }
        Class::Unavailable => {
            "Secrets Manager did not answer usefully after every retry; check the network path and endpoint, or raise --timeout"
        }
        Class::Usage => "check the secret id, stage and version id",
    }
}

/// Builds the error for an AWS error code against one secret.
pub fn coded_error(secret: &SecretRef, code: &str, message: Option<&str>) -> Error {
    let class = classify(code);
    let why = match message {
        Some(m) if !m.is_empty() => format!("{code}: {}; {}", sanitize(m), advice(class)),
        _ => format!("{code}; {}", advice(class)),
    };
    let id = secret.to_string();
    match class {
        Class::NotFound => Error::NotFound { secret: id, why },
        Class::Permission => Error::Permission {
            what: format!("access denied to secret '{id}'"),
            why,
        },
        Class::Unavailable => Error::Unavailable {
            what: format!("cannot fetch secret '{id}'"),
            why,
        },
        Class::Usage => Error::Usage(format!("Secrets Manager rejected secret '{id}': {why}")),
    }
}

fn sdk_error<E>(secret: &SecretRef, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let unavailable = |why: String| Error::Unavailable {
        what: format!("cannot fetch secret '{secret}'"),
        why,
    };
    if let Some(e) = crate::tls::transport_error(&err, &format!("cannot fetch secret '{secret}'")) {
        return e;
    }
    match &err {
        SdkError::ServiceError(se) => match se.err().code() {
            Some(code) => coded_error(secret, code, se.err().message()),
            // No `__type`: whatever answered is not Secrets Manager (a proxy page, a stub).
            None => unavailable(format!(
                "the reply (HTTP {}) is not a Secrets Manager response; {}",
                se.raw().status().as_u16(),
                advice(Class::Unavailable)
            )),
        },
        SdkError::TimeoutError(_) => unavailable(format!(
            "timed out after every attempt; {}",
            advice(Class::Unavailable)
        )),
        SdkError::DispatchFailure(df) => {
            let kind = if df.is_timeout() {
                "connection timed out"
            } else if df.is_io() {
                "connection failed"
            } else {
                "request could not be sent"
            };
            // The connector's error chain names hosts and OS errors, never bodies.
            unavailable(format!(
                "{kind} ({}); {}",
                cause_chain(&err),
                advice(Class::Unavailable)
            ))
        }
        // A body that does not parse may hold anything, so its parser's message is not shown.
        SdkError::ResponseError(_) => unavailable(format!(
            "the response could not be read (truncated or not Secrets Manager JSON); {}",
            advice(Class::Unavailable)
        )),
        SdkError::ConstructionFailure(_) => Error::Config(format!(
            "cannot build the request for secret '{secret}': {}; check region and endpoint settings",
            cause_chain(&err)
        )),
        _ => unavailable(format!(
            "unexpected SDK error; {}",
            advice(Class::Unavailable)
        )),
    }
}

/// The `Display` texts of an error and its sources, deduplicated, joined with ": ". Unlike the
/// SDK's `DisplayErrorContext` it never appends a `Debug` dump of the whole chain.
fn cause_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The fields of a `GetSecretValue` answer or a batch entry, moved out of the SDK's struct so the
/// value goes straight into a zeroizing buffer with no copy left behind.
struct Parts {
    name: Option<String>,
    arn: Option<String>,
    version_id: Option<String>,
    stages: Option<Vec<String>>,
    text: Option<String>,
    binary: Option<aws_smithy_types::Blob>,
}

impl Parts {
    fn into_fetched(self, secret: &SecretRef) -> Result<Fetched, Error> {
        let payload = match (self.text, self.binary) {
            (Some(text), _) => Payload::Text(SecretText::from_owned(text)),
            (None, Some(blob)) => Payload::Binary(SecretBytes::from_owned(blob.into_inner())),
            (None, None) => {
                return Err(Error::Unavailable {
                    what: format!("secret '{secret}'"),
                    why: "the answer has neither SecretString nor SecretBinary".into(),
                });
            }
        };
        Ok(Fetched {
            name: self.name.unwrap_or_else(|| secret.id.clone()),
            arn: self.arn,
            version_id: self.version_id,
            stages: self.stages.unwrap_or_default(),
            payload,
        })
    }
}

async fn get_one(client: Client, secret: SecretRef) -> (SecretRef, Result<Fetched, Error>) {
    let out = client
        .get_secret_value()
        .secret_id(&secret.id)
        .set_version_stage(secret.stage.clone())
        .set_version_id(secret.version_id.clone())
        .send()
        .await;
    let result = match out {
        Ok(o) => Parts {
            name: o.name,
            arn: o.arn,
            version_id: o.version_id,
            stages: o.version_stages,
            text: o.secret_string,
            binary: o.secret_binary,
        }
        .into_fetched(&secret),
        Err(e) => Err(sdk_error(&secret, e)),
    };
    (secret, result)
}

enum BatchOutcome {
    Done(Vec<(SecretRef, Result<Fetched, Error>)>),
    /// The caller may not call BatchGetSecretValue: fetch these one by one instead.
    Denied(Vec<SecretRef>),
}

/// Whether a batch entry answers the requested id: by name, by full ARN, or by partial ARN
/// (an ARN without the 6-character suffix AWS appends).
fn answers(id: &str, name: Option<&str>, arn: Option<&str>) -> bool {
    name == Some(id)
        || arn == Some(id)
        || arn.is_some_and(|a| {
            a.len() == id.len() + 7 && a.starts_with(id) && a.as_bytes()[id.len()] == b'-'
        })
}

async fn batch(client: Client, refs: Vec<SecretRef>) -> BatchOutcome {
    let ids: Vec<String> = refs.iter().map(|r| r.id.clone()).collect();
    let mut results: BTreeMap<SecretRef, Result<Fetched, Error>> = BTreeMap::new();
    let mut token: Option<String> = None;
    // Ids are at most 20, so one page is the norm; the bound stops a server that loops tokens.
    for _page in 0..BATCH_SIZE {
        let out = client
            .batch_get_secret_value()
            .set_secret_id_list(Some(ids.clone()))
            .set_next_token(token.take())
            .send()
            .await;
        let mut out = match out {
            Ok(o) => o,
            Err(e) => {
                if let SdkError::ServiceError(se) = &e
                    && is_policy_denial(se.err().code().unwrap_or(""))
                {
                    return BatchOutcome::Denied(refs);
                }
                let first = &refs[0];
                let err = sdk_error(first, e);
                // The whole call failed: every secret in it shares the failure.
                return BatchOutcome::Done(
                    refs.iter()
                        .map(|r| (r.clone(), Err(clone_error(&err, r))))
                        .collect(),
                );
            }
        };
        for entry in out.secret_values.take().unwrap_or_default() {
            let Some(r) = refs.iter().find(|r| {
                !results.contains_key(*r)
                    && answers(&r.id, entry.name.as_deref(), entry.arn.as_deref())
            }) else {
                continue;
            };
            let result = Parts {
                name: entry.name,
                arn: entry.arn,
                version_id: entry.version_id,
                stages: entry.version_stages,
                text: entry.secret_string,
                binary: entry.secret_binary,
            }
            .into_fetched(r);
            results.insert(r.clone(), result);
        }
        for e in out.errors.take().unwrap_or_default() {
            let id = e.secret_id.as_deref().unwrap_or("");
            if let Some(r) = refs
                .iter()
                .find(|r| r.id == id && !results.contains_key(*r))
            {
                let code = e.error_code.as_deref().unwrap_or("UnknownError");
                results.insert(r.clone(), Err(coded_error(r, code, e.message.as_deref())));
            }
        }
        token = out.next_token.take();
        if token.is_none() || results.len() == refs.len() {
            break;
        }
    }
    BatchOutcome::Done(
        refs.into_iter()
            .map(|r| {
                let res = results.remove(&r).unwrap_or_else(|| {
                    Err(Error::Unavailable {
                        what: format!("secret '{r}'"),
                        why: "BatchGetSecretValue returned neither a value nor an error for it"
                            .into(),
                    })
                });
                (r, res)
            })
            .collect(),
    )
}

/// Re-targets a shared failure at another secret of the same call.
fn clone_error(e: &Error, r: &SecretRef) -> Error {
    let why = e.to_string();
    match e.exit_code() {
        66 => Error::NotFound {
            secret: r.to_string(),
            why,
        },
        77 => Error::Permission {
            what: format!("secret '{r}'"),
            why,
        },
        78 => Error::Config(why),
        64 => Error::Usage(why),
        _ => Error::Unavailable {
            what: format!("secret '{r}'"),
            why,
        },
    }
}

/// Fetches every distinct reference. All results come back; the caller decides (all-or-nothing).
pub async fn fetch_all(clients: &Clients, refs: Vec<SecretRef>) -> Results {
    let mut by_region: BTreeMap<String, (Vec<SecretRef>, Vec<SecretRef>)> = BTreeMap::new();
    for r in refs {
        let region = r
            .arn_region()
            .map(str::to_string)
            .unwrap_or_else(|| clients.default_region.clone());
        let slot = by_region.entry(region).or_default();
        if r.is_current() {
            slot.0.push(r);
        } else {
            slot.1.push(r);
        }
    }

    let mut results = Results::new();
    let mut singles: Vec<(Client, SecretRef)> = Vec::new();
    let mut batches = JoinSet::new();
    for (region, (current, pinned)) in by_region {
        let client = clients.for_region(&region).clone();
        if current.len() >= MIN_BATCH {
            vlog!(
                1,
                "fetching {} secrets from {region} with BatchGetSecretValue",
                current.len()
            );
            for chunk in current.chunks(BATCH_SIZE) {
                batches.spawn(batch(client.clone(), chunk.to_vec()));
            }
        } else {
            singles.extend(current.into_iter().map(|r| (client.clone(), r)));
        }
        singles.extend(pinned.into_iter().map(|r| (client.clone(), r)));
    }
    while let Some(joined) = batches.join_next().await {
        match joined {
            Ok(BatchOutcome::Done(rs)) => results.extend(rs),
            Ok(BatchOutcome::Denied(rs)) => {
                vlog!(
                    1,
                    "BatchGetSecretValue denied; falling back to GetSecretValue for {} secrets \
                     (grant secretsmanager:BatchGetSecretValue to save calls)",
                    rs.len()
                );
                for r in rs {
                    let region = r
                        .arn_region()
                        .unwrap_or(&clients.default_region)
                        .to_string();
                    singles.push((clients.for_region(&region).clone(), r));
                }
            }
            Err(_) => {}
        }
    }

    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    let mut gets = JoinSet::new();
    for (client, r) in singles {
        vlog!(2, "GetSecretValue {r}");
        let limit = limit.clone();
        gets.spawn(async move {
            let _permit = limit.acquire_owned().await;
            get_one(client, r).await
        });
    }
    while let Some(joined) = gets.join_next().await {
        if let Ok((r, res)) = joined {
            results.insert(r, res);
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_table() {
        let rows = [
            ("ResourceNotFoundException", Class::NotFound, 66),
            ("InvalidRequestException", Class::NotFound, 66),
            ("AccessDeniedException", Class::Permission, 77),
            ("DecryptionFailure", Class::Permission, 77),
            ("UnrecognizedClientException", Class::Permission, 77),
            ("ExpiredTokenException", Class::Permission, 77),
            ("ThrottlingException", Class::Unavailable, 69),
            ("InternalServiceError", Class::Unavailable, 69),
            ("SomethingNew", Class::Unavailable, 69),
            ("InvalidParameterException", Class::Usage, 64),
        ];
        let r = SecretRef {
            id: "prod/db".into(),
            stage: None,
            version_id: None,
        };
        for (code, class, exit) in rows {
            assert_eq!(classify(code), class, "{code}");
            let e = coded_error(&r, code, Some("msg\x1b[2J"));
            assert_eq!(e.exit_code(), exit, "{code}");
            let text = e.to_string();
            assert!(text.contains("prod/db") && text.contains(code), "{text}");
            assert!(!text.contains('\x1b'), "{text:?}");
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

    #[test]
    fn only_policy_denials_fall_back() {
        let rows = [
            ("AccessDeniedException", true),
            ("AccessDenied", true),
            ("ExpiredTokenException", false),
            ("UnrecognizedClientException", false),
            ("KMSAccessDeniedException", false),
            ("ThrottlingException", false),
            ("", false),
        ];
        for (code, want) in rows {
            assert_eq!(is_policy_denial(code), want, "{code}");
        }
    }

    #[test]
    fn batch_entries_match_requested_ids() {
        let arn = "arn:aws:secretsmanager:us-east-1:1:secret:prod/db-AbCdEf";
        let rows = [
            ("prod/db", Some("prod/db"), Some(arn), true),
            (arn, Some("prod/db"), Some(arn), true),
            (
                "arn:aws:secretsmanager:us-east-1:1:secret:prod/db",
                Some("prod/db"),
                Some(arn),
                true,
            ),
            ("prod/d", Some("prod/db"), Some(arn), false),
            (
                "arn:aws:secretsmanager:us-east-1:1:secret:prod",
                Some("prod/db"),
                Some(arn),
                false,
            ),
            ("other", None, None, false),
        ];
        for (id, name, a, want) in rows {
            assert_eq!(answers(id, name, a), want, "{id}");
        }
    }
}
