//! The Rust API example: a storage engine's own crash-consistency test.
//!
//! A tiny storage engine — an append-only log with a commit record — writes
//! through pmem-core's [`Recorder`] (a simulated virtio-pmem device: guest
//! stores into the host page cache, each sync a flush request through the
//! virtqueue). Its test then explores every crash state of the run with
//! [`explore_all`] and runs the engine's own recovery on each image: the
//! "ALICE-like permuter in my test suite". The engine with its commit
//! ordered wrongly (the commit record written before the entries are
//! flushed) is the negative control: it must be caught, and shrunk to a
//! minimal counterexample.
//!
//! To test an engine of your own: make it write through a trait like
//! [`Pmem`] below, implement that trait for [`Recorder`] in the test, run a
//! workload, and give [`explore_all`] a closure that opens the image with
//! the engine's recovery and checks what a user was promised.

use pmem_core::crash::{CrashContext, ImageReader};
use pmem_core::guest::FlushResult;
use pmem_core::workload::{explore_all, Recorder};

/// What the engine needs from its storage: stores and a sync (`fsync`).
pub trait Pmem {
    /// Stores `data` at `offset`.
    fn store(&mut self, offset: u64, data: &[u8]);
    /// Makes every store before it durable; false when the sync failed.
    fn sync(&mut self) -> bool;
}

impl Pmem for Recorder {
    fn store(&mut self, offset: u64, data: &[u8]) {
        self.write(offset, data).expect("the store is inside the device");
    }

    fn sync(&mut self) -> bool {
        self.flush().expect("the device answers") == FlushResult::Ok
    }
}

/// The append log's layout: the commit record (`le64` entries committed,
/// `le64` checksum of that count) at offset 0, entry `i` in 64-byte slot
/// `i` from offset 4096 (`le32` length, `le64` checksum, payload), so
/// entries share pages and a torn page matters.
const COMMIT: u64 = 0;
const ENTRIES: u64 = 4096;
const SLOT: u64 = 64;
const MAX_PAYLOAD: usize = (SLOT - 12) as usize;

fn checksum(bytes: &[u8]) -> u64 {
    pmem_core::rng::fnv1a64(bytes)
}

/// The storage engine.
struct AppendLog<S: Pmem> {
    store: S,
    len: u64,
    /// The bug of the negative control: the commit record goes out with the
    /// entries, before they are durable.
    commit_first: bool,
}

impl<S: Pmem> AppendLog<S> {
    fn new(store: S, commit_first: bool) -> Self {
        AppendLog { store, len: 0, commit_first }
    }

    /// Appends `entries` and commits them: once this returns true, they
    /// survive any crash.
    fn append_and_commit(&mut self, entries: &[&[u8]]) -> bool {
        let mut n = self.len;
        for e in entries {
            assert!(e.len() <= MAX_PAYLOAD);
            let mut slot = (e.len() as u32).to_le_bytes().to_vec();
            slot.extend_from_slice(&checksum(e).to_le_bytes());
            slot.extend_from_slice(e);
            self.store.store(ENTRIES + n * SLOT, &slot);
            n += 1;
        }
        if !self.commit_first && !self.store.sync() {
            return false; // the barrier: entries durable before the commit
        }
        let mut commit = n.to_le_bytes().to_vec();
        commit.extend_from_slice(&checksum(&n.to_le_bytes()).to_le_bytes());
        self.store.store(COMMIT, &commit);
        let ok = self.store.sync();
        if ok {
            self.len = n;
        }
        ok
    }
}

/// The engine's recovery on a crash image: the committed entries, or why
/// the image cannot be recovered.
fn recover(image: &dyn ImageReader) -> Result<Vec<Vec<u8>>, String> {
    let n = image.read_u64(COMMIT);
    let sum = image.read_u64(COMMIT + 8);
    if n == 0 && sum == 0 {
        return Ok(Vec::new()); // never committed
    }
    if sum != checksum(&n.to_le_bytes()) {
        return Err(format!("the commit record (count {n}) fails its checksum"));
    }
    (0..n)
        .map(|i| {
            let mut head = [0u8; 12];
            image.read(ENTRIES + i * SLOT, &mut head);
            let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let mut payload = vec![0u8; len.min(MAX_PAYLOAD)];
            image.read(ENTRIES + i * SLOT + 12, &mut payload);
            let want = u64::from_le_bytes(head[4..12].try_into().unwrap_or_default());
            if len > MAX_PAYLOAD || checksum(&payload) != want {
                return Err(format!("entry {i} is committed (count {n}) but does not check out"));
            }
            Ok(payload)
        })
        .collect()
}

/// The run the test explores: eight commits of two entries each. Returns
/// the recorded device and, per commit, the entries acknowledged once it
/// returned.
fn workload(commit_first: bool) -> (Recorder, Vec<Vec<Vec<u8>>>) {
    let mut log = AppendLog::new(Recorder::new(1 << 20).unwrap(), commit_first);
    let mut acked = Vec::new();
    let mut all: Vec<Vec<u8>> = Vec::new();
    for batch in 0..8u8 {
        let entries: Vec<Vec<u8>> = (0..2u8).map(|k| format!("entry {batch}.{k}").into_bytes()).collect();
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        assert!(log.append_and_commit(&refs));
        all.extend(entries);
        acked.push(all.clone());
    }
    (log.store, acked)
}

/// The promise: recovery succeeds, gives a prefix of what was appended,
/// and holds at least what every acknowledged commit returned.
fn check(
    acked: &[Vec<Vec<u8>>],
    commit_first: bool,
) -> impl Fn(&dyn ImageReader, &CrashContext) -> Result<(), String> + '_ {
    // Flushes per commit: the barrier and the commit's own.
    let per_commit = if commit_first { 1 } else { 2 };
    move |image, ctx| {
        let got = recover(image)?;
        let everything = acked.last().map(Vec::as_slice).unwrap_or_default();
        if !everything.starts_with(&got) {
            return Err(format!("recovered {} entries that were never appended in that order", got.len()));
        }
        let commits_returned = ctx.point.acked_flushes / per_commit;
        let promised = commits_returned.checked_sub(1).map(|c| acked[c].len()).unwrap_or(0);
        if got.len() < promised {
            return Err(format!("{promised} entries were acknowledged but only {} recovered", got.len()));
        }
        Ok(())
    }
}

#[test]
fn the_append_log_recovers_from_every_crash_state() {
    let (device, acked) = workload(false);
    let history = device.history();
    let report = explore_all(&history, check(&acked, false));
    assert_eq!(report.next_point, None, "every crash point explored");
    assert_eq!(report.points_total, history.points().len());
    assert!(report.points_total >= 12, "a crash point after each store and flush: {}", report.points_total);
    assert!(report.checked >= 50, "only {} crash states", report.checked);
    assert_eq!(report.violations_total, 0, "{:?}", report.violations.first());
}

#[test]
fn the_append_log_with_its_commit_ordered_wrongly_is_caught_and_shrunk() {
    let (device, acked) = workload(true);
    let history = device.history();
    let report = explore_all(&history, check(&acked, true));
    assert!(report.violations_total > 0, "the negative control must fail");
    let cx = report.counterexample.expect("the first violation is shrunk");
    // The commit record persisted without an entry: one page is enough.
    assert!(cx.minimal.persisted.len() <= cx.from.persisted.len());
    assert_eq!(cx.minimal.persisted.len(), 1, "{:?}", cx.minimal);
    assert_eq!(cx.minimal.persisted[0].page, 0, "the commit record's page");
    assert!(cx.minimal.message.contains("does not check out"), "{}", cx.minimal.message);
}
