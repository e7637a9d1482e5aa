//! A walk over a JSON text that refuses a key given twice in one object
//! (serde_json would keep the last one silently).

use super::TraceError;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// Checks every object of `text` for repeated keys.
pub(super) fn check_keys(text: &str) -> Result<(), TraceError> {
    let mut de = serde_json::Deserializer::from_str(text);
    match NoDup.deserialize(&mut de) {
        Ok(()) => de.end().map_err(TraceError::from_json),
        Err(e) => match e.to_string().strip_prefix("duplicate key ") {
            Some(rest) => {
                let key = rest.split(" at line ").next().unwrap_or(rest);
                Err(TraceError::DuplicateKey { key: key.trim_matches('`').to_string() })
            }
            None => Err(TraceError::from_json(e)),
        },
    }
}

struct NoDup;

impl<'de> DeserializeSeed<'de> for NoDup {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(NoDup)
    }
}

impl<'de> Visitor<'de> for NoDup {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
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
        while seq.next_element_seed(NoDup)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            map.next_value_seed(NoDup)?;
        }
        Ok(())
    }
}
