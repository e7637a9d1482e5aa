//! The benchmark page (`#bench`): frame time of the page grid for a 4 GiB
//! (1 M-page) device during a write storm, and simulation steps per second
//! in wasm. The native side of the comparison is the `native_bench`
//! example; `scripts/bench-web.sh` runs both in one go and writes
//! `docs/web.md`.

use super::canvas;
use crate::bench::{
    draw_whole_device, every_page_touched, session_cost, sim_steps, SessionCost, StepsResult, WriteStorm,
    SESSION_ACTIONS, SESSION_RUNS, STEP_ROUNDS, STORM_FRAMES, STORM_WRITES,
};
use crate::grid::GridRenderer;
use crate::workbench::{GRID_HEIGHT, GRID_WIDTH};
use gloo::render::{request_animation_frame, AnimationFrame};
use gloo::timers::callback::Timeout;
use web_sys::HtmlCanvasElement;
use yew::prelude::*;

fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now())
}

fn stats(v: &[f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let p = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
    (p(0.5), p(0.95), s[s.len() - 1])
}

/// Messages of the bench page.
pub enum BenchMsg {
    /// Run the simulation-steps phase.
    Steps,
    /// One animation frame of the storm.
    Frame(f64),
    /// The worst-case render.
    Worst,
}

/// The bench page.
pub struct BenchPage {
    canvas: NodeRef,
    renderer: GridRenderer,
    storm: Option<WriteStorm>,
    steps: Option<(StepsResult, f64)>,
    frame_intervals: Vec<f64>,
    sim_ms: Vec<f64>,
    grid_ms: Vec<f64>,
    paint_ms: Vec<f64>,
    last_ts: Option<f64>,
    worst_ms: Vec<f64>,
    pages_touched: usize,
    session: Option<SessionCost>,
    done: bool,
    _raf: Option<AnimationFrame>,
    _timer: Option<Timeout>,
}

impl BenchPage {
    fn json(&self) -> String {
        let (steps, secs) = self.steps.map_or((StepsResult { steps: 0, events: 0, fingerprint: 0 }, 0.0), |s| s);
        let (fi50, fi95, fimax) = stats(&self.frame_intervals);
        let (g50, g95, gmax) = stats(&self.grid_ms);
        let (s50, _, _) = stats(&self.sim_ms);
        let (p50, p95, _) = stats(&self.paint_ms);
        let (w50, _, _) = stats(&self.worst_ms);
        let SessionCost { first, last, second_half } = self.session.unwrap_or_default();
        format!(
            "{{\"session_actions\":{SESSION_ACTIONS},\"session_first_ms\":{first:.5},\"session_last_ms\":{last:.5},\"session_second_half_ms\":{second_half:.5},\"rounds\":{STEP_ROUNDS},\"steps\":{},\"events\":{},\"fingerprint\":\"{:016x}\",\"seconds\":{secs:.6},\
             \"steps_per_sec\":{:.0},\"storm_frames\":{},\"storm_writes_per_frame\":{STORM_WRITES},\"pages_touched\":{},\
             \"frame_interval_median_ms\":{fi50:.3},\"frame_interval_p95_ms\":{fi95:.3},\"frame_interval_max_ms\":{fimax:.3},\
             \"grid_median_ms\":{g50:.3},\"paint_median_ms\":{p50:.3},\"paint_p95_ms\":{p95:.3},\"grid_p95_ms\":{g95:.3},\"grid_max_ms\":{gmax:.3},\"storm_sim_median_ms\":{s50:.3},\
             \"grid_every_page_median_ms\":{w50:.3},\"done\":{}}}",
            steps.steps,
            steps.events,
            steps.fingerprint,
            if secs > 0.0 { steps.steps as f64 / secs } else { 0.0 },
            self.grid_ms.len(),
            self.pages_touched,
            self.done
        )
    }
}

impl Component for BenchPage {
    type Message = BenchMsg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let link = ctx.link().clone();
        BenchPage {
            canvas: NodeRef::default(),
            renderer: GridRenderer::new(),
            storm: Some(WriteStorm::new(1)),
            steps: None,
            frame_intervals: Vec::new(),
            sim_ms: Vec::new(),
            grid_ms: Vec::new(),
            paint_ms: Vec::new(),
            last_ts: None,
            worst_ms: Vec::new(),
            pages_touched: 0,
            session: None,
            done: false,
            _raf: None,
            // Let the page paint before the long synchronous phase.
            _timer: Some(Timeout::new(100, move || link.send_message(BenchMsg::Steps))),
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: BenchMsg) -> bool {
        match msg {
            BenchMsg::Steps => {
                sim_steps(STEP_ROUNDS / 10 + 1, 1);
                let mut best = f64::INFINITY;
                let mut result = None;
                for _ in 0..3 {
                    let t = now_ms();
                    let r = sim_steps(STEP_ROUNDS, 1);
                    best = best.min((now_ms() - t) / 1000.0);
                    result = Some(r);
                }
                self.steps = result.map(|r| (r, best));
                self.session = Some(session_cost(SESSION_RUNS, now_ms));
                let link = ctx.link().clone();
                self._raf = Some(request_animation_frame(move |ts| link.send_message(BenchMsg::Frame(ts))));
            }
            BenchMsg::Frame(ts) => {
                if let Some(last) = self.last_ts {
                    self.frame_intervals.push(ts - last);
                }
                self.last_ts = Some(ts);
                if let Some(storm) = self.storm.as_mut() {
                    let t0 = now_ms();
                    storm.frame(STORM_WRITES);
                    let t1 = now_ms();
                    let map = storm.page_map();
                    self.pages_touched = map.pages.len();
                    draw_whole_device(&mut self.renderer, &map, GRID_WIDTH, GRID_HEIGHT);
                    let t2 = now_ms();
                    if let Some(c) = self.canvas.cast::<HtmlCanvasElement>() {
                        canvas::put(&c, self.renderer.rgba(), GRID_WIDTH, GRID_HEIGHT);
                    }
                    let t3 = now_ms();
                    self.sim_ms.push(t1 - t0);
                    self.grid_ms.push(t2 - t1);
                    self.paint_ms.push(t3 - t2);
                }
                let link = ctx.link().clone();
                if self.grid_ms.len() < STORM_FRAMES {
                    self._raf = Some(request_animation_frame(move |ts| link.send_message(BenchMsg::Frame(ts))));
                } else {
                    self.storm = None; // Free its memory before the worst case.
                    self._timer = Some(Timeout::new(50, move || link.send_message(BenchMsg::Worst)));
                }
            }
            BenchMsg::Worst => {
                let map = every_page_touched();
                for _ in 0..5 {
                    let t = now_ms();
                    draw_whole_device(&mut self.renderer, &map, GRID_WIDTH, GRID_HEIGHT);
                    if let Some(c) = self.canvas.cast::<HtmlCanvasElement>() {
                        canvas::put(&c, self.renderer.rgba(), GRID_WIDTH, GRID_HEIGHT);
                    }
                    self.worst_ms.push(now_ms() - t);
                }
                self.done = true;
                if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
                    doc.set_title("pmemlab bench: done");
                }
            }
        }
        true
    }

    fn view(&self, _ctx: &Context<Self>) -> Html {
        let (g50, g95, gmax) = stats(&self.grid_ms);
        let (fi50, fi95, _) = stats(&self.frame_intervals);
        html! {
            <main class="bench">
                <h1>{ "pmemlab benchmark" }</h1>
                <p>{ format!(
                    "Write storm on a 4 GiB device (1,048,576 pages): {STORM_WRITES} stores per frame, {STORM_FRAMES} frames; \
                     the whole device drawn each frame. Then {STEP_ROUNDS} rounds of the simulation workload."
                ) }</p>
                <canvas ref={self.canvas.clone()} width={GRID_WIDTH.to_string()} height={GRID_HEIGHT.to_string()}
                    role="img" aria-label="page grid of the storm device"></canvas>
                <table id="bench-table">
                    <tbody>
                        <tr><th scope="row">{ "simulation" }</th><td id="bench-steps">{ match self.steps {
                            Some((r, s)) => format!("{} steps in {:.3} s = {:.0} steps/s (log fingerprint {:016x})", r.steps, s, r.steps as f64 / s, r.fingerprint),
                            None => "running…".into(),
                        } }</td></tr>
                        <tr><th scope="row">{ "grid per frame (page map + raster; putImageData apart)" }</th>
                            <td id="bench-grid">{ format!("median {g50:.2} ms, p95 {g95:.2} ms, max {gmax:.2} ms over {} frames, {} pages touched; putImageData median {:.2} ms", self.grid_ms.len(), self.pages_touched, stats(&self.paint_ms).0) }</td></tr>
                        <tr><th scope="row">{ "frame interval (requestAnimationFrame)" }</th>
                            <td id="bench-frames">{ format!("median {fi50:.2} ms, p95 {fi95:.2} ms") }</td></tr>
                        <tr><th scope="row">{ "web session: time per appended action" }</th>
                            <td id="bench-session">{ match self.session {
                                Some(c) => format!("{:.4} ms around the 10th action, {:.4} ms around the {SESSION_ACTIONS}th, {:.4} ms over the second half", c.first, c.last, c.second_half),
                                None => "running…".into(),
                            } }</td></tr>
                        <tr><th scope="row">{ "every page touched (worst case)" }</th>
                            <td id="bench-worst">{ format!("median {:.2} ms", stats(&self.worst_ms).0) }</td></tr>
                    </tbody>
                </table>
                <pre id="bench-json" data-done={self.done.to_string()}>{ self.json() }</pre>
            </main>
        }
    }
}
