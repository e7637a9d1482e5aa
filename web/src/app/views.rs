//! The page's HTML, drawn from the workbench's state.

use super::{diagram_view, dom, workload_names, App, FileKind, Msg, SPEEDS};
use crate::disclosure::Level;
use crate::hexview::{dump, HexLine};
use crate::lessons::LESSONS;
use crate::palette::CellState;
use crate::rings::{status_names, RingView};
use crate::session::ModeChoice;
use crate::timeline::{lane, last_flush_journey};
use crate::workbench::{Origin, View};
use pmem_core::event::CrashKind;
use pmem_core::event::Event as SimEvent;
use pmem_core::host::TearGranularity;
use pmem_core::memory::PAGE_SIZE;
use pmem_core::size::human_size;
use web_sys::{HtmlCanvasElement, HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

fn input_value(e: &Event) -> String {
    e.target_unchecked_into::<HtmlInputElement>().value()
}

fn select_value(e: &Event) -> String {
    e.target_unchecked_into::<HtmlSelectElement>().value()
}

/// The whole page: the diagram with the six beginner controls and the
/// grid always; beside them the lesson and the events; the expert panels
/// below when asked for.
pub fn page(app: &App, ctx: &Context<App>) -> Html {
    let status = app.bench.status();
    let status_class = classes!(
        "status",
        status.map(|s| if s.loss {
            "loss"
        } else if s.ok {
            "ok"
        } else {
            "bad"
        })
    );
    let expert = app.level == Level::Expert;
    let pointed = lesson_points_at(app);
    html! {
        <>
        <header class="top">
            <h1>{ "pmemlab" }<span class="sub">{ " — watch virtio-pmem writes reach the disk, or not" }</span></h1>
            { origin_banner(app, ctx) }
            <nav class="views" aria-label="Lessons and views">
                { lessons_menu(app, ctx) }
                <button type="button" id="btn-level" aria-pressed={if expert { "true" } else { "false" }}
                    onclick={ctx.link().callback(move |_| Msg::SetLevel(if expert { Level::Beginner } else { Level::Expert }))}>
                    { if expert { "Expert view (every panel)" } else { "Expert view: show every panel" } }</button>
            </nav>
        </header>
        { confirm_dialog(app, ctx) }
        <div id="status" role="status" aria-live="polite" class={status_class}>
            { for status.map(|s| html! { <pre>{ &s.text }</pre> }) }
        </div>
        <main class={classes!("stage", expert.then_some("expert"))}>
            <div class="stage-main">
                <section id="system-panel" class="panel" aria-labelledby="system-h">
                    <h2 id="system-h" class="visually-hidden">{ "The system" }</h2>
                    { diagram_view::diagram(&app.bench, pointed) }
                    { beginner_bar(app, ctx) }
                </section>
                { grid_panel(app, ctx, expert) }
                { bytes_panel(app, ctx) }
            </div>
            <aside class="stage-side" aria-label="Lesson and events">
                { lesson_box(app, ctx, pointed) }
                { timeline(app, expert) }
            </aside>
        </main>
        { if expert { html! {
            <div class="expert-panels" id="expert-panels">
                { controls(app, ctx) }
                { steps_panel(app, ctx) }
                { device_panel(app, ctx) }
                { explorer(app, ctx) }
                { sharing(app, ctx) }
            </div>
        } } else { html! {} } }
        </>
    }
}

/// The component the lesson's current note talks about.
fn lesson_points_at(app: &App) -> Option<crate::diagram::Place> {
    let b = &app.bench;
    b.current_lesson()?;
    let s = b.session()?;
    let note = s.cursor().checked_sub(1).and_then(|i| s.note(i))?;
    crate::lessons::points_at(note)
}

/// The six controls of the beginner view (also shown in the expert one).
fn beginner_bar(app: &App, ctx: &Context<App>) -> Html {
    let link = ctx.link();
    let b = &app.bench;
    let no_live = b.session().is_none();
    let (pos, len) = b.position();
    let (shown, events) = (b.shown(), b.events().len());
    let at_start = shown == 0 && pos == 0;
    let at_end = shown >= events && pos >= len;
    let playing = app.playing.is_some();
    html! {
        <div class="bar" id="beginner-controls" role="toolbar" aria-label="Simulation">
            <button type="button" id="btn-quick-write" disabled={no_live} onclick={link.callback(|_| Msg::QuickWrite)}
                title="The application stores a record (into the selected page, or the next one)">{ "✎ Write" }</button>
            <button type="button" id="btn-fsync" disabled={no_live} onclick={link.callback(|_| Msg::Flush { msync: false })}
                title="The application asks for durability: a flush request to the device">{ "fsync" }</button>
            <button type="button" id="btn-power" class="danger" disabled={no_live}
                onclick={link.callback(|_| Msg::Crash(CrashKind::PowerFailure))}>{ "⚡ Power failure" }</button>
            <span class="sep" aria-hidden="true"></span>
            <button type="button" id="btn-back" disabled={at_start} onclick={link.callback(|_| Msg::Back)}
                aria-label="One event back">{ "◀ Event" }</button>
            <button type="button" id="btn-forward" disabled={at_end || (b.pending_question().is_some() && shown >= events)}
                onclick={link.callback(|_| Msg::Forward)} aria-label="One event forward">{ "Event ▶" }</button>
            <button type="button" id="btn-play" aria-pressed={if playing { "true" } else { "false" }}
                onclick={link.callback(|_| Msg::TogglePlay)}>{ if playing { "❚❚ Pause" } else { "▶ Play" } }</button>
            <span class="where">
                <span id="position">{ match b.view() {
                    View::Live(_) => format!("step {pos} of {len}"),
                    View::Replay(_) => format!("event {pos} of {len}"),
                } }</span>
                { " · " }<span id="event-position">{ format!("event {shown} of {events}") }</span>
            </span>
        </div>
    }
}

fn lessons_menu(app: &App, ctx: &Context<App>) -> Html {
    let current = match app.bench.origin() {
        Origin::Lesson(id) => Some(*id),
        _ => None,
    };
    html! {
        <details class="lessons-menu" id="lessons">
            <summary id="lessons-summary">{ "Lessons" }</summary>
            <ol class="lesson-list">
                { for LESSONS.iter().map(|l| {
                    let id = l.id;
                    html! {
                        <li><button type="button" class="lesson-btn" data-lesson={id}
                            aria-current={if current == Some(id) { "true" } else { "false" }}
                            onclick={ctx.link().callback(move |_| Msg::OpenLesson(id))}>{ l.title }</button></li>
                    }
                }) }
            </ol>
        </details>
    }
}

/// Asks before an action leaves the lesson.
fn confirm_dialog(app: &App, ctx: &Context<App>) -> Html {
    if app.confirm.is_none() {
        return html! {};
    }
    let link = ctx.link();
    html! {
        <div class="confirm" id="leave-dialog" role="alertdialog" aria-modal="false"
            aria-labelledby="leave-h" aria-describedby="leave-text">
            <h2 id="leave-h">{ "Leave the lesson?" }</h2>
            <p id="leave-text">{ "This action changes the lesson's scenario: the lesson ends here and you continue in the playground with what it did so far." }</p>
            <div class="buttons">
                <button type="button" id="btn-stay" onclick={link.callback(|_| Msg::ConfirmLeave(false))}>{ "Stay in the lesson" }</button>
                <button type="button" id="btn-leave" class="danger" onclick={link.callback(|_| Msg::ConfirmLeave(true))}>{ "Leave and do it" }</button>
            </div>
        </div>
    }
}

fn origin_banner(app: &App, ctx: &Context<App>) -> Html {
    let b = &app.bench;
    let (what, name) = match (b.origin(), b.view()) {
        (Origin::Lesson(_), View::Live(s)) => ("Lesson", s.scenario().name().to_string()),
        (Origin::Playground, _) => ("Playground", String::new()),
        (Origin::Custom, View::Live(s)) => ("Scenario", s.scenario().name().to_string()),
        (Origin::Log, View::Replay(r)) => ("Replaying an event log", format!("{} events", r.events().len())),
        _ => ("", String::new()),
    };
    html! {
        <p class="origin" id="origin">
            <strong>{ what }</strong>{ if name.is_empty() { String::new() } else { format!(": {name}") } }
            { if *b.origin() != Origin::Playground {
                html! { <button type="button" id="btn-playground" onclick={ctx.link().callback(|_| Msg::Playground)}>{ "Back to the playground" }</button> }
            } else { html! {} } }
        </p>
    }
}

fn controls(app: &App, ctx: &Context<App>) -> Html {
    let link = ctx.link();
    let b = &app.bench;
    let live = b.session();
    let no_live = live.is_none();
    let dev = b.device().to_string();
    let (pos, len) = b.position();
    let mode = live.and_then(|s| s.device_mode(&dev)).unwrap_or(ModeChoice::VirtioPmem);
    let tear = live.map(|s| s.tear()).unwrap_or_default();
    let writeback = live.is_some_and(|s| s.background_writeback());
    let devices = b.devices();
    html! {
        <section id="controls" class="panel" aria-labelledby="controls-h">
            <h2 id="controls-h">{ "Controls" }</h2>
            <fieldset>
                <legend>{ "Guest application" }</legend>
                <label for="device">{ "Device" }</label>
                <select id="device" onchange={link.callback(|e: Event| Msg::SelectDevice(select_value(&e)))}>
                    { for devices.iter().map(|(id, size)| html! {
                        <option value={id.clone()} selected={*id == dev}>{ format!("{id} ({})", human_size(*size)) }</option>
                    }) }
                </select>
                <label for="write-offset">{ "Offset (bytes, 0x…, or 4K)" }</label>
                <input id="write-offset" value={app.form.offset.clone()} disabled={no_live}
                    onchange={link.callback(|e: Event| Msg::SetOffset(input_value(&e)))} />
                <label for="write-length">{ "Length (optional: repeat the data to fill it)" }</label>
                <input id="write-length" value={app.form.length.clone()} placeholder="e.g. 8K" disabled={no_live}
                    onchange={link.callback(|e: Event| Msg::SetLength(input_value(&e)))} />
                <label for="write-data">{ "Data (text, or hex:dead…)" }</label>
                <input id="write-data" value={app.form.data.clone()} disabled={no_live}
                    onchange={link.callback(|e: Event| Msg::SetData(input_value(&e)))} />
                <div class="buttons">
                    <button type="button" id="btn-write" disabled={no_live} onclick={link.callback(|_| Msg::Write)}>{ "Write" }</button>
                    <button type="button" id="btn-write-page" disabled={no_live || b.page().is_none()}
                        onclick={link.callback(|_| Msg::WriteSelected)}>
                        { match b.page() { Some(p) => format!("Write to page {p}"), None => "Write to selected page".into() } }
                    </button>
                </div>
                <div class="buttons">
                    <button type="button" id="btn-msync" disabled={no_live} onclick={link.callback(|_| Msg::Flush { msync: true })}>{ "msync(MS_SYNC)" }</button>
                    <button type="button" id="btn-mapsync" disabled={no_live} onclick={link.callback(|_| Msg::MapSync)}>{ "mmap(MAP_SYNC)" }</button>
                </div>
                <label class="check"><input type="checkbox" id="chk-blocking" checked={app.blocking} disabled={no_live}
                    onchange={link.callback(|e: Event| Msg::SetBlocking(e.target_unchecked_into::<HtmlInputElement>().checked()))} />
                    { " fsync waits for the device's answer (fsync is in the bar under the diagram)" }</label>
            </fieldset>
            <fieldset>
                <legend>{ "Time" }</legend>
                <p class="help">{ "The bar under the diagram steps one event at a time; these buttons step a whole operation." }</p>
                <div class="buttons">
                    <button type="button" id="btn-step-back" disabled={pos == 0} onclick={link.callback(|_| Msg::StepBack)}
                        title="Replays the scenario from its seed, one step less">{ "◀ Previous operation" }</button>
                    <button type="button" id="btn-step-forward" disabled={pos >= len && !b.behind()} onclick={link.callback(|_| Msg::StepForward)}>{ "Next operation ▶" }</button>
                </div>
                <label for="sel-speed">{ "Play speed (events per tick; simulated time per tick once every step has run)" }</label>
                <select id="sel-speed" onchange={link.callback(|e: Event| Msg::SetSpeed(select_value(&e).parse().unwrap_or(1)))}>
                    { for SPEEDS.iter().enumerate().map(|(i, (_, _, label))| html! {
                        <option value={i.to_string()} selected={i == app.speed}>{ *label }</option>
                    }) }
                </select>
                <label for="wait-ms">{ "Let time pass (ms)" }</label>
                <div class="inline">
                    <input id="wait-ms" value={app.wait_ms.clone()} disabled={no_live} inputmode="numeric"
                        onchange={link.callback(|e: Event| Msg::SetWait(input_value(&e)))} />
                    <button type="button" id="btn-wait" disabled={no_live} onclick={link.callback(|_| Msg::Wait)}>{ "Wait" }</button>
                </div>
            </fieldset>
            <fieldset>
                <legend>{ "Failures" }</legend>
                <p class="help">{ "Host power failure is in the bar under the diagram." }</p>
                <div class="buttons">
                    <button type="button" id="btn-guest-crash" disabled={no_live} onclick={link.callback(|_| Msg::Crash(CrashKind::GuestCrash))}>{ "Guest kernel crash" }</button>
                    <button type="button" id="btn-vmm-kill" disabled={no_live} onclick={link.callback(|_| Msg::Crash(CrashKind::VmmKill))}>{ "Kill the VMM" }</button>
                    <button type="button" id="btn-inject" disabled={no_live} onclick={link.callback(|_| Msg::InjectFsyncError)}>{ "Next host fsync fails (EIO)" }</button>
                </div>
            </fieldset>
            <fieldset>
                <legend>{ "Host and devices (the run is replayed from its seed)" }</legend>
                <label class="check"><input type="checkbox" id="chk-writeback" checked={writeback} disabled={no_live}
                    onchange={link.callback(|e: Event| Msg::SetWriteback(e.target_unchecked_into::<HtmlInputElement>().checked()))} />
                    { " Background writeback (host flusher)" }</label>
                <label for="sel-tear">{ "Tear granularity on power failure" }</label>
                <select id="sel-tear" disabled={no_live} onchange={link.callback(|e: Event| Msg::SetTear(select_value(&e)))}>
                    { for TearGranularity::ALL.iter().map(|t| html! {
                        <option value={t.to_string()} selected={*t == tear}>{ tear_label(*t) }</option>
                    }) }
                </select>
                <label for="sel-mode">{ format!("Kind of device {dev}") }</label>
                <select id="sel-mode" disabled={no_live} onchange={link.callback(|e: Event| Msg::SetMode(select_value(&e)))}>
                    { for ModeChoice::ALL.iter().map(|m| html! {
                        <option value={m.key()} selected={*m == mode}>{ m.label() }</option>
                    }) }
                </select>
                <label for="seed">{ "Seed" }</label>
                <div class="inline">
                    <input id="seed" value={app.seed_text.clone()} disabled={no_live} inputmode="numeric"
                        onchange={link.callback(|e: Event| Msg::SetSeedText(input_value(&e)))} />
                    <button type="button" id="btn-seed" disabled={no_live} onclick={link.callback(|_| Msg::ApplySeed)}>{ "Replay with this seed" }</button>
                </div>
                <label for="hot-size">{ "New device: size" }</label>
                <select id="hot-size" disabled={no_live} onchange={link.callback(|e: Event| Msg::SetHotSize(select_value(&e)))}>
                    { for ["64M", "1G", "4G", "16G"].iter().map(|s| html! {
                        <option value={*s} selected={app.hot_size == *s}>{ *s }</option>
                    }) }
                </select>
                <label for="hot-mode">{ "New device: kind" }</label>
                <select id="hot-mode" disabled={no_live} onchange={link.callback(|e: Event| Msg::SetHotMode(select_value(&e)))}>
                    { for ModeChoice::ALL.iter().map(|m| html! {
                        <option value={m.key()} selected={*m == app.hot_mode}>{ m.label() }</option>
                    }) }
                </select>
                <div class="buttons">
                    <button type="button" id="btn-hotplug" disabled={no_live} onclick={link.callback(|_| Msg::Hotplug)}
                        title="object_add memory-backend-file + device_add virtio-pmem-pci">{ "Hot-plug a device" }</button>
                    <button type="button" id="btn-unplug" disabled={no_live} onclick={link.callback(|_| Msg::Unplug)}
                        title="device_del: QEMU refuses it for virtio-pmem">{ format!("Try to remove {dev}") }</button>
                </div>
            </fieldset>
        </section>
    }
}

fn tear_label(t: TearGranularity) -> &'static str {
    match t {
        TearGranularity::Store8 => "8 B (CPU store)",
        TearGranularity::CacheLine64 => "64 B (cache line)",
        TearGranularity::Sector512 => "512 B (disk sector)",
        TearGranularity::Page4K => "4 KiB (whole page)",
    }
}

/// A step as the lesson shows it before it runs: a check's expected
/// value would give its outcome away, so only its kind is named.
fn step_preview(step: &pmem_core::scenario::Step) -> String {
    use pmem_core::scenario::Op;
    match &step.op {
        Op::ExpectData { device, .. } => format!("check what the guest reads on {device}"),
        Op::ExpectDurable { device, .. } => format!("check what the disk of {device} holds"),
        Op::ExpectFlush { device, .. } => format!("check how the last flush on {device} ended"),
        _ => step.to_string(),
    }
}

fn lesson_box(app: &App, ctx: &Context<App>, pointed: Option<crate::diagram::Place>) -> Html {
    let b = &app.bench;
    let (Some(lesson), Some(s)) = (b.current_lesson(), b.session()) else { return html! {} };
    let link = ctx.link();
    let cursor = s.cursor();
    let note = if cursor == 0 { None } else { s.note(cursor - 1) };
    let next = s.step(cursor).map(step_preview);
    let question = lesson.question_before(cursor).filter(|_| !b.behind());
    html! {
        <section id="lesson" class="panel lesson" aria-labelledby="lesson-h">
            <h2 id="lesson-h" tabindex="-1">{ lesson.title }</h2>
            <p class="lesson-desc">{ s.scenario().description() }</p>
            <p class="lesson-progress">{ format!("Step {cursor} of {}", s.len()) }</p>
            { for note.map(|n| html! {
                <p class="lesson-note" id="lesson-note">
                    { for pointed.map(|p| html! { <span class="points-at" data-place={p.key()}>{ format!("→ {}: ", p.label()) }</span> }) }
                    { n }
                </p>
            }) }
            { for question.map(|q| question_box(b, q, link)) }
            { match next {
                Some(n) => html! {
                    <p class="lesson-next-line">{ "Next: " }<code>{ n }</code>{ " " }
                        <button type="button" id="lesson-next" disabled={b.pending_question().is_some() && !b.behind()}
                            onclick={link.callback(|_| Msg::StepForward)}>{ "Run the next step ▶" }</button></p>
                },
                None => html! { <p class="lesson-done" id="lesson-done">{ "End of the lesson. Step back, change a knob (seed, writeback, tear, device kind) and replay, or pick another lesson." }</p> },
            } }
        </section>
    }
}

/// A lesson's question: a wrong choice is marked, explained with a hint
/// and disabled, the others stay open; the right one gives the reason.
fn question_box(
    b: &crate::workbench::Workbench,
    q: &'static crate::lessons::Question,
    link: &yew::html::Scope<App>,
) -> Html {
    let tried = b.tried(q.before_step);
    let right = tried.contains(&q.answer);
    let last = tried.last().copied();
    html! {
        <div class="question" id="lesson-question" role="group" aria-labelledby="q-prompt" tabindex="-1">
            <p id="q-prompt"><strong>{ "Question: " }</strong>{ q.prompt }</p>
            <div class="choices">
                { for q.choices.iter().enumerate().map(|(i, c)| {
                    let step = q.before_step;
                    let wrong = tried.contains(&i) && i != q.answer;
                    let class = classes!("choice", (right && i == q.answer).then_some("right"), wrong.then_some("wrong"));
                    html! {
                        <button type="button" class={class} data-choice={i.to_string()} disabled={wrong || right}
                            aria-pressed={if last == Some(i) { "true" } else { "false" }}
                            onclick={link.callback(move |_| Msg::Answer(step, i))}>
                            { *c }{ if wrong { " — not this one" } else { "" } }</button>
                    }
                }) }
            </div>
            { match last {
                Some(a) if a == q.answer => html! {
                    <p class="answer right" id="lesson-answer"><strong>{ "Right. " }</strong>{ q.why }</p>
                },
                Some(_) => html! {
                    <p class="answer wrong" id="lesson-answer"><strong>{ "Not quite — try again. " }</strong>{ q.hint }</p>
                },
                None => html! {},
            } }
        </div>
    }
}

fn grid_panel(app: &App, ctx: &Context<App>, expert: bool) -> Html {
    let link = ctx.link();
    let b = &app.bench;
    let map = b.map();
    let counts = map.counts();
    let vp = b.viewport();
    let layout = b.layout();
    let (rows, in_view) = b.rows_in_view(64);
    let dev = b.device().to_string();
    let summary = format!("Page grid of {dev}: {}", counts.summary());
    let (rw, rh) = b.raster();
    let onclick = link.callback(move |e: MouseEvent| {
        let c: HtmlCanvasElement = e.target_unchecked_into();
        let sx = f64::from(rw) / f64::from(c.client_width().max(1));
        let sy = f64::from(rh) / f64::from(c.client_height().max(1));
        Msg::GridClick(f64::from(e.offset_x()) * sx, f64::from(e.offset_y()) * sy, e.shift_key())
    });
    let onkeydown = link.callback(Msg::GridKey);
    html! {
        <section id="grid" class="panel" aria-labelledby="grid-h">
            <h2 id="grid-h">{ format!("Host page cache of {dev}'s backing file") }</h2>
            { if expert { html! {
            <>
            <div class="device-tabs" role="group" aria-label="Device">
                { for b.devices().into_iter().map(|(id, size)| {
                    let sel = id == dev;
                    let target = id.clone();
                    html! {
                        <button type="button" class="tab" aria-pressed={if sel { "true" } else { "false" }} data-device={id.clone()}
                            onclick={link.callback(move |_| Msg::SelectDevice(target.clone()))}>{ format!("{id} · {}", human_size(size)) }</button>
                    }
                }) }
            </div>
            <div class="zoom buttons">
                <button type="button" id="btn-zoom-in" onclick={link.callback(|_| Msg::ZoomIn)} aria-label="Zoom in">{ "+ Zoom in" }</button>
                <button type="button" id="btn-zoom-out" onclick={link.callback(|_| Msg::ZoomOut)} aria-label="Zoom out">{ "− Zoom out" }</button>
                <button type="button" id="btn-zoom-all" onclick={link.callback(|_| Msg::ZoomAll)}>{ "Whole device" }</button>
                <button type="button" id="btn-zoom-fit" aria-pressed={if b.fitting() { "true" } else { "false" }}
                    onclick={link.callback(|_| Msg::ZoomFit)}>{ "Fit the written pages" }</button>
            </div>
            </>
            } } else { html! {} } }
            <p class="range" id="grid-range">{ format!(
                "pages {}–{} of {}, {}{}",
                vp.first,
                vp.first + vp.span - 1,
                map.total_pages,
                if layout.pages_per_cell == 1 { format!("one page per {} px cell", layout.cell_px) } else { format!("{} pages per pixel (the worst state shows)", layout.pages_per_cell) },
                if b.fitting() { " — fitted to the written pages" } else { "" }
            ) }</p>
            <canvas id="grid-canvas" ref={app.canvas.clone()} width={rw.to_string()} height={rh.to_string()}
                tabindex="0" role="img" aria-label={summary.clone()} aria-describedby="grid-help"
                onclick={onclick} onkeydown={onkeydown}></canvas>
            <p id="grid-help" class="help">{ "Click a page to select it (shift-click writes to it). On the grid: arrow keys move the selection, Enter writes the data to it, + and − zoom, 0 shows the whole device." }</p>
            <ul class="legend" id="counts" aria-label="Pages per state">
                { for CellState::ALL.iter().rev().map(|s| html! {
                    <li data-state={s.key()} title={s.meaning()}>
                        <span class="swatch" style={format!("background:{}", s.css_color())} aria-hidden="true"></span>
                        <span class="name">{ s.name() }</span>{ ": " }<span class="count">{ counts.get(*s) }</span>
                    </li>
                }) }
            </ul>
            { if expert { html! {
            <table id="page-table" class="pages">
                <caption>{ format!("Written pages in view: {in_view}{}", if in_view > rows.len() { format!(" (first {} shown)", rows.len()) } else { String::new() }) }</caption>
                <thead><tr><th scope="col">{ "page" }</th><th scope="col">{ "offset" }</th><th scope="col">{ "state" }</th></tr></thead>
                <tbody>
                    { for rows.iter().map(|(p, s)| {
                        let p = *p;
                        html! {
                            <tr data-page={p.to_string()} data-state={s.key()} class={classes!(s.key(), (b.page() == Some(p)).then_some("selected"))}>
                                <td><button type="button" class="linkish" onclick={link.callback(move |_| Msg::SelectPage(p))}>{ p }</button></td>
                                <td>{ format!("{:#x}", p * PAGE_SIZE) }</td>
                                <td>{ s.name() }</td>
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
            } } else { html! {} } }
        </section>
    }
}

fn bytes_panel(app: &App, _ctx: &Context<App>) -> Html {
    let b = &app.bench;
    let counts = b.map().counts();
    let durable = counts.get(CellState::Clean) + counts.get(CellState::OnDisk);
    let at_risk: u64 = CellState::ALL.iter().filter(|s| s.at_risk()).map(|s| counts.get(*s)).sum();
    let body = match b.page_bytes() {
        None => html! { <p>{ "Select a page in the grid to see its bytes." }</p> },
        Some((page, cache, disk)) => {
            let d = dump(page, &cache, &disk);
            html! {
                <>
                <p id="hex-summary">{ format!("Page {page} ({}): {}", b.map().state(page).name(), page_verdict(b.map().state(page), d.differing)) }</p>
                <table class="hex" id="hex">
                    <caption>{ format!("Bytes of page {page}; {} all-zero lines left out", d.zero_lines) }</caption>
                    <thead><tr>
                        <th scope="col">{ "offset" }</th>
                        <th scope="col">{ "guest view (host page cache)" }</th>
                        <th scope="col">{ "host disk (durable)" }</th>
                        <th scope="col">{ "text (guest | disk)" }</th>
                    </tr></thead>
                    <tbody>
                        { for d.lines.iter().map(|l| html! {
                            <tr>
                                <td>{ format!("{:04x}", l.offset) }</td>
                                <td class="bytes">{ for l.cache.iter().enumerate().map(|(i, v)| byte(*v, l.differs(i))) }</td>
                                <td class="bytes">{ for l.disk.iter().enumerate().map(|(i, v)| byte(*v, l.differs(i))) }</td>
                                <td class="ascii">{ format!("{} | {}", HexLine::ascii(&l.cache), HexLine::ascii(&l.disk)) }</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
                </>
            }
        }
    };
    let change = b.crash_change().map(|c| {
        let d = dump(c.page, &c.before, &c.after);
        html! {
            <table class="hex" id="crash-change">
                <caption>{ format!(
                    "What the failure (event {}) did to page {}: {} byte(s) changed; {} all-zero lines left out",
                    c.event, c.page, d.differing, d.zero_lines
                ) }</caption>
                <thead><tr>
                    <th scope="col">{ "offset" }</th>
                    <th scope="col">{ "before: what the guest read" }</th>
                    <th scope="col">{ "after: what the disk holds" }</th>
                    <th scope="col">{ "text (before | after)" }</th>
                </tr></thead>
                <tbody>
                    { for d.lines.iter().map(|l| html! {
                        <tr>
                            <td>{ format!("{:04x}", l.offset) }</td>
                            <td class="bytes">{ for l.cache.iter().enumerate().map(|(i, v)| byte(*v, l.differs(i))) }</td>
                            <td class="bytes">{ for l.disk.iter().enumerate().map(|(i, v)| byte(*v, l.differs(i))) }</td>
                            <td class="ascii">{ format!("{} | {}", HexLine::ascii(&l.cache), HexLine::ascii(&l.disk)) }</td>
                        </tr>
                    }) }
                </tbody>
            </table>
        }
    });
    html! {
        <section id="bytes" class="panel" aria-labelledby="bytes-h">
            <h2 id="bytes-h">{ "Disk and bytes" }</h2>
            <p id="disk-summary">{ format!(
                "On the host's disk: {durable} page(s) durable. At risk now (a power failure would lose or has lost them): {at_risk} page(s)."
            ) }</p>
            { body }
            { for change }
        </section>
    }
}

fn page_verdict(state: CellState, differing: usize) -> String {
    match (state, differing) {
        (CellState::Lost, _) => {
            "its newest bytes never reached the disk; the guest now reads what the disk held".into()
        }
        (CellState::Torn, _) => "the power failure hit during its writeback: the disk holds part old, part new".into(),
        (CellState::CleanNotDurable, _) => {
            "the host marked it clean after a failed write: the guest reads bytes the disk does not hold".into()
        }
        (_, 0) => "the guest's view equals the disk".into(),
        (_, n) => format!("{n} byte(s) differ from the disk — not durable yet"),
    }
}

fn byte(v: u8, differs: bool) -> Html {
    if differs {
        html! { <><mark>{ format!("{v:02x}") }</mark>{ " " }</> }
    } else {
        html! { { format!("{v:02x} ") } }
    }
}

fn steps_panel(app: &App, ctx: &Context<App>) -> Html {
    let link = ctx.link();
    let Some(s) = app.bench.session() else {
        return html! {
            <section id="steps" class="panel"><h2>{ "Guest operations" }</h2>
            <p>{ "A replayed log has no steps: Back and Forward move from one guest operation or failure to the next." }</p></section>
        };
    };
    let cursor = s.cursor();
    let outcomes = s.outcomes();
    html! {
        <section id="steps" class="panel" aria-labelledby="steps-h">
            <h2 id="steps-h">{ "Guest operations (scenario steps)" }</h2>
            <ol class="steps" start="0">
                <li class={classes!("step", (cursor == 0).then_some("current"))}>
                    <button type="button" class="linkish" onclick={link.callback(|_| Msg::Goto(0))}>{ "start: devices plugged in" }</button>
                </li>
                { for (0..s.len()).map(|i| {
                    let outcome = outcomes.get(i);
                    let state = match outcome { Some(o) if o.ok => "done", Some(_) => "failed", None => "future" };
                    let text = s.step(i).map(ToString::to_string).unwrap_or_default();
                    html! {
                        <li class={classes!("step", state, (cursor == i + 1).then_some("current"))} data-step={(i + 1).to_string()}>
                            <button type="button" class="linkish" onclick={link.callback(move |_| Msg::Goto(i + 1))}
                                aria-label={format!("go to after step {i}: {text}")}>{ &text }</button>
                            { for outcome.map(|o| html! { <span class="detail">{ format!(" — {} {}", if o.ok { "✓" } else { "✗" }, o.detail) }</span> }) }
                        </li>
                    }
                }) }
            </ol>
        </section>
    }
}

fn device_panel(app: &App, _ctx: &Context<App>) -> Html {
    let b = &app.bench;
    let Some(s) = b.session() else {
        return html! {
            <section id="device" class="panel"><h2>{ "Device and virtqueue" }</h2>
            <p>{ "An event log holds events, not guest memory: the rings cannot be drawn for a replayed log." }</p></section>
        };
    };
    let m = s.machine();
    let dev = b.device();
    let Ok(snap) = m.device_snapshot(dev) else { return html! {} };
    let rings = RingView::of_device(m, dev).ok();
    let journey = last_flush_journey(m.log().events(), dev);
    let mode = s.device_mode(dev).map(|m| m.label()).unwrap_or("?");
    html! {
        <section id="device" class="panel" aria-labelledby="device-h">
            <h2 id="device-h">{ format!("Device {dev} and its virtqueue") }</h2>
            <dl class="facts">
                <dt>{ "kind" }</dt><dd id="device-mode">{ mode }</dd>
                <dt>{ "region" }</dt><dd>{ format!("{} + {} ({})", snap.config.start, format_args!("{:#x}", snap.config.size), human_size(snap.config.size)) }</dd>
                <dt>{ "status" }</dt><dd>{ status_names(snap.status) }</dd>
                <dt>{ "flushes" }</dt><dd>{ format!("{} ok, {} failed; host fsyncs {} started, {} ok, {} failed", snap.stats.flushes_ok, snap.stats.flushes_failed, snap.host.syncs_started, snap.host.syncs_ok, snap.host.syncs_failed) }</dd>
                <dt>{ "simulated time" }</dt><dd id="sim-time">{ m.now().to_string() }</dd>
            </dl>
            { match journey {
                Some(j) => html! {
                    <>
                    <h3>{ format!("Journey of flush #{}", j.request.0) }</h3>
                    <ol class="journey" id="journey">
                        { for j.stages.iter().map(|st| html! {
                            <li class={if st.at.is_some() { "reached" } else { "pending" }}>
                                { if st.at.is_some() { "✓ " } else { "· " } }{ st.label }
                                { for st.at.map(|(seq, at)| html! { <span class="when">{ format!(" (event {seq}, {at})") }</span> }) }
                            </li>
                        }) }
                    </ol>
                    </>
                },
                None => html! { <p>{ "No flush yet: press fsync to watch a request travel through the rings." }</p> },
            } }
            { for rings.map(|r| rings_view(&r)) }
            <h3>{ "Memory footprint of the data cached now" }</h3>
            <table class="footprint" id="footprint">
                <thead><tr><th scope="col">{ "configuration" }</th><th scope="col">{ "guest page cache" }</th><th scope="col">{ "host page cache" }</th><th scope="col">{ "total" }</th><th scope="col">{ "host can reclaim" }</th></tr></thead>
                <tbody>
                    { for m.footprint().iter().map(|f| html! {
                        <tr><td>{ &f.config }</td><td>{ human_size(f.guest_page_cache_bytes) }</td><td>{ human_size(f.host_page_cache_bytes) }</td>
                        <td>{ human_size(f.total_bytes) }</td><td>{ if f.host_reclaimable { "yes" } else { "no" } }</td></tr>
                    }) }
                </tbody>
            </table>
        </section>
    }
}

fn rings_view(r: &RingView) -> Html {
    html! {
        <div class="rings" id="rings">
            <h3>{ "Split virtqueue 0 (req_vq), read from guest memory" }</h3>
            <table class="indices" id="ring-indices">
                <thead><tr><th scope="col">{ "" }</th><th scope="col">{ "driver" }</th><th scope="col">{ "device" }</th></tr></thead>
                <tbody>
                    <tr><th scope="row">{ "available ring" }</th><td>{ format!("avail.idx = {}", r.avail_idx) }</td><td>{ format!("next_avail = {}", r.next_avail) }</td></tr>
                    <tr><th scope="row">{ "used ring" }</th><td>{ format!("{} free descriptors, {} in flight, {} parked", r.free_descriptors, r.in_flight, r.parked) }</td><td>{ format!("used.idx = {}, next_used = {}, {} waiting for the host", r.used_idx, r.next_used, r.waiting_for_host) }</td></tr>
                </tbody>
            </table>
            <table class="desc" id="desc-table">
                <caption>{ format!("Descriptor table at {:#x} ({} entries; the ones ever written)", r.addrs[0], r.size) }</caption>
                <thead><tr><th scope="col">{ "#" }</th><th scope="col">{ "addr" }</th><th scope="col">{ "len" }</th><th scope="col">{ "flags" }</th><th scope="col">{ "next" }</th><th scope="col">{ "buffer" }</th></tr></thead>
                <tbody>
                    { for r.descriptors.iter().map(|d| html! {
                        <>
                        <tr>
                            <td>{ d.index }</td><td>{ format!("{:#x}", d.desc.addr) }</td><td>{ d.desc.len }</td>
                            <td>{ &d.flags }</td><td>{ d.desc.next }</td><td>{ &d.content }</td>
                        </tr>
                        { for d.indirect.iter().enumerate().map(|(i, (x, flags, content))| html! {
                            <tr class="indirect">
                                <td>{ format!("  ↳{i}") }</td><td>{ format!("{:#x}", x.addr) }</td><td>{ x.len }</td>
                                <td>{ flags }</td><td>{ x.next }</td><td>{ content }</td>
                            </tr>
                        }) }
                        </>
                    }) }
                </tbody>
            </table>
            <div class="two">
                <table class="ring" id="avail-ring">
                    <caption>{ format!("Available ring at {:#x}: flags {}, idx {}", r.addrs[1], r.avail_flags, r.avail_idx) }</caption>
                    <thead><tr><th scope="col">{ "slot" }</th><th scope="col">{ "head" }</th></tr></thead>
                    <tbody>{ for r.avail.iter().map(|(slot, head)| html! { <tr><td>{ slot }</td><td>{ head }</td></tr> }) }</tbody>
                </table>
                <table class="ring" id="used-ring">
                    <caption>{ format!("Used ring at {:#x}: flags {}, idx {}", r.addrs[2], r.used_flags, r.used_idx) }</caption>
                    <thead><tr><th scope="col">{ "slot" }</th><th scope="col">{ "id" }</th><th scope="col">{ "len" }</th></tr></thead>
                    <tbody>{ for r.used.iter().map(|(slot, id, len)| html! { <tr><td>{ slot }</td><td>{ id }</td><td>{ len }</td></tr> }) }</tbody>
                </table>
            </div>
        </div>
    }
}

/// Events the expert timeline lists (the beginner's lists
/// [`COMPACT_EVENTS`]), around the playhead.
const TIMELINE_EVENTS: usize = 120;
/// Events the beginner's timeline lists.
const COMPACT_EVENTS: usize = 10;

fn timeline(app: &App, expert: bool) -> Html {
    let b = &app.bench;
    let events: &[SimEvent] = b.events();
    let shown = b.shown();
    let starts: std::collections::BTreeMap<usize, String> = match b.view() {
        View::Live(s) => s
            .outcomes()
            .iter()
            .map(|o| {
                (
                    o.events.start,
                    format!("step {}: {}", o.index, s.step(o.index).map(ToString::to_string).unwrap_or_default()),
                )
            })
            .collect(),
        View::Replay(_) => Default::default(),
    };
    let room = if expert { TIMELINE_EVENTS } else { COMPACT_EVENTS };
    // A few events after the playhead (dimmed, still to come), the rest
    // before it.
    let to = (shown + room / 5).min(events.len()).max(shown.min(events.len()));
    let from = to.saturating_sub(room);
    // Groups of events, each under the step that produced it; newest first.
    let mut groups: Vec<(Option<&String>, Vec<usize>)> = Vec::new();
    for k in from..to {
        match starts.get(&k) {
            Some(h) => groups.push((Some(h), vec![k])),
            None => match groups.last_mut() {
                Some(g) => g.1.push(k),
                None => groups.push((None, vec![k])),
            },
        }
    }
    html! {
        <section id="timeline" class={classes!("panel", (!expert).then_some("compact"))} aria-labelledby="timeline-h">
            <h2 id="timeline-h">{ format!("Events ({shown} of {} shown; the newest first)", events.len()) }</h2>
            <ol class="events">
                { for groups.iter().rev().map(|(head, ks)| html! {
                    <>
                    { for head.map(|h| html! { <li class="step-mark">{ h }</li> }) }
                    { for ks.iter().rev().map(|&k| {
                        let e = &events[k];
                        let current = k + 1 == shown;
                        html! {
                            <li class={classes!("ev", lane(&e.kind).key(), current.then_some("current"), (k >= shown).then_some("future"))}
                                data-seq={e.seq.to_string()} aria-current={if current { "step" } else { "false" }}>
                                <span class="t">{ e.at.to_string() }</span>
                                { for e.device.as_ref().map(|d| html! { <span class="d">{ format!("[{d}]") }</span> }) }
                                { e.kind.to_string() }
                            </li>
                        }
                    }) }
                    </>
                }) }
            </ol>
        </section>
    }
}

fn sharing(app: &App, ctx: &Context<App>) -> Html {
    let link = ctx.link();
    let live = app.bench.session().is_some();
    let file_input = |kind: FileKind| {
        link.callback(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            match input.files().and_then(|f| f.get(0)) {
                Some(f) => Msg::FileChosen(kind, f),
                None => Msg::SetIoText(String::new()),
            }
        })
    };
    html! {
        <section id="share" class="panel" aria-labelledby="share-h">
            <h2 id="share-h">{ "Share, import, export" }</h2>
            <label for="share-link">{ "Link to exactly this view (scenario, seed, step, page)" }</label>
            <input id="share-link" readonly=true value={if live { dom::href() } else { "a replayed log has no link".to_string() }}
                onfocus={Callback::from(|e: FocusEvent| e.target_unchecked_into::<HtmlInputElement>().select())} />
            <div class="buttons">
                <button type="button" id="btn-export-scenario" disabled={!live} onclick={link.callback(|_| Msg::ExportScenario)}>{ "Export scenario JSON" }</button>
                <button type="button" id="btn-export-log" disabled={!live} onclick={link.callback(|_| Msg::ExportLog)}>{ "Export event log" }</button>
            </div>
            <label for="io-text">{ "Scenario or event log JSON (paste, then import)" }</label>
            <textarea id="io-text" rows="6" value={app.io_text.clone()}
                oninput={link.callback(|e: InputEvent| Msg::SetIoText(e.target_unchecked_into::<HtmlTextAreaElement>().value()))} />
            <div class="buttons">
                <button type="button" id="btn-import-scenario" onclick={link.callback(|_| Msg::ImportScenario)}>{ "Import scenario" }</button>
                <button type="button" id="btn-import-log" onclick={link.callback(|_| Msg::ImportLog)}>{ "Replay event log" }</button>
            </div>
            <label for="file-scenario">{ "Scenario file (pmemlab format)" }</label>
            <input type="file" id="file-scenario" accept=".json,application/json" onchange={file_input(FileKind::Scenario)} />
            <label for="file-log">{ "Event log file (pmemlab demo --json)" }</label>
            <input type="file" id="file-log" accept=".json,application/json" onchange={file_input(FileKind::Log)} />
        </section>
    }
}

/// The terms the crash explorer uses, defined where they appear.
fn explorer_terms() -> Html {
    html! {
        <dl class="terms" id="explorer-terms">
            <dt><dfn>{ "crash point" }</dfn></dt>
            <dd>{ "A moment of the workload's run at which the power could fail: just after one of its events." }</dd>
            <dt><dfn>{ "write index" }</dfn></dt>
            <dd>{ "The number of a write in the order the workload issued its writes (write 0 is the first)." }</dd>
            <dt><dfn>{ "durable image" }</dfn></dt>
            <dd>{ "What the disk holds for certain at that point: every write a completed flush covered. Any crash image is the durable image plus some of the writes since." }</dd>
            <dt><dfn>{ "torn" }</dfn></dt>
            <dd>{ "A page caught under writeback: some of its units (sectors, cache lines…) hold the new write, the others the old content." }</dd>
        </dl>
    }
}

/// One image as a strip of the pages that could differ at its point.
fn image_strip(row: &crate::explorer::ImageRow) -> Html {
    html! {
        <span class="strip" aria-hidden="true">
            { for row.cells.iter().map(|c| match (&c.torn, c.write) {
                (Some(units), _) => html! {
                    <span class="cell torn" title={format!("page {} torn", c.page)}>
                        { for units.iter().map(|n| html! { <span class={classes!("unit", if *n { "new" } else { "old" })}></span> }) }
                    </span>
                },
                (None, Some(w)) => html! { <span class="cell new" title={format!("page {} ← write {w}", c.page)}>{ w }</span> },
                (None, None) => html! { <span class="cell old" title={format!("page {}: durable content", c.page)}></span> },
            }) }
        </span>
    }
}

/// A finished campaign: its summary, the counterexample, the crash points
/// on the timeline and in the table, and the images of the point shown.
fn campaign_view(app: &App, run: &crate::explorer::ExplorerRun, link: &yew::html::Scope<App>) -> Html {
    let point = app.point;
    let r = &run.report;
    let cx = run.counterexample();
    let images = app.point_images.as_ref();
    html! {
        <>
        <p id="campaign-summary">{ format!(
            "{}: {} crash points, {} distinct images checked ({} duplicates skipped; {} points exhaustive, {} sampled), tear {}, seed {} — {} violation(s).",
            run.workload.name, r.points_total, r.checked, r.duplicates, r.exhaustive_points, r.sampled_points, run.tear, run.seed, r.violations_total
        ) }</p>
        { match cx {
            Some((p, pages, message)) => html! {
                <div class="counterexample" id="counterexample">
                    <h3>{ "Minimal counterexample" }</h3>
                    <p>{ format!("Crash point {p} ({}): these pages reached the disk, and nothing else written since the durable image:", run.points[p].after) }</p>
                    <ul>{ for pages.iter().map(|x| html! { <li>{ x }</li> }) }</ul>
                    <p>{ "Recovery says: " }<strong>{ message }</strong></p>
                </div>
            },
            None => html! { <p class="ok" id="no-violation">{ "No image violates the workload's invariant." }</p> },
        } }
        <div class="cp-timeline" id="crash-timeline" role="group" aria-label="Crash points on the workload's timeline">
            { for run.points.iter().take(300).map(|p| {
                let i = p.index;
                html! {
                    <button type="button" class={classes!("cp-dot", (p.violations > 0).then_some("violation"), (point == Some(i)).then_some("selected"))}
                        aria-pressed={if point == Some(i) { "true" } else { "false" }}
                        aria-label={format!("crash point {i}: {} images, {} violations", p.images, p.violations)}
                        title={format!("{i}: after {}", p.after)}
                        onclick={link.callback(move |_| Msg::ShowPoint(i))}></button>
                }
            }) }
        </div>
        <table class="points" id="crash-points">
            <caption>{ format!("Crash points ({} shown of {})", run.points.len().min(300), run.points.len()) }</caption>
            <thead><tr><th scope="col">{ "#" }</th><th scope="col">{ "just after" }</th><th scope="col">{ "writes issued / durable (write index)" }</th><th scope="col">{ "pages that may differ" }</th><th scope="col">{ "distinct images" }</th><th scope="col">{ "violations" }</th></tr></thead>
            <tbody>
                { for run.points.iter().take(300).map(|p| {
                    let i = p.index;
                    html! {
                        <tr class={classes!((p.violations > 0).then_some("violation"), (point == Some(i)).then_some("selected"))}>
                            <td><button type="button" class="linkish" onclick={link.callback(move |_| Msg::ShowPoint(i))}
                                aria-label={format!("show the images of crash point {i}")}>{ i }</button></td>
                            <td>{ &p.after }</td><td>{ format!("{} / up to {}", p.writes_done, p.durable_upto) }</td>
                            <td>{ p.pending_pages }</td><td>{ p.images }</td><td>{ p.violations }</td>
                        </tr>
                    }
                }) }
            </tbody>
        </table>
        { for images.map(|(p, imgs)| html! {
            <table class="images" id="point-images">
                <caption>{ format!(
                    "Disk images at crash point {p}: {} distinct ({}{}), the first {} shown. Each strip is the point's {} page(s) that may differ: grey = durable content, a number = the write it holds, split = torn.",
                    imgs.distinct,
                    if imgs.exhaustive { "all of them" } else { "sampled" },
                    if imgs.duplicates > 0 { format!(", {} duplicates skipped", imgs.duplicates) } else { String::new() },
                    imgs.rows.len(),
                    run.points[*p].pending_pages
                ) }</caption>
                <thead><tr><th scope="col">{ "image" }</th><th scope="col">{ "pages beyond the durable image" }</th><th scope="col">{ "verdict of the recovery" }</th></tr></thead>
                <tbody>
                    { for imgs.rows.iter().map(|row| html! {
                        <tr class={classes!(row.violation.is_some().then_some("violation"))}>
                            <td>{ row.number }</td>
                            <td>{ image_strip(row) }{ " " }{ if row.persisted.is_empty() { "none: exactly the durable image".to_string() } else { row.persisted.join(", ") } }</td>
                            <td>{ match &row.violation { Some(v) => format!("violation: {v}"), None => "acceptable".to_string() } }</td>
                        </tr>
                    }) }
                </tbody>
            </table>
        }) }
        </>
    }
}

fn explorer(app: &App, ctx: &Context<App>) -> Html {
    let link = ctx.link();
    let names = workload_names();
    let result = match &app.explorer {
        None => {
            html! { <p>{ "Pick a workload and run a campaign: every crash point, every disk image a power failure could leave there, each checked by the workload's recovery." }</p> }
        }
        Some(Err(e)) => html! { <p class="bad">{ e }</p> },
        Some(Ok(run)) => campaign_view(app, run, link),
    };
    html! {
        <section id="explorer" class="panel" aria-labelledby="explorer-h">
            <h2 id="explorer-h">{ "Crash explorer" }</h2>
            { explorer_terms() }
            <label for="sel-workload">{ "Workload" }</label>
            <select id="sel-workload" onchange={link.callback(|e: Event| Msg::SetWorkload(select_value(&e)))}>
                { for names.iter().map(|(n, d)| html! {
                    <option value={*n} selected={app.workload == *n}>{ format!("{n} — {d}") }</option>
                }) }
            </select>
            <button type="button" id="btn-campaign" onclick={link.callback(|_| Msg::RunCampaign)}>{ "Run crash campaign" }</button>
            { result }
        </section>
    }
}
