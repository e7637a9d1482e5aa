//! JSON read from outside: one rule every parser of a file, a link or an
//! import shares — **a key appears at most once in an object**.
//!
//! `serde_json` keeps the last of two equal keys (into a `Value`) or, for
//! a map field of a derived struct, silently overwrites; a hand-edited
//! file with `"seed": 1, …, "seed": 2` would then mean something its author
//! did not see. [`refuse_duplicate_keys`] walks the text once, without
//! building a `Value` (values are skipped; only the keys of the object
//! being read are held), and names the first key found twice with its
//! line and column. The scenario parser, the explore state file, the
//! event-log import and the trace parser call it before their own parse.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

/// Why a JSON text was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The text is not JSON.
    #[error("JSON syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// Line (from 1).
        line: usize,
        /// Column (from 1).
        column: usize,
        /// What serde_json found.
        message: String,
    },
    /// An object holds the same key twice.
    #[error("duplicate key \"{key}\" at line {line}, column {column}; each key may appear once in an object")]
    DuplicateKey {
        /// The key.
        key: String,
        /// Line of the second occurrence (from 1).
        line: usize,
        /// Column just after it (from 1).
        column: usize,
    },
}

/// Checks that no object in `text` holds a key twice (and that `text` is
/// one JSON value). Costs one pass over the text; holds the keys of the
/// objects open at a time, never the values.
pub fn refuse_duplicate_keys(text: &str) -> Result<(), JsonError> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let result = Unique { duplicate: &duplicate }.deserialize(&mut de).and_then(|()| de.end());
    match result {
        Ok(()) => Ok(()),
        Err(e) => Err(match duplicate.into_inner() {
            Some(key) => JsonError::DuplicateKey { key, line: e.line(), column: e.column() },
            None => syntax(e),
        }),
    }
}

/// `refuse_duplicate_keys`, then `serde_json::from_str`: for derived types
/// read from a file (a state file, a trace).
pub fn from_str_unique<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, JsonError> {
    refuse_duplicate_keys(text)?;
    serde_json::from_str(text).map_err(syntax)
}

/// A serde_json error as a [`JsonError::Syntax`] (its position taken out
/// of the message).
pub fn syntax(e: serde_json::Error) -> JsonError {
    let text = e.to_string();
    let message = match text.rsplit_once(" at line ") {
        Some((m, _)) => m.to_string(),
        None => text,
    };
    JsonError::Syntax { line: e.line(), column: e.column(), message }
}

/// Skips one value, refusing duplicate keys in its objects; the first
/// duplicate found is left in `duplicate`.
#[derive(Clone, Copy)]
struct Unique<'a> {
    duplicate: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for Unique<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if keys.contains(&key) {
                let message = format!("duplicate key \"{key}\"");
                *self.duplicate.borrow_mut() = Some(key);
                // Skip nothing more: the error ends the walk here.
                return Err(de::Error::custom(message));
            }
            keys.insert(key);
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_named_with_its_position() {
        let text = "{\n  \"seed\": 1,\n  \"seed\": 2\n}";
        match refuse_duplicate_keys(text) {
            Err(JsonError::DuplicateKey { key, line, .. }) => {
                assert_eq!(key, "seed");
                assert_eq!(line, 3);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nested_objects_and_arrays_are_checked_and_equal_keys_in_sibling_objects_are_fine() {
        assert_eq!(refuse_duplicate_keys(r#"{"a": [{"k": 1}, {"k": 2}], "b": {"k": {"k": 3}}}"#), Ok(()));
        let deep = r#"{"a": [1, {"x": {"y": 1, "y": 2}}]}"#;
        assert!(matches!(refuse_duplicate_keys(deep), Err(JsonError::DuplicateKey { key, .. }) if key == "y"));
    }

    #[test]
    fn syntax_errors_stay_syntax_errors() {
        assert!(matches!(refuse_duplicate_keys("{\"a\": }"), Err(JsonError::Syntax { .. })));
        assert!(matches!(refuse_duplicate_keys("{} {}"), Err(JsonError::Syntax { .. })));
        // Deep nesting is refused by serde_json's own limit, not a stack overflow.
        let deep = "[".repeat(100_000);
        assert!(matches!(refuse_duplicate_keys(&deep), Err(JsonError::Syntax { .. })));
    }

    #[test]
    fn from_str_unique_reads_a_derived_type() {
        let v: std::collections::BTreeMap<String, u32> = from_str_unique(r#"{"a": 1, "b": 2}"#).unwrap();
        assert_eq!(v.len(), 2);
        let e = from_str_unique::<std::collections::BTreeMap<String, u32>>(r#"{"a": 1, "a": 2}"#);
        assert!(e.unwrap_err().to_string().contains("duplicate key \"a\""));
    }
}
