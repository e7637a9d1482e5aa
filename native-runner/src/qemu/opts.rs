//! QEMU's `key=value,key=value` option strings (QemuOpts).
//!
//! As QEMU reads `-object` / `-device` arguments and the monitor's
//! `object_add` / `device_add`:
//! - the first element may be a bare value: the type (`memory-backend-file`,
//!   `virtio-pmem-pci`);
//! - a later bare `key` means `key=on` (QEMU's short-form boolean);
//! - `,,` inside a value is a literal comma (`mem-path=a,,b.img` is
//!   `a,b.img`);
//! - booleans are `on`/`off` (also `yes`/`no`, `true`/`false`, `y`/`n`).
//!
//! A key given twice is refused rather than "last one wins", which hides
//! typos.

/// Why an option string is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OptsError {
    /// Nothing at all.
    #[error("the option string is empty")]
    Empty,
    /// `=value` without a key.
    #[error("'{0}' has an empty option name")]
    EmptyKey(String),
    /// The same key twice.
    #[error("option '{0}' is given twice")]
    Duplicate(String),
    /// A value that is not a boolean.
    #[error("{key}='{value}' is not a boolean: use on or off")]
    NotBool {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
}

/// A parsed option string: the leading type (if any) and the `key=value`
/// pairs in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Opts {
    /// The bare first element (`memory-backend-file`), if there was one.
    pub kind: Option<String>,
    /// The pairs; a bare `key` is stored as `key=on`.
    pub pairs: Vec<(String, String)>,
}

impl Opts {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Opts, OptsError> {
        if text.trim().is_empty() {
            return Err(OptsError::Empty);
        }
        let mut opts = Opts::default();
        for (i, element) in split_elements(text).into_iter().enumerate() {
            match element.split_once('=') {
                Some(("", _)) => return Err(OptsError::EmptyKey(element)),
                Some((k, v)) => opts.push(k, v)?,
                None if i == 0 => opts.kind = Some(element),
                None if element.is_empty() => {} // a trailing comma
                None => opts.push(&element, "on")?,
            }
        }
        Ok(opts)
    }

    fn push(&mut self, key: &str, value: &str) -> Result<(), OptsError> {
        if self.pairs.iter().any(|(k, _)| k == key) {
            return Err(OptsError::Duplicate(key.to_string()));
        }
        self.pairs.push((key.to_string(), value.to_string()));
        Ok(())
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The boolean value of `key` (`None` when absent).
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, OptsError> {
        self.get(key).map(|v| parse_bool(key, v)).transpose()
    }
}

/// QEMU's booleans.
pub fn parse_bool(key: &str, value: &str) -> Result<bool, OptsError> {
    match value {
        "on" | "yes" | "true" | "y" => Ok(true),
        "off" | "no" | "false" | "n" => Ok(false),
        _ => Err(OptsError::NotBool { key: key.to_string(), value: value.to_string() }),
    }
}

/// Splits at single commas; `,,` is a literal comma.
fn split_elements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                cur.push(',');
            } else {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_qemu_documentation_examples() {
        let o = Opts::parse("memory-backend-file,id=mem1,share,mem-path=./virtio_pmem.img,size=4G").unwrap();
        assert_eq!(o.kind.as_deref(), Some("memory-backend-file"));
        assert_eq!(o.get("id"), Some("mem1"));
        assert_eq!(o.get_bool("share"), Ok(Some(true)));
        assert_eq!(o.get("mem-path"), Some("./virtio_pmem.img"));
        assert_eq!(o.get("size"), Some("4G"));
        assert_eq!(o.get_bool("readonly"), Ok(None));
    }

    #[test]
    fn double_commas_escape_and_bad_input_is_refused() {
        let o = Opts::parse("memory-backend-file,mem-path=a,,b.img,id=m").unwrap();
        assert_eq!(o.get("mem-path"), Some("a,b.img"));
        assert_eq!(Opts::parse("x,id=a,id=b"), Err(OptsError::Duplicate("id".into())));
        assert_eq!(Opts::parse(""), Err(OptsError::Empty));
        assert!(matches!(Opts::parse("x,=3"), Err(OptsError::EmptyKey(_))));
        let o = Opts::parse("x,share=maybe").unwrap();
        assert!(o.get_bool("share").unwrap_err().to_string().contains("use on or off"));
        // Without a type, the first element is a pair.
        let o = Opts::parse("id=a,size=4K").unwrap();
        assert_eq!(o.kind, None);
        assert_eq!(o.pairs.len(), 2);
    }
}
