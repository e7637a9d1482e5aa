//! The header of a trace: the program, its arguments, the devices, its
//! exit status and what the recording captured.

use super::{TraceError, TRACE_FORMAT};
use crate::scenario::{ByteSize, Scenario, MAX_DEVICE_SIZE};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// One device of a recording: the file the program used as a virtio-pmem
/// backing file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceDevice {
    /// The id the scenario's steps name it by (`pmem0`, `pmem1`, …).
    pub id: String,
    /// The file as the program's working directory saw it (relative when
    /// given relative).
    pub path: String,
    /// The device's size in bytes (a non-zero multiple of 4096).
    pub size: u64,
}

/// How the program ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum ExitStatus {
    /// It exited with this status.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

impl ExitStatus {
    /// Whether it exited with status 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }

    /// The status a shell would show: the code, or 128 + the signal.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit status {c}"),
            ExitStatus::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

/// What the recording captured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordStats {
    /// Stores recorded (a run of changed bytes through a mapping, or a
    /// write call).
    pub stores: u64,
    /// Bytes they stored.
    pub bytes: u64,
    /// Flushes (fsync, fdatasync, msync(MS_SYNC), sync_file_range, syncfs).
    pub flushes: u64,
    /// Distinct 4 KiB pages stored to.
    pub pages: u64,
}

/// A trace's header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceHeader {
    /// The program as given on the command line.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The devices, in the order of `--pmem`.
    pub devices: Vec<TraceDevice>,
    /// How it ended.
    pub exit: ExitStatus,
    /// What was captured.
    pub stats: RecordStats,
    /// Things worth saying (MAP_SYNC refused, …).
    pub notes: Vec<String>,
    /// The first steps of the scenario put the files' content at the start
    /// on the devices (writes, then a flush); they are no part of the
    /// program's run, and no crash is explored inside them.
    pub initial_steps: usize,
}

/// A device file's content when the program started: its length and its
/// non-zero extents (offset, bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitialFile {
    /// The file's length.
    pub len: u64,
    /// Non-zero byte ranges, in order.
    pub extents: Vec<(u64, Vec<u8>)>,
}

fn take<T: serde::de::DeserializeOwned>(map: &mut Map<String, Value>, field: &str) -> Result<T, TraceError> {
    let v = map.remove(field).ok_or_else(|| TraceError::Missing { field: field.into() })?;
    serde_json::from_value(v).map_err(|e| TraceError::Invalid { field: field.into(), message: e.to_string() })
}

impl TraceHeader {
    /// Reads the header fields of a trace object (format and version are
    /// checked by the caller).
    pub(super) fn from_map(map: &mut Map<String, Value>) -> Result<TraceHeader, TraceError> {
        let header = TraceHeader {
            program: take(map, "program")?,
            args: take(map, "args")?,
            devices: take(map, "devices")?,
            exit: take(map, "exit")?,
            stats: take(map, "stats")?,
            notes: take(map, "notes")?,
            initial_steps: take(map, "initial_steps")?,
        };
        header.check_devices()?;
        Ok(header)
    }

    fn check_devices(&self) -> Result<(), TraceError> {
        let bad = |message: String| Err(TraceError::Invalid { field: "devices".into(), message });
        if self.devices.is_empty() {
            return bad("there is no device; a recording has at least one".into());
        }
        for (i, d) in self.devices.iter().enumerate() {
            if d.id != format!("pmem{i}") {
                return bad(format!("device {i} has id \"{}\"; expected \"pmem{i}\"", d.id));
            }
            if d.size == 0 || !d.size.is_multiple_of(4096) || d.size > MAX_DEVICE_SIZE {
                return bad(format!("device {i} has size {}; a size is a non-zero multiple of 4096 up to 16T", d.size));
            }
        }
        Ok(())
    }

    /// The header fields as a JSON object, format and version first.
    pub(super) fn to_map(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("format".into(), json!(TRACE_FORMAT));
        map.insert("version".into(), json!(1));
        if let Ok(Value::Object(fields)) = serde_json::to_value(self) {
            map.extend(fields);
        }
        map
    }

    /// A scenario with the devices and no step.
    pub(super) fn empty_scenario(&self) -> Result<Scenario, TraceError> {
        self.check_devices()?;
        let devices: Vec<Value> =
            self.devices.iter().map(|d| json!({ "id": d.id, "mem-path": d.path, "size": ByteSize(d.size) })).collect();
        let name =
            std::iter::once(self.program.as_str()).chain(self.args.iter().map(String::as_str)).collect::<Vec<_>>();
        Scenario::from_value(json!({
            "version": 1,
            "name": format!("recorded: {}", name.join(" ")),
            "description": "The stores and flushes of a program recorded by pmemlab record.",
            "devices": devices,
        }))
        .map_err(TraceError::Scenario)
    }

    /// Checks that the scenario's devices are the header's.
    pub(super) fn check_scenario(&self, scenario: &Scenario) -> Result<(), TraceError> {
        let same = scenario.devices().len() == self.devices.len()
            && scenario
                .devices()
                .iter()
                .zip(&self.devices)
                .all(|(s, d)| s.id == d.id && s.mem_path.as_deref() == Some(d.path.as_str()) && s.size.0 == d.size)
            && scenario.all_devices().count() == self.devices.len();
        if !same {
            return Err(TraceError::Invalid {
                field: "scenario".into(),
                message: "its devices are not the header's (same ids, paths and sizes, no hotplug)".into(),
            });
        }
        Ok(())
    }
}
