//! Steps: what the guest, the operator and the checker do, in order.
//!
//! A step is a JSON object tagged by its `op` field (`{"op": "write", …}`).
//! Each op takes its own fields; every step may carry a `note`, and the
//! steps that can fail take `expect_error`.

use super::device::{mode_name, DeviceOptions, MAX_DEVICES};
use super::error::{Location, ScenarioError};
use super::fields::{boolean, byte_size, describe, string, whole, ByteSize, Fields};
use crate::event::{decode_hex, HexBytes};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;

pub use crate::budget::MAX_ACCESS;

/// Bytes given in a step: a pattern, written once, `repeat` times, or
/// repeated to fill `len` bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Data {
    /// The pattern.
    #[serde(flatten)]
    pub pattern: Pattern,
    /// Write the pattern this many times.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u64>,
    /// Repeat the pattern to fill exactly this many bytes (the last copy
    /// may be cut short).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub len: Option<ByteSize>,
}

/// A byte pattern.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// UTF-8 text, `"text": "hello"`.
    Text(String),
    /// Bytes in hex, `"hex": "deadbeef"`.
    Hex(HexBytes),
}

impl Pattern {
    /// The pattern's bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Pattern::Text(s) => s.as_bytes(),
            Pattern::Hex(h) => &h.0,
        }
    }
}

impl Data {
    /// Number of bytes the data stands for.
    pub fn byte_len(&self) -> u64 {
        let unit = self.pattern.bytes().len() as u64;
        match (self.repeat, self.len) {
            (_, Some(len)) => len.0,
            (Some(n), None) => unit.saturating_mul(n),
            (None, None) => unit,
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let unit = self.pattern.bytes();
        let len = self.byte_len() as usize;
        unit.iter().copied().cycle().take(len).collect()
    }

    /// [`Data::bytes`] in a shared buffer, which a store hands to the machine
    /// without a copy ([`crate::sim::Machine::guest_write_shared`]); one
    /// whole page is written straight into a pooled page buffer.
    pub fn shared_bytes(&self) -> std::sync::Arc<[u8]> {
        let unit = self.pattern.bytes();
        if self.byte_len() == crate::memory::PAGE_SIZE && !unit.is_empty() {
            return crate::host::page_pool::page_with(|buf| {
                for (b, u) in buf.iter_mut().zip(unit.iter().cycle()) {
                    *b = *u;
                }
            });
        }
        self.bytes().into()
    }
}

/// What a `read` step expects to get.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ReadExpect {
    /// `"expect": "text"`.
    #[serde(rename = "expect")]
    Text(String),
    /// `"expect_hex": "…"`.
    #[serde(rename = "expect_hex")]
    Hex(HexBytes),
}

impl ReadExpect {
    /// The expected bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            ReadExpect::Text(s) => s.as_bytes(),
            ReadExpect::Hex(h) => &h.0,
        }
    }
}

/// How long a `wait` step lets the machine run: exactly one unit field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WaitTime {
    /// Seconds.
    S(u64),
    /// Milliseconds.
    Ms(u64),
    /// Microseconds.
    Us(u64),
    /// Nanoseconds.
    Ns(u64),
}

impl WaitTime {
    /// The duration in nanoseconds (saturating).
    pub fn nanos(self) -> u64 {
        match self {
            WaitTime::S(n) => n.saturating_mul(1_000_000_000),
            WaitTime::Ms(n) => n.saturating_mul(1_000_000),
            WaitTime::Us(n) => n.saturating_mul(1_000),
            WaitTime::Ns(n) => n,
        }
    }
}

/// What `expect_flush` expects of a device's last flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlushExpectation {
    /// It returned 0.
    Ok,
    /// It returned -EIO.
    Eio,
    /// It has not returned (still in flight, or lost in a crash).
    Pending,
}

impl FlushExpectation {
    /// The word used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            FlushExpectation::Ok => "ok",
            FlushExpectation::Eio => "eio",
            FlushExpectation::Pending => "pending",
        }
    }
}

/// One operation of a step (the `op` field and the op's own fields).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// The guest stores bytes into the device's DAX mapping.
    Write {
        /// Device id.
        device: String,
        /// Offset in the device.
        offset: ByteSize,
        /// The bytes.
        #[serde(flatten)]
        data: Data,
    },
    /// The guest loads bytes; with `expect`/`expect_hex`, they are checked.
    Read {
        /// Device id.
        device: String,
        /// Offset in the device.
        offset: ByteSize,
        /// Bytes to read.
        len: ByteSize,
        /// What the read should return.
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        expect: Option<ReadExpect>,
    },
    /// `fsync` of a file on the device: a flush request through the
    /// virtqueue, which the host answers with an fsync of the backing file.
    Fsync {
        /// Device id.
        device: String,
        /// Wait for the flush to return (default true).
        #[serde(skip_serializing_if = "is_true")]
        blocking: bool,
    },
    /// `msync(MS_SYNC)` of the mapping: the same flush request as `fsync`.
    Msync {
        /// Device id.
        device: String,
        /// Wait for the flush to return (default true).
        #[serde(skip_serializing_if = "is_true")]
        blocking: bool,
    },
    /// The guest maps the device, with `MAP_SYNC` or without.
    Mmap {
        /// Device id.
        device: String,
        /// Ask for `MAP_SYNC` (refused with EOPNOTSUPP on virtio-pmem).
        map_sync: bool,
    },
    /// Simulated time passes; timers (background writeback, completions)
    /// fire.
    Wait {
        /// How long.
        #[serde(flatten)]
        time: WaitTime,
    },
    /// The machine runs until nothing is left to do — including background
    /// writeback of every dirty page.
    RunUntilIdle,
    /// The host loses power: everything not on disk is lost.
    PowerFailure,
    /// The guest kernel crashes and reboots: the host page cache survives.
    GuestCrash,
    /// The VMM process is killed and restarted: the host page cache
    /// survives (a `share=off` private copy does not).
    VmmKill,
    /// The next `count` host fsyncs of the device fail with EIO.
    InjectFsyncError {
        /// Device id.
        device: String,
        /// How many fsyncs fail.
        count: u64,
    },
    /// `object_add` + `device_add` of a new device.
    Hotplug {
        /// The new device.
        device: DeviceOptions,
    },
    /// `device_del`: always refused for virtio-pmem.
    Unplug {
        /// Device id.
        device: String,
    },
    /// Checks what the guest reads.
    ExpectData {
        /// Device id.
        device: String,
        /// Offset in the device.
        offset: ByteSize,
        /// The bytes expected.
        #[serde(flatten)]
        data: Data,
    },
    /// Checks what is on the host's disk.
    ExpectDurable {
        /// Device id.
        device: String,
        /// Offset in the device.
        offset: ByteSize,
        /// The bytes expected.
        #[serde(flatten)]
        data: Data,
    },
    /// Checks what the device's last flush returned.
    ExpectFlush {
        /// Device id.
        device: String,
        /// The result expected.
        result: FlushExpectation,
    },
}

fn is_true(b: &bool) -> bool {
    *b
}

/// A step: an op, the error it is expected to fail with, and a note.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// What to do.
    #[serde(flatten)]
    pub op: Op,
    /// The step must fail with an error whose message contains this text
    /// (case-insensitive), e.g. `"EOPNOTSUPP"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect_error: Option<String>,
    /// A remark for people (shown by the runners).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl fmt::Display for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pattern {
            Pattern::Text(t) => f.write_str(t)?,
            Pattern::Hex(h) => write!(f, "hex {}", h.0.iter().map(|b| format!("{b:02x}")).collect::<String>())?,
        }
        match (self.repeat, self.len) {
            (Some(n), _) => write!(f, " ×{n}"),
            (None, Some(len)) => write!(f, " to {} bytes", len.0),
            (None, None) => Ok(()),
        }
    }
}

impl fmt::Display for WaitTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitTime::S(n) => write!(f, "{n}s"),
            WaitTime::Ms(n) => write!(f, "{n}ms"),
            WaitTime::Us(n) => write!(f, "{n}us"),
            WaitTime::Ns(n) => write!(f, "{n}ns"),
        }
    }
}

/// One line for the list of guest operations: `write nv1 @4096: hello`,
/// `fsync nv1 (not waiting)`, `power failure`. Offsets and lengths are in
/// bytes.
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Write { device, offset, data } => write!(f, "write {device} @{}: {data}", offset.0),
            Op::Read { device, offset, len, .. } => write!(f, "read {device} @{} ({} bytes)", offset.0, len.0),
            Op::Fsync { device, blocking } | Op::Msync { device, blocking } => {
                write!(f, "{} {device}{}", self.name(), if *blocking { "" } else { " (not waiting)" })
            }
            Op::Mmap { device, map_sync } => write!(f, "mmap{} {device}", if *map_sync { " MAP_SYNC" } else { "" }),
            Op::Wait { time } => write!(f, "wait {time}"),
            Op::InjectFsyncError { device, count: 1 } => write!(f, "inject fsync error on {device}"),
            Op::InjectFsyncError { device, count } => write!(f, "inject fsync error on {device} ×{count}"),
            Op::Hotplug { device: d } => write!(
                f,
                "hotplug {} ({}, {}{})",
                d.id,
                d.size,
                mode_name(d.mode),
                if d.share { "" } else { ", share=off" }
            ),
            Op::Unplug { device } => write!(f, "unplug {device}"),
            Op::ExpectData { device, offset, .. } | Op::ExpectDurable { device, offset, .. } => {
                write!(f, "{} {device} @{}", self.name(), offset.0)
            }
            Op::ExpectFlush { device, result } => write!(f, "expect_flush {device} = {}", result.as_str()),
            Op::RunUntilIdle | Op::PowerFailure | Op::GuestCrash | Op::VmmKill => {
                f.write_str(&self.name().replace('_', " "))
            }
        }
    }
}

/// A step doing `op`, with no expected error and no note.
impl From<Op> for Step {
    fn from(op: Op) -> Step {
        Step { op, expect_error: None, note: None }
    }
}

/// The op's line (the note and `expect_error` are not shown).
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.op.fmt(f)
    }
}

/// Per op: its name, its own fields, and whether it takes `expect_error`.
const OPS: [(&str, &[&str], bool); 16] = [
    ("write", &["device", "offset", "text", "hex", "repeat", "len"], true),
    ("read", &["device", "offset", "len", "expect", "expect_hex"], true),
    ("fsync", &["device", "blocking"], true),
    ("msync", &["device", "blocking"], true),
    ("mmap", &["device", "map_sync"], true),
    ("wait", &["s", "ms", "us", "ns"], false),
    ("run_until_idle", &[], false),
    ("power_failure", &[], false),
    ("guest_crash", &[], false),
    ("vmm_kill", &[], false),
    ("inject_fsync_error", &["device", "count"], false),
    ("hotplug", &["device"], true),
    ("unplug", &["device"], true),
    ("expect_data", &["device", "offset", "text", "hex", "repeat", "len"], false),
    ("expect_durable", &["device", "offset", "text", "hex", "repeat", "len"], false),
    ("expect_flush", &["device", "result"], false),
];

/// The names of every op, in documentation order.
pub fn op_names() -> impl Iterator<Item = &'static str> {
    OPS.iter().map(|(name, _, _)| *name)
}

impl Op {
    /// The op's name as written in the file.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Write { .. } => "write",
            Op::Read { .. } => "read",
            Op::Fsync { .. } => "fsync",
            Op::Msync { .. } => "msync",
            Op::Mmap { .. } => "mmap",
            Op::Wait { .. } => "wait",
            Op::RunUntilIdle => "run_until_idle",
            Op::PowerFailure => "power_failure",
            Op::GuestCrash => "guest_crash",
            Op::VmmKill => "vmm_kill",
            Op::InjectFsyncError { .. } => "inject_fsync_error",
            Op::Hotplug { .. } => "hotplug",
            Op::Unplug { .. } => "unplug",
            Op::ExpectData { .. } => "expect_data",
            Op::ExpectDurable { .. } => "expect_durable",
            Op::ExpectFlush { .. } => "expect_flush",
        }
    }
}

/// What step validation knows about the steps before: the devices present
/// and the devices flushed so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct StepContext {
    pub(super) devices: Vec<String>,
    pub(super) flushed: BTreeSet<String>,
}

fn device_list(devices: &[String]) -> String {
    if devices.is_empty() {
        "there are no devices".to_string()
    } else {
        format!("devices are {}", devices.join(", "))
    }
}

fn hex(v: &Value) -> Result<HexBytes, String> {
    let s = string(v).map_err(|_| format!("expected a string of hex digits, found {}", describe(v)))?;
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    decode_hex(&compact)
        .map(|v| HexBytes(v.into()))
        .map_err(|e| format!("{e}; expected pairs of hex digits, e.g. \"deadbeef\""))
}

fn access_len(what: &str, n: u64) -> Result<(), String> {
    if n > MAX_ACCESS {
        return Err(format!("{what} {n} bytes; at most 64M per step"));
    }
    Ok(())
}

impl StepContext {
    fn device(&self, f: &mut Fields) -> Result<String, ScenarioError> {
        let hint = format!("give the id of a device; {}", device_list(&self.devices));
        let id = f.req("device", &hint, string)?;
        if !self.devices.contains(&id) {
            return Err(f.invalid("device", format!("no device \"{id}\"; {}", device_list(&self.devices))));
        }
        Ok(id)
    }

    fn data(&self, f: &mut Fields, empty_ok: bool) -> Result<Data, ScenarioError> {
        let pattern = match (f.has("text"), f.has("hex")) {
            (true, true) => return Err(f.invalid("hex", "give the bytes either as \"text\" or as \"hex\", not both")),
            (false, false) => return Err(f.missing("text", "give the bytes as \"text\" (UTF-8) or as \"hex\"")),
            (true, false) => Pattern::Text(f.req("text", "", string)?),
            (false, true) => Pattern::Hex(f.req("hex", "", hex)?),
        };
        let field = if matches!(pattern, Pattern::Text(_)) { "text" } else { "hex" };
        if pattern.bytes().is_empty() && !empty_ok {
            return Err(f.invalid(field, "must hold at least one byte"));
        }
        if f.has("repeat") && f.has("len") {
            return Err(f.invalid("len", "give either \"repeat\" or \"len\", not both"));
        }
        let repeat = f.opt("repeat", whole)?;
        if repeat == Some(0) {
            return Err(f.invalid("repeat", "expected a count of at least 1, found 0"));
        }
        let len = f.opt("len", byte_size)?;
        if len == Some(ByteSize(0)) {
            return Err(f.invalid("len", "expected at least 1 byte, found 0"));
        }
        let data = Data { pattern, repeat, len };
        let what = if repeat.is_some() {
            "repeat"
        } else if len.is_some() {
            "len"
        } else {
            field
        };
        access_len("the data is", data.byte_len()).map_err(|m| f.invalid(what, m))?;
        Ok(data)
    }

    fn blocking(&self, f: &mut Fields) -> Result<bool, ScenarioError> {
        f.or("blocking", true, boolean)
    }

    /// Reads step `index`, given the devices so far; updates the context.
    pub(super) fn parse(&mut self, index: usize, value: Value) -> Result<Step, ScenarioError> {
        let at = Location::Step { index, op: None };
        let Value::Object(map) = &value else {
            return Err(ScenarioError::NotAnObject { at, found: describe(&value) });
        };
        let expected: Vec<String> = op_names().map(str::to_string).collect();
        let op = match map.get("op") {
            None => {
                let hint = format!("expected one of {}", expected.join(", "));
                return Err(ScenarioError::MissingField { at, field: "op".to_string(), hint });
            }
            Some(Value::String(op)) => op.clone(),
            Some(other) => {
                let message = format!("expected a string, one of {}; found {}", expected.join(", "), describe(other));
                return Err(ScenarioError::InvalidField { at, field: "op".to_string(), message });
            }
        };
        let Some((_, own, fallible)) = OPS.iter().find(|(name, _, _)| *name == op) else {
            return Err(ScenarioError::UnknownOp { index, op, expected });
        };
        let mut accepted = vec!["op"];
        accepted.extend_from_slice(own);
        if *fallible {
            accepted.push("expect_error");
        }
        accepted.push("note");
        let at = Location::Step { index, op: Some(op.clone()) };
        let mut f = Fields::new(at, "", value, &accepted)?;
        f.take("op");
        let note = f.opt("note", string)?;
        let expect_error = f.opt("expect_error", string)?;
        if expect_error.as_deref() == Some("") {
            return Err(f.invalid("expect_error", "expected some text the error message contains, e.g. \"EOPNOTSUPP\""));
        }
        let op = match op.as_str() {
            "write" => {
                let device = self.device(&mut f)?;
                let offset = f.req("offset", "give the offset in the device, e.g. 0 or \"4K\"", byte_size)?;
                Op::Write { device, offset, data: self.data(&mut f, false)? }
            }
            "read" => {
                let read = self.read(&mut f)?;
                if matches!(read, Op::Read { expect: Some(_), .. }) && expect_error.is_some() {
                    let message = "a read either expects bytes (\"expect\", \"expect_hex\") or an error, not both";
                    return Err(f.invalid("expect_error", message));
                }
                read
            }
            "fsync" | "msync" => {
                let device = self.device(&mut f)?;
                let blocking = self.blocking(&mut f)?;
                self.flushed.insert(device.clone());
                if op == "fsync" {
                    Op::Fsync { device, blocking }
                } else {
                    Op::Msync { device, blocking }
                }
            }
            "mmap" => {
                let device = self.device(&mut f)?;
                Op::Mmap { device, map_sync: f.or("map_sync", false, boolean)? }
            }
            "wait" => Op::Wait { time: wait_time(&mut f)? },
            "run_until_idle" => Op::RunUntilIdle,
            "power_failure" => Op::PowerFailure,
            "guest_crash" => Op::GuestCrash,
            "vmm_kill" => Op::VmmKill,
            "inject_fsync_error" => {
                let device = self.device(&mut f)?;
                let count = f.or("count", 1, whole)?;
                if count == 0 {
                    return Err(f.invalid("count", "expected a count of at least 1, found 0"));
                }
                Op::InjectFsyncError { device, count }
            }
            "hotplug" => {
                let Some(v) = f.take("device") else {
                    return Err(f.missing(
                        "device",
                        "give the new device as an object, e.g. {\"id\": \"nv2\", \"size\": \"64M\"}",
                    ));
                };
                if self.devices.len() >= MAX_DEVICES {
                    return Err(f.invalid("device", format!("a scenario has at most {MAX_DEVICES} devices")));
                }
                let device = DeviceOptions::parse(f.at().clone(), "device.", v, &self.devices)?;
                self.devices.push(device.id.clone());
                Op::Hotplug { device }
            }
            "unplug" => Op::Unplug { device: self.device(&mut f)? },
            "expect_data" | "expect_durable" => {
                let device = self.device(&mut f)?;
                let offset = f.req("offset", "give the offset in the device, e.g. 0 or \"4K\"", byte_size)?;
                let data = self.data(&mut f, false)?;
                if op == "expect_data" {
                    Op::ExpectData { device, offset, data }
                } else {
                    Op::ExpectDurable { device, offset, data }
                }
            }
            "expect_flush" => {
                let device = self.device(&mut f)?;
                if !self.flushed.contains(&device) {
                    return Err(f.invalid(
                        "device",
                        format!("\"{device}\" has no fsync or msync before this step, so there is no flush to check"),
                    ));
                }
                let result = f.req("result", "expected one of \"ok\", \"eio\", \"pending\"", flush_expectation)?;
                Op::ExpectFlush { device, result }
            }
            _ => unreachable!("every op in OPS is handled"),
        };
        Ok(Step { op, expect_error, note })
    }

    fn read(&mut self, f: &mut Fields) -> Result<Op, ScenarioError> {
        let device = self.device(f)?;
        let offset = f.req("offset", "give the offset in the device, e.g. 0 or \"4K\"", byte_size)?;
        let expect = match (f.has("expect"), f.has("expect_hex")) {
            (true, true) => {
                return Err(
                    f.invalid("expect_hex", "give the expected bytes either as \"expect\" or \"expect_hex\", not both")
                )
            }
            (true, false) => Some(ReadExpect::Text(f.req("expect", "", string)?)),
            (false, true) => Some(ReadExpect::Hex(f.req("expect_hex", "", hex)?)),
            (false, false) => None,
        };
        let len_given = f.has("len");
        let len = match (f.opt("len", byte_size)?, &expect) {
            (Some(len), Some(e)) if len.0 != e.bytes().len() as u64 => {
                let message = format!(
                    "{} does not match the {} expected bytes; leave len out or make them agree",
                    len.0,
                    e.bytes().len()
                );
                return Err(f.invalid("len", message));
            }
            (Some(len), _) => len,
            (None, Some(e)) => ByteSize(e.bytes().len() as u64),
            (None, None) => {
                return Err(f.missing("len", "give the number of bytes to read (or \"expect\" / \"expect_hex\")"))
            }
        };
        if len.0 == 0 {
            let field = match (&expect, len_given) {
                (Some(ReadExpect::Text(_)), false) => "expect",
                (Some(ReadExpect::Hex(_)), false) => "expect_hex",
                _ => "len",
            };
            return Err(f.invalid(field, "a read takes at least 1 byte"));
        }
        access_len("a read of", len.0).map_err(|m| f.invalid("len", m))?;
        Ok(Op::Read { device, offset, len, expect })
    }
}

fn flush_expectation(v: &Value) -> Result<FlushExpectation, String> {
    match v.as_str() {
        Some("ok") => Ok(FlushExpectation::Ok),
        Some("eio") => Ok(FlushExpectation::Eio),
        Some("pending") => Ok(FlushExpectation::Pending),
        _ => Err(format!("expected one of \"ok\", \"eio\", \"pending\", found {}", describe(v))),
    }
}

fn wait_time(f: &mut Fields) -> Result<WaitTime, ScenarioError> {
    let given: Vec<&str> = ["s", "ms", "us", "ns"].into_iter().filter(|u| f.has(u)).collect();
    match given.as_slice() {
        [] => Err(f.missing("ms", "give the time in exactly one of \"s\", \"ms\", \"us\", \"ns\"")),
        [unit] => {
            let unit = *unit;
            let n = f.req(unit, "", whole)?;
            let (time, per_unit) = match unit {
                "s" => (WaitTime::S(n), 1_000_000_000u64),
                "ms" => (WaitTime::Ms(n), 1_000_000),
                "us" => (WaitTime::Us(n), 1_000),
                _ => (WaitTime::Ns(n), 1),
            };
            if n.checked_mul(per_unit).is_none() {
                return Err(f.invalid(unit, format!("{n} {unit} is too long; the clock counts up to {} ns", u64::MAX)));
            }
            Ok(time)
        }
        [first, second, ..] => {
            Err(f.invalid(second, format!("give the time in exactly one unit; \"{first}\" is given already")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ByteSize, Data, Pattern};
    use crate::event::HexBytes;
    use crate::scenario::Scenario;

    #[test]
    fn shared_bytes_are_the_bytes() {
        let text = |t: &str, repeat: Option<u64>, len: Option<u64>| Data {
            pattern: Pattern::Text(t.into()),
            repeat,
            len: len.map(ByteSize),
        };
        let hex = Data {
            pattern: Pattern::Hex(HexBytes(vec![0xab, 0xcd, 0xef].into())),
            repeat: None,
            len: Some(ByteSize(4096)),
        };
        for d in [
            text("abc", None, Some(4096)),
            text("abc", None, Some(4095)),
            text("xy", Some(3), None),
            text("q", None, None),
            hex,
        ] {
            assert_eq!(&*d.shared_bytes(), &d.bytes()[..], "{d:?}");
        }
        let page = text("abc", None, Some(4096)).shared_bytes();
        assert_eq!((page.len(), page[4095]), (4096, b'a'), "4095 = 3 * 1365: the pattern starts again");
    }

    #[test]
    fn every_step_is_described_in_a_line() {
        let s = Scenario::parse(
            r#"{"version": 1, "devices": [{"id": "nv1", "size": "64M"}], "steps": [
                {"op": "write", "device": "nv1", "offset": 4096, "text": "hi"},
                {"op": "write", "device": "nv1", "offset": "8K", "hex": "dead", "repeat": 3},
                {"op": "write", "device": "nv1", "offset": 0, "text": "ab", "len": "1K"},
                {"op": "fsync", "device": "nv1", "blocking": false},
                {"op": "msync", "device": "nv1"},
                {"op": "mmap", "device": "nv1", "map_sync": true},
                {"op": "wait", "ms": 500},
                {"op": "power_failure"},
                {"op": "run_until_idle"},
                {"op": "read", "device": "nv1", "offset": 0, "len": 2},
                {"op": "inject_fsync_error", "device": "nv1", "count": 2},
                {"op": "hotplug", "device": {"id": "nv2", "size": "4G", "share": false}},
                {"op": "unplug", "device": "nv2"},
                {"op": "expect_durable", "device": "nv1", "offset": 0, "text": "ab"},
                {"op": "expect_flush", "device": "nv1", "result": "ok"}
            ]}"#,
        )
        .unwrap();
        let lines: Vec<String> = s.steps().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "write nv1 @4096: hi",
                "write nv1 @8192: hex dead ×3",
                "write nv1 @0: ab to 1024 bytes",
                "fsync nv1 (not waiting)",
                "msync nv1",
                "mmap MAP_SYNC nv1",
                "wait 500ms",
                "power failure",
                "run until idle",
                "read nv1 @0 (2 bytes)",
                "inject fsync error on nv1 ×2",
                "hotplug nv2 (4G, virtio-pmem, share=off)",
                "unplug nv2",
                "expect_durable nv1 @0",
                "expect_flush nv1 = ok",
            ]
        );
    }
}
