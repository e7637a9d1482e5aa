//! The `parse` target: arbitrary descriptor lists to
//! [`pmem_core::device::request::parse`], and arbitrary descriptor tables to
//! [`pmem_core::queue::walk_chain`] and [`pmem_core::queue::check_buffers`],
//! over arbitrary memory. Each result must equal a reference written
//! directly from the spec's rules (a different formulation of the same
//! rules), and the accepted outputs must have the properties the device
//! relies on.

use crate::input::{build_memory, place, AddrIn, DescIn, PmemIn};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use pmem_core::device::request::{parse, Request, RequestError, VIRTIO_PMEM_REQ_TYPE_FLUSH};
use pmem_core::device::RequestKind;
use pmem_core::memory::{GuestAddress, GuestMemory};
use pmem_core::pmem_window::MachineMemory;
use pmem_core::queue::{check_buffers, walk_chain, ChainError, Descriptor, DESCRIPTOR_SIZE};

/// A queue size for `walk_chain`, which does not validate it.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum QueueSizeIn {
    /// `1 << (n % 16)`.
    Pow(u8),
    /// Anything, 0 and non-powers of two included.
    Raw(u16),
}

/// The whole input.
#[derive(Arbitrary, Debug, Clone)]
pub struct ParseInput {
    /// The optional pmem window.
    pub pmem: Option<PmemIn>,
    /// Raw bytes in memory.
    pub bytes: Vec<(AddrIn, Vec<u8>)>,
    /// `le32` words in memory (request types).
    pub words: Vec<(AddrIn, u32)>,
    /// A descriptor list given straight to `parse`.
    pub buffers: Vec<DescIn>,
    /// Where the descriptor table is.
    pub table_at: AddrIn,
    /// Table entries: `(index, descriptor)`.
    pub table: Vec<(u16, DescIn)>,
    /// Indirect tables: consecutive descriptors at an address.
    pub indirect_tables: Vec<(AddrIn, Vec<DescIn>)>,
    /// Table size given to `walk_chain`.
    pub queue_size: QueueSizeIn,
    /// Head to walk from.
    pub head: u16,
    /// Whether indirect descriptors are allowed.
    pub indirect: bool,
}

/// Runs one input. Panics when the code and the reference disagree.
pub fn run(input: &ParseInput) {
    let (mut mem, space) = build_memory(input.pmem);
    for (at, data) in input.bytes.iter().take(32) {
        place(&mut mem, &space, at.resolve(&space), &data[..data.len().min(256)]);
    }
    for (at, w) in input.words.iter().take(32) {
        place(&mut mem, &space, at.resolve(&space), &w.to_le_bytes());
    }
    let table = input.table_at.resolve(&space) & !15;
    for (i, d) in input.table.iter().take(64) {
        let at = table.wrapping_add(DESCRIPTOR_SIZE * u64::from(*i));
        place(&mut mem, &space, at, &d.resolve(&space).to_bytes());
    }
    for (at, descs) in input.indirect_tables.iter().take(8) {
        let base = at.resolve(&space);
        for (i, d) in descs.iter().take(32).enumerate() {
            place(&mut mem, &space, base.wrapping_add(DESCRIPTOR_SIZE * i as u64), &d.resolve(&space).to_bytes());
        }
    }

    // 1. parse on an arbitrary descriptor list.
    let bufs: Vec<Descriptor> = input.buffers.iter().take(16).map(|d| d.resolve(&space)).collect();
    let _ = check_parse(&mem, &bufs);

    // 2. walk_chain on an arbitrary table, then check_buffers and parse on
    //    what it accepts, as the device does.
    let qs = match input.queue_size {
        QueueSizeIn::Pow(n) => 1u16 << (n % 16),
        QueueSizeIn::Raw(n) => n,
    };
    let got = walk_chain(&mem, GuestAddress(table), qs, input.head, input.indirect);
    let want = ref_walk(&mem, table, qs, input.head, input.indirect);
    if got != want {
        panic!("walk_chain disagrees with the reference\n got: {got:?}\nwant: {want:?}");
    }
    let Ok(chain) = got else { return };
    check_walked(&chain, qs);
    let got = check_buffers(&mem, &chain);
    let want = ref_check_buffers(&mem, &chain);
    if got != want {
        panic!("check_buffers disagrees with the reference\n got: {got:?}\nwant: {want:?}\nchain: {chain:?}");
    }
    if got.is_ok() {
        let r = check_parse(&mem, &chain);
        // Buffers that passed check_buffers are readable: parse cannot fail
        // on memory.
        if let Err(RequestError::Memory(e)) = r {
            panic!("parse failed on memory ({e}) for a chain check_buffers accepted: {chain:?}");
        }
    }
}

/// Runs `parse`, compares it with the reference, checks what it accepts.
fn check_parse(mem: &MachineMemory, bufs: &[Descriptor]) -> Result<Request, RequestError> {
    let got = parse(mem, bufs);
    let want = ref_parse(mem, bufs);
    let same = match (&got, &want) {
        // The memory error's details are the memory's business.
        (Err(RequestError::Memory(_)), Err(RequestError::Memory(_))) => true,
        (a, b) => a == b,
    };
    if !same {
        panic!("parse disagrees with the reference\n got: {got:?}\nwant: {want:?}\nbuffers: {bufs:?}");
    }
    if let Ok(req) = &got {
        let status_len: u64 = req.status.iter().map(|&(_, l)| u64::from(l)).sum();
        let writable: Vec<(u64, u32)> = bufs.iter().filter(|d| d.is_write_only()).map(|d| (d.addr, d.len)).collect();
        if req.kind != RequestKind::Flush || status_len < 4 || req.status != writable {
            panic!("parse accepted a request without a proper status: {req:?} from {bufs:?}");
        }
    }
    got
}

/// The spec's request rules, in the order the device documents them.
pub fn ref_parse(mem: &MachineMemory, bufs: &[Descriptor]) -> Result<Request, RequestError> {
    if bufs.is_empty() {
        return Err(RequestError::NoBuffers);
    }
    if bufs[0].is_write_only() {
        return Err(RequestError::HeadIsWriteOnly);
    }
    if bufs.len() == 1 {
        return Err(RequestError::ChainTooShort { descriptors: 1 });
    }
    // The chain is readable* writable+ ; anything else is an error.
    let n_readable = bufs.iter().take_while(|d| !d.is_write_only()).count();
    if n_readable == bufs.len() {
        return Err(RequestError::StatusNotWritable { descriptors: bufs.len() });
    }
    for (i, d) in bufs.iter().enumerate().skip(n_readable) {
        if !d.is_write_only() {
            return Err(RequestError::ReadableAfterWritable { position: i });
        }
    }
    let (readable, writable) = bufs.split_at(n_readable);
    let sum = |ds: &[Descriptor]| ds.iter().fold(0u64, |a, d| a + u64::from(d.len));
    if sum(readable) < 4 {
        return Err(RequestError::ShortRequest { len: sum(readable) });
    }
    if sum(writable) < 4 {
        return Err(RequestError::ShortStatus { len: sum(writable) });
    }
    // The request word: the first 4 bytes of the readable part. Each buffer
    // touched (until 4 bytes are gathered; empty ones included) must be one
    // valid guest range.
    let mut word = Vec::with_capacity(4);
    for d in readable {
        if word.len() == 4 {
            break;
        }
        let n = (4 - word.len()).min(d.len as usize);
        if !mem.check_range(GuestAddress(d.addr), n as u64) {
            let e = pmem_core::memory::MemoryError::OutOfRange { addr: d.addr, len: n as u64 };
            return Err(RequestError::Memory(e));
        }
        for i in 0..n as u64 {
            let mut b = [0u8; 1];
            mem.read(GuestAddress(d.addr + i), &mut b).expect("a byte of a checked range is readable");
            word.push(b[0]);
        }
    }
    let ty = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
    let status = writable.iter().map(|d| (d.addr, d.len)).collect();
    if ty == VIRTIO_PMEM_REQ_TYPE_FLUSH {
        Ok(Request { kind: RequestKind::Flush, status })
    } else {
        Err(RequestError::UnknownType { request_type: ty, status })
    }
}

fn read_desc(mem: &MachineMemory, table: u64, index: u16) -> Result<Descriptor, ChainError> {
    let addr = table.checked_add(16 * u64::from(index)).ok_or(ChainError::DescriptorUnreadable { addr: u64::MAX })?;
    let mut raw = [0u8; 16];
    mem.read(GuestAddress(addr), &mut raw).map_err(|_| ChainError::DescriptorUnreadable { addr })?;
    Ok(Descriptor::from_bytes(&raw))
}

/// The spec's chain rules (as rust-vmm's virtio-queue applies them; see
/// `core/src/queue/chain.rs`): follow `next` through a table of `size`
/// entries, at most `size` descriptors; one level of indirection whose table
/// replaces the rest of the chain.
pub fn ref_walk(
    mem: &MachineMemory,
    table: u64,
    size: u16,
    head: u16,
    indirect_ok: bool,
) -> Result<Vec<Descriptor>, ChainError> {
    let mut out: Vec<Descriptor> = Vec::new();
    let mut total = 0u64;
    // The direct part.
    let mut i = head;
    let direct_limit = u32::from(size);
    loop {
        if u32::from(i) >= direct_limit {
            return Err(ChainError::IndexOutOfRange { index: i, size: direct_limit, indirect: false });
        }
        let d = read_desc(mem, table, i)?;
        if d.is_indirect() {
            if !indirect_ok {
                return Err(ChainError::IndirectNotNegotiated { index: i });
            }
            return ref_walk_indirect(mem, d, out, total);
        }
        total += u64::from(d.len);
        if total > u64::from(u32::MAX) {
            return Err(ChainError::LengthOverflow);
        }
        out.push(d);
        if !d.has_next() {
            return Ok(out);
        }
        if out.len() as u32 == direct_limit {
            return Err(ChainError::ChainTooLong { limit: direct_limit });
        }
        i = d.next;
    }
}

fn ref_walk_indirect(
    mem: &MachineMemory,
    table_desc: Descriptor,
    mut out: Vec<Descriptor>,
    mut total: u64,
) -> Result<Vec<Descriptor>, ChainError> {
    if !table_desc.len.is_multiple_of(16) {
        return Err(ChainError::IndirectLengthNotMultiple { len: table_desc.len });
    }
    let entries = table_desc.len / 16;
    if entries == 0 {
        return Err(ChainError::EmptyIndirectTable);
    }
    if entries > 65535 {
        return Err(ChainError::IndirectTableTooLarge { entries });
    }
    let mut i: u16 = 0;
    let mut taken = 0u32;
    loop {
        if u32::from(i) >= entries {
            return Err(ChainError::IndexOutOfRange { index: i, size: entries, indirect: true });
        }
        let d = read_desc(mem, table_desc.addr, i)?;
        if d.is_indirect() {
            return Err(ChainError::NestedIndirect { index: i });
        }
        total += u64::from(d.len);
        if total > u64::from(u32::MAX) {
            return Err(ChainError::LengthOverflow);
        }
        out.push(d);
        taken += 1;
        if !d.has_next() {
            return Ok(out);
        }
        if taken == entries {
            return Err(ChainError::ChainTooLong { limit: entries });
        }
        i = d.next;
    }
}

/// Buffers: the first device-readable buffer after a writable one, and the
/// first buffer outside memory; the earlier position wins, the order rule
/// first at equal positions.
pub fn ref_check_buffers(mem: &MachineMemory, descs: &[Descriptor]) -> Result<(), ChainError> {
    let first_writable = descs.iter().position(|d| d.is_write_only());
    let order =
        first_writable.and_then(|w| descs.iter().enumerate().skip(w).find(|(_, d)| !d.is_write_only()).map(|(i, _)| i));
    let outside = descs.iter().position(|d| !mem.check_range(GuestAddress(d.addr), u64::from(d.len)));
    match (order, outside) {
        (Some(o), Some(x)) if x < o => Err(outside_error(descs, x)),
        (Some(o), _) => Err(ChainError::ReadableAfterWritable { position: o }),
        (None, Some(x)) => Err(outside_error(descs, x)),
        (None, None) => Ok(()),
    }
}

fn outside_error(descs: &[Descriptor], position: usize) -> ChainError {
    ChainError::BufferOutsideMemory { position, addr: descs[position].addr, len: descs[position].len }
}

/// What the device relies on in an accepted chain.
fn check_walked(chain: &[Descriptor], size: u16) {
    let Some((last, rest)) = chain.split_last() else { panic!("walk_chain accepted an empty chain") };
    let total: u64 = chain.iter().map(|d| u64::from(d.len)).sum();
    if last.has_next()
        || rest.iter().any(|d| !d.has_next())
        || chain.iter().any(|d| d.is_indirect())
        || total > u64::from(u32::MAX)
        || chain.len() > usize::from(size) + 65535
    {
        panic!("walk_chain accepted a malformed chain: {chain:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{LenIn, RAM_SIZE};
    use pmem_core::queue::{VIRTQ_DESC_F_INDIRECT as I, VIRTQ_DESC_F_NEXT as N, VIRTQ_DESC_F_WRITE as W};

    fn mem() -> MachineMemory {
        build_memory(None).0
    }

    #[test]
    fn reference_accepts_a_linux_flush() {
        let m = mem();
        let bufs = [Descriptor::new(0x100, 4, N, 1), Descriptor::new(0x104, 4, W, 0)];
        assert_eq!(ref_parse(&m, &bufs), parse(&m, &bufs));
        assert!(ref_parse(&m, &bufs).is_ok());
    }

    #[test]
    fn reference_walk_agrees_on_loops_and_indirect_tables() {
        let mut m = mem();
        m.write(GuestAddress(0x1000), &Descriptor::new(0x2000, 4, N, 1).to_bytes()).unwrap();
        m.write(GuestAddress(0x1010), &Descriptor::new(0x2000, 4, N, 0).to_bytes()).unwrap();
        assert_eq!(ref_walk(&m, 0x1000, 4, 0, true), Err(ChainError::ChainTooLong { limit: 4 }));
        m.write(GuestAddress(0x1020), &Descriptor::new(0x3000, 32, I, 0).to_bytes()).unwrap();
        m.write(GuestAddress(0x3000), &Descriptor::new(0x2000, 4, N, 1).to_bytes()).unwrap();
        m.write(GuestAddress(0x3010), &Descriptor::new(0x2004, 4, W, 0).to_bytes()).unwrap();
        for head in 0..5 {
            assert_eq!(ref_walk(&m, 0x1000, 4, head, true), walk_chain(&m, GuestAddress(0x1000), 4, head, true));
        }
        assert_eq!(ref_walk(&m, 0x1000, 4, 2, true).unwrap().len(), 2);
    }

    #[test]
    fn reference_check_buffers_prefers_the_earlier_fault() {
        let m = mem();
        let c = [Descriptor::new(RAM_SIZE, 4, W | N, 1), Descriptor::new(0x100, 4, 0, 0)];
        assert_eq!(ref_check_buffers(&m, &c), check_buffers(&m, &c));
        assert!(matches!(ref_check_buffers(&m, &c), Err(ChainError::BufferOutsideMemory { position: 0, .. })));
    }

    /// Negative control: the comparison catches a parser that differs from
    /// the reference (here: one that accepts a 3-byte status).
    #[test]
    #[should_panic(expected = "parse disagrees")]
    fn a_wrong_parser_is_caught() {
        let m = mem();
        let bufs = [Descriptor::new(0x100, 4, N, 1), Descriptor::new(0x104, 3, W, 0)];
        let got: Result<Request, RequestError> = Ok(Request { kind: RequestKind::Flush, status: vec![(0x104, 3)] });
        let want = ref_parse(&m, &bufs);
        if got != want {
            panic!("parse disagrees with the reference");
        }
    }

    #[test]
    fn the_harness_runs_on_simple_inputs() {
        let d = |addr, len, flags, next| DescIn { addr: AddrIn::Ram(addr), len: LenIn::Small(len), flags, next };
        run(&ParseInput {
            pmem: None,
            bytes: vec![],
            words: vec![(AddrIn::Ram(0x100), 0)],
            buffers: vec![d(0x100, 4, 1, 1), d(0x104, 4, 2, 0)],
            table_at: AddrIn::Ram(0x1000),
            table: vec![(0, d(0x100, 4, 1, 1)), (1, d(0x104, 4, 2, 0))],
            indirect_tables: vec![],
            queue_size: QueueSizeIn::Pow(2),
            head: 0,
            indirect: true,
        });
    }
}
