//! The event log: everything that happens in a run, in order.
//!
//! The UI, the CLI and reports read events and snapshots; they never reach
//! into the model's internals. Events are serde-serializable, and a log has a
//! stable fingerprint so two runs can be compared cheaply.

pub mod fold;

use crate::device::DeviceEvent;
use crate::host::{HostEvent, TearGranularity};
use crate::memory::GuestAddress;
use crate::queue::DriverError;
use crate::rng::fnv1a64;
use crate::time::SimTime;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A device's id as events carry it (see [`Event::device`]).
pub type DeviceName = smol_str::SmolStr;

/// Identifies a flush the guest application asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub u64);

/// Bytes carried in an event, serialized as a lowercase hex string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct HexBytes(pub std::sync::Arc<[u8]>);

impl Serialize for HexBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(self.0.len() * 2);
        for b in self.0.iter() {
            out.push_str(&format!("{b:02x}"));
        }
        s.serialize_str(&out)
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        decode_hex(&s).map(|v| HexBytes(v.into())).map_err(serde::de::Error::custom)
    }
}

/// Decodes a hex string (even length, 0-9a-fA-F).
pub fn decode_hex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("hex string has odd length {}", s.len()));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(s.get(i..i + 2).unwrap_or("zz"), 16)
                .map_err(|_| format!("'{}' is not hex", s.get(i..i + 2).unwrap_or("?")))
        })
        .collect()
}

/// The kinds of failure pmemlab injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashKind {
    /// The guest kernel crashed and rebooted: nothing is lost on the host.
    GuestCrash,
    /// The VMM process was killed and restarted: the host page cache survives.
    VmmKill,
    /// The host lost power: everything not on disk is lost.
    PowerFailure,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// A device was plugged in (at start or hot-plugged).
    DeviceAdded {
        /// Guest-physical start.
        start: GuestAddress,
        /// Size in bytes.
        size: u64,
        /// Added while the machine was running.
        hotplug: bool,
        /// Pages per host folio of its backing file (1, and left out of the
        /// JSON, unless the host page cache uses larger folios).
        #[serde(default = "one_page", skip_serializing_if = "is_one_page")]
        folio_pages: u64,
    },
    /// The driver negotiated features.
    FeaturesNegotiated {
        /// Bits the device offered.
        offered: u64,
        /// Bits the driver accepted.
        accepted: u64,
    },
    /// A request to remove a device was refused.
    UnplugRefused {
        /// Why.
        reason: String,
    },
    /// The guest stored bytes into the pmem region (through DAX).
    GuestWrite {
        /// Offset in the region.
        offset: u64,
        /// Bytes written.
        len: u64,
        /// The bytes; `None` in a log that keeps no stored bytes
        /// ([`LogRetention::Recent`], whose machine reads a store's content
        /// from the file when it needs it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<HexBytes>,
    },
    /// A guest store to a `readonly=on` device, dropped as QEMU drops it:
    /// the guest is not told, nothing changes.
    StoreDropped {
        /// Offset in the region.
        offset: u64,
        /// Bytes the guest tried to store.
        len: u64,
    },
    /// A page-level event of the host page cache.
    Host(HostEvent),
    /// A failure was injected.
    Crash {
        /// Which.
        kind: CrashKind,
        /// Pages whose newest content was lost.
        lost_pages: Vec<u64>,
        /// Pages that tore.
        torn_pages: Vec<u64>,
        /// Tear granularity in effect.
        tear: TearGranularity,
    },
    /// The device was reset and the guest driver re-initialised (after a
    /// crash or DEVICE_NEEDS_RESET).
    DeviceRestarted,
    /// A guest flush on an NVDIMM: there is no flush request to the host.
    NvdimmFlush {
        /// The request.
        request: RequestId,
        /// True for emulated NVDIMM (the host is never told: nothing is
        /// made durable), false for a real NVDIMM (stores already durable).
        emulated: bool,
    },
    /// The guest tried `mmap(MAP_SYNC)`.
    MapSync {
        /// Whether it succeeded.
        ok: bool,
        /// What the guest sees.
        detail: String,
    },
    /// Sync failures were injected into the host.
    FaultInjected {
        /// What.
        detail: String,
    },
    /// The guest loaded bytes from the pmem region.
    GuestRead {
        /// Offset in the region.
        offset: u64,
        /// Bytes read.
        len: u64,
    },
    /// The application asked the driver for a flush.
    FlushRequested {
        /// The request.
        request: RequestId,
    },
    /// The ring was full; the request waits for a completion.
    FlushParked {
        /// The request.
        request: RequestId,
    },
    /// The driver wrote a chain and made it available.
    ChainAvailable {
        /// The request.
        request: RequestId,
        /// Its head descriptor.
        head: u16,
        /// `avail.idx` after publishing.
        avail_idx: u16,
    },
    /// The driver notified the device.
    Notified,
    /// The driver returned a flush to the application.
    FlushReturned {
        /// The request.
        request: RequestId,
        /// The status read.
        status: u32,
        /// True when the caller sees success (status 0), false for EIO.
        ok: bool,
    },
    /// A parked request got its slot in the ring.
    FlushWoken {
        /// The request.
        request: RequestId,
    },
    /// The driver found the device misbehaving.
    DriverFault {
        /// What it found.
        error: DriverError,
    },
    /// A step of a device's queue handling (serialized with its own
    /// `"event"` tag, so the log's wire format does not show the nesting).
    #[serde(untagged)]
    Device(DeviceEvent),
}

impl From<DeviceEvent> for EventKind {
    fn from(e: DeviceEvent) -> Self {
        EventKind::Device(e)
    }
}

/// The device emits into the machine's list of event kinds directly.
impl Extend<DeviceEvent> for Vec<EventKind> {
    fn extend<I: IntoIterator<Item = DeviceEvent>>(&mut self, iter: I) {
        self.extend(iter.into_iter().map(EventKind::Device));
    }
}

/// One entry of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the log.
    pub seq: u64,
    /// When it happened.
    pub at: SimTime,
    /// The device it concerns, if any (a name of up to 23 bytes is held
    /// inline: copying it to every event costs no allocation and no atomic
    /// count, which on the store path would wait for the store's bytes to
    /// leave the CPU's store buffer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceName>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>6} {:>14} ", self.seq, self.at.to_string())?;
        if let Some(d) = &self.device {
            write!(f, "[{d}] ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use EventKind::*;
        match self {
            DeviceAdded { start, size, hotplug, folio_pages } => {
                write!(f, "device {} at {start}, {size} bytes", if *hotplug { "hot-plugged" } else { "added" })?;
                if *folio_pages > 1 {
                    write!(f, " (host folios of {} KiB)", folio_pages * 4)?;
                }
                Ok(())
            }
            FeaturesNegotiated { offered, accepted } => {
                write!(f, "features negotiated: offered {offered:#x}, accepted {accepted:#x}")
            }
            UnplugRefused { reason } => write!(f, "unplug refused: {reason}"),
            GuestWrite { offset, len, .. } => write!(f, "guest stores {len} bytes at offset {offset:#x}"),
            StoreDropped { offset, len } => write!(
                f,
                "guest store of {len} bytes at offset {offset:#x} dropped: the device is readonly=on (QEMU maps the file read-only and ignores the write; the guest is not told)"
            ),
            Host(h) => match h {
                HostEvent::PageDirtied { page, pages } => write!(f, "host {} dirty", Pages(*page, *pages)),
                HostEvent::WritebackStarted { page, pages, reason, until } => {
                    write!(f, "host {} under writeback ({reason:?}) until {until}", Pages(*page, *pages))
                }
                HostEvent::WritebackFinished { page, pages, ok: true } => {
                    write!(f, "host {} written to disk", Pages(*page, *pages))
                }
                HostEvent::WritebackFinished { page, pages, ok: false } => {
                    write!(f, "host {} write FAILED (EIO); marked clean anyway", Pages(*page, *pages))
                }
                HostEvent::PageEvicted { page, pages, lost: false } => {
                    write!(f, "host {} evicted", Pages(*page, *pages))
                }
                HostEvent::PageEvicted { page, pages, lost: true } => {
                    write!(f, "host {} evicted: its data never reached disk and is lost", Pages(*page, *pages))
                }
                HostEvent::WriterThrottled { dirty } => {
                    write!(f, "writer throttled: {dirty} dirty pages above dirty_ratio")
                }
            },
            Crash { kind, lost_pages, torn_pages, tear } => write!(
                f,
                "{}: {} page(s) lost, {} torn (tear unit {tear})",
                match kind {
                    CrashKind::GuestCrash => "GUEST CRASH",
                    CrashKind::VmmKill => "VMM KILLED",
                    CrashKind::PowerFailure => "HOST POWER FAILURE",
                },
                lost_pages.len(),
                torn_pages.len()
            ),
            DeviceRestarted => write!(f, "device reset; driver re-initialised"),
            NvdimmFlush { request, emulated: true } => {
                write!(f, "flush #{} on emulated NVDIMM: stays in the guest, the host is never told", request.0)
            }
            NvdimmFlush { request, emulated: false } => {
                write!(f, "flush #{} on real NVDIMM: stores are already durable", request.0)
            }
            MapSync { ok, detail } => write!(f, "mmap(MAP_SYNC) {}: {detail}", if *ok { "ok" } else { "refused" }),
            FaultInjected { detail } => write!(f, "fault injected: {detail}"),
            GuestRead { offset, len } => write!(f, "guest loads {len} bytes at offset {offset:#x}"),
            FlushRequested { request } => write!(f, "application asks for flush #{}", request.0),
            FlushParked { request } => write!(f, "ring full: flush #{} waits for a free slot", request.0),
            ChainAvailable { request, head, avail_idx } => {
                write!(f, "flush #{} made available as head {head} (avail.idx={avail_idx})", request.0)
            }
            Notified => write!(f, "driver notifies the device"),
            FlushReturned { request, status, ok } => {
                if *ok {
                    write!(f, "flush #{} returns 0 to the application", request.0)
                } else {
                    write!(f, "flush #{} returns -EIO to the application (status {})", request.0, *status as i32)
                }
            }
            FlushWoken { request } => write!(f, "flush #{} woken: a slot is free", request.0),
            DriverFault { error } => write!(f, "driver: {error}"),
            Device(d) => d.fmt(f),
        }
    }
}

/// How much of its event log a machine keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogRetention {
    /// Every event, with every stored byte: the record a run exports, a
    /// replay and the crash history are built from (the default).
    #[default]
    All,
    /// About the last `n` events (between `n` and `2n`): for runs without
    /// end (`pmemlab soak`) and measurements, whose memory must stay flat.
    /// Sequence numbers still count every event; what a crash could leave
    /// is known from the machine's durability model, not from the log, so
    /// a store's event keeps its offset and length but not its bytes
    /// (`data` is empty), and the model reads the bytes it needs from the
    /// file when a flush completes instead of copying them on the store.
    Recent(usize),
}

fn one_page() -> u64 {
    1
}

fn is_one_page(n: &u64) -> bool {
    *n == 1
}

/// "page N", or "folio of K pages from page N", in an event's text.
struct Pages(u64, u64);

impl fmt::Display for Pages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            1 => write!(f, "page {}", self.0),
            n => write!(f, "folio of {n} pages from page {}", self.0),
        }
    }
}

/// An append-only list of events (all of them, or the most recent: see
/// [`LogRetention`]). Two logs are equal when they hold the same events.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EventLog {
    events: Vec<Event>,
    /// Sequence number of `events[0]` (events before it were let go).
    #[serde(skip)]
    first_seq: u64,
    #[serde(skip)]
    retention: LogRetention,
}

impl PartialEq for EventLog {
    fn eq(&self, other: &Self) -> bool {
        self.events == other.events
    }
}

impl Eq for EventLog {}

impl EventLog {
    /// An empty log that keeps every event.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty log that keeps what `retention` says.
    pub fn with_retention(retention: LogRetention) -> Self {
        EventLog { retention, ..Self::default() }
    }

    /// What the log keeps.
    pub fn retention(&self) -> LogRetention {
        self.retention
    }

    /// Appends an event.
    pub fn push(&mut self, at: SimTime, device: Option<DeviceName>, kind: EventKind) {
        if let LogRetention::Recent(n) = self.retention {
            let n = n.max(1);
            if self.events.len() >= 2 * n {
                let drop = self.events.len() - n;
                for e in self.events.drain(..drop) {
                    // A stored page's buffer goes back for the next store
                    // (kept only when nothing else holds it).
                    if let EventKind::GuestWrite { data: Some(data), .. } = e.kind {
                        crate::host::page_pool::recycle(data.0);
                    }
                }
                self.first_seq += drop as u64;
            }
        }
        let seq = self.len() as u64;
        self.events.push(Event { seq, at, device, kind });
    }

    /// The events kept, in order (all of them unless the log keeps only
    /// the recent ones).
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The events kept whose sequence number is `seq` or later.
    pub fn since(&self, seq: usize) -> &[Event] {
        let skip = (seq as u64).saturating_sub(self.first_seq).min(self.events.len() as u64);
        &self.events[skip as usize..]
    }

    /// Number of events logged so far (kept or not): the next event's
    /// sequence number.
    pub fn len(&self) -> usize {
        (self.first_seq as usize) + self.events.len()
    }

    /// True when nothing was ever logged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A stable 64-bit fingerprint of the whole log (FNV-1a over its JSON
    /// form), equal for equal logs on every target.
    pub fn fingerprint(&self) -> u64 {
        let json = serde_json::to_vec(&self.events).unwrap_or_default();
        fnv1a64(&json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{HostError, SyncTicket};

    fn log_of(kinds: Vec<EventKind>) -> EventLog {
        let mut log = EventLog::new();
        for k in kinds {
            log.push(SimTime(7), Some("nv1".into()), k);
        }
        log
    }

    #[test]
    fn device_events_serialize_flat_with_the_log_tag() {
        let log = log_of(vec![
            DeviceEvent::ChainPopped { head: 3 }.into(),
            DeviceEvent::Interrupt.into(),
            DeviceEvent::HostSyncFinished { ticket: SyncTicket(2), result: Err(HostError::SyncFailed) }.into(),
            EventKind::Notified,
        ]);
        let json = serde_json::to_string(log.events()).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"[{"seq":0,"at":7,"device":"nv1","event":"chain_popped","head":3},"#,
                r#"{"seq":1,"at":7,"device":"nv1","event":"interrupt"},"#,
                r#"{"seq":2,"at":7,"device":"nv1","event":"host_sync_finished","ticket":2,"result":{"Err":"SyncFailed"}},"#,
                r#"{"seq":3,"at":7,"device":"nv1","event":"notified"}]"#
            )
        );
    }

    #[test]
    fn a_log_with_device_events_reads_back_equal() {
        let log = log_of(vec![
            EventKind::FlushRequested { request: RequestId(1) },
            DeviceEvent::RequestCompleted { head: 0, status: Some(0), used_len: 4 }.into(),
            DeviceEvent::InterruptSuppressed.into(),
            EventKind::DeviceRestarted,
        ]);
        let back: EventLog = serde_json::from_str(&serde_json::to_string(&log).unwrap()).unwrap();
        assert_eq!(back, log);
        assert_eq!(back.fingerprint(), log.fingerprint());
        assert!(matches!(back.events()[1].kind, EventKind::Device(DeviceEvent::RequestCompleted { .. })));
    }
}
