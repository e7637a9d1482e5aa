use super::*;

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

fn quiet() -> PageCacheConfig {
    PageCacheConfig {
        dirty_expire_ns: None,
        dirty_writeback_interval_ns: None,
        dirty_background_ratio: None,
        dirty_ratio: None,
        ..PageCacheConfig::default()
    }
}

fn disk_byte(pc: &PageCache, off: u64) -> u8 {
    let mut b = [0u8; 1];
    pc.read_durable(off, &mut b).unwrap();
    b[0]
}

fn sync(pc: &mut PageCache, at: SimTime) -> SyncCompletion {
    let t = pc.begin_sync(at);
    loop {
        let now = pc.next_event_time().expect("sync never completes");
        for c in pc.advance(now) {
            if c.ticket == t {
                return c;
            }
        }
        assert!(now.0 < at.0 + 100 * S, "sync did not complete");
    }
}

#[test]
fn data_loss_without_sync() {
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, quiet());
    pc.write_at(SimTime(0), 0, &[7]).unwrap();
    let mut b = [0u8; 1];
    pc.read_at(0, &mut b).unwrap();
    assert_eq!(b[0], 7, "reads see the newest content");
    assert_eq!(disk_byte(&pc, 0), 0, "nothing on disk yet");
    let r = pc.power_fail(&mut SimRng::new(1), TearGranularity::Sector512);
    assert_eq!(r.lost_pages, vec![0]);
    pc.read_at(0, &mut b).unwrap();
    assert_eq!(b[0], 0);
}

#[test]
fn durability_with_sync() {
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, quiet());
    pc.write_at(SimTime(0), 4096 * 3, &[9; 10]).unwrap();
    let c = sync(&mut pc, SimTime(10));
    assert_eq!(c.result, Ok(()));
    assert!(c.at.0 > 10, "a sync takes time");
    assert_eq!(disk_byte(&pc, 4096 * 3), 9);
    let r = pc.power_fail(&mut SimRng::new(1), TearGranularity::Sector512);
    assert!(r.lost_pages.is_empty());
    assert_eq!(disk_byte(&pc, 4096 * 3 + 9), 9);
}

#[test]
fn pages_are_under_writeback_for_a_while() {
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, quiet());
    for p in 0..4u64 {
        pc.write_at(SimTime(0), p * 4096, &[1]).unwrap();
    }
    pc.begin_sync(SimTime(0));
    let counts = pc.page_counts().unwrap();
    assert_eq!(counts.writeback, 4);
    assert_eq!(counts.dirty, 0);
    // One disk: the pages finish one after another.
    let first = pc.next_event_time().unwrap();
    pc.advance(first);
    assert_eq!(pc.page_counts().unwrap().writeback, 3);
}

#[test]
fn background_writeback_after_dirty_expire() {
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, PageCacheConfig::default());
    pc.write_at(SimTime(S), 0, &[5]).unwrap();
    pc.advance(SimTime(30 * S));
    assert_eq!(disk_byte(&pc, 0), 0, "not yet expired at 30 s (dirtied at 1 s)");
    assert_eq!(pc.next_event_time(), Some(SimTime(35 * S)), "the flusher wakes on its 5 s grid");
    pc.advance(SimTime(36 * S));
    assert_eq!(disk_byte(&pc, 0), 5, "written back by the flusher at 35 s");
}

#[test]
fn the_flusher_wakes_at_its_phase_within_the_interval() {
    // Expired at 31 s: on the grid from 0 the flusher writes at 35 s; with a
    // phase of 2 s it wakes at 2, 7, …, 32 s.
    let cfg = PageCacheConfig { flusher_phase_ns: 2 * S, ..PageCacheConfig::default() };
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, cfg);
    pc.write_at(SimTime(S), 0, &[5]).unwrap();
    assert_eq!(pc.next_event_time(), Some(SimTime(32 * S)));
    pc.advance(SimTime(33 * S));
    assert_eq!(disk_byte(&pc, 0), 5, "written back at 32 s, not 35 s");
    // A phase of a whole interval or more is the same as its remainder.
    assert_eq!(flusher_wake(SimTime(31 * S), 5 * S, 12 * S), SimTime(32 * S));
    assert_eq!(flusher_wake(SimTime(S), 5 * S, 2 * S), SimTime(2 * S));
    assert_eq!(flusher_wake(SimTime(35 * S), 5 * S, 0), SimTime(35 * S), "on the grid: at once");
}

#[test]
fn background_ratio_starts_writeback_early() {
    let cfg = PageCacheConfig {
        host_memory_bytes: 100 * 4096,
        dirty_background_ratio: Some(10),
        dirty_ratio: None,
        dirty_expire_ns: None,
        ..PageCacheConfig::default()
    };
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, cfg);
    for p in 0..15u64 {
        pc.write_at(SimTime(p), p * 4096, &[1]).unwrap();
    }
    let c = pc.page_counts().unwrap();
    assert_eq!(c.writeback, 5, "oldest pages above the 10-page threshold go to disk");
    let ev = pc.take_events();
    assert!(ev.iter().any(|e| matches!(e, HostEvent::WritebackStarted { reason: WritebackReason::Background, .. })));
}

#[test]
fn dirty_ratio_throttles_the_writer() {
    let cfg = PageCacheConfig {
        host_memory_bytes: 100 * 4096,
        dirty_background_ratio: None,
        dirty_ratio: Some(20),
        ..PageCacheConfig::default()
    };
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, cfg);
    for p in 0..21u64 {
        pc.write_at(SimTime(0), p * 4096, &[1]).unwrap();
    }
    assert!(pc.take_events().iter().any(|e| matches!(e, HostEvent::WriterThrottled { dirty: 21 })));
}

#[test]
fn switching_background_writeback_off_keeps_pages_dirty() {
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, quiet());
    pc.write_at(SimTime(0), 0, &[5]).unwrap();
    assert_eq!(pc.next_event_time(), None);
    pc.advance(SimTime(3600 * S));
    assert_eq!(disk_byte(&pc, 0), 0);
}

#[test]
fn fsyncgate_error_reported_once_and_data_lost_later() {
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, quiet());
    pc.write_at(SimTime(0), 0, &[42]).unwrap();
    pc.inject_sync_failures(1);
    let first = sync(&mut pc, SimTime(1));
    assert_eq!(first.result, Err(HostError::SyncFailed), "the failure is reported");
    // The page is clean in the cache, but the disk does not hold it.
    let states = pc.page_states();
    assert_eq!(states[0].state, PageState::CleanNotDurable);
    let mut b = [0u8; 1];
    pc.read_at(0, &mut b).unwrap();
    assert_eq!(b[0], 42, "the cache still serves the data");
    let retry = sync(&mut pc, SimTime(10 * MS));
    assert_eq!(retry.result, Ok(()), "a retried fsync succeeds");
    assert_eq!(disk_byte(&pc, 0), 0, "although the data is not on disk");
    let r = pc.power_fail(&mut SimRng::new(0), TearGranularity::Page4K);
    assert_eq!(r.lost_pages, vec![0], "and the next power failure loses it");
}

#[test]
fn fsyncgate_eviction_loses_the_data() {
    let cfg = PageCacheConfig { host_memory_bytes: 2 * 4096, ..quiet() };
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, cfg);
    pc.write_at(SimTime(0), 0, &[42]).unwrap();
    pc.inject_sync_failures(1);
    assert!(sync(&mut pc, SimTime(1)).result.is_err());
    // Memory pressure: two more pages evict the old clean one.
    pc.write_at(SimTime(MS), 4096, &[1]).unwrap();
    pc.write_at(SimTime(2 * MS), 8192, &[1]).unwrap();
    sync(&mut pc, SimTime(3 * MS));
    pc.write_at(SimTime(4 * MS), 12288, &[1]).unwrap();
    let ev = pc.take_events();
    assert!(ev.iter().any(|e| matches!(e, HostEvent::PageEvicted { page: 0, lost: true, .. })), "{ev:?}");
    let mut b = [0u8; 1];
    pc.read_at(0, &mut b).unwrap();
    assert_eq!(b[0], 0, "after eviction the guest reads the stale disk content");
}

#[test]
fn background_write_error_is_reported_by_the_next_fsync() {
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, PageCacheConfig::default());
    pc.write_at(SimTime(0), 0, &[1]).unwrap();
    pc.fail_next_writebacks(1);
    pc.advance(SimTime(40 * S));
    assert_eq!(pc.page_counts().unwrap().not_durable_clean, 1);
    assert!(sync(&mut pc, SimTime(41 * S)).result.is_err(), "errseq: reported to the next fsync");
    assert!(sync(&mut pc, SimTime(42 * S)).result.is_ok(), "only once");
}

#[test]
fn memory_pressure_evicts_clean_pages_lru_first() {
    let cfg = PageCacheConfig { host_memory_bytes: 3 * 4096, ..quiet() };
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, cfg);
    for p in 0..3u64 {
        pc.write_at(SimTime(p), p * 4096, &[p as u8 + 1]).unwrap();
    }
    sync(&mut pc, SimTime(10));
    pc.write_at(SimTime(MS), 10 * 4096, &[9]).unwrap();
    let c = pc.page_counts().unwrap();
    assert_eq!(c.cached, 3);
    assert_eq!(c.evicted, 1);
    assert!(pc.take_events().iter().any(|e| matches!(e, HostEvent::PageEvicted { page: 0, lost: false, .. })));
    let mut b = [0u8; 1];
    pc.read_at(0, &mut b).unwrap();
    assert_eq!(b[0], 1, "evicted clean page reads back from disk");
}

#[test]
fn reclaim_writes_back_dirty_pages_when_nothing_is_clean() {
    let cfg = PageCacheConfig { host_memory_bytes: 2 * 4096, ..quiet() };
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, cfg);
    for p in 0..3u64 {
        pc.write_at(SimTime(p), p * 4096, &[1]).unwrap();
    }
    assert!(pc
        .take_events()
        .iter()
        .any(|e| matches!(e, HostEvent::WritebackStarted { reason: WritebackReason::Reclaim, .. })));
    let t = pc.next_event_time().unwrap();
    pc.advance(t);
    assert_eq!(pc.page_counts().unwrap().cached, 2, "written back, then evicted");
}

#[test]
fn concurrent_syncs_coalesce() {
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, quiet());
    pc.write_at(SimTime(0), 0, &[1]).unwrap();
    let a = pc.begin_sync(SimTime(0));
    pc.write_at(SimTime(1), 4096, &[1]).unwrap();
    let b = pc.begin_sync(SimTime(1));
    let c = pc.begin_sync(SimTime(2));
    let mut done = Vec::new();
    while let Some(t) = pc.next_event_time() {
        done.extend(pc.advance(t));
    }
    assert_eq!(done.len(), 3);
    assert_eq!(done[0].ticket, a);
    assert_eq!((done[1].ticket, done[2].ticket), (b, c));
    assert_eq!(done[1].at, done[2].at, "b and c share one run");
    assert!(done[1].at > done[0].at);
    assert_eq!(disk_byte(&pc, 4096), 1);
}

#[test]
fn without_coalescing_syncs_run_concurrently() {
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, PageCacheConfig { coalesce_syncs: false, ..quiet() });
    pc.write_at(SimTime(0), 0, &[1]).unwrap();
    pc.begin_sync(SimTime(0));
    pc.begin_sync(SimTime(1));
    let mut done = Vec::new();
    while let Some(t) = pc.next_event_time() {
        done.extend(pc.advance(t));
    }
    assert_eq!(done.len(), 2);
    assert!(done.iter().all(|d| d.result.is_ok()));
}

#[test]
fn a_page_written_during_writeback_is_written_again_by_fsync() {
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, quiet());
    pc.write_at(SimTime(0), 0, &[1]).unwrap();
    let t = pc.begin_sync(SimTime(0));
    pc.write_at(SimTime(1), 0, &[2]).unwrap();
    assert_eq!(pc.page_states()[0].state, PageState::WritebackDirty);
    let t2 = pc.begin_sync(SimTime(2));
    let mut done = Vec::new();
    while let Some(n) = pc.next_event_time() {
        done.extend(pc.advance(n));
    }
    assert_eq!(done.iter().map(|d| d.ticket).collect::<Vec<_>>(), vec![t, t2]);
    assert_eq!(disk_byte(&pc, 0), 2);
}

#[test]
fn share_off_never_reaches_the_file() {
    let mut pc = PageCache::new(1 << 20, BackingMode::Private, PageCacheConfig::default());
    pc.write_at(SimTime(0), 0, &[3]).unwrap();
    let mut b = [0u8; 1];
    pc.read_at(0, &mut b).unwrap();
    assert_eq!(b[0], 3);
    assert_eq!(sync(&mut pc, SimTime(1)).result, Ok(()));
    pc.advance(SimTime(100 * S));
    assert_eq!(disk_byte(&pc, 0), 0, "nothing ever reaches the file");
    pc.process_killed();
    pc.read_at(0, &mut b).unwrap();
    assert_eq!(b[0], 0, "the private copy dies with the VMM");
}

#[test]
fn real_nvdimm_stores_are_durable_at_once() {
    let mut pc = PageCache::new(1 << 20, BackingMode::Persistent, PageCacheConfig::default());
    pc.write_at(SimTime(0), 100, &[8]).unwrap();
    assert_eq!(disk_byte(&pc, 100), 8);
    let r = pc.power_fail(&mut SimRng::new(0), TearGranularity::Store8);
    assert!(r.lost_pages.is_empty());
}

fn torn_after_power_failure(g: TearGranularity, seed: u64) -> (Vec<u8>, PowerFailReport) {
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, quiet());
    pc.write_at(SimTime(0), 0, &vec![0xAA; 4096]).unwrap();
    pc.begin_sync(SimTime(0));
    assert_eq!(pc.page_counts().unwrap().writeback, 1);
    let r = pc.power_fail(&mut SimRng::new(seed), g);
    let mut page = vec![0u8; 4096];
    pc.read_durable(0, &mut page).unwrap();
    (page, r)
}

#[test]
fn each_tear_granularity_tears_in_its_units() {
    for g in TearGranularity::ALL {
        let mut saw_torn = false;
        for seed in 0..20 {
            let (page, r) = torn_after_power_failure(g, seed);
            for unit in page.chunks(g.bytes()) {
                assert!(unit.iter().all(|&b| b == unit[0]), "{g}: a unit is all old or all new");
                assert!(unit[0] == 0 || unit[0] == 0xAA);
            }
            if !r.torn_pages.is_empty() {
                saw_torn = true;
            }
        }
        if g == TearGranularity::Page4K {
            assert!(!saw_torn, "a 4 KiB unit cannot tear within the page");
        } else {
            assert!(saw_torn, "{g}: tearing happens");
        }
    }
}

#[test]
fn the_model_is_deterministic() {
    fn run(seed: u64) -> (Vec<HostEvent>, Vec<u8>) {
        let mut pc = PageCache::new(1 << 22, BackingMode::Shared, PageCacheConfig::default());
        let mut rng = SimRng::new(seed);
        let mut ev = Vec::new();
        for i in 0..200u64 {
            let page = rng.below(1024);
            pc.write_at(SimTime(i * 100 * MS), page * 4096, &[i as u8]).unwrap();
            if rng.chance(1, 10) {
                pc.begin_sync(SimTime(i * 100 * MS));
            }
            pc.advance(SimTime(i * 100 * MS + 50 * MS));
            ev.extend(pc.take_events());
        }
        pc.power_fail(&mut rng, TearGranularity::CacheLine64);
        let mut disk = vec![0u8; 1 << 22];
        pc.read_durable(0, &mut disk).unwrap();
        (ev, disk)
    }
    assert_eq!(run(5), run(5));
    assert_ne!(run(5).0, run(6).0);
}

fn huge() -> PageCacheConfig {
    PageCacheConfig { folio_bytes: 2 << 20, ..quiet() }
}

#[test]
fn expiry_is_per_inode_all_dirty_pages_go_once_the_file_expired() {
    // Linux measures dirty_expire from the inode's dirtied_when: once the
    // file has been dirty for 30 s, kupdate writeback writes every dirty
    // page of it, however young.
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, PageCacheConfig::default());
    pc.write_at(SimTime(S), 0, &[1]).unwrap();
    pc.write_at(SimTime(29 * S), 4096, &[2]).unwrap();
    pc.advance(SimTime(36 * S));
    assert_eq!((disk_byte(&pc, 0), disk_byte(&pc, 4096)), (1, 2), "both pages written at 35 s");
    let expired = pc
        .take_events()
        .iter()
        .filter(|e| matches!(e, HostEvent::WritebackStarted { reason: WritebackReason::Expired, .. }))
        .count();
    assert_eq!(expired, 2);
    // Clean again: the next store starts a new 30 s.
    pc.write_at(SimTime(40 * S), 8192, &[3]).unwrap();
    pc.advance(SimTime(66 * S));
    assert_eq!(disk_byte(&pc, 8192), 0, "dirty since 40 s: not expired at 66 s");
    pc.advance(SimTime(71 * S));
    assert_eq!(disk_byte(&pc, 8192), 3, "written at 70 s");
}

#[test]
fn a_file_dirtied_at_its_creation_dates_the_first_stores_expiry() {
    // The inode went dirty when the file was created (0 s): a page stored at
    // 20 s is written with it at the first flusher run after 30 s, not 30 s
    // after the store. The same store into a file not marked dirty waits
    // for its own 30 s (the negative control).
    let run = |created: bool| {
        let mut pc = PageCache::new(1 << 20, BackingMode::Shared, PageCacheConfig::default());
        if created {
            pc.file_dirtied(SimTime::ZERO);
        }
        pc.write_at(SimTime(20 * S), 0, &[7]).unwrap();
        pc.advance(SimTime(31 * S));
        disk_byte(&pc, 0)
    };
    assert_eq!(run(true), 7, "written at 30 s with the inode");
    assert_eq!(run(false), 0, "dirty since 20 s: not before 50 s");
    // Created at 0 s but first stored to at 40 s: the flusher wrote the
    // inode at 30 s, so the store starts a new 30 s.
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, PageCacheConfig::default());
    pc.file_dirtied(SimTime::ZERO);
    pc.write_at(SimTime(40 * S), 0, &[8]).unwrap();
    pc.advance(SimTime(66 * S));
    assert_eq!(disk_byte(&pc, 0), 0, "the inode was clean again before the store");
    pc.advance(SimTime(71 * S));
    assert_eq!(disk_byte(&pc, 0), 8);
}

#[test]
fn a_large_folio_is_dirtied_and_written_back_whole() {
    let mut pc = PageCache::new(8 << 20, BackingMode::Shared, huge());
    for p in 0..16u64 {
        pc.write_at(SimTime(0), p * 4096, &[0xA0 | p as u8]).unwrap();
    }
    let c = pc.page_counts().unwrap();
    assert_eq!((c.dirty, c.cached), (512, 512), "16 guest pages make one 2 MiB folio dirty");
    let ev = pc.take_events();
    assert_eq!(ev, vec![HostEvent::PageDirtied { page: 0, pages: 512 }]);
    pc.write_at(SimTime(1), (2 << 20) + 4096, &[7]).unwrap();
    assert_eq!(pc.page_counts().unwrap().dirty, 1024, "a second folio");
    let t = pc.begin_sync(SimTime(10));
    assert_eq!(pc.page_counts().unwrap().writeback, 1024);
    let first_done = pc.next_event_time().unwrap();
    // One write of 2 MiB: the latency plus the whole folio's transfer.
    let cfg = huge();
    let cost = cfg.io_latency_ns + (2u64 << 20) * 1_000_000_000 / cfg.bandwidth_bytes_per_sec;
    assert_eq!(first_done, SimTime(10 + cost));
    let c = sync_done(&mut pc, t);
    assert_eq!(c.result, Ok(()));
    for p in 0..16u64 {
        assert_eq!(disk_byte(&pc, p * 4096), 0xA0 | p as u8);
    }
    assert_eq!(pc.page_counts().unwrap().dirty, 0);
    assert_eq!(pc.page_states().len(), 1024, "every page of both folios is cached (clean)");
}

fn sync_done(pc: &mut PageCache, t: SyncTicket) -> SyncCompletion {
    loop {
        let now = pc.next_event_time().expect("sync never completes");
        if let Some(c) = pc.advance(now).into_iter().find(|c| c.ticket == t) {
            return c;
        }
    }
}

#[test]
fn a_power_failure_during_a_folio_writeback_tears_its_pages_and_loses_only_stored_ones() {
    let mut pc = PageCache::new(4 << 20, BackingMode::Shared, huge());
    pc.write_at(SimTime(0), 0, &[1; 4096]).unwrap();
    pc.write_at(SimTime(0), 5 * 4096, &[2; 4096]).unwrap();
    pc.begin_sync(SimTime(0));
    // Under writeback, page 5 is stored again: the folio is dirty again.
    pc.write_at(SimTime(1), 5 * 4096, &[3; 4096]).unwrap();
    assert_eq!(pc.page_counts().unwrap().dirty, 512);
    let r = pc.power_fail(&mut SimRng::new(3), TearGranularity::Sector512);
    assert!(r.lost_pages.contains(&5), "page 5's newest content cannot be on disk: {:?}", r.lost_pages);
    assert!(r.lost_pages.iter().all(|&p| p == 0 || p == 5), "untouched pages lose nothing: {:?}", r.lost_pages);
    assert!(r.torn_pages.iter().all(|&p| p == 0 || p == 5), "{:?}", r.torn_pages);
    assert!(pc.disk().touched_pages() <= 2, "zero pages stay holes in the model's disk");
}

#[test]
fn a_file_shorter_than_a_folio_has_one_short_folio() {
    let mut pc = PageCache::new(40 * 4096, BackingMode::Shared, huge());
    pc.write_at(SimTime(0), 39 * 4096, &[9]).unwrap();
    assert_eq!(pc.page_counts().unwrap().dirty, 40);
    assert_eq!(pc.folio_pages(), 512);
}

#[test]
fn with_page_sized_folios_the_events_are_the_per_page_ones() {
    let mut pc = PageCache::new(1 << 20, BackingMode::Shared, quiet());
    pc.write_at(SimTime(0), 4096, &[1]).unwrap();
    let json = serde_json::to_string(&pc.take_events()).unwrap();
    assert_eq!(json, r#"[{"host_event":"page_dirtied","page":1}]"#, "no `pages` field for one page");
}
