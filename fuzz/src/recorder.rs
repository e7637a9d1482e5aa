//! Wrappers that let a harness watch the device: a guest memory that records
//! every write, and a queue that records every pop and `add_used`.

use pmem_core::memory::{GuestAddress, GuestMemory, MemoryError};
use pmem_core::pmem_window::MachineMemory;
use pmem_core::queue::{DeviceQueue, PoppedChain, QueueError, SplitQueue};

/// Who wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    /// The queue (`add_used`: used ring entry and `used.idx`).
    Queue,
    /// The device logic (status words).
    Device,
}

/// One write attempted by the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteRec {
    /// First byte.
    pub addr: u64,
    /// Bytes.
    pub len: u64,
    /// Who wrote.
    pub by: Writer,
    /// Whether guest memory accepted it.
    pub ok: bool,
}

/// A [`GuestMemory`] over a [`MachineMemory`] that records writes.
pub struct Recorder<'a> {
    /// The memory.
    pub mem: &'a mut MachineMemory,
    /// Writes attempted, in order.
    pub writes: Vec<WriteRec>,
    /// Who is writing now.
    pub writer: Writer,
}

impl<'a> Recorder<'a> {
    /// Wraps `mem`.
    pub fn new(mem: &'a mut MachineMemory) -> Self {
        Recorder { mem, writes: Vec::new(), writer: Writer::Device }
    }
}

impl GuestMemory for Recorder<'_> {
    fn read(&self, addr: GuestAddress, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.mem.read(addr, buf)
    }

    fn write(&mut self, addr: GuestAddress, data: &[u8]) -> Result<(), MemoryError> {
        let r = self.mem.write(addr, data);
        self.writes.push(WriteRec { addr: addr.0, len: data.len() as u64, by: self.writer, ok: r.is_ok() });
        r
    }

    fn check_range(&self, addr: GuestAddress, len: u64) -> bool {
        self.mem.check_range(addr, len)
    }
}

/// What one call of `pop` gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PopOutcome {
    /// A chain.
    Chain(PoppedChain),
    /// Nothing available.
    Empty,
    /// A queue error.
    Error(QueueError),
}

/// A [`SplitQueue`] that records what the device did with it, and checks
/// right after every `add_used` that the used ring holds what was added.
pub struct Tracked {
    /// The queue.
    pub inner: SplitQueue,
    /// Every pop, in order.
    pub pops: Vec<PopOutcome>,
    /// Every successful `add_used`: `(head, len)`.
    pub used: Vec<(u16, u32)>,
    /// Invariant violations seen inside `add_used`.
    pub faults: Vec<String>,
}

impl Tracked {
    /// Wraps `inner`.
    pub fn new(inner: SplitQueue) -> Self {
        Tracked { inner, pops: Vec::new(), used: Vec::new(), faults: Vec::new() }
    }

    /// Forgets the records of the last round.
    pub fn clear(&mut self) {
        self.pops.clear();
        self.used.clear();
        self.faults.clear();
    }
}

impl<'a> DeviceQueue<Recorder<'a>> for Tracked {
    fn size(&self) -> u16 {
        self.inner.layout().size
    }

    fn pop(&mut self, mem: &Recorder<'a>) -> Result<Option<PoppedChain>, QueueError> {
        let r = DeviceQueue::pop(&mut self.inner, mem);
        self.pops.push(match &r {
            Ok(Some(c)) => PopOutcome::Chain(c.clone()),
            Ok(None) => PopOutcome::Empty,
            Err(e) => PopOutcome::Error(e.clone()),
        });
        r
    }

    fn add_used(&mut self, mem: &mut Recorder<'a>, head: u16, len: u32) -> Result<(), QueueError> {
        let slot = self.inner.next_used();
        mem.writer = Writer::Queue;
        let r = self.inner.add_used(mem, head, len);
        mem.writer = Writer::Device;
        if r.is_ok() {
            self.used.push((head, len));
            let l = *self.inner.layout();
            let mut entry = [0u8; 8];
            let read = mem.read(l.used_entry_addr(slot), &mut entry);
            let want = [u32::from(head).to_le_bytes(), len.to_le_bytes()].concat();
            if read.is_err() || entry[..] != want[..] {
                self.faults
                    .push(format!("used ring slot {slot} reads {entry:?} ({read:?}) after add_used({head}, {len})"));
            }
            let idx = mem.read_le16(l.used_idx_addr());
            if idx != Ok(slot.wrapping_add(1)) || self.inner.next_used() != slot.wrapping_add(1) {
                self.faults.push(format!(
                    "used.idx reads {idx:?}, next_used is {}, after add_used into slot {slot}",
                    self.inner.next_used()
                ));
            }
        }
        r
    }

    fn needs_interrupt(&mut self, mem: &Recorder<'a>) -> Result<bool, QueueError> {
        self.inner.needs_interrupt(mem)
    }

    fn next_avail(&self) -> u16 {
        self.inner.next_avail()
    }

    fn next_used(&self) -> u16 {
        self.inner.next_used()
    }
}
