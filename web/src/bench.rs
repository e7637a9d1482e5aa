//! Workloads of the benchmark page, shared by the browser (wasm) and the
//! native bench (`cargo run --release -p pmem-web --example native_bench`),
//! so both measure exactly the same simulation steps. Timing is the
//! caller's: `performance.now()` in the browser, `Instant` natively; this
//! module has no clock.

use crate::grid::{GridLayout, GridRenderer, PageMap, Viewport};
use crate::session::Session;
use pmem_core::event::fold::{PageFold, Tracking};
use pmem_core::memory::PAGE_SIZE;
use pmem_core::rng::SimRng;
use pmem_core::scenario::{ByteSize, Data, Op, Pattern, Step, WaitTime};
use pmem_core::sim::{DeviceSpec, Machine, SimConfig};

/// What a run of the simulation workload did (equal natively and in wasm:
/// the fingerprint proves the same work was done).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepsResult {
    /// Machine actions run (`Machine::step`).
    pub steps: u64,
    /// Events logged.
    pub events: usize,
    /// Fingerprint of the event log.
    pub fingerprint: u64,
}

/// Rounds of the simulation workload used by the bench page and the
/// native bench.
pub const STEP_ROUNDS: u32 = 2_000;

/// The simulation workload: on a 1 GiB virtio-pmem device, each round
/// stores into 4 random pages and issues two flushes, then runs the
/// machine until both return; every 16 rounds it lets 6 s pass, so the
/// background flusher runs too.
pub fn sim_steps(rounds: u32, seed: u64) -> StepsResult {
    let mut m = Machine::new(SimConfig { seed, ..SimConfig::default() });
    // A fresh machine has room for a device: cannot fail.
    m.add_device(DeviceSpec::new("nv1", 1 << 30)).expect("device fits");
    let mut rng = SimRng::new(seed).derive("bench");
    let pages = (1u64 << 30) / PAGE_SIZE;
    let mut steps = 0;
    for round in 0..rounds {
        for _ in 0..4 {
            let page = rng.below(pages);
            let _ = m.guest_write("nv1", page * PAGE_SIZE + (round as u64 % 256) * 16, &round.to_le_bytes());
        }
        let a = m.flush("nv1");
        let b = m.flush("nv1");
        if let (Ok(a), Ok(b)) = (a, b) {
            while !(matches!(m.flush_result("nv1", a), Ok(Some(_))) && matches!(m.flush_result("nv1", b), Ok(Some(_))))
            {
                if !m.step() {
                    break;
                }
                steps += 1;
            }
        }
        if round % 16 == 15 {
            m.schedule_host_events();
            steps += m.run_for(6_000_000_000);
        }
    }
    StepsResult { steps, events: m.log().len(), fingerprint: m.log().fingerprint() }
}

/// A write storm on a 4 GiB device (1 M pages): random stores, with time
/// passing and an fsync now and then, so pages move through dirty,
/// writeback and clean while the grid is drawn.
pub struct WriteStorm {
    machine: Machine,
    rng: SimRng,
    frames: u64,
    writes: u64,
    fold: PageFold,
}

impl std::fmt::Debug for WriteStorm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteStorm").field("frames", &self.frames).field("writes", &self.writes).finish()
    }
}

/// Frames of the write storm on the bench page and in the native bench.
pub const STORM_FRAMES: usize = 120;

/// Stores per storm frame.
pub const STORM_WRITES: u32 = 200;

/// Size of the storm's device: 4 GiB.
pub const STORM_DEVICE: u64 = 4 << 30;

impl WriteStorm {
    /// A storm from `seed`, nothing written yet.
    pub fn new(seed: u64) -> WriteStorm {
        let mut machine = Machine::new(SimConfig { seed, ..SimConfig::default() });
        machine.add_device(DeviceSpec::new("nv1", STORM_DEVICE)).expect("device fits");
        WriteStorm {
            machine,
            rng: SimRng::new(seed).derive("storm"),
            frames: 0,
            writes: 0,
            fold: PageFold::new(Tracking::States),
        }
    }

    /// One frame of the storm: `writes` stores to random pages, then 50 ms
    /// of simulated time; every 8th frame an fsync starts.
    pub fn frame(&mut self, writes: u32) {
        let pages = STORM_DEVICE / PAGE_SIZE;
        for _ in 0..writes {
            let page = self.rng.below(pages);
            let _ = self.machine.guest_write("nv1", page * PAGE_SIZE, &self.frames.to_le_bytes());
            self.writes += 1;
        }
        if self.frames % 8 == 7 {
            let _ = self.machine.flush("nv1");
        }
        self.machine.schedule_host_events();
        self.machine.run_for(50_000_000);
        self.frames += 1;
    }

    /// The machine.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// Stores made so far.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// The grid's page map (as the visualizer computes it each frame).
    pub fn page_map(&mut self) -> PageMap {
        self.fold.advance(self.machine.log().events());
        PageMap::of_fold(&self.fold, "nv1")
    }
}

/// Draws the whole storm device into `renderer` (`width` × `height`);
/// returns the cells painted.
pub fn draw_whole_device(renderer: &mut GridRenderer, map: &PageMap, width: u32, height: u32) -> usize {
    let vp = Viewport::whole(map.total_pages);
    let layout = GridLayout::new(vp.span, width, height);
    renderer.render(map, &vp, &layout, None)
}

/// A page map of a 4 GiB device with every page touched, in mixed states:
/// the worst case for the renderer.
pub fn every_page_touched() -> PageMap {
    use crate::palette::CellState;
    let total = STORM_DEVICE / PAGE_SIZE;
    let states = [CellState::Clean, CellState::Dirty, CellState::Writeback, CellState::OnDisk];
    PageMap {
        total_pages: total,
        pages: (0..total).map(|p| (p, states[(p % 7 % 4) as usize])).collect(),
        folio_pages: 1,
    }
}

/// Actions of the session workload.
pub const SESSION_ACTIONS: usize = 1_000;

/// Action `i` of the session workload on the playground: mostly guest
/// writes to one of 256 pages, an fsync every 5th action, 100 ms of
/// simulated time every 10th (so the background flusher runs too).
pub fn session_action(i: usize) -> Step {
    let op = if i % 10 == 9 {
        Op::Wait { time: WaitTime::Ms(100) }
    } else if i % 5 == 4 {
        Op::Fsync { device: "nv1".into(), blocking: true }
    } else {
        let page = (i as u64 * 37) % 256;
        let data = Data { pattern: Pattern::Text(format!("record {i}")), repeat: None, len: None };
        Op::Write { device: "nv1".into(), offset: ByteSize(page * PAGE_SIZE + (i as u64 % 64) * 16), data }
    };
    op.into()
}

/// A playground session after the first `n` actions of the workload.
pub fn session_after(n: usize) -> Session {
    let mut s = Session::playground();
    for i in 0..n {
        // The workload's steps are valid: cannot fail.
        s.act(session_action(i)).expect("a valid workload step");
    }
    s
}

/// The clock (in ms: `performance.now()` in the browser, `Instant`
/// natively) before the first action of a session of `n` actions and
/// after each: element `i + 1` minus element `i` is the cost of appending
/// action `i`.
pub fn time_session(n: usize, mut time: impl FnMut() -> f64) -> Vec<f64> {
    let mut s = Session::playground();
    let mut marks = Vec::with_capacity(n + 1);
    marks.push(time());
    for i in 0..n {
        let _ = s.act(session_action(i));
        marks.push(time());
    }
    marks
}

/// Actions in each window of [`per_action_ms`] on the bench page: the
/// browser's clock is coarse (down to 0.1 ms), so actions are timed in
/// groups.
pub const SESSION_WINDOW: usize = 20;

/// The mean time per action of actions `range` from the marks of
/// [`time_session`] (0 when the range is outside them).
pub fn per_action_ms(marks: &[f64], range: std::ops::Range<usize>) -> f64 {
    match (marks.get(range.start), marks.get(range.end)) {
        (Some(a), Some(b)) if range.end > range.start => (b - a) / (range.end - range.start) as f64,
        _ => 0.0,
    }
}

/// What [`session_cost`] measures, in ms per action.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SessionCost {
    /// Mean of actions 1–20 (around the 10th).
    pub first: f64,
    /// Mean of the last 20 actions (around the 1,000th).
    pub last: f64,
    /// Mean of the second half of the session (amortized: vector growth
    /// of the event log included wherever it falls).
    pub second_half: f64,
}

/// The time per action around the 10th and around the last of the
/// session workload, and over its second half: the mean over `runs`
/// sessions, each timed by `time` (many runs: the browser's clock counts
/// in steps of 0.1 ms).
pub fn session_cost(runs: usize, mut time: impl FnMut() -> f64) -> SessionCost {
    let mut c = SessionCost::default();
    let runs = runs.max(1);
    let n = SESSION_ACTIONS;
    // One session untimed first: the browser compiles hot wasm code again
    // (optimized) after its first runs.
    time_session(n, &mut time);
    for _ in 0..runs {
        let marks = time_session(n, &mut time);
        c.first += per_action_ms(&marks, 0..SESSION_WINDOW) / runs as f64;
        c.last += per_action_ms(&marks, n - SESSION_WINDOW..n) / runs as f64;
        c.second_half += per_action_ms(&marks, n / 2..n) / runs as f64;
    }
    c
}

/// Sessions timed by the bench page and `native_bench`.
pub const SESSION_RUNS: usize = 30;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::palette::CellState;

    #[test]
    fn the_steps_workload_is_deterministic_and_does_work() {
        let a = sim_steps(40, 1);
        assert_eq!(a, sim_steps(40, 1));
        assert!(a.steps > 200, "{a:?}");
        assert_ne!(a.fingerprint, sim_steps(40, 2).fingerprint);
    }

    #[test]
    fn the_storm_dirties_and_cleans_pages_of_a_4_gib_device() {
        let mut s = WriteStorm::new(1);
        for _ in 0..12 {
            s.frame(50);
        }
        let map = s.page_map();
        assert_eq!(map.total_pages, 1 << 20);
        let c = map.counts();
        assert!(map.pages.len() > 550, "{}", map.pages.len());
        assert!(c.get(CellState::Dirty) > 0 && c.get(CellState::Clean) > 0, "{}", c.summary());
        let mut r = GridRenderer::new();
        assert!(draw_whole_device(&mut r, &map, 768, 384) > 0);
        assert_eq!(r.rgba().len(), 768 * 384 * 4);
    }

    #[test]
    fn the_session_workload_writes_flushes_and_waits() {
        let s = session_after(30);
        assert_eq!((s.cursor(), s.len()), (30, 30));
        assert!(s.outcomes().iter().all(|o| o.ok), "{:?}", s.outcomes());
        let ops: Vec<&str> = s.scenario().steps().iter().map(|st| st.op.name()).collect();
        assert_eq!((ops[0], ops[4], ops[9]), ("write", "fsync", "wait"));
        let mut clock = 0.0;
        let marks = time_session(3, || {
            clock += 1.0;
            clock
        });
        assert_eq!(marks, [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(per_action_ms(&[0.0, 1.0, 5.0], 1..2), 4.0);
        assert_eq!(per_action_ms(&[0.0, 1.0], 0..5), 0.0);
    }

    #[test]
    fn the_worst_case_map_touches_every_page() {
        let map = every_page_touched();
        assert_eq!(map.pages.len() as u64, map.total_pages);
        let mut r = GridRenderer::new();
        assert_eq!(
            draw_whole_device(&mut r, &map, 768, 384),
            GridLayout::new(1 << 20, 768, 384).cells(1 << 20) as usize
        );
    }
}
