//! Replaying an event log exported by the native runner (`pmemlab demo
//! --json`, or the `log` of a scenario run): the page states and bytes are
//! rebuilt from the events alone, one event at a time, so the grid, the
//! hex view and the timeline can show a run that happened elsewhere (for
//! instance against a real file).
//!
//! The rebuild follows the host's page events: a guest store makes its
//! pages dirty, writeback moves them to disk (the bytes written are those of
//! the moment the writeback started), a failure drops or tears what the
//! crash event says. A device whose flushes the log shows as real-NVDIMM
//! flushes has durable stores.

use crate::grid::PageMap;
use crate::palette::CellState;
use pmem_core::event::{CrashKind, Event, EventKind, EventLog};
use pmem_core::host::HostEvent;
use pmem_core::memory::PAGE_SIZE;
use serde_json::Value;
use std::collections::BTreeMap;

/// A device found in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedDevice {
    /// Its id.
    pub id: String,
    /// Its size in bytes.
    pub size: u64,
    /// True when its flushes are real-NVDIMM flushes (stores durable).
    pub persistent: bool,
}

/// An imported event log and a position in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogReplay {
    events: Vec<Event>,
    devices: Vec<LoggedDevice>,
    cursor: usize,
}

/// One page as rebuilt from the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct PageRec {
    state: Option<CellState>,
    cache: Option<Vec<u8>>,
    disk: Option<Vec<u8>>,
    in_writeback: Option<Vec<u8>>,
}

/// The rebuilt state of every device at the cursor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayState {
    pages: BTreeMap<String, BTreeMap<u64, PageRec>>,
}

impl LogReplay {
    /// Reads an event log: `{"events": [...]}` (an `EventLog`), a bare
    /// array of events, or an object with a `log` field holding either (a
    /// scenario run).
    pub fn parse(text: &str) -> Result<LogReplay, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("the event log is not JSON: {e}"))?;
        let events_value = match &value {
            Value::Array(_) => value.clone(),
            Value::Object(m) if m.contains_key("events") => m["events"].clone(),
            Value::Object(m) if m.get("log").is_some_and(|l| l.get("events").is_some()) => m["log"]["events"].clone(),
            Value::Object(m) if m.get("log").is_some_and(Value::is_array) => m["log"].clone(),
            _ => {
                return Err("expected an event log: an object with \"events\" (pmemlab demo --json), \
                            an array of events, or a scenario run with a \"log\""
                    .to_string())
            }
        };
        let events: Vec<Event> = serde_json::from_value(events_value.clone()).map_err(|e| {
            // Point at the first event that does not read.
            let first_bad = events_value
                .as_array()
                .and_then(|a| a.iter().position(|v| serde_json::from_value::<Event>(v.clone()).is_err()));
            match first_bad {
                Some(i) => format!("event {i} of the log is not a pmemlab event: {e}"),
                None => format!("the log's events do not read: {e}"),
            }
        })?;
        Ok(LogReplay::new(events))
    }

    /// A replay of `events`, positioned before the first.
    pub fn new(events: Vec<Event>) -> LogReplay {
        let mut devices: Vec<LoggedDevice> = Vec::new();
        for e in &events {
            match (&e.device, &e.kind) {
                (Some(id), EventKind::DeviceAdded { size, .. }) if !devices.iter().any(|d| &d.id == id) => {
                    devices.push(LoggedDevice { id: id.clone(), size: *size, persistent: false });
                }
                (Some(id), EventKind::NvdimmFlush { emulated: false, .. }) => {
                    if let Some(d) = devices.iter_mut().find(|d| &d.id == id) {
                        d.persistent = true;
                    }
                }
                _ => {}
            }
        }
        LogReplay { events, devices, cursor: 0 }
    }

    /// A replay of a machine's log.
    pub fn of_log(log: &EventLog) -> LogReplay {
        LogReplay::new(log.events().to_vec())
    }

    /// The events.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The devices, in the order the log adds them.
    pub fn devices(&self) -> &[LoggedDevice] {
        &self.devices
    }

    /// Events applied.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Moves to position `k` (clamped to the log).
    pub fn goto(&mut self, k: usize) {
        self.cursor = k.min(self.events.len());
    }

    /// The position just after the next event that is a guest operation or
    /// a failure (what a user would call a step), or the end.
    pub fn next_landmark(&self) -> usize {
        let landmark = |e: &Event| {
            matches!(e.kind, EventKind::GuestWrite { .. } | EventKind::FlushReturned { .. } | EventKind::Crash { .. })
        };
        self.events[self.cursor..].iter().position(landmark).map_or(self.events.len(), |i| self.cursor + i + 1)
    }

    /// The state after the events before the cursor.
    pub fn state(&self) -> ReplayState {
        let mut st = ReplayState::default();
        for e in &self.events[..self.cursor] {
            let Some(id) = &e.device else { continue };
            let persistent = self.devices.iter().any(|d| &d.id == id && d.persistent);
            let pages = st.pages.entry(id.clone()).or_default();
            apply(pages, &e.kind, persistent);
        }
        st
    }
}

fn apply(pages: &mut BTreeMap<u64, PageRec>, kind: &EventKind, persistent: bool) {
    match kind {
        EventKind::GuestWrite { offset, data, .. } => {
            let bytes = &data.0;
            let mut pos = 0usize;
            while pos < bytes.len() {
                let at = offset + pos as u64;
                let page = at / PAGE_SIZE;
                let in_page = (at % PAGE_SIZE) as usize;
                let n = (PAGE_SIZE as usize - in_page).min(bytes.len() - pos);
                let rec = pages.entry(page).or_default();
                let mut content =
                    rec.cache.clone().or_else(|| rec.disk.clone()).unwrap_or_else(|| vec![0; PAGE_SIZE as usize]);
                content[in_page..in_page + n].copy_from_slice(&bytes[pos..pos + n]);
                if persistent {
                    rec.disk = Some(content.clone());
                    rec.state = Some(CellState::Clean);
                } else {
                    rec.state = Some(match rec.state {
                        Some(CellState::Writeback | CellState::WritebackDirty) => CellState::WritebackDirty,
                        _ => CellState::Dirty,
                    });
                }
                rec.cache = Some(content);
                pos += n;
            }
        }
        EventKind::Host(h) => match h {
            HostEvent::PageDirtied { page } => {
                let rec = pages.entry(*page).or_default();
                rec.state = Some(match rec.state {
                    Some(CellState::Writeback | CellState::WritebackDirty) => CellState::WritebackDirty,
                    _ => CellState::Dirty,
                });
            }
            HostEvent::WritebackStarted { page, .. } => {
                let rec = pages.entry(*page).or_default();
                rec.in_writeback = rec.cache.clone();
                rec.state = Some(CellState::Writeback);
            }
            HostEvent::WritebackFinished { page, ok } => {
                let rec = pages.entry(*page).or_default();
                let redirtied = rec.state == Some(CellState::WritebackDirty);
                let written = rec.in_writeback.take();
                if *ok {
                    rec.disk = written.or_else(|| rec.cache.clone());
                }
                rec.state = Some(match (redirtied, ok) {
                    (true, _) => CellState::Dirty,
                    (false, true) => CellState::Clean,
                    (false, false) => CellState::CleanNotDurable,
                });
            }
            HostEvent::PageEvicted { page, lost } => {
                let rec = pages.entry(*page).or_default();
                rec.cache = None;
                rec.state = Some(if *lost { CellState::Lost } else { CellState::OnDisk });
            }
            HostEvent::WriterThrottled { .. } => {}
        },
        EventKind::Crash { kind, lost_pages, torn_pages, .. } => {
            if *kind == CrashKind::PowerFailure {
                for (page, rec) in pages.iter_mut() {
                    // A page under writeback that the crash neither lost nor
                    // tore reached the disk whole.
                    if let Some(written) = rec.in_writeback.take() {
                        if !lost_pages.contains(page) && !torn_pages.contains(page) {
                            rec.disk = Some(written);
                        }
                    }
                    rec.cache = None;
                    rec.state = Some(if rec.disk.is_some() { CellState::OnDisk } else { CellState::Untouched });
                }
            }
            for p in lost_pages {
                let rec = pages.entry(*p).or_default();
                rec.cache = None;
                rec.state = Some(CellState::Lost);
            }
            for p in torn_pages {
                let rec = pages.entry(*p).or_default();
                rec.cache = None;
                rec.state = Some(CellState::Torn);
            }
        }
        _ => {}
    }
}

impl ReplayState {
    /// The page map of device `dev` (of `size` bytes).
    pub fn page_map(&self, dev: &str, size: u64) -> PageMap {
        let pages = self
            .pages
            .get(dev)
            .map(|m| {
                m.iter().filter_map(|(p, r)| r.state.filter(|s| *s != CellState::Untouched).map(|s| (*p, s))).collect()
            })
            .unwrap_or_default();
        PageMap { total_pages: size / PAGE_SIZE, pages }
    }

    /// The page's bytes as the guest would read them and as the disk
    /// holds them (zeros where the log wrote nothing).
    pub fn page_bytes(&self, dev: &str, page: u64) -> (Vec<u8>, Vec<u8>) {
        let zero = || vec![0u8; PAGE_SIZE as usize];
        let rec = self.pages.get(dev).and_then(|m| m.get(&page));
        let disk = rec.and_then(|r| r.disk.clone()).unwrap_or_else(zero);
        let cache = rec.and_then(|r| r.cache.clone()).unwrap_or_else(|| disk.clone());
        (cache, disk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::PageMap as LiveMap;
    use crate::session::Session;
    use serde_json::json;

    fn run(steps: Value) -> Session {
        let mut s = Session::playground();
        for step in steps.as_array().unwrap() {
            s.act(step.clone()).unwrap();
        }
        s
    }

    /// The rebuilt page states agree with the live machine's after every
    /// step of a run with writes, flushes, background writeback and a
    /// power failure.
    #[test]
    fn replay_agrees_with_the_machine_at_every_step() {
        let steps = json!([
            {"op": "write", "device": "nv1", "offset": 0, "text": "a"},
            {"op": "write", "device": "nv1", "offset": 8192, "text": "b"},
            {"op": "fsync", "device": "nv1"},
            {"op": "write", "device": "nv1", "offset": 4096, "text": "c"},
            {"op": "wait", "s": 40},
            {"op": "write", "device": "nv1", "offset": 12288, "text": "d"},
            {"op": "fsync", "device": "nv1", "blocking": false},
            {"op": "wait", "us": 30},
            {"op": "power_failure"},
            {"op": "write", "device": "nv1", "offset": 0, "text": "e"}
        ]);
        let s = run(steps.clone());
        let mut r = LogReplay::of_log(s.machine().log());
        assert_eq!(r.devices()[0].id, "nv1");
        let mut live = Session::playground();
        for (i, step) in steps.as_array().unwrap().iter().enumerate() {
            live.act(step.clone()).unwrap();
            r.goto(live.machine().log().len());
            let want = LiveMap::of_device(live.machine(), "nv1").unwrap();
            let got = r.state().page_map("nv1", 64 << 20);
            assert_eq!(got.pages, want.pages, "after step {i} ({step})");
        }
        // Bytes: page 0 holds "e" in the cache and the fsynced "a" on disk.
        let (cache, disk) = r.state().page_bytes("nv1", 0);
        assert_eq!((cache[0], disk[0]), (b'e', b'a'));
        let (live_cache, live_disk) = crate::hexview::page_bytes(live.machine(), "nv1", 0).unwrap();
        assert_eq!((cache, disk), (live_cache, live_disk));
    }

    #[test]
    fn every_export_shape_is_read_and_garbage_is_refused() {
        let s = run(json!([{"op": "write", "device": "nv1", "offset": 0, "text": "a"}]));
        let log = serde_json::to_string(s.machine().log()).unwrap();
        let events = serde_json::to_string(s.machine().log().events()).unwrap();
        let run = serde_json::to_string(&s.scenario().run()).unwrap();
        for text in [&log, &events, &run] {
            let r = LogReplay::parse(text).unwrap();
            assert_eq!(r.events().len(), s.machine().log().len());
        }
        assert!(LogReplay::parse("{").unwrap_err().contains("not JSON"));
        assert!(LogReplay::parse("{\"x\":1}").unwrap_err().contains("expected an event log"));
        assert!(LogReplay::parse("[{\"seq\":0}]").unwrap_err().contains("event 0"));
    }

    #[test]
    fn landmarks_step_over_guest_operations() {
        let s = run(json!([
            {"op": "write", "device": "nv1", "offset": 0, "text": "a"},
            {"op": "fsync", "device": "nv1"}
        ]));
        let mut r = LogReplay::of_log(s.machine().log());
        let mut stops = Vec::new();
        while r.cursor() < r.events().len() {
            let k = r.next_landmark();
            stops.push(k);
            r.goto(k);
        }
        assert!(stops.len() >= 2, "{stops:?}");
        assert_eq!(*stops.last().unwrap(), r.events().len());
    }
}
