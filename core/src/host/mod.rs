//! The host side of a pmem device: the backing file, as the device sees it.
//!
//! The device's flush request ends in [`HostBackend::begin_sync`] (the host's
//! fsync of the backing file); guest loads and stores through the DAX window
//! end in [`HostBackend::read_at`] / [`HostBackend::write_at`]. Syncs are
//! asynchronous: they complete at a later simulated time, reported by
//! [`HostBackend::advance`], so a model can keep pages "under writeback" for a
//! while and several flushes can be in flight.
//!
//! Implementations: [`SimpleBackend`] (a byte store that counts syncs and can
//! be told to fail), and the page-cache model of the persistence layer.

mod simple;

pub use simple::SimpleBackend;

use crate::time::SimTime;
use serde::{Deserialize, Serialize};

/// Identifies one host sync, as returned by [`HostBackend::begin_sync`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SyncTicket(pub u64);

/// Errors of the host backend.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum HostError {
    /// An access beyond the end of the backing file.
    #[error("access {offset:#x}+{len:#x} is beyond the end of the {size:#x}-byte backing file")]
    OutOfBounds {
        /// Offset into the file.
        offset: u64,
        /// Length of the access.
        len: u64,
        /// Size of the file.
        size: u64,
    },
    /// The host's fsync failed (EIO).
    #[error("host fsync of the backing file failed with EIO")]
    SyncFailed,
}

/// A sync that has finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCompletion {
    /// The sync that finished.
    pub ticket: SyncTicket,
    /// Its result: `Ok` when every page it covered is durable.
    pub result: Result<(), HostError>,
    /// When it finished.
    pub at: SimTime,
}

/// Counters a backend keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStats {
    /// Bytes stored by the guest.
    pub bytes_written: u64,
    /// Syncs begun.
    pub syncs_started: u64,
    /// Syncs completed successfully.
    pub syncs_ok: u64,
    /// Syncs completed with an error.
    pub syncs_failed: u64,
    /// Pages holding storage in the backend.
    pub resident_pages: u64,
}

/// The host side of a pmem device.
pub trait HostBackend {
    /// Size of the backing file in bytes.
    fn size(&self) -> u64;

    /// Reads the newest content at `offset` (what a guest load sees).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), HostError>;

    /// A guest store through the DAX mapping at time `now`.
    fn write_at(&mut self, now: SimTime, offset: u64, data: &[u8]) -> Result<(), HostError>;

    /// Begins a host fsync of the backing file at time `now`.
    fn begin_sync(&mut self, now: SimTime) -> SyncTicket;

    /// Runs the backend's own work up to `now` and returns the syncs that
    /// completed at or before `now`, in completion order.
    fn advance(&mut self, now: SimTime) -> Vec<SyncCompletion>;

    /// The time of the backend's next internal event, if any is pending.
    fn next_event_time(&self) -> Option<SimTime>;

    /// Counters.
    fn stats(&self) -> HostStats;
}
