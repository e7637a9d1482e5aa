//! The memory budget: the one owner of every limit on what outside input
//! may make pmemlab hold, and of their defaults.
//!
//! A [`Budget`] is a memory limit in bytes (`--memory-limit` on the CLI,
//! [`DEFAULT_BROWSER_LIMIT`] in a browser tab). Input is checked against it
//! **before** work starts, from what the input asks for, and **while** it
//! runs, from what was built so far:
//!
//! | input | checked before | checked while running |
//! | --- | --- | --- |
//! | text of a file, link, paste or import | [`Budget::check_input`]: at most a sixteenth of the limit | — |
//! | scenario | [`Budget::check_scenario`]: devices, steps, bytes written, the event log's estimated size | [`Budget::check_log`] after every step (the runner's measured log) |
//! | event log (import) | [`Budget::check_input`], then [`Budget::check_log`] on what it holds | — |
//! | crash campaign | [`Budget::check_point`] per crash point: its images and dedup set | — |
//! | trace file | [`Budget::check_input`], then [`Budget::check_trace`] | — |
//!
//! Hard limits that do not scale with the budget (one step's access, the
//! devices of a machine, a device's size, the actions of one step) are the
//! constants below; the scenario format re-exports them.
//!
//! Sizes are estimates made from the types' sizes and the bytes the input
//! names (a log event is counted at [`event_bytes`] plus its payload), on
//! the safe side: what is admitted fits, measured in
//! `native-runner/tests/hostile.rs` (peak RSS of the child below the limit).

use crate::event::{Event, EventKind};
use crate::scenario::{Op, Scenario};
use crate::size::human_size;

/// Most bytes one step may write, read or compare: 64 MiB.
pub const MAX_ACCESS: u64 = 64 << 20;

/// Most devices of one machine (initial and hot-plugged): room for every
/// queue in guest RAM.
pub const MAX_DEVICES: usize = 64;

/// Largest device: 16 TiB (memory scales with pages touched, not size).
pub const MAX_DEVICE_SIZE: u64 = 16 << 40;

/// Most machine actions one step (`run_until_idle`, a blocking flush) may
/// take before it is reported as still busy.
pub const MAX_ACTIONS_PER_STEP: u64 = 1_000_000;

/// The default limit of the command line: 1 GiB (this machine has 23 GiB
/// shared by several builds; a run rarely needs more than a few MiB).
pub const DEFAULT_NATIVE_LIMIT: u64 = 1 << 30;

/// The default limit in a browser tab: 256 MiB (wasm32 memory grows up to
/// 4 GiB and then traps; a tab should stay far below).
pub const DEFAULT_BROWSER_LIMIT: u64 = 256 << 20;

/// The smallest limit accepted: 16 MiB (below it no example runs).
pub const MIN_LIMIT: u64 = 16 << 20;

/// Text read from outside may be at most this fraction of the limit: the
/// parsed form of JSON costs up to about 16 times its text (`[1,1,…]`: two
/// bytes of text, a 32-byte `Value`). 64 MiB natively, 16 MiB in a tab.
const INPUT_SHARE: u64 = 16;

/// Bytes a scenario step costs beyond its events: its outcome (detail
/// line, op name) and its share of the runner's bookkeeping.
const STEP_BYTES: u64 = 512;

/// Events a step is assumed to log before it runs (a write logs the store
/// and a dirtied page per page; a flush about a dozen ring events).
const EVENTS_PER_STEP: u64 = 16;

/// Bytes one crash image of a point costs while planned and checked: its
/// version per pending page (4 bytes) plus a fixed part (the dedup set
/// entry, the image's vectors, the verdict).
const IMAGE_FIXED_BYTES: u64 = 96;

/// Bytes an event costs in the log beyond its payload: the `Event` itself
/// (twice, for the vector's growth), the device name.
pub fn event_bytes() -> u64 {
    2 * std::mem::size_of::<Event>() as u64 + 32
}

/// What an event holds beyond [`event_bytes`]: the stored bytes of a guest
/// write, the page lists of a crash.
pub fn payload_bytes(kind: &EventKind) -> u64 {
    match kind {
        EventKind::GuestWrite { data, .. } => data.as_ref().map_or(0, |d| d.0.len() as u64),
        EventKind::Crash { lost_pages, torn_pages, .. } => 8 * (lost_pages.len() + torn_pages.len()) as u64,
        EventKind::UnplugRefused { reason } => reason.len() as u64,
        EventKind::MapSync { detail, .. } | EventKind::FaultInjected { detail } => detail.len() as u64,
        _ => 0,
    }
}

/// What a scenario asks for, as [`Budget::check_scenario`] counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScenarioCost {
    /// Steps.
    pub steps: u64,
    /// Devices (initial and hot-plugged).
    pub devices: u64,
    /// Bytes the write steps store, all together.
    pub bytes_written: u64,
    /// The estimated size of the run: event log, page versions, outcomes.
    pub estimate: u64,
}

/// A limit was (or would be) passed. Every message names the amount, the
/// limit and what to change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// A memory limit below [`MIN_LIMIT`].
    #[error("memory limit {given} is below the smallest accepted, {}", human_size(MIN_LIMIT))]
    TooSmall {
        /// The limit asked for.
        given: String,
    },
    /// A text read from outside is too large to parse.
    #[error(
        "{what} is {}, above the {} accepted for input under the memory limit of {}",
        human_size(*size),
        human_size(*limit / INPUT_SHARE),
        human_size(*limit)
    )]
    Input {
        /// What was read (`the scenario`, `the link`, …).
        what: String,
        /// Its size in bytes.
        size: u64,
        /// The memory limit.
        limit: u64,
    },
    /// A scenario whose run would pass the limit.
    #[error(
        "the scenario writes {} in {steps} steps; its run would hold about {}, above the memory limit of {}",
        human_size(cost.bytes_written),
        human_size(cost.estimate),
        human_size(*limit),
        steps = cost.steps
    )]
    Scenario {
        /// What it asks for.
        cost: ScenarioCost,
        /// The memory limit.
        limit: u64,
    },
    /// An event log grew past the limit while running (or holds more when
    /// imported).
    #[error("the event log reached {} after {what}, above the memory limit of {}", human_size(*bytes), human_size(*limit))]
    Log {
        /// Where (`step 12`, `import`).
        what: String,
        /// Its size in bytes.
        bytes: u64,
        /// The memory limit.
        limit: u64,
    },
    /// A crash point with more images than fit.
    #[error(
        "crash point {point} would hold {images} images of {pages} pending pages (about {}), above the memory limit of {}; lower --samples, --torn-samples or --exhaustive-limit",
        human_size(*bytes),
        human_size(*limit)
    )]
    Point {
        /// The point's index.
        point: usize,
        /// Images the shard takes there.
        images: u64,
        /// Pending pages.
        pages: usize,
        /// Their estimated size.
        bytes: u64,
        /// The memory limit.
        limit: u64,
    },
    /// A trace that would pass the limit.
    #[error(
        "the trace holds {events} events storing {}; replaying it would hold about {}, above the memory limit of {}",
        human_size(*stored),
        human_size(*bytes),
        human_size(*limit)
    )]
    Trace {
        /// Events.
        events: u64,
        /// Bytes its writes store.
        stored: u64,
        /// The estimated size.
        bytes: u64,
        /// The memory limit.
        limit: u64,
    },
}

/// A memory limit, and the checks against it (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    limit: u64,
}

impl Default for Budget {
    /// The native default, [`DEFAULT_NATIVE_LIMIT`].
    fn default() -> Self {
        Budget { limit: DEFAULT_NATIVE_LIMIT }
    }
}

impl Budget {
    /// A budget of `limit` bytes (at least [`MIN_LIMIT`]).
    pub fn new(limit: u64) -> Result<Budget, BudgetError> {
        if limit < MIN_LIMIT {
            return Err(BudgetError::TooSmall { given: human_size(limit) });
        }
        Ok(Budget { limit })
    }

    /// The budget of a browser tab, [`DEFAULT_BROWSER_LIMIT`].
    pub fn browser() -> Budget {
        Budget { limit: DEFAULT_BROWSER_LIMIT }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The most bytes of text read from outside (a sixteenth of the limit).
    pub fn input_limit(&self) -> u64 {
        self.limit / INPUT_SHARE
    }

    /// Checks the size of a text about to be parsed (`what`: "the scenario
    /// file", "the link", …), before it is parsed.
    pub fn check_input(&self, what: &str, size: u64) -> Result<(), BudgetError> {
        if size > self.input_limit() {
            return Err(BudgetError::Input { what: what.to_string(), size, limit: self.limit });
        }
        Ok(())
    }

    /// What `scenario` asks for, checked against the limit before it runs.
    pub fn check_scenario(&self, scenario: &Scenario) -> Result<ScenarioCost, BudgetError> {
        let cost = scenario_cost(scenario);
        if cost.estimate > self.limit {
            return Err(BudgetError::Scenario { cost, limit: self.limit });
        }
        Ok(cost)
    }

    /// Checks a log of `bytes` (as [`LogMeter`] counts) after `what`.
    pub fn check_log(&self, what: &str, bytes: u64) -> Result<(), BudgetError> {
        if bytes > self.limit {
            return Err(BudgetError::Log { what: what.to_string(), bytes, limit: self.limit });
        }
        Ok(())
    }

    /// Checks crash point `point`, where a shard takes `images` images of
    /// `pages` pending pages (each image is planned, deduplicated and
    /// checked while the point is).
    pub fn check_point(&self, point: usize, images: u64, pages: usize) -> Result<(), BudgetError> {
        let each = IMAGE_FIXED_BYTES.saturating_add(4u64.saturating_mul(pages as u64));
        let bytes = images.saturating_mul(each);
        if bytes > self.limit {
            return Err(BudgetError::Point { point, images, pages, bytes, limit: self.limit });
        }
        Ok(())
    }

    /// Checks a trace of `events` events whose writes store `stored` bytes
    /// (for the trace parser: call it once the header or a first pass has
    /// counted them, before replaying).
    pub fn check_trace(&self, events: u64, stored: u64) -> Result<(), BudgetError> {
        let bytes = events.saturating_mul(event_bytes()).saturating_add(stored.saturating_mul(2));
        if bytes > self.limit {
            return Err(BudgetError::Trace { events, stored, bytes, limit: self.limit });
        }
        Ok(())
    }
}

/// Counts the bytes of an event log as it grows (each event once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogMeter {
    bytes: u64,
}

impl LogMeter {
    /// Counts `events` (new since the last call).
    pub fn add(&mut self, events: &[Event]) {
        for e in events {
            self.bytes = self.bytes.saturating_add(event_bytes() + payload_bytes(&e.kind));
        }
    }

    /// Bytes counted.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

fn scenario_cost(scenario: &Scenario) -> ScenarioCost {
    let steps = scenario.steps().len() as u64;
    let devices = scenario.all_devices().count() as u64;
    let mut bytes_written = 0u64;
    let mut versions = 0u64;
    for step in scenario.steps() {
        if let Op::Write { offset, data, .. } = &step.op {
            let len = data.byte_len();
            bytes_written = bytes_written.saturating_add(len);
            // A store keeps its bytes once (the log and the whole-page
            // versions share them); a partial page is copied into a page
            // version of its own.
            versions = versions.saturating_add(partial_pages(offset.0, len) * crate::memory::PAGE_SIZE);
        }
    }
    let per_step = STEP_BYTES + EVENTS_PER_STEP * event_bytes();
    let estimate =
        bytes_written.saturating_mul(2).saturating_add(versions).saturating_add(steps.saturating_mul(per_step));
    ScenarioCost { steps, devices, bytes_written, estimate }
}

/// Pages of `[offset, offset + len)` that are written only in part (0, 1 or 2).
fn partial_pages(offset: u64, len: u64) -> u64 {
    let page = crate::memory::PAGE_SIZE;
    if len == 0 {
        return 0;
    }
    let end = offset.saturating_add(len);
    let first = offset / page;
    let last = (end - 1) / page;
    let head = !offset.is_multiple_of(page);
    let tail = !end.is_multiple_of(page);
    if first == last {
        u64::from(head || tail)
    } else {
        u64::from(head) + u64::from(tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(n: usize, len: &str) -> Scenario {
        let steps: Vec<String> = (0..n)
            .map(|_| format!(r#"{{"op": "write", "device": "nv1", "offset": 0, "text": "x", "len": "{len}"}}"#))
            .collect();
        Scenario::parse(&format!(
            r#"{{"version": 1, "devices": [{{"id": "nv1", "mem-path": "a.img", "size": "1G"}}], "steps": [{}]}}"#,
            steps.join(",")
        ))
        .unwrap()
    }

    #[test]
    fn a_limit_below_the_minimum_is_refused() {
        assert!(Budget::new(MIN_LIMIT).is_ok());
        let e = Budget::new(MIN_LIMIT - 1).unwrap_err();
        assert!(e.to_string().contains("below the smallest accepted, 16 MiB"), "{e}");
    }

    #[test]
    fn eighty_writes_of_64_mib_pass_a_browser_tab_and_one_does_not() {
        let e = Budget::browser().check_scenario(&writes(80, "64M")).unwrap_err();
        assert!(e.to_string().starts_with("the scenario writes 5 GiB in 80 steps"), "{e}");
        assert!(e.to_string().contains("above the memory limit of 256 MiB"), "{e}");
        let cost = Budget::browser().check_scenario(&writes(1, "64M")).unwrap();
        assert_eq!(cost.bytes_written, 64 << 20);
        assert_eq!(cost.steps, 1);
    }

    #[test]
    fn input_is_limited_to_a_sixteenth_of_the_budget() {
        let b = Budget::browser();
        assert!(b.check_input("the link", 16 << 20).is_ok());
        let e = b.check_input("the link", (16 << 20) + 1).unwrap_err();
        assert!(e.to_string().starts_with("the link is 16.0 MiB, above the 16 MiB accepted"), "{e}");
        assert_eq!(Budget::default().input_limit(), 64 << 20);
    }

    #[test]
    fn a_point_with_too_many_images_is_refused_and_a_normal_one_is_not() {
        let b = Budget::default();
        assert!(b.check_point(3, 256 + 32, 1000).is_ok());
        let e = b.check_point(3, u64::MAX, 10).unwrap_err();
        assert!(e.to_string().contains("crash point 3 would hold 18446744073709551615 images"), "{e}");
    }

    #[test]
    fn partial_pages_counts_the_ragged_ends() {
        assert_eq!(partial_pages(0, 4096), 0);
        assert_eq!(partial_pages(0, 1), 1);
        assert_eq!(partial_pages(100, 8192), 2);
        assert_eq!(partial_pages(4096, 8192), 0);
        assert_eq!(partial_pages(4000, 10), 1);
        assert_eq!(partial_pages(0, 0), 0);
    }

    #[test]
    fn the_log_meter_counts_payloads() {
        let run = writes(2, "1M").run();
        let mut meter = LogMeter::default();
        meter.add(run.log.events());
        assert!(meter.bytes() > 2 << 20, "{}", meter.bytes());
        assert!(Budget::new(MIN_LIMIT).unwrap().check_log("step 1", meter.bytes()).is_ok());
        assert!(Budget::new(MIN_LIMIT).unwrap().check_log("step 1", MIN_LIMIT + 1).is_err());
    }
}
