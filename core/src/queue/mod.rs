//! The split virtqueue, kept in guest-memory bytes.
//!
//! The descriptor table, the available ring and the used ring live in
//! simulated guest memory exactly as the virtio spec lays them out, so a UI
//! can draw the real bytes. [`SplitQueue`] is the device side (pop, walk,
//! add_used, interrupt suppression); [`DriverQueue`] is the driver side (add a
//! chain, make it available, notify, reclaim used buffers).
//!
//! The device logic uses the [`DeviceQueue`] trait, so it runs unchanged over
//! rust-vmm's `virtio_queue::Queue` on native targets.

mod chain;
mod descriptor;
mod driver;
mod layout;
mod split;

pub use chain::{check_buffers, walk_chain, ChainError};
pub use descriptor::{Descriptor, DESCRIPTOR_SIZE, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};
pub use driver::{Buffer, DriverError, DriverQueue, UsedElement};
pub use layout::{avail_ring_bytes, used_ring_bytes, SplitQueueLayout, MAX_QUEUE_SIZE};
pub use split::{SplitQueue, VIRTQ_AVAIL_F_NO_INTERRUPT};

use crate::memory::{GuestMemory, MemoryError};
use serde::{Deserialize, Serialize};

/// Errors of the queue itself (as opposed to one chain).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum QueueError {
    /// The queue size is not a power of two in 1..=32768.
    #[error("queue size {0} is invalid; a power of two from 1 to 32768 is required")]
    InvalidSize(u16),
    /// A part of the queue is misaligned.
    #[error("{part} at {addr:#x} is not aligned to {align} bytes")]
    Misaligned {
        /// Which part.
        part: String,
        /// Its address.
        addr: u64,
        /// The alignment required.
        align: u64,
    },
    /// A part of the queue lies outside guest memory.
    #[error("{part} at {addr:#x}+{len:#x} is outside guest memory")]
    OutsideMemory {
        /// Which part.
        part: String,
        /// Its address.
        addr: u64,
        /// Its length.
        len: u64,
    },
    /// The driver published more chains than the queue holds.
    #[error("available index {avail_idx} is {ahead} entries ahead of the device's {next_avail}; at most {size} are possible")]
    AvailIndexTooFarAhead {
        /// The driver's `avail.idx`.
        avail_idx: u16,
        /// The device's next index.
        next_avail: u16,
        /// How far ahead.
        ahead: u16,
        /// The queue size.
        size: u16,
    },
    /// `add_used` was given a head that is not a descriptor index.
    #[error("descriptor head {head} is out of range for a queue of {size}; it cannot be returned")]
    HeadOutOfRange {
        /// The head.
        head: u16,
        /// The queue size.
        size: u16,
    },
    /// The queue is not ready.
    #[error("the queue is not ready")]
    NotReady,
    /// Guest memory could not be accessed.
    #[error("guest memory: {0}")]
    Memory(#[from] MemoryError),
}

/// A chain taken off the available ring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoppedChain {
    /// The head descriptor index (what goes back in the used ring).
    pub head: u16,
    /// The buffers, or the first fault found walking them.
    pub buffers: Result<Vec<Descriptor>, ChainError>,
}

/// The device side of a virtqueue, as the device logic needs it.
pub trait DeviceQueue<M: GuestMemory + ?Sized> {
    /// Number of descriptors.
    fn size(&self) -> u16;

    /// Takes the next available chain, if any, walks and checks it.
    fn pop(&mut self, mem: &M) -> Result<Option<PoppedChain>, QueueError>;

    /// Returns a chain to the driver with `len` bytes written.
    fn add_used(&mut self, mem: &mut M, head: u16, len: u32) -> Result<(), QueueError>;

    /// Whether the driver wants an interrupt for the used buffers added.
    fn needs_interrupt(&mut self, mem: &M) -> Result<bool, QueueError>;

    /// The device's next available index.
    fn next_avail(&self) -> u16;

    /// The device's next used index.
    fn next_used(&self) -> u16;
}
