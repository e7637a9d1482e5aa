//! Reading one JSON object field by field, so that every error names its
//! field; the value parsers shared by the scenario, its model, devices and
//! steps; and [`ByteSize`], a size with QEMU's suffixes.

use super::error::{Location, ScenarioError};
use crate::size::{parse_size, short_size};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;

/// A byte count, written as a plain number or, as QEMU's `size=` option
/// takes it, a string with a binary suffix (`"64M"`, `"1.5G"`, `"0x1000"`;
/// the syntax is [`crate::size`]'s). Serialized in the shortest exact form
/// (`"64M"`, or a number when not a multiple of 1 KiB).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses a size as QEMU does ([`crate::size::parse_size`]). The error
    /// names the text and says what is accepted.
    pub fn parse(s: &str) -> Result<ByteSize, String> {
        parse_size(s).map(ByteSize).map_err(|e| e.to_string())
    }

    /// True for one 4 KiB page (the default folio size).
    pub fn is_page(&self) -> bool {
        self.0 == crate::memory::PAGE_SIZE
    }

    /// The shortest exact text: `"64M"`, `"1536"` ([`short_size`]).
    pub fn to_short_string(self) -> String {
        short_size(self.0)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_short_string())
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 != 0 && self.0.is_multiple_of(1024) {
            s.serialize_str(&self.to_short_string())
        } else {
            s.serialize_u64(self.0)
        }
    }
}

/// A short description of a JSON value for error messages.
pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() > 40 => {
            format!("\"{}…\"", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("\"{s}\""),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

/// A parser of one field's value; the error says what is accepted.
pub(super) type Parse<T> = fn(&Value) -> Result<T, String>;

/// A string.
pub(super) fn string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!("expected a string, found {}", describe(other))),
    }
}

/// `true` or `false`.
pub(super) fn boolean(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(format!("expected true or false, found {}", describe(other))),
    }
}

/// A whole number ≥ 0.
pub(super) fn whole(v: &Value) -> Result<u64, String> {
    match v.as_u64() {
        Some(n) => Ok(n),
        None => Err(format!("expected a whole number ≥ 0, found {}", describe(v))),
    }
}

/// A size: a whole number of bytes, or a string with a size suffix.
pub(super) fn byte_size(v: &Value) -> Result<ByteSize, String> {
    match v {
        Value::String(s) => ByteSize::parse(s),
        Value::Number(_) => whole(v)
            .map(ByteSize)
            .map_err(|_| format!("expected a byte count or a size string such as \"64M\", found {}", describe(v))),
        other => Err(format!("expected a byte count or a size string such as \"64M\", found {}", describe(other))),
    }
}

/// The fields of one JSON object, taken one by one (see the module docs).
pub(super) struct Fields {
    at: Location,
    prefix: &'static str,
    map: Map<String, Value>,
}

impl Fields {
    /// Checks that `value` is an object holding only `accepted` fields.
    /// `prefix` is put before field names in errors (`"device."` for a
    /// device object inside a step).
    pub(super) fn new(
        at: Location,
        prefix: &'static str,
        value: Value,
        accepted: &[&str],
    ) -> Result<Fields, ScenarioError> {
        let map = match value {
            Value::Object(map) => map,
            other => {
                if prefix.is_empty() {
                    return Err(ScenarioError::NotAnObject { at, found: describe(&other) });
                }
                let field = prefix.trim_end_matches('.').to_string();
                let message = format!("expected an object, found {}", describe(&other));
                return Err(ScenarioError::InvalidField { at, field, message });
            }
        };
        if let Some(unknown) = map.keys().find(|k| !accepted.contains(&k.as_str())) {
            return Err(ScenarioError::UnknownField {
                field: format!("{prefix}{unknown}"),
                accepted: accepted.iter().map(|a| format!("{prefix}{a}")).collect(),
                at,
            });
        }
        Ok(Fields { at, prefix, map })
    }

    /// Where these fields are.
    pub(super) fn at(&self) -> &Location {
        &self.at
    }

    /// True when the field is present (even as `null`).
    pub(super) fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// An [`ScenarioError::InvalidField`] for `name`.
    pub(super) fn invalid(&self, name: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError::InvalidField {
            at: self.at.clone(),
            field: format!("{}{name}", self.prefix),
            message: message.into(),
        }
    }

    /// A [`ScenarioError::MissingField`] for `name`.
    pub(super) fn missing(&self, name: &str, hint: impl Into<String>) -> ScenarioError {
        ScenarioError::MissingField { at: self.at.clone(), field: format!("{}{name}", self.prefix), hint: hint.into() }
    }

    /// Removes and returns the raw value of a field.
    pub(super) fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name)
    }

    /// An optional field.
    pub(super) fn opt<T>(&mut self, name: &str, parse: Parse<T>) -> Result<Option<T>, ScenarioError> {
        match self.map.remove(name) {
            None => Ok(None),
            Some(v) => parse(&v).map(Some).map_err(|m| self.invalid(name, m)),
        }
    }

    /// An optional field with a default.
    pub(super) fn or<T>(&mut self, name: &str, default: T, parse: Parse<T>) -> Result<T, ScenarioError> {
        Ok(self.opt(name, parse)?.unwrap_or(default))
    }

    /// An optional field that may be `null` (→ `None`, "off"); absent gives
    /// `default`.
    pub(super) fn nullable<T>(
        &mut self,
        name: &str,
        default: Option<T>,
        parse: Parse<T>,
    ) -> Result<Option<T>, ScenarioError> {
        match self.map.remove(name) {
            None => Ok(default),
            Some(Value::Null) => Ok(None),
            Some(v) => parse(&v).map(Some).map_err(|m| self.invalid(name, format!("{m} (or null for off)"))),
        }
    }

    /// A required field; `hint` says what to put there when it is missing.
    pub(super) fn req<T>(&mut self, name: &str, hint: &str, parse: Parse<T>) -> Result<T, ScenarioError> {
        match self.map.remove(name) {
            None => Err(self.missing(name, hint)),
            Some(v) => parse(&v).map_err(|m| self.invalid(name, m)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_size_field_reads_what_qemu_reads() {
        // The rules themselves are tested in `crate::size`; these show the
        // scenario uses them (hex, rounding, leading white space).
        assert_eq!(ByteSize::parse("64M"), Ok(ByteSize(64 << 20)));
        assert_eq!(ByteSize::parse("0x1000"), Ok(ByteSize(4096)));
        assert_eq!(ByteSize::parse("1.3K"), Ok(ByteSize(1331)), "1331.2 rounds to the nearest byte");
        assert_eq!(ByteSize::parse(" 4k"), Ok(ByteSize(4096)));
        assert!(ByteSize::parse("1.3B").unwrap_err().contains("a fraction needs a suffix larger than bytes"));
        assert!(ByteSize::parse("16E").unwrap_err().contains("too large"));
        assert!(ByteSize::parse("64MiB").unwrap_err().starts_with("'64MiB' is not a size"));
    }

    #[test]
    fn a_size_field_takes_a_number_or_a_string() {
        assert_eq!(byte_size(&serde_json::json!(4096)), Ok(ByteSize(4096)));
        assert_eq!(byte_size(&serde_json::json!("4K")), Ok(ByteSize(4096)));
        assert!(byte_size(&serde_json::json!(-1)).unwrap_err().contains("found -1"));
        assert!(byte_size(&serde_json::json!(true)).unwrap_err().contains("found true"));
    }

    #[test]
    fn sizes_serialize_in_the_shortest_exact_form() {
        assert_eq!(ByteSize(64 << 20).to_string(), "64M");
        assert_eq!(serde_json::to_string(&ByteSize(64 << 20)).unwrap(), r#""64M""#);
        assert_eq!(serde_json::to_string(&ByteSize(1536)).unwrap(), "1536");
        assert_eq!(serde_json::to_string(&ByteSize(0)).unwrap(), "0");
    }
}
