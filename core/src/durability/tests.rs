use super::*;
use crate::event::CrashKind;
use crate::sim::{DeviceSpec, Machine, SimConfig};
use crate::workload::flush_and_wait;
use proptest::prelude::*;

fn model(mode: BackingMode, retention: Retention) -> DurabilityModel {
    DurabilityModel::new(1 << 20, mode, retention)
}

fn byte_of(m: &DurabilityModel, page: u64, frontier: usize) -> u8 {
    m.base(page, frontier).0[7]
}

fn store(m: &mut DurabilityModel, page: u64, b: u8) -> usize {
    m.record_write(page * PAGE_SIZE + 7, &[b], &mut zero_prior)
}

#[test]
fn a_write_is_durable_once_a_flush_made_available_after_it_completes() {
    let mut m = model(BackingMode::Shared, Retention::Every);
    store(&mut m, 0, 1);
    m.flush_available(3);
    store(&mut m, 0, 2); // after the request was made available: not covered
    assert_eq!(m.durable_upto(), 0);
    m.flush_completed(3, Some(0), &mut zero_prior);
    assert_eq!(m.durable_upto(), 1);
    assert_eq!(byte_of(&m, 0, m.durable_upto()), 1);
    assert_eq!(m.candidates(0, m.durable_upto(), m.writes()).len(), 1);
    assert_eq!(m.pending_pages().collect::<Vec<_>>(), vec![0]);
}

#[test]
fn a_failed_flush_makes_nothing_durable() {
    let mut m = model(BackingMode::Shared, Retention::Pending);
    store(&mut m, 0, 1);
    m.flush_available(0);
    m.flush_completed(0, Some(1), &mut zero_prior);
    assert_eq!(m.durable_upto(), 0);
    assert_eq!(m.flushes_in_flight(), 0);
    assert_eq!(m.durable_now(0), Some(&ZERO_PAGE[..]));
}

#[test]
fn pending_retention_keeps_what_a_flush_in_flight_covers_and_forgets_durable_pages() {
    let mut m = model(BackingMode::Shared, Retention::Pending).keep_durable_pages(0);
    store(&mut m, 0, 1);
    store(&mut m, 0, 2); // coalesced with the first: no flush between
    assert_eq!(m.versions(0).len(), 1);
    m.flush_available(0);
    store(&mut m, 0, 3); // the flush covers content 2: a new version
    store(&mut m, 1, 9);
    assert_eq!(m.versions(0).len(), 2);
    m.flush_completed(0, Some(0), &mut zero_prior);
    assert_eq!(m.durable_now(0).map(|d| d[7]), Some(2), "the content at the flush is durable");
    assert_eq!(m.durable_now(1).map(|d| d[7]), Some(0));
    m.flush_available(1);
    m.flush_completed(1, Some(0), &mut zero_prior);
    assert_eq!(m.pages().count(), 0, "nothing pending: nothing held");
    assert_eq!(m.held_bytes(), 0);
    // By default durable pages are kept (as the base of the next store),
    // and are still not pending.
    let mut k = model(BackingMode::Shared, Retention::Pending);
    store(&mut k, 0, 1);
    k.flush_available(0);
    k.flush_completed(0, Some(0), &mut zero_prior);
    assert_eq!(k.pages().count(), 1);
    assert_eq!(k.pending_pages().count(), 0);
    assert_eq!(k.durable_now(0).map(|d| d[7]), Some(1));
}

#[test]
fn share_off_never_changes_the_file_and_a_real_nvdimm_is_durable_at_once() {
    let mut off = model(BackingMode::Private, Retention::Every);
    store(&mut off, 0, 1);
    assert_eq!(off.pending_pages().count(), 0);
    assert_eq!(off.base(0, off.durable_upto()).0[7], 0, "the file keeps its content");
    let mut nv = model(BackingMode::Persistent, Retention::Every);
    store(&mut nv, 0, 1);
    assert_eq!(nv.pending_pages().count(), 0);
    assert_eq!(nv.base(0, nv.durable_upto()).0[7], 1);
}

#[test]
fn the_machine_live_model_follows_the_flush_promise_and_a_power_failure() {
    let mut m = Machine::new(SimConfig { seed: 5, ..SimConfig::default() });
    m.add_device(DeviceSpec::new("nv1", 1 << 20)).unwrap();
    m.guest_write("nv1", 0, b"flushed").unwrap();
    flush_and_wait(&mut m, "nv1").unwrap();
    m.guest_write("nv1", 8192, b"pending").unwrap();
    let d = m.durability("nv1").unwrap();
    assert_eq!(d.pending_pages().collect::<Vec<_>>(), vec![2]);
    assert_eq!(d.durable_now(2).map(|p| p[0]), Some(0));
    m.crash(CrashKind::PowerFailure).unwrap();
    assert_eq!(m.durability("nv1").unwrap().pending_pages().count(), 0);
    // A guest crash loses nothing on the host: what was pending stays so.
    m.guest_write("nv1", 4096, b"again").unwrap();
    m.crash(CrashKind::GuestCrash).unwrap();
    assert_eq!(m.durability("nv1").unwrap().pending_pages().collect::<Vec<_>>(), vec![1]);
}

#[derive(Clone, Debug)]
enum Act {
    Write(u64, u8),
    Available(u16),
    Complete(u16, bool),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => (0u64..4, 1u8..255).prop_map(|(p, b)| Act::Write(p, b)),
        1 => (0u16..3).prop_map(Act::Available),
        1 => (0u16..3, prop::bool::weighted(0.8)).prop_map(|(h, ok)| Act::Complete(h, ok)),
    ]
}

proptest! {
    /// Oracle: keep the whole file after every write; a completed flush
    /// made available after write k makes the state after k durable. Both
    /// retentions must agree with it, and with each other on what is
    /// pending now.
    #[test]
    fn both_retentions_agree_with_a_full_history_oracle(acts in prop::collection::vec(act(), 1..80)) {
        let mut every = model(BackingMode::Shared, Retention::Every);
        let mut pending = model(BackingMode::Shared, Retention::Pending);
        let mut file: Vec<[u8; 4]> = vec![[0; 4]];
        let mut durable = 0usize;
        let mut avail: std::collections::BTreeMap<u16, usize> = Default::default();
        for a in acts {
            match a {
                Act::Write(p, b) => {
                    // `prior` for the pending model: the current file.
                    let cur = *file.last().unwrap();
                    let mut prior = |page: u64, buf: &mut [u8]| { buf.fill(0); buf[7] = cur[page as usize]; };
                    every.record_write(p * PAGE_SIZE + 7, &[b], &mut zero_prior);
                    pending.record_write(p * PAGE_SIZE + 7, &[b], &mut prior);
                    let mut next = cur;
                    next[p as usize] = b;
                    file.push(next);
                }
                Act::Available(h) => {
                    every.flush_available(h);
                    pending.flush_available(h);
                    avail.insert(h, file.len() - 1);
                }
                Act::Complete(h, ok) => {
                    let status = Some(if ok { 0 } else { 1 });
                    every.flush_completed(h, status, &mut zero_prior);
                    pending.flush_completed(h, status, &mut zero_prior);
                    if let Some(k) = avail.remove(&h) {
                        if ok { durable = durable.max(k); }
                    }
                }
            }
            prop_assert_eq!(every.durable_upto(), durable);
            prop_assert_eq!(pending.durable_upto(), durable);
            let cur = *file.last().unwrap();
            for p in 0..4u64 {
                let want = file[durable][p as usize];
                prop_assert_eq!(byte_of(&every, p, durable), want, "every, page {}", p);
                let live = pending.durable_now(p).map(|d| d[7]).unwrap_or(cur[p as usize]);
                prop_assert_eq!(live, want, "pending, page {}", p);
                let newest = every.candidates(p, durable, every.writes()).last().map(|v| v.data()[7]);
                let newest_live = pending.candidates(p, durable, pending.writes()).last().map(|v| v.data()[7]);
                prop_assert_eq!(newest, newest_live, "newest pending version of page {}", p);
            }
        }
    }
}

#[test]
fn the_oracle_test_can_fail() {
    // Negative control: a model that ignores the head of the completion
    // (takes every completion as covering everything) disagrees.
    let mut m = model(BackingMode::Shared, Retention::Every);
    store(&mut m, 0, 1);
    m.flush_available(1);
    store(&mut m, 0, 2);
    m.flush_completed(1, Some(0), &mut zero_prior);
    assert_ne!(m.durable_upto(), m.writes(), "a flush must not cover writes after it was made available");
}

#[derive(Clone, Debug)]
enum MachineAct {
    Write(u64, u8),
    Flush,
    Run(u64),
}

fn machine_act() -> impl Strategy<Value = MachineAct> {
    prop_oneof![
        4 => (0u64..6, 1u8..255).prop_map(|(p, b)| MachineAct::Write(p, b)),
        1 => Just(MachineAct::Flush),
        1 => (1u64..3_000_000).prop_map(MachineAct::Run),
    ]
}

proptest! {
    /// The machine's live model (fed as events happen) and the history
    /// recovered from the log afterwards (fed by the same `apply`) agree,
    /// at the end of any run, on what is pending, what is durable and the
    /// newest version of every page.
    #[test]
    fn the_live_model_and_the_history_from_the_log_agree(acts in prop::collection::vec(machine_act(), 1..40)) {
        let mut m = Machine::new(SimConfig { seed: 11, ..SimConfig::default() });
        m.add_device(DeviceSpec::new("nv1", 1 << 20)).unwrap();
        for a in acts {
            match a {
                MachineAct::Write(p, b) => m.guest_write("nv1", p * PAGE_SIZE + 100, &[b; 10]).unwrap(),
                MachineAct::Flush => { m.flush("nv1").unwrap(); }
                MachineAct::Run(ns) => { m.run_for(ns); }
            }
        }
        let h = crate::crash::WriteHistory::from_log(m.log(), "nv1", 1 << 20);
        let live = m.durability("nv1").unwrap();
        let end = h.points().last().unwrap();
        prop_assert_eq!(live.durable_upto(), end.durable_upto);
        prop_assert_eq!(live.pending_pages().collect::<Vec<_>>(), h.pending(end).iter().map(|p| p.page).collect::<Vec<_>>());
        for p in 0..6u64 {
            let hist_base = h.base(p, end).0;
            let live_base = live.durable_now(p).unwrap_or(hist_base);
            prop_assert_eq!(live_base, hist_base, "durable content of page {}", p);
            let newest_h = h.candidates(p, end).last().map(|v| v.data().to_vec());
            let newest_l = live.candidates(p, live.durable_upto(), live.writes()).last().map(|v| v.data().to_vec());
            prop_assert_eq!(newest_h, newest_l, "newest version of page {}", p);
        }
    }
}

#[test]
fn pending_retention_forgets_the_pages_longest_durable_beyond_its_bound() {
    let mut m = model(BackingMode::Shared, Retention::Pending).keep_durable_pages(2);
    let flush = |m: &mut DurabilityModel, head: u16| {
        m.flush_available(head);
        m.flush_completed(head, Some(0), &mut zero_prior);
    };
    for page in 0..3 {
        store(&mut m, page, 1);
        flush(&mut m, 0);
    }
    // Page 0 became durable first: forgotten once a third page did.
    assert_eq!(m.pages().collect::<Vec<_>>(), vec![1, 2]);
    // Page 1 is written again: its old entry in the queue is stale, and a
    // flush of page 3 forgets page 2 (the longest durable), not page 1.
    store(&mut m, 1, 2);
    store(&mut m, 3, 1);
    flush(&mut m, 1);
    assert_eq!(m.pages().collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(m.durable_now(1).map(|d| d[7]), Some(2));
    assert_eq!(m.pending_pages().count(), 0);
    // A page still pending is never forgotten.
    store(&mut m, 0, 5);
    m.flush_available(2);
    store(&mut m, 4, 1);
    store(&mut m, 5, 1);
    m.flush_completed(2, Some(0), &mut zero_prior);
    assert_eq!(m.pending_pages().collect::<Vec<_>>(), vec![4, 5]);
    let durable: Vec<u64> = m.pages().filter(|p| ![4, 5].contains(p)).collect();
    assert_eq!(durable, vec![0, 3], "the two most recently durable pages, page 1 forgotten");
}

/// What a model says a crash now could leave, page by page: the durable
/// content and every candidate (write index and bytes).
type Answer = Vec<PageAnswer>;

/// A page, its durable content and its candidates (write index, bytes).
type PageAnswer = (u64, Vec<u8>, Vec<(usize, Vec<u8>)>);

fn answer(m: &mut Machine) -> (usize, usize, Answer) {
    let d = m.durability("nv1").unwrap();
    let (frontier, done) = (d.durable_upto(), d.writes());
    let pages = d
        .pages()
        .map(|p| {
            let cands = d.candidates(p, frontier, done).iter().map(|v| (v.write, v.data().to_vec())).collect();
            (p, d.base(p, frontier).0.to_vec(), cands)
        })
        .filter(|(_, _, c): &PageAnswer| !c.is_empty())
        .collect();
    (frontier, done, pages)
}

#[derive(Clone, Debug)]
enum LazyAct {
    Write(u64, u16, u8),
    WholePage(u64, u8),
    Flush,
    Run(u64),
    Look,
}

fn lazy_act() -> impl Strategy<Value = LazyAct> {
    prop_oneof![
        4 => (0u64..5, 0u16..4090, 1u8..255).prop_map(|(p, o, b)| LazyAct::Write(p, o, b)),
        2 => (0u64..5, 1u8..255).prop_map(|(p, b)| LazyAct::WholePage(p, b)),
        2 => Just(LazyAct::Flush),
        1 => (1u64..3_000_000).prop_map(LazyAct::Run),
        1 => Just(LazyAct::Look),
    ]
}

/// How a run's guest hands its stored bytes to the machine.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bytes {
    Borrowed,
    Shared,
}

fn run_lazy(log: crate::event::LogRetention, acts: &[LazyAct]) -> (Machine, Vec<(usize, usize, Answer)>) {
    run_stores(log, Bytes::Borrowed, acts)
}

fn run_stores(
    log: crate::event::LogRetention,
    bytes: Bytes,
    acts: &[LazyAct],
) -> (Machine, Vec<(usize, usize, Answer)>) {
    let mut m = Machine::new(SimConfig { seed: 5, log, ..SimConfig::default() });
    m.add_device(DeviceSpec::new("nv1", 1 << 20)).unwrap();
    let mut looks = Vec::new();
    let store = |m: &mut Machine, at: u64, data: &[u8]| match bytes {
        Bytes::Borrowed => m.guest_write("nv1", at, data).unwrap(),
        Bytes::Shared => m.guest_write_shared("nv1", at, Arc::from(data)).unwrap(),
    };
    for a in acts {
        match *a {
            LazyAct::Write(p, o, b) => store(&mut m, p * PAGE_SIZE + u64::from(o), &[b; 6]),
            LazyAct::WholePage(p, b) => store(&mut m, p * PAGE_SIZE, &[b; 4096]),
            LazyAct::Flush => {
                m.flush("nv1").unwrap();
            }
            LazyAct::Run(ns) => {
                m.run_for(ns);
            }
            LazyAct::Look => looks.push(answer(&mut m)),
        }
    }
    looks.push(answer(&mut m));
    (m, looks)
}

/// True when no store event in the machine's log holds bytes.
fn keeps_no_bytes(m: &Machine) -> bool {
    m.log().events().iter().all(|e| match &e.kind {
        EventKind::GuestWrite { data, .. } => data.is_none(),
        _ => true,
    })
}

proptest! {
    /// A machine whose log keeps no stored bytes records stores without them
    /// and captures the content later (at a flush, before a store that
    /// must keep the old content, when asked); its model answers exactly
    /// what the model of a machine that copied every store answers, at
    /// every look and at the end.
    #[test]
    fn stores_recorded_without_their_bytes_give_the_same_answers(acts in prop::collection::vec(lazy_act(), 1..60)) {
        let (_, copied) = run_lazy(crate::event::LogRetention::All, &acts);
        let (lazy, captured) = run_lazy(crate::event::LogRetention::Recent(8), &acts);
        prop_assert!(keeps_no_bytes(&lazy), "a log that keeps no stored bytes keeps none");
        prop_assert_eq!(copied, captured);
    }

    /// Stores of bytes the caller shares ([`Machine::guest_write_shared`])
    /// give the answers stores of borrowed bytes give, whether the log
    /// keeps every byte or only its tail; with the whole log, the same log.
    #[test]
    fn stores_of_shared_buffers_give_the_same_answers(acts in prop::collection::vec(lazy_act(), 1..60)) {
        use crate::event::LogRetention;
        let (borrowed, copied) = run_stores(LogRetention::All, Bytes::Borrowed, &acts);
        let (shared_all, shared) = run_stores(LogRetention::All, Bytes::Shared, &acts);
        prop_assert_eq!(&copied, &shared);
        let logged = |m: &Machine| serde_json::to_string(m.log().events()).unwrap();
        prop_assert_eq!(logged(&borrowed), logged(&shared_all));
        let (tail, kept) = run_stores(LogRetention::Recent(8), Bytes::Shared, &acts);
        prop_assert!(keeps_no_bytes(&tail), "a log that keeps no stored bytes keeps none");
        prop_assert_eq!(copied, kept);
    }
}

#[test]
fn a_whole_page_stored_from_a_shared_buffer_is_kept_not_copied() {
    let mut m = Machine::new(SimConfig { seed: 5, log: crate::event::LogRetention::Recent(8), ..SimConfig::default() });
    m.add_device(DeviceSpec::new("nv1", 1 << 20)).unwrap();
    let page: Arc<[u8]> = Arc::from(vec![9u8; PAGE_SIZE as usize]);
    m.guest_write_shared("nv1", PAGE_SIZE, Arc::clone(&page)).unwrap();
    assert_eq!(Arc::strong_count(&page), 2, "the model holds the caller's buffer");
    let part: Arc<[u8]> = Arc::from(vec![9u8; 100]);
    m.guest_write_shared("nv1", 3 * PAGE_SIZE, Arc::clone(&part)).unwrap();
    assert_eq!(Arc::strong_count(&part), 1, "part of a page: the model reads the page, it keeps no buffer");
    assert_eq!(m.guest_read("nv1", PAGE_SIZE, 4).unwrap(), vec![9; 4], "the store landed");
    let d = m.durability("nv1").unwrap();
    let (frontier, done) = (d.durable_upto(), d.writes());
    assert_eq!(d.candidates(1, frontier, done).last().map(|v| v.data()[100]), Some(9));
    assert_eq!(d.candidates(3, frontier, done).last().map(|v| (v.data()[99], v.data()[100])), Some((9, 0)));
}

#[test]
fn the_comparison_of_answers_sees_a_store_of_a_different_byte() {
    // Negative control for the property above: one byte differs, so must
    // the answers.
    let acts = [LazyAct::WholePage(1, 3), LazyAct::Flush, LazyAct::Write(1, 10, 4)];
    let mut other = acts.clone();
    other[2] = LazyAct::Write(1, 10, 5);
    let (_, a) = run_lazy(crate::event::LogRetention::All, &acts);
    let (_, b) = run_lazy(crate::event::LogRetention::Recent(8), &other);
    assert_ne!(a, b);
}

#[test]
fn a_version_stored_without_its_bytes_is_read_from_the_file_before_a_store_that_must_keep_it() {
    let mut m = model(BackingMode::Shared, Retention::Pending);
    assert!(m.records_lazily());
    let mut file = vec![0u8; 2 * PAGE_SIZE as usize];
    let lazy_store = |m: &mut DurabilityModel, file: &mut Vec<u8>, at: usize, b: u8| {
        let w = m.record_store(at as u64, 1, &mut |page, buf| {
            let p = page as usize * PAGE_SIZE as usize;
            buf.copy_from_slice(&file[p..p + PAGE_SIZE as usize]);
        });
        file[at] = b;
        w
    };
    lazy_store(&mut m, &mut file, 7, 1);
    assert!(!m.is_captured());
    m.flush_available(0); // covers the first store: the next one cannot update it in place
    lazy_store(&mut m, &mut file, 8, 2);
    m.capture(&mut |page, buf| {
        let p = page as usize * PAGE_SIZE as usize;
        buf.copy_from_slice(&file[p..p + PAGE_SIZE as usize]);
    });
    assert!(m.is_captured());
    let c = m.candidates(0, 0, m.writes());
    assert_eq!(c.len(), 2);
    assert_eq!((c[0].data()[7], c[0].data()[8]), (1, 0), "the first version, read before the second store landed");
    assert_eq!((c[1].data()[7], c[1].data()[8]), (1, 2));
    assert_eq!(m.base(0, 0).0[7], 0, "the durable content, read before the first store");
}
