//! The one error type of the scenario format: every rejection names where
//! (the scenario, the model, a device or a step by index), the field, and
//! what would be accepted.

use std::fmt;

/// Where in a scenario a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// The top-level object.
    Scenario,
    /// The `model` object.
    Model,
    /// An entry of `devices`, by index (from 0).
    Device {
        /// Position in `devices`.
        index: usize,
    },
    /// An entry of `steps`, by index (from 0), with its `op` once known.
    Step {
        /// Position in `steps`.
        index: usize,
        /// The step's `op`, when it was read.
        op: Option<String>,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Scenario => f.write_str("scenario"),
            Location::Model => f.write_str("model"),
            Location::Device { index } => write!(f, "device {index}"),
            Location::Step { index, op: Some(op) } => write!(f, "step {index} ({op})"),
            Location::Step { index, op: None } => write!(f, "step {index}"),
        }
    }
}

/// Why a scenario was rejected. One error per scenario: the first problem
/// found, reading the document top to bottom.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// The text is not JSON.
    #[error("JSON syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// Line of the error (from 1).
        line: usize,
        /// Column of the error (from 1).
        column: usize,
        /// What serde_json found.
        message: String,
    },
    /// An object holds a key twice.
    #[error("duplicate key \"{key}\" at line {line}, column {column}; each key may appear once in an object")]
    DuplicateKey {
        /// The key.
        key: String,
        /// Line of the second occurrence (from 1).
        line: usize,
        /// Column just after it (from 1).
        column: usize,
    },
    /// `version` is not one this code reads.
    #[error("scenario: field \"version\": version {found} is not supported; supported versions: 1")]
    UnsupportedVersion {
        /// The value found, as JSON.
        found: String,
    },
    /// Something that must be a JSON object is not.
    #[error("{at}: expected a JSON object, found {found}")]
    NotAnObject {
        /// Where.
        at: Location,
        /// What was found instead.
        found: String,
    },
    /// A field the format does not know (fields are never ignored).
    #[error("{at}: unknown field \"{field}\"; accepted fields are {}", accepted.join(", "))]
    UnknownField {
        /// Where.
        at: Location,
        /// The unknown field.
        field: String,
        /// The fields accepted there.
        accepted: Vec<String>,
    },
    /// A required field is absent.
    #[error("{at}: field \"{field}\" is missing; {hint}")]
    MissingField {
        /// Where.
        at: Location,
        /// The missing field.
        field: String,
        /// What to put there.
        hint: String,
    },
    /// A step's `op` is not one of the known operations.
    #[error("step {index}: unknown op \"{op}\"; expected one of {}", expected.join(", "))]
    UnknownOp {
        /// Position in `steps`.
        index: usize,
        /// The op found.
        op: String,
        /// The ops accepted.
        expected: Vec<String>,
    },
    /// A field has a value that is not accepted.
    #[error("{at}: field \"{field}\": {message}")]
    InvalidField {
        /// Where.
        at: Location,
        /// The field.
        field: String,
        /// What is wrong and what would be accepted.
        message: String,
    },
}

impl ScenarioError {
    /// Where the problem is (`None` for JSON syntax errors).
    pub fn location(&self) -> Option<&Location> {
        match self {
            ScenarioError::Syntax { .. } | ScenarioError::DuplicateKey { .. } => None,
            ScenarioError::UnsupportedVersion { .. } => Some(&Location::Scenario),
            ScenarioError::NotAnObject { at, .. }
            | ScenarioError::UnknownField { at, .. }
            | ScenarioError::MissingField { at, .. }
            | ScenarioError::InvalidField { at, .. } => Some(at),
            ScenarioError::UnknownOp { .. } => None,
        }
    }

    /// The field the problem is in, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ScenarioError::UnsupportedVersion { .. } => Some("version"),
            ScenarioError::UnknownField { field, .. }
            | ScenarioError::MissingField { field, .. }
            | ScenarioError::InvalidField { field, .. } => Some(field),
            ScenarioError::UnknownOp { .. } => Some("op"),
            ScenarioError::DuplicateKey { key, .. } => Some(key),
            ScenarioError::Syntax { .. } | ScenarioError::NotAnObject { .. } => None,
        }
    }

    /// The index of the step the problem is in, when it is in a step.
    pub fn step_index(&self) -> Option<usize> {
        match self {
            ScenarioError::UnknownOp { index, .. } => Some(*index),
            _ => match self.location() {
                Some(Location::Step { index, .. }) => Some(*index),
                _ => None,
            },
        }
    }
}

impl From<crate::json::JsonError> for ScenarioError {
    fn from(e: crate::json::JsonError) -> Self {
        match e {
            crate::json::JsonError::Syntax { line, column, message } => ScenarioError::Syntax { line, column, message },
            crate::json::JsonError::DuplicateKey { key, line, column } => {
                ScenarioError::DuplicateKey { key, line, column }
            }
        }
    }
}
