//! [`TraceError`]: why a trace (or the raw stream it comes from) was
//! refused, in one sentence that names the problem.

use crate::scenario::ScenarioError;

/// Why a trace could not be read or built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// The text ends in the middle.
    #[error("the trace is truncated (it ends at line {line}, column {column}); it was not written completely")]
    Truncated {
        /// Last line.
        line: usize,
        /// Last column.
        column: usize,
    },
    /// Not JSON.
    #[error("the trace is not valid JSON: {message} at line {line}, column {column}")]
    Syntax {
        /// Line (from 1).
        line: usize,
        /// Column (from 1).
        column: usize,
        /// What serde_json found.
        message: String,
    },
    /// A key given twice in one object.
    #[error("the trace gives the key \"{key}\" twice in one object")]
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// Not a pmemlab trace.
    #[error("not a pmemlab trace: \"format\" is {}, expected \"pmemlab-trace\"", found.as_deref().map(|f| format!("\"{f}\"")).unwrap_or_else(|| "missing".into()))]
    Format {
        /// The format found.
        found: Option<String>,
    },
    /// Another version.
    #[error("trace version {found} is not supported; this pmemlab reads version 1 (record the program again)")]
    Version {
        /// The version found, as JSON.
        found: String,
    },
    /// A field this version does not know.
    #[error("the trace has an unknown field \"{field}\"")]
    UnknownField {
        /// The field.
        field: String,
    },
    /// A required field is absent.
    #[error("the trace has no \"{field}\" field")]
    Missing {
        /// The field.
        field: String,
    },
    /// A field's value is wrong.
    #[error("the trace's \"{field}\": {message}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The embedded scenario is invalid.
    #[error("the trace's scenario: {0}")]
    Scenario(ScenarioError),
    /// The raw stream ends inside a record.
    #[error("the recording stream is cut short in the record at byte {offset}")]
    RawTruncated {
        /// Byte offset of the record.
        offset: u64,
    },
    /// The raw stream holds a record of an unknown kind.
    #[error("the recording stream has a record of unknown kind {kind} at byte {offset}")]
    RawKind {
        /// Byte offset of the record.
        offset: u64,
        /// The kind.
        kind: u8,
    },
    /// The program did something the recording cannot represent.
    #[error("the program cannot be traced: {0}")]
    Untraceable(String),
}

impl TraceError {
    /// The error of a serde_json failure: truncated at the end of input,
    /// else a syntax error.
    pub(super) fn from_json(e: serde_json::Error) -> TraceError {
        if e.is_eof() {
            return TraceError::Truncated { line: e.line(), column: e.column() };
        }
        let text = e.to_string();
        let message = text.rsplit_once(" at line ").map(|(m, _)| m.to_string()).unwrap_or(text);
        TraceError::Syntax { line: e.line(), column: e.column(), message }
    }
}
