//! A session: a scenario, the position in it, and the machine at that
//! position.
//!
//! Everything the user does becomes a typed scenario step (the native
//! runner's format, `docs/scenario.md`): a write, an fsync, a power
//! failure, a wait while playing. The session keeps a live
//! [`ScenarioRunner`] that has run the steps before the cursor; the
//! runner's [`Scenario`] holds every step, also those after the cursor. A
//! new action at the cursor drops the steps after it (as an editor's undo
//! history does), is validated with the scenario's own rules, and runs:
//! its cost is the one step, whatever the length of the session. Going
//! back is a replay from the seed (a [`Machine`] cannot be copied, so there
//! are no checkpoints to restore). Knobs that belong to the whole run (the
//! seed, the tear granularity, background writeback, a device's mode)
//! change the scenario's header and replay to the same cursor, so one can
//! compare the same actions under another setting.
//!
//! The session also folds the machine's event log as it grows
//! ([`PageFold`]): the page states and the marks failures left, which the
//! grid draws.

use pmem_core::budget::Budget;
use pmem_core::event::fold::{PageFold, Tracking};
use pmem_core::host::TearGranularity;
use pmem_core::scenario::{DeviceOptions, Model, Op, Scenario, ScenarioRunner, Step, StepOutcome};
use pmem_core::sim::{DeviceMode, Machine};

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

    /// The choice a device of the scenario is.
    pub fn of_device(device: &DeviceOptions) -> ModeChoice {
        match (device.mode, device.share) {
            (DeviceMode::EmulatedNvdimm, _) => ModeChoice::EmulatedNvdimm,
            (DeviceMode::RealNvdimm, _) => ModeChoice::RealNvdimm,
            (DeviceMode::VirtioPmem, false) => ModeChoice::ShareOff,
            (DeviceMode::VirtioPmem, true) => ModeChoice::VirtioPmem,
        }
    }

    /// The device kind and `share` option of the choice.
    pub fn kind(self) -> (DeviceMode, bool) {
        match self {
            ModeChoice::VirtioPmem => (DeviceMode::VirtioPmem, true),
            ModeChoice::EmulatedNvdimm => (DeviceMode::EmulatedNvdimm, true),
            ModeChoice::RealNvdimm => (DeviceMode::RealNvdimm, true),
            ModeChoice::ShareOff => (DeviceMode::VirtioPmem, false),
        }
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
    runner: ScenarioRunner,
    fold: PageFold,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("name", &self.scenario().name()).field("cursor", &self.cursor()).finish()
    }
}

/// An empty fold of `scenario`'s log, told how each device is backed.
fn fold_for(scenario: &Scenario, tracking: Tracking) -> PageFold {
    let mut fold = PageFold::new(tracking);
    for d in scenario.all_devices() {
        fold.set_backing(&d.id, d.mode.backing_mode(d.share));
    }
    fold
}

/// A runner held to the tab's memory budget.
fn budgeted_runner(scenario: &Scenario) -> ScenarioRunner {
    let mut runner = scenario.runner();
    runner.set_budget(Budget::browser());
    runner
}

impl Session {
    /// A session at the start of `scenario`.
    pub fn new(scenario: Scenario) -> Session {
        let mut s = Session { fold: fold_for(&scenario, Tracking::States), runner: budgeted_runner(&scenario) };
        s.sync_fold();
        s
    }

    /// The playground: one device, no steps.
    pub fn playground() -> Session {
        // A constant that the tests parse: cannot fail.
        Session::new(Scenario::parse(PLAYGROUND).expect("the playground scenario is valid"))
    }

    /// A session from scenario JSON text (a paste, a file, a link): the
    /// text and what the scenario asks for are checked against the tab's
    /// budget first, so a hostile one is refused with a message instead of
    /// growing the tab's memory until wasm traps.
    pub fn from_json(text: &str) -> Result<Session, String> {
        let budget = Budget::browser();
        budget.check_input("the scenario", text.len() as u64).map_err(|e| e.to_string())?;
        let scenario = Scenario::parse(text).map_err(|e| e.to_string())?;
        budget.check_scenario(&scenario).map_err(|e| e.to_string())?;
        Ok(Session::new(scenario))
    }

    /// Why the session cannot go further: a step took the event log past
    /// the tab's budget.
    pub fn over_budget(&self) -> Option<String> {
        self.runner.over_budget().map(|e| format!("{e}; go back a step, or start a smaller scenario"))
    }

    /// The scenario (all steps, also those after the cursor).
    pub fn scenario(&self) -> &Scenario {
        self.runner.scenario()
    }

    /// The scenario as the native runner's JSON.
    pub fn to_json(&self) -> String {
        self.scenario().to_json()
    }

    /// The scenario as compact JSON (for links).
    pub fn to_compact_json(&self) -> String {
        serde_json::to_string(self.scenario()).unwrap_or_default()
    }

    /// The machine after the steps before the cursor.
    pub fn machine(&self) -> &Machine {
        self.runner.machine()
    }

    /// A fold of this scenario's log before its first event, told how
    /// every device is backed (to fold the log from the start again).
    pub fn empty_fold(&self) -> PageFold {
        fold_for(self.scenario(), Tracking::States)
    }

    /// The same, keeping the pages' bytes too.
    pub fn empty_byte_fold(&self) -> PageFold {
        fold_for(self.scenario(), Tracking::Bytes)
    }

    /// The machine's event log folded into page states.
    pub fn fold(&self) -> &PageFold {
        &self.fold
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
        self.scenario().steps().len()
    }

    /// True when the scenario has no steps.
    pub fn is_empty(&self) -> bool {
        self.scenario().steps().is_empty()
    }

    /// Step `i`.
    pub fn step(&self, i: usize) -> Option<&Step> {
        self.scenario().steps().get(i)
    }

    /// The `note` of step `i`, if it has one.
    pub fn note(&self, i: usize) -> Option<&str> {
        self.step(i).and_then(|s| s.note.as_deref())
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.scenario().seed()
    }

    fn sync_fold(&mut self) {
        self.fold.advance(self.runner.machine().log().events());
    }

    /// Runs the next step; false at the end.
    pub fn forward(&mut self) -> bool {
        let moved = self.runner.step().is_some();
        self.sync_fold();
        moved
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
            let scenario = self.scenario().clone();
            self.restart(scenario);
        }
        while self.cursor() < k && self.runner.step().is_some() {}
        self.sync_fold();
    }

    /// A new runner (and fold) of `scenario`, before its first step.
    fn restart(&mut self, scenario: Scenario) {
        self.fold = fold_for(&scenario, Tracking::States);
        self.runner = budgeted_runner(&scenario);
    }

    /// Runs `scenario` instead, to the same position.
    fn replace(&mut self, scenario: Scenario) {
        let k = self.cursor();
        self.restart(scenario);
        self.goto(k);
    }

    /// Does `step` now: drops the steps after the cursor, appends it and
    /// runs it. The step is checked like a scenario step; when invalid,
    /// nothing changes and the error says why.
    pub fn act(&mut self, step: Step) -> Result<&StepOutcome, String> {
        if self.cursor() < self.len() {
            self.runner.drop_steps_not_run();
        }
        if let Op::Hotplug { device } = &step.op {
            self.fold.set_backing(&device.id, device.mode.backing_mode(device.share));
        }
        self.runner.push_step(step).map_err(|e| e.to_string())?;
        self.runner.step();
        self.sync_fold();
        if let Some(why) = self.over_budget() {
            return Err(why);
        }
        self.outcomes().last().ok_or_else(|| "the step did not run".to_string())
    }

    /// Runs again from another seed, to the same position.
    pub fn set_seed(&mut self, seed: u64) -> Result<(), String> {
        let scenario = self.scenario().clone().with_seed(seed);
        self.replace(scenario);
        Ok(())
    }

    fn set_model(&mut self, change: impl FnOnce(&mut Model)) -> Result<(), String> {
        let mut model = self.scenario().model().clone();
        change(&mut model);
        let scenario = self.scenario().clone().with_model(model).map_err(|e| e.to_string())?;
        self.replace(scenario);
        Ok(())
    }

    /// The tear granularity of the run.
    pub fn tear(&self) -> TearGranularity {
        self.scenario().model().tear
    }

    /// Runs again with another tear granularity.
    pub fn set_tear(&mut self, tear: TearGranularity) -> Result<(), String> {
        self.set_model(|m| m.tear = tear)
    }

    /// True when the host's background flusher runs.
    pub fn background_writeback(&self) -> bool {
        self.scenario().model().dirty_writeback_interval_ms.is_some()
    }

    /// Runs again with background writeback on (Linux's 5 s flusher
    /// period) or off.
    pub fn set_background_writeback(&mut self, on: bool) -> Result<(), String> {
        if on == self.background_writeback() {
            return Ok(());
        }
        let interval = on.then(|| Model::default().dirty_writeback_interval_ms.unwrap_or(5000));
        self.set_model(|m| m.dirty_writeback_interval_ms = interval)
    }

    /// The kind of device `id` (a device of the scenario or a hot-plugged
    /// one).
    pub fn device_mode(&self, id: &str) -> Option<ModeChoice> {
        self.scenario().all_devices().find(|d| d.id == id).map(ModeChoice::of_device)
    }

    /// Runs again with device `id` of another kind, to the same position.
    pub fn set_device_mode(&mut self, id: &str, mode: ModeChoice) -> Result<(), String> {
        let (kind, share) = mode.kind();
        let scenario = self.scenario().clone().with_device_kind(id, kind, share).map_err(|e| e.to_string())?;
        self.replace(scenario);
        Ok(())
    }

    /// An id for a new device: `nv2`, `nv3`, … not used by the scenario.
    pub fn next_device_id(&self) -> String {
        let used: Vec<&str> = self.scenario().all_devices().map(|d| d.id.as_str()).collect();
        (1..).map(|n| format!("nv{n}")).find(|id| !used.contains(&id.as_str())).unwrap_or_else(|| "nvx".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::PageMap;
    use crate::palette::CellState;
    use pmem_core::scenario::{ByteSize, Data, Pattern, WaitTime};

    fn write(offset: u64, text: &str) -> Step {
        let data = Data { pattern: Pattern::Text(text.into()), repeat: None, len: None };
        Op::Write { device: "nv1".into(), offset: ByteSize(offset), data }.into()
    }

    fn fsync() -> Step {
        Op::Fsync { device: "nv1".into(), blocking: true }.into()
    }

    fn map(s: &Session) -> PageMap {
        PageMap::of_fold(s.fold(), "nv1")
    }

    #[test]
    fn actions_append_steps_and_back_replays_from_the_seed() {
        let mut s = Session::playground();
        s.act(write(0, "a")).unwrap();
        s.act(fsync()).unwrap();
        s.act(write(4096, "b")).unwrap();
        let log_at_3 = s.machine().log().fingerprint();
        assert_eq!(s.cursor(), 3);
        assert!(s.back());
        assert_eq!(s.cursor(), 2);
        assert_eq!(map(&s).state(0), CellState::Clean);
        assert_eq!(map(&s).state(1), CellState::Untouched);
        assert!(s.forward());
        assert_eq!(s.machine().log().fingerprint(), log_at_3, "replay must be exact");
        assert_eq!(map(&s).state(1), CellState::Dirty);
        // Acting in the middle drops the future.
        s.goto(1);
        s.act(Op::PowerFailure.into()).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(map(&s).state(0), CellState::Lost);
    }

    #[test]
    fn an_invalid_step_changes_nothing() {
        let mut s = Session::playground();
        s.act(write(0, "a")).unwrap();
        let mut bad = write(0, "x");
        if let Op::Write { device, .. } = &mut bad.op {
            *device = "nv9".into();
        }
        let err = s.act(bad).unwrap_err();
        assert!(err.contains("nv9"), "{err}");
        assert_eq!((s.len(), s.cursor()), (1, 1));
    }

    #[test]
    fn the_json_round_trips_through_the_scenario_format() {
        let mut s = Session::playground();
        s.act(write(0, "a")).unwrap();
        s.act(Op::PowerFailure.into()).unwrap();
        let again = Session::from_json(&s.to_json()).unwrap();
        assert_eq!(again.scenario(), s.scenario());
        let compact = Session::from_json(&s.to_compact_json()).unwrap();
        assert_eq!(compact.scenario(), s.scenario());
    }

    #[test]
    fn the_same_steps_match_the_scenario_runner_of_the_native_runner() {
        let mut s = Session::playground();
        s.act(write(0, "a")).unwrap();
        s.act(fsync()).unwrap();
        s.act(Op::Wait { time: WaitTime::S(40) }.into()).unwrap();
        let run = s.scenario().run();
        assert_eq!(run.log.fingerprint(), s.machine().log().fingerprint());
    }

    #[test]
    fn the_fold_follows_the_machine_forward_and_back() {
        let mut s = Session::playground();
        for i in 0..20u64 {
            s.act(write(i * 4096, "x")).unwrap();
            if i % 3 == 0 {
                s.act(fsync()).unwrap();
            }
        }
        for k in [s.len(), 5, 12, 0, 7] {
            s.goto(k);
            let want: Vec<_> = s.machine().page_states("nv1").unwrap().into_iter().map(|p| (p.page, p.state)).collect();
            assert_eq!(s.fold().cache_states("nv1"), want, "at step {k}");
        }
    }

    #[test]
    fn knobs_replay_to_the_same_position() {
        let mut s = Session::playground();
        s.act(write(0, "a")).unwrap();
        s.act(Op::Wait { time: WaitTime::S(40) }.into()).unwrap();
        assert_eq!(map(&s).state(0), CellState::Clean);
        s.set_background_writeback(false).unwrap();
        assert!(!s.background_writeback());
        assert_eq!(s.cursor(), 2);
        assert_eq!(map(&s).state(0), CellState::Dirty);
        s.set_device_mode("nv1", ModeChoice::RealNvdimm).unwrap();
        assert_eq!(s.device_mode("nv1"), Some(ModeChoice::RealNvdimm));
        assert_eq!(map(&s).state(0), CellState::OnDisk, "a real NVDIMM's stores are durable");
        s.set_tear(TearGranularity::Store8).unwrap();
        assert_eq!(s.tear(), TearGranularity::Store8);
        s.set_seed(99).unwrap();
        assert_eq!(s.seed(), 99);
        assert_eq!(s.cursor(), 2);
        assert!(s.set_device_mode("nv7", ModeChoice::ShareOff).unwrap_err().contains("nv7"));
    }

    #[test]
    fn hot_plugged_devices_get_fresh_ids_and_modes() {
        let mut s = Session::playground();
        let id = s.next_device_id();
        assert_eq!(id, "nv2");
        let device = DeviceOptions {
            id: id.clone(),
            mem_path: None,
            size: ByteSize(1 << 30),
            share: true,
            readonly: false,
            mode: DeviceMode::VirtioPmem,
            vmm: None,
            driver: None,
            rate_limiter: None,
        };
        s.act(Op::Hotplug { device }.into()).unwrap();
        assert_eq!(s.machine().device_ids(), ["nv1", "nv2"]);
        s.set_device_mode("nv2", ModeChoice::ShareOff).unwrap();
        assert_eq!(s.device_mode("nv2"), Some(ModeChoice::ShareOff));
        assert_eq!(s.next_device_id(), "nv3");
        let o = s.act(Op::Unplug { device: "nv2".into() }.into()).unwrap();
        assert!(!o.ok && o.detail.contains("hot-unplug"), "{o:?}");
    }
}
