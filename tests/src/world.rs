//! A world: guest memory, the device side of the queue, a virtio-pmem device
//! and its host backend — over pmemlab's own split ring or rust-vmm's.

use crate::action::{DriverAction, MEM_SIZE};
use crate::snapshot::{compare, observe, outcome_label, Snapshot};
use pmem_core::device::{DeviceEvent, DeviceStatus, PmemConfig, PmemDevice};
use pmem_core::host::SimpleBackend;
use pmem_core::memory::{GuestAddress, GuestMemory, GuestMemoryMap};
use pmem_core::queue::{used_ring_bytes, DeviceQueue, SplitQueue, SplitQueueLayout};
use pmem_core::time::SimTime;
use pmem_core::vmm::{VmmMemory, VmmQueue};

/// Guest-physical start of the device's pmem region (outside RAM; the
/// differential test never touches it, only the flush path matters).
pub const PMEM_START: u64 = 1 << 32;

/// One device with its queue, guest memory and host, driven by
/// [`DriverAction`]s.
#[derive(Debug)]
pub struct World<M, Q> {
    /// Guest memory (one RAM region of [`MEM_SIZE`] bytes at 0).
    pub mem: M,
    /// The device side of the queue.
    pub queue: Q,
    /// Where the queue lives.
    pub layout: SplitQueueLayout,
    /// The device.
    pub device: PmemDevice,
    /// The host behind it (syncs complete at once).
    pub host: SimpleBackend,
    /// Every event the device emitted, in order.
    pub events: Vec<DeviceEvent>,
    /// Outcome of every guest-memory access the driver actions made.
    pub accesses: Vec<bool>,
}

/// pmemlab's portable guest memory and split ring.
pub type OursWorld = World<GuestMemoryMap, SplitQueue>;

/// rust-vmm's `GuestMemoryMmap` and `virtio_queue::Queue`, via the adapters.
pub type TheirsWorld = World<VmmMemory, VmmQueue>;

fn device() -> (PmemDevice, SimpleBackend) {
    let mut device = PmemDevice::new(PmemConfig::new("nv1", GuestAddress(PMEM_START), 4096))
        .expect("a 4 KiB device at 4 GiB is a valid configuration");
    let offered = device.offered_features();
    device.negotiate(offered).expect("the device's own offer is acceptable");
    (device, SimpleBackend::new(4096))
}

/// The queue layout both worlds use.
pub fn layout(queue_size: u16, queue_base: u64) -> Result<SplitQueueLayout, String> {
    SplitQueueLayout::contiguous(GuestAddress(queue_base), queue_size).map_err(|e| e.to_string())
}

impl<M, Q> World<M, Q> {
    /// A world over `mem` and `queue` (at `layout`), with a fresh device
    /// (all features accepted) and a 4 KiB [`SimpleBackend`].
    pub fn from_parts(mem: M, queue: Q, layout: SplitQueueLayout) -> Self {
        let (device, host) = device();
        World { mem, queue, layout, device, host, events: Vec::new(), accesses: Vec::new() }
    }
}

impl OursWorld {
    /// Our world: sparse memory of [`MEM_SIZE`] bytes, a split ring with
    /// indirect descriptors enabled (virtio-queue always follows them).
    pub fn ours(queue_size: u16, queue_base: u64) -> Result<Self, String> {
        let layout = layout(queue_size, queue_base)?;
        let mem = GuestMemoryMap::new(GuestAddress(0), MEM_SIZE);
        let queue = SplitQueue::new(&mem, layout, true).map_err(|e| e.to_string())?;
        Ok(World::from_parts(mem, queue, layout))
    }
}

impl TheirsWorld {
    /// The reference world: anonymous `mmap`ed memory through vm-memory and
    /// virtio-queue's `Queue`.
    pub fn theirs(queue_size: u16, queue_base: u64) -> Result<Self, String> {
        let layout = layout(queue_size, queue_base)?;
        let mem = VmmMemory::anonymous(&[(0, MEM_SIZE as usize)])?;
        let queue = VmmQueue::new(&mem, layout).map_err(|e| e.to_string())?;
        Ok(World::from_parts(mem, queue, layout))
    }
}

impl<M, Q> World<M, Q>
where
    M: GuestMemory,
    Q: DeviceQueue<M>,
{
    /// Applies one driver action ([`DriverAction::DeviceRun`] runs the
    /// device unless it needs a reset).
    pub fn apply(&mut self, action: &DriverAction) {
        match action {
            DriverAction::DeviceRun => {
                if !self.needs_reset() {
                    self.device_run();
                }
            }
            DriverAction::FailSyncs { n } => self.host.fail_next_syncs(u64::from(*n)),
            other => {
                let outcomes = other.apply_to_memory(&mut self.mem, &self.layout);
                self.accesses.extend(outcomes);
            }
        }
    }

    /// The device pops every available chain and answers it; syncs complete
    /// at once.
    pub fn device_run(&mut self) {
        self.device.process_now(&mut self.mem, &mut self.queue, &mut self.host, SimTime(0), &mut self.events);
    }

    /// True once the device has set DEVICE_NEEDS_RESET.
    pub fn needs_reset(&self) -> bool {
        self.device.status().has(DeviceStatus::DEVICE_NEEDS_RESET)
    }

    /// Everything the differential test compares.
    pub fn snapshot(&self) -> Snapshot {
        let mut memory = vec![0u8; MEM_SIZE as usize];
        let memory_readable = self.mem.read(GuestAddress(0), &mut memory).is_ok();
        let mut used_ring = vec![0u8; used_ring_bytes(self.layout.size) as usize];
        let used_readable = self.mem.read(self.layout.used_ring, &mut used_ring).is_ok();
        Snapshot {
            memory: memory_readable.then_some(memory),
            used_ring: used_readable.then_some(used_ring),
            used_idx: self.mem.read_le16(self.layout.used_idx_addr()).ok(),
            next_avail: self.queue.next_avail(),
            next_used: self.queue.next_used(),
            needs_reset: self.needs_reset(),
            observed: self.events.iter().map(observe).collect(),
            accesses: self.accesses.clone(),
        }
    }
}

/// Applies `actions` to both worlds, comparing them after every device run
/// and at the end. Returns the outcome labels of `ours`'s events (for
/// coverage counts) or a report of the first divergence.
pub fn run_differential<M1, Q1, M2, Q2>(
    ours: &mut World<M1, Q1>,
    theirs: &mut World<M2, Q2>,
    actions: &[DriverAction],
) -> Result<Vec<String>, String>
where
    M1: GuestMemory,
    Q1: DeviceQueue<M1>,
    M2: GuestMemory,
    Q2: DeviceQueue<M2>,
{
    for (i, action) in actions.iter().enumerate() {
        ours.apply(action);
        theirs.apply(action);
        if *action == DriverAction::DeviceRun || i + 1 == actions.len() {
            compare(&ours.snapshot(), &theirs.snapshot())
                .map_err(|report| format!("worlds diverge after action #{i} ({action:?}):\n{report}"))?;
        }
    }
    Ok(ours.events.iter().filter_map(outcome_label).collect())
}
