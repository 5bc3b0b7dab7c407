//! `--template 'VAR=TEXT'`: TEXT with `{{NAME}}` (NAME's value in the environment the command
//! will get), `{{NAME|url}}` (percent-encoded, RFC 3986) and `{{NAME|json}}` (a JSON string
//! literal, quotes included); `\{{` and `\}}` are a literal `{{` and `}}`. Parsed once at start
//! (a malformed template is 64 with its position); rendered into one `SecretText` sized
//! beforehand, so the result is wiped like every value.

use super::db_url;
use crate::error::Error;
use crate::secret::SecretText;
use crate::spec;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// The value as it is.
    Raw,
    /// Percent-encoded for a URL component (every byte but RFC 3986 `unreserved`).
    Url,
    /// A JSON string literal: quoted, `"` `\` and control characters escaped.
    Json,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Var { name: String, filter: Filter },
}

/// One `--template VAR=TEXT`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub var: String,
    /// The flag's value as written, for messages and `--dry-run`.
    pub raw: String,
    pub pieces: Vec<Piece>,
}

impl Template {
    /// The substitutions, as `--dry-run` shows them: `NAME` or `NAME|url`, space-separated.
    pub fn uses(&self) -> String {
        let names: Vec<String> = self
            .pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Var { name, filter } => Some(match filter {
                    Filter::Raw => name.clone(),
                    Filter::Url => format!("{name}|url"),
                    Filter::Json => format!("{name}|json"),
                }),
                Piece::Text(_) => None,
            })
            .collect();
        names.join(" ")
    }
}

/// Parses `VAR=TEXT`. Errors (64) give the 1-based character position in TEXT.
pub fn parse(raw: &str) -> Result<Template, Error> {
    let usage = |why: String| Error::Usage(format!("invalid --template '{raw}': {why}"));
    let Some((var, text)) = raw.split_once('=') else {
        return Err(usage(
            "the form is VAR=TEXT, e.g. --template 'DSN=host={{DB_HOST}}'".into(),
        ));
    };
    if !spec::is_var_name(var) {
        return Err(usage(
            "VAR is not a variable name ([A-Za-z_][A-Za-z0-9_]*)".into(),
        ));
    }
    let pos = |byte: usize| text[..byte].chars().count() + 1;
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        if rest.starts_with("\\{{") || rest.starts_with("\\}}") {
            lit.push_str(&rest[1..3]);
            i += 3;
        } else if let Some(after) = rest.strip_prefix("{{") {
            let Some(end) = after.find("}}") else {
                return Err(usage(format!(
                    "'{{{{' at character {} is not closed by '}}}}' (a literal '{{{{' is \
                     written '\\{{{{')",
                    pos(i)
                )));
            };
            let inner = &after[..end];
            let (name, filter) = match inner.split_once('|') {
                None => (inner.trim(), Filter::Raw),
                Some((n, f)) => (
                    n.trim(),
                    match f.trim() {
                        "url" => Filter::Url,
                        "json" => Filter::Json,
                        other => {
                            return Err(usage(format!(
                                "unknown filter '{other}' at character {}; the filters are url \
                                 and json",
                                pos(i)
                            )));
                        }
                    },
                ),
            };
            if !spec::is_var_name(name) {
                return Err(usage(format!(
                    "'{{{{{inner}}}}}' at character {} does not name a variable \
                     ([A-Za-z_][A-Za-z0-9_]*, then an optional |url or |json)",
                    pos(i)
                )));
            }
            if !lit.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut lit)));
            }
            pieces.push(Piece::Var {
                name: name.to_string(),
                filter,
            });
            i += 2 + end + 2;
        } else {
            let c = rest.chars().next().unwrap_or_default();
            lit.push(c);
            i += c.len_utf8();
        }
    }
    if !lit.is_empty() {
        pieces.push(Piece::Text(lit));
    }
    Ok(Template {
        var: var.to_string(),
        raw: raw.to_string(),
        pieces,
    })
}

/// Why a template could not be rendered: the variable it names.
#[derive(Debug, PartialEq, Eq)]
pub enum RenderError {
    /// Not in the command's environment.
    Missing(String),
    /// Inherited with bytes that are not UTF-8.
    NotUtf8(String),
}

fn json_len(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if c < ' ' => 6,
            c => c.len_utf8(),
        })
        .sum::<usize>()
}

fn json_push(s: &str, out: &mut SecretText) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' => {
                out.push_str("\\u00");
                out.push(char::from(HEX[(c as usize) >> 4]));
                out.push(char::from(HEX[(c as usize) & 15]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Renders `t` with `lookup` (a name's value in the command's environment, `None` when it is
/// not there). The result is sized before it is filled.
pub fn render<'v>(
    t: &Template,
    lookup: &dyn Fn(&str) -> Option<&'v [u8]>,
) -> Result<SecretText, RenderError> {
    let mut values: Vec<&'v str> = Vec::new();
    for p in &t.pieces {
        if let Piece::Var { name, .. } = p {
            let bytes = lookup(name).ok_or_else(|| RenderError::Missing(name.clone()))?;
            let text =
                std::str::from_utf8(bytes).map_err(|_| RenderError::NotUtf8(name.clone()))?;
            values.push(text);
        }
    }
    let mut len = 0;
    let mut v = values.iter();
    for p in &t.pieces {
        len += match p {
            Piece::Text(s) => s.len(),
            Piece::Var { filter, .. } => {
                let value = v.next().copied().unwrap_or_default();
                match filter {
                    Filter::Raw => value.len(),
                    Filter::Url => db_url::encoded_len(value),
                    Filter::Json => json_len(value),
                }
            }
        };
    }
    let mut out = SecretText::with_capacity(len);
    let mut v = values.iter();
    for p in &t.pieces {
        match p {
            Piece::Text(s) => out.push_str(s),
            Piece::Var { filter, .. } => {
                let value = v.next().copied().unwrap_or_default();
                match filter {
                    Filter::Raw => out.push_str(value),
                    Filter::Url => db_url::encode(value, &mut out),
                    Filter::Json => json_push(value, &mut out),
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a [u8]> {
        move |n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.as_bytes())
        }
    }

    #[test]
    fn render_table() {
        let e = [
            ("U", "app user"),
            ("P", "p@ss:w/rd?#%\"\\\n\u{1}é"),
            ("H", "db.example.com"),
            ("E", ""),
        ];
        let rows: &[(&str, &str)] = &[
            ("X=", ""),
            ("X=plain", "plain"),
            ("X={{H}}", "db.example.com"),
            ("X={{ H }}", "db.example.com"),
            ("X={{H|url}}:{{ U | url }}", "db.example.com:app%20user"),
            (
                "X=postgresql://{{U|url}}:{{P|url}}@{{H}}/db?sslmode=verify-full",
                "postgresql://app%20user:p%40ss%3Aw%2Frd%3F%23%25%22%5C%0A%01%C3%A9@db.example.com/db?sslmode=verify-full",
            ),
            (
                "X={\"p\":{{P|json}}}",
                "{\"p\":\"p@ss:w/rd?#%\\\"\\\\\\n\\u0001é\"}",
            ),
            ("X={{E}}|{{E|url}}|{{E|json}}", "||\"\""),
            ("X=\\{{H}}", "{{H}}"),
            ("X=a\\}}b", "a}}b"),
            ("X=a}}b", "a}}b"),
            ("X=a{b}c", "a{b}c"),
            ("X=\\n\\x", "\\n\\x"),
            ("X=é{{H}}日", "édb.example.com日"),
            ("X={{H}}{{H}}", "db.example.comdb.example.com"),
            ("X={{H}}}", "db.example.com}"),
            ("X=a=b", "a=b"),
        ];
        for (raw, want) in rows {
            let t = parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            let got = render(&t, &env(&e)).unwrap();
            assert_eq!(got.expose(), *want, "{raw}");
            // Sized exactly: no reallocation could have left a copy behind.
            assert_eq!(got.len(), want.len(), "{raw}");
        }
    }

    #[test]
    fn json_filter_is_json() {
        let all: String = (0u8..128).map(char::from).chain("é日🔑".chars()).collect();
        let t = parse("X={{V|json}}").unwrap();
        let pairs = [("V", all.as_str())];
        let got = render(&t, &env(&pairs)).unwrap();
        let back: String = serde_json::from_str(got.expose()).unwrap();
        assert_eq!(back, all);
    }

    #[test]
    fn malformed_is_64_with_position() {
        let rows: &[(&str, &str)] = &[
            ("X", "the form is VAR=TEXT"),
            ("1X=a", "VAR is not a variable name"),
            ("X=ab{{H", "'{{' at character 3 is not closed"),
            ("X=é{{H", "'{{' at character 2 is not closed"),
            ("X={{}}", "'{{}}' at character 1 does not name a variable"),
            ("X=ab{{1A}}", "at character 3 does not name"),
            ("X={{A B}}", "does not name a variable"),
            ("X={{A|urls}}", "unknown filter 'urls' at character 1"),
            ("X={{A|url|json}}", "unknown filter 'url|json'"),
            ("X={{A{{B}}", "'{{A{{B}}' at character 1"),
        ];
        crate::error::assert_refuses(parse, 64, rows);
    }

    #[test]
    fn missing_and_not_utf8() {
        let t = parse("X={{A}}{{B}}").unwrap();
        assert_eq!(
            render(&t, &env(&[("A", "1")])).unwrap_err(),
            RenderError::Missing("B".into())
        );
        let bad = |n: &str| (n == "A").then_some(&b"\xff"[..]);
        assert_eq!(
            render(&t, &bad).unwrap_err(),
            RenderError::NotUtf8("A".into())
        );
        assert_eq!(t.uses(), "A B");
        assert_eq!(
            parse("X={{A|url}}-{{B|json}}").unwrap().uses(),
            "A|url B|json"
        );
    }
}
