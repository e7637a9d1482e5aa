//! The yew component: it turns messages into calls on the
//! [`Workbench`](crate::workbench::Workbench) and draws what it exposes.
//! Only this module (compiled for wasm32 only) knows about yew and the DOM.

mod anim;
mod bench;
mod canvas;
mod diagram_view;
mod dom;
mod views;

use crate::diagram::{trail, Place};
use crate::disclosure::Level;
use crate::explorer::{workloads, ExplorerRun};
use crate::link::{Link, Source as LinkSource};
use crate::session::ModeChoice;
use crate::workbench::{DeviceOp, Workbench, WriteForm};
use gloo::file::callbacks::FileReader;
use gloo::timers::callback::Interval;
use pmem_core::event::CrashKind;
use pmem_core::host::TearGranularity;
use yew::prelude::*;

/// Play's speeds: events shown per tick, and the simulated time a tick
/// lets pass once every step has run.
pub const SPEEDS: [(usize, u64, &str); 4] = [
    (1, 100, "1 event per tick (then 0.1 s per tick)"),
    (4, 1_000, "4 events per tick (then 1 s)"),
    (16, 5_000, "16 events per tick (then 5 s)"),
    (64, 30_000, "64 events per tick (then 30 s)"),
];

/// Real time between ticks while playing.
pub const TICK_MS: u32 = 600;

/// What a file picker loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A scenario.
    Scenario,
    /// An event log.
    Log,
}

/// Everything the page can ask for.
pub enum Msg {
    /// Form fields.
    SetOffset(String),
    /// Form: length.
    SetLength(String),
    /// Form: data.
    SetData(String),
    /// Form: blocking fsync.
    SetBlocking(bool),
    /// Guest write from the form.
    Write,
    /// Guest write to the selected page.
    WriteSelected,
    /// fsync (`msync: false`) or msync(MS_SYNC).
    Flush {
        /// msync instead of fsync.
        msync: bool,
    },
    /// mmap with MAP_SYNC.
    MapSync,
    /// Let simulated time pass.
    Wait,
    /// Wait amount.
    SetWait(String),
    /// A failure of the whole machine.
    Crash(CrashKind),
    /// Inject an fsync error on the selected device.
    InjectFsyncError,
    /// Background writeback on/off.
    SetWriteback(bool),
    /// Tear granularity.
    SetTear(String),
    /// Mode of the selected device.
    SetMode(String),
    /// Seed field.
    SetSeedText(String),
    /// Replay with the seed field's seed.
    ApplySeed,
    /// Hotplug form: size.
    SetHotSize(String),
    /// Hotplug form: mode.
    SetHotMode(String),
    /// Hot-plug a device.
    Hotplug,
    /// Try to remove the selected device.
    Unplug,
    /// Play / pause.
    TogglePlay,
    /// Speed setting.
    SetSpeed(usize),
    /// A play tick.
    Tick,
    /// One event back.
    Back,
    /// One event forward (the next step when the log is shown to its end).
    Forward,
    /// The step before (replay from the seed).
    StepBack,
    /// The whole next step.
    StepForward,
    /// Beginner's write: the data into the selected page, or the page
    /// after the last one written.
    QuickWrite,
    /// Fit the grid to the written pages.
    ZoomFit,
    /// The canvas changed size.
    Resized,
    /// Show the beginner or the expert view.
    SetLevel(Level),
    /// The answer to "leave the lesson?": do the action, or stay.
    ConfirmLeave(bool),
    /// Jump to a position.
    Goto(usize),
    /// Select a device.
    SelectDevice(String),
    /// Click on the grid at raster coordinates; `true` = write there.
    GridClick(f64, f64, bool),
    /// A key on the grid.
    GridKey(KeyboardEvent),
    /// Zoom.
    ZoomIn,
    /// Zoom out.
    ZoomOut,
    /// Whole device.
    ZoomAll,
    /// Select a page (table, lists).
    SelectPage(u64),
    /// Open a lesson.
    OpenLesson(&'static str),
    /// Answer the question before a step.
    Answer(usize, usize),
    /// Back to the playground.
    Playground,
    /// The URL fragment changed (a pasted link).
    HashChanged,
    /// The import/export text area.
    SetIoText(String),
    /// Import the text area as a scenario.
    ImportScenario,
    /// Import the text area as an event log.
    ImportLog,
    /// A file was picked.
    FileChosen(FileKind, web_sys::File),
    /// A file was read.
    FileLoaded(FileKind, Result<String, String>),
    /// Put the scenario JSON into the text area and download it.
    ExportScenario,
    /// Download the event log.
    ExportLog,
    /// Crash explorer: workload.
    SetWorkload(String),
    /// Crash explorer: run.
    RunCampaign,
    /// Crash explorer: show the images of a point.
    ShowPoint(usize),
}

/// The visualizer.
pub struct App {
    bench: Workbench,
    form: WriteForm,
    blocking: bool,
    wait_ms: String,
    seed_text: String,
    hot_size: String,
    hot_mode: ModeChoice,
    speed: usize,
    playing: Option<Interval>,
    io_text: String,
    reader: Option<FileReader>,
    workload: String,
    explorer: Option<Result<ExplorerRun, String>>,
    point: Option<usize>,
    /// The images of the point shown (checked once, when it is chosen).
    point_images: Option<(usize, crate::explorer::PointImages)>,
    canvas: NodeRef,
    renderer: crate::grid::GridRenderer,
    last_fragment: String,
    _hash_listener: Option<gloo::events::EventListener>,
    _resize_listener: Option<gloo::events::EventListener>,
    level: Level,
    /// An action that would leave the lesson, waiting for the user's yes.
    confirm: Option<Box<Msg>>,
    /// The element to focus after the next render.
    focus: Option<&'static str>,
    animator: anim::Animator,
    /// Where the token travels after the next render.
    travel: Vec<Place>,
    /// The canvas's size must be read again (reading it forces a layout,
    /// so only after a resize or a change of view).
    remeasure: bool,
    /// What the canvas shows now (drawn again only when it changes).
    drawn: Option<canvas::Drawn>,
}

/// True for the messages that change the scenario (and so leave a lesson).
fn leaves_lesson(msg: &Msg) -> bool {
    match msg {
        Msg::Write
        | Msg::WriteSelected
        | Msg::QuickWrite
        | Msg::Flush { .. }
        | Msg::MapSync
        | Msg::Wait
        | Msg::Crash(_)
        | Msg::InjectFsyncError
        | Msg::SetMode(_)
        | Msg::Hotplug
        | Msg::Unplug
        | Msg::GridClick(_, _, true) => true,
        Msg::GridKey(e) => matches!(e.key().as_str(), "Enter" | " "),
        _ => false,
    }
}

impl App {
    fn open(&mut self, w: Result<Workbench, String>) {
        match w {
            Ok(w) => {
                self.bench = w;
                self.seed_text = self.bench.session().map(|s| s.seed().to_string()).unwrap_or_default();
                self.stop();
            }
            Err(e) => self.bench.set_status(false, e),
        }
    }

    fn stop(&mut self) {
        self.playing = None;
    }

    /// Writes the state into the URL (replaceState: no history entry per
    /// step).
    fn sync_url(&mut self) {
        let frag = match self.bench.link() {
            Some(link) => link.to_fragment(),
            None => String::new(),
        };
        let frag = self.level.with_fragment(&frag);
        if frag.is_empty() {
            return;
        }
        if frag != self.last_fragment {
            dom::replace_fragment(&frag);
            self.last_fragment = frag;
        }
    }

    fn load_fragment(&mut self) {
        let frag = dom::fragment();
        if frag.trim_start_matches('#') == self.last_fragment {
            return;
        }
        let (level, rest) = Level::split_fragment(&frag);
        if let Some(level) = level {
            self.level = level;
        }
        match Link::parse(&rest) {
            Ok(Some(link)) if link.source != LinkSource::Bench => self.open(Workbench::from_link(&link)),
            Ok(_) => {}
            Err(e) => self.bench.set_status(false, e),
        }
        self.last_fragment = frag.trim_start_matches('#').to_string();
    }
}

impl App {
    /// Does what `msg` asks; false when nothing needs drawing again.
    fn handle(&mut self, ctx: &Context<App>, msg: Msg) -> bool {
        let b = &mut self.bench;
        match msg {
            Msg::SetOffset(v) => self.form.offset = v,
            Msg::SetLength(v) => self.form.length = v,
            Msg::SetData(v) => self.form.data = v,
            Msg::SetBlocking(v) => self.blocking = v,
            Msg::Write => b.write(&self.form),
            Msg::WriteSelected => match b.page() {
                Some(p) => b.write_page(p, &self.form.data),
                None => b.set_status(false, "select a page in the grid first (click it, or use the arrow keys)"),
            },
            Msg::Flush { msync } => b.device_op(DeviceOp::Flush { msync, blocking: self.blocking }),
            Msg::MapSync => b.device_op(DeviceOp::MapSync),
            Msg::Wait => match self.wait_ms.trim().parse::<u64>() {
                Ok(ms) => b.wait(ms),
                Err(_) => b.set_status(false, format!("\"{}\" is not a whole number of milliseconds", self.wait_ms)),
            },
            Msg::SetWait(v) => self.wait_ms = v,
            Msg::Crash(kind) => b.crash(kind),
            Msg::InjectFsyncError => b.device_op(DeviceOp::InjectFsyncError),
            Msg::SetWriteback(on) => b.set_background_writeback(on),
            Msg::SetTear(t) => match t.parse::<TearGranularity>() {
                Ok(t) => b.set_tear(t),
                Err(e) => b.set_status(false, e),
            },
            Msg::SetMode(m) => {
                if let Some(m) = ModeChoice::from_key(&m) {
                    b.set_mode(m);
                }
            }
            Msg::SetSeedText(v) => self.seed_text = v,
            Msg::ApplySeed => match self.seed_text.trim().parse::<u64>() {
                Ok(seed) => b.set_seed(seed),
                Err(_) => b.set_status(false, format!("the seed \"{}\" is not a whole number", self.seed_text)),
            },
            Msg::SetHotSize(v) => self.hot_size = v,
            Msg::SetHotMode(v) => self.hot_mode = ModeChoice::from_key(&v).unwrap_or(ModeChoice::VirtioPmem),
            Msg::Hotplug => {
                let size = self.hot_size.clone();
                b.hotplug(&size, self.hot_mode);
            }
            Msg::Unplug => b.device_op(DeviceOp::Unplug),
            Msg::TogglePlay => {
                if self.playing.is_some() {
                    self.stop();
                } else {
                    let link = ctx.link().clone();
                    self.playing = Some(Interval::new(TICK_MS, move || link.send_message(Msg::Tick)));
                    // The first tick comes with the interval: this task
                    // only draws the button.
                }
            }
            Msg::SetSpeed(i) => self.speed = i.min(SPEEDS.len() - 1),
            Msg::Tick => return self.tick(),
            Msg::Back => {
                b.step_event(false);
            }
            Msg::Forward => {
                b.step_event(true);
            }
            Msg::Goto(k) => b.goto(k),
            Msg::SelectDevice(id) => b.select_device(&id),
            Msg::GridClick(x, y, write) => {
                if let Some(p) = b.page_at(x, y) {
                    if write {
                        b.write_page(p, &self.form.data);
                    } else {
                        b.select_page(p);
                        self.form.offset = (p * pmem_core::memory::PAGE_SIZE).to_string();
                    }
                }
            }
            Msg::GridKey(e) => {
                let handled = match e.key().as_str() {
                    "ArrowRight" => {
                        b.move_selection(1);
                        true
                    }
                    "ArrowLeft" => {
                        b.move_selection(-1);
                        true
                    }
                    "ArrowDown" => {
                        let n = b.row_cells();
                        b.move_selection(n);
                        true
                    }
                    "ArrowUp" => {
                        let n = b.row_cells();
                        b.move_selection(-n);
                        true
                    }
                    "+" | "=" => {
                        b.zoom_in();
                        true
                    }
                    "-" | "_" => {
                        b.zoom_out();
                        true
                    }
                    "0" => {
                        b.zoom_all();
                        true
                    }
                    "Enter" | " " => {
                        match b.page() {
                            Some(p) => b.write_page(p, &self.form.data),
                            None => b.move_selection(0),
                        }
                        true
                    }
                    _ => false,
                };
                if handled {
                    e.prevent_default();
                    if let Some(p) = b.page() {
                        self.form.offset = (p * pmem_core::memory::PAGE_SIZE).to_string();
                    }
                } else {
                    return false;
                }
            }
            Msg::ZoomIn => b.zoom_in(),
            Msg::ZoomOut => b.zoom_out(),
            Msg::ZoomAll => b.zoom_all(),
            Msg::SelectPage(p) => {
                b.select_page(p);
                self.form.offset = (p * pmem_core::memory::PAGE_SIZE).to_string();
            }
            Msg::OpenLesson(id) => {
                self.open(Workbench::lesson(id));
                dom::close_details("lessons");
                self.focus = Some("lesson-h");
            }
            Msg::Answer(step, choice) => b.answer_question(step, choice),
            Msg::Playground => self.open(Ok(Workbench::playground())),
            Msg::HashChanged => self.load_fragment(),
            Msg::SetIoText(v) => {
                // The text area shows what is typed: no need to draw again
                // (a redraw per keystroke would make pasting a log slow).
                self.io_text = v;
                return false;
            }
            Msg::ImportScenario => {
                let w = Workbench::import_scenario(&self.io_text);
                let ok = w.is_ok();
                self.open(w);
                if ok {
                    self.bench.set_status(true, "scenario imported");
                }
            }
            Msg::ImportLog => {
                let w = Workbench::import_log(&self.io_text);
                let ok = w.is_ok();
                self.open(w);
                if ok {
                    self.bench.set_status(true, "event log loaded: step through it with Back / Forward");
                }
            }
            Msg::FileChosen(kind, file) => {
                let link = ctx.link().clone();
                let file = gloo::file::File::from(file);
                // Refused unread when it is larger than the tab's input limit.
                let what = match kind {
                    FileKind::Scenario => "the scenario file",
                    FileKind::Log => "the event log file",
                };
                if let Err(e) = pmem_core::budget::Budget::browser().check_input(what, file.size()) {
                    b.set_status(false, e.to_string());
                    return true;
                }
                self.reader = Some(gloo::file::callbacks::read_as_text(&file, move |r| {
                    link.send_message(Msg::FileLoaded(kind, r.map_err(|e| e.to_string())))
                }));
            }
            Msg::FileLoaded(kind, r) => {
                self.reader = None;
                match r {
                    Ok(text) => {
                        self.io_text = text;
                        let next = match kind {
                            FileKind::Scenario => Msg::ImportScenario,
                            FileKind::Log => Msg::ImportLog,
                        };
                        return <Self as Component>::update(self, ctx, next);
                    }
                    Err(e) => b.set_status(false, format!("the file could not be read: {e}")),
                }
            }
            Msg::ExportScenario => {
                if let Some(s) = b.session() {
                    self.io_text = s.to_json();
                    dom::download("scenario.json", &self.io_text);
                }
            }
            Msg::ExportLog => {
                if let Some(s) = b.session() {
                    let text = serde_json::to_string_pretty(s.machine().log()).unwrap_or_default();
                    dom::download("events.json", &text);
                }
            }
            Msg::SetWorkload(w) => self.workload = w,
            Msg::RunCampaign => {
                let (seed, tear) = b.session().map_or((1, TearGranularity::default()), |s| (s.seed(), s.tear()));
                let run = ExplorerRun::run(&self.workload, seed, tear);
                self.point = run.as_ref().ok().and_then(|r| r.counterexample().map(|c| c.0));
                self.point_images = run.as_ref().ok().zip(self.point).map(|(r, p)| (p, r.images(p, 64)));
                self.explorer = Some(run);
            }
            Msg::ShowPoint(i) => {
                self.point = Some(i);
                self.point_images = match &self.explorer {
                    Some(Ok(run)) => Some((i, run.images(i, 64))),
                    _ => None,
                };
            }
            Msg::StepBack => {
                b.back();
            }
            Msg::StepForward => {
                b.forward();
            }
            Msg::QuickWrite => {
                let page = b.page().or_else(|| b.map().pages.last().map(|p| p.0 + 1)).unwrap_or(0);
                let page = page.min(b.map().total_pages.saturating_sub(1));
                b.write_page(page, &self.form.data);
                self.form.offset = (page * pmem_core::memory::PAGE_SIZE).to_string();
            }
            Msg::ZoomFit => b.zoom_fit(),
            Msg::Resized => {
                self.remeasure = !self.measure();
            }
            Msg::SetLevel(l) => {
                self.level = l;
                self.remeasure = true;
            }
            Msg::ConfirmLeave(yes) => {
                let msg = self.confirm.take();
                if let (true, Some(m)) = (yes, msg) {
                    return self.handle(ctx, *m);
                }
                self.focus = Some("lesson-h");
            }
        }
        true
    }

    /// One tick of Play: the next events at the chosen speed; once the log
    /// and the steps are shown to the end, simulated time passes (not in a
    /// lesson, which stops there, nor at a question). Returns whether to
    /// draw: a tick that runs the next step of the simulation (an fsync of
    /// a thousand pages is one step) only runs it, and the next tick draws,
    /// so no frame pays for both.
    fn tick(&mut self) -> bool {
        let (per_tick, wait_ms, _) = SPEEDS[self.speed];
        let b = &mut self.bench;
        let (pos, len) = b.position();
        if !b.behind() && b.pending_question().is_none() && pos < len {
            // The next tick shows its events (when it has more than one).
            let ran = b.step_event(true);
            return !ran || !b.behind();
        }
        for _ in 0..per_tick {
            if b.pending_question().is_some() && !b.behind() {
                self.playing = None;
                b.forward(); // Says why it stopped.
                return true;
            }
            if !b.step_event(true) {
                break;
            }
        }
        let (pos, len) = b.position();
        if b.behind() || pos < len {
            return true;
        }
        if b.session().is_some() && b.current_lesson().is_none() {
            b.wait(wait_ms);
        } else {
            self.playing = None;
        }
        true
    }

    /// Reads the canvas's size into the grid's raster; true when it changed.
    fn measure(&mut self) -> bool {
        let Some(c) = self.canvas.cast::<web_sys::HtmlCanvasElement>() else { return false };
        let (w, h) = (c.client_width(), c.client_height());
        w > 0 && h > 0 && self.bench.set_raster(w as u32, h as u32)
    }

    /// After a message: where the token travels, and where focus goes when
    /// a question appears or is answered.
    fn after(&mut self, before: (usize, usize), asking: bool) {
        let b = &self.bench;
        let (shown, len) = (b.shown(), b.events().len());
        let dev = b.device().to_string();
        self.travel = if shown > before.0 && shown.saturating_sub(before.0) <= 64 || len > before.1 {
            let from = if len > before.1 && shown == len { before.1 } else { before.0 };
            let mut t = trail(b.events(), from, shown, &dev, 12);
            if let Some(p) = crate::diagram::Scene::at(b.events(), from, &dev).place {
                if t.first() != Some(&p) {
                    t.insert(0, p);
                }
            }
            t
        } else {
            Vec::new()
        };
        let now_asking = b.pending_question().is_some() && !b.behind();
        if now_asking && !asking {
            self.focus = Some("lesson-question");
        } else if asking && b.pending_question().is_none() {
            self.focus = Some("lesson-next");
        }
    }
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let link = ctx.link().clone();
        let listener = web_sys::window()
            .map(|w| gloo::events::EventListener::new(&w, "hashchange", move |_| link.send_message(Msg::HashChanged)));
        let link = ctx.link().clone();
        let resize = web_sys::window()
            .map(|w| gloo::events::EventListener::new(&w, "resize", move |_| link.send_message(Msg::Resized)));
        let mut app = App {
            bench: Workbench::playground(),
            form: WriteForm { offset: "0".into(), length: String::new(), data: "hello".into() },
            blocking: true,
            wait_ms: "35000".into(),
            seed_text: "1".into(),
            hot_size: "4G".into(),
            hot_mode: ModeChoice::VirtioPmem,
            speed: 1,
            playing: None,
            io_text: String::new(),
            reader: None,
            workload: "wal-missing-barrier".into(),
            explorer: None,
            point: None,
            point_images: None,
            canvas: NodeRef::default(),
            renderer: crate::grid::GridRenderer::new(),
            last_fragment: String::new(),
            _hash_listener: listener,
            _resize_listener: resize,
            level: Level::Beginner,
            confirm: None,
            focus: None,
            animator: anim::Animator::default(),
            travel: Vec::new(),
            remeasure: true,
            drawn: None,
        };
        app.load_fragment();
        app.sync_url();
        app
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        if self.confirm.is_none() && self.bench.current_lesson().is_some() && leaves_lesson(&msg) {
            self.confirm = Some(Box::new(msg));
            self.focus = Some("btn-stay");
            return true;
        }
        let before = (self.bench.shown(), self.bench.events().len());
        let asking = self.bench.pending_question().is_some();
        let redraw = self.handle(ctx, msg);
        self.after(before, asking);
        self.sync_url();
        redraw
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        views::page(self, ctx)
    }

    fn rendered(&mut self, ctx: &Context<Self>, _first_render: bool) {
        if std::mem::take(&mut self.remeasure) && self.measure() {
            // The grid's raster follows the canvas: draw again at its size.
            ctx.link().send_message(Msg::Resized);
        }
        canvas::draw(&self.canvas, &mut self.renderer, &self.bench, &mut self.drawn);
        if !self.travel.is_empty() {
            let points = std::mem::take(&mut self.travel).into_iter().map(Place::anchor).collect();
            let max = if self.playing.is_some() { f64::from(TICK_MS) * 0.8 } else { anim::MAX_TRAVEL_MS };
            self.animator.travel(points, max);
        }
        if let Some(id) = self.focus.take() {
            dom::focus(id);
        }
    }
}

/// Names of the built-in workloads, for the explorer's picker.
fn workload_names() -> Vec<(&'static str, &'static str)> {
    workloads().into_iter().map(|w| (w.name, w.description)).collect()
}

/// Starts the app (or the bench page, for `#bench`).
pub fn start() {
    let is_bench = matches!(Link::parse(&dom::fragment()), Ok(Some(Link { source: LinkSource::Bench, .. })));
    if is_bench {
        yew::Renderer::<bench::BenchPage>::new().render();
    } else {
        yew::Renderer::<App>::new().render();
    }
}
