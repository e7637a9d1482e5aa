//! The cost of one user action in a web session, at the 10th and at the
//! 1,000th action of the session workload (`pmem_web::bench::session_action`:
//! writes, fsyncs, waits): flat, because a session appends a step and runs
//! only it. For scale, the cost of replaying the 1,000 actions from the
//! seed (what every action cost before, and what a step back costs now),
//! and the workbench's action (the step plus the page map the grid draws).
//!
//! `cargo bench -p pmem-web --bench session`

use criterion::{criterion_group, criterion_main, Criterion};
use pmem_web::bench::{session_action, session_after, SESSION_ACTIONS};
use pmem_web::session::Session;
use std::time::{Duration, Instant};

/// Times appending the actions after the `n`th to a session that ran
/// `n` actions; the session goes back to `n` (a replay, not timed) before
/// it grows past 10 % more, so every action timed is between the `n`th
/// and the `1.1 n`th.
fn act_at(n: usize, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut s = session_after(n);
    for _ in 0..iters {
        if s.len() > n + n / 10 {
            s.goto(n);
        }
        let next = s.len();
        let t = Instant::now();
        let _ = s.act(session_action(next));
        total += t.elapsed();
    }
    total
}

fn session(c: &mut Criterion) {
    let mut g = c.benchmark_group("session");
    g.sample_size(20).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_millis(500));
    for n in [10, SESSION_ACTIONS] {
        g.bench_function(format!("act/{n}th"), |b| b.iter_custom(|iters| act_at(n - 1, iters)));
    }
    g.bench_function(format!("replay_from_seed/{SESSION_ACTIONS}"), |b| {
        let mut s: Session = session_after(SESSION_ACTIONS);
        b.iter(|| {
            s.goto(0);
            s.goto(SESSION_ACTIONS);
        })
    });
    g.finish();
}

criterion_group!(benches, session);
criterion_main!(benches);
