//! The virtio-pmem device state machine.

use super::config::{ConfigSpace, DeviceStatus, PmemConfig, VIRTIO_F_VERSION_1, VIRTIO_PMEM_F_SHMEM_REGION};
use super::event::{emit, DeviceEvent};
use super::personality::{BrokenChain, EmptyNotify, HostSide, PopPolicy, SyncGranularity, UnknownType};
use super::rate_limiter::{RateLimiter, Throttle, TokenType};
use super::request::{parse, scatter, RequestError, RequestKind, StatusBuffers};
use super::DeviceError;
use crate::host::{HostBackend, HostError, SyncTicket};
use crate::memory::GuestMemory;
use crate::queue::{Descriptor, DeviceQueue};
use crate::time::SimTime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A flush request waiting for its host sync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingFlush {
    /// The chain's head.
    pub head: u16,
    /// Where the status goes.
    pub status: StatusBuffers,
}

/// What the device does with one popped chain.
enum Answer {
    /// A valid flush: it waits for a host sync.
    Flush(PendingFlush),
    /// Returned now, with this status (if any) written to these buffers.
    Status(Option<u32>, StatusBuffers),
    /// No usable request: returned with length 0, or (QEMU) `virtio_error`.
    Broken,
}

/// Counters of one device.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStats {
    /// Chains popped.
    pub popped: u64,
    /// Flushes that succeeded.
    pub flushes_ok: u64,
    /// Flushes answered with the failure status (host sync failed).
    pub flushes_failed: u64,
    /// Malformed chains returned with length 0.
    pub rejected: u64,
    /// Unknown request types answered with the failure status.
    pub unknown_types: u64,
    /// Heads that could not be returned.
    pub unreturnable: u64,
    /// Interrupts sent.
    pub interrupts: u64,
    /// Flushes synced on the host but never returned, because the device
    /// was broken when the sync finished (QEMU).
    #[serde(default)]
    pub dropped: u64,
}

/// One virtio-pmem device: configuration, negotiated features, status and
/// the requests waiting for a host sync. The queue and guest memory are
/// passed in, so the same logic runs over any [`DeviceQueue`] and
/// [`GuestMemory`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PmemDevice {
    config: PmemConfig,
    acked: u64,
    status: DeviceStatus,
    waiting: BTreeMap<SyncTicket, Vec<PendingFlush>>,
    stats: DeviceStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limiter: Option<RateLimiter>,
}

impl PmemDevice {
    /// A device with `config` (validated), created at the start of the run.
    pub fn new(config: PmemConfig) -> Result<Self, DeviceError> {
        Self::new_at(config, SimTime::ZERO)
    }

    /// A device with `config` (validated) created at `now`: its rate
    /// limiter's buckets start full at `now`.
    pub fn new_at(config: PmemConfig, now: SimTime) -> Result<Self, DeviceError> {
        config.validate()?;
        let limiter = config.rate_limiter.as_ref().map(|c| RateLimiter::new(c, now));
        Ok(PmemDevice {
            config,
            acked: 0,
            status: DeviceStatus::default(),
            waiting: BTreeMap::new(),
            stats: DeviceStats::default(),
            limiter,
        })
    }

    /// The rate limiter's state, if the device has one.
    pub fn rate_limiter(&self) -> Option<&RateLimiter> {
        self.limiter.as_ref()
    }

    /// When the rate limiter's timer fires, if it is armed.
    pub fn rate_limiter_fires_at(&self) -> Option<SimTime> {
        self.limiter.as_ref().and_then(RateLimiter::fires_at)
    }

    /// A new VMM process (after a crash): the rate limiter starts afresh at
    /// `now`, buckets full and timer idle.
    pub fn restart_rate_limiter(&mut self, now: SimTime) {
        self.limiter = self.config.rate_limiter.as_ref().map(|c| RateLimiter::new(c, now));
    }

    /// Firecracker's gate in front of [`PmemDevice::process_queue`] for a
    /// notification at `now` (`process_queue` and the start of
    /// `handle_queue` in its `pmem/device.rs`). True: handle the queue now.
    /// False: the rate limiter throttled the notification (logged); the
    /// requests stay in the queue until [`PmemDevice::rate_limiter_timer`].
    /// Without a limiter always true.
    pub fn admit_notification<E>(&mut self, now: SimTime, queue_empty: bool, out: &mut E) -> bool
    where
        E: Extend<DeviceEvent> + ?Sized,
    {
        match &self.limiter {
            None => true,
            Some(l) if l.is_blocked() => {
                emit(out, DeviceEvent::NotificationThrottled { cause: Throttle::Blocked, retry_at: l.fires_at() });
                false
            }
            // An empty queue costs nothing (`handle_queue` returns first).
            Some(_) if queue_empty => true,
            Some(_) => self.consume_for_notification(now, out),
        }
    }

    /// The rate limiter's timer fired at `now` (`process_rate_limiter_event`):
    /// the limiter unblocks and the queue is handled as at a notification.
    /// True: handle the queue now. False for a spurious timer, an empty
    /// queue, or a limiter that throttles again.
    pub fn rate_limiter_timer<E>(&mut self, now: SimTime, queue_empty: bool, out: &mut E) -> bool
    where
        E: Extend<DeviceEvent> + ?Sized,
    {
        let Some(l) = self.limiter.as_mut() else {
            return false;
        };
        if l.timer_fired(now).is_err() {
            return false;
        }
        emit(out, DeviceEvent::RateLimiterTimerFired);
        !queue_empty && self.consume_for_notification(now, out)
    }

    /// One op and the whole file length per notification, before popping:
    /// Firecracker coalesces the notification's flushes into one `msync`
    /// of the file. A bandwidth refusal gives the op back.
    fn consume_for_notification<E>(&mut self, now: SimTime, out: &mut E) -> bool
    where
        E: Extend<DeviceEvent> + ?Sized,
    {
        let file_len = self.config.size;
        let Some(l) = self.limiter.as_mut() else {
            return true;
        };
        let cause = if !l.consume(1, TokenType::Ops, now) {
            Throttle::Ops
        } else if !l.consume(file_len, TokenType::Bytes, now) {
            l.manual_replenish(1, TokenType::Ops);
            Throttle::Bandwidth
        } else {
            if l.is_blocked() {
                let retry_at = l.fires_at();
                emit(
                    out,
                    DeviceEvent::RateLimiterOverConsumed { bucket: TokenType::Bytes, tokens: file_len, retry_at },
                );
            }
            return true;
        };
        emit(out, DeviceEvent::NotificationThrottled { cause, retry_at: l.fires_at() });
        false
    }

    /// The configuration.
    pub fn config(&self) -> &PmemConfig {
        &self.config
    }

    /// Feature bits offered to the driver.
    pub fn offered_features(&self) -> u64 {
        self.config.offered_features()
    }

    /// Feature bits the driver accepted.
    pub fn acked_features(&self) -> u64 {
        self.acked
    }

    /// True when indirect descriptors were negotiated.
    pub fn indirect_negotiated(&self) -> bool {
        self.acked & super::VIRTIO_F_INDIRECT_DESC != 0
    }

    /// The driver accepts `features`; the device checks them (FEATURES_OK).
    pub fn negotiate(&mut self, features: u64) -> Result<u64, DeviceError> {
        let offered = self.offered_features();
        if features & !offered != 0 {
            return Err(DeviceError::UnofferedFeatures { accepted: features, offered });
        }
        if features & VIRTIO_F_VERSION_1 == 0 {
            return Err(DeviceError::NoVersion1);
        }
        self.acked = features;
        self.status = DeviceStatus(
            DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER | DeviceStatus::FEATURES_OK | DeviceStatus::DRIVER_OK,
        );
        Ok(features)
    }

    /// The configuration space the driver reads. With SHMEM_REGION
    /// negotiated the region is announced as shared-memory region 0 and
    /// `start`/`size` read 0, as the spec recommends.
    pub fn config_space(&self) -> ConfigSpace {
        if self.acked & VIRTIO_PMEM_F_SHMEM_REGION != 0 {
            ConfigSpace { start: 0, size: 0 }
        } else {
            ConfigSpace { start: self.config.start.0, size: self.config.size }
        }
    }

    /// Shared-memory region 0 `(start, size)` when SHMEM_REGION is negotiated.
    pub fn shared_memory_region(&self) -> Option<(u64, u64)> {
        (self.acked & VIRTIO_PMEM_F_SHMEM_REGION != 0).then_some((self.config.start.0, self.config.size))
    }

    /// The device status register.
    pub fn status(&self) -> DeviceStatus {
        self.status
    }

    /// Counters.
    pub fn stats(&self) -> &DeviceStats {
        &self.stats
    }

    /// Flushes waiting for a host sync.
    pub fn in_flight(&self) -> usize {
        self.waiting.values().map(Vec::len).sum()
    }

    /// A driver reset: clears the status (and DEVICE_NEEDS_RESET) and forgets
    /// waiting requests.
    pub fn reset(&mut self) {
        self.status = DeviceStatus::default();
        self.acked = 0;
        self.waiting.clear();
    }

    /// Handles one notification: pops available chains (every one, or one
    /// for QEMU) and answers them, except valid flushes, which are returned
    /// for the caller to start host syncs ([`PmemDevice::start_syncs`]).
    /// Returns nothing when the device needs a reset. An empty queue is
    /// ignored, or, for QEMU, breaks the device (`virtio_error`).
    pub fn process_queue<M, Q, E>(&mut self, mem: &mut M, queue: &mut Q, out: &mut E) -> Vec<PendingFlush>
    where
        M: GuestMemory + ?Sized,
        Q: DeviceQueue<M> + ?Sized,
        E: Extend<DeviceEvent> + ?Sized,
    {
        let mut flushes = Vec::new();
        if self.broken() {
            return flushes;
        }
        let side = self.config.host_side();
        let mut popped = 0u64;
        let mut returned = false;
        let one = side.pops == PopPolicy::OnePerNotify;
        while !self.broken() && (popped == 0 || !one) {
            let chain = match queue.pop(mem) {
                Ok(Some(c)) => c,
                Ok(None) => {
                    if popped == 0 {
                        self.empty_notify(side, out);
                    }
                    break;
                }
                Err(error) => {
                    self.status.0 |= DeviceStatus::DEVICE_NEEDS_RESET;
                    emit(out, DeviceEvent::DeviceNeedsReset { error });
                    break;
                }
            };
            popped += 1;
            self.stats.popped += 1;
            let head = chain.head;
            emit(out, DeviceEvent::ChainPopped { head });
            let answer = match chain.buffers {
                Ok(buffers) => self.answer(mem, side, head, &buffers, out),
                Err(error) => {
                    self.stats.rejected += 1;
                    emit(out, DeviceEvent::ChainRejected { head, error });
                    Answer::Broken
                }
            };
            match answer {
                Answer::Flush(f) => flushes.push(f),
                Answer::Status(status, bufs) => returned |= self.give_back(mem, queue, head, status, &bufs, out),
                Answer::Broken if side.broken_chain == BrokenChain::NeedsReset => {
                    self.virtio_error("virtio-pmem request not proper", out);
                }
                Answer::Broken => returned |= self.give_back(mem, queue, head, None, &[], out),
            }
        }
        if returned {
            self.interrupt(mem, queue, out);
        }
        flushes
    }

    /// True when the device needs a reset and processes nothing.
    fn broken(&self) -> bool {
        self.status.has(DeviceStatus::DEVICE_NEEDS_RESET)
    }

    /// QEMU's `virtio_error`: DEVICE_NEEDS_RESET, and the device is broken.
    fn virtio_error<E: Extend<DeviceEvent> + ?Sized>(&mut self, message: &str, out: &mut E) {
        self.status.0 |= DeviceStatus::DEVICE_NEEDS_RESET;
        emit(out, DeviceEvent::VirtioError { message: message.to_string() });
    }

    /// A notification that found nothing to pop.
    fn empty_notify<E: Extend<DeviceEvent> + ?Sized>(&mut self, side: HostSide, out: &mut E) {
        match side.empty_notify {
            EmptyNotify::NeedsReset => self.virtio_error("virtio-pmem missing request data", out),
            EmptyNotify::Ignore if side.named => emit(out, DeviceEvent::NotifyIgnored),
            EmptyNotify::Ignore => {}
        }
    }

    /// Parses a chain's buffers and decides its answer.
    fn answer<M, E>(&mut self, mem: &M, side: HostSide, head: u16, buffers: &[Descriptor], out: &mut E) -> Answer
    where
        M: GuestMemory + ?Sized,
        E: Extend<DeviceEvent> + ?Sized,
    {
        match parse(mem, buffers) {
            Ok(req) => match req.kind {
                RequestKind::Flush => {
                    emit(out, DeviceEvent::FlushParsed { head });
                    Answer::Flush(PendingFlush { head, status: req.status })
                }
            },
            Err(RequestError::UnknownType { status, .. }) if side.unknown_type == UnknownType::Flush => {
                // QEMU never reads the request type: any request is a flush.
                emit(out, DeviceEvent::FlushParsed { head });
                Answer::Flush(PendingFlush { head, status })
            }
            Err(RequestError::UnknownType { request_type, status }) => {
                self.stats.unknown_types += 1;
                let error = RequestError::UnknownType { request_type, status: status.clone() };
                emit(out, DeviceEvent::RequestRejected { head, error });
                match side.unknown_type {
                    UnknownType::ReturnEmpty => Answer::Status(None, Vec::new()),
                    _ => Answer::Status(Some(side.failure_status.value()), status),
                }
            }
            Err(error) => {
                self.stats.rejected += 1;
                let improper = error.is_improper_chain();
                emit(out, DeviceEvent::RequestRejected { head, error });
                if improper {
                    Answer::Broken
                } else {
                    Answer::Status(None, Vec::new())
                }
            }
        }
    }

    /// Starts the host syncs `flushes` need at `now`: one per flush, or one
    /// for the whole batch (Firecracker), and records which flush waits for
    /// which sync.
    pub fn start_syncs<E: Extend<DeviceEvent> + ?Sized>(
        &mut self,
        flushes: Vec<PendingFlush>,
        host: &mut dyn HostBackend,
        now: SimTime,
        out: &mut E,
    ) {
        let per_batch = self.config.host_side().sync == SyncGranularity::PerBatch;
        let mut batch = None;
        for flush in flushes {
            let ticket = match batch {
                Some(t) if per_batch => t,
                _ => host.begin_sync(now),
            };
            batch = Some(ticket);
            self.sync_started(flush, ticket, out);
        }
    }

    /// Records that the host sync `ticket` was started for `flush`.
    pub fn sync_started<E: Extend<DeviceEvent> + ?Sized>(
        &mut self,
        flush: PendingFlush,
        ticket: SyncTicket,
        out: &mut E,
    ) {
        emit(out, DeviceEvent::HostSyncStarted { head: flush.head, ticket });
        self.waiting.entry(ticket).or_default().push(flush);
    }

    /// Completes the flush waiting for `ticket` with the sync's result: the
    /// status is written, the chain returned and the guest interrupted.
    /// Returns false when no flush waits for that ticket.
    pub fn complete_sync<M, Q, E>(
        &mut self,
        mem: &mut M,
        queue: &mut Q,
        ticket: SyncTicket,
        result: Result<(), HostError>,
        out: &mut E,
    ) -> bool
    where
        M: GuestMemory + ?Sized,
        Q: DeviceQueue<M> + ?Sized,
        E: Extend<DeviceEvent> + ?Sized,
    {
        emit(out, DeviceEvent::HostSyncFinished { ticket, result: result.clone() });
        let Some(flushes) = self.waiting.remove(&ticket) else {
            return false;
        };
        let status = match result {
            Ok(()) => 0,
            Err(_) => self.config.host_side().failure_status.value(),
        };
        let mut returned = false;
        for flush in flushes {
            if status == 0 {
                self.stats.flushes_ok += 1;
            } else {
                self.stats.flushes_failed += 1;
            }
            if self.config.vmm.is_some() && self.broken() {
                // QEMU's virtqueue_push returns early on a broken device.
                self.stats.dropped += 1;
                emit(out, DeviceEvent::CompletionDropped { head: flush.head });
                continue;
            }
            returned |= self.give_back(mem, queue, flush.head, Some(status), &flush.status, out);
        }
        if returned {
            self.interrupt(mem, queue, out);
        }
        true
    }

    /// Processes the queue and runs every flush to completion on `host` at
    /// once (for tests, fuzzing and benchmarks: no simulated time passes,
    /// and a rate limiter is not asked).
    pub fn process_now<M, Q, E>(
        &mut self,
        mem: &mut M,
        queue: &mut Q,
        host: &mut dyn HostBackend,
        now: SimTime,
        out: &mut E,
    ) where
        M: GuestMemory + ?Sized,
        Q: DeviceQueue<M> + ?Sized,
        E: Extend<DeviceEvent> + ?Sized,
    {
        let flushes = self.process_queue(mem, queue, out);
        self.start_syncs(flushes, host, now, out);
        let mut t = now;
        while let Some(next) = host.next_event_time() {
            t = t.max(next);
            for done in host.advance(t) {
                self.complete_sync(mem, queue, done.ticket, done.result, out);
            }
        }
    }

    /// Writes the status (if any) and returns the head; true if returned.
    fn give_back<M, Q, E>(
        &mut self,
        mem: &mut M,
        queue: &mut Q,
        head: u16,
        status: Option<u32>,
        status_bufs: &[(u64, u32)],
        out: &mut E,
    ) -> bool
    where
        M: GuestMemory + ?Sized,
        Q: DeviceQueue<M> + ?Sized,
        E: Extend<DeviceEvent> + ?Sized,
    {
        let mut used_len = 0;
        let mut written = None;
        if let Some(s) = status {
            if scatter(mem, status_bufs, &s.to_le_bytes()).is_ok() {
                used_len = 4;
                written = Some(s);
            }
        }
        match queue.add_used(mem, head, used_len) {
            Ok(()) => {
                emit(out, DeviceEvent::RequestCompleted { head, status: written, used_len });
                true
            }
            Err(error) => {
                self.stats.unreturnable += 1;
                // A used ring the device cannot write (e.g. in read-only
                // memory) is a broken queue: stop, as QEMU's virtio_error.
                let broken = matches!(error, crate::queue::QueueError::Memory(_));
                emit(out, DeviceEvent::HeadNotReturned { head, error: error.clone() });
                if broken && !self.status.has(DeviceStatus::DEVICE_NEEDS_RESET) {
                    self.status.0 |= DeviceStatus::DEVICE_NEEDS_RESET;
                    emit(out, DeviceEvent::DeviceNeedsReset { error });
                }
                false
            }
        }
    }

    fn interrupt<M, Q, E>(&mut self, mem: &mut M, queue: &mut Q, out: &mut E)
    where
        M: GuestMemory + ?Sized,
        Q: DeviceQueue<M> + ?Sized,
        E: Extend<DeviceEvent> + ?Sized,
    {
        match queue.needs_interrupt(mem) {
            Ok(false) => emit(out, DeviceEvent::InterruptSuppressed),
            _ => {
                self.stats.interrupts += 1;
                emit(out, DeviceEvent::Interrupt);
            }
        }
    }
}
