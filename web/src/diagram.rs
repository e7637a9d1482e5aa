//! The system diagram: where in the machine each event of the log happens,
//! and what the diagram shows at a position of the log.
//!
//! The diagram draws one device's path, top to bottom: the guest
//! application, its DAX mapping and the guest driver, the virtqueue
//! (descriptor table, available ring, used ring), the device in the VMM,
//! the host page cache of the backing file, and the disk. A store goes
//! application → DAX mapping → host page cache; a flush request goes
//! application → driver → available ring → device → host page cache → disk
//! and back through the used ring. Nothing here models the machine: every
//! place comes from one event of the core's log ([`place_of`]), and the
//! counts come from the log's fold and the ring bytes in guest memory.

use crate::timeline::STAGES;
use pmem_core::device::DeviceEvent;
use pmem_core::event::{Event, EventKind, RequestId};
use pmem_core::host::HostEvent;

/// A component of the diagram (a box, or a part of the virtqueue box).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Place {
    /// The guest application.
    App,
    /// The DAX mapping of the device into the application.
    Dax,
    /// The guest's virtio-pmem driver.
    Driver,
    /// The virtqueue's descriptor table.
    DescTable,
    /// The virtqueue's available ring (driver → device).
    AvailRing,
    /// The virtqueue's used ring (device → driver).
    UsedRing,
    /// The virtio-pmem device in the VMM.
    Device,
    /// The host page cache of the backing file.
    PageCache,
    /// The host's disk.
    Disk,
}

impl Place {
    /// Every place, in the order the diagram lists them.
    pub const ALL: [Place; 9] = [
        Place::App,
        Place::Dax,
        Place::Driver,
        Place::DescTable,
        Place::AvailRing,
        Place::UsedRing,
        Place::Device,
        Place::PageCache,
        Place::Disk,
    ];

    /// A stable key (element ids, test hooks).
    pub fn key(self) -> &'static str {
        match self {
            Place::App => "app",
            Place::Dax => "dax",
            Place::Driver => "driver",
            Place::DescTable => "desc",
            Place::AvailRing => "avail",
            Place::UsedRing => "used",
            Place::Device => "device",
            Place::PageCache => "cache",
            Place::Disk => "disk",
        }
    }

    /// The label drawn on the component.
    pub fn label(self) -> &'static str {
        match self {
            Place::App => "Guest application",
            Place::Dax => "DAX mapping",
            Place::Driver => "Guest driver",
            Place::DescTable => "Descriptor table",
            Place::AvailRing => "Available ring",
            Place::UsedRing => "Used ring",
            Place::Device => "Device (VMM)",
            Place::PageCache => "Host page cache",
            Place::Disk => "Disk",
        }
    }

    /// The component's box in the diagram's coordinates (`x, y, w, h` in a
    /// 1000 × 480 view box).
    pub fn rect(self) -> (f64, f64, f64, f64) {
        match self {
            Place::App => (20.0, 16.0, 960.0, 64.0),
            Place::Dax => (20.0, 118.0, 280.0, 96.0),
            Place::Driver => (330.0, 118.0, 180.0, 96.0),
            Place::DescTable => (540.0, 146.0, 140.0, 68.0),
            Place::AvailRing => (690.0, 146.0, 140.0, 68.0),
            Place::UsedRing => (840.0, 146.0, 140.0, 68.0),
            Place::Device => (580.0, 272.0, 400.0, 80.0),
            Place::PageCache => (20.0, 272.0, 520.0, 80.0),
            Place::Disk => (20.0, 392.0, 960.0, 72.0),
        }
    }

    /// Where a travelling token sits on this component.
    pub fn anchor(self) -> (f64, f64) {
        let (x, y, w, h) = self.rect();
        // Stores and writebacks travel on the left, flushes on the right.
        match self {
            Place::App => (460.0, y + h / 2.0),
            Place::Disk => (280.0, y + h / 2.0),
            _ => (x + w / 2.0, y + h / 2.0),
        }
    }
}

/// The view box of the diagram.
pub const VIEW_BOX: (f64, f64) = (1000.0, 480.0);

/// Where event `e` happens, for the device `device` the diagram draws
/// (`None`: the event belongs to another device or has no place, such as
/// a feature negotiation).
pub fn place_of(e: &Event, device: &str) -> Option<Place> {
    if e.device.as_deref().is_some_and(|d| d != device) {
        return None;
    }
    use EventKind::*;
    Some(match &e.kind {
        GuestWrite { .. } | StoreDropped { .. } => Place::Dax,
        GuestRead { .. } | FlushRequested { .. } | FlushReturned { .. } | FlushWoken { .. } | MapSync { .. } => {
            Place::App
        }
        FlushParked { .. } | NvdimmFlush { .. } | DriverFault { .. } => Place::Driver,
        ChainAvailable { .. } => Place::AvailRing,
        Notified | DeviceAdded { .. } | DeviceRestarted | UnplugRefused { .. } | FaultInjected { .. } => Place::Device,
        Host(HostEvent::WritebackFinished { ok: true, .. }) => Place::Disk,
        Host(_) => Place::PageCache,
        Crash { .. } => Place::PageCache,
        Device(DeviceEvent::HostSyncStarted { .. }) => Place::PageCache,
        Device(DeviceEvent::RequestCompleted { .. }) => Place::UsedRing,
        Device(DeviceEvent::Interrupt) => Place::Driver,
        Device(_) => Place::Device,
        FeaturesNegotiated { .. } => return None,
    })
}

/// What travels: a store, a flush request, a page written back, a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    /// A guest store.
    Store,
    /// A flush request.
    Flush(RequestId),
    /// A page under writeback.
    Page(u64),
    /// A failure.
    Crash,
    /// Anything else (a device added, a read).
    Other,
}

impl Token {
    /// The token of event `e`.
    pub fn of(e: &Event) -> Token {
        use EventKind::*;
        match &e.kind {
            GuestWrite { .. } => Token::Store,
            FlushRequested { request }
            | FlushParked { request }
            | ChainAvailable { request, .. }
            | FlushReturned { request, .. }
            | FlushWoken { request }
            | NvdimmFlush { request, .. } => Token::Flush(*request),
            Host(
                HostEvent::WritebackStarted { page, .. }
                | HostEvent::WritebackFinished { page, .. }
                | HostEvent::PageDirtied { page, .. },
            ) => Token::Page(*page),
            Crash { .. } => Token::Crash,
            Notified | Device(_) => Token::Other,
            _ => Token::Other,
        }
    }

    /// A short text drawn on the token.
    pub fn label(self) -> String {
        match self {
            Token::Store => "store".into(),
            Token::Flush(r) => format!("flush #{}", r.0),
            Token::Page(p) => format!("page {p}"),
            Token::Crash => "power!".into(),
            Token::Other => String::new(),
        }
    }
}

/// The diagram at one position of the log: the last event applied, where
/// it happened, where the event with a place before it happened (the
/// token travels from there), and the flush in flight.
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    /// Index of the event shown (the last one applied), if any.
    pub event: Option<usize>,
    /// Where it happened.
    pub place: Option<Place>,
    /// Where the event with a place before it happened.
    pub from: Option<Place>,
    /// What travels.
    pub token: Token,
    /// The flush stage the event is, when it is one of the nine.
    pub stage: Option<usize>,
    /// A sentence for the caption and screen readers.
    pub caption: String,
}

/// The stage of a flush's journey event `e` is (index into
/// [`STAGES`]).
pub fn flush_stage(e: &Event) -> Option<usize> {
    use EventKind::*;
    Some(match &e.kind {
        FlushRequested { .. } => 0,
        ChainAvailable { .. } => 1,
        Notified => 2,
        Device(DeviceEvent::ChainPopped { .. }) => 3,
        Device(DeviceEvent::HostSyncStarted { .. }) => 4,
        Device(DeviceEvent::HostSyncFinished { .. }) => 5,
        Device(DeviceEvent::RequestCompleted { .. }) => 6,
        Device(DeviceEvent::Interrupt) => 7,
        FlushReturned { .. } => 8,
        _ => return None,
    })
}

impl Scene {
    /// The scene after the first `k` events of `events`, for `device`.
    pub fn at(events: &[Event], k: usize, device: &str) -> Scene {
        let k = k.min(events.len());
        let mut placed = events[..k].iter().enumerate().rev().filter_map(|(i, e)| place_of(e, device).map(|p| (i, p)));
        let Some((i, place)) = placed.next() else {
            return Scene {
                event: k.checked_sub(1),
                place: None,
                from: None,
                token: Token::Other,
                stage: None,
                caption: "Nothing has happened on this device yet.".into(),
            };
        };
        let from = placed.next().map(|(_, p)| p);
        let e = &events[i];
        let stage = flush_stage(e);
        let caption = match stage {
            Some(s) => format!("Flush stage {} of 9: {} ({})", s + 1, STAGES[s], e.kind),
            None => format!("{}: {}", place.label(), e.kind),
        };
        Scene { event: Some(i), place: Some(place), from, token: Token::of(e), stage, caption }
    }
}

/// The way points a token travels through for the events `events[from..to]`
/// of `device`: their places in order, repeats merged, at most `max`
/// (the first and last halves kept when there are more).
pub fn trail(events: &[Event], from: usize, to: usize, device: &str, max: usize) -> Vec<Place> {
    let to = to.min(events.len());
    let mut out: Vec<Place> = Vec::new();
    for e in &events[from.min(to)..to] {
        if let Some(p) = place_of(e, device) {
            if out.last() != Some(&p) {
                out.push(p);
            }
        }
    }
    if out.len() > max && max >= 2 {
        let tail = out.split_off(out.len() - max / 2);
        out.truncate(max - tail.len());
        out.extend(tail);
    }
    out
}

/// The indices of a ring at log position `k`, from the indices read from
/// guest memory at the end of the log (`avail_end`, `used_end`): each chain
/// made available and each request completed after `k` is taken back.
pub fn ring_indices_at(events: &[Event], k: usize, device: &str, avail_end: u16, used_end: u16) -> (u16, u16) {
    let mut avail = avail_end;
    let mut used = used_end;
    for e in events.iter().skip(k).filter(|e| e.device.as_deref() == Some(device)) {
        match e.kind {
            EventKind::ChainAvailable { .. } => avail = avail.wrapping_sub(1),
            EventKind::Device(DeviceEvent::RequestCompleted { .. }) => used = used.wrapping_sub(1),
            _ => {}
        }
    }
    (avail, used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmem_core::sim::{DeviceSpec, Machine, SimConfig};

    fn flushed() -> Machine {
        let mut m = Machine::new(SimConfig::default());
        m.add_device(DeviceSpec::new("nv1", 1 << 20)).unwrap();
        m.guest_write("nv1", 0, b"x").unwrap();
        let r = m.flush("nv1").unwrap();
        while m.flush_result("nv1", r).unwrap().is_none() && m.step() {}
        m
    }

    #[test]
    fn a_flush_visits_the_rings_the_device_and_the_disk_in_order() {
        let m = flushed();
        let ev = m.log().events();
        let start = ev.iter().position(|e| matches!(e.kind, EventKind::FlushRequested { .. })).unwrap();
        let t = trail(ev, start, ev.len(), "nv1", 32);
        let pos = |p: Place| t.iter().position(|x| *x == p).unwrap_or_else(|| panic!("{p:?} not in {t:?}"));
        assert!(pos(Place::App) < pos(Place::AvailRing));
        assert!(pos(Place::AvailRing) < pos(Place::Device));
        assert!(pos(Place::Device) < pos(Place::PageCache));
        assert!(pos(Place::PageCache) < pos(Place::Disk));
        assert!(pos(Place::Disk) < pos(Place::UsedRing));
        assert_eq!(t.last(), Some(&Place::App), "fsync returns to the application: {t:?}");
        // Stepping event by event, the nine stages come one after the other.
        let stages: Vec<usize> =
            (start + 1..=ev.len()).filter_map(|k| Scene::at(ev, k, "nv1").stage).collect::<Vec<_>>();
        let mut dedup = stages.clone();
        dedup.dedup();
        assert_eq!(dedup, (0..9).collect::<Vec<_>>(), "{stages:?}");
    }

    #[test]
    fn a_scene_travels_from_the_place_before() {
        let m = flushed();
        let ev = m.log().events();
        let k = ev.iter().position(|e| matches!(e.kind, EventKind::ChainAvailable { .. })).unwrap() + 1;
        let s = Scene::at(ev, k, "nv1");
        assert_eq!(s.place, Some(Place::AvailRing));
        assert_eq!(s.from, Some(Place::App));
        assert!(matches!(s.token, Token::Flush(_)));
        assert!(s.caption.contains("stage 2 of 9"), "{}", s.caption);
        // Another device's view has nothing there.
        assert_eq!(Scene::at(ev, k, "nv9").place, None);
        assert_eq!(Scene::at(ev, 0, "nv1").place, None);
    }

    #[test]
    fn ring_indices_go_back_with_the_log() {
        let m = flushed();
        let ev = m.log().events();
        assert_eq!(ring_indices_at(ev, ev.len(), "nv1", 1, 1), (1, 1));
        assert_eq!(ring_indices_at(ev, 0, "nv1", 1, 1), (0, 0));
        let after_avail = ev.iter().position(|e| matches!(e.kind, EventKind::ChainAvailable { .. })).unwrap() + 1;
        assert_eq!(ring_indices_at(ev, after_avail, "nv1", 1, 1), (1, 0));
    }

    #[test]
    fn a_long_trail_keeps_its_ends_and_anchors_sit_in_their_boxes() {
        let mut m = Machine::new(SimConfig::default());
        m.add_device(DeviceSpec::new("nv1", 1 << 20)).unwrap();
        for p in 0..50u64 {
            m.guest_write("nv1", p * 4096, b"x").unwrap();
        }
        let r = m.flush("nv1").unwrap();
        while m.flush_result("nv1", r).unwrap().is_none() && m.step() {}
        let ev = m.log().events();
        let full = trail(ev, 0, ev.len(), "nv1", usize::MAX);
        assert!(full.len() > 8, "{full:?}");
        let short = trail(ev, 0, ev.len(), "nv1", 6);
        assert_eq!(short.len(), 6);
        assert_eq!(short[..3], full[..3]);
        assert_eq!(short[3..], full[full.len() - 3..]);
        for p in Place::ALL {
            let (x, y) = p.anchor();
            let (rx, ry, w, h) = p.rect();
            assert!(x >= rx && x <= rx + w && y >= ry && y <= ry + h, "{p:?}");
            assert!(rx + w <= VIEW_BOX.0 && ry + h <= VIEW_BOX.1, "{p:?}");
        }
    }
}
