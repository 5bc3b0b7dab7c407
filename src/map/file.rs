//! The bytes a `--file VAR=REF` delivers: the whole SecretString or SecretBinary, borrowed from
//! the fetched buffer (so it is written to the memfd with no copy in between), or one member of
//! a JSON secret as text. Binary is allowed here, unlike in the environment; NUL bytes too.

use super::{Via, flatten, select_error};
use crate::error::Error;
use crate::secret::SecretText;
use crate::source::{Fetched, Payload};
use crate::spec::Spec;

/// A file's content. `Whole` borrows the fetched buffer; `Member` owns the decoded JSON member
/// (the only copy, wiped on drop). Neither shows its bytes in `Debug`.
#[derive(Debug)]
pub enum FileValue<'a> {
    Whole(Whole<'a>),
    Member(SecretText),
}

/// A borrowed whole secret; `Debug` is redacted like the owning types.
pub struct Whole<'a>(&'a [u8]);

impl std::fmt::Debug for Whole<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl FileValue<'_> {
    pub fn bytes(&self) -> &[u8] {
        match self {
            FileValue::Whole(w) => w.0,
            FileValue::Member(t) => t.expose().as_bytes(),
        }
    }
}

/// Selects what `spec` names in `fetched`: no KEY is the whole value (text or binary); a KEY
/// selects a member of a JSON SecretString, as `VAR=ID:KEY` does for a variable.
pub fn select<'a>(spec: &Spec, fetched: &'a Fetched) -> Result<FileValue<'a>, Error> {
    let id = &spec.secret.id;
    let what = || format!("--file '{}'", spec.raw);
    let (text, key) = match (&fetched.payload, &spec.key) {
        (Payload::Binary(b), None) => return Ok(FileValue::Whole(Whole(b.expose()))),
        (Payload::Text(t), None) => return Ok(FileValue::Whole(Whole(t.expose().as_bytes()))),
        (Payload::Binary(_), Some(_)) => {
            return Err(Error::data(
                id,
                what(),
                "a SecretBinary has no keys; drop the key to deliver its bytes",
            ));
        }
        (Payload::Text(t), Some(key)) => (t, key),
        (Payload::Tree(_), _) => {
            return Err(Error::data(
                spec.secret.to_string(),
                what(),
                "a path (ssm:/PATH/) holds many parameters and a file holds one; name one \
                 parameter, e.g. ssm:/PATH/NAME",
            ));
        }
    };
    let parsed = super::json_of(id, what(), text.expose())?.ok_or_else(|| {
        Error::data(
            id,
            what(),
            "the secret is not JSON, so it has no keys; drop the key to deliver the whole text",
        )
    })?;
    let raw =
        flatten::select(parsed, &key.path()).map_err(|e| select_error(spec, key, e, Via::File))?;
    flatten::check_duplicates(raw.get(), &super::pointer_of(key))
        .map_err(|e| Error::data(id, what(), e))?;
    let value = flatten::value_text(raw).map_err(|e| Error::data(id, what(), e))?;
    Ok(FileValue::Member(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretBytes;
    use crate::spec;

    fn fetched(payload: Payload) -> Fetched {
        Fetched {
            name: "s".into(),
            version_id: None,
            stages: vec![],
            payload,
        }
    }

    fn text(s: &str) -> Fetched {
        fetched(Payload::Text(SecretText::copy_of(s)))
    }

    #[test]
    fn selection_table() {
        let pem = "-----BEGIN KEY-----\nabc\n-----END KEY-----\n";
        let json = r#"{"key":"-----BEGIN\nx\n","n":3306,"o":{"a":1}}"#;
        let rows: &[(&str, Fetched, &[u8])] = &[
            ("F=s", text(pem), pem.as_bytes()),
            ("F=s", text(json), json.as_bytes()),
            ("F=s:key", text(json), b"-----BEGIN\nx\n"),
            ("F=s:n", text(json), b"3306"),
            ("F=s:/o", text(json), br#"{"a":1}"#),
            // Text that starts like JSON but is not: whole, as VAR= takes it.
            ("F=s", text("{not json"), b"{not json"),
            (
                "F=s",
                fetched(Payload::Binary(SecretBytes::from_owned(vec![0, 255, 10]))),
                &[0, 255, 10],
            ),
        ];
        for (raw, f, want) in rows {
            let s = spec::parse(raw).unwrap();
            let got = select(&s, f).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(got.bytes(), *want, "{raw}");
            assert_eq!(format!("{got:?}").matches("[redacted]").count(), 1);
        }
    }

    #[test]
    fn refusals() {
        let bin = || fetched(Payload::Binary(SecretBytes::from_owned(vec![1])));
        let rows: &[(&str, Fetched, &str)] = &[
            ("F=s:k", bin(), "SecretBinary has no keys"),
            ("F=s:k", text("plain"), "not JSON"),
            (
                "F=s:missing",
                text(r#"{"a":1}"#),
                "'missing' does not exist",
            ),
        ];
        for (raw, f, want) in rows {
            let s = spec::parse(raw).unwrap();
            let err = select(&s, f).expect_err(raw);
            assert_eq!(err.exit_code(), 65, "{raw}");
            assert!(err.to_string().contains(want), "{raw}: {err}");
        }
    }
}
