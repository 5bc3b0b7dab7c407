//! From a secret's JSON text to (key path, value text) pairs. Works on borrowed `RawValue` slices
//! of the secret text, so no `serde_json::Value` tree of a secret ever exists: each value is
//! decoded straight into one pre-sized `SecretText`. Numbers keep their exact source text.

use crate::secret::SecretText;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// A JSON object's members in source order (duplicates kept: they surface as collisions).
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> de::Deserialize<'de> for Members<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Members<'a>, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The members of `raw` if it is a JSON object.
fn members(raw: &str) -> Option<Vec<(String, &RawValue)>> {
    if !raw.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str::<Members>(raw).ok().map(|m| m.0)
}

/// Parses the whole SecretString: `Some` raw value when it is valid JSON, `None` for plain text.
pub fn parse(text: &str) -> Option<&RawValue> {
    serde_json::from_str::<&RawValue>(text).ok()
}

pub fn is_object(raw: &RawValue) -> bool {
    raw.get().starts_with('{')
}

#[derive(Debug, PartialEq, Eq)]
pub enum SelectError {
    /// The path step at this index does not exist.
    Missing(usize),
    /// The value at this index is not an object or array, so the path cannot go on.
    NotContainer(usize),
    /// The object key at this index appears more than once: JSON parsers disagree on which one
    /// wins, so neither is chosen.
    Duplicate(usize),
}

/// Follows a key path (object keys, or array indices) into `raw`.
pub fn select<'a>(raw: &'a RawValue, path: &[&str]) -> Result<&'a RawValue, SelectError> {
    let mut cur = raw;
    for (i, step) in path.iter().enumerate() {
        let text = cur.get();
        cur = if text.starts_with('{') {
            let m = members(text).ok_or(SelectError::NotContainer(i))?;
            let mut hits = m.into_iter().filter(|(k, _)| k == step).map(|(_, v)| v);
            let hit = hits.next().ok_or(SelectError::Missing(i))?;
            if hits.next().is_some() {
                return Err(SelectError::Duplicate(i));
            }
            hit
        } else if text.starts_with('[') {
            let items: Vec<&RawValue> =
                serde_json::from_str(text).map_err(|_| SelectError::NotContainer(i))?;
            let idx: usize = step.parse().map_err(|_| SelectError::Missing(i))?;
            // RFC 6901 forbids leading zeros in indices.
            if step.len() > 1 && step.starts_with('0') {
                return Err(SelectError::Missing(i));
            }
            *items.get(idx).ok_or(SelectError::Missing(i))?
        } else {
            return Err(SelectError::NotContainer(i));
        };
    }
    Ok(cur)
}

/// One flattened leaf: its key path (joined with `_`, unsanitised), a JSON Pointer naming it for
/// messages, and its value.
#[derive(Debug)]
pub struct Leaf {
    pub key: String,
    pub pointer: String,
    pub value: SecretText,
}

/// Flattens a JSON object: nested objects join keys with `_`, everything else becomes one
/// leaf via [`value_text`]. `pointer` is the JSON Pointer of `raw` itself.
pub fn flatten(raw: &RawValue, pointer: &str) -> Result<Vec<Leaf>, String> {
    let mut out = Vec::new();
    walk(raw, "", pointer, &mut out)?;
    Ok(out)
}

fn walk(raw: &RawValue, key: &str, pointer: &str, out: &mut Vec<Leaf>) -> Result<(), String> {
    let m = members(raw.get()).ok_or_else(|| format!("'{pointer}' is not a JSON object"))?;
    // A repeated key means two values for one variable, and JSON parsers disagree on which
    // wins: refuse rather than pick one.
    let mut keys: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!(
            "key '{pointer}/{}' appears more than once in the JSON; remove the duplicate \
             from the secret",
            escape(w[0])
        ));
    }
    for (k, v) in m {
        let mut child_key = String::with_capacity(key.len() + 1 + k.len());
        if !key.is_empty() {
            child_key.push_str(key);
            child_key.push('_');
        }
        child_key.push_str(&k);
        let child_ptr = format!("{pointer}/{}", escape(&k));
        if is_object(v) {
            walk(v, &child_key, &child_ptr, out)?;
        } else {
            let value = value_text(v).map_err(|e| format!("'{child_ptr}': {e}"))?;
            out.push(Leaf {
                key: child_key,
                pointer: child_ptr,
                value,
            });
        }
    }
    Ok(())
}

/// One RFC 6901 reference token.
pub fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The environment text of one JSON value: strings decoded, numbers as written, `true`/`false`,
/// `null` as empty, objects and arrays as compact JSON.
pub fn value_text(raw: &RawValue) -> Result<SecretText, String> {
    let text = raw.get().trim();
    match text.as_bytes().first() {
        Some(b'"') => decode_string(text),
        Some(b'{') | Some(b'[') => Ok(minify(text)),
        Some(b'n') => Ok(SecretText::with_capacity(0)),
        _ => Ok(SecretText::copy_of(text)),
    }
}

/// Decodes a JSON string literal into a buffer sized once: decoding never lengthens text.
fn decode_string(literal: &str) -> Result<SecretText, String> {
    struct Fill<'b>(&'b mut SecretText);
    impl<'de> DeserializeSeed<'de> for Fill<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_str(self)
        }
    }
    impl<'de> Visitor<'de> for Fill<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
            self.0.push_str(v);
            Ok(())
        }
    }
    let mut out = SecretText::with_capacity(literal.len());
    let mut de = serde_json::Deserializer::from_str(literal);
    // The error text of serde_json names a position, never the content.
    Fill(&mut out)
        .deserialize(&mut de)
        .map_err(|e| format!("invalid JSON string ({})", category(&e)))?;
    Ok(out)
}

/// What kind of JSON error, in words: serde_json's own message could quote content.
fn category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "I/O",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "unexpected end",
    }
}

/// Removes insignificant whitespace from valid JSON text; string contents are kept as written.
fn minify(json: &str) -> SecretText {
    let mut out = SecretText::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(json: &str) -> Vec<(String, String, String)> {
        let raw = parse(json).expect("valid json");
        flatten(raw, "")
            .unwrap()
            .into_iter()
            .map(|l| (l.key, l.pointer, l.value.expose().to_string()))
            .collect()
    }

    #[test]
    fn flattens_rds_secret_in_order_with_exact_numbers() {
        let got = leaves(
            r#"{"username":"admin","password":"p\"w\nx","engine":"mysql","host":"db.example","port":3306,"dbInstanceIdentifier":"database-1"}"#,
        );
        let want = [
            ("username", "admin"),
            ("password", "p\"w\nx"),
            ("engine", "mysql"),
            ("host", "db.example"),
            ("port", "3306"),
            ("dbInstanceIdentifier", "database-1"),
        ];
        assert_eq!(got.len(), want.len());
        for ((k, _, v), (wk, wv)) in got.iter().zip(want) {
            assert_eq!((k.as_str(), v.as_str()), (wk, wv));
        }
    }

    #[test]
    fn value_table() {
        let rows = [
            (r#"{"a":1e6}"#, "a", "1e6"),
            (r#"{"a":0.10}"#, "a", "0.10"),
            (r#"{"a":-0}"#, "a", "-0"),
            (
                r#"{"a":123456789012345678901234567890}"#,
                "a",
                "123456789012345678901234567890",
            ),
            (r#"{"a":true}"#, "a", "true"),
            (r#"{"a":false}"#, "a", "false"),
            (r#"{"a":null}"#, "a", ""),
            (
                r#"{"a":[1, "x" , {"b" : null}]}"#,
                "a",
                r#"[1,"x",{"b":null}]"#,
            ),
            (r#"{"a":"sp ace\ttab"}"#, "a", "sp ace\ttab"),
            (r#"{"a":"\u00e9\ud83d\ude00"}"#, "a", "é😀"),
            (
                r#"{"a":"-----BEGIN KEY-----\nAAA\n-----END KEY-----\n"}"#,
                "a",
                "-----BEGIN KEY-----\nAAA\n-----END KEY-----\n",
            ),
            (r#"{"a":{"b":{"c":"deep"}}}"#, "a_b_c", "deep"),
            (r#"{"a":{}}"#, "", ""),
        ];
        for (json, key, value) in rows {
            let got = leaves(json);
            if key.is_empty() {
                assert!(got.is_empty(), "{json}");
                continue;
            }
            assert_eq!(got.len(), 1, "{json}");
            assert_eq!(got[0].0, key, "{json}");
            assert_eq!(got[0].2, value, "{json}");
        }
    }

    #[test]
    fn pointers_name_nested_leaves() {
        let got = leaves(r#"{"replica":{"host":"h","a/b":{"c~d":1}}}"#);
        let ptrs: Vec<&str> = got.iter().map(|l| l.1.as_str()).collect();
        assert_eq!(ptrs, ["/replica/host", "/replica/a~1b/c~0d"]);
        assert_eq!(got[0].0, "replica_host");
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let rows = [
            (r#"{"a":"1","a":"2"}"#, "'/a' appears more than once"),
            (
                r#"{"x":{"a~b":1,"a~b":{}}}"#,
                "'/x/a~0b' appears more than once",
            ),
            (
                r#"{"a":{"b":1},"a":{"c":2}}"#,
                "'/a' appears more than once",
            ),
        ];
        for (json, want) in rows {
            let err = flatten(parse(json).unwrap(), "").unwrap_err();
            assert!(err.contains(want), "{json}: {err}");
        }
        // Same name after sanitising, different keys: not a duplicate here (a collision later).
        let keys: Vec<String> = leaves(r#"{"a":1,"A":2,"b_c":3,"b":{"c":4}}"#)
            .into_iter()
            .map(|l| l.0)
            .collect();
        assert_eq!(keys, ["a", "A", "b_c", "b_c"]);
    }

    #[test]
    fn select_table() {
        let doc = parse(
            r#"{"a":{"b":[10,{"c":"x"}],"d":1,"d":2},"s":"str","a.b":1,"":"empty","s2":"x","s2":"y"}"#,
        )
        .unwrap();
        let ok: &[(&[&str], &str)] = &[
            (&["a", "b", "0"], "10"),
            (&["a", "b", "1", "c"], r#""x""#),
            (&["a.b"], "1"),
            (&[""], r#""empty""#),
            (&["s"], r#""str""#),
        ];
        for (path, want) in ok {
            assert_eq!(select(doc, path).unwrap().get(), *want, "{path:?}");
        }
        let bad: &[(&[&str], SelectError)] = &[
            (&["zz"], SelectError::Missing(0)),
            (&["a", "zz"], SelectError::Missing(1)),
            (&["a", "b", "9"], SelectError::Missing(2)),
            (&["a", "b", "x"], SelectError::Missing(2)),
            (&["a", "b", "00"], SelectError::Missing(2)),
            (&["s", "x"], SelectError::NotContainer(1)),
            (&["s2"], SelectError::Duplicate(0)),
            (&["a", "d"], SelectError::Duplicate(1)),
        ];
        for (path, want) in bad {
            assert_eq!(select(doc, path).unwrap_err(), *want, "{path:?}");
        }
    }

    #[test]
    fn plain_text_is_not_json() {
        for text in ["hunter2", "", "{not json", "-----BEGIN-----\nx"] {
            assert!(parse(text).is_none(), "{text}");
        }
        for text in ["\"quoted\"", "42", "[1]", "{}"] {
            assert!(parse(text).is_some(), "{text}");
        }
    }
}
