//! A session: a scenario, the position in it, and the machine at that
//! position.
//!
//! Everything the user does becomes a scenario step (the native runner's
//! format, `docs/scenario.md`): a write, an fsync, a power failure, a wait
//! while playing. The session keeps the steps as JSON, a cursor, and a
//! [`ScenarioRunner`] that has run the steps before the cursor. Going back
//! is a replay from the seed: a new runner runs the first `cursor - 1`
//! steps. A new action at the cursor drops the steps after it (as an
//! editor's undo history does) and replays. Knobs that belong to the whole
//! run (the seed, the tear granularity, background writeback, a device's
//! mode) change the scenario's header and replay to the same cursor, so one
//! can compare the same actions under another setting.

use pmem_core::host::TearGranularity;
use pmem_core::scenario::{Scenario, ScenarioRunner, StepOutcome};
use pmem_core::sim::Machine;
use serde_json::{json, Map, Value};

/// What the user picks as a device's kind: the three modes of the core,
/// and `share=off` (a virtio-pmem device whose writes never reach the file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeChoice {
    /// virtio-pmem, `share=on`.
    VirtioPmem,
    /// An NVDIMM emulated on a regular file.
    EmulatedNvdimm,
    /// A real NVDIMM.
    RealNvdimm,
    /// virtio-pmem with `share=off`.
    ShareOff,
}

impl ModeChoice {
    /// Every choice.
    pub const ALL: [ModeChoice; 4] =
        [ModeChoice::VirtioPmem, ModeChoice::EmulatedNvdimm, ModeChoice::RealNvdimm, ModeChoice::ShareOff];

    /// A stable key (form values, URLs).
    pub fn key(self) -> &'static str {
        match self {
            ModeChoice::VirtioPmem => "virtio-pmem",
            ModeChoice::EmulatedNvdimm => "emulated-nvdimm",
            ModeChoice::RealNvdimm => "real-nvdimm",
            ModeChoice::ShareOff => "share-off",
        }
    }

    /// A label for people.
    pub fn label(self) -> &'static str {
        match self {
            ModeChoice::VirtioPmem => "virtio-pmem (share=on)",
            ModeChoice::EmulatedNvdimm => "emulated NVDIMM on a file",
            ModeChoice::RealNvdimm => "real NVDIMM",
            ModeChoice::ShareOff => "virtio-pmem with share=off",
        }
    }

    /// The choice with this key.
    pub fn from_key(key: &str) -> Option<ModeChoice> {
        ModeChoice::ALL.into_iter().find(|m| m.key() == key)
    }

    /// The choice a device object of the scenario describes.
    pub fn of_device(device: &Value) -> ModeChoice {
        let share = device.get("share").and_then(Value::as_bool).unwrap_or(true);
        match device.get("mode").and_then(Value::as_str).unwrap_or("virtio-pmem") {
            "emulated-nvdimm" => ModeChoice::EmulatedNvdimm,
            "real-nvdimm" => ModeChoice::RealNvdimm,
            _ if !share => ModeChoice::ShareOff,
            _ => ModeChoice::VirtioPmem,
        }
    }

    fn apply_to(self, device: &mut Map<String, Value>) {
        let (mode, share) = match self {
            ModeChoice::VirtioPmem => ("virtio-pmem", true),
            ModeChoice::EmulatedNvdimm => ("emulated-nvdimm", true),
            ModeChoice::RealNvdimm => ("real-nvdimm", true),
            ModeChoice::ShareOff => ("virtio-pmem", false),
        };
        device.insert("mode".into(), json!(mode));
        device.insert("share".into(), json!(share));
    }
}

/// The scenario the playground starts from: one 64 MiB virtio-pmem device.
pub const PLAYGROUND: &str = r#"{
  "version": 1,
  "name": "Playground",
  "description": "One 64 MiB virtio-pmem device backed by a file in the host page cache. Write, flush, crash, and watch the pages.",
  "seed": 1,
  "devices": [
    { "id": "nv1", "mem-path": "./nv1.img", "size": "64M", "share": true, "mode": "virtio-pmem" }
  ],
  "steps": []
}"#;

/// A scenario being explored, positioned at a step.
pub struct Session {
    head: Map<String, Value>,
    steps: Vec<Value>,
    scenario: Scenario,
    runner: ScenarioRunner,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("name", &self.scenario.name()).field("cursor", &self.cursor()).finish()
    }
}

impl Session {
    /// A session at the start of `scenario`.
    pub fn new(scenario: Scenario) -> Session {
        let value: Value = serde_json::from_str(&scenario.to_json()).unwrap_or_else(|_| json!({}));
        let mut head = match value {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let steps = match head.remove("steps") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        let runner = scenario.runner();
        Session { head, steps, scenario, runner }
    }

    /// The playground: one device, no steps.
    pub fn playground() -> Session {
        // A constant that the tests parse: cannot fail.
        Session::new(Scenario::parse(PLAYGROUND).expect("the playground scenario is valid"))
    }

    /// A session from scenario JSON text.
    pub fn from_json(text: &str) -> Result<Session, String> {
        Scenario::parse(text).map(Session::new).map_err(|e| e.to_string())
    }

    /// The scenario (all steps, also those after the cursor).
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The scenario as the native runner's JSON.
    pub fn to_json(&self) -> String {
        self.scenario.to_json()
    }

    /// The scenario as compact JSON (for links).
    pub fn to_compact_json(&self) -> String {
        serde_json::to_string(&self.full_value(&self.steps)).unwrap_or_default()
    }

    /// The machine after the steps before the cursor.
    pub fn machine(&self) -> &Machine {
        self.runner.machine()
    }

    /// Outcomes of the steps before the cursor.
    pub fn outcomes(&self) -> &[StepOutcome] {
        self.runner.outcomes()
    }

    /// Steps run (the position: 0 = before the first step).
    pub fn cursor(&self) -> usize {
        self.runner.next_index()
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// True when the scenario has no steps.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Step `i` as JSON.
    pub fn step(&self, i: usize) -> Option<&Value> {
        self.steps.get(i)
    }

    /// The `note` of step `i`, if it has one.
    pub fn note(&self, i: usize) -> Option<&str> {
        self.steps.get(i).and_then(|s| s.get("note")).and_then(Value::as_str)
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.scenario.seed()
    }

    /// Runs the next step; false at the end.
    pub fn forward(&mut self) -> bool {
        self.runner.step().is_some()
    }

    /// Goes back one step by replaying from the seed; false at the start.
    pub fn back(&mut self) -> bool {
        let c = self.cursor();
        if c == 0 {
            return false;
        }
        self.goto(c - 1);
        true
    }

    /// Moves to position `k` (at most the number of steps): forward by
    /// running steps, backward by replaying from the seed.
    pub fn goto(&mut self, k: usize) {
        let k = k.min(self.len());
        if k < self.cursor() {
            self.runner = self.scenario.runner();
        }
        while self.cursor() < k && self.forward() {}
    }

    fn full_value(&self, steps: &[Value]) -> Value {
        let mut m = self.head.clone();
        m.insert("steps".into(), Value::Array(steps.to_vec()));
        Value::Object(m)
    }

    /// Replaces head and steps by a validated scenario and replays to `k`.
    fn replace(&mut self, head: Map<String, Value>, steps: Vec<Value>, k: usize) -> Result<(), String> {
        let mut full = head.clone();
        full.insert("steps".into(), Value::Array(steps.clone()));
        let scenario = Scenario::from_value(Value::Object(full)).map_err(|e| e.to_string())?;
        self.head = head;
        self.steps = steps;
        self.scenario = scenario;
        self.runner = self.scenario.runner();
        self.goto(k);
        Ok(())
    }

    /// Does `step` now: drops the steps after the cursor, appends it and
    /// runs it. The step is checked like a scenario step; when invalid,
    /// nothing changes and the error says why.
    pub fn act(&mut self, step: Value) -> Result<&StepOutcome, String> {
        let k = self.cursor();
        let mut steps = self.steps[..k].to_vec();
        steps.push(step);
        self.replace(self.head.clone(), steps, k + 1)?;
        self.outcomes().last().ok_or_else(|| "the step did not run".to_string())
    }

    /// Runs again from another seed, to the same position.
    pub fn set_seed(&mut self, seed: u64) -> Result<(), String> {
        let mut head = self.head.clone();
        head.insert("seed".into(), json!(seed));
        self.replace(head, self.steps.clone(), self.cursor())
    }

    fn set_model(&mut self, field: &str, value: Value) -> Result<(), String> {
        let mut head = self.head.clone();
        let model = head.entry("model").or_insert_with(|| json!({}));
        if let Value::Object(m) = model {
            m.insert(field.into(), value);
        }
        self.replace(head, self.steps.clone(), self.cursor())
    }

    /// The tear granularity of the run.
    pub fn tear(&self) -> TearGranularity {
        self.scenario.model().tear
    }

    /// Runs again with another tear granularity.
    pub fn set_tear(&mut self, tear: TearGranularity) -> Result<(), String> {
        self.set_model("tear", json!(tear.to_string()))
    }

    /// True when the host's background flusher runs.
    pub fn background_writeback(&self) -> bool {
        self.scenario.model().dirty_writeback_interval_ms.is_some()
    }

    /// Runs again with background writeback on (Linux's 5 s flusher
    /// period, or the scenario's own) or off.
    pub fn set_background_writeback(&mut self, on: bool) -> Result<(), String> {
        if on == self.background_writeback() {
            return Ok(());
        }
        let value = if on { json!(5000) } else { Value::Null };
        self.set_model("dirty_writeback_interval_ms", value)
    }

    /// The kind of device `id` (a device of the scenario or a hot-plugged
    /// one).
    pub fn device_mode(&self, id: &str) -> Option<ModeChoice> {
        self.device_value(id).map(ModeChoice::of_device)
    }

    fn device_value(&self, id: &str) -> Option<&Value> {
        let initial = self.head.get("devices").and_then(Value::as_array).into_iter().flatten();
        let plugged = self.steps.iter().filter(|s| s.get("op").and_then(Value::as_str) == Some("hotplug"));
        initial.chain(plugged.filter_map(|s| s.get("device"))).find(|d| d.get("id").and_then(Value::as_str) == Some(id))
    }

    /// Runs again with device `id` of another kind, to the same position.
    pub fn set_device_mode(&mut self, id: &str, mode: ModeChoice) -> Result<(), String> {
        let mut head = self.head.clone();
        let mut steps = self.steps.clone();
        let is_id = |d: &Value| d.get("id").and_then(Value::as_str) == Some(id);
        let mut found = false;
        if let Some(Value::Array(devs)) = head.get_mut("devices") {
            for d in devs.iter_mut().filter(|d| is_id(d)) {
                if let Value::Object(m) = d {
                    mode.apply_to(m);
                    found = true;
                }
            }
        }
        for s in steps.iter_mut() {
            if s.get("op").and_then(Value::as_str) != Some("hotplug") {
                continue;
            }
            if let Some(Value::Object(m)) = s.get_mut("device").filter(|d| is_id(d)) {
                mode.apply_to(m);
                found = true;
            }
        }
        if !found {
            return Err(format!("no device \"{id}\" in the scenario"));
        }
        self.replace(head, steps, self.cursor())
    }

    /// An id for a new device: `nv2`, `nv3`, … not used by the scenario.
    pub fn next_device_id(&self) -> String {
        let used: Vec<String> = self.scenario.all_devices().map(|d| d.id.clone()).collect();
        (1..).map(|n| format!("nv{n}")).find(|id| !used.contains(id)).unwrap_or_else(|| "nvx".into())
    }
}

/// A one-line description of a step for the list of guest operations.
pub fn describe_step(step: &Value) -> String {
    let op = step.get("op").and_then(Value::as_str).unwrap_or("?");
    let s = |k: &str| step.get(k).map(show_value).unwrap_or_default();
    let dev = s("device");
    let body = match op {
        "write" => {
            let data = if step.get("text").is_some() { s("text") } else { format!("hex {}", s("hex")) };
            let times = match (step.get("repeat"), step.get("len")) {
                (Some(r), _) => format!(" ×{}", show_value(r)),
                (_, Some(l)) => format!(" to {} bytes", show_value(l)),
                _ => String::new(),
            };
            format!("write {dev} @{}: {data}{times}", s("offset"))
        }
        "read" => format!("read {dev} @{} ({} bytes)", s("offset"), s("len")),
        "fsync" | "msync" => {
            let nb = if step.get("blocking") == Some(&Value::Bool(false)) { " (not waiting)" } else { "" };
            format!("{op} {dev}{nb}")
        }
        "mmap" => {
            let sync = if step.get("map_sync") == Some(&Value::Bool(true)) { " MAP_SYNC" } else { "" };
            format!("mmap{sync} {dev}")
        }
        "wait" => {
            let t = ["s", "ms", "us", "ns"]
                .iter()
                .find_map(|u| step.get(*u).map(|v| format!("{}{u}", show_value(v))))
                .unwrap_or_default();
            format!("wait {t}")
        }
        "hotplug" => {
            let d = step.get("device");
            let g = |k: &str| d.and_then(|d| d.get(k)).map(show_value).unwrap_or_default();
            format!("hotplug {} ({}, {})", g("id"), g("size"), g("mode"))
        }
        "inject_fsync_error" => format!("inject fsync error on {dev}"),
        "expect_data" | "expect_durable" => format!("{op} {dev} @{}", s("offset")),
        "expect_flush" => format!("expect_flush {dev} = {}", s("result")),
        "unplug" => format!("unplug {dev}"),
        other if dev.is_empty() => other.replace('_', " "),
        other => format!("{} {dev}", other.replace('_', " ")),
    };
    body
}

fn show_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::PageMap;
    use crate::palette::CellState;

    fn write(offset: u64, text: &str) -> Value {
        json!({"op": "write", "device": "nv1", "offset": offset, "text": text})
    }

    #[test]
    fn actions_append_steps_and_back_replays_from_the_seed() {
        let mut s = Session::playground();
        s.act(write(0, "a")).unwrap();
        s.act(json!({"op": "fsync", "device": "nv1"})).unwrap();
        s.act(write(4096, "b")).unwrap();
        let log_at_3 = s.machine().log().fingerprint();
        assert_eq!(s.cursor(), 3);
        assert!(s.back());
        assert_eq!(s.cursor(), 2);
        let map = PageMap::of_device(s.machine(), "nv1").unwrap();
        assert_eq!(map.state(0), CellState::Clean);
        assert_eq!(map.state(1), CellState::Untouched);
        assert!(s.forward());
        assert_eq!(s.machine().log().fingerprint(), log_at_3, "replay must be exact");
        // Acting in the middle drops the future.
        s.goto(1);
        s.act(json!({"op": "power_failure"})).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(PageMap::of_device(s.machine(), "nv1").unwrap().state(0), CellState::Lost);
    }

    #[test]
    fn an_invalid_step_changes_nothing() {
        let mut s = Session::playground();
        s.act(write(0, "a")).unwrap();
        let err = s.act(json!({"op": "write", "device": "nv9", "offset": 0, "text": "x"})).unwrap_err();
        assert!(err.contains("nv9"), "{err}");
        assert_eq!((s.len(), s.cursor()), (1, 1));
    }

    #[test]
    fn the_json_round_trips_through_the_scenario_format() {
        let mut s = Session::playground();
        s.act(write(0, "a")).unwrap();
        s.act(json!({"op": "power_failure"})).unwrap();
        let again = Session::from_json(&s.to_json()).unwrap();
        assert_eq!(again.scenario(), s.scenario());
        let compact = Session::from_json(&s.to_compact_json()).unwrap();
        assert_eq!(compact.scenario(), s.scenario());
    }

    #[test]
    fn the_same_steps_match_the_scenario_runner_of_the_native_runner() {
        let mut s = Session::playground();
        s.act(write(0, "a")).unwrap();
        s.act(json!({"op": "fsync", "device": "nv1"})).unwrap();
        s.act(json!({"op": "wait", "s": 40})).unwrap();
        let run = s.scenario().run();
        assert_eq!(run.log.fingerprint(), s.machine().log().fingerprint());
    }

    #[test]
    fn knobs_replay_to_the_same_position() {
        let mut s = Session::playground();
        s.act(write(0, "a")).unwrap();
        s.act(json!({"op": "wait", "s": 40})).unwrap();
        assert_eq!(PageMap::of_device(s.machine(), "nv1").unwrap().state(0), CellState::Clean);
        s.set_background_writeback(false).unwrap();
        assert!(!s.background_writeback());
        assert_eq!(s.cursor(), 2);
        assert_eq!(PageMap::of_device(s.machine(), "nv1").unwrap().state(0), CellState::Dirty);
        s.set_device_mode("nv1", ModeChoice::RealNvdimm).unwrap();
        assert_eq!(s.device_mode("nv1"), Some(ModeChoice::RealNvdimm));
        s.set_tear(TearGranularity::Store8).unwrap();
        assert_eq!(s.tear(), TearGranularity::Store8);
        s.set_seed(99).unwrap();
        assert_eq!(s.seed(), 99);
        assert!(s.set_device_mode("nv7", ModeChoice::ShareOff).is_err());
    }

    #[test]
    fn hot_plugged_devices_get_fresh_ids_and_modes() {
        let mut s = Session::playground();
        let id = s.next_device_id();
        assert_eq!(id, "nv2");
        s.act(json!({"op": "hotplug", "device": {"id": id, "size": "1G", "mode": "virtio-pmem"}})).unwrap();
        assert_eq!(s.machine().device_ids(), ["nv1", "nv2"]);
        s.set_device_mode("nv2", ModeChoice::ShareOff).unwrap();
        assert_eq!(s.device_mode("nv2"), Some(ModeChoice::ShareOff));
        assert_eq!(s.next_device_id(), "nv3");
        let o = s.act(json!({"op": "unplug", "device": "nv2"})).unwrap();
        assert!(!o.ok && o.detail.contains("hot-unplug"), "{o:?}");
    }

    #[test]
    fn steps_are_described_in_a_line() {
        assert_eq!(describe_step(&write(4096, "hi")), "write nv1 @4096: hi");
        assert_eq!(describe_step(&json!({"op": "power_failure"})), "power failure");
        assert_eq!(describe_step(&json!({"op": "wait", "ms": 500})), "wait 500ms");
        assert_eq!(
            describe_step(&json!({"op": "fsync", "device": "nv1", "blocking": false})),
            "fsync nv1 (not waiting)"
        );
    }
}
