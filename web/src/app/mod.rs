//! The yew component: it turns messages into calls on the
//! [`Workbench`](crate::workbench::Workbench) and draws what it exposes.
//! Only this module (compiled for wasm32 only) knows about yew and the DOM.

mod bench;
mod canvas;
mod dom;
mod views;

use crate::explorer::{workloads, ExplorerRun};
use crate::link::{Link, Source as LinkSource};
use crate::session::ModeChoice;
use crate::workbench::{DeviceOp, Workbench, WriteForm};
use gloo::file::callbacks::FileReader;
use gloo::timers::callback::Interval;
use pmem_core::event::CrashKind;
use pmem_core::host::TearGranularity;
use yew::prelude::*;

/// Simulated time one tick of "play" lets pass, by speed setting.
pub const SPEEDS: [(u64, &str); 4] =
    [(100, "0.1 s per tick"), (1_000, "1 s per tick"), (5_000, "5 s per tick"), (30_000, "30 s per tick")];

/// Real time between ticks while playing.
pub const TICK_MS: u32 = 700;

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
    /// Step back (replay from the seed).
    Back,
    /// Step forward.
    Forward,
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
    canvas: NodeRef,
    renderer: crate::grid::GridRenderer,
    last_fragment: String,
    _hash_listener: Option<gloo::events::EventListener>,
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
        let Some(link) = self.bench.link() else { return };
        let frag = link.to_fragment();
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
        match Link::parse(&frag) {
            Ok(Some(link)) if link.source != LinkSource::Bench => self.open(Workbench::from_link(&link)),
            Ok(_) => {}
            Err(e) => self.bench.set_status(false, e),
        }
        self.last_fragment = frag.trim_start_matches('#').to_string();
    }
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let link = ctx.link().clone();
        let listener = web_sys::window()
            .map(|w| gloo::events::EventListener::new(&w, "hashchange", move |_| link.send_message(Msg::HashChanged)));
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
            canvas: NodeRef::default(),
            renderer: crate::grid::GridRenderer::new(),
            last_fragment: String::new(),
            _hash_listener: listener,
        };
        app.load_fragment();
        app.sync_url();
        app
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
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
                }
            }
            Msg::SetSpeed(i) => self.speed = i.min(SPEEDS.len() - 1),
            Msg::Tick => {
                let (pos, len) = b.position();
                if b.pending_question().is_some() {
                    self.playing = None;
                    b.forward(); // Says why it stopped.
                } else if pos < len {
                    b.forward();
                } else if b.session().is_some() {
                    b.wait(SPEEDS[self.speed].0);
                } else {
                    self.playing = None;
                }
            }
            Msg::Back => {
                b.back();
            }
            Msg::Forward => {
                b.forward();
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
            Msg::OpenLesson(id) => self.open(Workbench::lesson(id)),
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
                self.explorer = Some(run);
            }
            Msg::ShowPoint(i) => self.point = Some(i),
        }
        self.sync_url();
        true
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        views::page(self, ctx)
    }

    fn rendered(&mut self, _ctx: &Context<Self>, _first_render: bool) {
        canvas::draw(&self.canvas, &mut self.renderer, &self.bench);
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
