//! Replaying an event log exported by the native runner (`pmemlab demo
//! --json`, or the `log` of a scenario run): the page states and bytes are
//! rebuilt from the events alone by pmem-core's fold of the log
//! ([`pmem_core::event::fold`]), so the grid, the hex view and the timeline
//! can show a run that happened elsewhere (for instance against a real
//! file). This module reads the file and keeps the position; the fold's
//! cursor moves forward event by event and back from a checkpoint.

use crate::grid::PageMap;
use pmem_core::budget::{Budget, LogMeter};
use pmem_core::event::fold::{backings_of_log, FoldCursor, PageFold, Tracking};
use pmem_core::event::{Event, EventKind, EventLog};
use pmem_core::host::BackingMode;
use pmem_core::memory::PAGE_SIZE;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

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
#[derive(Clone, Debug)]
pub struct LogReplay {
    events: Vec<Event>,
    devices: Vec<LoggedDevice>,
    fold: FoldCursor,
}

/// The events of a log file, read one by one so that the first one that
/// does not read is named.
struct Events(Vec<Event>);

impl<'de> Deserialize<'de> for Events {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(EventsVisitor)
    }
}

struct EventsVisitor;

impl<'de> Visitor<'de> for EventsVisitor {
    type Value = Events;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Events, A::Error> {
        let mut out = Vec::new();
        loop {
            match seq.next_element::<Event>() {
                Ok(Some(e)) => out.push(e),
                Ok(None) => return Ok(Events(out)),
                Err(e) => {
                    return Err(de::Error::custom(format!(
                        "event {} of the log is not a pmemlab event: {e}",
                        out.len()
                    )))
                }
            }
        }
    }
}

/// A scenario run's `log`: an `EventLog` (`{"events": [...]}`) or a bare
/// array.
struct LogField(Option<Events>);

impl<'de> Deserialize<'de> for LogField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LogField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event log")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<LogField, A::Error> {
                EventsVisitor.visit_seq(seq).map(|e| LogField(Some(e)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<LogField, A::Error> {
                LogFile::deserialize(de::value::MapAccessDeserializer::new(map)).map(|f| LogField(f.events))
            }
        }
        d.deserialize_any(V)
    }
}

/// The object shapes an event log comes in: an `EventLog`, or a scenario
/// run with a `log`. Other fields are ignored.
#[derive(Deserialize)]
struct LogFile {
    #[serde(default)]
    events: Option<Events>,
    #[serde(default)]
    log: Option<LogField>,
}

impl LogReplay {
    /// Reads an event log: `{"events": [...]}` (an `EventLog`), a bare
    /// array of events, or an object with a `log` field holding either (a
    /// scenario run).
    /// The text is checked against the tab's budget before it is parsed
    /// (at most [`Budget::input_limit`], 16 MiB; a key given twice is
    /// refused), and the events it holds after (their payloads counted).
    pub fn parse(text: &str) -> Result<LogReplay, String> {
        let budget = Budget::browser();
        budget.check_input("the event log", text.len() as u64).map_err(|e| e.to_string())?;
        pmem_core::json::refuse_duplicate_keys(text).map_err(|e| match e {
            pmem_core::json::JsonError::Syntax { .. } => format!("the event log is not JSON: {e}"),
            pmem_core::json::JsonError::DuplicateKey { .. } => format!("the event log is not accepted: {e}"),
        })?;
        let shape = "expected an event log: an object with \"events\" (pmemlab demo --json), \
                     an array of events, or a scenario run with a \"log\"";
        let not_json = |e: serde_json::Error| format!("the event log is not JSON: {e}");
        let events = if text.trim_start().starts_with('[') {
            serde_json::from_str::<Events>(text).map_err(|e| if e.is_data() { e.to_string() } else { not_json(e) })?
        } else {
            let file: LogFile = serde_json::from_str(text).map_err(|e| match e.classify() {
                serde_json::error::Category::Data if e.to_string().contains("event ") => e.to_string(),
                serde_json::error::Category::Data => shape.to_string(),
                _ => not_json(e),
            })?;
            match (file.events, file.log) {
                (Some(events), _) | (None, Some(LogField(Some(events)))) => events,
                _ => return Err(shape.to_string()),
            }
        };
        let mut meter = LogMeter::default();
        meter.add(&events.0);
        budget.check_log("import", meter.bytes()).map_err(|e| e.to_string())?;
        Ok(LogReplay::new(events.0))
    }

    /// A replay of `events`, positioned before the first.
    pub fn new(events: Vec<Event>) -> LogReplay {
        let backings = backings_of_log(&events);
        let mut start = PageFold::new(Tracking::Bytes);
        for (id, backing) in &backings {
            start.set_backing(id, *backing);
        }
        let devices = backings
            .iter()
            .map(|(id, backing)| {
                let size = events
                    .iter()
                    .find_map(|e| match &e.kind {
                        EventKind::DeviceAdded { size, .. } if e.device.as_deref() == Some(id.as_str()) => Some(*size),
                        _ => None,
                    })
                    .unwrap_or(0);
                LoggedDevice { id: id.clone(), size, persistent: *backing == BackingMode::Persistent }
            })
            .collect();
        LogReplay { events, devices, fold: FoldCursor::new(start) }
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
        self.fold.position()
    }

    /// Moves to position `k` (clamped to the log).
    pub fn goto(&mut self, k: usize) {
        self.fold.goto(&self.events, k);
    }

    fn is_landmark(e: &Event) -> bool {
        matches!(e.kind, EventKind::GuestWrite { .. } | EventKind::FlushReturned { .. } | EventKind::Crash { .. })
    }

    /// The position just after the next event that is a guest operation or
    /// a failure (what a user would call a step), or the end.
    pub fn next_landmark(&self) -> usize {
        let c = self.cursor();
        self.events[c..].iter().position(Self::is_landmark).map_or(self.events.len(), |i| c + i + 1)
    }

    /// The landmark before the cursor (0 at the first one).
    pub fn prev_landmark(&self) -> usize {
        let c = self.cursor();
        if c == 0 {
            return 0;
        }
        self.events[..c - 1].iter().rposition(Self::is_landmark).map_or(0, |i| i + 1)
    }

    /// The fold at the cursor: page states and bytes.
    pub fn state(&self) -> &PageFold {
        self.fold.fold()
    }

    /// The page map of device `dev` at the cursor.
    pub fn page_map(&self, dev: &str) -> PageMap {
        let mut map = PageMap::of_fold(self.state(), dev);
        if map.total_pages == 0 {
            // Not added yet at the cursor: the size is known from the log.
            let size = self.devices.iter().find(|d| d.id == dev).map_or(0, |d| d.size);
            map.total_pages = size / PAGE_SIZE;
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Session, PLAYGROUND};

    /// The playground with `steps` (JSON), not run yet.
    fn session(steps: &str) -> Session {
        let text = PLAYGROUND.replace("\"steps\": []", &format!("\"steps\": [{steps}]"));
        Session::from_json(&text).unwrap()
    }

    fn run(steps: &str) -> Session {
        let mut s = session(steps);
        s.goto(s.len());
        s
    }

    /// The rebuilt page states agree with the live session's after every
    /// step of a run with writes, flushes, background writeback and a
    /// power failure, and the bytes with the machine's.
    #[test]
    fn replay_agrees_with_the_machine_at_every_step() {
        let steps = r#"
            {"op": "write", "device": "nv1", "offset": 0, "text": "a"},
            {"op": "write", "device": "nv1", "offset": 8192, "text": "b"},
            {"op": "fsync", "device": "nv1"},
            {"op": "write", "device": "nv1", "offset": 4096, "text": "c"},
            {"op": "wait", "s": 40},
            {"op": "write", "device": "nv1", "offset": 12288, "text": "d"},
            {"op": "fsync", "device": "nv1", "blocking": false},
            {"op": "wait", "us": 30},
            {"op": "power_failure"},
            {"op": "write", "device": "nv1", "offset": 0, "text": "e"}"#;
        let s = run(steps);
        let mut r = LogReplay::of_log(s.machine().log());
        assert_eq!(r.devices()[0].id, "nv1");
        let mut live = session(steps);
        for i in 0..live.len() {
            live.forward();
            r.goto(live.machine().log().len());
            let want = PageMap::of_fold(live.fold(), "nv1");
            assert_eq!(r.page_map("nv1").pages, want.pages, "after step {i}");
            let cache: Vec<_> =
                live.machine().page_states("nv1").unwrap().into_iter().map(|p| (p.page, p.state)).collect();
            assert_eq!(r.state().cache_states("nv1"), cache, "after step {i}");
        }
        // Bytes: page 0 holds "e" in the cache and the fsynced "a" on disk.
        let (cache, disk) = r.state().page_bytes("nv1", 0);
        assert_eq!((cache[0], disk[0]), (b'e', b'a'));
        let (live_cache, live_disk) = crate::hexview::page_bytes(live.machine(), "nv1", 0).unwrap();
        assert_eq!((cache, disk), (live_cache, live_disk));
        // Back to the start and forward again: the same.
        let end = r.page_map("nv1");
        r.goto(0);
        assert!(r.page_map("nv1").pages.is_empty());
        r.goto(r.events().len());
        assert_eq!(r.page_map("nv1"), end);
    }

    #[test]
    fn every_export_shape_is_read_and_garbage_is_refused() {
        let s = run(r#"{"op": "write", "device": "nv1", "offset": 0, "text": "a"}"#);
        let log = serde_json::to_string(s.machine().log()).unwrap();
        let events = serde_json::to_string(s.machine().log().events()).unwrap();
        let run = serde_json::to_string(&s.scenario().run()).unwrap();
        let run_with_bare_log = format!("{{\"name\": \"x\", \"log\": {events}}}");
        for text in [&log, &events, &run, &run_with_bare_log] {
            let r = LogReplay::parse(text).unwrap();
            assert_eq!(r.events().len(), s.machine().log().len());
        }
        assert!(LogReplay::parse("{").unwrap_err().contains("not JSON"));
        assert!(LogReplay::parse("{\"x\":1}").unwrap_err().contains("expected an event log"));
        assert!(
            LogReplay::parse("[{\"seq\":0}]").unwrap_err().contains("event 0"),
            "{:?}",
            LogReplay::parse("[{\"seq\":0}]")
        );
        let bad_second = events.replacen("\"seq\":1,", "\"seq\":\"one\",", 1);
        assert!(LogReplay::parse(&bad_second).unwrap_err().contains("event 1"));
        assert!(LogReplay::parse(&format!("{{\"events\": {bad_second}}}")).unwrap_err().contains("event 1"));
    }

    #[test]
    fn landmarks_step_over_guest_operations_both_ways() {
        let s = run(r#"{"op": "write", "device": "nv1", "offset": 0, "text": "a"},
                       {"op": "fsync", "device": "nv1"}"#);
        let mut r = LogReplay::of_log(s.machine().log());
        let mut stops = vec![0];
        while r.cursor() < r.events().len() {
            let k = r.next_landmark();
            stops.push(k);
            r.goto(k);
        }
        assert!(stops.len() >= 3, "{stops:?}");
        assert_eq!(*stops.last().unwrap(), r.events().len());
        for want in stops.iter().rev().skip(1) {
            let k = r.prev_landmark();
            assert_eq!(k, *want);
            r.goto(k);
        }
    }
}
