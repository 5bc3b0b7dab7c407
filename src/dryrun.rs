//! `--dry-run` output: one line (or JSON object) per variable with its origin, how it was asked
//! for (`--secret`, `--file`, `--from-env`, `--db-url`, `--template`), for a file its size in
//! bytes, and, when a COMMAND was given, whether it would start. It receives only `Origin`s,
//! names, sizes and the prediction — no value can reach it. JSON keys are secret content and may
//! hold tabs, newlines or terminal escapes: escaped, they can neither break the
//! one-line-per-variable shape nor steer a terminal.

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

/// What exec would do with the COMMAND: the file it would run, or the error it would end with.
pub struct Launch<'a> {
    pub command: &'a str,
    pub outcome: &'a Result<String, crate::error::Error>,
}

/// Without a COMMAND the JSON is the array of variables (as before COMMANDs were predicted); with
/// one it is `{"variables": [...], "command": {...}}`. Text appends one `# COMMAND` line.
pub fn render(rows: &[Row], format: DryRunFormat, launch: Option<&Launch>) -> String {
    match format {
        DryRunFormat::Json => {
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "name": r.name,
                        "secret": (!r.origin.secret_id.is_empty()).then_some(&r.origin.secret_id),
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
            let vars = serde_json::Value::Array(items);
            let mut s = match launch {
                None => vars.to_string(),
                Some(l) => {
                    let (path, exit, why) = match l.outcome {
                        Ok(p) => (Some(p.as_str()), None, None),
                        Err(e) => (None, Some(e.exit_code()), Some(e.to_string())),
                    };
                    serde_json::json!({
                        "variables": vars,
                        "command": {
                            "name": l.command,
                            "path": path,
                            "would_start": l.outcome.is_ok(),
                            "exit_code": exit,
                            "why": why,
                        },
                    })
                    .to_string()
                }
            };
            s.push('\n');
            s
        }
        DryRunFormat::Text => {
            let mut s = String::from("NAME\tSECRET\tKEY\tVERSION\tSTAGE\tOVERRIDES\tVIA\tBYTES\n");
            for r in rows {
                s.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    r.name,
                    escaped(if r.origin.secret_id.is_empty() {
                        "-" // a --template reads variables, not one secret
                    } else {
                        &r.origin.secret_id
                    }),
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
            if let Some(l) = launch {
                let command = escaped(l.command);
                s.push_str(&match l.outcome {
                    Ok(p) => format!("# COMMAND {command}: would run {}\n", escaped(p)),
                    Err(e) => format!(
                        "# COMMAND {command}: would not start, exit {}: {}\n",
                        e.exit_code(),
                        crate::sanitize::one_line(&e.to_string())
                    ),
                });
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
            render(&rows, DryRunFormat::Text, None),
            "NAME\tSECRET\tKEY\tVERSION\tSTAGE\tOVERRIDES\tVIA\tBYTES\nUSERNAME\tprod/db\t/username\tv1\tAWSCURRENT\tyes\tsecret\t-\n"
        );
        let v: serde_json::Value =
            serde_json::from_str(&render(&rows, DryRunFormat::Json, None)).unwrap();
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
        assert!(
            render(&rows, DryRunFormat::Text, None).ends_with("\tAWSCURRENT\tno\tfile\t1704\n")
        );
        let v: serde_json::Value =
            serde_json::from_str(&render(&rows, DryRunFormat::Json, None)).unwrap();
        assert_eq!(
            (&v[0]["via"], &v[0]["bytes"]),
            (&"file".into(), &1704.into())
        );

        let missing = Err(crate::error::Error::CommandNotFound {
            command: "nope".into(),
            why: String::new(),
        });
        let l = Launch {
            command: "nope",
            outcome: &missing,
        };
        let text = render(&rows, DryRunFormat::Text, Some(&l));
        assert!(
            text.ends_with("# COMMAND nope: would not start, exit 127: command 'nope' not found\n"),
            "{text}"
        );
        let v: serde_json::Value =
            serde_json::from_str(&render(&rows, DryRunFormat::Json, Some(&l))).unwrap();
        assert_eq!(v["variables"][0]["name"], "TLS_KEY");
        assert_eq!(v["command"]["would_start"], false);
        assert_eq!(v["command"]["exit_code"], 127);
        let found = Ok("/bin/sh".to_string());
        let l = Launch {
            command: "sh",
            outcome: &found,
        };
        let v: serde_json::Value =
            serde_json::from_str(&render(&rows, DryRunFormat::Json, Some(&l))).unwrap();
        assert_eq!(v["command"]["path"], "/bin/sh");
        assert_eq!(v["command"]["exit_code"], serde_json::Value::Null);
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
            let out = render(&[row], DryRunFormat::Text, None);
            assert_eq!(
                out.lines().nth(1),
                Some(format!("X\ts\t{shown}\t-\t-\tno\tsecret\t-").as_str())
            );
            assert_eq!(out.lines().count(), 2, "{key:?}");
        }
    }
}
