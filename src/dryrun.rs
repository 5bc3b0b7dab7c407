//! `--dry-run` output: one line (or JSON object) per variable with its origin. It receives
//! only `Origin`s and names — no value can reach it. JSON keys are secret content and may hold
//! tabs, newlines or terminal escapes: escaped, they can neither break the one-line-per-variable
//! shape nor steer a terminal.

use crate::cli::DryRunFormat;
use crate::map::Origin;
use crate::sanitize::escaped;

pub struct Row<'a> {
    pub name: &'a str,
    pub origin: &'a Origin,
    pub overrides: bool,
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
                    })
                })
                .collect();
            let mut s = serde_json::Value::Array(items).to_string();
            s.push('\n');
            s
        }
        DryRunFormat::Text => {
            let mut s = String::from("NAME\tSECRET\tKEY\tVERSION\tSTAGE\tOVERRIDES\n");
            for r in rows {
                s.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\n",
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
        }];
        assert_eq!(
            render(&rows, DryRunFormat::Text),
            "NAME\tSECRET\tKEY\tVERSION\tSTAGE\tOVERRIDES\nUSERNAME\tprod/db\t/username\tv1\tAWSCURRENT\tyes\n"
        );
        let v: serde_json::Value =
            serde_json::from_str(&render(&rows, DryRunFormat::Json)).unwrap();
        assert_eq!(v[0]["name"], "USERNAME");
        assert_eq!(v[0]["overrides"], true);
        assert_eq!(v[0]["key"], "/username");
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
            };
            let out = render(&[row], DryRunFormat::Text);
            assert_eq!(
                out.lines().nth(1),
                Some(format!("X\ts\t{shown}\t-\t-\tno").as_str())
            );
            assert_eq!(out.lines().count(), 2, "{key:?}");
        }
    }
}
