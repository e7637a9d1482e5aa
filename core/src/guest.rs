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

/// The driver of one virtio-pmem device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PmemDriver {
    queue: DriverQueue,
    slots: GuestAddress,
    free_slots: Vec<u16>,
    parked: VecDeque<RequestId>,
    in_flight: BTreeMap<u16, (RequestId, u16)>,
    results: BTreeMap<RequestId, FlushResult>,
    indirect: bool,
    next_id: u64,
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
            results: BTreeMap::new(),
            indirect,
            next_id: 0,
        })
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
        self.results.get(&id).copied()
    }

    /// The application asks for a flush. Returns its id and whether it was
    /// made available (so the caller should notify the device).
    pub fn flush<M: GuestMemory + ?Sized>(&mut self, mem: &mut M, out: &mut Vec<EventKind>) -> (RequestId, bool) {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        out.push(EventKind::FlushRequested { request: id });
        let sent = self.submit(mem, id, out);
        (id, sent)
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
        Ok(())
    }

    fn submit<M: GuestMemory + ?Sized>(&mut self, mem: &mut M, id: RequestId, out: &mut Vec<EventKind>) -> bool {
        let Some(&slot) = self.free_slots.last() else {
            self.parked.push_back(id);
            out.push(EventKind::FlushParked { request: id });
            return false;
        };
        let base = self.slots.0 + SLOT_BYTES * u64::from(slot);
        let mut req = [0u8; 8];
        req[4..].copy_from_slice(&u32::MAX.to_le_bytes());
        if let Err(e) = mem.write(GuestAddress(base), &req) {
            out.push(EventKind::DriverFault { error: e.into() });
            self.results.insert(id, FlushResult::Eio);
            return false;
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
                true
            }
            Err(DriverError::RingFull { .. }) => {
                self.parked.push_back(id);
                out.push(EventKind::FlushParked { request: id });
                false
            }
            Err(error) => {
                out.push(EventKind::DriverFault { error });
                self.results.insert(id, FlushResult::Eio);
                false
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
            self.free_slots.push(slot);
            if let Some(p) = self.parked.pop_front() {
                woken.push(p);
            }
        }
        let mut notify = false;
        for id in woken {
            out.push(EventKind::FlushWoken { request: id });
            notify |= self.submit(mem, id, out);
        }
        notify
    }
}
