//! Page-cache reclaim at a steady rate: 1 M spread 8-byte writes on a
//! 16 TiB device whose host page cache holds 16 Ki pages (64 MiB), so
//! reclaim runs on almost every write after the first 16 Ki. Two windows of
//! the same run are timed: the first 100 k writes and the last 100 k. Before
//! the LRU index, reclaim collected and sorted every cached page on each
//! call, and the last window was many times slower than the first; the
//! goal is `last / first ≤ 2`.
//!
//! The writes cycle over 131,072 pages 128 MiB apart (each revisited 8
//! times, always evicted in between), so the disk image the model keeps
//! stays at 512 MiB.

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use pmem_core::host::{BackingMode, HostBackend, PageCache, PageCacheConfig};
use pmem_core::time::SimTime;
use std::hint::black_box;
use std::time::{Duration, Instant};

const DEVICE: u64 = 16 << 40;
const WRITES: u64 = 1_000_000;
const WINDOW: u64 = 100_000;
const SPACING: u64 = 128 << 20;
const STEP_NS: u64 = 100_000;

/// Runs the 1 M writes; returns the time of the writes in `window`.
fn timed_window(window: std::ops::Range<u64>) -> Duration {
    let cfg = PageCacheConfig { host_memory_bytes: 64 << 20, ..PageCacheConfig::default() };
    let mut pc = PageCache::new(DEVICE, BackingMode::Shared, cfg);
    let slots = DEVICE / SPACING;
    let data = [0xABu8; 8];
    let mut spent = Duration::ZERO;
    for i in 0..WRITES {
        let timed = window.contains(&i);
        let start = timed.then(Instant::now);
        let now = SimTime(i * STEP_NS);
        let offset = (i % slots) * SPACING + (i / slots) * 8;
        pc.write_at(now, offset, &data).expect("in range");
        if i % 16 == 0 {
            black_box(pc.advance(now));
            black_box(pc.take_events());
        }
        if let Some(s) = start {
            spent += s.elapsed();
        }
    }
    spent
}

fn reclaim(c: &mut Criterion) {
    let mut g = c.benchmark_group("reclaim_1M_spread_writes_16TiB");
    g.sampling_mode(SamplingMode::Flat).sample_size(10).warm_up_time(Duration::from_millis(1));
    for (name, window) in [("first_100k", 0..WINDOW), ("last_100k", WRITES - WINDOW..WRITES)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| timed_window(window.clone())).sum());
        });
    }
    g.finish();
}

criterion_group!(benches, reclaim);
criterion_main!(benches);
