//! Differential test: pmemlab's split ring and guest memory against
//! rust-vmm's `virtio-queue` and `vm-memory`.
//!
//! Each case is a random sequence of driver actions — raw descriptors with
//! biased addresses, lengths, flags and `next` links, avail-ring entries,
//! `avail.idx` jumps, request-type words, raw byte writes, well-formed
//! flushes, injected host-sync failures and device runs — applied to two
//! worlds: [`OursWorld`] (`GuestMemoryMap` + `SplitQueue`) and
//! [`TheirsWorld`] (`VmmMemory` + `VmmQueue`). After every device run the
//! worlds must agree on all guest-memory bytes, the used ring, `used.idx`,
//! the device's indices, whether the device needs a reset, the outcome of
//! every driver memory access and the device's events (chain faults compared
//! as accepted/rejected only).
//!
//! A failure prints the minimal failing case and the seed; rerun with
//! `PROPTEST_RNG_SEED=<seed>` to reproduce it. No regression file is written.

use pmem_core::memory::{GuestAddress, GuestMemory, GuestMemoryMap};
use pmem_core::queue::{
    check_buffers, walk_chain, ChainError, Descriptor, DeviceQueue, PoppedChain, QueueError, SplitQueue,
    VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE,
};
use pmem_tests::action::{flush_slot, DriverAction, DATA_START, MEM_SIZE};
use pmem_tests::snapshot::compare;
use pmem_tests::world::{layout, run_differential, OursWorld, TheirsWorld, World};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestError, TestRunner};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// One generated case.
#[derive(Clone, Debug)]
struct Case {
    queue_size: u16,
    queue_base: u64,
    actions: Vec<DriverAction>,
}

/// How far before the end of memory the "near the end" addresses are.
const NEAR_END: [u64; 7] = [32, 16, 8, 4, 2, 1, 0];

/// A guest address: mostly in the buffer area (often the first few bytes of
/// it, so buffers and tables overlap), sometimes anywhere in memory (rings
/// included), near its end, or outside it.
fn addr() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => (0u64..64).prop_map(|k| DATA_START + 4 * k),
        2 => (0u64..4).prop_map(|k| DATA_START + 16 * k),
        3 => DATA_START..MEM_SIZE,
        2 => 0..MEM_SIZE,
        1 => prop::sample::select(NEAR_END.map(|back| MEM_SIZE - back).to_vec()),
        1 => prop_oneof![MEM_SIZE..MEM_SIZE + 0x1000, Just(1u64 << 40), (u64::MAX - 64)..=u64::MAX],
    ]
}

/// A buffer length: mostly small and round, sometimes huge.
fn len() -> impl Strategy<Value = u32> {
    prop_oneof![
        6 => prop::sample::select(vec![0u32, 2, 4, 8, 16, 32]),
        2 => 0u32..=64,
        1 => prop::sample::select(vec![
            0x1000u32,
            MEM_SIZE as u32,
            16 * 65_536,
            0x8000_0000,
            u32::MAX - 15,
            u32::MAX,
        ]),
    ]
}

/// A request type word: mostly 0 (flush), sometimes unknown.
fn request_type() -> impl Strategy<Value = u32> {
    prop_oneof![14 => Just(0u32), 1 => prop::sample::select(vec![1u32, 2, u32::MAX]), 1 => any::<u32>()]
}

/// Lengths of a flush's two buffers: mostly the well-formed 4.
fn flush_len() -> impl Strategy<Value = u32> {
    prop_oneof![
        12 => Just(4u32),
        2 => prop::sample::select(vec![0u32, 2, 3, 8]),
        1 => prop::sample::select(vec![0x1_0000u32, 0x8000_0000, u32::MAX]),
    ]
}

/// Descriptor flags: any mix of NEXT, WRITE and INDIRECT, sometimes junk.
fn flags() -> impl Strategy<Value = u16> {
    let n = VIRTQ_DESC_F_NEXT;
    let w = VIRTQ_DESC_F_WRITE;
    let i = VIRTQ_DESC_F_INDIRECT;
    prop_oneof![
        8 => prop::sample::select(vec![0, n, w, n | w, i, i | n, i | w, i | n | w]),
        1 => any::<u16>(),
    ]
}

/// A descriptor index: mostly in range, sometimes just or far out of it.
fn index(size: u16) -> impl Strategy<Value = u16> {
    prop_oneof![
        8 => 0..size,
        1 => prop_oneof![Just(size), size..=u16::MAX],
    ]
}

/// A raw descriptor with biased fields, `next` relative to a table of `size`.
fn descriptor(size: u16) -> impl Strategy<Value = Descriptor> {
    (addr(), len(), flags(), index(size)).prop_map(|(a, l, f, n)| Descriptor::new(a, l, f, n))
}

/// An entry of an indirect table: like [`descriptor`], but rarely itself
/// indirect (which is always an error there).
fn table_entry(entries: u16) -> impl Strategy<Value = Descriptor> {
    let n = VIRTQ_DESC_F_NEXT;
    let w = VIRTQ_DESC_F_WRITE;
    let entry_flags = prop_oneof![8 => prop::sample::select(vec![0, n, w, n | w]), 1 => flags()];
    (addr(), len(), entry_flags, index(entries)).prop_map(|(a, l, f, n)| Descriptor::new(a, l, f, n))
}

/// The entries of an indirect table: arbitrary descriptors whose `next`
/// links mostly stay inside the table.
fn indirect_entries() -> impl Strategy<Value = Vec<Descriptor>> {
    (1u16..=4).prop_flat_map(|n| prop::collection::vec(table_entry(n), usize::from(n)))
}

/// One driver action for a queue of `size`.
fn action(size: u16) -> impl Strategy<Value = DriverAction> {
    prop_oneof![
        20 => (0..size, descriptor(size)).prop_map(|(index, desc)| DriverAction::WriteDescriptor { index, desc }),
        6 => (prop_oneof![3 => (0u64..4).prop_map(|k| DATA_START + 16 * k), 1 => addr()], descriptor(size))
            .prop_map(|(addr, desc)| DriverAction::WriteDescriptorAt { addr, desc }),
        10 => (any::<u16>(), index(size)).prop_map(|(slot, head)| DriverAction::WriteAvailEntry { slot, head }),
        2 => prop_oneof![Just(0u16), Just(1), any::<u16>()].prop_map(|flags| DriverAction::WriteAvailFlags { flags }),
        10 => prop_oneof![
            8 => 0u16..=2,
            1 => prop::sample::select(vec![size, size.wrapping_add(1), 0x8000, 0xFFFF]),
        ]
        .prop_map(|by| DriverAction::BumpAvailIdx { by }),
        8 => (
            prop_oneof![3 => addr(), 1 => (0..size).prop_map(flush_slot)],
            request_type(),
        )
            .prop_map(|(addr, value)| DriverAction::WriteWord { addr, value }),
        4 => (prop_oneof![3 => 0..MEM_SIZE, 1 => addr()], prop::collection::vec(any::<u8>(), 0..8))
            .prop_map(|(addr, bytes)| DriverAction::WriteBytes { addr, bytes }),
        20 => (0..size, any::<bool>(), request_type(), flush_len(), flush_len()).prop_map(
            |(head, indirect, request_type, req_len, status_len)| DriverAction::Flush {
                head,
                indirect,
                request_type,
                req_len,
                status_len,
            }
        ),
        6 => (0..size, prop_oneof![3 => (0u64..8).prop_map(|k| DATA_START + 16 * k), 1 => addr()], indirect_entries())
            .prop_map(|(head, table, entries)| DriverAction::PublishIndirect { head, table, entries }),
        3 => (0u8..3).prop_map(|n| DriverAction::FailSyncs { n }),
        18 => Just(DriverAction::DeviceRun),
    ]
}

/// A queue size (a power of two up to 256), a queue base and up to 47
/// actions.
fn case() -> impl Strategy<Value = Case> {
    (0u32..=8, prop::sample::select(vec![0u64, 0x40, 0x2000]))
        .prop_flat_map(|(shift, queue_base)| {
            let queue_size = 1u16 << shift;
            (Just(queue_size), Just(queue_base), prop::collection::vec(action(queue_size), 1..48))
        })
        .prop_map(|(queue_size, queue_base, actions)| Case { queue_size, queue_base, actions })
}

fn run_case(case: &Case) -> Result<Vec<String>, String> {
    let mut ours = OursWorld::ours(case.queue_size, case.queue_base)?;
    let mut theirs = TheirsWorld::theirs(case.queue_size, case.queue_base)?;
    run_differential(&mut ours, &mut theirs, &case.actions)
}

/// The seed: `PROPTEST_RNG_SEED` if set, a fresh one otherwise (printed on
/// failure either way).
fn seed() -> u64 {
    match Config::default().rng_seed {
        RngSeed::Fixed(s) => s,
        RngSeed::Random => {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(0x706d_656d);
            h.finish()
        }
    }
}

fn runner(cases: u32, seed: u64) -> TestRunner {
    TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        // XorShift rather than ChaCha: same reproducibility from the seed,
        // and ChaCha dominated the run time in debug builds.
        rng_algorithm: RngAlgorithm::XorShift,
        failure_persistence: None,
        max_shrink_iters: 20_000,
        ..Config::default()
    })
}

#[test]
fn split_ring_matches_virtio_queue_on_random_driver_actions() {
    let seed = seed();
    let mut runner = runner(10_000, seed);
    let coverage: RefCell<BTreeMap<String, u64>> = RefCell::new(BTreeMap::new());
    let result = runner.run(&case(), |case| {
        let labels = run_case(&case).map_err(TestCaseError::fail)?;
        let mut cov = coverage.borrow_mut();
        for l in labels {
            *cov.entry(l).or_default() += 1;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("differential test failed with seed {seed} (rerun with PROPTEST_RNG_SEED={seed}):\n{e}");
    }
    let coverage = coverage.into_inner();
    eprintln!("differential coverage over 10000 cases (seed {seed}):");
    for (label, n) in &coverage {
        eprintln!("  {n:>7}  {label}");
    }
    // The generator must reach every path the comparison is meant to cover;
    // otherwise "no divergence" would mean little.
    let must_see = [
        "completed: status 0",
        "completed: failure status",
        "completed: no status",
        "host sync failed",
        "head not returned",
        "device needs reset",
        "interrupt suppressed",
        "chain rejected: IndexOutOfRange",
        "chain rejected: DescriptorUnreadable",
        "chain rejected: ChainTooLong",
        "chain rejected: NestedIndirect",
        "chain rejected: IndirectLengthNotMultiple",
        "chain rejected: EmptyIndirectTable",
        "chain rejected: IndirectTableTooLarge",
        "chain rejected: LengthOverflow",
        "chain rejected: ReadableAfterWritable",
        "chain rejected: BufferOutsideMemory",
        "request rejected: ChainTooShort",
        "request rejected: HeadIsWriteOnly",
        "request rejected: StatusNotWritable",
        "request rejected: ShortRequest",
        "request rejected: ShortStatus",
        "request rejected: UnknownType",
    ];
    let missing: Vec<&str> = must_see.iter().copied().filter(|l| coverage.get(*l).copied().unwrap_or(0) < 20).collect();
    assert!(missing.is_empty(), "outcomes seen fewer than 20 times in 10000 cases (seed {seed}): {missing:?}");
}

/// Regression: vm-memory's `write_slice` stored the part of a write that fit
/// before failing, so a descriptor written 8 bytes before the end of memory
/// left 8 bytes behind in the reference world and none in ours. `VmmMemory`
/// now checks the whole range first (all-or-nothing, as `GuestMemory`
/// promises).
#[test]
fn a_write_past_the_end_of_memory_changes_nothing_in_either_world() {
    let case = Case {
        queue_size: 1,
        queue_base: 0,
        actions: vec![DriverAction::WriteDescriptorAt {
            addr: MEM_SIZE - 8,
            desc: Descriptor::new(DATA_START, 0, 0, 0),
        }],
    };
    run_case(&case).unwrap();
    let theirs = TheirsWorld::theirs(1, 0).unwrap();
    let mut ours = OursWorld::ours(1, 0).unwrap();
    ours.apply(&case.actions[0]);
    assert_eq!(ours.accesses, vec![false]);
    let mut tail = [0xAAu8; 8];
    theirs.mem.read(GuestAddress(MEM_SIZE - 8), &mut tail).unwrap();
    assert_eq!(tail, [0; 8]);
}

/// Negative control: the comparison reports a world whose memory differs in
/// one byte, and names where.
#[test]
fn one_flipped_memory_byte_is_reported() {
    let mut ours = OursWorld::ours(4, 0).unwrap();
    let mut theirs = TheirsWorld::theirs(4, 0).unwrap();
    let flush = DriverAction::Flush { head: 0, indirect: false, request_type: 0, req_len: 4, status_len: 4 };
    let actions = [flush, DriverAction::DeviceRun];
    run_differential(&mut ours, &mut theirs, &actions).unwrap();
    let status_addr = flush_slot(0) + 4;
    assert_eq!(ours.mem.read_le32(GuestAddress(status_addr)).unwrap(), 0, "the flush succeeded");
    compare(&ours.snapshot(), &theirs.snapshot()).unwrap();

    ours.mem.write(GuestAddress(status_addr), &[1]).unwrap();
    let report = compare(&ours.snapshot(), &theirs.snapshot()).unwrap_err();
    assert!(report.contains("guest memory: 1 bytes differ"), "{report}");
    assert!(report.contains(&format!("first at offset {status_addr:#x}")), "{report}");

    // A byte of the used ring is reported as such.
    let used = layout(4, 0).unwrap().used_entry_addr(0);
    theirs.mem.write(GuestAddress(used.0 + 4), &[9]).unwrap();
    let report = compare(&ours.snapshot(), &theirs.snapshot()).unwrap_err();
    assert!(report.contains("used ring: 1 bytes differ"), "{report}");
}

/// A deliberately broken queue for the negative control: our split ring,
/// but its buffer check forgets the spec's rule that device-readable
/// buffers come before device-writable ones.
struct NoOrderCheckQueue(SplitQueue);

impl<M: GuestMemory> DeviceQueue<M> for NoOrderCheckQueue {
    fn size(&self) -> u16 {
        self.0.layout().size
    }

    fn pop(&mut self, mem: &M) -> Result<Option<PoppedChain>, QueueError> {
        let Some(chain) = DeviceQueue::<M>::pop(&mut self.0, mem)? else {
            return Ok(None);
        };
        let l = *self.0.layout();
        let buffers = walk_chain(mem, l.desc_table, l.size, chain.head, true).and_then(|b| {
            for (position, d) in b.iter().enumerate() {
                // Only the memory check of `check_buffers`, not the order.
                check_buffers(mem, std::slice::from_ref(d)).map_err(|_| ChainError::BufferOutsideMemory {
                    position,
                    addr: d.addr,
                    len: d.len,
                })?;
            }
            Ok(b)
        });
        Ok(Some(PoppedChain { head: chain.head, buffers }))
    }

    fn add_used(&mut self, mem: &mut M, head: u16, len: u32) -> Result<(), QueueError> {
        self.0.add_used(mem, head, len)
    }

    fn needs_interrupt(&mut self, mem: &M) -> Result<bool, QueueError> {
        self.0.needs_interrupt(mem)
    }

    fn next_avail(&self) -> u16 {
        self.0.next_avail()
    }

    fn next_used(&self) -> u16 {
        self.0.next_used()
    }
}

/// Negative control: the whole pipeline — generator, worlds, comparison —
/// finds a subtle walker bug (a missing buffer-order check) within a small
/// fraction of the cases the real test runs, and shrinks it to a chain with
/// a readable buffer after a writable one.
#[test]
fn a_queue_without_the_buffer_order_check_is_caught() {
    let seed = seed();
    let mut runner = runner(2_000, seed);
    let result = runner.run(&case(), |case| {
        let l = layout(case.queue_size, case.queue_base).map_err(TestCaseError::fail)?;
        let mem = GuestMemoryMap::new(GuestAddress(0), MEM_SIZE);
        let queue = SplitQueue::new(&mem, l, true).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut mutant = World::from_parts(mem, NoOrderCheckQueue(queue), l);
        let mut theirs = TheirsWorld::theirs(case.queue_size, case.queue_base).map_err(TestCaseError::fail)?;
        run_differential(&mut mutant, &mut theirs, &case.actions).map_err(TestCaseError::fail)?;
        Ok(())
    });
    match result {
        Err(TestError::Fail(report, minimal)) => {
            let report = report.to_string();
            eprintln!("the broken queue was caught (seed {seed}):\n{report}\nminimal case: {minimal:#?}");
            assert!(report.contains("device event #"), "seed {seed}: {report}");
            assert!(report.contains("RequestRejected"), "seed {seed}: {report}");
            assert!(report.contains("ChainRejected"), "seed {seed}: {report}");
            assert!(minimal.actions.len() <= 6, "seed {seed}: shrinking left {minimal:#?}");
        }
        other => panic!("seed {seed}: the broken queue was not caught in 2000 cases: {other:?}"),
    }
}
