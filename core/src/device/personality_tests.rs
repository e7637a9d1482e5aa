//! Each VMM personality's distinguishing behaviour, at the device and on a
//! whole machine with each guest driver personality — the 300-flusher load
//! of `docs/personalities.md` included.

use super::personality::ALL_VMMS;
use super::*;
use crate::event::{EventKind, RequestId};
use crate::guest::{DriverPersonality, FlushResult};
use crate::host::{HostBackend, SimpleBackend};
use crate::memory::{GuestAddress, GuestMemory, GuestMemoryMap};
use crate::queue::{Buffer, DriverQueue, SplitQueue, SplitQueueLayout};
use crate::sim::{DeviceSpec, Machine, SimConfig};
use crate::time::SimTime;

/// A device of `vmm` (`None`: generic) with a driver-side queue to fill.
struct Bench {
    mem: GuestMemoryMap,
    drv: DriverQueue,
    q: SplitQueue,
    dev: PmemDevice,
    host: SimpleBackend,
}

fn bench(vmm: Option<Vmm>) -> Bench {
    let mut mem = GuestMemoryMap::new(GuestAddress(0), 1 << 20);
    let layout = SplitQueueLayout::contiguous(GuestAddress(0x1000), 8).unwrap();
    let drv = DriverQueue::new(&mut mem, layout).unwrap();
    let q = SplitQueue::new(&mem, layout, false).unwrap();
    let mut config = PmemConfig::new("nv1", GuestAddress(1 << 32), 4096);
    config.vmm = vmm;
    let mut dev = PmemDevice::new(config).unwrap();
    dev.negotiate(dev.offered_features() & !VIRTIO_F_INDIRECT_DESC).unwrap();
    Bench { mem, drv, q, dev, host: SimpleBackend::new(4096) }
}

impl Bench {
    /// Makes a request of type `ty` available in slot `n`; returns the
    /// address of its status word (poisoned).
    fn offer(&mut self, n: u64, ty: u32) -> u64 {
        let base = 0x8000 + 16 * n;
        self.mem.write_le32(GuestAddress(base), ty).unwrap();
        self.mem.write_le32(GuestAddress(base + 4), 0xAAAA_AAAA).unwrap();
        self.drv.add_chain(&mut self.mem, &[Buffer::readable(base, 4), Buffer::writable(base + 4, 4)]).unwrap();
        base + 4
    }

    fn notify(&mut self) -> Vec<DeviceEvent> {
        let mut out = Vec::new();
        self.dev.process_now(&mut self.mem, &mut self.q, &mut self.host, SimTime(0), &mut out);
        out
    }

    fn used_idx(&self) -> u16 {
        self.mem.read_le16(self.q.layout().used_idx_addr()).unwrap()
    }
}

fn needs_reset(d: &PmemDevice) -> bool {
    d.status().has(DeviceStatus::DEVICE_NEEDS_RESET)
}

#[test]
fn qemu_pops_one_chain_per_notification_the_others_pop_until_empty() {
    for vmm in [None, Some(Vmm::Qemu), Some(Vmm::CloudHypervisor), Some(Vmm::Firecracker), Some(Vmm::Crosvm)] {
        let mut b = bench(vmm);
        b.offer(0, 0);
        b.offer(1, 0);
        b.notify();
        let want = if vmm == Some(Vmm::Qemu) { 1 } else { 2 };
        assert_eq!(b.dev.stats().popped, want, "{vmm:?}");
        assert_eq!(b.used_idx(), want as u16, "{vmm:?}");
        assert!(!needs_reset(&b.dev), "{vmm:?}");
    }
}

#[test]
fn an_empty_queue_at_a_notification_breaks_qemu_only() {
    let mut q = bench(Some(Vmm::Qemu));
    let events = q.notify();
    assert!(needs_reset(&q.dev));
    assert_eq!(q.dev.status().0, 0x4f);
    assert!(events.contains(&DeviceEvent::VirtioError { message: "virtio-pmem missing request data".into() }));
    // Broken: a request made available afterwards is never popped.
    q.offer(0, 0);
    q.notify();
    assert_eq!((q.dev.stats().popped, q.used_idx()), (0, 0));
    for vmm in [Vmm::CloudHypervisor, Vmm::Firecracker, Vmm::Crosvm] {
        let mut b = bench(Some(vmm));
        assert_eq!(b.notify(), vec![DeviceEvent::NotifyIgnored], "{vmm}");
        assert!(!needs_reset(&b.dev), "{vmm}");
    }
    // The generic host side ignores it without a word (its logs predate
    // the event).
    let mut g = bench(None);
    assert!(g.notify().is_empty());
}

#[test]
fn a_sync_finishing_on_a_broken_qemu_device_is_never_returned() {
    let mut b = bench(Some(Vmm::Qemu));
    b.offer(0, 0);
    let mut out = Vec::new();
    let flushes = b.dev.process_queue(&mut b.mem, &mut b.q, &mut out);
    b.dev.start_syncs(flushes, &mut b.host, SimTime(0), &mut out);
    assert_eq!(b.dev.in_flight(), 1);
    // A spurious notification while the sync runs: virtio_error.
    b.dev.process_queue(&mut b.mem, &mut b.q, &mut out);
    assert!(needs_reset(&b.dev));
    let t = b.host.next_event_time().unwrap();
    for done in b.host.advance(t) {
        b.dev.complete_sync(&mut b.mem, &mut b.q, done.ticket, done.result, &mut out);
    }
    assert!(out.contains(&DeviceEvent::CompletionDropped { head: 0 }));
    assert_eq!((b.used_idx(), b.dev.stats().dropped), (0, 1));
    // Control: without the spurious notification the same flush completes.
    let mut ok = bench(Some(Vmm::Qemu));
    ok.offer(0, 0);
    ok.notify();
    assert_eq!((ok.used_idx(), ok.dev.stats().dropped, ok.dev.stats().flushes_ok), (1, 0, 1));
}

#[test]
fn unknown_types_get_each_vmms_answer() {
    // (vmm, status word afterwards, used length)
    let table = [
        (None, 0xFFFF_FFFF, 4),
        (Some(Vmm::Qemu), 0, 4), // QEMU never reads the type: it syncs
        (Some(Vmm::CloudHypervisor), 1, 4),
        (Some(Vmm::Crosvm), 1, 4),
        (Some(Vmm::Firecracker), 0xAAAA_AAAA, 0), // length 0, status untouched
    ];
    for (vmm, status, len) in table {
        let mut b = bench(vmm);
        let at = b.offer(0, 7);
        b.notify();
        assert_eq!(b.mem.read_le32(GuestAddress(at)).unwrap(), status, "{vmm:?}");
        let used = b.q.layout().used_entry_addr(0);
        assert_eq!(b.mem.read_le32(GuestAddress(used.0 + 4)).unwrap(), len, "{vmm:?}");
    }
}

#[test]
fn an_improper_chain_breaks_qemu_and_is_returned_empty_elsewhere() {
    for vmm in ALL_VMMS {
        let mut b = bench(Some(vmm));
        b.drv.add_chain(&mut b.mem, &[Buffer::readable(0x8000, 4)]).unwrap();
        let events = b.notify();
        if vmm == Vmm::Qemu {
            assert!(needs_reset(&b.dev));
            assert!(events.contains(&DeviceEvent::VirtioError { message: "virtio-pmem request not proper".into() }));
            assert_eq!(b.used_idx(), 0, "QEMU detaches the element, it does not return it");
        } else {
            assert!(!needs_reset(&b.dev), "{vmm}");
            assert_eq!(b.used_idx(), 1, "{vmm}");
        }
    }
}

#[test]
fn firecracker_answers_a_whole_batch_with_one_sync() {
    for (vmm, syncs) in [(Vmm::Firecracker, 1), (Vmm::CloudHypervisor, 3), (Vmm::Crosvm, 3)] {
        let mut b = bench(Some(vmm));
        let statuses: Vec<u64> = (0..3).map(|n| b.offer(n, 0)).collect();
        b.notify();
        assert_eq!(b.host.stats().syncs_started, syncs, "{vmm}");
        for at in statuses {
            assert_eq!(b.mem.read_le32(GuestAddress(at)).unwrap(), 0, "{vmm}");
        }
        assert_eq!(b.dev.stats().flushes_ok, 3, "{vmm}");
    }
}

#[test]
fn a_failed_sync_gets_each_vmms_failure_status() {
    for vmm in ALL_VMMS {
        let mut b = bench(Some(vmm));
        b.host.fail_next_syncs(1);
        let at = b.offer(0, 0);
        b.host.write_at(SimTime(0), 0, &[1]).unwrap();
        b.notify();
        let want = if vmm == Vmm::Firecracker { u32::MAX } else { 1 };
        assert_eq!(b.mem.read_le32(GuestAddress(at)).unwrap(), want, "{vmm}");
    }
}

// ---- the machine: 300 concurrent flushers --------------------------------

const FLUSHERS: usize = 300;
const DEV: &str = "nv1";

fn machine(vmm: Vmm, driver: DriverPersonality) -> Machine {
    let mut m = Machine::new(SimConfig::default());
    let mut spec = DeviceSpec::new(DEV, 2 << 20);
    spec.vmm = Some(vmm);
    spec.driver = Some(driver);
    m.add_device(spec).unwrap();
    m
}

/// `n` flushes issued at once, each after a store of its own page.
fn flushers(m: &mut Machine, n: usize) -> Vec<RequestId> {
    (0..n)
        .map(|i| {
            m.guest_write(DEV, 4096 * i as u64, &[page_byte(i as u64); 64]).unwrap();
            m.flush(DEV).unwrap()
        })
        .collect()
}

/// The byte flusher `i` stores (never 0, the file's initial content).
fn page_byte(i: u64) -> u8 {
    (i % 255) as u8 + 1
}

fn results(m: &Machine, ids: &[RequestId]) -> Vec<Option<FlushResult>> {
    ids.iter().map(|&r| m.flush_result(DEV, r).unwrap()).collect()
}

fn count(m: &Machine, pred: impl Fn(&EventKind) -> bool) -> usize {
    m.log().events().iter().filter(|e| pred(&e.kind)).count()
}

/// Most flushes outstanding at once (made available, not yet completed).
fn most_outstanding(m: &Machine) -> usize {
    let (mut now, mut most) = (0usize, 0usize);
    for e in m.log().events() {
        match e.kind {
            EventKind::ChainAvailable { .. } => now += 1,
            EventKind::Device(DeviceEvent::RequestCompleted { .. }) => now = now.saturating_sub(1),
            _ => {}
        }
        most = most.max(now);
    }
    most
}

fn all_ok(r: &[Option<FlushResult>]) -> bool {
    r.iter().all(|x| *x == Some(FlushResult::Ok))
}

#[test]
fn the_old_driver_on_qemu_hangs_300_flushers_and_fails_later_ones() {
    let mut m = machine(Vmm::Qemu, DriverPersonality::LinuxConcurrent);
    let ids = flushers(&mut m, FLUSHERS);
    m.run_until_idle(1_000_000);
    let snap = m.device_snapshot(DEV).unwrap();
    assert_eq!(snap.status, 0x4f, "DEVICE_NEEDS_RESET");
    let virtio_errors = count(
        &m,
        |k| matches!(k, EventKind::Device(DeviceEvent::VirtioError { message }) if message == "virtio-pmem missing request data"),
    );
    assert_eq!(virtio_errors, 1);
    let r = results(&m, &ids);
    // The 128 popped flushes were synced on the host but never completed.
    assert!(r[..128].iter().all(Option::is_none), "in-flight flushes stay pending");
    assert_eq!((snap.stats.popped, snap.host.syncs_started, snap.stats.dropped), (128, 128, 128));
    assert_eq!((snap.in_flight, snap.next_used), (128, 0));
    // The 129th found the ring full: forced notify, then it waits on
    // req_list for a wake-up that never comes.
    assert_eq!(r[128], None);
    assert_eq!(snap.parked, 1);
    // Every later flush sees NEEDS_RESET and fails at once.
    assert!(r[129..].iter().all(|x| *x == Some(FlushResult::Eio)));
    let later = m.flush(DEV).unwrap();
    assert_eq!(m.flush_result(DEV, later).unwrap(), Some(FlushResult::Eio));
    // Time does not help.
    m.run_for(60_000_000_000);
    assert!(results(&m, &ids)[..129].iter().all(Option::is_none));
}

#[test]
fn the_old_driver_on_qemu_is_fine_while_the_ring_never_fills() {
    // Negative control: 128 flushers fit QEMU's 128-entry ring exactly.
    let mut m = machine(Vmm::Qemu, DriverPersonality::LinuxConcurrent);
    let ids = flushers(&mut m, 128);
    m.run_until_idle(1_000_000);
    assert!(all_ok(&results(&m, &ids)));
    assert_eq!(m.device_snapshot(DEV).unwrap().status, 0x0f);
    assert_eq!(most_outstanding(&m), 128);
}

#[test]
fn the_serialized_driver_on_qemu_completes_300_flushers_one_at_a_time() {
    let mut m = machine(Vmm::Qemu, DriverPersonality::LinuxSerialized);
    let ids = flushers(&mut m, FLUSHERS);
    m.run_until_idle(1_000_000);
    let snap = m.device_snapshot(DEV).unwrap();
    assert_eq!(snap.status, 0x0f);
    assert!(all_ok(&results(&m, &ids)));
    assert_eq!(most_outstanding(&m), 1);
    assert_eq!(count(&m, |k| matches!(k, EventKind::Device(DeviceEvent::VirtioError { .. }))), 0);
    assert_eq!((snap.host.syncs_started, snap.stats.flushes_ok), (300, 300));
}

#[test]
fn the_old_driver_on_cloud_hypervisor_completes_300_flushers() {
    let mut m = machine(Vmm::CloudHypervisor, DriverPersonality::LinuxConcurrent);
    let ids = flushers(&mut m, FLUSHERS);
    m.run_until_idle(1_000_000);
    let snap = m.device_snapshot(DEV).unwrap();
    assert_eq!(snap.status, 0x0f);
    assert!(all_ok(&results(&m, &ids)));
    // The ring of 256 filled: 44 flushes parked, each forcing a notify
    // that found the queue empty — tolerated.
    assert_eq!(count(&m, |k| matches!(k, EventKind::FlushParked { .. })), 44);
    assert!(count(&m, |k| matches!(k, EventKind::Device(DeviceEvent::NotifyIgnored))) >= 44);
    assert_eq!(most_outstanding(&m), 256);
    assert_eq!(snap.host.syncs_started, 300, "sync_all per request");
}

#[test]
fn firecracker_completes_300_flushers_with_one_sync_per_batch() {
    let mut m = machine(Vmm::Firecracker, DriverPersonality::LinuxConcurrent);
    let ids = flushers(&mut m, FLUSHERS);
    m.run_until_idle(1_000_000);
    let snap = m.device_snapshot(DEV).unwrap();
    assert_eq!(snap.status, 0x0f);
    assert!(all_ok(&results(&m, &ids)));
    // One batch of 256 (the ring), then the 44 woken ones.
    assert_eq!(snap.host.syncs_started, 2);
    let mut per_sync = std::collections::BTreeMap::new();
    for e in m.log().events() {
        if let EventKind::Device(DeviceEvent::HostSyncStarted { ticket, .. }) = e.kind {
            *per_sync.entry(ticket).or_insert(0) += 1;
        }
    }
    assert_eq!(per_sync.into_values().collect::<Vec<_>>(), vec![256, 44]);
    // Every store is durable: one msync of the whole file covers them all.
    for i in 0..FLUSHERS as u64 {
        assert_eq!(m.read_durable(DEV, 4096 * i, 1).unwrap(), vec![page_byte(i)], "page {i}");
    }
    // With the serialized driver every batch holds one flush.
    let mut s = machine(Vmm::Firecracker, DriverPersonality::LinuxSerialized);
    let ids = flushers(&mut s, FLUSHERS);
    s.run_until_idle(1_000_000);
    assert!(all_ok(&results(&s, &ids)));
    assert_eq!(s.device_snapshot(DEV).unwrap().host.syncs_started, 300);
}

#[test]
fn qemu_pops_inside_the_guests_notification() {
    // QEMU: the element is popped before the kick returns; elsewhere the
    // device runs later.
    for vmm in ALL_VMMS {
        let mut m = machine(vmm, DriverPersonality::LinuxSerialized);
        m.flush(DEV).unwrap();
        let popped = m.device_snapshot(DEV).unwrap().next_avail;
        assert_eq!(popped, u16::from(vmm == Vmm::Qemu), "{vmm}");
        assert_eq!(m.device_snapshot(DEV).unwrap().layout.size, vmm.host_side().queue_size, "{vmm}");
    }
}

#[test]
fn the_300_flusher_runs_are_deterministic() {
    let run = || {
        let mut m = machine(Vmm::Qemu, DriverPersonality::LinuxConcurrent);
        flushers(&mut m, FLUSHERS);
        m.run_until_idle(1_000_000);
        m.log().fingerprint()
    };
    assert_eq!(run(), run());
}

// ---- Firecracker's rate limiter ------------------------------------------

use super::rate_limiter::{RateLimiterConfig, TokenBucketConfig};

const SECOND: u64 = 1_000_000_000;

fn bucket(size: u64, refill_time: u64) -> Option<TokenBucketConfig> {
    Some(TokenBucketConfig { size, one_time_burst: None, refill_time })
}

/// A Firecracker device of 2 MiB with `limiter` (`None`: Firecracker's
/// default, no limiter).
fn limited(limiter: Option<RateLimiterConfig>, driver: DriverPersonality) -> Machine {
    let mut m = Machine::new(SimConfig::default());
    let mut spec = DeviceSpec::new(DEV, 2 << 20);
    spec.vmm = Some(Vmm::Firecracker);
    spec.driver = Some(driver);
    spec.rate_limiter = limiter;
    m.add_device(spec).unwrap();
    m
}

/// One fsync run to completion; returns when it completed.
fn fsync_completed_at(m: &mut Machine) -> SimTime {
    let id = m.flush(DEV).unwrap();
    m.run_until_idle(1_000_000);
    assert_eq!(m.flush_result(DEV, id).unwrap(), Some(FlushResult::Ok));
    let done = m.log().events().iter().rev().find(|e| matches!(e.kind, EventKind::FlushReturned { .. }));
    done.map(|e| e.at).expect("the flush returned")
}

/// The gap between two fsyncs in a row, each issued when the last returned.
fn gap_between_two_fsyncs(limiter: Option<RateLimiterConfig>) -> (u64, Machine) {
    let mut m = limited(limiter, DriverPersonality::LinuxSerialized);
    let first = fsync_completed_at(&mut m);
    let second = fsync_completed_at(&mut m);
    (second.as_nanos() - first.as_nanos(), m)
}

fn throttled(m: &Machine) -> usize {
    count(m, |k| matches!(k, EventKind::Device(DeviceEvent::NotificationThrottled { .. })))
}

#[test]
fn one_op_per_second_delays_the_second_fsync_by_a_second() {
    let ops = RateLimiterConfig { ops: bucket(1, 1000), bandwidth: None };
    let (gap, m) = gap_between_two_fsyncs(Some(ops));
    assert!((SECOND - SECOND / 20..SECOND + SECOND / 20).contains(&gap), "gap {gap} ns");
    // The second notification was throttled, then retried every 100 ms
    // (throttled again nine times) until the bucket had refilled.
    assert_eq!(throttled(&m), 10);
    let fired = count(&m, |k| matches!(k, EventKind::Device(DeviceEvent::RateLimiterTimerFired)));
    assert_eq!(fired, 10, "the 100 ms timer, ten times");
    assert_eq!(m.device_snapshot(DEV).unwrap().host.syncs_started, 2);
}

#[test]
fn a_bandwidth_of_one_file_per_second_delays_the_second_fsync_by_a_second() {
    let bw = RateLimiterConfig { bandwidth: bucket(2 << 20, 1000), ops: None };
    let (gap, m) = gap_between_two_fsyncs(Some(bw));
    assert!((SECOND - SECOND / 20..SECOND + SECOND / 20).contains(&gap), "gap {gap} ns");
    let bandwidth = count(&m, |k| {
        matches!(k, EventKind::Device(DeviceEvent::NotificationThrottled { cause: Throttle::Bandwidth, .. }))
    });
    assert_eq!(bandwidth, 10, "at the notification and at nine timers");
}

#[test]
fn without_a_limiter_two_fsyncs_complete_at_once() {
    // Negative control of the two above: Firecracker's default.
    let (gap, m) = gap_between_two_fsyncs(None);
    assert!(gap < SECOND / 1000, "gap {gap} ns");
    assert_eq!(throttled(&m), 0);
    // A limiter that allows two ops per second lets both through too.
    let (gap, _) = gap_between_two_fsyncs(Some(RateLimiterConfig { ops: bucket(2, 1000), bandwidth: None }));
    assert!(gap < SECOND / 1000, "gap {gap} ns");
}

#[test]
fn a_batch_of_requests_in_one_notification_costs_one_op() {
    let ops = RateLimiterConfig { ops: bucket(1, 1000), bandwidth: None };
    let mut m = limited(Some(ops), DriverPersonality::LinuxConcurrent);
    let ids = flushers(&mut m, 5);
    m.run_for(SECOND / 10);
    assert!(all_ok(&results(&m, &ids)), "one op paid for all five");
    assert_eq!(throttled(&m), 0);
    let snap = m.device_snapshot(DEV).unwrap();
    assert_eq!((snap.stats.popped, snap.host.syncs_started), (5, 1));
    // The bucket is now empty: the next batch waits for the refill.
    let start = m.now();
    let later = flushers(&mut m, 3);
    m.run_for(SECOND / 2);
    assert_eq!(results(&m, &later), vec![None; 3], "held in the queue");
    m.run_until_idle(1_000_000);
    assert!(all_ok(&results(&m, &later)));
    assert!(m.now().as_nanos() - start.as_nanos() >= SECOND / 2);
}

#[test]
fn a_notification_while_blocked_is_dropped_and_handled_at_the_timer() {
    let ops = RateLimiterConfig { ops: bucket(1, 1000), bandwidth: None };
    let mut m = limited(Some(ops), DriverPersonality::LinuxConcurrent);
    fsync_completed_at(&mut m);
    let b = m.flush(DEV).unwrap();
    m.run_for(SECOND / 20); // B throttled: no op; the timer runs
    let c = m.flush(DEV).unwrap(); // C notifies while blocked
    m.run_for(SECOND / 100);
    let blocked = count(&m, |k| {
        matches!(k, EventKind::Device(DeviceEvent::NotificationThrottled { cause: Throttle::Blocked, .. }))
    });
    assert_eq!(blocked, 1);
    assert_eq!((m.flush_result(DEV, b).unwrap(), m.flush_result(DEV, c).unwrap()), (None, None));
    m.run_until_idle(1_000_000);
    // Both handled by the timer, in one batch: one msync.
    assert_eq!(
        (m.flush_result(DEV, b).unwrap(), m.flush_result(DEV, c).unwrap()),
        (Some(FlushResult::Ok), Some(FlushResult::Ok))
    );
    assert_eq!(m.device_snapshot(DEV).unwrap().host.syncs_started, 2);
}

#[test]
fn a_flush_larger_than_the_bandwidth_bucket_over_consumes_and_blocks() {
    // 1 MiB per second for a 2 MiB file: the first flush goes through (over-
    // consumption: 1 MiB not covered = 1 × size) and blocks for 1 s.
    let bw = RateLimiterConfig { bandwidth: bucket(1 << 20, 1000), ops: None };
    let (gap, m) = gap_between_two_fsyncs(Some(bw));
    let over = m.log().events().iter().find_map(|e| match e.kind {
        EventKind::Device(DeviceEvent::RateLimiterOverConsumed { tokens, retry_at, .. }) => {
            Some((tokens, retry_at, e.at))
        }
        _ => None,
    });
    let (tokens, retry_at, at) = over.expect("over-consumed");
    assert_eq!((tokens, retry_at), (2 << 20, Some(at.plus_nanos(SECOND))));
    // The second notification finds the limiter blocked, is dropped, and the
    // timer at 1 s handles it; it over-consumes again.
    assert!((SECOND - SECOND / 20..SECOND + SECOND / 20).contains(&gap), "gap {gap} ns");
    let over = count(&m, |k| matches!(k, EventKind::Device(DeviceEvent::RateLimiterOverConsumed { .. })));
    assert_eq!(over, 2);
}

#[test]
fn a_rate_limiter_is_firecrackers_only() {
    let mut m = Machine::new(SimConfig::default());
    for vmm in [None, Some(Vmm::Qemu), Some(Vmm::CloudHypervisor), Some(Vmm::Crosvm)] {
        let mut spec = DeviceSpec::new(DEV, 2 << 20);
        spec.vmm = vmm;
        spec.rate_limiter = Some(RateLimiterConfig { ops: bucket(1, 1000), bandwidth: None });
        let e = m.add_device(spec).unwrap_err().to_string();
        assert!(e.contains("Firecracker's") && e.contains("\"firecracker\""), "{e}");
    }
}

#[test]
fn rate_limited_runs_are_deterministic() {
    let run = || {
        let ops = RateLimiterConfig { ops: bucket(3, 700), bandwidth: bucket(3 << 20, 1500) };
        let mut m = limited(Some(ops), DriverPersonality::LinuxConcurrent);
        flushers(&mut m, 40);
        m.run_until_idle(1_000_000);
        m.log().fingerprint()
    };
    assert_eq!(run(), run());
}

#[test]
fn an_over_consumption_under_a_millisecond_wedges_the_device() {
    // bandwidth.size one byte under the 2 MiB file: the first flush passes
    // with a 0 ms timer, which disarms Firecracker's TimerFd; the limiter
    // stays blocked and every later flush waits for ever.
    let bw = RateLimiterConfig { bandwidth: bucket((2 << 20) - 1, 1000), ops: None };
    let mut m = limited(Some(bw), DriverPersonality::LinuxSerialized);
    fsync_completed_at(&mut m);
    let stuck = m.flush(DEV).unwrap();
    m.run_for(60 * SECOND);
    assert_eq!(m.flush_result(DEV, stuck).unwrap(), None);
    let never = count(&m, |k| {
        matches!(k, EventKind::Device(DeviceEvent::NotificationThrottled { cause: Throttle::Blocked, retry_at: None }))
    });
    assert_eq!(never, 1);
    // A crash restarts Firecracker, and with it the limiter.
    m.crash(crate::event::CrashKind::GuestCrash).unwrap();
    fsync_completed_at(&mut m);
}
