//! Traces: what `pmemlab record` captured of a real program's run on
//! virtio-pmem devices, as a header (the program, its arguments, the device
//! files and sizes, its exit status, what was captured) and the history as
//! [`Scenario`] steps — `write` for every store, `fsync`/`msync` for every
//! flush — so the scenario runner replays it through the simulated driver
//! and virtqueue, and everything that reads a scenario's run (the event
//! log, `explore`, the browser) reads a program's.
//!
//! The file is JSON (`docs/programs.md`):
//!
//! ```json
//! { "format": "pmemlab-trace", "version": 1,
//!   "program": "./planted-bug", "args": ["db.img"],
//!   "devices": [{ "id": "pmem0", "path": "db.img", "size": 1048576 }],
//!   "exit": { "code": 0 },
//!   "stats": { "stores": 3, "bytes": 20, "flushes": 1, "pages": 2 },
//!   "notes": [], "initial_steps": 0,
//!   "scenario": { "version": 1, "devices": […], "steps": […] } }
//! ```
//!
//! [`Trace::parse`] refuses a truncated file, another format or version,
//! a key given twice, an unknown field, a bad value and a scenario whose
//! devices disagree with the header, each with one [`TraceError`] naming
//! the problem. [`raw`] is the interposer's event stream and
//! [`Trace::from_records`] turns it into a trace. Pure: no I/O.

mod convert;
mod error;
mod header;
pub mod raw;

pub use error::TraceError;
pub use header::{ExitStatus, InitialFile, RecordStats, TraceDevice, TraceHeader};

use crate::scenario::Scenario;
use serde_json::{Map, Value};

/// The `format` field of every trace.
pub const TRACE_FORMAT: &str = "pmemlab-trace";
/// The versions of the format this code reads.
pub const TRACE_VERSIONS: [u64; 1] = [1];
/// The fields of a trace.
const FIELDS: [&str; 10] =
    ["format", "version", "program", "args", "devices", "exit", "stats", "notes", "initial_steps", "scenario"];

/// A recorded run: header and history (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    header: TraceHeader,
    scenario: Scenario,
}

impl Trace {
    /// Builds the trace of a run from the interposer's records: the
    /// devices in `header` (stats, notes and initial steps are filled in),
    /// and each device file's content when the program started
    /// (`initial`, in device order).
    pub fn from_records(
        mut header: TraceHeader,
        records: &[raw::RawRecord],
        initial: &[InitialFile],
    ) -> Result<Trace, TraceError> {
        let converted = convert::steps(records, &header.devices, initial)?;
        header.stats = converted.stats;
        header.notes = converted.notes;
        header.initial_steps = converted.initial_steps;
        let mut scenario = header.empty_scenario()?;
        for step in converted.steps {
            scenario.push_step(step).map_err(TraceError::Scenario)?;
        }
        Ok(Trace { header, scenario })
    }

    /// Parses and validates a trace (see the module docs).
    pub fn parse(text: &str) -> Result<Trace, TraceError> {
        // A key given twice is refused by the one checker all inputs use; a
        // syntax error is left to the parse below, which tells a truncated
        // trace from a malformed one.
        if let Err(crate::json::JsonError::DuplicateKey { key, .. }) = crate::json::refuse_duplicate_keys(text) {
            return Err(TraceError::DuplicateKey { key });
        }
        let value: Value = serde_json::from_str(text).map_err(TraceError::from_json)?;
        let Value::Object(mut map) = value else {
            return Err(TraceError::Invalid { field: "trace".into(), message: "expected a JSON object".into() });
        };
        if let Some(k) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(TraceError::UnknownField { field: k.clone() });
        }
        match map.get("format").and_then(Value::as_str) {
            Some(TRACE_FORMAT) => {}
            other => return Err(TraceError::Format { found: other.map(str::to_string) }),
        }
        match map.get("version").and_then(Value::as_u64) {
            Some(v) if TRACE_VERSIONS.contains(&v) => {}
            _ => return Err(TraceError::Version { found: field_text(&map, "version") }),
        }
        let scenario = map.remove("scenario").ok_or(TraceError::Missing { field: "scenario".into() })?;
        let scenario = Scenario::from_value(scenario).map_err(TraceError::Scenario)?;
        let header = TraceHeader::from_map(&mut map)?;
        header.check_scenario(&scenario)?;
        if header.initial_steps > scenario.steps().len() {
            return Err(TraceError::Invalid {
                field: "initial_steps".into(),
                message: format!(
                    "{} initial steps, but the scenario has {}",
                    header.initial_steps,
                    scenario.steps().len()
                ),
            });
        }
        Ok(Trace { header, scenario })
    }

    /// The trace as pretty-printed JSON; [`Trace::parse`] reads it back.
    pub fn to_json(&self) -> String {
        let mut map = self.header.to_map();
        map.insert("scenario".into(), serde_json::to_value(&self.scenario).unwrap_or(Value::Null));
        // Only strings, numbers and string-keyed objects: cannot fail.
        serde_json::to_string_pretty(&Value::Object(map)).unwrap_or_default() + "\n"
    }

    /// The header.
    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    /// The history as a scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }
}

fn field_text(map: &Map<String, Value>, field: &str) -> String {
    map.get(field).map(|v| v.to_string()).unwrap_or_else(|| "none".into())
}

#[cfg(test)]
mod tests;
