//! What the device did: the events [`PmemDevice`](super::PmemDevice) emits.
//!
//! The device owns its event vocabulary, as the host owns
//! [`HostEvent`](crate::host::HostEvent); the machine's log
//! ([`crate::event`]) carries them unchanged. A device event serializes with
//! the same `"event"` tag as every other entry of the log.

use super::rate_limiter::{Throttle, TokenType};
use super::RequestError;
use crate::host::{HostError, SyncTicket};
use crate::queue::{ChainError, QueueError};
use crate::time::SimTime;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One step of the device's queue handling: pop, parse, sync, answer,
/// interrupt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DeviceEvent {
    /// The device took a chain off the available ring.
    ChainPopped {
        /// Its head.
        head: u16,
    },
    /// The device parsed a flush request.
    FlushParsed {
        /// Its head.
        head: u16,
    },
    /// The chain is malformed; it is returned with length 0.
    ChainRejected {
        /// Its head.
        head: u16,
        /// The fault.
        error: ChainError,
    },
    /// The chain is not a valid request.
    RequestRejected {
        /// Its head.
        head: u16,
        /// The fault.
        error: RequestError,
    },
    /// The device asked the host to sync the backing file.
    HostSyncStarted {
        /// The chain waiting for it.
        head: u16,
        /// The host's sync.
        ticket: SyncTicket,
    },
    /// The host sync finished.
    HostSyncFinished {
        /// The host's sync.
        ticket: SyncTicket,
        /// Its result.
        result: Result<(), HostError>,
    },
    /// The device wrote the status and returned the chain.
    RequestCompleted {
        /// Its head.
        head: u16,
        /// Status written (`None` when the chain was malformed).
        status: Option<u32>,
        /// Used length.
        used_len: u32,
    },
    /// A head could not be returned (not a valid descriptor index).
    HeadNotReturned {
        /// The head.
        head: u16,
        /// Why.
        error: QueueError,
    },
    /// The queue is broken; the device needs a reset.
    DeviceNeedsReset {
        /// Why.
        error: QueueError,
    },
    /// The device called QEMU's `virtio_error`: DEVICE_NEEDS_RESET is set,
    /// the device is broken and completes nothing more.
    VirtioError {
        /// QEMU's message (e.g. "virtio-pmem missing request data").
        message: String,
    },
    /// A notification found the available ring empty and the device ignored
    /// it (a spurious notification, harmless outside QEMU).
    NotifyIgnored,
    /// A host sync finished for a chain of a broken device: the chain is
    /// never returned (QEMU's `virtqueue_push` returns early), so the
    /// guest's request stays pending for ever.
    CompletionDropped {
        /// The chain never returned.
        head: u16,
    },
    /// Firecracker's rate limiter did not let the device handle this
    /// notification now: the requests stay in the queue.
    NotificationThrottled {
        /// Why.
        cause: Throttle,
        /// When the limiter's timer fires and handles the queue (`None`:
        /// never, its timer was disarmed by a zero time).
        retry_at: Option<SimTime>,
    },
    /// A notification cost more tokens than a bucket holds: it is handled,
    /// and the limiter blocks until `retry_at` (Firecracker's
    /// over-consumption).
    RateLimiterOverConsumed {
        /// The bucket.
        bucket: TokenType,
        /// The tokens the notification cost.
        tokens: u64,
        /// When the limiter's timer fires (`None`: never, a zero time
        /// disarmed it).
        retry_at: Option<SimTime>,
    },
    /// The rate limiter's timer fired: the limiter unblocks and the device
    /// handles the queue (Firecracker's `process_rate_limiter_event`).
    RateLimiterTimerFired,
    /// The device interrupted the guest.
    Interrupt,
    /// The driver asked for no interrupt; none was sent.
    InterruptSuppressed,
}

impl fmt::Display for DeviceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DeviceEvent::*;
        match self {
            ChainPopped { head } => write!(f, "device pops chain {head}"),
            FlushParsed { head } => write!(f, "chain {head} is a flush request"),
            ChainRejected { head, error } => write!(f, "chain {head} rejected: {error}"),
            RequestRejected { head, error } => write!(f, "request {head} rejected: {error}"),
            HostSyncStarted { head, ticket } => write!(f, "host fsync #{} started for chain {head}", ticket.0),
            HostSyncFinished { ticket, result } => match result {
                Ok(()) => write!(f, "host fsync #{} finished: ok", ticket.0),
                Err(e) => write!(f, "host fsync #{} finished: {e}", ticket.0),
            },
            RequestCompleted { head, status, used_len } => match status {
                Some(s) => write!(f, "chain {head} completed: status {} (used len {used_len})", *s as i32),
                None => write!(f, "chain {head} returned without status (used len {used_len})"),
            },
            HeadNotReturned { head, error } => write!(f, "head {head} cannot be returned: {error}"),
            DeviceNeedsReset { error } => write!(f, "DEVICE_NEEDS_RESET: {error}"),
            VirtioError { message } => write!(f, "virtio_error: {message}; DEVICE_NEEDS_RESET, device broken"),
            NotifyIgnored => write!(f, "notification finds the queue empty; ignored"),
            CompletionDropped { head } => {
                write!(f, "chain {head} synced but never returned: the device is broken")
            }
            NotificationThrottled { cause, retry_at } => {
                let why = match cause {
                    Throttle::Blocked => "the rate limiter is blocked, notification dropped",
                    Throttle::Ops => "rate limiter: no ops token, notification deferred",
                    Throttle::Bandwidth => {
                        "rate limiter: bandwidth bucket cannot pay the file length, notification deferred"
                    }
                };
                write!(f, "{why}; ")?;
                match retry_at {
                    Some(t) => write!(f, "the timer handles the queue at {t}"),
                    None => write!(f, "its timer was disarmed and never fires"),
                }
            }
            RateLimiterOverConsumed { bucket, tokens, retry_at } => {
                write!(f, "rate limiter: {tokens} tokens over-consume the {} bucket; blocked ", bucket.bucket_name())?;
                match retry_at {
                    Some(t) => write!(f, "until {t}"),
                    None => write!(f, "for ever (a zero timer time disarms the timer)"),
                }
            }
            RateLimiterTimerFired => write!(f, "rate limiter timer fires; the device handles the queue"),
            Interrupt => write!(f, "device interrupts the guest"),
            InterruptSuppressed => write!(f, "interrupt suppressed (VIRTQ_AVAIL_F_NO_INTERRUPT)"),
        }
    }
}

/// Appends one event to whatever collects the device's events (a
/// `Vec<DeviceEvent>`, or the machine's `Vec<EventKind>`).
pub(super) fn emit<E: Extend<DeviceEvent> + ?Sized>(out: &mut E, event: DeviceEvent) {
    out.extend(std::iter::once(event));
}
