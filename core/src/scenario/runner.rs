//! Running a scenario on a [`Machine`], step by step.
//!
//! Every step gets a [`StepOutcome`]. A step that fails (an access outside
//! the device, a refused `unplug`, an fsync that returns -EIO) is reported
//! and the run goes on; so does a failed expectation, which is also listed
//! in [`ScenarioRun::failed_expectations`]. The runner adds no randomness:
//! the same scenario and seed give the same event log.

use super::device::{mode_name, DeviceOptions};
use super::step::{Op, Step};
use super::{Scenario, ScenarioError};
use crate::event::{CrashKind, EventKind, EventLog, RequestId};
use crate::guest::FlushResult;
use crate::sim::{DeviceMode, Machine, MachineError};
use crate::time::SimTime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

pub use crate::budget::MAX_ACTIONS_PER_STEP;
use crate::budget::{Budget, BudgetError, LogMeter};

/// What one step did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// Position of the step in `steps`.
    pub index: usize,
    /// The step's op.
    pub op: String,
    /// True when the step did what it was asked (an expectation held, an
    /// expected error came).
    pub ok: bool,
    /// What happened, in a sentence.
    pub detail: String,
    /// Simulated time when the step ended.
    pub at: SimTime,
    /// The events of the machine's log this step produced (positions).
    pub events: Range<usize>,
}

impl fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.ok { "ok  " } else { "FAIL" };
        write!(f, "{mark} step {} ({}) at {}: {}", self.index, self.op, self.at, self.detail)
    }
}

/// An expectation that did not hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedExpectation {
    /// Position of the step in `steps`.
    pub index: usize,
    /// The step's op.
    pub op: String,
    /// What the step expected.
    pub expected: String,
    /// What was found.
    pub actual: String,
}

impl fmt::Display for FailedExpectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {} ({}): expected {}, got {}", self.index, self.op, self.expected, self.actual)
    }
}

/// The result of running a whole scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioRun {
    /// The scenario's name.
    pub name: String,
    /// The seed it ran with.
    pub seed: u64,
    /// Everything the machine did.
    pub log: EventLog,
    /// One outcome per step, in order.
    pub outcomes: Vec<StepOutcome>,
    /// The expectations that did not hold, in order.
    pub failed_expectations: Vec<FailedExpectation>,
}

impl ScenarioRun {
    /// True when every step did what it was asked: no failed expectation
    /// and no unexpected error.
    pub fn passed(&self) -> bool {
        self.failed_expectations.is_empty() && self.outcomes.iter().all(|o| o.ok)
    }

    /// The steps that did not do what they were asked.
    pub fn failures(&self) -> impl Iterator<Item = &StepOutcome> {
        self.outcomes.iter().filter(|o| !o.ok)
    }

    /// The event log's fingerprint (equal for equal runs on every target).
    pub fn fingerprint(&self) -> u64 {
        self.log.fingerprint()
    }
}

/// What an op did, before `expect_error` is applied.
enum Exec {
    /// It did what was asked.
    Done(String),
    /// It failed.
    Failed(String),
    /// A check.
    Check {
        /// Whether it held.
        passed: bool,
        /// What was expected.
        expected: String,
        /// What was found.
        actual: String,
    },
}

/// Plugs a scenario's devices into a machine: the initial ones and those a
/// `hotplug` step adds. The native runner plugs real files in; the default
/// plugs in the page-cache model.
pub trait DevicePlug {
    /// Adds `device` to `machine` (hot-plugged when the machine has run).
    fn plug(&mut self, machine: &mut Machine, device: &DeviceOptions) -> Result<(), MachineError>;
}

/// Model backends (the page-cache model of a new, zero-filled file).
#[derive(Clone, Copy, Debug, Default)]
pub struct ModelPlug;

impl DevicePlug for ModelPlug {
    fn plug(&mut self, machine: &mut Machine, device: &DeviceOptions) -> Result<(), MachineError> {
        machine.add_device(device.spec())
    }
}

/// Runs a scenario one step at a time, for runners that draw the machine
/// between steps; [`Scenario::run`] runs all of them.
#[derive(Debug)]
pub struct ScenarioRunner<P: DevicePlug = ModelPlug> {
    scenario: Scenario,
    machine: Machine,
    plug: P,
    next: usize,
    last_flush: BTreeMap<String, RequestId>,
    outcomes: Vec<StepOutcome>,
    failed: Vec<FailedExpectation>,
    /// The limit the event log is held to (`None`: none).
    budget: Option<Budget>,
    /// The event log's size so far.
    meter: LogMeter,
    /// Set when a step took the log past the budget: no step runs after.
    over_budget: Option<BudgetError>,
}

impl ScenarioRunner<ModelPlug> {
    /// A runner at the start of the scenario (devices plugged in, no step
    /// run).
    pub fn new(scenario: &Scenario) -> Self {
        ScenarioRunner {
            machine: scenario.build_machine(),
            scenario: scenario.clone(),
            plug: ModelPlug,
            next: 0,
            last_flush: BTreeMap::new(),
            outcomes: Vec::new(),
            failed: Vec::new(),
            budget: None,
            meter: LogMeter::default(),
            over_budget: None,
        }
    }
}

impl<P: DevicePlug> ScenarioRunner<P> {
    /// A runner whose devices (initial and hot-plugged) are plugged in by
    /// `plug`, on a machine configured from the scenario's model and seed.
    pub fn with_plug(scenario: &Scenario, mut plug: P) -> Result<Self, MachineError> {
        let mut machine = Machine::new(scenario.model().sim_config(scenario.seed()));
        for d in scenario.devices() {
            plug.plug(&mut machine, d)?;
        }
        Ok(ScenarioRunner {
            scenario: scenario.clone(),
            machine,
            plug,
            next: 0,
            last_flush: BTreeMap::new(),
            outcomes: Vec::new(),
            failed: Vec::new(),
            budget: None,
            meter: LogMeter::default(),
            over_budget: None,
        })
    }

    /// The device plug.
    pub fn plug(&self) -> &P {
        &self.plug
    }

    /// The run so far (the steps run up to now), without consuming the
    /// runner.
    pub fn run(&self) -> ScenarioRun {
        ScenarioRun {
            name: self.scenario.name().to_string(),
            seed: self.scenario.seed(),
            log: self.machine.log().clone(),
            outcomes: self.outcomes.clone(),
            failed_expectations: self.failed.clone(),
        }
    }

    /// The next step to run, if any.
    pub fn peek(&self) -> Option<&Step> {
        self.scenario.steps().get(self.next)
    }

    /// The machine, to draw or inspect between steps.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// A device's durability model between steps (see
    /// [`Machine::durability`]).
    pub fn durability(&mut self, id: &str) -> Result<&crate::durability::DurabilityModel, MachineError> {
        self.machine.durability(id)
    }

    /// Lets simulated time pass up to `t` between steps (nothing when the
    /// clock is already there): for a model kept in step with a real
    /// machine's clock, whose steps take time the scenario does not say
    /// (a guest reboot, the boot itself). Returns the actions that ran.
    pub fn pass_time_to(&mut self, t: SimTime) -> u64 {
        let now = self.machine.now();
        if t <= now {
            return 0;
        }
        self.machine.run_for(t.0 - now.0)
    }

    /// See [`Machine::host_file_dirtied`].
    pub fn host_file_dirtied(&mut self, device: &str, at: SimTime) -> Result<(), crate::sim::MachineError> {
        self.machine.host_file_dirtied(device, at)
    }

    /// The scenario being run.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Index of the next step to run.
    pub fn next_index(&self) -> usize {
        self.next
    }

    /// True when every step has run.
    pub fn is_done(&self) -> bool {
        self.next >= self.scenario.steps().len()
    }

    /// The outcomes so far.
    pub fn outcomes(&self) -> &[StepOutcome] {
        &self.outcomes
    }

    /// The failed expectations so far.
    pub fn failed_expectations(&self) -> &[FailedExpectation] {
        &self.failed
    }

    /// Appends `step` to the scenario being run, validated as
    /// [`Scenario::push_step`] does; [`ScenarioRunner::step`] then runs it
    /// (after any step not run yet). Costs the one step.
    pub fn push_step(&mut self, step: Step) -> Result<(), ScenarioError> {
        self.scenario.push_step(step)
    }

    /// Drops the steps not run yet (an editor's redo history, before a new
    /// step is pushed at the cursor).
    pub fn drop_steps_not_run(&mut self) {
        self.scenario.truncate_steps(self.next);
    }

    /// Holds the event log to `budget`: once a step takes it past the
    /// limit, [`ScenarioRunner::over_budget`] says so and no further step
    /// runs ([`ScenarioRunner::step`] returns `None`).
    pub fn set_budget(&mut self, budget: Budget) {
        self.budget = Some(budget);
    }

    /// Why the run stopped early: the step that took the event log past the
    /// budget, and how big the log got.
    pub fn over_budget(&self) -> Option<&BudgetError> {
        self.over_budget.as_ref()
    }

    /// The event log's size so far, as the budget counts it.
    pub fn log_bytes(&self) -> u64 {
        self.meter.bytes()
    }

    /// Runs the next step; `None` when every step has run (or the budget
    /// was passed, see [`ScenarioRunner::set_budget`]).
    pub fn step(&mut self) -> Option<&StepOutcome> {
        if self.over_budget.is_some() {
            return None;
        }
        let index = self.next;
        let step = self.scenario.steps().get(index)?.clone();
        self.next += 1;
        let first_event = self.machine.log().len();
        let exec = self.exec(&step.op);
        // Stores and crashes leave host timers off the agenda (see
        // `Machine::schedule_host_events`); put them back before time passes.
        self.machine.schedule_host_events();
        let op = step.op.name().to_string();
        let (ok, detail, failed) = judge(exec, &step);
        if let Some((expected, actual)) = failed {
            self.failed.push(FailedExpectation { index, op: op.clone(), expected, actual });
        }
        let events = first_event..self.machine.log().len();
        self.meter.add(&self.machine.log().events()[events.clone()]);
        if let Some(budget) = &self.budget {
            self.over_budget = budget.check_log(&format!("step {index}"), self.meter.bytes()).err();
        }
        self.outcomes.push(StepOutcome { index, op, ok, detail, at: self.machine.now(), events });
        self.outcomes.last()
    }

    /// Runs the remaining steps and returns the whole run.
    pub fn finish(mut self) -> ScenarioRun {
        while self.step().is_some() {}
        ScenarioRun {
            name: self.scenario.name().to_string(),
            seed: self.scenario.seed(),
            log: self.machine.log().clone(),
            outcomes: self.outcomes,
            failed_expectations: self.failed,
        }
    }

    fn exec(&mut self, op: &Op) -> Exec {
        let m = &mut self.machine;
        match op {
            Op::Write { device, offset, data } => {
                let bytes = data.shared_bytes();
                let shown = show_bytes(&bytes);
                match m.guest_write_shared(device, offset.0, bytes) {
                    Ok(()) if m.device_snapshot(device).is_ok_and(|d| d.config.readonly) => Exec::Done(format!(
                        "store of {shown} at {:#x} dropped: readonly=on (QEMU ignores it; the guest is not told)",
                        offset.0
                    )),
                    Ok(()) => Exec::Done(format!("stored {shown} at {:#x}", offset.0)),
                    Err(e) => Exec::Failed(e.to_string()),
                }
            }
            Op::Read { device, offset, len, expect } => match (m.guest_read(device, offset.0, len.0), expect) {
                (Ok(bytes), None) => Exec::Done(format!("loaded {} at {:#x}", show_bytes(&bytes), offset.0)),
                (result, Some(e)) => check_bytes(result, e.bytes().to_vec(), offset.0),
                (Err(e), None) => Exec::Failed(e.to_string()),
            },
            Op::Fsync { device, blocking } => self.flush(device, *blocking, "fsync"),
            Op::Msync { device, blocking } => self.flush(device, *blocking, "msync(MS_SYNC)"),
            Op::Mmap { device, map_sync: false } => match m.device_mode(device) {
                Ok(_) => Exec::Done(format!("{device} mapped (DAX, MAP_SHARED) without MAP_SYNC")),
                Err(e) => Exec::Failed(e.to_string()),
            },
            Op::Mmap { device, map_sync: true } => match m.map_sync(device) {
                Ok(()) => {
                    let detail = m.log().events().iter().rev().find_map(|e| match &e.kind {
                        EventKind::MapSync { detail, .. } => Some(detail.clone()),
                        _ => None,
                    });
                    Exec::Done(format!("mmap(MAP_SYNC) of {device} succeeded: {}", detail.unwrap_or_default()))
                }
                Err(e) => Exec::Failed(e.to_string()),
            },
            Op::Wait { time } => {
                let n = m.run_for(time.nanos());
                Exec::Done(format!("waited {}; {n} action(s) ran; clock at {}", SimTime(time.nanos()), m.now()))
            }
            Op::RunUntilIdle => {
                let n = m.run_until_idle(MAX_ACTIONS_PER_STEP);
                match m.next_action_time() {
                    None => Exec::Done(format!("idle after {n} action(s); clock at {}", m.now())),
                    Some(_) => Exec::Failed(format!("still busy after {n} actions; clock at {}", m.now())),
                }
            }
            Op::PowerFailure => self.crash(CrashKind::PowerFailure),
            Op::GuestCrash => self.crash(CrashKind::GuestCrash),
            Op::VmmKill => self.crash(CrashKind::VmmKill),
            Op::InjectFsyncError { device, count } => match m.inject_sync_failures(device, *count) {
                Ok(()) => Exec::Done(format!("the next {count} host fsync(s) of {device} fail with EIO")),
                Err(e) => Exec::Failed(e.to_string()),
            },
            Op::Hotplug { device } => match self.plug.plug(m, device) {
                Ok(()) => Exec::Done(format!(
                    "{} hot-plugged: {}, {}{}{}",
                    device.id,
                    device.size,
                    mode_name(device.mode),
                    if device.share { "" } else { ", share=off" },
                    if device.readonly { ", readonly" } else { "" }
                )),
                Err(e) => Exec::Failed(e.to_string()),
            },
            Op::Unplug { device } => match m.remove_device(device) {
                Ok(()) => Exec::Done(format!("{device} unplugged")),
                Err(e) => Exec::Failed(e.to_string()),
            },
            Op::ExpectData { device, offset, data } => {
                check_bytes(m.guest_read(device, offset.0, data.byte_len()), data.bytes(), offset.0)
            }
            Op::ExpectDurable { device, offset, data } => {
                check_bytes(m.read_durable(device, offset.0, data.byte_len()), data.bytes(), offset.0)
            }
            Op::ExpectFlush { device, result } => {
                let expected = result.as_str().to_string();
                let actual = match self.last_flush.get(device) {
                    None => "no flush (it was never issued)".to_string(),
                    Some(&req) => match m.flush_result(device, req) {
                        Ok(Some(FlushResult::Ok)) => "ok".to_string(),
                        Ok(Some(FlushResult::Eio)) => "eio".to_string(),
                        Ok(None) => "pending".to_string(),
                        Err(e) => format!("error: {e}"),
                    },
                };
                let passed = actual == expected;
                let actual = match self.last_flush.get(device) {
                    Some(req) => format!("{actual} (flush #{})", req.0),
                    None => actual,
                };
                Exec::Check { passed, expected, actual }
            }
        }
    }

    fn flush(&mut self, device: &str, blocking: bool, call: &str) -> Exec {
        let m = &mut self.machine;
        let start = m.now();
        let req = match m.flush(device) {
            Ok(req) => req,
            Err(e) => return Exec::Failed(e.to_string()),
        };
        self.last_flush.insert(device.to_string(), req);
        let mode = match m.device_mode(device) {
            Ok(DeviceMode::VirtioPmem) => "",
            Ok(DeviceMode::EmulatedNvdimm) => "; emulated NVDIMM: nothing was sent to the host",
            Ok(DeviceMode::RealNvdimm) => "; real NVDIMM: the stores were durable already",
            Err(_) => "",
        };
        if !blocking {
            return Exec::Done(format!("{call} issued as flush #{}; not waiting for it{mode}", req.0));
        }
        let mut actions = 0;
        while matches!(m.flush_result(device, req), Ok(None)) && actions < MAX_ACTIONS_PER_STEP && m.step() {
            actions += 1;
        }
        let took = SimTime(m.now().0.saturating_sub(start.0));
        match m.flush_result(device, req) {
            Ok(Some(FlushResult::Ok)) => Exec::Done(format!("{call} returned 0 after {took} (flush #{}){mode}", req.0)),
            Ok(Some(FlushResult::Eio)) => {
                Exec::Failed(format!("{call} returned -EIO after {took} (flush #{}){mode}", req.0))
            }
            Ok(None) => Exec::Failed(format!(
                "{call} never returned: flush #{} has no answer after {actions} action(s) ({took})",
                req.0
            )),
            Err(e) => Exec::Failed(e.to_string()),
        }
    }

    fn crash(&mut self, kind: CrashKind) -> Exec {
        let first = self.machine.log().len();
        if let Err(e) = self.machine.crash(kind) {
            return Exec::Failed(e.to_string());
        }
        let what = match kind {
            CrashKind::PowerFailure => "host power failure",
            CrashKind::GuestCrash => "guest kernel crash",
            CrashKind::VmmKill => "VMM process killed",
        };
        let per_device: Vec<String> = self
            .machine
            .log()
            .since(first)
            .iter()
            .filter_map(|e| match (&e.device, &e.kind) {
                (Some(d), EventKind::Crash { lost_pages, torn_pages, .. }) => {
                    Some(format!("{d} lost {} page(s), {} torn", lost_pages.len(), torn_pages.len()))
                }
                _ => None,
            })
            .collect();
        if per_device.is_empty() {
            Exec::Done(format!("{what}; no devices"))
        } else {
            Exec::Done(format!("{what}: {}; devices restarted", per_device.join("; ")))
        }
    }
}

/// Applies the step's `expect_error`: (ok, detail, failed expectation).
fn judge(exec: Exec, step: &Step) -> (bool, String, Option<(String, String)>) {
    let wanted = step.expect_error.as_deref();
    match (exec, wanted) {
        (Exec::Done(d), None) => (true, d, None),
        (Exec::Failed(e), None) => (false, e, None),
        (Exec::Done(d), Some(w)) => {
            let expected = format!("an error containing \"{w}\"");
            let detail = format!("expected an error containing \"{w}\", but it succeeded: {d}");
            (false, detail, Some((expected, format!("success: {d}"))))
        }
        (Exec::Failed(e), Some(w)) if e.to_lowercase().contains(&w.to_lowercase()) => {
            (true, format!("failed as expected: {e}"), None)
        }
        (Exec::Failed(e), Some(w)) => {
            let expected = format!("an error containing \"{w}\"");
            (false, format!("expected an error containing \"{w}\", got: {e}"), Some((expected, e)))
        }
        (Exec::Check { passed: true, actual, .. }, _) => (true, format!("as expected: {actual}"), None),
        (Exec::Check { passed: false, expected, actual }, _) => {
            (false, format!("expected {expected}, got {actual}"), Some((expected, actual)))
        }
    }
}

/// Compares bytes read (or the error reading them) with the expected ones.
fn check_bytes(read: Result<Vec<u8>, MachineError>, expected: Vec<u8>, offset: u64) -> Exec {
    let want = show_bytes(&expected);
    match read {
        Err(e) => Exec::Check { passed: false, expected: want, actual: format!("error: {e}") },
        Ok(got) if got == expected => Exec::Check { passed: true, expected: want, actual: show_bytes(&got) },
        Ok(got) => {
            let at = got.iter().zip(&expected).position(|(a, b)| a != b).unwrap_or(0) as u64;
            let actual = format!("{} (first difference at offset {:#x})", show_bytes(&got), offset + at);
            Exec::Check { passed: false, expected: want, actual }
        }
    }
}

/// Bytes for people: quoted text when printable, "N zero bytes", or hex
/// (long values are cut).
pub fn show_bytes(bytes: &[u8]) -> String {
    const MAX_TEXT: usize = 64;
    const MAX_HEX: usize = 32;
    let n = bytes.len();
    if n > 0 && bytes.iter().all(|&b| b == 0) {
        return format!("{n} zero byte{}", if n == 1 { "" } else { "s" });
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        if s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t') {
            if s.chars().count() <= MAX_TEXT {
                return format!("{s:?}");
            }
            let head: String = s.chars().take(MAX_TEXT).collect();
            return format!("{head:?}… ({n} bytes)");
        }
    }
    let hex: String = bytes.iter().take(MAX_HEX).map(|b| format!("{b:02x}")).collect();
    if n > MAX_HEX {
        format!("hex {hex}… ({n} bytes)")
    } else {
        format!("hex {hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLES: [&str; 4] = [
        include_str!("../../../examples/scenarios/fsyncgate.json"),
        include_str!("../../../examples/scenarios/hotplug.json"),
        include_str!("../../../examples/scenarios/nvdimm-emulation.json"),
        include_str!("../../../examples/scenarios/background-writeback.json"),
    ];

    /// The scenario without its steps.
    fn head(s: &Scenario) -> Scenario {
        let mut h = s.clone();
        h.truncate_steps(0);
        h
    }

    #[test]
    fn steps_appended_one_at_a_time_run_as_the_whole_scenario() {
        for text in EXAMPLES {
            let whole = Scenario::parse(text).unwrap();
            let mut runner = head(&whole).runner();
            for step in whole.steps() {
                runner.push_step(step.clone()).unwrap();
                assert!(runner.step().is_some());
            }
            assert_eq!(runner.scenario(), &whole, "{}", whole.name());
            let run = whole.run();
            assert_eq!(runner.machine().log().fingerprint(), run.log.fingerprint(), "{}", whole.name());
            assert_eq!(runner.outcomes(), run.outcomes.as_slice());
        }
    }

    #[test]
    fn an_invalid_step_is_refused_and_changes_nothing() {
        let whole = Scenario::parse(EXAMPLES[1]).unwrap();
        let mut runner = head(&whole).runner();
        let before = runner.scenario().clone();
        let write = |device: &str| Step {
            op: Op::Write {
                device: device.into(),
                offset: crate::scenario::ByteSize(0),
                data: crate::scenario::Data {
                    pattern: crate::scenario::Pattern::Text("x".into()),
                    repeat: None,
                    len: None,
                },
            },
            expect_error: None,
            note: None,
        };
        let e = runner.push_step(write("nv9")).unwrap_err();
        assert!(e.to_string().contains("step 0") && e.to_string().contains("nv9"), "{e}");
        let flush = Step {
            op: Op::ExpectFlush { device: "nv1".into(), result: crate::scenario::FlushExpectation::Ok },
            expect_error: None,
            note: None,
        };
        assert!(runner.push_step(flush.clone()).unwrap_err().to_string().contains("no fsync or msync"));
        assert_eq!(runner.scenario(), &before);
        // A hot-plugged device may be written once plugged.
        let plug = whole.steps().iter().find(|s| matches!(s.op, Op::Hotplug { .. })).unwrap().clone();
        let Op::Hotplug { device } = &plug.op else { unreachable!() };
        let id = device.id.clone();
        assert!(runner.push_step(write(&id)).is_err());
        runner.push_step(plug.clone()).unwrap();
        runner.push_step(write(&id)).unwrap();
        assert!(runner.push_step(plug).unwrap_err().to_string().contains("already the id"));
    }

    #[test]
    fn header_changes_are_validated_like_the_file() {
        let whole = Scenario::parse(EXAMPLES[1]).unwrap();
        let plugged = whole.all_devices().last().unwrap().id.clone();
        let s = whole.clone().with_device_kind(&plugged, DeviceMode::RealNvdimm, true).unwrap();
        assert_eq!(s.all_devices().last().unwrap().mode, DeviceMode::RealNvdimm, "a hot-plugged device too");
        assert_eq!(s.steps().len(), whole.steps().len());
        let e = whole.clone().with_device_kind("nv9", DeviceMode::RealNvdimm, true).unwrap_err();
        assert!(e.to_string().contains("nv9"), "{e}");
        let mut model = whole.model().clone();
        model.dirty_writeback_interval_ms = None;
        let s = whole.clone().with_model(model.clone()).unwrap();
        assert_eq!(s.model().dirty_writeback_interval_ms, None);
        model.queue_size = 3;
        assert!(whole.with_model(model).unwrap_err().to_string().contains("queue_size"));
    }

    #[test]
    fn dropping_the_steps_not_run_forgets_their_devices_and_flushes() {
        let whole = Scenario::parse(EXAMPLES[0]).unwrap();
        let mut runner = whole.runner();
        runner.step();
        runner.drop_steps_not_run();
        assert_eq!(runner.scenario().steps().len(), 1);
        assert!(runner.is_done());
        let again = Scenario::parse(&runner.scenario().to_json()).unwrap();
        assert_eq!(runner.scenario(), &again, "the context is the one parsing gives");
    }
}
