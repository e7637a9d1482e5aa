//! [`Recorder`] and [`explore_all`]: crash-testing a storage engine from
//! its own test suite — an ALICE-like permuter as a library.
//!
//! The engine under test writes through a [`Recorder`] (guest stores into
//! a simulated virtio-pmem device, each `flush` a real flush request
//! through the driver, the virtqueue and the host page cache, waited for as
//! `fsync` waits); [`Recorder::history`] then gives the device's
//! [`WriteHistory`], and [`explore_all`] runs a [`Campaign`] over every
//! crash point of it: every image a power failure could leave (exhaustive
//! when few, sampled from the seed when many, torn at 512 B), each handed to
//! the engine's recovery, the first failure shrunk to the fewest pages.
//!
//! ```
//! use pmem_core::crash::ImageReader;
//! use pmem_core::workload::{explore_all, Recorder};
//!
//! // A one-record "engine": the record at 4096, then the commit word at 0.
//! let mut dev = Recorder::new(1 << 20).unwrap();
//! dev.write(4096, b"hello").unwrap();
//! dev.flush().unwrap(); // the barrier: drop it and the test below fails
//! dev.write(0, &1u64.to_le_bytes()).unwrap();
//! dev.flush().unwrap();
//!
//! let report = explore_all(&dev.history(), |image, _ctx| {
//!     // Recovery: a commit word of 1 promises the record.
//!     let mut rec = [0u8; 5];
//!     image.read(4096, &mut rec);
//!     match image.read_u64(0) {
//!         0 => Ok(()),
//!         1 if &rec == b"hello" => Ok(()),
//!         c => Err(format!("commit word {c} but the record is {rec:?}")),
//!     }
//! });
//! assert_eq!(report.violations_total, 0);
//! assert!(report.checked > 0 && report.next_point.is_none());
//! ```

use super::flush_and_wait;
use crate::crash::{Campaign, CampaignConfig, CampaignReport, CrashContext, ImageReader, WriteHistory};
use crate::guest::FlushResult;
use crate::sim::{DeviceSpec, Machine, MachineError, SimConfig};

/// The device id a [`Recorder`] records on.
pub const RECORDER_DEVICE: &str = "nv1";

/// One simulated virtio-pmem device that a test writes to and flushes, to
/// explore its crash states afterwards (see the module docs).
pub struct Recorder {
    machine: Machine,
    size: u64,
}

impl Recorder {
    /// A device of `size` bytes (a non-zero multiple of 4096) on a machine
    /// with the default configuration (Linux writeback defaults, seed 0).
    pub fn new(size: u64) -> Result<Recorder, MachineError> {
        Recorder::with_config(SimConfig::default(), size)
    }

    /// A device of `size` bytes on a machine configured by `cfg`.
    pub fn with_config(cfg: SimConfig, size: u64) -> Result<Recorder, MachineError> {
        let mut machine = Machine::new(cfg);
        machine.add_device(DeviceSpec::new(RECORDER_DEVICE, size))?;
        Ok(Recorder { machine, size })
    }

    /// Stores `data` at `offset` of the device (through its DAX window,
    /// into the host page cache: not durable until a flush returns).
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), MachineError> {
        self.machine.guest_write(RECORDER_DEVICE, offset, data)
    }

    /// Reads `len` bytes at `offset`, as the guest sees them.
    pub fn read(&mut self, offset: u64, len: u64) -> Result<Vec<u8>, MachineError> {
        self.machine.guest_read(RECORDER_DEVICE, offset, len)
    }

    /// Sends a flush request and waits until it returns, as `fsync` does:
    /// when it returns `Ok`, every write before it is durable.
    pub fn flush(&mut self) -> Result<FlushResult, MachineError> {
        flush_and_wait(&mut self.machine, RECORDER_DEVICE)
    }

    /// The machine (its event log, page states, …).
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// The device's write history so far: its crash points and every page
    /// version written.
    pub fn history(&self) -> WriteHistory {
        WriteHistory::from_log(self.machine.log(), RECORDER_DEVICE, self.size)
    }
}

/// Explores every crash point of `history` with pmem-core's default
/// campaign ([`CampaignConfig::default`]), judging each image with `check`
/// (`Ok` = the engine recovers it correctly); the first violation is shrunk.
/// For other knobs (seed, tear unit, samples), run a [`Campaign`] directly.
pub fn explore_all<F>(history: &WriteHistory, check: F) -> CampaignReport
where
    F: Fn(&dyn ImageReader, &CrashContext) -> Result<(), String>,
{
    Campaign::new(history, &check, CampaignConfig::default()).run()
}
