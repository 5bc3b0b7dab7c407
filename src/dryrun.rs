//! `--dry-run` output: one line (or JSON object) per variable with its origin, how it was asked
//! for (`--secret`, `--file`, `--from-env`) and, for a file, its size in bytes. It receives only
//! `Origin`s, names and sizes — no value can reach it. JSON keys are secret content and may hold
//! tabs, newlines or terminal escapes: escaped, they can neither break the one-line-per-variable
//! shape nor steer a terminal.

use crate::cli::DryRunFormat;
use crate::map::Origin;
use crate::sanitize::escaped;

pub struct Row<'a> {
    pub name: &'a str,
    pub origin: &'a Origin,
    pub overrides: bool,
    /// For a `--file`: the size of its content.
    pub bytes: Option<usize>,
}

/// The VIA column: the flag without its dashes.
fn via(origin: &Origin) -> &'static str {
    origin.via.flag().trim_start_matches('-')
}

pub fn render(rows: &[Row], format: DryRunFormat) -> String {
    match format {
        DryRunFormat::Json => {
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "name": r.name,
                        "secret": r.origin.secret_id,
                        "key": r.origin.key,
                        "version_id": r.origin.version_id,
                        "stage": r.origin.stage,
                        "overrides": r.overrides,
                        "explicit": r.origin.explicit,
                        "via": via(r.origin),
                        "bytes": r.bytes,
                    })
                })
                .collect();
            let mut s = serde_json::Value::Array(items).to_string();
            s.push('\n');
            s
        }
        DryRunFormat::Text => {
            let mut s = String::from("NAME\tSECRET\tKEY\tVERSION\tSTAGE\tOVERRIDES\tVIA\tBYTES\n");
            for r in rows {
                s.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    r.name,
                    escaped(&r.origin.secret_id),
                    escaped(r.origin.key.as_deref().unwrap_or("-")),
                    escaped(r.origin.version_id.as_deref().unwrap_or("-")),
                    escaped(if r.origin.stage.is_empty() {
                        "-"
                    } else {
                        &r.origin.stage
                    }),
                    if r.overrides { "yes" } else { "no" },
                    via(r.origin),
                    r.bytes.map_or_else(|| "-".to_string(), |b| b.to_string()),
                ));
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats() {
        let src = Origin {
            via: crate::map::Via::Secret,
            spec: "prod/db".into(),
            secret_id: "prod/db".into(),
            key: Some("/username".into()),
            version_id: Some("v1".into()),
            stage: "AWSCURRENT".into(),
            explicit: false,
        };
        let rows = [Row {
            name: "USERNAME",
            origin: &src,
            overrides: true,
            bytes: None,
        }];
        assert_eq!(
            render(&rows, DryRunFormat::Text),
            "NAME\tSECRET\tKEY\tVERSION\tSTAGE\tOVERRIDES\tVIA\tBYTES\nUSERNAME\tprod/db\t/username\tv1\tAWSCURRENT\tyes\tsecret\t-\n"
        );
        let v: serde_json::Value =
            serde_json::from_str(&render(&rows, DryRunFormat::Json)).unwrap();
        assert_eq!(v[0]["name"], "USERNAME");
        assert_eq!(v[0]["overrides"], true);
        assert_eq!(v[0]["key"], "/username");
        assert_eq!(v[0]["via"], "secret");
        assert!(v[0]["bytes"].is_null());

        let file = Origin {
            via: crate::map::Via::File,
            ..src.clone()
        };
        let rows = [Row {
            name: "TLS_KEY",
            origin: &file,
            overrides: false,
            bytes: Some(1704),
        }];
        assert!(render(&rows, DryRunFormat::Text).ends_with("\tAWSCURRENT\tno\tfile\t1704\n"));
        let v: serde_json::Value =
            serde_json::from_str(&render(&rows, DryRunFormat::Json)).unwrap();
        assert_eq!(
            (&v[0]["via"], &v[0]["bytes"]),
            (&"file".into(), &1704.into())
        );
    }

    #[test]
    fn text_columns_cannot_be_broken_by_key_names() {
        let rows = [
            ("/a\tb", "/a\\tb"),
            ("/a\nb", "/a\\nb"),
            ("/\x1b[2J", "/\\u{1b}[2J"),
            ("/a\\b", "/a\\\\b"),
            ("/bidi\u{202e}", "/bidi\\u{202e}"),
            ("/é", "/é"),
        ];
        for (key, shown) in rows {
            let src = Origin {
                via: crate::map::Via::Secret,
                spec: "s".into(),
                secret_id: "s".into(),
                key: Some(key.into()),
                version_id: None,
                stage: String::new(),
                explicit: true,
            };
            let row = Row {
                name: "X",
                origin: &src,
                overrides: false,
                bytes: None,
            };
            let out = render(&[row], DryRunFormat::Text);
            assert_eq!(
                out.lines().nth(1),
                Some(format!("X\ts\t{shown}\t-\t-\tno\tsecret\t-").as_str())
            );
            assert_eq!(out.lines().count(), 2, "{key:?}");
        }
    }
}
