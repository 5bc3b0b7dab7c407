//! The plan: every distinct secret version the SPECs name, which backend serves it, in which
//! region, and in which calls. Built from the SPECs alone, and read by both the fetcher and
//! `--print-iam-policy`, so the policy grants exactly the calls the run makes. A new backend is
//! a `Backend` variant here and a module under `source/`.

use crate::error::Error;
use crate::spec::{SecretRef, Spec};
use std::collections::BTreeMap;

/// `BatchGetSecretValue` takes at most 20 ids per call.
pub const BATCH_SIZE: usize = 20;
/// `GetParameters` takes at most 10 names per call.
pub const PARAMETERS_PER_CALL: usize = 10;
/// Fewer AWSCURRENT reads than this in one region go through concurrent `GetSecretValue`.
/// AWS's quotas per account and region are 10,000 `GetSecretValue`/s but 100
/// `BatchGetSecretValue`/s (`source::aws::quota`), shared by every caller: a fleet starting a thousand
/// launches a second would throttle itself on batches. Up to `SINGLE_READS_IN_FLIGHT` single reads
/// take one round trip, as long as one batch, so below this batching saves calls but no time and
/// spends the scarce quota; from here on it saves round trips too (a 100-secret launch makes 5
/// calls). A throttled batch still falls back to single reads (`source::secrets_manager`).
pub const MIN_BATCH: usize = SINGLE_READS_IN_FLIGHT + 1;
/// Single reads a source keeps in flight at once (`source::in_flight`).
pub const SINGLE_READS_IN_FLIGHT: usize = 16;

/// The kind of a plan entry: which `source/` module fetches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Backend {
    SecretsManager,
    ParameterStore,
    /// Secrets Manager reads through the node-local AWS Secrets Manager Agent (`--agent`).
    Agent,
}

/// One secret version to fetch, and who fetches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub backend: Backend,
    pub secret: SecretRef,
}

/// One call a backend will make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// Several reads in one call: AWSCURRENT secrets in one `BatchGetSecretValue` (at most
    /// `BATCH_SIZE`), or parameters in one `GetParameters` (at most `PARAMETERS_PER_CALL`, each
    /// parameter name at most once, so every answer matches its request by name alone).
    Batch(Vec<SecretRef>),
    /// One `GetSecretValue` (direct or through the agent), or one paginated
    /// `GetParametersByPath`.
    One(SecretRef),
}

/// The calls to make in one region.
#[derive(Debug, PartialEq, Eq)]
pub struct RegionCalls {
    pub region: String,
    pub calls: Vec<Call>,
}

/// The distinct secret versions of a run, in SPEC order. Two SPECs naming the same version
/// share one entry, so one fetch.
#[derive(Debug)]
pub struct Plan {
    pub entries: Vec<Entry>,
    /// `--failover-region`: where Secrets Manager reads go when the primary region cannot
    /// answer (see `source::failover`).
    pub failover: Option<String>,
}

/// `--failover-region`, else `SECRET_EXEC_FAILOVER_REGION` (blank counts as unset): a region
/// name as AWS spells them (lower-case letters, digits and hyphens).
pub fn failover_region(flag: Option<&str>, env: Option<&str>) -> Result<Option<String>, Error> {
    let (name, raw) = match (flag, env.filter(|e| !e.trim().is_empty())) {
        (Some(f), _) => ("--failover-region", f),
        (None, Some(e)) => ("SECRET_EXEC_FAILOVER_REGION", e),
        (None, None) => return Ok(None),
    };
    let valid = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        return Err(Error::Usage(format!(
            "{name} '{}' is not a region name (e.g. us-west-2)",
            crate::sanitize::one_line(raw)
        )));
    }
    Ok(Some(raw.to_string()))
}

/// `r` as read from the replica region `to`: an ARN with its region field rewritten (a replica
/// keeps its primary's name and suffix), a name as it is.
pub fn in_region(r: &SecretRef, to: &str) -> SecretRef {
    let mut moved = r.clone();
    if let Some(a) = crate::arn::Arn::parse(&r.id) {
        moved.id = format!(
            "arn:{}:{}:{to}:{}:{}:{}",
            a.partition, a.service, a.account, a.kind, a.rest
        );
    }
    moved
}

impl Plan {
    /// With `agent`, Secrets Manager reads go through the local agent; parameters still go to
    /// Parameter Store (the agent serves secrets only).
    pub fn new(specs: &[Spec], agent: bool) -> Plan {
        let mut entries: Vec<Entry> = Vec::with_capacity(specs.len());
        for s in specs {
            if !entries.iter().any(|e| e.secret == s.secret) {
                let backend = if s.secret.is_ssm() {
                    Backend::ParameterStore
                } else if agent {
                    Backend::Agent
                } else {
                    Backend::SecretsManager
                };
                entries.push(Entry {
                    backend,
                    secret: s.secret.clone(),
                });
            }
        }
        Plan {
            entries,
            failover: None,
        }
    }

    /// Adds `--failover-region`. Parameter Store has no replication and the agent reads its own
    /// region, so their references could not fail over: rather than leave them silently
    /// unprotected, the flag is refused for them (64), naming them.
    pub fn with_failover(mut self, region: Option<String>) -> Result<Plan, Error> {
        if region.is_some() {
            let unprotected: Vec<String> = self
                .entries
                .iter()
                .filter(|e| e.backend != Backend::SecretsManager)
                .map(|e| format!("'{}'", e.secret))
                .collect();
            if !unprotected.is_empty() {
                return Err(Error::Usage(format!(
                    "--failover-region cannot protect {}: Parameter Store has no replication and \
                     the agent reads its own region; drop --failover-region or read these \
                     without it",
                    unprotected.join(", ")
                )));
            }
        }
        self.failover = region;
        Ok(self)
    }

    /// The Secrets Manager calls that read `refs` (secrets of this plan, already moved with
    /// `in_region`) in `region`, batched as the plan batches.
    pub fn calls_in(region: &str, refs: Vec<SecretRef>) -> RegionCalls {
        let mut refs = refs;
        refs.sort();
        RegionCalls {
            region: region.to_string(),
            calls: secret_calls(refs),
        }
    }

    /// Whether any entry needs AWS credentials and a region (everything but the agent's).
    pub fn needs_aws(&self) -> bool {
        self.entries.iter().any(|e| e.backend != Backend::Agent)
    }

    /// The entries AWS serves directly; the agent's region is its own business.
    fn aws_entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.backend != Backend::Agent)
    }

    /// The secrets one backend serves.
    pub fn secrets(&self, backend: Backend) -> impl Iterator<Item = &SecretRef> {
        self.entries
            .iter()
            .filter(move |e| e.backend == backend)
            .map(|e| &e.secret)
    }

    /// The secrets `--watch` follows, and the IAM printer grants `DescribeSecret` on: every
    /// entry without an explicit VERSION_ID (that pin never changes). A STAGE-pinned entry
    /// follows its own stage.
    pub fn watched(&self) -> Vec<SecretRef> {
        let mut refs: Vec<SecretRef> = self
            .secrets(Backend::SecretsManager)
            .filter(|r| r.version_id.is_none())
            .cloned()
            .collect();
        refs.sort();
        refs
    }

    /// The region to use when none is configured: the ARNs' region, when every secret is named
    /// by an ARN that has one (the first such ARN's, in plan order).
    pub fn region_from_arns(&self) -> Option<&str> {
        let mut regions = self.aws_entries().map(|e| e.secret.arn_region());
        let first = regions.next()??;
        regions.all(|r| r.is_some()).then_some(first)
    }

    /// Every region a client is needed in: each ARN's, the default and the failover region.
    pub fn regions(&self, default: &str) -> Vec<String> {
        let mut regions: Vec<String> = self
            .aws_entries()
            .filter_map(|e| e.secret.arn_region())
            .chain([default])
            .chain(self.failover.as_deref())
            .map(str::to_string)
            .collect();
        regions.sort();
        regions.dedup();
        regions
    }

    /// The calls for one backend, by region, as `secret_calls` and `parameter_calls` make them;
    /// through the agent, one by one.
    pub fn calls(&self, backend: Backend, default_region: &str) -> Vec<RegionCalls> {
        match backend {
            Backend::SecretsManager => self.per_region(backend, default_region, secret_calls),
            Backend::ParameterStore => self.per_region(backend, default_region, parameter_calls),
            // The agent has its own region; every read is one request to it.
            Backend::Agent => vec![RegionCalls {
                region: default_region.to_string(),
                calls: self.secrets(backend).cloned().map(Call::One).collect(),
            }],
        }
    }

    /// A backend's calls, by region (an ARN's own, else the default): `calls` makes a region's
    /// calls from its secrets, sorted.
    fn per_region(
        &self,
        backend: Backend,
        default_region: &str,
        calls: fn(Vec<SecretRef>) -> Vec<Call>,
    ) -> Vec<RegionCalls> {
        let mut refs: Vec<&SecretRef> = self.secrets(backend).collect();
        refs.sort();
        let mut by_region: BTreeMap<&str, Vec<SecretRef>> = BTreeMap::new();
        for r in refs {
            let region = r.arn_region().unwrap_or(default_region);
            by_region.entry(region).or_default().push(r.clone());
        }
        by_region
            .into_iter()
            .map(|(region, refs)| RegionCalls {
                region: region.to_string(),
                calls: calls(refs),
            })
            .collect()
    }
    /// Whether the run may call `BatchGetSecretValue`. With the default region unknown, names
    /// may share a region with any ARN, so they count towards every ARN region's batch.
    pub fn may_batch(&self, default_region: Option<&str>) -> bool {
        let mut by_region: BTreeMap<Option<&str>, usize> = BTreeMap::new();
        for r in self.secrets(Backend::SecretsManager) {
            if r.is_current() {
                *by_region
                    .entry(r.arn_region().or(default_region))
                    .or_default() += 1;
            }
        }
        let unknown = by_region.remove(&None).unwrap_or(0);
        // With a failover region, every secret may be read there together.
        let all: usize = unknown + by_region.values().sum::<usize>();
        let most_in_a_known_region = by_region.into_values().max().unwrap_or(0);
        unknown + most_in_a_known_region >= MIN_BATCH
            || (self.failover.is_some() && all >= MIN_BATCH)
    }
}

/// One region's Secrets Manager calls: its plain AWSCURRENT reads batched when there are at
/// least `MIN_BATCH` of them (at most `BATCH_SIZE` a call); the rest one by one.
fn secret_calls(refs: Vec<SecretRef>) -> Vec<Call> {
    let (current, pinned): (Vec<_>, Vec<_>) = refs.into_iter().partition(SecretRef::is_current);
    let mut calls: Vec<Call> = if current.len() >= MIN_BATCH {
        current
            .chunks(BATCH_SIZE)
            .map(|c| Call::Batch(c.to_vec()))
            .collect()
    } else {
        current.into_iter().map(Call::One).collect()
    };
    calls.extend(pinned.into_iter().map(Call::One));
    calls
}

/// One region's Parameter Store calls: single parameters packed into `GetParameters` calls of at
/// most `PARAMETERS_PER_CALL`, a name at most once per call (`/a` and `/a:1` go in different
/// calls); each path one `GetParametersByPath`.
fn parameter_calls(refs: Vec<SecretRef>) -> Vec<Call> {
    let (paths, singles): (Vec<_>, Vec<_>) = refs.into_iter().partition(SecretRef::is_ssm_path);
    let mut groups: Vec<Vec<SecretRef>> = Vec::new();
    for r in singles {
        let name = r.ssm_name();
        let fits = groups.iter_mut().find(|call| {
            call.len() < PARAMETERS_PER_CALL && call.iter().all(|c| c.ssm_name() != name)
        });
        match fits {
            Some(call) => call.push(r),
            None => groups.push(vec![r]),
        }
    }
    groups
        .into_iter()
        .map(Call::Batch)
        .chain(paths.into_iter().map(Call::One))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec;

    const EU: &str = "arn:aws:secretsmanager:eu-west-1:1:secret:x-AbCdEf";

    fn plan(raw: &[&str]) -> Plan {
        Plan::new(&spec::parse_all(raw), false)
    }

    fn ids(call: &Call) -> Vec<&str> {
        match call {
            Call::Batch(rs) => rs.iter().map(|r| r.id.as_str()).collect(),
            Call::One(r) => vec![r.id.as_str()],
        }
    }

    #[test]
    fn calls_table() {
        let rows: &[(&[&str], &[(&str, &[(&str, &[&str])])])] = &[
            (&["a"], &[("us-east-1", &[("one", &["a"])])]),
            // A few AWSCURRENT reads go one by one (see `MIN_BATCH`).
            (
                &["a", "b"],
                &[("us-east-1", &[("one", &["a"]), ("one", &["b"])])],
            ),
            // The same version twice is one entry.
            (&["A=a:k1", "B=a:k2"], &[("us-east-1", &[("one", &["a"])])]),
            (
                &["a", "b::AWSPREVIOUS"],
                &[("us-east-1", &[("one", &["a"]), ("one", &["b"])])],
            ),
            (
                &["a", EU],
                &[
                    ("eu-west-1", &[("one", &[EU])]),
                    ("us-east-1", &[("one", &["a"])]),
                ],
            ),
        ];
        for (raw, want) in rows {
            let got = plan(raw).calls(Backend::SecretsManager, "us-east-1");
            let got: Vec<(&str, Vec<(&str, Vec<&str>)>)> = got
                .iter()
                .map(|rc| {
                    let calls = rc
                        .calls
                        .iter()
                        .map(|c| {
                            (
                                if matches!(c, Call::Batch(_)) {
                                    "batch"
                                } else {
                                    "one"
                                },
                                ids(c),
                            )
                        })
                        .collect();
                    (rc.region.as_str(), calls)
                })
                .collect();
            let want: Vec<(&str, Vec<(&str, Vec<&str>)>)> = want
                .iter()
                .map(|(r, cs)| (*r, cs.iter().map(|(k, i)| (*k, i.to_vec())).collect()))
                .collect();
            assert_eq!(got, want, "{raw:?}");
        }
    }

    #[test]
    fn parameter_calls_hold_ten_distinct_names() {
        let names: Vec<String> = (0..23).map(|i| format!("ssm:/p/{i:02}")).collect();
        let mut raw: Vec<&str> = names.iter().map(String::as_str).collect();
        raw.extend(["ssm:/p/00:2", "ssm:/p/00:label", "ssm:/dir/", "X=ssm:/p/01"]);
        let p = plan(&raw);
        assert!(
            p.entries
                .iter()
                .all(|e| e.backend == Backend::ParameterStore)
        );
        let got = p.calls(Backend::ParameterStore, "r");
        assert_eq!(got.len(), 1);
        let shape: Vec<(bool, usize)> = got[0]
            .calls
            .iter()
            .map(|c| (matches!(c, Call::Batch(_)), ids(c).len()))
            .collect();
        assert_eq!(shape, [(true, 10), (true, 10), (true, 5), (false, 1)]);
        for c in &got[0].calls {
            if let Call::Batch(rs) = c {
                let mut names: Vec<String> = rs.iter().map(SecretRef::ssm_name).collect();
                names.sort();
                let n = names.len();
                names.dedup();
                assert_eq!(names.len(), n, "{rs:?}");
            }
        }
        let arn = "arn:aws:ssm:eu-west-1:1:parameter/app/db";
        let got = plan(&["ssm:/a", arn]).calls(Backend::ParameterStore, "us-east-1");
        let regions: Vec<&str> = got.iter().map(|rc| rc.region.as_str()).collect();
        assert_eq!(regions, ["eu-west-1", "us-east-1"]);
    }

    #[test]
    fn the_agent_serves_secrets_only() {
        let specs = spec::parse_all(&["a", "b", "ssm:/c"]);
        let p = Plan::new(&specs, true);
        let backends: Vec<Backend> = p.entries.iter().map(|e| e.backend).collect();
        assert_eq!(
            backends,
            [Backend::Agent, Backend::Agent, Backend::ParameterStore]
        );
        assert!(p.needs_aws());
        assert!(!Plan::new(&specs[..2], true).needs_aws());
        let calls = &p.calls(Backend::Agent, "")[0].calls;
        assert!(calls.iter().all(|c| matches!(c, Call::One(_))) && calls.len() == 2);
    }

    #[test]
    fn batches_hold_at_most_twenty() {
        let names: Vec<String> = (0..45).map(|i| format!("s{i:02}")).collect();
        let raw: Vec<&str> = names.iter().map(String::as_str).collect();
        let got = plan(&raw).calls(Backend::SecretsManager, "r");
        let sizes: Vec<usize> = got[0].calls.iter().map(|c| ids(c).len()).collect();
        assert_eq!(sizes, [20, 20, 5]);
    }

    #[test]
    fn batches_start_where_single_reads_take_a_second_round_trip() {
        for (n, batches) in [(1, 0), (MIN_BATCH - 1, 0), (MIN_BATCH, 1), (100, 5)] {
            let names: Vec<String> = (0..n).map(|i| format!("s{i:03}")).collect();
            let raw: Vec<&str> = names.iter().map(String::as_str).collect();
            let got = plan(&raw).calls(Backend::SecretsManager, "r");
            let calls = &got[0].calls;
            let b = calls.iter().filter(|c| matches!(c, Call::Batch(_))).count();
            assert_eq!(b, batches, "{n} secrets");
            let want = if batches == 0 { n } else { batches };
            assert_eq!(calls.len(), want, "{n} secrets");
        }
        assert_eq!(MIN_BATCH, SINGLE_READS_IN_FLIGHT + 1);
    }

    /// The plan batches exactly when the policy grants `BatchGetSecretValue` for it.
    #[test]
    fn may_batch_agrees_with_calls() {
        let names: Vec<String> = (0..MIN_BATCH - 1).map(|i| format!("s{i}")).collect();
        let mut rows: Vec<Vec<&str>> = vec![vec!["a"], vec!["a", "b"], vec!["a", EU]];
        let few: Vec<&str> = names.iter().map(String::as_str).collect();
        for extra in ["b", EU, "b::AWSCURRENT", "b::AWSPREVIOUS"] {
            let mut row = few.clone();
            row.push(extra);
            rows.push(row);
        }
        rows.push(few);
        for raw in &rows {
            let p = plan(raw);
            for region in ["us-east-1", "eu-west-1"] {
                let batches = p
                    .calls(Backend::SecretsManager, region)
                    .iter()
                    .any(|rc| rc.calls.iter().any(|c| matches!(c, Call::Batch(_))));
                assert_eq!(p.may_batch(Some(region)), batches, "{raw:?} {region}");
            }
        }
    }

    #[test]
    fn pinned_versions_are_not_watched() {
        let p = plan(&[
            "a",
            "X=a",
            "b::AWSPREVIOUS",
            "c:::v1",
            "d::AWSCURRENT:v2",
            "A=a:k",
        ]);
        let got: Vec<String> = p.watched().iter().map(|r| r.to_string()).collect();
        assert_eq!(got, ["a", "b (stage AWSPREVIOUS)"]);
    }

    #[test]
    fn failover_region_parses_and_moves_arns() {
        let rows: &[(Option<&str>, Option<&str>, Result<Option<&str>, ()>)] = &[
            (None, None, Ok(None)),
            (None, Some("  "), Ok(None)),
            (None, Some("us-west-2"), Ok(Some("us-west-2"))),
            (Some("eu-west-1"), Some("us-west-2"), Ok(Some("eu-west-1"))),
            (Some(""), None, Err(())),
            (Some("US-WEST-2"), None, Err(())),
            (None, Some("us west"), Err(())),
        ];
        for (flag, env, want) in rows {
            let got = failover_region(*flag, *env);
            match want {
                Ok(w) => assert_eq!(got.unwrap().as_deref(), *w, "{flag:?} {env:?}"),
                Err(()) => assert_eq!(got.unwrap_err().exit_code(), 64, "{flag:?} {env:?}"),
            }
        }
        let r = SecretRef::secret(EU, None, None);
        assert_eq!(
            in_region(&r, "us-west-2").id,
            "arn:aws:secretsmanager:us-west-2:1:secret:x-AbCdEf"
        );
        let r = SecretRef::secret("prod/db", None, None);
        assert_eq!(in_region(&r, "us-west-2"), r);
    }

    #[test]
    fn failover_refuses_what_it_cannot_protect() {
        let specs = spec::parse_all(&["a", "ssm:/p"]);
        let e = Plan::new(&specs, false)
            .with_failover(Some("us-west-2".into()))
            .unwrap_err();
        assert_eq!(e.exit_code(), 64);
        assert!(
            e.to_string().contains("'ssm:/p'") && !e.to_string().contains("'a'"),
            "{e}"
        );
        let p = Plan::new(&specs[..1], false)
            .with_failover(Some("us-west-2".into()))
            .unwrap();
        assert_eq!(p.regions("us-east-1"), ["us-east-1", "us-west-2"]);
        assert!(Plan::new(&specs, false).with_failover(None).is_ok());
    }

    #[test]
    fn regions() {
        let other = "arn:aws:secretsmanager:ap-south-1:1:secret:y";
        assert_eq!(plan(&[EU, other]).region_from_arns(), Some("eu-west-1"));
        assert_eq!(plan(&[other, EU]).region_from_arns(), Some("ap-south-1"));
        assert_eq!(plan(&[EU, "a"]).region_from_arns(), None);
        assert_eq!(plan(&["a"]).region_from_arns(), None);
        assert_eq!(
            plan(&[EU, other, "a"]).regions("us-east-1"),
            ["ap-south-1", "eu-west-1", "us-east-1"]
        );
    }
}
