//! Secrets Manager: `BatchGetSecretValue` for the plan's batches (calls concurrent, each tried
//! once), concurrent `GetSecretValue` for the rest — and for a batch's secrets when IAM denies the
//! batch call or it is throttled or unanswered (after a jitter). SDK
//! strings are moved into `SecretText` the moment a response is in hand. Every SDK error is
//! classified here, once per call, into a `Failure`.

use super::aws::sdk::{Rules, is_denial_or_credentials};
use super::aws::{Client, Clients};
use super::{Class, Failure, Fetched, Outcome, Payload};
use crate::error::Error;
use crate::log::{self, Event};
use crate::plan::{Call, RegionCalls};
use crate::secret::{SecretBytes, SecretText};
use crate::spec::SecretRef;
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::RequestId;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

const SERVICE: &str = "Secrets Manager";

/// The SPEC class of an AWS error code.
fn classify(code: &str) -> Class {
    match code {
        "ResourceNotFoundException" | "InvalidRequestException" => Class::NotFound,
        "DecryptionFailure"
        | "KMSAccessDeniedException"
        | "KMSDisabledException"
        | "KMSInvalidStateException" => Class::Permission,
        c if is_denial_or_credentials(c) => Class::Permission,
        "InvalidParameterException" | "ValidationException" => Class::Rejected,
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
        Class::Rejected => "check the secret id, stage and version id",
        Class::Config => "check region and endpoint settings",
    }
}

/// Where a call went: a "not found" names it, as the commonest cause is the wrong region.
#[derive(Clone)]
pub(super) struct Asked {
    pub(super) region: String,
    pub(super) endpoint: String,
}

/// How Secrets Manager's errors read; `failure` below words them (advice after the place).
const RULES: Rules = Rules {
    service: SERVICE,
    classify,
    advice,
};

fn failure(class: Class, what: String, asked: &Asked) -> Failure {
    let place = if class == Class::NotFound {
        format!(" (asked region {} at {})", asked.region, asked.endpoint)
    } else {
        String::new()
    };
    RULES.failure(class, format!("{what}{place}"))
}

/// The failure an AWS error code (and its remote message) stands for.
pub(super) fn coded(code: &str, message: Option<&str>, asked: &Asked) -> Failure {
    let (class, what) = RULES.read_code(code, message);
    failure(class, what, asked)
}

pub(super) fn classify_sdk<E>(err: &SdkError<E, HttpResponse>, asked: &Asked) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    // The body cap's message names Secrets Manager, so only this source looks for it.
    if let Some(t) = super::aws::body_cap::exceeded(err) {
        return failure(Class::Unavailable, t.to_string(), asked);
    }
    let (class, what) = RULES.read(err);
    failure(class, what, asked)
}

/// `classify_sdk` for a call of `api`: throttling that outlasted every retry names the account
/// and region's quota for that API and what helps, instead of the generic advice.
pub(super) fn classify_sdk_call<E>(
    err: &SdkError<E, HttpResponse>,
    asked: &Asked,
    api: &str,
) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    RULES
        .throttled(err, api, &asked.region)
        .unwrap_or_else(|| classify_sdk(err, asked))
}

/// The fields of a `GetSecretValue` answer or a batch entry, moved out of the SDK's struct so the
/// value goes straight into a zeroizing buffer with no copy left behind.
struct Parts {
    name: Option<String>,
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
                    secret: secret.to_string(),
                    why: "the answer has neither SecretString nor SecretBinary".into(),
                });
            }
        };
        Ok(Fetched {
            name: self.name.unwrap_or_else(|| secret.id.clone()),
            version_id: self.version_id,
            stages: self.stages.unwrap_or_default(),
            payload,
        })
    }
}

/// The stage asked for, as the log shows it: the given one, else AWSCURRENT unless a version id
/// alone picks the version.
fn asked_stage(r: &SecretRef) -> Option<&str> {
    match (&r.stage, &r.version_id) {
        (Some(s), _) => Some(s),
        (None, None) => Some("AWSCURRENT"),
        (None, Some(_)) => None,
    }
}

/// The `fetch` event for one secret's outcome: ids, timing and (at `-vv`) the request id.
fn log_fetch(
    call: &str,
    asked: &Asked,
    r: &SecretRef,
    result: &Result<Fetched, Error>,
    request_id: Option<&str>,
    took: Duration,
) {
    let line = log::at(1, Event::Fetch)
        .source("secretsmanager")
        .call(call)
        .secret(&r.id)
        .region(&asked.region)
        .stage(asked_stage(r))
        .request_id(request_id)
        .took(took);
    match result {
        Ok(f) => line.version_id(f.version_id.as_deref()).say(format_args!(
            "{call} '{}': version {}",
            r.id,
            f.version_id.as_deref().unwrap_or("-")
        )),
        Err(e) => line.say(format_args!(
            "{call} '{}' failed (exit {})",
            r.id,
            e.exit_code()
        )),
    }
}

async fn get_one(client: Client, secret: SecretRef, asked: Asked) -> Outcome {
    let started = Instant::now();
    let out = client
        .get_secret_value()
        .secret_id(&secret.id)
        .set_version_stage(secret.stage.clone())
        .set_version_id(secret.version_id.clone())
        .send()
        .await;
    let took = started.elapsed();
    let request_id = out.request_id().map(str::to_string);
    let result = match out {
        Ok(o) => Parts {
            name: o.name,
            version_id: o.version_id,
            stages: o.version_stages,
            text: o.secret_string,
            binary: o.secret_binary,
        }
        .into_fetched(&secret),
        Err(e) => Err(classify_sdk_call(&e, &asked, "GetSecretValue").for_secret(&secret)),
    };
    log_fetch(
        "GetSecretValue",
        &asked,
        &secret,
        &result,
        request_id.as_deref(),
        took,
    );
    (secret, result)
}

/// Why a batch's secrets are read one by one instead.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Why {
    /// IAM refuses `BatchGetSecretValue`: single reads may still be allowed.
    Denied,
    /// The batch call was throttled or did not answer: its quota (100/s per account and region)
    /// is a hundredth of `GetSecretValue`'s, so single reads can still get through.
    Unanswered,
}

/// A batch's secrets still to read one by one, and why.
struct Fallback {
    client: Client,
    asked: Asked,
    refs: Vec<SecretRef>,
    why: Why,
}

/// The batch call is tried once: whatever keeps it from answering (throttling, a 5xx, a timeout)
/// sends its secrets to `GetSecretValue`, whose reads have their own retries. Retrying the batch
/// itself would spend the scarce batch quota a fleet is already short of. A copy of the client
/// with one attempt (cheap: its parts are shared), rather than a per-call config override, whose
/// layering code costs the binary more.
fn one_attempt(client: &Client) -> Client {
    use aws_sdk_secretsmanager::config::retry::RetryConfig;
    let conf = client
        .config()
        .to_builder()
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .build();
    Client::from_conf(conf)
}

async fn batch(
    client: Client,
    refs: Vec<SecretRef>,
    asked: Asked,
) -> (Vec<Outcome>, Option<Fallback>) {
    let started = Instant::now();
    let mut request_id: Option<String> = None;
    let ids: Vec<String> = refs.iter().map(|r| r.id.clone()).collect();
    let mut results: BTreeMap<SecretRef, Result<Fetched, Error>> = BTreeMap::new();
    let mut token: Option<String> = None;
    let mut fallback: Option<Why> = None;
    let mut failed: Option<Failure> = None;
    let once = one_attempt(&client);
    // Ids are at most 20, so one page is the norm; the bound stops a server that loops tokens.
    for _page in 0..crate::plan::BATCH_SIZE {
        let out = once
            .batch_get_secret_value()
            .set_secret_id_list(Some(ids.clone()))
            .set_next_token(token.take())
            .send()
            .await;
        request_id = out.request_id().map(str::to_string);
        let mut out = match out {
            Ok(o) => o,
            Err(e) => {
                let code = e.as_service_error().and_then(|se| se.code()).unwrap_or("");
                let f = classify_sdk_call(&e, &asked, "BatchGetSecretValue");
                if is_policy_denial(code) {
                    fallback = Some(Why::Denied);
                } else if f.class == Class::Unavailable {
                    fallback = Some(Why::Unanswered);
                } else {
                    failed = Some(f);
                }
                break;
            }
        };
        for entry in out.secret_values.take().unwrap_or_default() {
            let Some(r) = refs.iter().find(|r| {
                !results.contains_key(*r)
                    && crate::arn::answers(&r.id, entry.name.as_deref(), entry.arn.as_deref())
            }) else {
                continue;
            };
            let result = Parts {
                name: entry.name,
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
                let err = coded(code, e.message.as_deref(), &asked).for_secret(r);
                results.insert(r.clone(), Err(err));
            }
        }
        token = out.next_token.take();
        if token.is_none() || results.len() == refs.len() {
            break;
        }
    }
    let took = started.elapsed();
    let (answered, rest): (Vec<SecretRef>, Vec<SecretRef>) =
        refs.into_iter().partition(|r| results.contains_key(r));
    let mut outcomes = Vec::with_capacity(answered.len() + rest.len());
    let mut log_one = |r: SecretRef, res: Result<Fetched, Error>| {
        log_fetch(
            "BatchGetSecretValue",
            &asked,
            &r,
            &res,
            request_id.as_deref(),
            took,
        );
        outcomes.push((r, res));
    };
    for r in answered {
        let res = results
            .remove(&r)
            .unwrap_or_else(|| Err(Error::Internal("lost".into())));
        log_one(r, res);
    }
    if let Some(why) = fallback
        && !rest.is_empty()
    {
        let fb = Fallback {
            client,
            asked,
            refs: rest,
            why,
        };
        return (outcomes, Some(fb));
    }
    for r in rest {
        // The whole call failed definitely (bad credentials, a rejected request): every secret
        // in it gets the failure, under its own name.
        let res = Err(match &failed {
            Some(f) => f.for_secret(&r),
            None => Error::Unavailable {
                secret: r.to_string(),
                why: "BatchGetSecretValue returned neither a value nor an error for it".into(),
            },
        });
        log_one(r, res);
    }
    (outcomes, None)
}

/// Up to this long before a throttled batch's single reads start, picked at random per launch,
/// so a fleet whose batches were turned away together does not arrive together again.
const FALLBACK_JITTER: Duration = Duration::from_millis(200);

/// Makes the plan's calls. Every secret of every call gets an outcome. The batches first, then
/// the single reads beside a fallen-back batch's (those after a random jitter when throttled).
pub async fn fetch(clients: &Clients, plan: Vec<RegionCalls>) -> Vec<Outcome> {
    let mut singles: Vec<(Client, Asked, SecretRef)> = Vec::new();
    let mut batches = JoinSet::new();
    for RegionCalls { region, calls } in plan {
        let client = clients.for_region(&region);
        let asked = Asked {
            endpoint: clients.endpoint(&region).to_string(),
            region,
        };
        for call in calls {
            match call {
                Call::Batch(refs) => {
                    batches.spawn(batch(client.clone(), refs, asked.clone()));
                }
                Call::One(r) => singles.push((client.clone(), asked.clone(), r)),
            }
        }
    }
    // The batches first, as before single reads: a run's single reads are its pinned versions
    // and small remainders, and an interrupted fetch then holds the batched values while they
    // are in flight (tests/it/memory.rs relies on that order).
    let mut results = Vec::new();
    let mut fallback: Vec<(Client, Asked, SecretRef)> = Vec::new();
    let mut unanswered = false;
    while let Some(joined) = batches.join_next().await {
        let Ok((done, fb)) = joined else { continue };
        results.extend(done);
        if let Some(fb) = fb {
            log_fallback(&fb);
            unanswered |= fb.why == Why::Unanswered;
            let Fallback {
                client,
                asked,
                refs,
                ..
            } = fb;
            fallback.extend(refs.into_iter().map(|r| (client.clone(), asked.clone(), r)));
        }
    }
    let direct = super::in_flight(
        singles
            .into_iter()
            .map(|(client, asked, r)| get_one(client, r, asked)),
    );
    let fallen_back = async move {
        if fallback.is_empty() {
            return Vec::new();
        }
        if unanswered {
            tokio::time::sleep(FALLBACK_JITTER.mul_f64(crate::duration::random_unit())).await;
        }
        let gets = fallback
            .into_iter()
            .map(|(client, asked, r)| get_one(client, r, asked));
        super::in_flight(gets).await
    };
    let (direct, fallen_back) = tokio::join!(direct, fallen_back);
    results.extend(direct);
    results.extend(fallen_back);
    results
}

/// The `fallback` event: a batch's secrets go to `GetSecretValue`, and why.
fn log_fallback(fb: &Fallback) {
    let n = fb.refs.len();
    let line = log::at(1, Event::Fallback)
        .source("secretsmanager")
        .call("BatchGetSecretValue")
        .region(&fb.asked.region)
        .count(n);
    match fb.why {
        Why::Denied => line.say(format_args!(
            "BatchGetSecretValue denied; falling back to GetSecretValue for {n} \
             secrets (grant secretsmanager:BatchGetSecretValue to save calls)"
        )),
        Why::Unanswered => line.say(format_args!(
            "BatchGetSecretValue throttled or unanswered in {}; falling back to GetSecretValue \
             for {n} secrets",
            fb.asked.region
        )),
    }
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
            ("InvalidParameterException", Class::Rejected, 64),
        ];
        let r = SecretRef::secret("prod/db", None, None);
        for (code, class, exit) in rows {
            assert_eq!(classify(code), class, "{code}");
            let asked = Asked {
                region: "eu-west-1".into(),
                endpoint: "https://sm.example".into(),
            };
            let e = coded(code, Some("msg\x1b[2J."), &asked).for_secret(&r);
            assert_eq!(e.exit_code(), exit, "{code}");
            let text = e.to_string();
            assert!(text.contains("prod/db") && text.contains(code), "{text}");
            assert!(!text.contains('\x1b'), "{text:?}");
            assert!(!text.contains(".;"), "{text}");
            // Only "not found" says where it asked: the wrong region is its commonest cause.
            let place = "(asked region eu-west-1 at https://sm.example)";
            assert_eq!(text.contains(place), class == Class::NotFound, "{text}");
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
}
