//! Sources: one module per backend. Each takes the plan's requests for it and returns a
//! backend-neutral `Fetched` (or an error) per secret, classifying its own failures into a
//! `Failure` once per call. The types here are the seam a new backend plugs into: add a
//! `plan::Backend` variant, a module beside `secrets_manager`, and one arm in `fetch_all`.

pub mod agent;
pub mod attempts;
pub mod aws;
pub mod body_cap;
pub mod credentials;
pub mod describe;
pub mod files;
pub mod orphans;
pub mod parameter_store;
pub mod proxy;
mod sdk;
pub mod secrets_manager;
pub mod tls;
pub mod tls_pq;
pub mod window;

use crate::config::AwsOptions;
use crate::error::Error;
use crate::plan::{Backend, Plan};
use crate::secret::{SecretBytes, SecretText};
use crate::spec::SecretRef;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// One value of many, named by the backend (a parameter below a path).
#[derive(Debug)]
pub struct Named {
    /// The full name, e.g. `/app/prod/db/password`: metadata, safe to print.
    pub name: String,
    pub value: SecretText,
}

/// The value a backend returned for one secret version.
#[derive(Debug)]
pub enum Payload {
    Text(SecretText),
    /// Every parameter below an `ssm:/PATH/`, in the order the service listed them.
    Tree(Vec<Named>),
    Binary(SecretBytes),
}

/// One fetched secret version, whatever served it. Only `payload` is secret (and redacted in
/// `Debug`); the rest is metadata safe to print.
#[derive(Debug)]
pub struct Fetched {
    /// The secret's name as the backend knows it (an ARN request is answered with the name).
    pub name: String,
    pub version_id: Option<String>,
    pub stages: Vec<String>,
    pub payload: Payload,
}

/// Every secret's outcome. All come back; the caller decides (all-or-nothing).
pub type Results = BTreeMap<SecretRef, Result<Fetched, Error>>;

/// The version id each secret version was answered with: what `--watch` compares the live
/// stages with. Metadata only.
pub type Versions = BTreeMap<SecretRef, Option<String>>;

/// The versions of every successful fetch in `results`.
pub fn versions(results: &Results) -> Versions {
    results
        .iter()
        .map(|(r, f)| {
            (
                r.clone(),
                f.as_ref().ok().and_then(|f| f.version_id.clone()),
            )
        })
        .collect()
}

/// The SPEC class of a backend failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    NotFound,
    Permission,
    Unavailable,
    /// The backend refused the request as malformed.
    Rejected,
    /// The request could not even be built (region, endpoint settings).
    Config,
}

/// A failed call, classified once: its class and why, not yet tied to a secret. A call that
/// fails for several secrets (a batch) gives each of them its own error from this.
#[derive(Clone, Debug)]
pub struct Failure {
    pub service: &'static str,
    pub class: Class,
    /// Already sanitised, and ends with what to do.
    pub why: String,
}

impl Failure {
    /// The error for one secret the failed call was for.
    pub fn for_secret(&self, secret: &SecretRef) -> Error {
        let (secret, why) = (secret.to_string(), self.why.clone());
        match self.class {
            Class::NotFound => Error::NotFound { secret, why },
            Class::Permission => Error::Permission { secret, why },
            Class::Unavailable => Error::Unavailable { secret, why },
            Class::Rejected => Error::Rejected {
                service: self.service,
                secret,
                why,
            },
            Class::Config => Error::Config(format!(
                "cannot build the request for secret '{secret}': {why}"
            )),
        }
    }
}

/// Calls in flight at once, per source: enough to hide latency, few enough not to trip a
/// service's request-rate limit when a fleet starts together (the local agent takes 800).
const IN_FLIGHT: usize = 16;

/// Runs every task with at most `IN_FLIGHT` of them at once; the outputs in the order the tasks
/// finish. A task that panicked has no output.
async fn in_flight<T, F>(tasks: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let limit = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut set = JoinSet::new();
    for task in tasks {
        let limit = limit.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            task.await
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(o) = joined {
            out.push(o);
        }
    }
    out
}

/// Fetches every entry of the plan from its backend, the backends side by side. `clients` is
/// there whenever the plan needs AWS (`Plan::needs_aws`); the agent needs none.
pub async fn fetch_all(clients: Option<&aws::Clients>, opts: &AwsOptions, plan: &Plan) -> Results {
    let region = clients.map_or("", |c| c.default_region.as_str());
    let run = |backend: Backend| async move {
        if !plan.entries.iter().any(|e| e.backend == backend) {
            return Vec::new();
        }
        let calls = plan.calls(backend, region);
        match (backend, clients, &opts.agent) {
            (Backend::SecretsManager, Some(c), _) => secrets_manager::fetch(c, calls).await,
            (Backend::ParameterStore, Some(c), _) => parameter_store::fetch(c, calls).await,
            (Backend::Agent, _, Some(agent)) => {
                agent::fetch(agent, opts.timeout, opts.max_attempts, calls).await
            }
            // The plan and the caller disagree: a bug, reported per secret, never a panic.
            _ => plan
                .secrets(backend)
                .map(|r| {
                    let err = Error::Internal(format!("no source set up for '{r}'"));
                    (r.clone(), Err(err))
                })
                .collect(),
        }
    };
    let (sm, ssm, agent) = tokio::join!(
        run(Backend::SecretsManager),
        run(Backend::ParameterStore),
        run(Backend::Agent)
    );
    sm.into_iter().chain(ssm).chain(agent).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failure shared by a whole batch names each secret itself, never another one.
    #[test]
    fn a_shared_failure_names_each_secret() {
        let refs: Vec<SecretRef> = ["prod/a", "prod/b"]
            .iter()
            .map(|id| SecretRef::secret(*id, None, None))
            .collect();
        for (class, code) in [
            (Class::NotFound, 66),
            (Class::Permission, 77),
            (Class::Unavailable, 69),
            (Class::Rejected, 64),
            (Class::Config, 78),
        ] {
            let f = Failure {
                service: "Secrets Manager",
                class,
                why: "ExpiredTokenException; refresh".into(),
            };
            for (mine, other) in [(&refs[0], &refs[1]), (&refs[1], &refs[0])] {
                let e = f.for_secret(mine);
                let text = e.to_string();
                assert_eq!(e.exit_code(), code, "{text}");
                assert!(text.contains(&format!("'{}'", mine.id)), "{text}");
                assert!(!text.contains(&other.id), "{text}");
            }
        }
    }
}
