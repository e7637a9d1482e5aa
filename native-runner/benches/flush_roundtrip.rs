//! Flush round trip through the virtio-pmem device against a raw
//! `fdatasync`, in the same run, on the same file.
//!
//! - `virtio-pmem/N`: the guest stores one whole page to each of N pages of
//!   the DAX window (a [`FileBackend`]: the file mapped `MAP_SHARED` through
//!   vm-memory) from a buffer it shares with the machine
//!   ([`Machine::guest_write_shared`]: it hands over one reference per
//!   store, taken before the round as the raw side fills its buffer before
//!   the round), then an application flush: the
//!   driver puts a request on the split virtqueue in guest memory and
//!   notifies the device, the device pops and parses the chain, the host
//!   backend calls `fdatasync(2)`, the device writes the status and the
//!   used-ring entry, the driver takes the interrupt and returns 0 to the
//!   application.
//! - `raw-fdatasync/N`: the same stores to a second `MAP_SHARED` mapping of
//!   the same file, then `fdatasync(2)` — the cost no device can avoid.
//!
//! The two are measured interleaved (device, raw, raw, device, …), so both
//! see the same disk and the same neighbours on a shared machine; each
//! benchmark reports its own side's time.
//!
//! - `model-only/N`: the same guest stores and flush on the page-cache
//!   model alone (no file, no system call): the cost of the simulated
//!   device, driver, queue and event log, which explains the difference.
//!
//! The machines keep the tail of their event log that `pmemlab soak` keeps
//! ([`LogRetention::Recent`]`(`[`LOG_TAIL`]`)`), so memory stays flat over
//! the run; such a log keeps no stored bytes. On the `virtio-pmem` side the
//! durability model keeps the guest's shared buffer as each page's new
//! version: no copy at all. Two more device sides show the other ways in:
//!
//! - `virtio-pmem-borrowed/N`: the same stores of borrowed bytes
//!   ([`Machine::guest_write`], as `pmemlab soak` stores its records): the
//!   model records each store without its bytes and reads the pages'
//!   content from the file when the flush completes (one copy per page per
//!   flush, however many stores);
//! - `virtio-pmem-full-log/N`: borrowed bytes and the whole log kept (every
//!   stored byte, shared with the model: one copy per store), a fresh
//!   machine every few thousand events.
//!
//! The ratio of the first two is the device's overhead; it is written into
//! `docs/native.md` and `docs/benchmarks.md`. After each device side the bench also prints the
//! *paired* ratio: total device time over total raw time across every
//! interleaved pair that side ran (warm-up included), which the disk's
//! drift between criterion's samples does not move. The file lives in cargo's target tmp dir (a disk file
//! system here; on tmpfs `fdatasync` would cost nothing and the ratio would
//! mean nothing, so the bench says so).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pmem_core::event::LogRetention;
use pmem_core::host::page_pool;
use pmem_core::memory::PAGE_SIZE;
use pmem_core::sim::{DeviceSpec, Machine, SimConfig};
use pmem_core::workload::flush_and_wait;
use pmemlab::backend::{FileBackend, FileBackendOptions, SyncTiming};
use pmemlab::fs::FsKind;
use pmemlab::soak::LOG_TAIL;
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// [`PAGE_SIZE`] as a buffer length.
const PAGE: usize = PAGE_SIZE as usize;
const SIZE: u64 = 4 << 20;

/// A second, raw `MAP_SHARED` mapping of the backing file.
struct RawMap {
    ptr: *mut u8,
    len: usize,
    file: std::fs::File,
}

impl RawMap {
    fn new(path: &std::path::Path) -> RawMap {
        let file = OpenOptions::new().read(true).write(true).open(path).expect("open the bench file");
        let len = SIZE as usize;
        // SAFETY: a fresh shared mapping of `len` bytes of an open file of
        // at least that size; nothing else is mapped at the address the
        // kernel picks. The result is checked against MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
        RawMap { ptr: ptr.cast(), len, file }
    }

    fn store(&mut self, page: usize, data: &[u8]) {
        assert!((page + 1) * PAGE <= self.len && data.len() <= PAGE);
        // SAFETY: the destination lies inside the live mapping (checked
        // above), which nothing else in this process accesses through a
        // Rust reference; `data` is a distinct heap buffer.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(page * PAGE), data.len()) }
    }
}

impl Drop for RawMap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `new`, which is not
        // used afterwards.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// How the device side's guest hands its bytes to the machine.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// A shared buffer ([`Machine::guest_write_shared`]), the log's tail.
    Shared,
    /// Borrowed bytes ([`Machine::guest_write`]), the log's tail.
    Borrowed,
    /// Borrowed bytes, the whole log.
    FullLog,
}

/// The two sides of the comparison, on the same file.
struct Pair {
    opts: FileBackendOptions,
    side: Side,
    machine: Machine,
    raw: RawMap,
    data: Vec<u8>,
    /// `data` in a buffer shared with the machine (a new one each round).
    shared: Arc<[u8]>,
    round: u8,
    /// Every interleaved pair measured since the last [`Pair::take_paired`]:
    /// (device total, raw total, pairs).
    paired: (Duration, Duration, u64),
}

impl Pair {
    fn machine(opts: &FileBackendOptions, log: LogRetention) -> Machine {
        let backend = FileBackend::open(opts).expect("open the backing file");
        let mut m = Machine::new(SimConfig { seed: 1, log, ..SimConfig::default() });
        m.add_device_with_backend(DeviceSpec::new("nv1", SIZE), Box::new(backend)).expect("plug the device");
        m
    }

    fn log(side: Side) -> LogRetention {
        match side {
            Side::Shared | Side::Borrowed => LogRetention::Recent(LOG_TAIL),
            Side::FullLog => LogRetention::All,
        }
    }

    /// Switches the device side to `side`, on a fresh machine.
    fn set_side(&mut self, side: Side) {
        self.side = side;
        self.machine = Pair::machine(&self.opts, Pair::log(side));
    }

    fn fill(&mut self) {
        self.round = self.round.wrapping_add(1);
        self.data.fill(self.round);
        if self.side == Side::Shared {
            self.shared = page_pool::page_from(&self.data);
        }
    }

    /// One flush round trip through the device.
    fn device(&mut self, n: usize) -> Duration {
        // A whole event log keeps every stored byte: a fresh machine (same
        // file) every few thousand events keeps memory flat; not timed.
        if self.side == Side::FullLog && self.machine.log().len() > 4_000 {
            self.machine = Pair::machine(&self.opts, Pair::log(self.side));
        }
        self.fill();
        // The guest's references to its buffer, one per store, taken before
        // the round as the raw side fills its buffer before the round.
        let handed: Vec<Arc<[u8]>> =
            if self.side == Side::Shared { (0..n).map(|_| Arc::clone(&self.shared)).collect() } else { Vec::new() };
        let start = Instant::now();
        if self.side == Side::Shared {
            for (p, buf) in handed.into_iter().enumerate() {
                self.machine.guest_write_shared("nv1", (p * PAGE) as u64, buf).expect("store");
            }
        } else {
            for p in 0..n {
                self.machine.guest_write("nv1", (p * PAGE) as u64, &self.data).expect("store");
            }
        }
        let r = flush_and_wait(&mut self.machine, "nv1").expect("flush");
        let t = start.elapsed();
        assert_eq!(r, pmem_core::guest::FlushResult::Ok);
        t
    }

    /// The same stores to a raw mapping, then fdatasync.
    fn raw(&mut self, n: usize) -> Duration {
        self.fill();
        let start = Instant::now();
        for p in 0..n {
            self.raw.store(p, &self.data);
        }
        self.raw.file.sync_data().expect("fdatasync");
        start.elapsed()
    }

    /// `iters` pairs, interleaved so that both sides see the same disk and
    /// the same neighbours; returns (device, raw) totals.
    fn interleaved(&mut self, n: usize, iters: u64) -> (Duration, Duration) {
        let (mut dev, mut raw) = (Duration::ZERO, Duration::ZERO);
        for i in 0..iters {
            if i % 2 == 0 {
                dev += self.device(n);
                raw += self.raw(n);
            } else {
                raw += self.raw(n);
                dev += self.device(n);
            }
        }
        self.paired.0 += dev;
        self.paired.1 += raw;
        self.paired.2 += iters;
        (dev, raw)
    }

    /// Prints the paired ratio of the pairs since the last call (and starts
    /// new totals).
    fn report_paired(&mut self, name: &str, n: usize) {
        let (dev, raw, pairs) = std::mem::take(&mut self.paired);
        if pairs == 0 {
            return; // filtered out
        }
        eprintln!(
            "flush_roundtrip/{name}/{n}: paired ratio {:.3} (device {:.1} µs, raw {:.1} µs per round, {pairs} pairs)",
            dev.as_secs_f64() / raw.as_secs_f64(),
            dev.as_secs_f64() * 1e6 / pairs as f64,
            raw.as_secs_f64() * 1e6 / pairs as f64,
        );
    }
}

fn model_machine() -> Machine {
    let mut m = Machine::new(SimConfig { seed: 1, log: LogRetention::Recent(LOG_TAIL), ..SimConfig::default() });
    m.add_device(DeviceSpec::new("nv1", SIZE)).expect("plug the device");
    m
}

fn bench(c: &mut Criterion) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("flush-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let path = dir.join("pmem.img");
    let _ = std::fs::remove_file(&path);
    let opts = FileBackendOptions::new(&path, SIZE).timing(SyncTiming::Fixed(1_000));
    let machine = Pair::machine(&opts, Pair::log(Side::Shared));
    let fs = FsKind::of_path(&path).ok();
    if fs.is_some_and(|f| f.is_memory_only()) {
        eprintln!(
            "flush_roundtrip: {} is on {fs:?}: fdatasync costs nothing there; the ratio is meaningless",
            path.display()
        );
    }
    let raw = RawMap::new(&path);
    let mut pair = Pair {
        opts,
        side: Side::Shared,
        machine,
        raw,
        data: vec![0u8; PAGE],
        shared: page_pool::page_from(&[0u8; PAGE]),
        round: 0,
        paired: Default::default(),
    };

    for n in [1usize, 16, 256] {
        let mut g = c.benchmark_group("flush_roundtrip");
        g.throughput(Throughput::Elements(n as u64));
        g.sample_size(30).measurement_time(Duration::from_secs(8));
        // Each side is measured while the other runs in between (see
        // `Pair::interleaved`); criterion reports each side's own time.
        pair.set_side(Side::Shared);
        g.bench_with_input(BenchmarkId::new("virtio-pmem", n), &n, |b, &n| {
            b.iter_custom(|iters| pair.interleaved(n, iters).0)
        });
        g.bench_with_input(BenchmarkId::new("raw-fdatasync", n), &n, |b, &n| {
            b.iter_custom(|iters| pair.interleaved(n, iters).1)
        });
        // The ratio of the two sides over the same pairs (criterion's
        // warm-up and samples of both benchmarks above): paired, so the
        // disk's drift between samples cancels.
        pair.report_paired("virtio-pmem", n);
        for (side, name) in [(Side::Borrowed, "virtio-pmem-borrowed"), (Side::FullLog, "virtio-pmem-full-log")] {
            pair.set_side(side);
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, &n| {
                b.iter_custom(|iters| pair.interleaved(n, iters).0)
            });
            pair.report_paired(name, n);
        }
        g.bench_with_input(BenchmarkId::new("model-only", n), &n, |b, &n| {
            let mut sim = model_machine();
            let mut data = vec![0u8; PAGE];
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    if sim.log().len() > 4_000 {
                        sim = model_machine();
                    }
                    data.fill(i as u8);
                    let start = Instant::now();
                    for p in 0..n {
                        sim.guest_write("nv1", (p * PAGE) as u64, &data).expect("store");
                    }
                    let r = flush_and_wait(&mut sim, "nv1").expect("flush");
                    total += start.elapsed();
                    assert_eq!(r, pmem_core::guest::FlushResult::Ok);
                }
                total
            })
        });
        g.finish();
    }
    drop(pair);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
