//! `--print-iam-policy`: the least-privilege policy the given SPECs need, without calling AWS.

use crate::spec::Spec;

/// A minimal policy; the packaging work refines it (KMS, partitions).
pub fn policy(specs: &[Spec], region: Option<&str>) -> String {
    let region = region.unwrap_or("*");
    let mut resources: Vec<String> = specs
        .iter()
        .map(|s| {
            if s.secret.id.starts_with("arn:") {
                s.secret.id.clone()
            } else {
                format!(
                    "arn:aws:secretsmanager:{region}:*:secret:{}-??????",
                    s.secret.id
                )
            }
        })
        .collect();
    resources.sort();
    resources.dedup();
    let doc = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": resources,
        }]
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
