//! Variables built from other values: `--db-url VAR=REF` (a connection URL from an RDS secret)
//! and `--template VAR=TEXT` (text with `{{NAME}}` substitutions). This module owns both flags'
//! parsing ([`parse`]) and their place in the pipeline: a `--db-url` is mapped like a `--secret`;
//! templates come after everything is mapped, in command-line order, each seeing the environment
//! the command will get (mapped values, then the inherited ones left by `-i`/`-u`) plus the
//! templates before it. Names are the operator's, as with `VAR=`: the refused-name policy (which
//! guards names taken from secret content) does not apply, collisions do (`environ::merge`).

use super::db_url::{self, DbUrlSpec};
use super::template::{self, RenderError, Template};
use super::{Origin, Var, Via};
use crate::error::Error;
use crate::log::{self, Event};
use crate::source::Fetched;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

/// The map stage's options for built variables, in command-line order within each flag.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub db_urls: Vec<DbUrlSpec>,
    pub templates: Vec<Template>,
}

/// Parses every `--db-url` and `--template` (64 on the first malformed one).
pub fn parse(db_urls: &[String], templates: &[String]) -> Result<Options, Error> {
    Ok(Options {
        db_urls: db_urls
            .iter()
            .map(|d| db_url::parse(d))
            .collect::<Result<_, _>>()?,
        templates: templates
            .iter()
            .map(|t| template::parse(t))
            .collect::<Result<_, _>>()?,
    })
}

/// The variable a `--db-url` sets, built from its fetched secret.
pub fn db_url_var(d: &DbUrlSpec, fetched: &Fetched) -> Result<Var, Error> {
    let value = db_url::build(&d.spec, fetched)?;
    let origin = super::origin_of(&d.spec, fetched, d.spec.key_text.clone(), Via::DbUrl);
    log::at(1, Event::Map)
        .secret(&origin.secret_id)
        .say(format_args!(
            "built {} from --db-url '{}'",
            d.var, d.spec.raw
        ));
    Ok(Var {
        name: d.var.clone(),
        value,
        origin,
    })
}

/// What of the inherited environment the command keeps (`-i`, `-u`), as the deliver stage will
/// apply it; given by the pipeline, so this stage reads no other stage's options.
#[derive(Debug, Default, Clone, Copy)]
pub struct Kept<'a> {
    pub ignore_environment: bool,
    pub unset: &'a [OsString],
}

/// Renders `templates` in order, appending each to `vars` so the next one can read it.
/// `inherited` is the process environment; `env` says what of it the command keeps.
pub fn render_templates(
    templates: &[Template],
    vars: &mut Vec<Var>,
    inherited: &[(OsString, OsString)],
    env: &Kept<'_>,
) -> Result<(), Error> {
    for t in templates {
        let value = {
            let seen: &[Var] = vars;
            template::render(t, &|name| lookup(seen, inherited, env, name)).map_err(|e| {
                let why = match e {
                    RenderError::Missing(n) => format!(
                        "{n} is not in the command's environment (no --secret, --file, --db-url \
                         or earlier --template sets it, and it is not inherited{}); set it, or \
                         fix the name",
                        if env.ignore_environment {
                            " under -i"
                        } else {
                            ""
                        }
                    ),
                    RenderError::NotUtf8(n) => {
                        format!("the inherited {n} is not UTF-8 text, which a template cannot hold")
                    }
                };
                Error::DataGeneral(format!("--template '{}': {why}", t.raw))
            })?
        };
        let uses = t.uses();
        log::at(1, Event::Map).say(format_args!(
            "built {} from --template (reads {})",
            t.var,
            if uses.is_empty() { "nothing" } else { &uses }
        ));
        vars.push(Var {
            name: t.var.clone(),
            value,
            origin: Origin {
                via: Via::Template,
                spec: t.raw.clone(),
                secret_id: String::new(),
                key: (!uses.is_empty()).then_some(uses),
                version_id: None,
                stage: String::new(),
                explicit: true,
            },
        });
    }
    Ok(())
}

/// NAME's value where the command will find it: the last variable mapped or built with that
/// name, else the inherited one unless `-i` or `-u NAME` drops it.
fn lookup<'v>(
    vars: &'v [Var],
    inherited: &'v [(OsString, OsString)],
    env: &Kept<'_>,
    name: &str,
) -> Option<&'v [u8]> {
    if let Some(v) = vars.iter().rev().find(|v| v.name == name) {
        return Some(v.value.expose().as_bytes());
    }
    if env.ignore_environment || env.unset.iter().any(|u| u.as_bytes() == name.as_bytes()) {
        return None;
    }
    inherited
        .iter()
        .find(|(k, _)| k.as_bytes() == name.as_bytes())
        .map(|(_, v)| v.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretText;

    fn var(name: &str, value: &str) -> Var {
        Var {
            name: name.into(),
            value: SecretText::copy_of(value),
            origin: Origin {
                via: Via::Secret,
                spec: "s".into(),
                secret_id: "s".into(),
                key: None,
                version_id: None,
                stage: String::new(),
                explicit: false,
            },
        }
    }

    fn run(
        templates: &[&str],
        mapped: &[(&str, &str)],
        inherited: &[(&str, &str)],
        env: &Kept<'_>,
    ) -> Result<Vec<(String, String)>, Error> {
        let opts = parse(
            &[],
            &templates.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        )?;
        let mut vars: Vec<Var> = mapped.iter().map(|(n, v)| var(n, v)).collect();
        let inherited: Vec<(OsString, OsString)> = inherited
            .iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        render_templates(&opts.templates, &mut vars, &inherited, env)?;
        Ok(vars
            .into_iter()
            .skip(mapped.len())
            .map(|v| (v.name, v.value.expose().to_string()))
            .collect())
    }

    #[test]
    fn lookup_order_table() {
        let plain = Kept::default();
        let home: [OsString; 1] = ["HOME".into()];
        let no_home = Kept {
            unset: &home,
            ..Default::default()
        };
        let bare = Kept {
            ignore_environment: true,
            ..Default::default()
        };
        let inherited = [("HOME", "/root"), ("PW", "inherited")];
        let mapped = [("PW", "mapped")];
        type Row<'a> = (
            &'a [&'a str],
            &'a Kept<'a>,
            Result<&'a [(&'a str, &'a str)], &'a str>,
        );
        let rows: &[Row] = &[
            // A mapped value wins over the inherited one, as in the command's environment.
            (&["X={{PW}}"], &plain, Ok(&[("X", "mapped")])),
            (&["X={{HOME}}/x"], &plain, Ok(&[("X", "/root/x")])),
            (
                &["X={{HOME}}"],
                &no_home,
                Err("HOME is not in the command's environment"),
            ),
            (&["X={{HOME}}"], &bare, Err("not inherited under -i")),
            (&["X={{PW}}"], &bare, Ok(&[("X", "mapped")])),
            // Command-line order: a template reads those before it, not after it.
            (&["A=a", "B={{A}}b"], &plain, Ok(&[("A", "a"), ("B", "ab")])),
            (
                &["B={{A}}b", "A=a"],
                &plain,
                Err("--template 'B={{A}}b': A is not"),
            ),
            (
                &["X={{X}}"],
                &plain,
                Err("X is not in the command's environment"),
            ),
            (&["HOME={{HOME}}:x"], &plain, Ok(&[("HOME", "/root:x")])),
        ];
        for (templates, env, want) in rows {
            let got = run(templates, &mapped, &inherited, env);
            match (got, want) {
                (Ok(got), Ok(want)) => {
                    let want: Vec<(String, String)> = want
                        .iter()
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .collect();
                    assert_eq!(got, want, "{templates:?}");
                }
                (Err(e), Err(want)) => {
                    assert_eq!(e.exit_code(), 65, "{templates:?}");
                    assert!(e.to_string().contains(want), "{templates:?}: {e}");
                    assert!(!e.to_string().contains("mapped"), "{e}");
                }
                (got, want) => panic!("{templates:?}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn origin_says_how_it_was_built() {
        let opts = parse(&[], &["U=postgresql://{{U|url}}@{{H}}".into()]).unwrap();
        let mut vars = vec![var("U", "a b"), var("H", "h")];
        render_templates(&opts.templates, &mut vars, &[], &Kept::default()).unwrap();
        let o = &vars[2].origin;
        assert_eq!(o.via, Via::Template);
        assert_eq!(o.key.as_deref(), Some("U|url H"));
        assert!(o.explicit);
        assert_eq!(format!("{:?}", vars[2]).matches("[redacted]").count(), 1);
        assert_eq!(vars[2].value.expose(), "postgresql://a%20b@h");
    }
}
