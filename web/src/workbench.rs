//! The whole state of the visualizer, without any UI toolkit: what is
//! shown (a live session or a replayed log), the selected device, page and
//! zoom, the lesson's answered questions, and the last status message.
//! The yew component owns one and turns every message into one call here,
//! then draws what it exposes; the tests drive it the same way.

use crate::grid::{GridLayout, PageMap, Viewport};
use crate::lessons::{self, Lesson, Question};
use crate::link::{Link, Source as LinkSource};
use crate::palette::CellState;
use crate::replay::LogReplay;
use crate::session::{ModeChoice, Session};
use pmem_core::event::{decode_hex, CrashKind, HexBytes};
use pmem_core::host::TearGranularity;
use pmem_core::memory::PAGE_SIZE;
use pmem_core::scenario::{ByteSize, Data, DeviceOptions, Op, Pattern, Step, WaitTime};
use std::collections::BTreeMap;

/// Raster of the page grid, in pixels.
pub const GRID_WIDTH: u32 = 768;
/// Raster height.
pub const GRID_HEIGHT: u32 = 384;

/// What is shown.
#[derive(Debug)]
pub enum View {
    /// A scenario run live by the simulator.
    Live(Box<Session>),
    /// An event log being replayed.
    Replay(Box<LogReplay>),
}

/// Where the shown scenario came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The playground (or a scenario built in it).
    Playground,
    /// A built-in lesson, unmodified.
    Lesson(&'static str),
    /// An imported scenario, or a lesson changed by the user.
    Custom,
    /// An imported event log.
    Log,
}

/// A status line for the user (and screen readers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// False for errors and failed steps.
    pub ok: bool,
    /// The text.
    pub text: String,
}

/// The visualizer's state.
#[derive(Debug)]
pub struct Workbench {
    view: View,
    origin: Origin,
    answers: BTreeMap<usize, usize>,
    device: String,
    viewport: Viewport,
    page: Option<u64>,
    map: PageMap,
    status: Option<Status>,
}

/// What the write form holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteForm {
    /// Offset: bytes, `0x…`, or a size like `4K`.
    pub offset: String,
    /// Optional length: the data is repeated to fill it.
    pub length: String,
    /// The data: text, or `hex:` followed by hex digits.
    pub data: String,
}

fn size_value(text: &str, what: &str) -> Result<ByteSize, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("the {what} is empty; give bytes (4096), hex (0x1000) or a size (4K)"));
    }
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16)
            .map(ByteSize)
            .map_err(|_| format!("the {what} \"{t}\" is not a hex number"));
    }
    ByteSize::parse(t).map_err(|e| format!("the {what}: {e}"))
}

impl WriteForm {
    /// The scenario step this form describes, for device `device` (the
    /// session checks it further, as a scenario step).
    pub fn step(&self, device: &str) -> Result<Step, String> {
        let offset = size_value(&self.offset, "offset")?;
        let data = self.data.as_str();
        if data.is_empty() {
            return Err("the data is empty; type some text, or hex: followed by hex digits".to_string());
        }
        let pattern = match data.strip_prefix("hex:") {
            Some(hex) => {
                let digits: String = hex.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                Pattern::Hex(HexBytes(decode_hex(&digits).map_err(|e| format!("the data after \"hex:\": {e}"))?.into()))
            }
            None => Pattern::Text(data.to_string()),
        };
        let len = match self.length.trim() {
            "" => None,
            l => Some(size_value(l, "length")?),
        };
        Ok(Op::Write { device: device.to_string(), offset, data: Data { pattern, repeat: None, len } }.into())
    }
}

/// An operation on the selected device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceOp {
    /// `fsync` (`msync: false`) or `msync(MS_SYNC)`, waiting for it or not.
    Flush {
        /// `msync` instead of `fsync`.
        msync: bool,
        /// Wait for the flush to return.
        blocking: bool,
    },
    /// `mmap` with `MAP_SYNC`.
    MapSync,
    /// The next host fsync fails with EIO.
    InjectFsyncError,
    /// `device_del` (refused).
    Unplug,
}

impl DeviceOp {
    /// The scenario op on device `device`.
    pub fn op(self, device: String) -> Op {
        match self {
            DeviceOp::Flush { msync: false, blocking } => Op::Fsync { device, blocking },
            DeviceOp::Flush { msync: true, blocking } => Op::Msync { device, blocking },
            DeviceOp::MapSync => Op::Mmap { device, map_sync: true },
            DeviceOp::InjectFsyncError => Op::InjectFsyncError { device, count: 1 },
            DeviceOp::Unplug => Op::Unplug { device },
        }
    }
}

impl Default for Workbench {
    fn default() -> Self {
        Workbench::new(View::Live(Box::new(Session::playground())), Origin::Playground)
    }
}

impl Workbench {
    fn new(view: View, origin: Origin) -> Workbench {
        let mut w = Workbench {
            view,
            origin,
            answers: BTreeMap::new(),
            device: String::new(),
            viewport: Viewport::whole(1),
            page: None,
            map: PageMap::default(),
            status: None,
        };
        w.refresh(true);
        w
    }

    /// The playground.
    pub fn playground() -> Workbench {
        Workbench::default()
    }

    /// Opens a built-in lesson at its start.
    pub fn lesson(id: &str) -> Result<Workbench, String> {
        let lesson = lessons::by_id(id).ok_or_else(|| format!("no lesson \"{id}\""))?;
        Ok(Workbench::new(View::Live(Box::new(Session::new(lesson.scenario()))), Origin::Lesson(lesson.id)))
    }

    /// Opens what a link describes: lesson or scenario, seed, step, device
    /// and page. Questions of the steps the link skips count as answered.
    pub fn from_link(link: &Link) -> Result<Workbench, String> {
        let mut w = match &link.source {
            LinkSource::Lesson(id) => Workbench::lesson(id)?,
            LinkSource::Scenario(json) => {
                Workbench::new(View::Live(Box::new(Session::from_json(json)?)), Origin::Custom)
            }
            LinkSource::Bench => return Err("the bench page is not a scenario".to_string()),
        };
        if let View::Live(s) = &mut w.view {
            if let Some(seed) = link.seed.filter(|seed| *seed != s.seed()) {
                s.set_seed(seed)?;
            }
            s.goto(link.step);
            if let Some(why) = s.over_budget() {
                return Err(format!("the link's scenario stopped at step {}: {why}", s.cursor()));
            }
        }
        if let Some(lesson) = w.current_lesson() {
            for q in lesson.questions.iter().filter(|q| q.before_step < link.step) {
                w.answers.insert(q.before_step, q.answer);
            }
        }
        w.refresh(true);
        if let Some(d) = &link.device {
            w.select_device(d);
        }
        if let Some(p) = link.page {
            w.select_page(p);
        }
        w.status = None;
        Ok(w)
    }

    /// The link to this view (`None` for a replayed log, which does not
    /// fit in a URL).
    pub fn link(&self) -> Option<Link> {
        let View::Live(s) = &self.view else { return None };
        let source = match self.origin {
            Origin::Lesson(id) => LinkSource::Lesson(id.to_string()),
            _ => LinkSource::Scenario(s.to_compact_json()),
        };
        Some(Link {
            source,
            seed: Some(s.seed()),
            step: s.cursor(),
            device: Some(self.device.clone()),
            page: self.page,
        })
    }

    /// Opens an imported scenario.
    pub fn import_scenario(text: &str) -> Result<Workbench, String> {
        Ok(Workbench::new(View::Live(Box::new(Session::from_json(text)?)), Origin::Custom))
    }

    /// Opens an imported event log, positioned at its end.
    pub fn import_log(text: &str) -> Result<Workbench, String> {
        let mut r = LogReplay::parse(text)?;
        if r.devices().is_empty() {
            return Err("the event log adds no device, so there is nothing to draw".to_string());
        }
        r.goto(r.events().len());
        Ok(Workbench::new(View::Replay(Box::new(r)), Origin::Log))
    }

    /// What is shown.
    pub fn view(&self) -> &View {
        &self.view
    }

    /// The live session, if any.
    pub fn session(&self) -> Option<&Session> {
        match &self.view {
            View::Live(s) => Some(&**s),
            View::Replay(_) => None,
        }
    }

    /// Where the scenario came from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The lesson being followed.
    pub fn current_lesson(&self) -> Option<&'static Lesson> {
        match self.origin {
            Origin::Lesson(id) => lessons::by_id(id),
            _ => None,
        }
    }

    /// The question that blocks the next step, if unanswered.
    pub fn pending_question(&self) -> Option<&'static Question> {
        let lesson = self.current_lesson()?;
        let s = self.session()?;
        lesson.question_before(s.cursor()).filter(|q| !self.answers.contains_key(&q.before_step))
    }

    /// The answer given to the question before `step`.
    pub fn answer(&self, step: usize) -> Option<usize> {
        self.answers.get(&step).copied()
    }

    /// Answers the question before step `step`.
    pub fn answer_question(&mut self, step: usize, choice: usize) {
        let Some(q) = self.current_lesson().and_then(|l| l.question_before(step)) else { return };
        self.answers.insert(step, choice);
        let verdict = if choice == q.answer { "Right." } else { "Not quite." };
        self.status = Some(Status { ok: choice == q.answer, text: format!("{verdict} {}", q.why) });
    }

    /// The selected device.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Ids and sizes of the devices shown.
    pub fn devices(&self) -> Vec<(String, u64)> {
        match &self.view {
            View::Live(s) => s
                .machine()
                .device_ids()
                .iter()
                .map(|id| (id.clone(), s.machine().device_snapshot(id).map(|d| d.config.size).unwrap_or(0)))
                .collect(),
            View::Replay(r) => r.devices().iter().map(|d| (d.id.clone(), d.size)).collect(),
        }
    }

    /// The page map of the selected device.
    pub fn map(&self) -> &PageMap {
        &self.map
    }

    /// The part of the device shown.
    pub fn viewport(&self) -> Viewport {
        self.viewport
    }

    /// The layout of the grid raster.
    pub fn layout(&self) -> GridLayout {
        GridLayout::new(self.viewport.span, GRID_WIDTH, GRID_HEIGHT)
    }

    /// The selected page.
    pub fn page(&self) -> Option<u64> {
        self.page
    }

    /// The last status message.
    pub fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }

    /// Sets a status message.
    pub fn set_status(&mut self, ok: bool, text: impl Into<String>) {
        self.status = Some(Status { ok, text: text.into() });
    }

    /// The bytes of the selected page: guest view and disk.
    pub fn page_bytes(&self) -> Option<(u64, Vec<u8>, Vec<u8>)> {
        let p = self.page?;
        match &self.view {
            View::Live(s) => crate::hexview::page_bytes(s.machine(), &self.device, p).ok().map(|(c, d)| (p, c, d)),
            View::Replay(r) => {
                let (c, d) = r.state().page_bytes(&self.device, p);
                Some((p, c, d))
            }
        }
    }

    /// Recomputes the page map; keeps device, zoom and page when they
    /// still exist.
    fn refresh(&mut self, reset_view: bool) {
        let devices = self.devices();
        if !devices.iter().any(|(id, _)| *id == self.device) {
            self.device = devices.first().map(|d| d.0.clone()).unwrap_or_default();
            self.page = None;
        }
        self.map = match &self.view {
            View::Live(s) => PageMap::of_fold(s.fold(), &self.device),
            View::Replay(r) => r.page_map(&self.device),
        };
        let total = self.map.total_pages.max(1);
        if reset_view || self.viewport.first + self.viewport.span > total {
            self.viewport = Viewport::whole(total);
        }
        if self.page.is_some_and(|p| p >= total) {
            self.page = None;
        }
    }

    fn leave_lesson(&mut self) {
        if matches!(self.origin, Origin::Lesson(_)) {
            self.origin = Origin::Custom;
            self.answers.clear();
        }
    }

    fn report(&mut self, result: Result<(bool, String), String>) {
        self.status = Some(match result {
            Ok((ok, text)) => Status { ok, text },
            Err(e) => Status { ok: false, text: e },
        });
        self.refresh(false);
    }

    /// Does a guest or operator action now (a scenario step).
    pub fn act(&mut self, step: Step) {
        let View::Live(s) = &mut self.view else {
            self.set_status(false, "a replayed log cannot be changed; go back to the playground to act");
            return;
        };
        let result = s.act(step).map(|o| (o.ok, o.to_string()));
        if result.is_ok() {
            self.leave_lesson();
        }
        self.report(result);
    }

    /// Writes what the form says to the selected device.
    pub fn write(&mut self, form: &WriteForm) {
        match form.step(&self.device) {
            Ok(step) => self.act(step),
            Err(e) => self.set_status(false, e),
        }
    }

    /// Writes a marker into page `page` of the selected device (a click on
    /// the grid).
    pub fn write_page(&mut self, page: u64, data: &str) {
        self.page = Some(page);
        let data = if data.is_empty() { "x" } else { data };
        let data = Data { pattern: Pattern::Text(data.to_string()), repeat: None, len: None };
        self.act(Op::Write { device: self.device.clone(), offset: ByteSize(page * PAGE_SIZE), data }.into());
    }

    /// An op on the selected device.
    pub fn device_op(&mut self, op: DeviceOp) {
        self.act(op.op(self.device.clone()).into());
    }

    /// A failure of the whole machine.
    pub fn crash(&mut self, kind: CrashKind) {
        let op = match kind {
            CrashKind::PowerFailure => Op::PowerFailure,
            CrashKind::GuestCrash => Op::GuestCrash,
            CrashKind::VmmKill => Op::VmmKill,
        };
        self.act(op.into());
    }

    /// Lets `ms` milliseconds of simulated time pass.
    pub fn wait(&mut self, ms: u64) {
        self.act(Op::Wait { time: WaitTime::Ms(ms) }.into());
    }

    /// Hot-plugs a new device of `size` and `mode`.
    pub fn hotplug(&mut self, size: &str, mode: ModeChoice) {
        let Some(s) = self.session() else { return };
        let id = s.next_device_id();
        let size = match ByteSize::parse(size.trim()) {
            Ok(size) => size,
            Err(e) => return self.set_status(false, format!("the size of the new device: {e}")),
        };
        let (kind, share) = mode.kind();
        let mem_path = Some(format!("./{id}.img"));
        let device = DeviceOptions {
            id: id.clone(),
            mem_path,
            size,
            share,
            readonly: false,
            mode: kind,
            vmm: None,
            driver: None,
        };
        self.act(Op::Hotplug { device }.into());
        if self.devices().iter().any(|d| d.0 == id) {
            self.select_device(&id);
        }
    }

    /// One step forward (a lesson waits for its question to be answered).
    pub fn forward(&mut self) -> bool {
        if let Some(q) = self.pending_question() {
            self.set_status(false, format!("Answer the question first: {}", q.prompt));
            return false;
        }
        let moved = match &mut self.view {
            View::Live(s) => {
                let moved = s.forward();
                if moved {
                    let o = s.outcomes().last().map(|o| (o.ok, o.to_string()));
                    let note = s.note(s.cursor() - 1).map(str::to_string);
                    if let Some((ok, text)) = o {
                        let text = match note {
                            Some(n) => format!("{text}\n{n}"),
                            None => text,
                        };
                        self.status = Some(Status { ok, text });
                    }
                }
                if let Some(why) = s.over_budget() {
                    self.status = Some(Status { ok: false, text: why });
                }
                moved
            }
            View::Replay(r) => {
                let before = r.cursor();
                let k = r.next_landmark();
                r.goto(k);
                k > before
            }
        };
        self.refresh(false);
        moved
    }

    /// One step back: a replay from the seed (or, for a log, back one
    /// landmark).
    pub fn back(&mut self) -> bool {
        let moved = match &mut self.view {
            View::Live(s) => s.back(),
            View::Replay(r) => {
                let moved = r.cursor() > 0;
                r.goto(r.prev_landmark());
                moved
            }
        };
        if moved {
            self.status = None;
        }
        self.refresh(false);
        moved
    }

    /// Jumps to position `k`.
    pub fn goto(&mut self, k: usize) {
        let lesson = self.current_lesson();
        match &mut self.view {
            View::Live(s) => {
                let mut target = k.min(s.len());
                // A lesson stops at its first unanswered question.
                let blocking = lesson.and_then(|l| {
                    l.questions.iter().find(|q| {
                        q.before_step >= s.cursor()
                            && q.before_step < target
                            && !self.answers.contains_key(&q.before_step)
                    })
                });
                if let Some(q) = blocking {
                    target = q.before_step;
                }
                s.goto(target);
            }
            View::Replay(r) => r.goto(k),
        }
        self.refresh(false);
    }

    /// Position and length (steps, or events of a log).
    pub fn position(&self) -> (usize, usize) {
        match &self.view {
            View::Live(s) => (s.cursor(), s.len()),
            View::Replay(r) => (r.cursor(), r.events().len()),
        }
    }

    /// Selects a device.
    pub fn select_device(&mut self, id: &str) {
        if self.devices().iter().any(|d| d.0 == id) && self.device != id {
            self.device = id.to_string();
            self.page = None;
            self.refresh(true);
        }
    }

    /// Selects a page (and zooms so that it is visible).
    pub fn select_page(&mut self, page: u64) {
        let total = self.map.total_pages.max(1);
        if page >= total {
            return;
        }
        self.page = Some(page);
        if !self.viewport.range().contains(&page) {
            self.viewport =
                self.viewport.pan(page as i64 - self.viewport.first as i64 - (self.viewport.span / 2) as i64, total);
        }
    }

    /// The page under raster pixel `(x, y)` (the first page of an
    /// aggregated cell).
    pub fn page_at(&self, x: f64, y: f64) -> Option<u64> {
        let layout = self.layout();
        layout.cell_at(&self.viewport, x, y).map(|c| layout.pages_of_cell(&self.viewport, c).start)
    }

    /// Zooms in around the selected page (or the middle).
    pub fn zoom_in(&mut self) {
        let center = self.page.unwrap_or(self.viewport.first + self.viewport.span / 2);
        self.viewport = self.viewport.zoom_in(center, self.map.total_pages.max(1));
    }

    /// Zooms out.
    pub fn zoom_out(&mut self) {
        let center = self.page.unwrap_or(self.viewport.first + self.viewport.span / 2);
        self.viewport = self.viewport.zoom_out(center, self.map.total_pages.max(1));
    }

    /// Shows the whole device.
    pub fn zoom_all(&mut self) {
        self.viewport = Viewport::whole(self.map.total_pages.max(1));
    }

    /// Moves the selection by `delta` pages (arrow keys), panning along.
    pub fn move_selection(&mut self, delta: i64) {
        let total = self.map.total_pages.max(1);
        let layout = self.layout();
        let step = delta.signum() * layout.pages_per_cell as i64 * delta.abs();
        // The first key press selects the first page in view.
        let to = match self.page {
            Some(from) => (from as i64 + step).clamp(0, total as i64 - 1) as u64,
            None => self.viewport.first,
        };
        self.select_page(to);
    }

    /// Cells per grid row (for up/down keys).
    pub fn row_cells(&self) -> i64 {
        i64::from(self.layout().cols)
    }

    /// The touched pages in view, for the text table (at most `limit`).
    pub fn rows_in_view(&self, limit: usize) -> (Vec<(u64, CellState)>, usize) {
        let all = self.map.in_range(self.viewport.range());
        (all.iter().take(limit).copied().collect(), all.len())
    }

    /// Runs again with another seed.
    pub fn set_seed(&mut self, seed: u64) {
        let r = match &mut self.view {
            View::Live(s) => s.set_seed(seed).map(|_| (true, format!("replayed from seed {seed}"))),
            View::Replay(_) => Err("a replayed log has no seed to change".into()),
        };
        self.report(r);
    }

    /// Runs again with another tear granularity.
    pub fn set_tear(&mut self, tear: TearGranularity) {
        let r = match &mut self.view {
            View::Live(s) => {
                s.set_tear(tear).map(|_| (true, format!("tear granularity {tear}; replayed from the seed")))
            }
            View::Replay(_) => Err("a replayed log cannot be changed".into()),
        };
        self.report(r);
    }

    /// Runs again with background writeback on or off.
    pub fn set_background_writeback(&mut self, on: bool) {
        let r = match &mut self.view {
            View::Live(s) => s.set_background_writeback(on).map(|_| {
                (true, format!("background writeback {}; replayed from the seed", if on { "on" } else { "off" }))
            }),
            View::Replay(_) => Err("a replayed log cannot be changed".into()),
        };
        self.report(r);
    }

    /// Runs again with the selected device of another kind.
    pub fn set_mode(&mut self, mode: ModeChoice) {
        let dev = self.device.clone();
        let r = match &mut self.view {
            View::Live(s) => s
                .set_device_mode(&dev, mode)
                .map(|_| (true, format!("{dev} is now {}; replayed from the seed", mode.label()))),
            View::Replay(_) => Err("a replayed log cannot be changed".into()),
        };
        if r.is_ok() {
            self.leave_lesson();
        }
        self.report(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FSYNC: DeviceOp = DeviceOp::Flush { msync: false, blocking: true };

    fn count(w: &Workbench, s: CellState) -> u64 {
        w.map().counts().get(s)
    }

    #[test]
    fn write_flush_power_fail_and_step_back() {
        let mut w = Workbench::playground();
        w.write(&WriteForm { offset: "0x2000".into(), length: String::new(), data: "hello".into() });
        assert_eq!(w.map().state(2), CellState::Dirty);
        w.device_op(FSYNC);
        assert_eq!(w.map().state(2), CellState::Clean, "{:?}", w.status());
        w.write_page(5, "unflushed");
        w.crash(CrashKind::PowerFailure);
        assert_eq!(w.map().state(5), CellState::Lost);
        assert_eq!(w.map().state(2), CellState::OnDisk);
        assert_eq!(count(&w, CellState::Lost), 1);
        assert!(w.back());
        assert_eq!(w.map().state(5), CellState::Dirty);
        assert_eq!(w.position(), (3, 4));
    }

    #[test]
    fn a_link_reopens_the_same_state() {
        let mut w = Workbench::playground();
        w.write_page(3, "a");
        w.crash(CrashKind::PowerFailure);
        w.write_page(7, "b");
        w.back();
        w.select_page(3);
        let link = w.link().unwrap();
        let frag = link.to_fragment();
        let again = Workbench::from_link(&Link::parse(&frag).unwrap().unwrap()).unwrap();
        assert_eq!(again.position(), w.position());
        assert_eq!(again.map(), w.map());
        assert_eq!(again.page(), Some(3));
        assert_eq!(again.session().unwrap().machine().log(), w.session().unwrap().machine().log());
    }

    #[test]
    fn a_lesson_waits_for_its_questions() {
        let mut w = Workbench::lesson("why-fsync").unwrap();
        assert!(w.forward());
        assert!(w.forward());
        let q = w.pending_question().expect("a question before the power failure");
        assert!(!w.forward(), "blocked");
        assert_eq!(w.position().0, 2);
        w.answer_question(q.before_step, q.answer);
        assert!(w.status().unwrap().ok);
        assert!(w.forward());
        assert_eq!(w.map().state(0), CellState::Lost);
        // goto stops at the next unanswered question.
        w.goto(100);
        assert_eq!(w.position().0, 6);
        // A link into a lesson counts the questions it skips as answered.
        let l = Workbench::from_link(&w.link().unwrap()).unwrap();
        assert_eq!(l.position().0, 6);
        assert!(l.pending_question().is_some());
        assert_eq!(l.answer(2), Some(1));
        // Acting leaves the lesson.
        let mut w = w;
        w.write_page(9, "x");
        assert_eq!(w.origin(), &Origin::Custom);
    }

    #[test]
    fn form_errors_are_sentences() {
        let f = WriteForm { offset: String::new(), length: String::new(), data: "x".into() };
        assert!(f.step("nv1").unwrap_err().contains("offset"));
        let f = WriteForm { offset: "0xzz".into(), length: String::new(), data: "x".into() };
        assert!(f.step("nv1").unwrap_err().contains("hex"));
        let f = WriteForm { offset: "4K".into(), length: "8K".into(), data: "hex:ab".into() };
        let want = Op::Write {
            device: "nv1".into(),
            offset: ByteSize(4096),
            data: Data { pattern: Pattern::Hex(HexBytes(vec![0xab].into())), repeat: None, len: Some(ByteSize(8192)) },
        };
        assert_eq!(f.step("nv1").unwrap(), want.into());
        let f = WriteForm { offset: "0".into(), length: String::new(), data: "hex:zz".into() };
        assert!(f.step("nv1").unwrap_err().contains("hex"));
        let mut w = Workbench::playground();
        w.write(&WriteForm { offset: "64M".into(), length: String::new(), data: "x".into() });
        assert!(!w.status().unwrap().ok, "outside the device");
    }

    #[test]
    fn hotplug_unplug_and_modes() {
        let mut w = Workbench::playground();
        w.hotplug("4G", ModeChoice::VirtioPmem);
        assert_eq!(w.device(), "nv2");
        assert_eq!(w.map().total_pages, 1 << 20);
        w.write_page((1 << 20) - 1, "end");
        assert_eq!(w.map().state((1 << 20) - 1), CellState::Dirty);
        w.device_op(DeviceOp::Unplug);
        assert!(!w.status().unwrap().ok);
        assert!(w.status().unwrap().text.contains("hot-unplug"));
        w.set_mode(ModeChoice::RealNvdimm);
        assert_eq!(w.map().state((1 << 20) - 1), CellState::OnDisk, "{:?}", w.status());
        w.device_op(DeviceOp::MapSync);
        assert!(w.status().unwrap().ok);
        w.select_device("nv1");
        w.device_op(DeviceOp::MapSync);
        assert!(w.status().unwrap().text.contains("EOPNOTSUPP"));
    }

    #[test]
    fn an_imported_log_replays_landmark_by_landmark() {
        let mut w = Workbench::playground();
        w.write_page(1, "a");
        w.device_op(FSYNC);
        w.write_page(2, "b");
        w.crash(CrashKind::PowerFailure);
        let log = serde_json::to_string(w.session().unwrap().machine().log()).unwrap();
        let mut r = Workbench::import_log(&log).unwrap();
        assert_eq!(r.map().state(2), CellState::Lost);
        assert!(r.link().is_none());
        r.goto(0);
        assert_eq!(r.map().pages.len(), 0);
        while r.forward() {}
        assert_eq!(r.map().state(1), CellState::OnDisk);
        assert!(r.back());
        assert!(r.position().0 < r.position().1);
        assert!(Workbench::import_log("[]").is_err());
    }

    #[test]
    fn selection_moves_and_zoom_follows() {
        let mut w = Workbench::playground();
        w.move_selection(1);
        assert_eq!(w.page(), Some(0), "the first key selects the first page in view");
        w.select_page(100);
        w.zoom_in();
        w.zoom_in();
        assert!(w.viewport().range().contains(&100));
        w.move_selection(1);
        assert_eq!(w.page(), Some(101));
        let layout = w.layout();
        let cell = layout.cell_of(&w.viewport(), 101).unwrap();
        let (x, y) = layout.cell_origin(cell);
        assert_eq!(w.page_at(f64::from(x) + 1.0, f64::from(y) + 1.0), Some(101));
        w.zoom_all();
        assert_eq!(w.viewport().span, w.map().total_pages);
    }
}
