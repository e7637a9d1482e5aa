//! Device-loop benchmark: pop → parse → complete for batches of flushes, over
//! pmemlab's split ring and guest memory (`SplitQueue` + `GuestMemoryMap`)
//! and over rust-vmm's (`VmmQueue` + `VmmMemory`), in the same run.
//!
//! The chains are written once; each iteration the driver publishes a batch
//! by moving `avail.idx` (one 2-byte store) and the device processes it with
//! a zero-latency `SimpleBackend`, so the figures are the cost of the device
//! side alone. Criterion reports requests per second (`Throughput::Elements`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pmem_core::device::DeviceEvent;
use pmem_core::memory::GuestMemory;
use pmem_core::queue::DeviceQueue;
use pmem_tests::action::DriverAction;
use pmem_tests::world::{OursWorld, TheirsWorld, World};
use std::hint::black_box;
use std::time::Duration;

/// Queue size (QEMU's).
const QUEUE_SIZE: u16 = 128;
/// Flushes per iteration.
const BATCH: u16 = 64;

/// Writes `BATCH` flush chains (direct: two descriptors each; indirect: one
/// ring descriptor and a two-entry table), fills every avail-ring slot with
/// their heads, and drains them once.
fn prepare<M: GuestMemory, Q: DeviceQueue<M>>(w: &mut World<M, Q>, indirect: bool) {
    let step = if indirect { 1 } else { 2 };
    for _round in 0..QUEUE_SIZE / BATCH {
        for i in 0..BATCH {
            let flush = DriverAction::Flush { head: i * step, indirect, request_type: 0, req_len: 4, status_len: 4 };
            w.apply(&flush);
        }
    }
    w.device_run();
    let ok = w.events.iter().filter(|e| matches!(e, DeviceEvent::RequestCompleted { status: Some(0), .. })).count();
    assert_eq!(ok, usize::from(QUEUE_SIZE), "every prepared flush must succeed");
    w.events.clear();
    batch(w);
    let ok = w.events.iter().filter(|e| matches!(e, DeviceEvent::RequestCompleted { status: Some(0), .. })).count();
    assert_eq!(ok, usize::from(BATCH), "a batch is {BATCH} successful flushes");
}

/// One iteration: publish `BATCH` chains and let the device process them.
fn batch<M: GuestMemory, Q: DeviceQueue<M>>(w: &mut World<M, Q>) {
    w.events.clear();
    w.apply(&DriverAction::BumpAvailIdx { by: BATCH });
    w.device_run();
    black_box(&w.events);
}

fn device_loop(c: &mut Criterion) {
    let mut group = c.benchmark_group("device_loop");
    group.throughput(Throughput::Elements(u64::from(BATCH)));
    group.sample_size(30);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for indirect in [false, true] {
        let kind = if indirect { "indirect" } else { "direct" };
        let mut ours = OursWorld::ours(QUEUE_SIZE, 0).expect("our world");
        prepare(&mut ours, indirect);
        group.bench_function(format!("ours/{kind}"), |b| b.iter(|| batch(&mut ours)));
        let mut theirs = TheirsWorld::theirs(QUEUE_SIZE, 0).expect("rust-vmm world");
        prepare(&mut theirs, indirect);
        group.bench_function(format!("virtio-queue/{kind}"), |b| b.iter(|| batch(&mut theirs)));
    }
    group.finish();
}

criterion_group!(benches, device_loop);
criterion_main!(benches);
