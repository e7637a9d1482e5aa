//! The whole state of the visualizer, without any UI toolkit: what is
//! shown (a live session or a replayed log), the selected device, page and
//! zoom, the lesson's answered questions, and the last status message.
//! The yew component owns one and turns every message into one call here,
//! then draws what it exposes; the tests drive it the same way.

use crate::diagram::Scene;
use crate::grid::{GridLayout, PageMap, Viewport};
use crate::lessons::{self, Lesson, Question};
use crate::link::{Link, Source as LinkSource};
use crate::palette::CellState;
use crate::replay::LogReplay;
use crate::session::{ModeChoice, Session};
use pmem_core::event::fold::{FoldCursor, PageFold};
use pmem_core::event::{decode_hex, CrashKind, Event, HexBytes};
use pmem_core::host::TearGranularity;
use pmem_core::memory::PAGE_SIZE;
use pmem_core::scenario::{ByteSize, Data, DeviceOptions, Op, Pattern, Step, WaitTime};
use std::collections::BTreeMap;

/// Raster of the page grid, in pixels, until the page says how large the
/// canvas is ([`Workbench::set_raster`]).
pub const GRID_WIDTH: u32 = 768;
/// Raster height.
pub const GRID_HEIGHT: u32 = 384;
/// The largest raster the grid paints (its cost grows with the pixels).
pub const GRID_MAX: (u32, u32) = (1800, 900);

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
    /// True when the step lost or tore data (a power failure that found
    /// pages not on disk): not shown as a success even though it ran.
    pub loss: bool,
    /// The text.
    pub text: String,
}

/// The visualizer's state.
#[derive(Debug)]
pub struct Workbench {
    view: View,
    origin: Origin,
    /// The choices tried for the question before each step, in order.
    answers: BTreeMap<usize, Vec<usize>>,
    device: String,
    viewport: Viewport,
    /// The view follows the written pages (until the user zooms).
    fit: bool,
    raster: (u32, u32),
    page: Option<u64>,
    map: PageMap,
    status: Option<Status>,
    /// Events shown of a live session's log (`None`: all of them).
    playhead: Option<usize>,
    /// The fold at the playhead (live sessions, when it is not the end).
    cursor: Option<FoldCursor>,
    /// The last crash change computed: for a page and a failure event.
    crash_change: Option<CrashChange>,
}

/// What a failure did to one page: the bytes the guest read just before
/// it, and what the disk holds after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashChange {
    /// The device.
    pub device: String,
    /// The page.
    pub page: u64,
    /// Index of the failure's event in the log.
    pub event: usize,
    /// The guest's view of the page just before the failure.
    pub before: Vec<u8>,
    /// The disk's bytes after it.
    pub after: Vec<u8>,
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
            fit: true,
            raster: (GRID_WIDTH, GRID_HEIGHT),
            page: None,
            map: PageMap::default(),
            status: None,
            playhead: None,
            cursor: None,
            crash_change: None,
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
                w.answers.insert(q.before_step, vec![q.answer]);
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
        lesson.question_before(s.cursor()).filter(|q| !self.answered_right(q))
    }

    fn answered_right(&self, q: &Question) -> bool {
        self.answers.get(&q.before_step).is_some_and(|t| t.contains(&q.answer))
    }

    /// The last answer given to the question before `step`.
    pub fn answer(&self, step: usize) -> Option<usize> {
        self.answers.get(&step).and_then(|t| t.last().copied())
    }

    /// Every answer tried for the question before `step`, in order.
    pub fn tried(&self, step: usize) -> &[usize] {
        self.answers.get(&step).map_or(&[], Vec::as_slice)
    }

    /// Answers the question before step `step`. A wrong answer explains
    /// what to look at and leaves the question open for another try; the
    /// right one gives the reason and lets the lesson go on.
    pub fn answer_question(&mut self, step: usize, choice: usize) {
        let Some(q) = self.current_lesson().and_then(|l| l.question_before(step)) else { return };
        if self.answered_right(q) || choice >= q.choices.len() {
            return;
        }
        self.answers.entry(step).or_default().push(choice);
        let text = if choice == q.answer { format!("Right. {}", q.why) } else { format!("Not quite. {}", q.hint) };
        self.status = Some(Status { ok: choice == q.answer, loss: false, text });
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
                .map(|id| (id.to_string(), s.machine().device_snapshot(id).map(|d| d.config.size).unwrap_or(0)))
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
        GridLayout::new(self.viewport.span, self.raster.0, self.raster.1)
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
        self.status = Some(Status { ok, loss: false, text: text.into() });
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
            View::Live(s) => PageMap::of_fold(self.cursor.as_ref().map_or(s.fold(), FoldCursor::fold), &self.device),
            View::Replay(r) => r.page_map(&self.device),
        };
        let total = self.map.total_pages.max(1);
        if self.page.is_some_and(|p| p >= total) {
            self.page = None;
        }
        if reset_view {
            self.fit = true;
        }
        self.update_crash_change();
        if self.fit {
            self.viewport = Viewport::fit(self.touched(), total, self.raster.0, self.raster.1);
        } else if self.viewport.first + self.viewport.span > total {
            self.viewport = Viewport::whole(total);
        }
    }

    /// The failure event (before the playhead) that lost or tore `page` of
    /// the selected device last.
    fn crash_event_of(&self, page: u64) -> Option<usize> {
        let events = &self.events()[..self.shown()];
        events.iter().rposition(|e| {
            e.device.as_deref() == Some(self.device.as_str())
                && matches!(&e.kind, pmem_core::event::EventKind::Crash { lost_pages, torn_pages, .. }
                    if lost_pages.contains(&page) || torn_pages.contains(&page))
        })
    }

    /// Recomputes [`Workbench::crash_change`] when the selection or the
    /// failure it shows changed (a fold of the log up to the failure, with
    /// bytes).
    fn update_crash_change(&mut self) {
        let Some(page) = self.page.filter(|p| matches!(self.map.state(*p), CellState::Lost | CellState::Torn)) else {
            self.crash_change = None;
            return;
        };
        let Some(event) = self.crash_event_of(page) else {
            self.crash_change = None;
            return;
        };
        if self.crash_change.as_ref().is_some_and(|c| c.page == page && c.event == event && c.device == self.device) {
            return;
        }
        let mut fold = match &self.view {
            View::Live(s) => s.empty_byte_fold(),
            View::Replay(_) => {
                let mut f = PageFold::new(pmem_core::event::fold::Tracking::Bytes);
                for (id, b) in pmem_core::event::fold::backings_of_log(self.events()) {
                    f.set_backing(&id, b);
                }
                f
            }
        };
        fold.advance_to(self.events(), event);
        let before = fold.page_bytes(&self.device, page).0;
        let after = self.page_bytes().map(|(_, _, disk)| disk).unwrap_or_default();
        self.crash_change = Some(CrashChange { device: self.device.clone(), page, event, before, after });
    }

    /// For a selected page that a failure lost or tore: its bytes before
    /// and after.
    pub fn crash_change(&self) -> Option<&CrashChange> {
        self.crash_change.as_ref().filter(|c| Some(c.page) == self.page && c.device == self.device)
    }

    /// The first and last written page and the selection, if any.
    fn touched(&self) -> Option<(u64, u64)> {
        let pages = self.map.pages.first().map(|f| f.0).zip(self.map.pages.last().map(|l| l.0));
        match (pages, self.page) {
            (Some((lo, hi)), Some(p)) => Some((lo.min(p), hi.max(p))),
            (Some(r), None) => Some(r),
            (None, p) => p.map(|p| (p, p)),
        }
    }

    /// Tells the grid the size of its canvas in pixels (kept within
    /// [`GRID_MAX`]); true when it changed.
    pub fn set_raster(&mut self, width: u32, height: u32) -> bool {
        let r = (width.clamp(64, GRID_MAX.0), height.clamp(64, GRID_MAX.1));
        if r == self.raster {
            return false;
        }
        self.raster = r;
        self.refresh(false);
        true
    }

    /// The raster size of the grid.
    pub fn raster(&self) -> (u32, u32) {
        self.raster
    }

    /// True while the view follows the written pages.
    pub fn fitting(&self) -> bool {
        self.fit
    }

    /// Fits the view to the written pages again.
    pub fn zoom_fit(&mut self) {
        self.fit = true;
        self.refresh(false);
    }

    /// The whole event log of what is shown (a live session's machine, or
    /// the replayed log).
    pub fn events(&self) -> &[Event] {
        match &self.view {
            View::Live(s) => s.machine().log().events(),
            View::Replay(r) => r.events(),
        }
    }

    /// How many events of [`Workbench::events`] are shown (the playhead).
    pub fn shown(&self) -> usize {
        match &self.view {
            View::Live(s) => self.playhead.unwrap_or(s.machine().log().events().len()),
            View::Replay(r) => r.cursor(),
        }
    }

    /// The diagram at the playhead, for the selected device.
    pub fn scene(&self) -> Scene {
        Scene::at(self.events(), self.shown(), &self.device)
    }

    /// Moves the playhead by one event. Forward past the end of the log
    /// runs the next step (a lesson waits for its question) and shows its
    /// first event; back goes down to the first event of the log without
    /// running anything again. False when it could not move.
    pub fn step_event(&mut self, forward: bool) -> bool {
        let moved = match &mut self.view {
            View::Replay(r) => {
                let k = r.cursor();
                let to = if forward { k + 1 } else { k.saturating_sub(1) };
                r.goto(to);
                r.cursor() != k
            }
            View::Live(s) => {
                let len = s.machine().log().events().len();
                let k = self.playhead.unwrap_or(len);
                if forward && k >= len {
                    return self.forward_into_step();
                }
                if !forward && k == 0 {
                    return false;
                }
                let to = if forward { k + 1 } else { k - 1 };
                self.show_event(to);
                true
            }
        };
        self.refresh(false);
        moved
    }

    /// Runs the next step and puts the playhead on its first event.
    fn forward_into_step(&mut self) -> bool {
        let before = self.events().len();
        if !self.forward() {
            return false;
        }
        if self.events().len() > before + 1 {
            self.show_event(before + 1);
            self.refresh(false);
        }
        true
    }

    /// Shows the first `k` events of a live session's log.
    fn show_event(&mut self, k: usize) {
        let View::Live(s) = &self.view else { return };
        let events = s.machine().log().events();
        if k >= events.len() {
            self.playhead = None;
            self.cursor = None;
            return;
        }
        let cursor = self.cursor.get_or_insert_with(|| FoldCursor::new(s.empty_fold()));
        cursor.goto(events, k);
        self.playhead = Some(k);
    }

    /// Back to the end of the log (before any action).
    fn play_to_end(&mut self) {
        self.playhead = None;
        self.cursor = None;
    }

    /// True when the playhead is before the end of the log.
    pub fn behind(&self) -> bool {
        self.shown() < self.events().len()
    }

    /// The fold shown (at the playhead).
    pub fn fold_shown(&self) -> Option<&PageFold> {
        match &self.view {
            View::Live(s) => Some(self.cursor.as_ref().map_or(s.fold(), FoldCursor::fold)),
            View::Replay(r) => Some(r.state()),
        }
    }

    fn leave_lesson(&mut self) {
        if matches!(self.origin, Origin::Lesson(_)) {
            self.origin = Origin::Custom;
            self.answers.clear();
        }
    }

    fn report(&mut self, result: Result<(bool, String), String>) {
        let lost_before = self.losses();
        self.play_to_end();
        self.refresh(false);
        self.status = Some(match result {
            Ok((ok, text)) => Status { ok, loss: false, text },
            Err(e) => Status { ok: false, loss: false, text: e },
        });
        if self.losses() > lost_before {
            self.mark_loss();
        }
    }

    /// Pages shown lost or torn.
    fn losses(&self) -> u64 {
        let c = self.map.counts();
        c.get(CellState::Lost) + c.get(CellState::Torn)
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
            rate_limiter: None,
        };
        self.act(Op::Hotplug { device }.into());
        if self.devices().iter().any(|d| d.0 == id) {
            self.select_device(&id);
        }
    }

    /// One step forward (a lesson waits for its question to be answered).
    /// With the playhead inside the log, it first shows the rest of the
    /// step it is in.
    pub fn forward(&mut self) -> bool {
        if matches!(self.view, View::Live(_)) && self.behind() {
            self.play_to_end();
            self.refresh(false);
            return true;
        }
        if let Some(q) = self.pending_question() {
            self.set_status(false, format!("Answer the question first: {}", q.prompt));
            return false;
        }
        let lost_before = self.losses();
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
                        self.status = Some(Status { ok, loss: false, text });
                    }
                }
                if let Some(why) = s.over_budget() {
                    self.status = Some(Status { ok: false, loss: false, text: why });
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
        if moved && self.current_lesson().is_some() {
            self.focus_on_written_page();
        }
        self.refresh(false);
        if moved && self.losses() > lost_before {
            self.mark_loss();
        }
        moved
    }

    /// The status of a step that lost or tore data: not a success.
    fn mark_loss(&mut self) {
        if let Some(st) = &mut self.status {
            if st.ok {
                st.text = format!("Data lost: {}", st.text.strip_prefix("ok").unwrap_or(&st.text).trim_start());
                st.ok = false;
                st.loss = true;
            }
        }
    }

    /// In a lesson, selects the first page the step just run wrote, so the
    /// grid and the bytes show what its note talks about.
    fn focus_on_written_page(&mut self) {
        let Some(s) = self.session() else { return };
        let Some(step) = s.cursor().checked_sub(1).and_then(|i| s.step(i)) else { return };
        if let Op::Write { device, offset, .. } = &step.op {
            let (device, page) = (device.clone(), offset.0 / PAGE_SIZE);
            self.select_device(&device);
            self.page = Some(page);
        }
    }

    /// One step back: a replay from the seed (or, for a log, back one
    /// landmark).
    pub fn back(&mut self) -> bool {
        self.play_to_end();
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
        self.play_to_end();
        let lesson = self.current_lesson();
        match &mut self.view {
            View::Live(s) => {
                let mut target = k.min(s.len());
                // A lesson stops at its first unanswered question.
                let blocking = lesson.and_then(|l| {
                    l.questions.iter().find(|q| {
                        q.before_step >= s.cursor()
                            && q.before_step < target
                            && !self.answers.get(&q.before_step).is_some_and(|t| t.contains(&q.answer))
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
        self.update_crash_change();
        if self.fit {
            self.viewport = Viewport::fit(self.touched(), total, self.raster.0, self.raster.1);
        } else if !self.viewport.range().contains(&page) {
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
        self.fit = false;
        let center = self.zoom_center();
        self.viewport = self.viewport.zoom_in(center, self.map.total_pages.max(1));
    }

    /// Zooms out.
    pub fn zoom_out(&mut self) {
        self.fit = false;
        let center = self.zoom_center();
        self.viewport = self.viewport.zoom_out(center, self.map.total_pages.max(1));
    }

    /// What zooming keeps in the middle: the selected page, else the
    /// middle of the written pages in view, else the middle of the view.
    fn zoom_center(&self) -> u64 {
        if let Some(p) = self.page {
            return p;
        }
        let in_view = self.map.in_range(self.viewport.range());
        match (in_view.first(), in_view.last()) {
            (Some(a), Some(b)) => a.0 + (b.0 - a.0) / 2,
            _ => self.viewport.first + self.viewport.span / 2,
        }
    }

    /// Shows the whole device.
    pub fn zoom_all(&mut self) {
        self.fit = false;
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
    fn a_lost_page_shows_its_bytes_before_and_after_the_failure() {
        let mut w = Workbench::playground();
        w.write_page(4, "precious");
        w.crash(CrashKind::PowerFailure);
        let st = w.status().unwrap();
        assert!(st.loss && !st.ok, "a power failure that lost data is not a success: {st:?}");
        w.select_page(4);
        let c = w.crash_change().expect("page 4 was lost");
        assert!(c.before.starts_with(b"precious"), "{:?}", &c.before[..8]);
        assert!(c.after.iter().all(|b| *b == 0));
        w.select_page(5);
        assert!(w.crash_change().is_none(), "page 5 was never written");
        // A power failure that finds everything on disk is fine.
        let mut w = Workbench::playground();
        w.write_page(1, "a");
        w.device_op(FSYNC);
        w.crash(CrashKind::PowerFailure);
        assert!(w.status().unwrap().ok && !w.status().unwrap().loss);
    }

    #[test]
    fn events_step_one_at_a_time_forward_and_back() {
        let mut w = Workbench::playground();
        w.write_page(0, "a");
        let before = w.events().len();
        w.device_op(FSYNC);
        let end = w.events().len();
        assert!(end - before >= 9);
        // Back through the flush, event by event, without running anything.
        let mut stages = vec![w.scene().stage];
        while w.shown() > before {
            assert!(w.step_event(false));
            stages.push(w.scene().stage);
        }
        assert_eq!(w.position(), (2, 2), "the steps stay run");
        assert_eq!(w.map().state(0), CellState::Dirty, "before the flush the page is dirty");
        while w.shown() < end {
            assert!(w.step_event(true));
        }
        assert_eq!(w.map().state(0), CellState::Clean);
        assert!(!w.behind());
        // At the end, forward runs nothing more (no step left).
        assert!(!w.step_event(true));
        stages.retain(Option::is_some);
        stages.dedup();
        assert_eq!(stages.len(), 9, "{stages:?}");
    }

    #[test]
    fn a_wrong_answer_allows_another_try() {
        let mut w = Workbench::lesson("why-fsync").unwrap();
        w.forward();
        w.forward();
        let q = w.pending_question().unwrap();
        let wrong = (q.answer + 1) % q.choices.len();
        w.answer_question(q.before_step, wrong);
        assert!(!w.status().unwrap().ok);
        assert_eq!(w.status().unwrap().text, format!("Not quite. {}", q.hint));
        assert!(w.pending_question().is_some(), "still open");
        assert!(!w.forward());
        w.answer_question(q.before_step, q.answer);
        assert!(w.pending_question().is_none());
        assert_eq!(w.tried(q.before_step), [wrong, q.answer]);
        assert!(w.forward());
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
        assert!(w.status().unwrap().loss, "the lesson's power failure lost data: {:?}", w.status());
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

    #[test]
    fn the_view_fits_the_written_page_and_zoom_keeps_the_selection_centred() {
        let mut w = Workbench::playground();
        w.write_page(5000, "x");
        assert!(w.fitting());
        let l = w.layout();
        assert!(l.cell_px >= crate::grid::MIN_FIT_CELL_PX && w.viewport().range().contains(&5000), "{l:?}");
        w.select_page(5000);
        for _ in 0..3 {
            w.zoom_in();
            let vp = w.viewport();
            let mid = (vp.first + vp.span / 2) as i64;
            assert!((mid - 5000).abs() <= 1, "the selection stays in the middle: {vp:?}");
        }
        assert!(!w.fitting(), "zooming stops the fitting");
        w.zoom_fit();
        assert!(w.fitting() && w.layout().cell_px >= crate::grid::MIN_FIT_CELL_PX);
        // A larger canvas keeps cells of 8 px and shows more pages.
        let before = w.viewport().span;
        assert!(w.set_raster(1600, 800));
        assert!(w.viewport().span > before && w.layout().cell_px >= crate::grid::MIN_FIT_CELL_PX);
    }
}
