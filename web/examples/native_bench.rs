//! The native half of the browser benchmark: the same simulation steps as
//! the bench page runs in wasm (`pmem_web::bench::sim_steps`), timed with
//! the wall clock, printed as one JSON object.
//!
//! `cargo run --release -p pmem-web --example native_bench [rounds]`

use pmem_web::bench::{
    draw_whole_device, every_page_touched, session_cost, sim_steps, WriteStorm, SESSION_RUNS, STEP_ROUNDS,
    STORM_FRAMES, STORM_WRITES,
};
use pmem_web::grid::GridRenderer;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(STEP_ROUNDS);
    // Warm up once, then take the best of three (as the page does).
    sim_steps(rounds / 10 + 1, 1);
    let mut best = f64::INFINITY;
    let mut result = None;
    for _ in 0..3 {
        let t = Instant::now();
        let r = sim_steps(rounds, 1);
        best = best.min(t.elapsed().as_secs_f64());
        result = Some(r);
    }
    let r = result.expect("ran");
    // Grid: the storm's page map (as on the bench page) and the every-page worst case.
    let mut storm = WriteStorm::new(1);
    let mut renderer = GridRenderer::new();
    let mut grid_ms = Vec::new();
    for _ in 0..STORM_FRAMES {
        storm.frame(STORM_WRITES);
        let t = Instant::now();
        let map = storm.page_map();
        draw_whole_device(&mut renderer, &map, 768, 384);
        grid_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let full = every_page_touched();
    let mut full_ms = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        draw_whole_device(&mut renderer, &full, 768, 384);
        full_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let start = Instant::now();
    let session = session_cost(SESSION_RUNS, || start.elapsed().as_secs_f64() * 1e3);
    println!(
        "{{\"session_first_ms\":{:.5},\"session_last_ms\":{:.5},\"session_second_half_ms\":{:.5},\"rounds\":{rounds},\"steps\":{},\"events\":{},\"fingerprint\":\"{:016x}\",\"seconds\":{best:.6},\
         \"steps_per_sec\":{:.0},\"grid_storm_median_ms\":{:.3},\"grid_every_page_median_ms\":{:.3}}}",
        session.first,
        session.last,
        session.second_half,
        r.steps,
        r.events,
        r.fingerprint,
        r.steps as f64 / best,
        median(grid_ms),
        median(full_ms)
    );
}
