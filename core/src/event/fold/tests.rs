use super::*;
use crate::event::{EventLog, HexBytes};
use crate::host::{PageCacheConfig, TearGranularity, WritebackReason};
use crate::memory::{GuestAddress, GuestMemory};
use crate::sim::{DeviceMode, DeviceSpec, Machine, SimConfig};
use crate::time::SimTime;
use proptest::prelude::*;
use std::collections::BTreeSet;

const PAGE: u64 = PAGE_SIZE;

/// A hand-written log of device `nv1`, to fold.
struct Log(EventLog);

impl Log {
    fn new() -> Log {
        let mut l = EventLog::new();
        l.push(
            SimTime::ZERO,
            Some("nv1".into()),
            EventKind::DeviceAdded { start: GuestAddress(1 << 30), size: 1 << 20, hotplug: false, folio_pages: 1 },
        );
        Log(l)
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> &mut Log {
        let kind = EventKind::GuestWrite { offset, len: data.len() as u64, data: Some(HexBytes(data.into())) };
        self.0.push(SimTime::ZERO, Some("nv1".into()), kind);
        self
    }
    fn host(&mut self, h: HostEvent) -> &mut Log {
        self.0.push(SimTime::ZERO, Some("nv1".into()), EventKind::Host(h));
        self
    }
    fn dirtied(&mut self, page: u64) -> &mut Log {
        self.host(HostEvent::PageDirtied { page, pages: 1 })
    }
    fn wb_start(&mut self, page: u64) -> &mut Log {
        self.host(HostEvent::WritebackStarted { page, pages: 1, reason: WritebackReason::Sync, until: SimTime(1) })
    }
    fn wb_end(&mut self, page: u64, ok: bool) -> &mut Log {
        self.host(HostEvent::WritebackFinished { page, pages: 1, ok })
    }
    fn crash(&mut self, kind: CrashKind, lost: &[u64], torn: &[u64]) -> &mut Log {
        let kind = EventKind::Crash {
            kind,
            lost_pages: lost.to_vec(),
            torn_pages: torn.to_vec(),
            tear: TearGranularity::default(),
        };
        self.0.push(SimTime::ZERO, Some("nv1".into()), kind);
        self
    }
    fn fold(&self) -> PageFold {
        let mut f = PageFold::new(Tracking::Bytes);
        f.advance(self.0.events());
        f
    }
}

fn first_byte(f: &PageFold, page: u64) -> (u8, u8) {
    let (cache, disk) = f.page_bytes("nv1", page);
    (cache[0], disk[0])
}

#[test]
fn a_write_makes_its_pages_dirty() {
    let mut log = Log::new();
    log.write(PAGE - 1, b"ab").dirtied(0).dirtied(1);
    let f = log.fold();
    assert_eq!(f.status("nv1", 0), Some(PageStatus::Dirty));
    assert_eq!(f.status("nv1", 1), Some(PageStatus::Dirty));
    assert_eq!(f.status("nv1", 2), None);
    let (cache, disk) = f.page_bytes("nv1", 0);
    assert_eq!((cache[PAGE as usize - 1], disk[PAGE as usize - 1]), (b'a', 0));
    assert_eq!(first_byte(&f, 1), (b'b', 0));
    assert_eq!(f.devices().collect::<Vec<_>>(), [("nv1", 1 << 20)]);
}

#[test]
fn writeback_writes_the_bytes_of_its_start() {
    let mut log = Log::new();
    log.write(0, b"a").dirtied(0).wb_start(0);
    assert_eq!(log.fold().status("nv1", 0), Some(PageStatus::Writeback));
    log.write(0, b"b").dirtied(0);
    assert_eq!(log.fold().status("nv1", 0), Some(PageStatus::WritebackDirty));
    log.wb_end(0, true);
    let f = log.fold();
    assert_eq!(f.status("nv1", 0), Some(PageStatus::Dirty), "dirty again: written after the start");
    assert_eq!(first_byte(&f, 0), (b'b', b'a'));
    log.wb_start(0).wb_end(0, true);
    let f = log.fold();
    assert_eq!(f.status("nv1", 0), Some(PageStatus::Clean));
    assert_eq!(first_byte(&f, 0), (b'b', b'b'));
    // A failed writeback leaves the page clean, the disk as it was.
    log.write(0, b"c").dirtied(0).wb_start(0).wb_end(0, false);
    let f = log.fold();
    assert_eq!(f.status("nv1", 0), Some(PageStatus::CleanNotDurable));
    assert_eq!(first_byte(&f, 0), (b'c', b'b'));
}

#[test]
fn a_store_is_placed_after_the_host_timers_that_ran_before_it() {
    // The host started a writeback (a timer due) before taking the store:
    // the store's PageDirtied follows, so the snapshot is the old bytes.
    let mut log = Log::new();
    log.write(0, b"a").dirtied(0).write(0, b"b").wb_start(0).dirtied(0).wb_end(0, true);
    assert_eq!(first_byte(&log.fold(), 0), (b'b', b'a'));
    // A writeback started after a store to an already dirty page (no
    // PageDirtied): the snapshot holds the store.
    let mut log = Log::new();
    log.write(0, b"a").dirtied(0).write(0, b"b").wb_start(0);
    log.0.push(SimTime(1), None, EventKind::Device(crate::device::DeviceEvent::Interrupt));
    log.wb_end(0, true);
    let f = log.fold();
    assert_eq!(first_byte(&f, 0), (b'b', b'b'));
    assert_eq!(f.status("nv1", 0), Some(PageStatus::Clean));
}

#[test]
fn a_power_failure_drops_and_tears_exactly_what_the_crash_says() {
    let mut log = Log::new();
    // Page 0 dirty, page 1 under writeback, page 2 clean on disk, page 3 dirty.
    log.write(0, b"d").dirtied(0);
    log.write(PAGE, b"w").dirtied(1).wb_start(1);
    log.write(2 * PAGE, b"c").dirtied(2).wb_start(2).wb_end(2, true);
    log.write(3 * PAGE, b"x").dirtied(3);
    log.crash(CrashKind::PowerFailure, &[0], &[1]);
    let f = log.fold();
    assert_eq!(f.status("nv1", 0), Some(PageStatus::Lost));
    assert_eq!(f.status("nv1", 1), Some(PageStatus::Torn));
    assert_eq!(f.status("nv1", 2), Some(PageStatus::OnDisk));
    assert_eq!(f.status("nv1", 3), None, "not listed by the crash: no mark, and never on disk");
    assert_eq!(f.cache_states("nv1"), [(1, PageState::OnDisk), (2, PageState::OnDisk)]);
    assert_eq!(first_byte(&f, 0), (0, 0));
    assert_eq!(first_byte(&f, 2), (b'c', b'c'));
    // Written again, a lost page is dirty, no longer lost.
    log.write(0, b"e").dirtied(0);
    assert_eq!(log.fold().status("nv1", 0), Some(PageStatus::Dirty));
    // A guest crash loses nothing.
    let mut log = Log::new();
    log.write(0, b"d").dirtied(0).crash(CrashKind::GuestCrash, &[], &[]);
    assert_eq!(log.fold().status("nv1", 0), Some(PageStatus::Dirty));
}

#[test]
fn a_real_nvdimm_store_is_durable() {
    let mut m = Machine::new(SimConfig::default());
    let mut spec = DeviceSpec::new("nv1", 1 << 20);
    spec.mode = DeviceMode::RealNvdimm;
    m.add_device(spec).unwrap();
    m.guest_write("nv1", 10, b"pm").unwrap();
    m.crash(CrashKind::PowerFailure).unwrap();
    let mut f = PageFold::new(Tracking::Bytes);
    f.set_backing("nv1", DeviceMode::RealNvdimm.backing_mode(true));
    f.advance(m.log().events());
    assert_eq!(f.status("nv1", 0), Some(PageStatus::OnDisk));
    let (cache, disk) = f.page_bytes("nv1", 0);
    assert_eq!((&cache[10..12], &disk[10..12]), (&b"pm"[..], &b"pm"[..]));
    // Taken for page-cached, the same log shows nothing durable: the
    // backing matters.
    let mut wrong = PageFold::new(Tracking::Bytes);
    wrong.advance(m.log().events());
    assert_ne!(wrong.status("nv1", 0), Some(PageStatus::OnDisk));
}

#[test]
fn the_cursor_moves_both_ways_to_the_state_of_a_fresh_fold() {
    let mut log = Log::new();
    for i in 0..600u64 {
        log.write((i % 7) * PAGE, &[i as u8]).dirtied(i % 7);
        if i % 3 == 0 {
            log.wb_start(i % 7).wb_end(i % 7, true);
        }
    }
    let events = log.0.events();
    let mut c = FoldCursor::new(PageFold::new(Tracking::Bytes));
    for k in [events.len(), 3, 700, 256, 1000, 0, 513] {
        c.goto(events, k);
        let mut fresh = PageFold::new(Tracking::Bytes);
        fresh.advance_to(events, k);
        assert_eq!(c.position(), k.min(events.len()));
        assert_eq!(c.fold().cache_states("nv1"), fresh.cache_states("nv1"), "at {k}");
        assert_eq!(c.fold().page_bytes("nv1", 3), fresh.page_bytes("nv1", 3), "at {k}");
    }
}

/// Random machine runs.
#[derive(Clone, Debug)]
enum Act {
    Write { dev: usize, page: u64, at: u64, len: usize, byte: u8 },
    Flush(usize),
    Wait(u64),
    Step(u8),
    Crash(u8),
    FailSync(usize),
}

const DEVICES: [(&str, DeviceMode, bool); 4] = [
    ("nv1", DeviceMode::VirtioPmem, true),
    ("nv2", DeviceMode::EmulatedNvdimm, true),
    ("nv3", DeviceMode::RealNvdimm, true),
    ("nv4", DeviceMode::VirtioPmem, false),
];

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        6 => (0..4usize, 0..24u64, 0..PAGE, 1..6000usize, any::<u8>())
            .prop_map(|(dev, page, at, len, byte)| Act::Write { dev, page, at, len, byte }),
        2 => (0..4usize).prop_map(Act::Flush),
        2 => (0..40_000_000_000u64).prop_map(Act::Wait),
        2 => (1..40u8).prop_map(Act::Step),
        1 => (0..3u8).prop_map(Act::Crash),
        1 => (0..4usize).prop_map(Act::FailSync),
    ]
}

fn machine(seed: u64) -> Machine {
    // A small host memory: reclaim, evictions and the dirty ratios happen.
    let host = PageCacheConfig { host_memory_bytes: 40 * PAGE, ..PageCacheConfig::default() };
    let mut m = Machine::new(SimConfig { seed, host, ..SimConfig::default() });
    for (id, mode, share) in DEVICES {
        let mut spec = DeviceSpec::new(id, 32 * PAGE);
        spec.mode = mode;
        spec.share = share;
        m.add_device(spec).unwrap();
    }
    m
}

fn run(m: &mut Machine, a: &Act) {
    match *a {
        Act::Write { dev, page, at, len, byte } => {
            let offset = (page * PAGE + at).min(32 * PAGE - len as u64);
            let _ = m.guest_write(DEVICES[dev].0, offset, &vec![byte; len]);
        }
        Act::Flush(dev) => {
            let _ = m.flush(DEVICES[dev].0);
        }
        Act::Wait(ns) => {
            m.run_for(ns);
        }
        Act::Step(n) => {
            for _ in 0..n {
                m.step();
            }
        }
        Act::Crash(k) => {
            let kind = [CrashKind::PowerFailure, CrashKind::GuestCrash, CrashKind::VmmKill][k as usize];
            let _ = m.crash(kind);
        }
        Act::FailSync(dev) => {
            let _ = m.inject_sync_failures(DEVICES[dev].0, 1);
        }
    }
    m.schedule_host_events();
}

fn fold_of(events: &[Event]) -> PageFold {
    let mut f = PageFold::new(Tracking::Bytes);
    for (id, mode, share) in DEVICES {
        f.set_backing(id, mode.backing_mode(share));
    }
    f.advance(events);
    f
}

/// Where the fold and the machine disagree: a state, or the bytes of a
/// page no failure made ambiguous.
fn disagreement(m: &Machine, f: &PageFold) -> Option<String> {
    let mut ambiguous: BTreeSet<(String, u64)> = BTreeSet::new();
    for e in m.log().events() {
        if let (Some(d), EventKind::Crash { lost_pages, torn_pages, .. }) = (&e.device, &e.kind) {
            ambiguous.extend(lost_pages.iter().chain(torn_pages).map(|p| (d.to_string(), *p)));
        }
    }
    for (id, _, _) in DEVICES {
        let want: Vec<(u64, PageState)> = m.page_states(id).unwrap().into_iter().map(|p| (p.page, p.state)).collect();
        let got = f.cache_states(id);
        if got != want {
            return Some(format!("{id}: fold {got:?}, machine {want:?}"));
        }
        let start = m.device_snapshot(id).unwrap().config.start.0;
        for page in 0..32 {
            if ambiguous.contains(&(id.to_string(), page)) {
                continue;
            }
            let mut cache = vec![0u8; PAGE as usize];
            let mem: &dyn GuestMemory = m.memory();
            mem.read(GuestAddress(start + page * PAGE), &mut cache).unwrap();
            let disk = m.read_durable(id, page * PAGE, PAGE).unwrap();
            if f.page_bytes(id, page) != (cache, disk) {
                return Some(format!("{id} page {page}: bytes differ"));
            }
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Folding the log of a random run gives the page states the host
    /// model reports, after every action, and the bytes it holds.
    #[test]
    fn the_fold_of_a_run_agrees_with_the_host_model(seed in 0..1000u64, acts in proptest::collection::vec(act(), 1..60)) {
        let mut m = machine(seed);
        let mut f = fold_of(&[]);
        for (i, a) in acts.iter().enumerate() {
            run(&mut m, a);
            f.advance(m.log().events());
            if let Some(d) = disagreement(&m, &f) {
                prop_assert!(false, "after action {i} ({a:?}): {d}");
            }
        }
        // Folding the whole log at once gives the same.
        prop_assert_eq!(fold_of(m.log().events()).cache_states("nv1"), f.cache_states("nv1"));
    }
}

/// Negative control: the comparison catches a fold that misses events.
#[test]
fn a_fold_missing_the_writeback_ends_disagrees() {
    let mut m = machine(1);
    for a in [Act::Write { dev: 0, page: 1, at: 0, len: 10, byte: 7 }, Act::Flush(0), Act::Wait(1_000_000_000)] {
        run(&mut m, &a);
    }
    assert_eq!(disagreement(&m, &fold_of(m.log().events())), None);
    let kept: Vec<Event> = m
        .log()
        .events()
        .iter()
        .filter(|e| !matches!(e.kind, EventKind::Host(HostEvent::WritebackFinished { .. })))
        .cloned()
        .collect();
    let d = disagreement(&m, &fold_of(&kept));
    assert!(d.as_deref().is_some_and(|d| d.contains("nv1")), "{d:?}");
}
