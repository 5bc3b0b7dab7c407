//! `--print-iam-policy`: the least-privilege IAM policy the given SPECs need, worked out from the
//! SPECs alone (never an AWS call). Names become `name-??????` ARN patterns (AWS appends a random
//! 6-character suffix), given ARNs keep their partition, region and account, and
//! `BatchGetSecretValue` is granted only when the plan may call it.

use crate::arn::{Arn, strip_suffix};
use crate::plan::{Backend, Plan};
use std::collections::BTreeSet;

/// Where a secret lives, as far as the SPEC says, already escaped for a policy: `*` stands for
/// "not known here" and is the only wildcard in it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    partition: String,
    region: String,
    account: String,
}

/// The partition a region belongs to; unknown prefixes are the commercial one.
fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    }
}

/// The DNS suffix of a partition, which `kms:ViaService` values end with.
fn dns_suffix(partition: &str) -> &'static str {
    match partition {
        "aws-cn" => "amazonaws.com.cn",
        "aws-iso" => "c2s.ic.gov",
        "aws-iso-b" => "sc2s.sgov.gov",
        _ => "amazonaws.com",
    }
}

/// IAM reads `*`, `?` and `${…}` in a resource as wildcards and variables; a literal one must be
/// written as a policy variable, or the grant would silently widen.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '*' => out.push_str("${*}"),
            '?' => out.push_str("${?}"),
            '$' => out.push_str("${$}"),
            c => out.push(c),
        }
    }
    out
}

/// The `GetSecretValue` resource for one secret id, and where that secret lives.
fn secret_resource(id: &str, region: Option<&str>) -> (String, Place) {
    let region = region.filter(|r| !r.is_empty());
    let known = |field: &str, fallback: Option<&str>| match (field, fallback) {
        ("", Some(f)) => escape(f),
        ("", None) => "*".to_string(),
        (f, _) => escape(f),
    };
    if let Some(arn) = Arn::parse(id) {
        let place = Place {
            partition: known(arn.partition, Some("aws")),
            // An ARN without a region is fetched from the default region.
            region: known(arn.region, region),
            account: known(arn.account, None),
        };
        // A full ARN pins one incarnation of the secret; the pattern survives a re-creation,
        // and a partial ARN (no suffix) needs the pattern to match at all.
        let resource = format!(
            "arn:{}:secretsmanager:{}:{}:secret:{}-??????",
            place.partition,
            place.region,
            place.account,
            escape(strip_suffix(arn.rest))
        );
        return (resource, place);
    }
    let place = Place {
        partition: partition_of(region.unwrap_or("")).to_string(),
        region: known("", region),
        account: "*".to_string(),
    };
    let resource = format!(
        "arn:{}:secretsmanager:{}:{}:secret:{}-??????",
        place.partition,
        place.region,
        place.account,
        escape(id)
    );
    (resource, place)
}

/// The ARN of a parameter (or, for a path ending in `/`, of the path with that `/`), and where it
/// lives. Hierarchical names start with `/`, which the ARN's `parameter/` already supplies.
fn parameter_resource(id: &str, region: Option<&str>) -> (String, Place) {
    let region = region.filter(|r| !r.is_empty());
    if id.starts_with("arn:") {
        let f: Vec<&str> = id.splitn(6, ':').collect();
        let field =
            |i: usize, fallback: Option<&str>| match (f.get(i).copied().unwrap_or(""), fallback) {
                ("", Some(d)) => escape(d),
                ("", None) => "*".to_string(),
                (v, _) => escape(v),
            };
        let place = Place {
            partition: field(1, Some("aws")),
            region: field(3, region),
            account: field(4, None),
        };
        let resource = format!(
            "arn:{}:ssm:{}:{}:{}",
            place.partition,
            place.region,
            place.account,
            escape(f.get(5).copied().unwrap_or(""))
        );
        return (resource, place);
    }
    let place = Place {
        partition: partition_of(region.unwrap_or("")).to_string(),
        region: region.map_or_else(|| "*".to_string(), escape),
        account: "*".to_string(),
    };
    let name = id.strip_prefix('/').unwrap_or(id);
    let resource = format!(
        "arn:{}:ssm:{}:{}:parameter/{}",
        place.partition,
        place.region,
        place.account,
        escape(name)
    );
    (resource, place)
}

/// `kms:Decrypt` on customer managed keys where the values live, usable only through `service`
/// (`kms:ViaService`), never as a general decryptor.
fn decrypt_via(sid: &str, service: &str, places: &BTreeSet<Place>) -> Json {
    let keys: BTreeSet<String> = places
        .iter()
        .map(|p| format!("arn:{}:kms:{}:{}:key/*", p.partition, p.region, p.account))
        .collect();
    let via: BTreeSet<String> = places
        .iter()
        .map(|p| format!("{service}.{}.{}", p.region, dns_suffix(&p.partition)))
        .collect();
    let operator = if via.iter().any(|v| v.contains('*')) {
        "StringLike"
    } else {
        "StringEquals"
    };
    let mut statement = allow(sid, "kms:Decrypt", keys);
    let via = Json::Obj(vec![(
        "kms:ViaService",
        Json::List(via.into_iter().collect()),
    )]);
    statement.push(("Condition", Json::Obj(vec![(operator, via)])));
    Json::Obj(statement)
}

/// The fields of a statement allowing `action` on `resources` (one is printed as a string).
fn allow(
    sid: &str,
    action: &str,
    resources: impl IntoIterator<Item = String>,
) -> Vec<(&'static str, Json)> {
    vec![
        ("Sid", Json::Str(sid.to_string())),
        ("Effect", Json::Str("Allow".into())),
        ("Action", Json::Str(action.to_string())),
        ("Resource", Json::List(resources.into_iter().collect())),
    ]
}

/// A JSON value with its keys in the order written, so the policy reads the way AWS prints one.
enum Json {
    Str(String),
    List(Vec<String>),
    Obj(Vec<(&'static str, Json)>),
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn render(v: &Json, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent + 1);
    let close = "  ".repeat(indent);
    match v {
        Json::Str(s) => out.push_str(&quote(s)),
        Json::List(items) if items.len() == 1 => out.push_str(&quote(&items[0])),
        Json::List(items) => {
            out.push_str("[\n");
            for (i, s) in items.iter().enumerate() {
                let comma = if i + 1 < items.len() { "," } else { "" };
                out.push_str(&format!("{pad}{}{comma}\n", quote(s)));
            }
            out.push_str(&close);
            out.push(']');
        }
        Json::Obj(fields) => {
            out.push_str("{\n");
            for (i, (k, v)) in fields.iter().enumerate() {
                out.push_str(&format!("{pad}{}: ", quote(k)));
                render(v, indent + 1, out);
                out.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
            }
            out.push_str(&close);
            out.push('}');
        }
    }
}

/// The policy document for the plan, `region` being the default region when one is known:
/// `--region`, else the environment's (as the run would pick it), else unknown (`*`); reading
/// the profile's region is left to the run, so a profile-only region gives `*` here. `watch`
/// adds `DescribeSecret` on the secrets `--watch` polls.
pub fn document(plan: &Plan, region: Option<&str>, watch: bool) -> String {
    let mut resources = BTreeSet::new();
    let mut places = BTreeSet::new();
    // Through the agent the same reads happen, made by the agent's role: the policy is for it.
    for r in plan
        .secrets(Backend::SecretsManager)
        .chain(plan.secrets(Backend::Agent))
    {
        let (resource, place) = secret_resource(&r.id, region);
        resources.insert(resource);
        places.insert(place);
        // `--failover-region`: the replica under the same name there, and its region's key.
        if let Some(to) = &plan.failover {
            let (resource, place) = secret_resource(&crate::plan::in_region(r, to).id, Some(to));
            resources.insert(resource);
            places.insert(place);
        }
    }
    let mut parameters = BTreeSet::new();
    let mut paths = BTreeSet::new();
    let mut parameter_places = BTreeSet::new();
    for r in plan.secrets(Backend::ParameterStore) {
        let (resource, place) = parameter_resource(&r.id, region);
        if r.is_ssm_path() {
            // AWS authorises GetParametersByPath against the path itself, and each parameter it
            // returns against that parameter's own ARN.
            paths.insert(resource.trim_end_matches('/').to_string());
            paths.insert(format!("{}*", resource));
        } else {
            parameters.insert(resource);
        }
        parameter_places.insert(place);
    }

    let mut statements = Vec::new();
    if !resources.is_empty() {
        statements.push(Json::Obj(allow(
            "ReadTheNamedSecrets",
            "secretsmanager:GetSecretValue",
            resources,
        )));
    }
    let watched: BTreeSet<String> = plan
        .watched()
        .iter()
        .map(|r| secret_resource(&r.id, region).0)
        .collect();
    if watch && !watched.is_empty() {
        // Metadata only: which version holds which stage. Version-pinned secrets are not polled.
        statements.push(Json::Obj(allow(
            "WatchForRotation",
            "secretsmanager:DescribeSecret",
            watched,
        )));
    }
    if plan.may_batch(region) {
        // BatchGetSecretValue has no resource-level permissions; each secret in the batch is
        // still checked against GetSecretValue above.
        statements.push(Json::Obj(allow(
            "FetchSeveralInOneCall",
            "secretsmanager:BatchGetSecretValue",
            ["*".to_string()],
        )));
    }
    if !places.is_empty() {
        // Secrets under the AWS managed key need no KMS grant; a customer managed key does, and
        // kms:ViaService keeps it usable only through Secrets Manager, not as a general decryptor.
        statements.push(decrypt_via(
            "DecryptCustomerManagedKeysViaSecretsManager",
            "secretsmanager",
            &places,
        ));
    }
    if !parameters.is_empty() {
        statements.push(Json::Obj(allow(
            "ReadTheNamedParameters",
            "ssm:GetParameters",
            parameters,
        )));
    }
    if !paths.is_empty() {
        statements.push(Json::Obj(allow(
            "ReadEveryParameterBelowThePaths",
            "ssm:GetParametersByPath",
            paths,
        )));
    }
    if !parameter_places.is_empty() {
        statements.push(decrypt_via(
            "DecryptSecureStringsViaParameterStore",
            "ssm",
            &parameter_places,
        ));
    }

    let mut out = String::from("{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n");
    for (i, s) in statements.iter().enumerate() {
        out.push_str("    ");
        render(s, 2, &mut out);
        out.push_str(if i + 1 < statements.len() {
            ",\n"
        } else {
            "\n"
        });
    }
    out.push_str("  ]\n}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec;

    #[test]
    fn failover_grants_the_replicas() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf";
        let plan = Plan::new(&spec::parse_all(&["app/key", arn]), false)
            .with_failover(Some("us-west-2".into()))
            .unwrap();
        let doc: serde_json::Value =
            serde_json::from_str(&document(&plan, Some("us-east-1"), false)).unwrap();
        let got = list(&statement(&doc, "secretsmanager:GetSecretValue").unwrap()["Resource"]);
        assert_eq!(
            got,
            [
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-??????",
                "arn:aws:secretsmanager:us-east-1:*:secret:app/key-??????",
                "arn:aws:secretsmanager:us-west-2:*:secret:app/key-??????",
                "arn:aws:secretsmanager:us-west-2:123456789012:secret:prod/db-??????",
            ]
        );
        let kms = statement(&doc, "kms:Decrypt").unwrap();
        let via = kms["Condition"]["StringEquals"]["kms:ViaService"].to_string();
        assert!(
            via.contains("secretsmanager.us-west-2.amazonaws.com"),
            "{via}"
        );
        assert!(statement(&doc, "secretsmanager:BatchGetSecretValue").is_none());
    }

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf";

    fn parsed(raw: &[&str], region: Option<&str>) -> serde_json::Value {
        let specs = spec::parse_all(raw);
        let text = document(&Plan::new(&specs, false), region, false);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    fn statement<'a>(doc: &'a serde_json::Value, action: &str) -> Option<&'a serde_json::Value> {
        doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Action"] == action)
    }

    /// A Resource field as a list, whether it was written as one string or an array.
    fn list(v: &serde_json::Value) -> Vec<String> {
        match v {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(a) => {
                a.iter().map(|x| x.as_str().unwrap().to_string()).collect()
            }
            other => panic!("not a string or list: {other}"),
        }
    }

    #[test]
    fn watch_adds_describe_secret_for_unpinned_secrets() {
        let describe = |raw: &[&str], watch: bool| {
            let specs = spec::parse_all(raw);
            let text = document(&Plan::new(&specs, false), Some("us-east-1"), watch);
            let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
            statement(&doc, "secretsmanager:DescribeSecret").cloned()
        };
        let ss = ["prod/db", "old/db:::v1"];
        assert!(describe(&ss, false).is_none());
        let s = describe(&ss, true).expect("DescribeSecret");
        assert_eq!(
            list(&s["Resource"]),
            ["arn:aws:secretsmanager:us-east-1:*:secret:prod/db-??????"]
        );
        assert!(describe(&["old/db:::v1"], true).is_none());
    }

    #[test]
    fn secret_resources() {
        let rows: &[(&str, Option<&str>, &str)] = &[
            (
                "prod/db",
                Some("us-east-1"),
                "arn:aws:secretsmanager:us-east-1:*:secret:prod/db-??????",
            ),
            (
                "prod/db",
                None,
                "arn:aws:secretsmanager:*:*:secret:prod/db-??????",
            ),
            (
                "app",
                Some("cn-north-1"),
                "arn:aws-cn:secretsmanager:cn-north-1:*:secret:app-??????",
            ),
            (
                "app",
                Some("us-gov-west-1"),
                "arn:aws-us-gov:secretsmanager:us-gov-west-1:*:secret:app-??????",
            ),
            // Full ARN: the suffix is generalised; region and account stay as given.
            (
                ARN,
                Some("us-east-1"),
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-??????",
            ),
            // Partial ARN (no suffix): the pattern is what makes it match.
            (
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db",
                None,
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-??????",
            ),
            (
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:api-key",
                None,
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:api-key-??????",
            ),
            // An ARN without a region or account: the default region, any account.
            (
                "arn:aws:secretsmanager:::secret:x",
                Some("us-east-1"),
                "arn:aws:secretsmanager:us-east-1:*:secret:x-??????",
            ),
            // Wildcard characters in a name are literal, never a wider grant.
            (
                "odd*name?",
                Some("us-east-1"),
                "arn:aws:secretsmanager:us-east-1:*:secret:odd${*}name${?}-??????",
            ),
            (
                "${aws:username}",
                Some("us-east-1"),
                "arn:aws:secretsmanager:us-east-1:*:secret:${$}{aws:username}-??????",
            ),
        ];
        for (id, region, want) in rows {
            assert_eq!(secret_resource(id, *region).0, *want, "{id} {region:?}");
        }
    }

    #[test]
    fn batch_only_when_the_fetch_plan_batches() {
        use crate::plan::MIN_BATCH;
        let other = "arn:aws:secretsmanager:us-west-2:123456789012:secret:x-AbCdEf";
        // `n` plain names, then `extra`.
        let names = |n: usize, extra: &[&str]| -> Vec<String> {
            (0..n)
                .map(|i| format!("s{i}"))
                .chain(extra.iter().map(|e| e.to_string()))
                .collect()
        };
        let below = MIN_BATCH - 1;
        let rows: Vec<(Vec<String>, Option<&str>, bool)> = vec![
            (names(1, &[]), Some("us-east-1"), false),
            (names(below, &[]), Some("us-east-1"), false),
            (names(MIN_BATCH, &[]), Some("us-east-1"), true),
            // The same secret twice is fetched once.
            (
                names(below - 1, &["A=a:k1", "B=a:k2"]),
                Some("us-east-1"),
                false,
            ),
            // Pinned stages and versions go through GetSecretValue.
            (names(below, &["b::AWSPREVIOUS"]), Some("us-east-1"), false),
            (names(below, &["b::AWSCURRENT"]), Some("us-east-1"), true),
            // Different regions: the ARN's secret is alone in its region.
            (names(below, &[other]), Some("us-east-1"), false),
            (names(below, &[other]), Some("us-west-2"), true),
            // Region unknown: the names' region may be the ARN's.
            (names(below, &[other]), None, true),
            (vec![ARN.into(), other.into()], None, false),
        ];
        for (raw, region, want) in rows {
            let raw: Vec<&str> = raw.iter().map(String::as_str).collect();
            let doc = parsed(&raw, region);
            let got = statement(&doc, "secretsmanager:BatchGetSecretValue");
            assert_eq!(got.is_some(), want, "{raw:?} {region:?}");
            if let Some(s) = got {
                assert_eq!(s["Resource"], "*");
            }
        }
    }

    #[test]
    fn every_secret_named_once() {
        let doc = parsed(
            &["prod/db", "P=prod/db:password", ARN, "other::AWSPREVIOUS"],
            None,
        );
        let got = list(&statement(&doc, "secretsmanager:GetSecretValue").unwrap()["Resource"]);
        assert_eq!(
            got,
            [
                "arn:aws:secretsmanager:*:*:secret:other-??????",
                "arn:aws:secretsmanager:*:*:secret:prod/db-??????",
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-??????",
            ]
        );
        assert_eq!(doc["Version"], "2012-10-17");
        for s in doc["Statement"].as_array().unwrap() {
            assert_eq!(s["Effect"], "Allow");
            assert!(
                s["Action"].as_str().is_some_and(|a| !a.contains('*')),
                "{s}"
            );
        }
    }

    #[test]
    fn kms_only_through_secrets_manager() {
        let rows: &[(&[&str], Option<&str>, &str, &[&str], &[&str])] = &[
            (
                &["a"],
                Some("us-east-1"),
                "StringEquals",
                &["arn:aws:kms:us-east-1:*:key/*"],
                &["secretsmanager.us-east-1.amazonaws.com"],
            ),
            (
                &["a"],
                None,
                "StringLike",
                &["arn:aws:kms:*:*:key/*"],
                &["secretsmanager.*.amazonaws.com"],
            ),
            (
                &[
                    ARN,
                    "arn:aws-cn:secretsmanager:cn-north-1:210987654321:secret:k-Zz0011",
                ],
                None,
                "StringEquals",
                &[
                    "arn:aws-cn:kms:cn-north-1:210987654321:key/*",
                    "arn:aws:kms:eu-west-1:123456789012:key/*",
                ],
                &[
                    "secretsmanager.cn-north-1.amazonaws.com.cn",
                    "secretsmanager.eu-west-1.amazonaws.com",
                ],
            ),
        ];
        for (raw, region, operator, keys, via) in rows {
            let doc = parsed(raw, *region);
            let s = statement(&doc, "kms:Decrypt").unwrap();
            assert_eq!(list(&s["Resource"]), *keys, "{raw:?}");
            let cond = s["Condition"].as_object().unwrap();
            assert_eq!(cond.keys().collect::<Vec<_>>(), [operator], "{raw:?}");
            assert_eq!(list(&cond[*operator]["kms:ViaService"]), *via, "{raw:?}");
        }
    }

    #[test]
    fn parameter_store_grants() {
        let arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/shared/key";
        let doc = parsed(
            &[
                "ssm:/app/db/password",
                "X=ssm:/app/db/password:3",
                "ssm:flat",
                arn,
                "ssm:/app/prod/",
            ],
            Some("us-east-1"),
        );
        assert!(
            statement(&doc, "secretsmanager:GetSecretValue").is_none(),
            "{doc}"
        );
        assert_eq!(
            list(&statement(&doc, "ssm:GetParameters").unwrap()["Resource"]),
            [
                "arn:aws:ssm:eu-west-1:123456789012:parameter/shared/key",
                "arn:aws:ssm:us-east-1:*:parameter/app/db/password",
                "arn:aws:ssm:us-east-1:*:parameter/flat",
            ]
        );
        assert_eq!(
            list(&statement(&doc, "ssm:GetParametersByPath").unwrap()["Resource"]),
            [
                "arn:aws:ssm:us-east-1:*:parameter/app/prod",
                "arn:aws:ssm:us-east-1:*:parameter/app/prod/*",
            ]
        );
        let kms = statement(&doc, "kms:Decrypt").unwrap();
        assert_eq!(kms["Sid"], "DecryptSecureStringsViaParameterStore");
        assert_eq!(
            list(&kms["Condition"]["StringEquals"]["kms:ViaService"]),
            ["ssm.eu-west-1.amazonaws.com", "ssm.us-east-1.amazonaws.com"]
        );

        // Both stores: each keeps its own statements and its own ViaService.
        let doc = parsed(&["prod/db", "ssm:/app/db"], None);
        let sids: Vec<&str> = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        assert_eq!(
            sids,
            [
                "ReadTheNamedSecrets",
                "DecryptCustomerManagedKeysViaSecretsManager",
                "ReadTheNamedParameters",
                "DecryptSecureStringsViaParameterStore",
            ]
        );
    }

    #[test]
    fn through_the_agent_the_agent_role_reads_one_by_one() {
        let specs = spec::parse_all(&["a", "b"]);
        let doc: serde_json::Value = serde_json::from_str(&document(
            &Plan::new(&specs, true),
            Some("us-east-1"),
            false,
        ))
        .unwrap();
        assert!(statement(&doc, "secretsmanager:BatchGetSecretValue").is_none());
        assert_eq!(
            list(&statement(&doc, "secretsmanager:GetSecretValue").unwrap()["Resource"]).len(),
            2
        );
    }

    #[test]
    fn partitions_and_dns() {
        let rows = [
            ("us-east-1", "aws", "amazonaws.com"),
            ("cn-northwest-1", "aws-cn", "amazonaws.com.cn"),
            ("us-gov-east-1", "aws-us-gov", "amazonaws.com"),
            ("us-iso-east-1", "aws-iso", "c2s.ic.gov"),
            ("us-isob-east-1", "aws-iso-b", "sc2s.sgov.gov"),
            ("*", "aws", "amazonaws.com"),
        ];
        for (region, partition, dns) in rows {
            assert_eq!(partition_of(region), partition, "{region}");
            assert_eq!(dns_suffix(partition), dns, "{region}");
        }
    }
}
