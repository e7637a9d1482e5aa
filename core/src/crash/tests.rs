//! Property tests of the crash model and explorer.

use super::*;
use crate::host::{BackingMode, HostBackend, PageCache, PageCacheConfig, TearGranularity};
use crate::memory::PAGE_SIZE;
use crate::sim::{DeviceSpec, Machine, SimConfig};
use crate::time::SimTime;
use crate::workload::flush_and_wait;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Write { offset: u64, len: usize, byte: u8 },
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..6, 0u64..4096, 1usize..200, 1u8..=255).prop_map(|(p, o, len, byte)| Op::Write {
            offset: (p * PAGE_SIZE + o).min(6 * PAGE_SIZE - len as u64),
            len,
            byte
        }),
        1 => Just(Op::Flush),
    ]
}

const SIZE: u64 = 8 * PAGE_SIZE;

fn run(ops: &[Op], seed: u64, with_flushes: bool) -> WriteHistory {
    let mut m = Machine::new(SimConfig { seed, ..SimConfig::default() });
    m.add_device(DeviceSpec::new("d", SIZE)).unwrap();
    for op in ops {
        match op {
            Op::Write { offset, len, byte } => m.guest_write("d", *offset, &vec![*byte; *len]).unwrap(),
            Op::Flush if with_flushes => {
                flush_and_wait(&mut m, "d").unwrap();
            }
            Op::Flush => {}
        }
        // Let some simulated time pass, so background writeback may run.
        m.run_for(seed % 7 * 1_000_000_000);
    }
    WriteHistory::from_log(m.log(), "d", SIZE)
}

/// The writes of `ops`, in order.
fn writes(ops: &[Op]) -> Vec<(u64, usize, u8)> {
    ops.iter()
        .filter_map(|o| match o {
            Op::Write { offset, len, byte } => Some((*offset, *len, *byte)),
            Op::Flush => None,
        })
        .collect()
}

/// What each byte may hold at a crash point, given which writes are durable
/// (`durable`) and which were issued (`issued`): a byte last written by a
/// durable write and not written since must hold that value; any other byte
/// must hold a value some write since gave it, or its durable value.
struct Allowed {
    key: (usize, usize),
    bytes: Vec<(u8, Vec<u8>)>,
}

fn allowed(w: &[(u64, usize, u8)], durable: usize, issued: usize) -> Allowed {
    let mut bytes: Vec<(u8, Vec<u8>)> = vec![(0, Vec::new()); SIZE as usize];
    for &(off, len, b) in &w[..durable] {
        for x in &mut bytes[off as usize..off as usize + len] {
            x.0 = b;
        }
    }
    for &(off, len, b) in &w[durable..issued] {
        for x in &mut bytes[off as usize..off as usize + len] {
            x.1.push(b);
        }
    }
    Allowed { key: (durable, issued), bytes }
}

/// A checker of the byte promise, caching the allowed values per point.
struct BytePromise<'a, F: Fn(&CrashContext) -> usize> {
    writes: &'a [(u64, usize, u8)],
    durable: F,
    cache: std::cell::RefCell<Option<Allowed>>,
}

impl<F: Fn(&CrashContext) -> usize> Checker for BytePromise<'_, F> {
    fn check(&self, img: &dyn ImageReader, ctx: &CrashContext) -> Result<(), String> {
        let key = ((self.durable)(ctx), ctx.point.writes_done);
        let mut cache = self.cache.borrow_mut();
        if cache.as_ref().is_none_or(|a| a.key != key) {
            *cache = Some(allowed(self.writes, key.0, key.1));
        }
        let a = cache.as_ref().map(|a| &a.bytes).ok_or("no cache")?;
        let mut buf = vec![0u8; SIZE as usize];
        img.read(0, &mut buf);
        for (o, &got) in buf.iter().enumerate() {
            let (d, later) = &a[o];
            if later.is_empty() {
                if got != *d {
                    return Err(format!("byte {o}: durable value {d} lost (image has {got})"));
                }
            } else if got != *d && !later.contains(&got) {
                return Err(format!("byte {o}: {got} was never written there"));
            }
        }
        Ok(())
    }
}

fn cfg(seed: u64, tear: TearGranularity) -> CampaignConfig {
    CampaignConfig {
        seed,
        tear,
        exhaustive_limit: 512,
        samples_per_point: 64,
        torn_samples_per_point: 16,
        ..CampaignConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// (a) Every write that completed before a completed flush survives in
    /// every explored image, and every byte comes from some write.
    #[test]
    fn durable_writes_survive_every_explored_image(
        ops in prop::collection::vec(op(), 1..24),
        seed in any::<u64>(),
        tear in prop::sample::select(TearGranularity::ALL.to_vec()),
    ) {
        let h = run(&ops, seed, true);
        let w = writes(&ops);
        let checker = BytePromise { writes: &w, durable: |c: &CrashContext| c.point.durable_upto, cache: Default::default() };
        let r = Campaign::new(&h, &checker, cfg(seed, tear)).run();
        prop_assert_eq!(r.violations_total, 0, "seed {}: {:?}", seed, r.violations.first());
        // Durability frontier: after every flush returned, all writes before it are durable.
        let last = h.points().last().unwrap();
        let flushed_writes = ops.iter().rposition(|o| matches!(o, Op::Flush))
            .map(|i| writes(&ops[..i]).len()).unwrap_or(0);
        prop_assert!(last.durable_upto >= flushed_writes);
    }

    /// (b) Every explored untorn image is reachable: the page-cache model,
    /// driven by a schedule built from the image, produces exactly it.
    #[test]
    fn every_explored_image_is_reachable_under_the_model(
        ops in prop::collection::vec(op(), 1..16),
        seed in any::<u64>(),
    ) {
        let h = run(&ops, seed, true);
        let w = writes(&ops);
        let checker = |_: &dyn ImageReader, _: &CrashContext| Ok(());
        let c = Campaign::new(&h, &checker, cfg(seed, TearGranularity::Page4K));
        for point in h.points() {
            let (images, _) = c.images_at(point);
            for image in images.iter().take(16) {
                let quiet = PageCacheConfig {
                    dirty_expire_ns: None, dirty_writeback_interval_ns: None,
                    dirty_background_ratio: None, dirty_ratio: None, ..PageCacheConfig::default()
                };
                let mut pc = PageCache::new(SIZE, BackingMode::Shared, quiet);
                let mut now = SimTime(0);
                let settle = |pc: &mut PageCache, now: &mut SimTime| {
                    while let Some(t) = pc.next_event_time() { *now = (*now).max(t); pc.advance(*now); }
                };
                for (i, &(off, len, byte)) in w[..point.writes_done].iter().enumerate() {
                    if i == point.durable_upto {
                        pc.begin_sync(now);
                        settle(&mut pc, &mut now);
                    }
                    pc.write_at(now, off, &vec![byte; len]).unwrap();
                    for choice in &image.choices {
                        let v = &h.candidates(choice.page, point)[choice.version as usize - 1];
                        if v.write == i {
                            pc.writeback_page(now, choice.page);
                            settle(&mut pc, &mut now);
                        }
                    }
                }
                if point.durable_upto == point.writes_done {
                    pc.begin_sync(now);
                    settle(&mut pc, &mut now);
                }
                pc.power_fail(&mut crate::rng::SimRng::new(0), TearGranularity::Page4K);
                let view = ImageView::new(&h, point, image);
                for page in 0..SIZE / PAGE_SIZE {
                    let mut disk = vec![0u8; PAGE_SIZE as usize];
                    pc.read_durable(page * PAGE_SIZE, &mut disk).unwrap();
                    prop_assert_eq!(&disk, &view.page(page), "seed {} point {} page {}", seed, point.index, page);
                }
            }
        }
    }

    /// (c) Negative control: with the flushes removed, the same promise is
    /// broken, and the explorer finds the lost write.
    #[test]
    fn without_flushes_the_explorer_finds_a_lost_write(
        ops in prop::collection::vec(op(), 1..24)
            .prop_filter("a write followed by a flush", |ops| {
                ops.iter().position(|o| matches!(o, Op::Write { .. }))
                    .is_some_and(|w| ops[w..].iter().any(|o| matches!(o, Op::Flush)))
            }),
        seed in any::<u64>(),
    ) {
        let quiet = SimConfig {
            seed,
            host: PageCacheConfig { dirty_expire_ns: None, dirty_writeback_interval_ns: None, ..PageCacheConfig::default() },
            ..SimConfig::default()
        };
        let mut m = Machine::new(quiet);
        m.add_device(DeviceSpec::new("d", SIZE)).unwrap();
        for op in &ops {
            if let Op::Write { offset, len, byte } = op {
                m.guest_write("d", *offset, &vec![*byte; *len]).unwrap();
            }
        }
        let h = WriteHistory::from_log(m.log(), "d", SIZE);
        let w = writes(&ops);
        // What the flushes would have made durable, by writes issued.
        let promised = |issued: usize| {
            let mut n = 0;
            let mut d = 0;
            for o in &ops {
                match o {
                    Op::Write { .. } => { if n == issued { break; } n += 1; }
                    Op::Flush => d = n,
                }
            }
            d
        };
        let checker =
            BytePromise { writes: &w, durable: |c: &CrashContext| promised(c.point.writes_done), cache: Default::default() };
        let r = Campaign::new(&h, &checker, cfg(seed, TearGranularity::Page4K)).run();
        prop_assert!(r.violations_total > 0, "seed {}: no lost write found", seed);
    }
}

/// A page of an image the slow, obvious way: from the history's own
/// versions and `tear_page`.
fn reference_page(h: &WriteHistory, point: &CrashPoint, image: &CrashImage, page: u64) -> Vec<u8> {
    let (base, _) = h.base(page, point);
    let Some(c) = image.choices.iter().find(|c| c.page == page) else { return base.to_vec() };
    let cands = h.candidates(page, point);
    let v = c.version as usize;
    let new = cands[v - 1].data();
    match &c.torn {
        None => new.to_vec(),
        Some(mask) => {
            let old: &[u8] = if v >= 2 { cands[v - 2].data() } else { base };
            crate::host::tear::tear_page(old, new, image.tear, mask)
        }
    }
}

proptest! {
    /// Every planned image reads, through the point index, exactly what the
    /// history says it holds; sparse and dense forms round-trip; equal
    /// fingerprints mean equal bytes.
    #[test]
    fn planned_images_read_what_the_history_holds(ops in prop::collection::vec(op(), 1..25), seed in 0u64..50) {
        let h = run(&ops, seed, true);
        let checker = |_: &dyn ImageReader, _: &CrashContext| Ok(());
        let cfg = CampaignConfig { seed, exhaustive_limit: 64, samples_per_point: 8, torn_samples_per_point: 4, ..CampaignConfig::default() };
        let campaign = Campaign::new(&h, &checker, cfg);
        for point in h.points() {
            let plan = campaign.plan(point);
            let mut seen: std::collections::HashMap<u64, Vec<Vec<u8>>> = Default::default();
            for n in 0..plan.total() {
                let dense = plan.image(n);
                let sparse = plan.index().sparsify(&dense);
                prop_assert_eq!(&plan.index().densify(&sparse), &dense);
                let view = plan.index().view(&dense);
                let mut all = Vec::new();
                for p in 0..SIZE / PAGE_SIZE {
                    let want = reference_page(&h, point, &sparse, p);
                    let mut got = vec![0u8; PAGE_SIZE as usize];
                    view.read(p * PAGE_SIZE, &mut got);
                    prop_assert_eq!(&got, &want, "page {} of image {} at point {}", p, n, point.index);
                    all.push(got);
                }
                let fp = plan.fingerprint(&dense);
                if let Some(prev) = seen.get(&fp) {
                    prop_assert_eq!(prev, &all, "equal fingerprints, different bytes");
                }
                seen.insert(fp, all);
            }
        }
    }
}

#[test]
fn a_device_too_large_for_a_flat_table_reads_the_same() {
    // 16 GiB: the page table falls back to a sorted vector.
    let mut m = Machine::new(SimConfig { seed: 2, ..SimConfig::default() });
    m.add_device(DeviceSpec::new("big", 16 << 30)).unwrap();
    for p in [0u64, 3, 1 << 21, (4 << 20) - 1] {
        m.guest_write("big", p * PAGE_SIZE, &p.to_le_bytes()).unwrap();
    }
    let h = WriteHistory::from_log(m.log(), "big", 16 << 30);
    let point = h.points().last().unwrap();
    let index = PointIndex::new(&h, point);
    let mut all = DenseImage::durable(index.len(), TearGranularity::Page4K);
    all.versions.iter_mut().for_each(|v| *v = 1);
    for p in [0u64, 3, 1 << 21, (4 << 20) - 1] {
        assert_eq!(index.view(&all).read_u64(p * PAGE_SIZE), p, "page {p}");
        assert_eq!(index.view(&DenseImage::durable(index.len(), TearGranularity::Page4K)).read_u64(p * PAGE_SIZE), 0);
    }
    assert_eq!(index.slot(5), None);
}

/// A history of `stores` (page, byte) on a device whose host folios are
/// `folio_bytes`, with no flush.
fn folio_history(folio_bytes: u64, stores: &[(u64, u8)]) -> WriteHistory {
    let host = PageCacheConfig {
        folio_bytes,
        dirty_expire_ns: None,
        dirty_writeback_interval_ns: None,
        ..PageCacheConfig::default()
    };
    let mut m = Machine::new(SimConfig { seed: 1, host, ..SimConfig::default() });
    m.add_device(DeviceSpec::new("d", 4 << 20)).unwrap();
    for &(page, byte) in stores {
        m.guest_write("d", page * PAGE_SIZE, &[byte; 8]).unwrap();
    }
    WriteHistory::from_log(m.log(), "d", 4 << 20)
}

/// The first byte of each page in `pages` of every image at the last point.
fn first_bytes(h: &WriteHistory, pages: &[u64]) -> std::collections::BTreeSet<Vec<u8>> {
    let c = Campaign::new(h, &NoChecker, cfg(1, TearGranularity::Page4K));
    let point = h.points().last().unwrap();
    let (images, exhaustive) = c.images_at(point);
    assert!(exhaustive);
    images
        .iter()
        .map(|img| {
            let view = ImageView::new(h, point, img);
            pages.iter().map(|&p| view.page(p)[0]).collect()
        })
        .collect()
}

struct NoChecker;

impl Checker for NoChecker {
    fn check(&self, _: &dyn ImageReader, _: &CrashContext) -> Result<(), String> {
        Ok(())
    }
}

#[test]
fn pages_of_one_host_folio_reach_the_disk_at_one_cut_of_its_writes() {
    // Page 1 is stored after page 0, in the same 2 MiB folio: a snapshot
    // that holds page 1's store holds page 0's too.
    let stores = [(0, 0xA), (1, 0xB), (600, 0xC)];
    let folio = first_bytes(&folio_history(2 << 20, &stores), &[0, 1, 600]);
    let want: std::collections::BTreeSet<Vec<u8>> =
        [[0, 0, 0], [0xA, 0, 0], [0xA, 0xB, 0], [0, 0, 0xC], [0xA, 0, 0xC], [0xA, 0xB, 0xC]]
            .iter()
            .map(|v| v.to_vec())
            .collect();
    assert_eq!(folio, want, "3 cuts of folio 0 × 2 choices of folio 1");
    // Negative control: with page-sized folios the impossible state
    // (page 1 new, page 0 old) is among the images.
    let pages = first_bytes(&folio_history(4096, &stores), &[0, 1, 600]);
    assert_eq!(pages.len(), 8);
    assert!(pages.contains(&vec![0, 0xB, 0]) && !folio.contains(&vec![0, 0xB, 0]));
}

#[test]
fn the_folio_size_travels_in_the_log() {
    let h = folio_history(2 << 20, &[(3, 1)]);
    assert_eq!(h.model().folio_pages(), 512);
    assert_eq!(folio_history(4096, &[(3, 1)]).model().folio_pages(), 1);
}

#[test]
fn shrinking_keeps_a_folio_at_one_cut() {
    // The checker fails whenever page 1 holds its store; the minimal image
    // must still hold page 0's earlier store (same folio, earlier write).
    struct Page1;
    impl Checker for Page1 {
        fn check(&self, img: &dyn ImageReader, _: &CrashContext) -> Result<(), String> {
            let mut b = [0u8; 1];
            img.read(PAGE_SIZE, &mut b);
            if b[0] == 0xB {
                Err("page 1 persisted".into())
            } else {
                Ok(())
            }
        }
    }
    let h = folio_history(2 << 20, &[(0, 0xA), (1, 0xB), (600, 0xC)]);
    let r = Campaign::new(&h, &Page1, cfg(1, TearGranularity::Page4K)).run();
    let cx = r.counterexample.expect("a counterexample");
    let pages: Vec<u64> = cx.minimal.image.choices.iter().map(|c| c.page).collect();
    assert_eq!(pages, vec![0, 1], "folio 0 at the cut that holds page 1; folio 1 dropped");
}
