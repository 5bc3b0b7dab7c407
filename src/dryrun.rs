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
                    r.source.secret_id,
                    r.source.key.as_deref().unwrap_or("-"),
                    r.source.version_id.as_deref().unwrap_or("-"),
                    if r.source.stage.is_empty() {
                        "-"
                    } else {
                        &r.source.stage
                    },
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
}
