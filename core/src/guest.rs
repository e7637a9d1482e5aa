//! The guest's virtio-pmem driver, after Linux `drivers/nvdimm/nd_virtio.c`.
//!
//! - One request per flush: a 4-byte device-readable `type` and a 4-byte
//!   device-writable `ret`. With VIRTIO_F_INDIRECT_DESC negotiated the two go
//!   into an indirect table (one ring slot per flush), as Linux's
//!   `virtqueue_add_sgs` does for every multi-buffer chain; otherwise they
//!   take two ring descriptors.
//! - Several flushes may be in flight.
//! - A flush that finds the ring full (`-ENOSPC`) is parked on a FIFO list
//!   and waits, without timeout; every completion the interrupt handler
//!   reaps wakes the first parked request, which then retries.
//! - The status is read when the chain comes back; any non-zero value is
//!   -EIO to the caller. The status word is poisoned (`0xFFFF_FFFF`) before
//!   the request is sent, so a device that returns the chain without writing
//!   a status reads as a failure rather than as a stale success.
//!
//! # Personalities
//!
//! A driver without a [`DriverPersonality`] is pmemlab's generic driver,
//! described above (every scenario written before personalities runs on
//! it). The two Linux personalities add what `nd_virtio.c` and
//! `virtio_ring.c` do (see `docs/personalities.md`):
//! - a flush while the device status has DEVICE_NEEDS_RESET fails with -EIO
//!   at once ("virtio pmem device needs a reset"), nothing is sent;
//! - a full ring: `virtqueue_add_split` returns -ENOSPC but first, "for
//!   historical reasons", notifies the device (the log shows `FlushParked`
//!   followed by `Notified`); the request waits on `req_list` until
//!   `virtio_pmem_host_ack` reaps a completion and wakes it;
//! - [`DriverPersonality::LinuxSerialized`] also takes `flush_lock`: at most
//!   one flush is outstanding, the others wait for the mutex in call order.

use crate::device::DeviceStatus;
use crate::event::{EventKind, RequestId};
use crate::memory::{GuestAddress, GuestMemory};
use crate::queue::{Buffer, DriverError, DriverQueue, SplitQueueLayout};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Bytes of guest memory per request slot: 4 type + 4 ret, padded, then a
/// 2-entry indirect table (32 bytes).
pub const SLOT_BYTES: u64 = 48;

/// What the application gets back from a flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlushResult {
    /// The device said the writes are durable.
    Ok,
    /// `-EIO`: the device reported a failure.
    Eio,
}

/// A Linux virtio-pmem driver version (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriverPersonality {
    /// `nd_virtio` with `flush_lock` ("nvdimm: virtio_pmem: serialize flush
    /// requests"): one flush outstanding at a time. Debian's 6.1.0-57
    /// carries it, so the default.
    #[default]
    LinuxSerialized,
    /// The older `nd_virtio`: concurrent flushes, up to a full ring.
    LinuxConcurrent,
}

/// Every driver personality.
pub const ALL_DRIVERS: [DriverPersonality; 2] =
    [DriverPersonality::LinuxSerialized, DriverPersonality::LinuxConcurrent];

impl DriverPersonality {
    /// The name scenarios use: `"linux-serialized"`, `"linux-concurrent"`.
    pub fn name(self) -> &'static str {
        match self {
            DriverPersonality::LinuxSerialized => "linux-serialized",
            DriverPersonality::LinuxConcurrent => "linux-concurrent",
        }
    }
}

impl std::fmt::Display for DriverPersonality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A driver name that is not one of [`ALL_DRIVERS`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a driver pmemlab models; expected \"linux-serialized\" (nd_virtio with flush_lock) or \"linux-concurrent\" (without it)")]
pub struct UnknownDriver(pub String);

impl std::str::FromStr for DriverPersonality {
    type Err = UnknownDriver;

    fn from_str(s: &str) -> Result<Self, UnknownDriver> {
        ALL_DRIVERS.into_iter().find(|d| d.name() == s).ok_or_else(|| UnknownDriver(s.to_string()))
    }
}

/// What became of one attempt to send a flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    /// Made available: notify the device.
    Available,
    /// The ring was full: the request waits on `req_list`.
    Parked,
    /// It failed at once (-EIO).
    Failed,
}

/// The results of finished flushes, by request id. Ids are given in order
/// from 0, so the results are a dense array (one byte per flush asked for,
/// a lookup that costs the same after a million flushes as after one).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct FlushResults(Vec<Option<FlushResult>>);

impl FlushResults {
    fn get(&self, id: RequestId) -> Option<FlushResult> {
        usize::try_from(id.0).ok().and_then(|i| self.0.get(i).copied().flatten())
    }

    fn insert(&mut self, id: RequestId, result: FlushResult) {
        let Ok(i) = usize::try_from(id.0) else { return };
        if i >= self.0.len() {
            self.0.resize(i + 1, None);
        }
        self.0[i] = Some(result);
    }
}

/// The driver of one virtio-pmem device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PmemDriver {
    queue: DriverQueue,
    slots: GuestAddress,
    free_slots: Vec<u16>,
    parked: VecDeque<RequestId>,
    in_flight: BTreeMap<u16, (RequestId, u16)>,
    results: FlushResults,
    indirect: bool,
    next_id: u64,
    #[serde(default)]
    personality: Option<DriverPersonality>,
    /// The flush holding `flush_lock` (serialized driver).
    #[serde(default)]
    lock_holder: Option<RequestId>,
    /// Flushes waiting for `flush_lock`, in call order.
    #[serde(default)]
    lock_waiters: VecDeque<RequestId>,
}

impl PmemDriver {
    /// Sets up the queue at `layout` and `layout.size` request slots at
    /// `slots` (which must hold `SLOT_BYTES * size` bytes of guest RAM).
    pub fn new<M: GuestMemory + ?Sized>(
        mem: &mut M,
        layout: SplitQueueLayout,
        slots: GuestAddress,
        indirect: bool,
    ) -> Result<Self, DriverError> {
        let queue = DriverQueue::new(mem, layout)?;
        Ok(PmemDriver {
            queue,
            slots,
            free_slots: (0..layout.size).rev().collect(),
            parked: VecDeque::new(),
            in_flight: BTreeMap::new(),
            results: FlushResults::default(),
            indirect,
            next_id: 0,
            personality: None,
            lock_holder: None,
            lock_waiters: VecDeque::new(),
        })
    }

    /// The same driver as a Linux version (`None`: the generic driver).
    pub fn with_personality(mut self, personality: Option<DriverPersonality>) -> Self {
        self.personality = personality;
        self
    }

    /// The driver's personality (`None`: the generic driver).
    pub fn personality(&self) -> Option<DriverPersonality> {
        self.personality
    }

    /// Flushes waiting for `flush_lock` (serialized driver).
    pub fn waiting_for_lock(&self) -> usize {
        self.lock_waiters.len()
    }

    /// The driver's queue state.
    pub fn queue(&self) -> &DriverQueue {
        &self.queue
    }

    /// Flushes waiting for a free slot.
    pub fn parked(&self) -> usize {
        self.parked.len()
    }

    /// Flushes sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The result of a finished flush.
    pub fn result(&self, id: RequestId) -> Option<FlushResult> {
        self.results.get(id)
    }

    /// The application asks for a flush of a device whose status register
    /// reads `device_status`. Returns its id and whether the caller should
    /// notify the device (the request was made available, or a Linux
    /// driver's full ring forced a notification).
    pub fn flush<M: GuestMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        device_status: DeviceStatus,
        out: &mut Vec<EventKind>,
    ) -> (RequestId, bool) {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        out.push(EventKind::FlushRequested { request: id });
        let Some(personality) = self.personality else {
            return (id, self.submit(mem, id, out) == Sent::Available);
        };
        if device_status.has(DeviceStatus::DEVICE_NEEDS_RESET) {
            out.push(EventKind::DriverFault { error: DriverError::DeviceNeedsReset });
            self.results.insert(id, FlushResult::Eio);
            return (id, false);
        }
        if personality == DriverPersonality::LinuxSerialized {
            if self.lock_holder.is_some() {
                self.lock_waiters.push_back(id);
                return (id, false);
            }
            self.lock_holder = Some(id);
        }
        (id, self.send(mem, id, out))
    }

    /// Sends a flush as a Linux driver: a full ring still notifies; a
    /// flush that failed at once gives up `flush_lock`. True when the
    /// device should be notified.
    fn send<M: GuestMemory + ?Sized>(&mut self, mem: &mut M, id: RequestId, out: &mut Vec<EventKind>) -> bool {
        match self.submit(mem, id, out) {
            Sent::Available => true,
            // virtqueue_add_split: "for historical reasons, we force a
            // notify here if there are outgoing parts to the buffer".
            Sent::Parked => true,
            Sent::Failed => {
                self.release_lock(id);
                false
            }
        }
    }

    /// `id` is done: if it held `flush_lock`, the lock is free.
    fn release_lock(&mut self, id: RequestId) {
        if self.lock_holder == Some(id) {
            self.lock_holder = None;
        }
    }

    /// Hands `flush_lock` to the next waiter, if free, and sends its flush.
    /// True when the device should be notified.
    fn pass_lock<M: GuestMemory + ?Sized>(&mut self, mem: &mut M, out: &mut Vec<EventKind>) -> bool {
        let mut notify = false;
        while self.lock_holder.is_none() {
            let Some(next) = self.lock_waiters.pop_front() else {
                break;
            };
            self.lock_holder = Some(next);
            notify |= self.send(mem, next, out);
        }
        notify
    }

    /// A flush that never reaches a device (NVDIMM: there is no flush
    /// queue); it returns success at once.
    pub fn flush_locally(&mut self, out: &mut Vec<EventKind>) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        out.push(EventKind::FlushRequested { request: id });
        self.results.insert(id, FlushResult::Ok);
        id
    }

    /// Re-initialises the queue after a device reset; requests in flight and
    /// parked are lost (their callers died with the guest). Request ids keep
    /// counting and results of finished requests are kept.
    pub fn reinit<M: GuestMemory + ?Sized>(&mut self, mem: &mut M) -> Result<(), DriverError> {
        let layout = *self.queue.layout();
        self.queue = DriverQueue::new(mem, layout)?;
        self.free_slots = (0..layout.size).rev().collect();
        self.parked.clear();
        self.in_flight.clear();
        self.lock_holder = None;
        self.lock_waiters.clear();
        Ok(())
    }

    fn submit<M: GuestMemory + ?Sized>(&mut self, mem: &mut M, id: RequestId, out: &mut Vec<EventKind>) -> Sent {
        let Some(&slot) = self.free_slots.last() else {
            self.parked.push_back(id);
            out.push(EventKind::FlushParked { request: id });
            return Sent::Parked;
        };
        let base = self.slots.0 + SLOT_BYTES * u64::from(slot);
        let mut req = [0u8; 8];
        req[4..].copy_from_slice(&u32::MAX.to_le_bytes());
        if let Err(e) = mem.write(GuestAddress(base), &req) {
            out.push(EventKind::DriverFault { error: e.into() });
            self.results.insert(id, FlushResult::Eio);
            return Sent::Failed;
        }
        let bufs = [Buffer::readable(base, 4), Buffer::writable(base + 4, 4)];
        let added = if self.indirect {
            self.queue.add_indirect_chain(mem, GuestAddress(base + 16), &bufs)
        } else {
            self.queue.add_chain(mem, &bufs)
        };
        match added {
            Ok(head) => {
                self.free_slots.pop();
                self.in_flight.insert(head, (id, slot));
                out.push(EventKind::ChainAvailable { request: id, head, avail_idx: self.queue.avail_idx() });
                Sent::Available
            }
            Err(DriverError::RingFull { .. }) => {
                self.parked.push_back(id);
                out.push(EventKind::FlushParked { request: id });
                Sent::Parked
            }
            Err(error) => {
                out.push(EventKind::DriverFault { error });
                self.results.insert(id, FlushResult::Eio);
                Sent::Failed
            }
        }
    }

    /// The interrupt handler: reaps used chains, returns their results to
    /// the callers and wakes one parked flush per completion. Returns true
    /// when a woken flush was made available (the caller should notify).
    pub fn on_interrupt<M: GuestMemory + ?Sized>(&mut self, mem: &mut M, out: &mut Vec<EventKind>) -> bool {
        let used = match self.queue.reclaim_used(mem) {
            Ok(u) => u,
            Err(error) => {
                out.push(EventKind::DriverFault { error });
                return false;
            }
        };
        let mut woken = Vec::new();
        for u in used {
            let Some((id, slot)) = self.in_flight.remove(&u.head) else {
                continue;
            };
            let base = self.slots.0 + SLOT_BYTES * u64::from(slot);
            let status = mem.read_le32(GuestAddress(base + 4)).unwrap_or(u32::MAX);
            let ok = status == 0;
            self.results.insert(id, if ok { FlushResult::Ok } else { FlushResult::Eio });
            out.push(EventKind::FlushReturned { request: id, status, ok });
            self.release_lock(id);
            self.free_slots.push(slot);
            if let Some(p) = self.parked.pop_front() {
                woken.push(p);
            }
        }
        let mut notify = false;
        for id in woken {
            out.push(EventKind::FlushWoken { request: id });
            notify |= match self.personality {
                None => self.submit(mem, id, out) == Sent::Available,
                Some(_) => self.send(mem, id, out),
            };
        }
        notify | self.pass_lock(mem, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::GuestMemoryMap;
    use crate::queue::{DeviceQueue, SplitQueue};

    const OK: DeviceStatus = DeviceStatus(0x0f);

    /// A driver of `personality` over a ring of `size`, no indirect tables.
    fn driver(personality: Option<DriverPersonality>, size: u16) -> (GuestMemoryMap, PmemDriver, SplitQueue) {
        let mut mem = GuestMemoryMap::new(GuestAddress(0), 1 << 20);
        let layout = SplitQueueLayout::contiguous(GuestAddress(0x1000), size).unwrap();
        let drv = PmemDriver::new(&mut mem, layout, GuestAddress(0x8000), false).unwrap().with_personality(personality);
        let q = SplitQueue::new(&mem, layout, false).unwrap();
        (mem, drv, q)
    }

    /// The device side returns every available chain with status 0.
    fn complete_all(mem: &mut GuestMemoryMap, q: &mut SplitQueue) {
        while let Some(c) = q.pop(mem).unwrap() {
            let bufs = c.buffers.unwrap();
            mem.write_le32(GuestAddress(bufs[1].addr), 0).unwrap();
            q.add_used(mem, c.head, 4).unwrap();
        }
    }

    #[test]
    fn a_full_ring_forces_a_notify_for_the_linux_drivers_only() {
        // A ring of 2 holds one two-descriptor flush.
        for (p, forced) in [(None, false), (Some(DriverPersonality::LinuxConcurrent), true)] {
            let (mut mem, mut drv, _) = driver(p, 2);
            let mut out = Vec::new();
            assert!(drv.flush(&mut mem, OK, &mut out).1);
            let (_, notify) = drv.flush(&mut mem, OK, &mut out);
            assert_eq!(notify, forced, "{p:?}");
            assert_eq!(drv.parked(), 1);
        }
    }

    #[test]
    fn the_serialized_driver_keeps_one_flush_outstanding_and_hands_the_lock_on() {
        let (mut mem, mut drv, mut q) = driver(Some(DriverPersonality::LinuxSerialized), 8);
        let mut out = Vec::new();
        let ids: Vec<RequestId> = (0..3).map(|_| drv.flush(&mut mem, OK, &mut out).0).collect();
        assert_eq!((drv.in_flight(), drv.waiting_for_lock()), (1, 2));
        for round in 1..=3 {
            complete_all(&mut mem, &mut q);
            let notify = drv.on_interrupt(&mut mem, &mut out);
            assert_eq!(notify, round < 3, "round {round}: the next holder sends its flush");
            assert_eq!(drv.in_flight(), usize::from(round < 3));
        }
        assert!(ids.iter().all(|&id| drv.result(id) == Some(FlushResult::Ok)));
        // Control: the concurrent driver sends all three at once.
        let (mut mem, mut drv, _) = driver(Some(DriverPersonality::LinuxConcurrent), 8);
        for _ in 0..3 {
            drv.flush(&mut mem, OK, &mut out);
        }
        assert_eq!((drv.in_flight(), drv.waiting_for_lock()), (3, 0));
    }

    #[test]
    fn a_device_needing_reset_fails_a_linux_flush_at_once() {
        let broken = DeviceStatus(0x4f);
        let (mut mem, mut drv, _) = driver(Some(DriverPersonality::LinuxSerialized), 8);
        let mut out = Vec::new();
        let (id, notify) = drv.flush(&mut mem, broken, &mut out);
        assert!(!notify);
        assert_eq!((drv.result(id), drv.in_flight()), (Some(FlushResult::Eio), 0));
        assert!(out.contains(&EventKind::DriverFault { error: DriverError::DeviceNeedsReset }));
        // The generic driver does not read the status: it sends.
        let (mut mem, mut drv, _) = driver(None, 8);
        assert!(drv.flush(&mut mem, broken, &mut out).1);
    }

    #[test]
    fn driver_names_round_trip() {
        for d in ALL_DRIVERS {
            assert_eq!(d.name().parse::<DriverPersonality>(), Ok(d));
        }
        let e = "bsd".parse::<DriverPersonality>().unwrap_err().to_string();
        assert!(e.contains("'bsd'") && e.contains("linux-concurrent"), "{e}");
        assert_eq!(DriverPersonality::default(), DriverPersonality::LinuxSerialized);
    }
}
