//! The `device` target: arbitrary guest memory, ring indices and host sync
//! failures fed to [`PmemDevice::process_now`], round after round, with the
//! device's invariants checked after every round.

use crate::input::{build_memory, contains, overlaps, place, AddrIn, DescIn, PmemIn, Space};
use crate::recorder::{PopOutcome, Recorder, Tracked, WriteRec, Writer};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use pmem_core::device::{
    DeviceEvent, DeviceStats, DeviceStatus, FailureStatus, PmemConfig, PmemDevice, VIRTIO_F_INDIRECT_DESC,
    VIRTIO_F_VERSION_1, VIRTIO_PMEM_F_SHMEM_REGION,
};
use pmem_core::host::{HostBackend, HostStats, SimpleBackend};
use pmem_core::memory::{GuestAddress, GuestMemory, PAGE_SIZE};
use pmem_core::pmem_window::MachineMemory;
use pmem_core::queue::{
    Descriptor, QueueError, SplitQueue, SplitQueueLayout, DESCRIPTOR_SIZE, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT,
    VIRTQ_DESC_F_WRITE,
};
use pmem_core::time::SimTime;
use std::collections::BTreeMap;

/// At most this many rounds, and placements per round, are used.
pub const MAX_ROUNDS: usize = 16;
/// See [`MAX_ROUNDS`].
pub const MAX_PLACES: usize = 32;

/// Where the split ring lives.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum LayoutIn {
    /// The three parts one after another from `base` (in RAM, or in the
    /// pmem window when `in_pmem`).
    Contiguous {
        /// Offset of the descriptor table.
        base: u16,
        /// Put the ring in the pmem window.
        in_pmem: bool,
    },
    /// Each part anywhere (aligned down as the spec requires); parts may
    /// overlap each other and the buffers.
    Split {
        /// Descriptor table.
        desc: AddrIn,
        /// Available ring.
        avail: AddrIn,
        /// Used ring.
        used: AddrIn,
    },
}

/// Something the fuzzer puts into guest memory.
#[derive(Arbitrary, Debug, Clone)]
pub enum Place {
    /// Descriptor `index` of the ring's table (any index, even past the end).
    Desc {
        /// Index.
        index: u16,
        /// Content.
        desc: DescIn,
    },
    /// Consecutive descriptors at `at` (an indirect table).
    Table {
        /// Where.
        at: AddrIn,
        /// Entries.
        descs: Vec<DescIn>,
    },
    /// `avail.ring[slot % size] = head`.
    AvailEntry {
        /// Slot.
        slot: u16,
        /// Head.
        head: u16,
    },
    /// `avail.flags`.
    AvailFlags(u16),
    /// `avail.idx`.
    AvailIdx(u16),
    /// `used.flags` and `used.idx` (the driver must not write them; a
    /// hostile one does).
    UsedHeader(u32),
    /// A `le32` request type.
    RequestType {
        /// Where.
        at: AddrIn,
        /// Type (0 is flush).
        ty: u32,
    },
    /// Raw bytes.
    Bytes {
        /// Where.
        at: AddrIn,
        /// What.
        data: Vec<u8>,
    },
    /// A chain of arbitrary buffers at consecutive descriptors from `head`
    /// (modulo the queue size), linked with NEXT (set on all but the last;
    /// the other flags are the fuzzer's), published at the next available
    /// slot.
    Chain {
        /// Head descriptor (modulo the queue size).
        head: u16,
        /// The buffers (at most 8).
        bufs: Vec<DescIn>,
    },
    /// A well-formed flush chain (as the Linux driver builds it), published
    /// at the next available slot: a shortcut to the interesting states that
    /// the other placements then break.
    Flush {
        /// Head descriptor (modulo the queue size).
        head: u16,
        /// Request word.
        req: AddrIn,
        /// Status word.
        status: AddrIn,
        /// Put the two buffers in an indirect table here.
        indirect: Option<AddrIn>,
        /// Request type (`None`: flush).
        ty: Option<u32>,
    },
}

/// One round: the guest changes memory, publishes chains, then the device
/// runs.
#[derive(Arbitrary, Debug, Clone)]
pub struct Round {
    /// Memory changes.
    pub places: Vec<Place>,
    /// Added to `avail.idx` (as read from memory) after the placements.
    pub bump: u8,
    /// Make the next `n` host syncs fail (0: leave the plan as it is).
    pub fail_syncs: u8,
    /// Host sync latency in nanoseconds.
    pub latency: u16,
    /// Before the device runs, reset it (and the queue) as a driver does
    /// after DEVICE_NEEDS_RESET.
    pub reset: bool,
}

/// The whole input.
#[derive(Arbitrary, Debug, Clone)]
pub struct DeviceInput {
    /// Queue size is `1 << (queue_size_log2 % 9)`: 1..=256.
    pub queue_size_log2: u8,
    /// Ring placement.
    pub layout: LayoutIn,
    /// Negotiate VIRTIO_F_INDIRECT_DESC.
    pub indirect: bool,
    /// Negotiate VIRTIO_PMEM_F_SHMEM_REGION.
    pub shmem: bool,
    /// Answer failures with QEMU's 1 instead of the spec's -1.
    pub qemu_status: bool,
    /// The optional pmem window.
    pub pmem: Option<PmemIn>,
    /// Initial memory content.
    pub setup: Vec<Place>,
    /// Initial `avail.idx`.
    pub avail_idx: u16,
    /// The rounds.
    pub rounds: Vec<Round>,
}

/// Everything needed to check one round.
#[derive(Clone, Debug)]
pub struct RoundObservation {
    /// Queue size.
    pub size: u16,
    /// Ring placement.
    pub layout: SplitQueueLayout,
    /// Whether the used ring can be written (not in a read-only window).
    pub used_ring_writable: bool,
    /// The failure status value.
    pub fail_value: u32,
    /// Device status before and after.
    pub status_before: DeviceStatus,
    /// See `status_before`.
    pub status_after: DeviceStatus,
    /// Queue indices before and after.
    pub next_avail_before: u16,
    /// See `next_avail_before`.
    pub next_avail_after: u16,
    /// See `next_avail_before`.
    pub next_used_before: u16,
    /// See `next_avail_before`.
    pub next_used_after: u16,
    /// `avail.idx` and `used.idx` in memory after the run.
    pub avail_idx_after: Option<u16>,
    /// See `avail_idx_after`.
    pub used_idx_after: Option<u16>,
    /// Device and host counters before and after.
    pub dev_before: DeviceStats,
    /// See `dev_before`.
    pub dev_after: DeviceStats,
    /// See `dev_before`.
    pub host_before: HostStats,
    /// See `dev_before`.
    pub host_after: HostStats,
    /// Host syncs planned to fail when the round began.
    pub fail_budget: u64,
    /// Flushes still waiting after the run.
    pub in_flight_after: usize,
    /// What the queue saw.
    pub pops: Vec<PopOutcome>,
    /// `(head, len)` of every successful `add_used`.
    pub used: Vec<(u16, u32)>,
    /// Faults the queue wrapper saw.
    pub queue_faults: Vec<String>,
    /// Every write the device attempted.
    pub writes: Vec<WriteRec>,
    /// The events of the run.
    pub events: Vec<DeviceEvent>,
}

/// Runs one input. Panics when an invariant fails.
pub fn run(input: &DeviceInput) {
    run_observed(input, |obs| {
        if let Err(e) = check_round(obs) {
            panic!("device invariant violated: {e}\n{obs:#?}");
        }
    });
}

/// Runs one input and hands each round's observation to `observe`.
pub fn run_observed(input: &DeviceInput, mut observe: impl FnMut(&RoundObservation)) {
    let size = 1u16 << (input.queue_size_log2 % 9);
    let (mut mem, space) = build_memory(input.pmem);
    let Some(layout) = resolve_layout(input.layout, size, &space) else { return };
    let mut features = VIRTIO_F_VERSION_1;
    if input.indirect {
        features |= VIRTIO_F_INDIRECT_DESC;
    }
    if input.shmem {
        features |= VIRTIO_PMEM_F_SHMEM_REGION;
    }
    // The device's own region: the window when there is one (its size and
    // start only matter for the config space; the device never touches it).
    let (pstart, psize) = space.pmem.unwrap_or((1 << 32, PAGE_SIZE));
    let mut config = PmemConfig::new("nv1", GuestAddress(pstart), psize);
    config.shmem_region = input.shmem;
    config.indirect_desc = true;
    config.failure_status = if input.qemu_status { FailureStatus::Qemu } else { FailureStatus::Spec };
    let fail_value = config.failure_status.value();
    let mut device = PmemDevice::new(config).expect("a page-aligned window is a valid device config");
    device.negotiate(features).expect("offered features are accepted");
    let Ok(queue) = SplitQueue::new(&mem, layout, device.indirect_negotiated()) else { return };
    let mut queue = Tracked::new(queue);
    let used_ring_writable = region_writable(&mem, layout.used_ring);

    place(&mut mem, &space, layout.avail_idx_addr().0, &input.avail_idx.to_le_bytes());
    for p in input.setup.iter().take(MAX_PLACES) {
        apply(&mut mem, &space, &layout, p);
    }

    let mut host = SimpleBackend::new(PAGE_SIZE);
    let mut fail_budget = 0u64;
    let mut now = SimTime::ZERO;
    // Always at least one round, so the setup alone is run too.
    let default_round = [Round { places: Vec::new(), bump: 0, fail_syncs: 0, latency: 0, reset: false }];
    let rounds: &[Round] = if input.rounds.is_empty() { &default_round } else { &input.rounds };
    for round in rounds.iter().take(MAX_ROUNDS) {
        for p in round.places.iter().take(MAX_PLACES) {
            apply(&mut mem, &space, &layout, p);
        }
        if round.bump > 0 {
            let idx = mem.read_le16(layout.avail_idx_addr()).unwrap_or(0);
            place(&mut mem, &space, layout.avail_idx_addr().0, &idx.wrapping_add(u16::from(round.bump)).to_le_bytes());
        }
        if round.reset {
            device.reset();
            device.negotiate(features).expect("offered features are accepted");
            let q = SplitQueue::new(&mem, layout, device.indirect_negotiated()).expect("layout validated before");
            queue = Tracked::new(q);
        }
        if round.fail_syncs > 0 {
            host.fail_next_syncs(u64::from(round.fail_syncs));
            fail_budget = u64::from(round.fail_syncs);
        }
        // A fresh host per round when the latency changes would lose the
        // failure plan; the latency is set on a copy of the plan instead.
        host = host.clone().with_sync_latency(u64::from(round.latency));

        let status_before = device.status();
        let next_avail_before = queue.inner.next_avail();
        let next_used_before = queue.inner.next_used();
        let dev_before = device.stats().clone();
        let host_before = host.stats();
        let mut events = Vec::new();
        queue.clear();
        let writes = {
            let mut rec = Recorder::new(&mut mem);
            device.process_now(&mut rec, &mut queue, &mut host, now, &mut events);
            rec.writes
        };
        let obs = RoundObservation {
            size,
            layout,
            used_ring_writable,
            fail_value,
            status_before,
            status_after: device.status(),
            next_avail_before,
            next_avail_after: queue.inner.next_avail(),
            next_used_before,
            next_used_after: queue.inner.next_used(),
            avail_idx_after: mem.read_le16(layout.avail_idx_addr()).ok(),
            used_idx_after: mem.read_le16(layout.used_idx_addr()).ok(),
            dev_before,
            dev_after: device.stats().clone(),
            host_before,
            host_after: host.stats(),
            fail_budget,
            in_flight_after: device.in_flight(),
            pops: std::mem::take(&mut queue.pops),
            used: std::mem::take(&mut queue.used),
            queue_faults: std::mem::take(&mut queue.faults),
            writes,
            events,
        };
        observe(&obs);
        let started = obs.host_after.syncs_started - obs.host_before.syncs_started;
        fail_budget -= fail_budget.min(started);
        now = now.plus_nanos(1_000_000);
    }
}

fn resolve_layout(l: LayoutIn, size: u16, space: &Space) -> Option<SplitQueueLayout> {
    match l {
        LayoutIn::Contiguous { base, in_pmem } => {
            let base = if in_pmem { AddrIn::Pmem(u32::from(base)).resolve(space) } else { u64::from(base) };
            SplitQueueLayout::contiguous(GuestAddress(base), size).ok()
        }
        LayoutIn::Split { desc, avail, used } => Some(SplitQueueLayout {
            size,
            desc_table: GuestAddress(desc.resolve(space) & !15),
            avail_ring: GuestAddress(avail.resolve(space) & !1),
            used_ring: GuestAddress(used.resolve(space) & !3),
        }),
    }
}

fn region_writable(mem: &MachineMemory, addr: GuestAddress) -> bool {
    !mem.regions().iter().any(|r| r.readonly && addr.0 >= r.start.0 && addr.0 - r.start.0 < r.size)
}

fn apply(mem: &mut MachineMemory, space: &Space, l: &SplitQueueLayout, p: &Place) {
    let size = l.size;
    match p {
        Place::Desc { index, desc } => {
            let addr = l.desc_table.0.wrapping_add(DESCRIPTOR_SIZE * u64::from(*index));
            place(mem, space, addr, &desc.resolve(space).to_bytes());
        }
        Place::Table { at, descs } => {
            let base = at.resolve(space);
            for (i, d) in descs.iter().take(64).enumerate() {
                place(mem, space, base.wrapping_add(DESCRIPTOR_SIZE * i as u64), &d.resolve(space).to_bytes());
            }
        }
        Place::AvailEntry { slot, head } => place(mem, space, l.avail_entry_addr(*slot).0, &head.to_le_bytes()),
        Place::AvailFlags(f) => place(mem, space, l.avail_flags_addr().0, &f.to_le_bytes()),
        Place::AvailIdx(i) => place(mem, space, l.avail_idx_addr().0, &i.to_le_bytes()),
        Place::UsedHeader(v) => place(mem, space, l.used_flags_addr().0, &v.to_le_bytes()),
        Place::RequestType { at, ty } => place(mem, space, at.resolve(space), &ty.to_le_bytes()),
        Place::Bytes { at, data } => {
            let data = &data[..data.len().min(256)];
            place(mem, space, at.resolve(space), data);
        }
        Place::Chain { head, bufs } => {
            let bufs = &bufs[..bufs.len().min(8)];
            let head = head % size;
            for (i, b) in bufs.iter().enumerate() {
                let index = (u32::from(head) + i as u32) % u32::from(size);
                let mut d = b.resolve(space);
                d.next = ((index + 1) % u32::from(size)) as u16;
                if i + 1 < bufs.len() {
                    d.flags |= VIRTQ_DESC_F_NEXT;
                } else {
                    d.flags &= !VIRTQ_DESC_F_NEXT;
                }
                place(mem, space, l.descriptor_addr(index as u16).0, &d.to_bytes());
            }
            publish(mem, space, l, head);
        }
        Place::Flush { head, req, status, indirect, ty } => {
            let head = head % size;
            let req = req.resolve(space);
            let status = status.resolve(space);
            place(mem, space, req, &ty.unwrap_or(0).to_le_bytes());
            place(mem, space, status, &u32::MAX.to_le_bytes());
            let second = (head + 1) % size;
            let bufs = [
                Descriptor::new(req, 4, VIRTQ_DESC_F_NEXT, if indirect.is_some() { 1 } else { second }),
                Descriptor::new(status, 4, VIRTQ_DESC_F_WRITE, 0),
            ];
            if let Some(t) = indirect {
                let t = t.resolve(space);
                place(mem, space, t, &bufs[0].to_bytes());
                place(mem, space, t.wrapping_add(DESCRIPTOR_SIZE), &bufs[1].to_bytes());
                let d = Descriptor::new(t, 2 * DESCRIPTOR_SIZE as u32, VIRTQ_DESC_F_INDIRECT, 0);
                place(mem, space, l.descriptor_addr(head).0, &d.to_bytes());
            } else {
                place(mem, space, l.descriptor_addr(head).0, &bufs[0].to_bytes());
                place(mem, space, l.descriptor_addr(second).0, &bufs[1].to_bytes());
            }
            publish(mem, space, l, head);
        }
    }
}

/// Makes `head` available at the slot `avail.idx` names, and bumps it.
fn publish(mem: &mut MachineMemory, space: &Space, l: &SplitQueueLayout, head: u16) {
    let idx = mem.read_le16(l.avail_idx_addr()).unwrap_or(0);
    place(mem, space, l.avail_entry_addr(idx).0, &head.to_le_bytes());
    place(mem, space, l.avail_idx_addr().0, &idx.wrapping_add(1).to_le_bytes());
}

/// Checks one round. `Err` names the first invariant that does not hold.
pub fn check_round(o: &RoundObservation) -> Result<(), String> {
    let needs_reset = |s: DeviceStatus| s.has(DeviceStatus::DEVICE_NEEDS_RESET);
    let l = &o.layout;
    if let Some(f) = o.queue_faults.first() {
        return Err(format!("used ring does not hold what add_used wrote: {f}"));
    }

    // A device that needs a reset does nothing at all.
    if needs_reset(o.status_before) {
        if !o.pops.is_empty() || !o.writes.is_empty() || !o.events.is_empty() {
            return Err("the device kept working while DEVICE_NEEDS_RESET was set".into());
        }
        return Ok(());
    }

    // Every flush started is finished within process_now.
    if o.in_flight_after != 0 {
        return Err(format!("{} flushes still in flight after process_now", o.in_flight_after));
    }

    // Popping: every call but the last gave a chain; the last one says why
    // the device stopped: nothing available, or a broken ring and
    // DEVICE_NEEDS_RESET.
    let Some((last, chains)) = o.pops.split_last() else {
        return Err("process_now never looked at the available ring".into());
    };
    if chains.iter().any(|p| !matches!(p, PopOutcome::Chain(_))) {
        return Err("the device popped again after the ring said empty or broken".into());
    }
    let resets = o.events.iter().filter(|e| matches!(e, DeviceEvent::DeviceNeedsReset { .. })).count();
    // A head the device could not return for a used ring it cannot write
    // breaks the queue: DEVICE_NEEDS_RESET, as QEMU's virtio_error.
    let used_ring_broken =
        o.events.iter().any(|e| matches!(e, DeviceEvent::HeadNotReturned { error: QueueError::Memory(_), .. }));
    match last {
        // A head the device could not return because the used ring is not
        // writable: the queue is broken, the device stops (as QEMU's
        // virtio_error) and sets DEVICE_NEEDS_RESET exactly once.
        PopOutcome::Chain(c) => {
            let unreturnable = o.events.iter().any(
                |e| matches!(e, DeviceEvent::HeadNotReturned { head, error: QueueError::Memory(_) } if *head == c.head),
            );
            if !(unreturnable && needs_reset(o.status_after) && resets == 1) {
                return Err("the device stopped popping while chains were available".into());
            }
        }
        PopOutcome::Empty => {
            if !used_ring_broken && (needs_reset(o.status_after) || resets != 0) {
                return Err("DEVICE_NEEDS_RESET set although the ring was drained without error".into());
            }
        }
        PopOutcome::Error(e) => {
            if !needs_reset(o.status_after) || resets != 1 {
                return Err(format!("queue error {e} did not set DEVICE_NEEDS_RESET exactly once"));
            }
            if !matches!(e, QueueError::AvailIndexTooFarAhead { .. }) {
                return Err(format!("queue error {e} is impossible for a validated ring"));
            }
        }
    }
    let popped: Vec<&pmem_core::queue::PoppedChain> =
        o.pops.iter().filter_map(|p| if let PopOutcome::Chain(c) = p { Some(c) } else { None }).collect();
    let n_popped = popped.len();
    if o.next_avail_after != o.next_avail_before.wrapping_add(n_popped as u16) {
        return Err(format!(
            "next_avail went {} -> {} for {n_popped} chains popped",
            o.next_avail_before, o.next_avail_after
        ));
    }
    // The driver cannot publish more than a ring's worth at once; only the
    // device's own writes landing on `avail.idx` (a status or used-ring
    // buffer the guest placed over its avail ring) can publish more while
    // it pops, as a driver refilling concurrently would.
    let avail_idx = l.avail_idx_addr().0;
    let avail_moved_by_device = o.writes.iter().any(|w| w.ok && overlaps(w.addr, w.len, avail_idx, 2));
    if n_popped > usize::from(o.size) && !avail_moved_by_device {
        return Err(format!("{n_popped} chains popped from a queue of {}", o.size));
    }
    let popped_events = o.events.iter().filter(|e| matches!(e, DeviceEvent::ChainPopped { .. })).count();
    if popped_events != n_popped || o.dev_after.popped - o.dev_before.popped != n_popped as u64 {
        return Err(format!("{n_popped} pops but {popped_events} ChainPopped events"));
    }

    // The memory agrees, unless the device's own writes (a status buffer
    // over avail.idx, or a used ring overlapping it) changed avail.idx.
    let avail_idx_clobbered = o.writes.iter().any(|w| overlaps(w.addr, w.len, l.avail_idx_addr().0, 2));
    if !avail_idx_clobbered {
        let Some(avail_idx) = o.avail_idx_after else { return Err("avail.idx unreadable".into()) };
        let ahead = avail_idx.wrapping_sub(o.next_avail_after);
        // (A device that stopped on a head it could not return set
        // DEVICE_NEEDS_RESET for the used ring, checked above.)
        let stopped_unreturnable = used_ring_broken;
        if stopped_unreturnable {
            // Chains after it stay available for after the reset.
        } else if needs_reset(o.status_after) {
            if ahead <= o.size {
                return Err(format!(
                    "DEVICE_NEEDS_RESET although avail.idx {avail_idx} is only {ahead} ahead of {}",
                    o.next_avail_after
                ));
            }
        } else if ahead != 0 {
            return Err(format!(
                "{ahead} available chains left unprocessed (avail.idx {avail_idx}, next_avail {})",
                o.next_avail_after
            ));
        }
    }

    // Returning: used.idx advanced once per returned chain, never more than
    // the chains popped; every id is a valid head; a head comes back as
    // many times as it was offered, unless it cannot be returned.
    let n_used = o.used.len();
    if n_used > n_popped {
        return Err(format!("{n_used} chains returned but only {n_popped} popped"));
    }
    if o.next_used_after != o.next_used_before.wrapping_add(n_used as u16) {
        return Err(format!(
            "next_used went {} -> {} for {n_used} chains returned",
            o.next_used_before, o.next_used_after
        ));
    }
    let used_idx_clobbered =
        o.writes.iter().any(|w| w.by == Writer::Device && overlaps(w.addr, w.len, l.used_idx_addr().0, 2));
    if n_used > 0 && !used_idx_clobbered && o.used_idx_after != Some(o.next_used_after) {
        return Err(format!("used.idx reads {:?}, next_used is {}", o.used_idx_after, o.next_used_after));
    }
    let mut offered: BTreeMap<u16, i64> = BTreeMap::new();
    for c in &popped {
        *offered.entry(c.head).or_default() += 1;
    }
    for &(head, len) in &o.used {
        if head >= o.size {
            return Err(format!("used entry id {head} is not below the queue size {}", o.size));
        }
        if len != 0 && len != 4 {
            return Err(format!("used length {len} for head {head}; 0 or 4 expected"));
        }
        let n = offered.entry(head).or_default();
        *n -= 1;
        if *n < 0 {
            return Err(format!("head {head} returned more often than the driver offered it"));
        }
    }
    let mut not_returned: BTreeMap<u16, i64> = BTreeMap::new();
    for e in &o.events {
        if let DeviceEvent::HeadNotReturned { head, error } = e {
            *not_returned.entry(*head).or_default() += 1;
            let why_ok = match error {
                QueueError::HeadOutOfRange { .. } => *head >= o.size,
                QueueError::Memory(_) => !o.used_ring_writable,
                _ => false,
            };
            if !why_ok {
                return Err(format!("head {head} was not returned: {error}"));
            }
        }
    }
    for (head, n) in &offered {
        if *n != not_returned.get(head).copied().unwrap_or(0) {
            return Err(format!("head {head}: {n} offers neither returned nor reported as unreturnable"));
        }
    }

    // Completion events match the used ring; statuses are 0 or the failure
    // value, and a written status means used length 4.
    let completed: Vec<(u16, u32)> = o
        .events
        .iter()
        .filter_map(|e| {
            if let DeviceEvent::RequestCompleted { head, used_len, .. } = e {
                Some((*head, *used_len))
            } else {
                None
            }
        })
        .collect();
    if completed != o.used {
        return Err(format!("RequestCompleted events {completed:?} differ from the used ring {:?}", o.used));
    }
    let mut statuses_attempted = 0u64;
    for e in &o.events {
        if let DeviceEvent::RequestCompleted { head, status, used_len } = e {
            match status {
                Some(s) if *s != 0 && *s != o.fail_value => {
                    return Err(format!("head {head} got status {s:#x}"));
                }
                Some(_) if *used_len != 4 => {
                    return Err(format!("head {head} has a status but used length {used_len}"))
                }
                None if *used_len != 0 => return Err(format!("head {head} has no status but used length {used_len}")),
                _ => {}
            }
        }
        if matches!(e, DeviceEvent::FlushParsed { .. })
            || matches!(
                e,
                DeviceEvent::RequestRejected { error: pmem_core::device::RequestError::UnknownType { .. }, .. }
            )
        {
            statuses_attempted += 1;
        }
    }

    // Flushes: one host sync each, each finished; the planned failures hit
    // the first syncs, and each failure is reported to the guest.
    let parsed = o.events.iter().filter(|e| matches!(e, DeviceEvent::FlushParsed { .. })).count() as u64;
    let started = o.events.iter().filter(|e| matches!(e, DeviceEvent::HostSyncStarted { .. })).count() as u64;
    let finished = o.events.iter().filter(|e| matches!(e, DeviceEvent::HostSyncFinished { .. })).count() as u64;
    let host_started = o.host_after.syncs_started - o.host_before.syncs_started;
    if parsed != started || started != finished || started != host_started {
        return Err(format!(
            "{parsed} flushes parsed, {started} syncs started, {finished} finished, host saw {host_started}"
        ));
    }
    let failed = o.fail_budget.min(started);
    let dev_failed = o.dev_after.flushes_failed - o.dev_before.flushes_failed;
    let dev_ok = o.dev_after.flushes_ok - o.dev_before.flushes_ok;
    let host_failed = o.host_after.syncs_failed - o.host_before.syncs_failed;
    if dev_failed != failed || host_failed != failed || dev_ok != started - failed {
        return Err(format!(
            "{started} syncs with {failed} planned failures: device counted {dev_ok} ok / {dev_failed} failed, host {host_failed} failed"
        ));
    }

    // Writes: the queue writes only used.idx and used entries; the device
    // writes only into device-writable buffers of chains it popped, at most
    // one 4-byte status per answered request.
    let used_body = (l.used_idx_addr().0, 2 + 8 * u64::from(o.size));
    let writable: Vec<(u64, u64)> = popped
        .iter()
        .filter_map(|c| c.buffers.as_ref().ok())
        .flatten()
        .filter(|d| d.is_write_only())
        .map(|d| (d.addr, u64::from(d.len)))
        .collect();
    let mut status_bytes = 0u64;
    for w in &o.writes {
        match w.by {
            Writer::Queue => {
                if !contains(used_body, (w.addr, w.len)) {
                    return Err(format!("the queue wrote {:#x}+{} outside the used ring", w.addr, w.len));
                }
            }
            Writer::Device => {
                status_bytes += w.len;
                if !writable.iter().any(|&b| contains(b, (w.addr, w.len))) {
                    return Err(format!(
                        "the device wrote {:#x}+{} outside every device-writable buffer it was given",
                        w.addr, w.len
                    ));
                }
            }
        }
    }
    if status_bytes > 4 * statuses_attempted {
        return Err(format!("{status_bytes} status bytes written for {statuses_attempted} answered requests"));
    }

    // An interrupt (or its suppression) follows every batch of returns.
    let irqs =
        o.events.iter().filter(|e| matches!(e, DeviceEvent::Interrupt | DeviceEvent::InterruptSuppressed)).count();
    if (irqs > 0) != (n_used > 0) {
        return Err(format!("{irqs} interrupts for {n_used} chains returned"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::LenIn;

    fn flush(head: u16, req: u16, status: u16, indirect: Option<u16>) -> Place {
        Place::Flush {
            head,
            req: AddrIn::Ram(req),
            status: AddrIn::Ram(status),
            indirect: indirect.map(AddrIn::Ram),
            ty: None,
        }
    }

    fn input(setup: Vec<Place>, rounds: Vec<Round>) -> DeviceInput {
        DeviceInput {
            queue_size_log2: 2,
            layout: LayoutIn::Contiguous { base: 0x1000, in_pmem: false },
            indirect: true,
            shmem: false,
            qemu_status: false,
            pmem: None,
            setup,
            avail_idx: 0,
            rounds,
        }
    }

    fn round(places: Vec<Place>, fail_syncs: u8) -> Round {
        Round { places, bump: 0, fail_syncs, latency: 7, reset: false }
    }

    fn observe(i: &DeviceInput) -> Vec<RoundObservation> {
        let mut v = Vec::new();
        run_observed(i, |o| v.push(o.clone()));
        v
    }

    #[test]
    fn flushes_complete_and_pass_the_checks() {
        let i = input(
            vec![flush(0, 0x8000, 0x8004, None), flush(2, 0x8010, 0x8014, Some(0x9000))],
            vec![round(vec![], 0), round(vec![flush(1, 0x8020, 0x8024, None)], 1)],
        );
        let obs = observe(&i);
        assert_eq!(obs.len(), 2);
        assert_eq!(obs[0].used, vec![(0, 4), (2, 4)]);
        assert_eq!(obs[1].used, vec![(1, 4)]);
        assert_eq!(obs[1].dev_after.flushes_failed, 1);
        for o in &obs {
            check_round(o).unwrap();
        }
        run(&i);
    }

    #[test]
    fn a_corrupt_avail_index_sets_needs_reset_and_passes_the_checks() {
        let i = input(vec![Place::AvailIdx(9)], vec![round(vec![], 0), round(vec![], 0)]);
        let obs = observe(&i);
        assert!(obs[0].status_after.has(DeviceStatus::DEVICE_NEEDS_RESET));
        assert!(obs[1].pops.is_empty());
        run(&i);
    }

    #[test]
    fn malformed_chains_are_returned_with_length_zero() {
        let bad = Place::Desc {
            index: 0,
            desc: DescIn { addr: AddrIn::Raw(u64::MAX - 1), len: LenIn::Four, flags: 0, next: 0 },
        };
        let mut i =
            input(vec![bad, Place::AvailEntry { slot: 0, head: 0 }, Place::AvailEntry { slot: 1, head: 7 }], vec![]);
        i.avail_idx = 2;
        let obs = observe(&i);
        assert_eq!(obs[0].used, vec![(0, 0)]);
        assert_eq!(obs[0].dev_after.unreturnable, 1);
        run(&i);
    }

    #[test]
    fn a_short_status_is_rejected_and_returned_empty() {
        let b = |addr, len, flags| DescIn { addr: AddrIn::Ram(addr), len, flags, next: 0 };
        let chain = Place::Chain { head: 3, bufs: vec![b(0x8000, LenIn::Four, 0), b(0x8004, LenIn::Small(3), 2)] };
        let obs = observe(&input(vec![chain], vec![]));
        assert!(obs[0].events.iter().any(|e| matches!(
            e,
            DeviceEvent::RequestRejected { head: 3, error: pmem_core::device::RequestError::ShortStatus { len: 3 } }
        )));
        assert_eq!(obs[0].used, vec![(3, 0)]);
        check_round(&obs[0]).unwrap();
    }

    /// Inputs that once failed (`fuzz/regressions/device/`, named as
    /// libFuzzer named the artifact) replay cleanly.
    #[test]
    fn regressions_replay_cleanly() {
        use libfuzzer_sys::arbitrary::Unstructured;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/regressions/device");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            // Decoded exactly as `fuzz_target!` does.
            let input = DeviceInput::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap();
            run(&input);
            n += 1;
        }
        assert!(n >= 1);
    }

    // Negative controls: each checker rule can fail.

    fn good() -> RoundObservation {
        let i = input(vec![flush(0, 0x8000, 0x8004, None), flush(1, 0x8010, 0x8014, None)], vec![]);
        observe(&i).remove(0)
    }

    /// More chains than the ring holds, with the last pop still `Empty`.
    fn overpopped() -> RoundObservation {
        let mut o = good();
        let chain = o.pops.iter().find(|p| matches!(p, PopOutcome::Chain(_))).unwrap().clone();
        let extra = usize::from(o.size) + 1 - o.pops.iter().filter(|p| matches!(p, PopOutcome::Chain(_))).count();
        let last = o.pops.len() - 1;
        for _ in 0..extra {
            o.pops.insert(last, chain.clone());
        }
        o.next_avail_after = o.next_avail_before.wrapping_add(o.size + 1);
        o
    }

    #[test]
    fn more_chains_than_the_ring_holds_are_caught() {
        let o = overpopped();
        assert!(check_round(&o).unwrap_err().contains("chains popped from a queue"), "{:?}", check_round(&o));
    }

    #[test]
    fn more_chains_are_allowed_only_when_the_device_wrote_avail_idx() {
        let mut o = overpopped();
        let at = o.layout.avail_idx_addr().0 - 3;
        o.writes.push(WriteRec { addr: at, len: 4, by: Writer::Device, ok: true });
        let e = check_round(&o).err().unwrap_or_default();
        assert!(!e.contains("chains popped from a queue"), "{e}");
    }

    #[test]
    fn a_head_returned_twice_is_caught() {
        let mut o = good();
        o.used[1] = o.used[0];
        assert!(check_round(&o).unwrap_err().contains("returned more often"), "{:?}", check_round(&o));
    }

    #[test]
    fn an_unprocessed_chain_is_caught() {
        let mut o = good();
        o.avail_idx_after = Some(o.avail_idx_after.unwrap() + 1);
        assert!(check_round(&o).unwrap_err().contains("left unprocessed"));
    }

    #[test]
    fn a_write_outside_the_status_buffer_is_caught() {
        let mut o = good();
        o.writes.push(WriteRec { addr: 0x8000, len: 4, by: Writer::Device, ok: true });
        assert!(check_round(&o).unwrap_err().contains("outside every device-writable buffer"));
    }

    #[test]
    fn an_out_of_range_used_id_is_caught() {
        let mut o = good();
        o.used[0].0 = 4;
        assert!(check_round(&o).unwrap_err().contains("not below the queue size"));
    }

    #[test]
    fn a_lost_sync_failure_is_caught() {
        let mut o = good();
        o.fail_budget = 1;
        assert!(check_round(&o).unwrap_err().contains("planned failures"));
    }
}
