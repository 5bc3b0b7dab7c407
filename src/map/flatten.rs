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

/// How deep a secret may nest. Deeper is refused (65): parsing and mapping recurse once per
/// level, and no real secret comes near this. Documented in docs/limits.md.
pub const MAX_DEPTH: usize = 256;

/// serde_json with its recursion limit (128) lifted: callers have checked the depth against
/// [`MAX_DEPTH`] first, with [`depth`].
fn from_str<'a, T: de::Deserialize<'a>>(text: &'a str) -> serde_json::Result<T> {
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    let value = T::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// The members of `raw` if it is a JSON object.
fn members(raw: &str) -> Option<Vec<(String, &RawValue)>> {
    if !raw.trim_start().starts_with('{') {
        return None;
    }
    from_str::<Members>(raw).ok().map(|m| m.0)
}

/// What a SecretString is, as far as mapping cares.
#[derive(Debug)]
pub enum Parsed<'a> {
    /// Not JSON and does not start like it: one value, as it is.
    Plain,
    /// Valid JSON (a leading BOM skipped).
    Json(&'a RawValue),
    /// Starts like JSON (`{` or `[` after whitespace or a BOM) but does not parse: where.
    Malformed { line: usize, column: usize },
    /// Nests deeper than [`MAX_DEPTH`].
    TooDeep,
}

/// Classifies the whole SecretString, in time linear in its length.
pub fn parse(text: &str) -> Parsed<'_> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let looks_like_json = text.trim_start().starts_with(['{', '[']);
    if looks_like_json && depth(text.as_bytes()) > MAX_DEPTH {
        return Parsed::TooDeep;
    }
    match from_str::<&RawValue>(text) {
        Ok(raw) => Parsed::Json(raw),
        Err(e) if looks_like_json => Parsed::Malformed {
            line: e.line(),
            column: e.column(),
        },
        Err(_) => Parsed::Plain,
    }
}

/// The deepest nesting of `{`/`[` outside strings (an upper bound for invalid text).
pub fn depth(b: &[u8]) -> usize {
    let (mut cur, mut max, mut i) = (0usize, 0usize, 0usize);
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = skip_string(b, i);
                continue;
            }
            b'{' | b'[' => {
                cur += 1;
                max = max.max(cur);
            }
            b'}' | b']' => cur = cur.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    max
}

/// Past the string literal opening at `i` (or the end of `b`).
fn skip_string(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return j + 1,
            _ => j += 1,
        }
    }
    b.len()
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// Past the JSON value starting at `i`, in valid JSON.
fn skip_value(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'"') => skip_string(b, i),
        Some(b'{') | Some(b'[') => {
            let (mut d, mut j) = (0usize, i);
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j);
                        continue;
                    }
                    b'{' | b'[' => d += 1,
                    b'}' | b']' => {
                        d -= 1;
                        if d == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            b.len()
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            j
        }
    }
}

/// The members of the valid JSON object at `i` in one pass: (key, value start, value end), and
/// the end of the object. Nested values are skipped, not parsed, so a caller that descends into
/// them sees each byte once per pass.
fn scan_members(text: &str, i: usize) -> Result<(Vec<(String, usize, usize)>, usize), String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut j = skip_ws(b, i + 1);
    if b.get(j) == Some(&b'}') {
        return Ok((out, j + 1));
    }
    loop {
        let key_end = skip_string(b, j);
        let key: String = from_str(&text[j..key_end]).map_err(|_| "invalid key".to_string())?;
        j = skip_ws(b, key_end);
        j = skip_ws(b, j + 1); // the ':'
        let end = skip_value(b, j);
        out.push((key, j, end));
        j = skip_ws(b, end);
        match b.get(j) {
            Some(b',') => j = skip_ws(b, j + 1),
            Some(b'}') => return Ok((out, j + 1)),
            _ => return Err("malformed object".into()),
        }
    }
}

/// Refuses a repeated key in any object inside the valid JSON value at `i`, arrays included:
/// parsers disagree on which one wins. Linear: each value is visited once.
pub fn check_duplicates(text: &str, pointer: &str) -> Result<(), String> {
    dups(text, skip_ws(text.as_bytes(), 0), pointer).map(|_| ())
}

fn dups(text: &str, i: usize, pointer: &str) -> Result<usize, String> {
    let b = text.as_bytes();
    match b.get(i) {
        Some(b'{') => {
            let (m, end) = scan_members(text, i)?;
            duplicate_key(&m, pointer)?;
            for (k, v, _) in &m {
                dups(text, *v, &format!("{pointer}/{}", escape(k)))?;
            }
            Ok(end)
        }
        Some(b'[') => {
            let mut j = skip_ws(b, i + 1);
            let mut n = 0;
            while b.get(j).is_some_and(|c| *c != b']') {
                let end = dups(text, j, &format!("{pointer}/{n}"))?;
                j = skip_ws(b, end);
                if b.get(j) == Some(&b',') {
                    j = skip_ws(b, j + 1);
                }
                n += 1;
            }
            Ok(j + 1)
        }
        _ => Ok(skip_value(b, i)),
    }
}

fn duplicate_key(m: &[(String, usize, usize)], pointer: &str) -> Result<(), String> {
    let mut keys: Vec<&str> = m.iter().map(|(k, _, _)| k.as_str()).collect();
    keys.sort_unstable();
    match keys.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(format!(
            "key '{pointer}/{}' appears more than once in the JSON; remove the duplicate \
             from the secret",
            escape(w[0])
        )),
        None => Ok(()),
    }
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
            let items: Vec<&RawValue> = from_str(text).map_err(|_| SelectError::NotContainer(i))?;
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
/// leaf via [`value_text`]. `pointer` is the JSON Pointer of `raw` itself. One pass over the
/// text: time is linear in its length whatever the nesting.
pub fn flatten(raw: &RawValue, pointer: &str) -> Result<Vec<Leaf>, String> {
    let text = raw.get();
    let i = skip_ws(text.as_bytes(), 0);
    if text.as_bytes().get(i) != Some(&b'{') {
        return Err(format!("'{pointer}' is not a JSON object"));
    }
    let mut out = Vec::new();
    walk(text, i, "", pointer, &mut out)?;
    Ok(out)
}

fn walk(text: &str, i: usize, key: &str, pointer: &str, out: &mut Vec<Leaf>) -> Result<(), String> {
    let (m, _) = scan_members(text, i)?;
    // A repeated key means two values for one variable, and JSON parsers disagree on which
    // wins: refuse rather than pick one.
    duplicate_key(&m, pointer)?;
    for (k, start, end) in m {
        let mut child_key = String::with_capacity(key.len() + 1 + k.len());
        if !key.is_empty() {
            child_key.push_str(key);
            child_key.push('_');
        }
        child_key.push_str(&k);
        let child_ptr = format!("{pointer}/{}", escape(&k));
        if text.as_bytes()[start] == b'{' {
            walk(text, start, &child_key, &child_ptr, out)?;
        } else {
            let value =
                value_text_of(&text[start..end]).map_err(|e| format!("'{child_ptr}': {e}"))?;
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
    value_text_of(raw.get())
}

fn value_text_of(text: &str) -> Result<SecretText, String> {
    let text = text.trim();
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
        let Parsed::Json(raw) = parse(json) else {
            panic!("not valid json: {json}")
        };
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
            let err = flatten(raw(json), "").unwrap_err();
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
        let doc = raw(
            r#"{"a":{"b":[10,{"c":"x"}],"d":1,"d":2},"s":"str","a.b":1,"":"empty","s2":"x","s2":"y"}"#,
        );
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

    fn raw(json: &str) -> &RawValue {
        match parse(json) {
            Parsed::Json(r) => r,
            other => panic!("{json}: {other:?}"),
        }
    }

    #[test]
    fn parse_table() {
        for text in ["hunter2", "", "-----BEGIN-----\nx", "a{b}", "\u{feff}plain"] {
            assert!(matches!(parse(text), Parsed::Plain), "{text}");
        }
        for text in [
            "\"quoted\"",
            "42",
            "[1]",
            "{}",
            " \n{\"a\":1}",
            "\u{feff}{\"a\":1}",
        ] {
            assert!(matches!(parse(text), Parsed::Json(_)), "{text}");
        }
        let rows = [
            ("{not json", 1, 2),
            ("{\"a\":1,}", 1, 8),
            ("  [1,2", 1, 6),
            ("\u{feff}{\"a\":\n1,\n}", 3, 1),
            ("\n\t{\"a\" 1}", 2, 7),
        ];
        for (text, line, column) in rows {
            match parse(text) {
                Parsed::Malformed { line: l, column: c } => {
                    assert_eq!((l, c), (line, column), "{text:?}")
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    fn nested(levels: usize) -> String {
        let mut s = String::new();
        for _ in 0..levels {
            s.push_str("{\"k\":");
        }
        s.push_str("\"v\"");
        s.push_str(&"}".repeat(levels));
        s
    }

    #[test]
    fn depth_bound() {
        let ok = nested(MAX_DEPTH);
        let leaves = flatten(raw(&ok), "").unwrap();
        assert_eq!(leaves.len(), 1);
        assert_eq!(leaves[0].key.len(), MAX_DEPTH * 2 - 1);
        assert_eq!(leaves[0].value.expose(), "v");
        assert!(matches!(parse(&nested(MAX_DEPTH + 1)), Parsed::TooDeep));
        let arrays = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(matches!(parse(&arrays), Parsed::TooDeep));
        // Brackets inside strings do not count.
        let quoted = format!("{{\"a\":\"{}\"}}", "[{".repeat(1000));
        assert_eq!(depth(quoted.as_bytes()), 1);
    }

    #[test]
    fn duplicates_inside_selected_values() {
        let rows: &[(&str, Option<&str>)] = &[
            (r#"{"pw":"A","pw":"B"}"#, Some("'/o/pw'")),
            (r#"{"a":[{"x":1},{"y":1,"y":2}]}"#, Some("'/o/a/1/y'")),
            (r#"[{"x":1,"x":1}]"#, Some("'/o/0/x'")),
            (
                r#"{"a":{"b":1},"c":[1,{"b":2}],"s":"{\"q\":1,\"q\":2}"}"#,
                None,
            ),
            (r#"[]"#, None),
            (r#"{}"#, None),
        ];
        for (json, want) in rows {
            match (check_duplicates(json, "/o"), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.contains(w), "{json}: {e}"),
                (got, _) => panic!("{json}: {got:?}"),
            }
        }
    }
}
