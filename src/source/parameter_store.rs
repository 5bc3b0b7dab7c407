//! Parameter Store: `GetParameters` for the plan's groups of single parameters (at most 10 names,
//! each name once, calls concurrent), and a paginated, recursive `GetParametersByPath` for each
//! `ssm:/PATH/`. SecureStrings are asked for decrypted. Values move from the SDK's strings into
//! `SecretText` as soon as a response is in hand. Names the service reports as invalid are all
//! collected, so a run with several missing parameters names every one of them.

use super::aws::Clients;
use super::aws::sdk::{Rules, is_denial_or_credentials};
use super::{Class, Failure, Fetched, Named, Outcome, Payload};
use crate::error::Error;
use crate::log::{self, Event};
use crate::plan::{Call, RegionCalls};
use crate::secret::SecretText;
use crate::spec::{SecretRef, ssm_name_of};

const SERVICE: &str = "Parameter Store";
/// `GetParametersByPath` returns at most 10 per page; this bounds a path at 10,000 parameters,
/// far more than an environment holds, and stops a server that never ends its token chain.
const MAX_PAGES: usize = 1000;

type Client = aws_sdk_ssm::Client;
fn classify(code: &str) -> Class {
    match code {
        "ParameterNotFound" | "ParameterVersionNotFound" => Class::NotFound,
        "InvalidKeyId" => Class::Permission,
        c if is_denial_or_credentials(c) => Class::Permission,
        "ValidationException"
        | "InvalidFilterKey"
        | "InvalidFilterOption"
        | "InvalidFilterValue"
        | "InvalidNextToken" => Class::Rejected,
        _ => Class::Unavailable,
    }
}

fn advice(class: Class) -> &'static str {
    match class {
        Class::NotFound => "check the parameter name, region, and version or label",
        Class::Permission => {
            "check the IAM policy (ssm:GetParameters, ssm:GetParametersByPath, kms:Decrypt) and \
             that the credentials are current"
        }
        Class::Unavailable => {
            "Parameter Store did not answer usefully after every retry; check the network path \
             and endpoint, or raise --timeout"
        }
        Class::Rejected => "check the parameter name and selector",
        Class::Config => "check region and endpoint settings",
    }
}

const RULES: Rules = Rules {
    service: SERVICE,
    classify,
    advice,
};

/// The outcome of a parameter its call failed for.
fn failed(r: SecretRef, class: Class, what: String) -> Outcome {
    let err = RULES.failure(class, what).for_secret(&r);
    (r, Err(err))
}

/// Whether an answered parameter is the one requested. A call never holds one name twice (the
/// plan's rule), so the name alone decides, whether it comes back as a name or an ARN.
fn answers(requested: &SecretRef, name: Option<&str>, arn: Option<&str>) -> bool {
    let want = requested.ssm_name();
    name.is_some_and(|n| n == requested.id || ssm_name_of(n) == want)
        || arn.is_some_and(|a| a == requested.id || ssm_name_of(a) == want)
}

struct GroupOutcome {
    done: Vec<Outcome>,
    /// Requested but reported in `InvalidParameters`.
    missing: Vec<SecretRef>,
}

/// A failed call of `api`: throttling past every retry names the region's throughput quota.
fn sdk_failure<E>(
    err: &aws_sdk_secretsmanager::error::SdkError<
        E,
        aws_sdk_secretsmanager::config::http::HttpResponse,
    >,
    api: &str,
    client: &Client,
) -> Failure
where
    E: aws_sdk_secretsmanager::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let region = client
        .config()
        .region()
        .map_or("its region", |r| r.as_ref());
    RULES
        .throttled(err, api, region)
        .unwrap_or_else(|| RULES.sdk(err))
}

async fn get_group(client: Client, refs: Vec<SecretRef>) -> GroupOutcome {
    let names: Vec<String> = refs.iter().map(SecretRef::ssm_request_name).collect();
    let out = client
        .get_parameters()
        .set_names(Some(names.clone()))
        .with_decryption(true)
        .send()
        .await;
    let mut out = match out {
        Ok(o) => o,
        Err(e) => {
            let shared = sdk_failure(&e, "GetParameters", &client);
            let done = refs
                .into_iter()
                .map(|r| {
                    let err = shared.for_secret(&r);
                    (r, Err(err))
                })
                .collect();
            return GroupOutcome {
                done,
                missing: Vec::new(),
            };
        }
    };
    let invalid = out.invalid_parameters.take().unwrap_or_default();
    let mut pending: Vec<SecretRef> = Vec::with_capacity(refs.len());
    let mut missing = Vec::new();
    for (r, name) in refs.into_iter().zip(names) {
        if invalid.contains(&name) {
            missing.push(r);
        } else {
            pending.push(r);
        }
    }
    let mut done = Vec::with_capacity(pending.len());
    for mut p in out.parameters.take().unwrap_or_default() {
        let Some(i) = pending
            .iter()
            .position(|r| answers(r, p.name.as_deref(), p.arn.as_deref()))
        else {
            continue;
        };
        let r = pending.swap_remove(i);
        let result = match p.value.take() {
            Some(v) => Ok(Fetched {
                name: p
                    .name
                    .take()
                    .map_or_else(|| r.ssm_name(), |n| ssm_name_of(&n)),
                version_id: Some(p.version.to_string()),
                stages: Vec::new(),
                payload: Payload::Text(SecretText::from_owned(v)),
            }),
            None => Err(RULES
                .failure(Class::Unavailable, "the answer has no Value".into())
                .for_secret(&r)),
        };
        done.push((r, result));
    }
    for r in pending {
        let why = "GetParameters returned neither a value nor an invalid name for it";
        done.push(failed(r, Class::Unavailable, why.into()));
    }
    GroupOutcome { done, missing }
}

/// Every parameter below the path, all pages. An empty path is "not found": the operator asked
/// for configuration that is not there.
async fn get_path(client: Client, r: SecretRef) -> Outcome {
    let trimmed = r.id.trim_end_matches('/');
    let path = if trimmed.is_empty() { "/" } else { trimmed };
    let mut named: Vec<Named> = Vec::new();
    let mut token: Option<String> = None;
    for page in 0.. {
        if page == MAX_PAGES {
            let why = format!("more than {MAX_PAGES} pages of parameters under the path");
            return failed(r, Class::Unavailable, why);
        }
        let out = client
            .get_parameters_by_path()
            .path(path)
            .recursive(true)
            .with_decryption(true)
            .max_results(10)
            .set_next_token(token.take())
            .send()
            .await;
        let mut out = match out {
            Ok(o) => o,
            Err(e) => {
                let err = sdk_failure(&e, "GetParametersByPath", &client).for_secret(&r);
                return (r, Err(err));
            }
        };
        for mut p in out.parameters.take().unwrap_or_default() {
            if let (Some(name), Some(value)) = (p.name.take(), p.value.take()) {
                named.push(Named {
                    name,
                    value: SecretText::from_owned(value),
                });
            }
        }
        token = out.next_token.take().filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    if named.is_empty() {
        let why = format!("no parameters under {path} (GetParametersByPath, recursive)");
        return failed(r, Class::NotFound, why);
    }
    log::at(2, Event::Fetch)
        .source("ssm")
        .say(format_args!("{} parameter(s) under {path}", named.len()));
    let fetched = Fetched {
        name: r.id.clone(),
        version_id: None,
        stages: Vec::new(),
        payload: Payload::Tree(named),
    };
    (r, Ok(fetched))
}

enum Job {
    Group(GroupOutcome),
    Path(Outcome),
}

/// Makes the plan's calls. Every parameter of every call gets an outcome.
pub async fn fetch(clients: &Clients, plan: Vec<RegionCalls>) -> Vec<Outcome> {
    let mut jobs = Vec::new();
    for RegionCalls { region, calls } in plan {
        let client = clients.ssm_for_region(&region).clone();
        for call in calls {
            let line = log::at(2, Event::Fetch).source("ssm");
            match &call {
                Call::Batch(refs) => line.say(format_args!(
                    "GetParameters for {} name(s) in {region}",
                    refs.len()
                )),
                Call::One(r) => line.say(format_args!("GetParametersByPath {r} in {region}")),
            }
            let client = client.clone();
            jobs.push(async move {
                match call {
                    Call::Batch(refs) => Job::Group(get_group(client, refs).await),
                    Call::One(r) => Job::Path(get_path(client, r).await),
                }
            });
        }
    }
    let mut results = Vec::new();
    let mut missing: Vec<SecretRef> = Vec::new();
    for job in super::in_flight(jobs).await {
        match job {
            Job::Group(g) => {
                results.extend(g.done);
                missing.extend(g.missing);
            }
            Job::Path(o) => results.push(o),
        }
    }
    missing.sort();
    let all: Vec<String> = missing.iter().map(|r| format!("'{r}'")).collect();
    for r in missing {
        let why = format!(
            "Parameter Store reports it does not exist (missing in this run: {}); {}",
            all.join(", "),
            advice(Class::NotFound)
        );
        results.push((
            r.clone(),
            Err(Error::NotFound {
                secret: r.to_string(),
                why,
            }),
        ));
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec;

    fn r(raw: &str) -> SecretRef {
        spec::parse(raw).unwrap().secret
    }

    #[test]
    fn classify_table() {
        let rows = [
            ("ParameterNotFound", 66),
            ("ParameterVersionNotFound", 66),
            ("AccessDeniedException", 77),
            ("InvalidKeyId", 77),
            ("ExpiredTokenException", 77),
            ("ThrottlingException", 69),
            ("InternalServerError", 69),
            ("ValidationException", 64),
            ("SomethingNew", 69),
        ];
        let p = r("ssm:/app/db");
        for (code, exit) in rows {
            let (class, what) = RULES.read_code(code, Some("msg\x1b[2J"));
            let e = RULES.failure(class, what).for_secret(&p);
            assert_eq!(e.exit_code(), exit, "{code}");
            let text = e.to_string();
            assert!(
                text.contains("ssm:/app/db") && text.contains(code),
                "{text}"
            );
            assert!(!text.contains('\x1b'), "{text:?}");
        }
    }

    #[test]
    fn answers_match_by_name_or_arn() {
        let arn = "arn:aws:ssm:us-east-1:123456789012:parameter/app/db";
        let rows: &[(&str, Option<&str>, Option<&str>, bool)] = &[
            ("ssm:/app/db", Some("/app/db"), None, true),
            ("ssm:/app/db:3", Some("/app/db"), None, true),
            ("ssm:/app/db", Some("/app/dbx"), None, false),
            (arn, Some("/app/db"), Some(arn), true),
            (arn, Some(arn), None, true),
            ("ssm:/app/db", None, Some(arn), true),
            ("ssm:db", Some("db"), None, true),
            ("ssm:db", Some("/db"), None, false),
        ];
        for (req, name, a, want) in rows {
            assert_eq!(answers(&r(req), *name, *a), *want, "{req} {name:?} {a:?}");
        }
    }
}
