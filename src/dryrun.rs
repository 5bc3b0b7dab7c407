//! `--dry-run` output: one line (or JSON object) per variable with its provenance. It receives
//! only `Source`s and names — no value can reach it.

use crate::cli::DryRunFormat;
use crate::map::Source;

pub struct Row<'a> {
    pub name: &'a str,
    pub source: &'a Source,
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
                        "secret": r.source.secret_id,
                        "key": r.source.key,
                        "version_id": r.source.version_id,
                        "stage": r.source.stage,
                        "overrides": r.overrides,
                        "explicit": r.source.explicit,
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
                    field(&r.source.secret_id),
                    field(r.source.key.as_deref().unwrap_or("-")),
                    field(r.source.version_id.as_deref().unwrap_or("-")),
                    field(if r.source.stage.is_empty() {
                        "-"
                    } else {
                        &r.source.stage
                    }),
                    if r.overrides { "yes" } else { "no" },
                ));
            }
            s
        }
    }
}

/// One text column. JSON keys are secret content and may hold tabs, newlines or terminal escapes:
/// escaped, they can neither break the one-line-per-variable shape nor steer a terminal.
fn field(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\\'
            || c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}')
        {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats() {
        let src = Source {
            spec: "prod/db".into(),
            secret_id: "prod/db".into(),
            key: Some("/username".into()),
            version_id: Some("v1".into()),
            stage: "AWSCURRENT".into(),
            explicit: false,
        };
        let rows = [Row {
            name: "USERNAME",
            source: &src,
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
            let src = Source {
                spec: "s".into(),
                secret_id: "s".into(),
                key: Some(key.into()),
                version_id: None,
                stage: String::new(),
                explicit: true,
            };
            let row = Row {
                name: "X",
                source: &src,
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
