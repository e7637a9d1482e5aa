//! Built-in workloads with checkers, for teaching and testing.
//!
//! Each workload runs on a [`Machine`] (issuing guest stores and flushes and
//! waiting for each flush to return, as an application calling `fsync`
//! would) and comes with a [`Checker`] that runs the workload's recovery on
//! a crash image and says whether the result is acceptable.
//!
//! | workload | what it shows | expected |
//! | --- | --- | --- |
//! | [`InPlaceUpdate`] | a two-page record overwritten in place | loses data: a crash leaves half-old, half-new records |
//! | [`Wal`] (`barriers: true`) | write-ahead log with a flush between record and commit | always recovers |
//! | [`Wal`] (`barriers: false`) | the same, missing that one barrier | caught: a commit without its record |
//! | [`ShadowPaging`] | write a new copy, flush, flip an 8-byte pointer, flush | always recovers |
//!
//! A storage engine's own test records its writes with a [`Recorder`] and
//! explores them with [`explore_all`] (see [`recorder`]'s docs).

mod in_place;
pub mod recorder;
mod shadow;
mod wal;

pub use in_place::InPlaceUpdate;
pub use recorder::{explore_all, Recorder, RECORDER_DEVICE};
pub use shadow::ShadowPaging;
pub use wal::Wal;

use crate::crash::{Checker, WriteHistory};
use crate::guest::FlushResult;
use crate::sim::{DeviceSpec, Machine, MachineError, SimConfig};

/// A scripted application with its consistency checker.
pub trait Workload {
    /// Short name (`wal`, `wal-missing-barrier`, …).
    fn name(&self) -> &'static str;
    /// One-line description.
    fn description(&self) -> &'static str;
    /// Device size it needs.
    fn device_size(&self) -> u64 {
        1 << 20
    }
    /// Runs the workload on device `dev` of `m`.
    fn run(&self, m: &mut Machine, dev: &str) -> Result<(), MachineError>;
    /// The checker for its crash images.
    fn checker(&self) -> Box<dyn Checker>;
}

/// Every built-in workload, with default sizes.
pub fn builtin() -> Vec<Box<dyn Workload>> {
    vec![
        Box::new(InPlaceUpdate::default()),
        Box::new(Wal::default()),
        Box::new(Wal { barriers: false, ..Wal::default() }),
        Box::new(ShadowPaging::default()),
    ]
}

/// The built-in workload named `name`.
pub fn by_name(name: &str) -> Option<Box<dyn Workload>> {
    builtin().into_iter().find(|w| w.name() == name)
}

/// Asks for a flush and runs the machine until it returns to the caller.
pub fn flush_and_wait(m: &mut Machine, dev: &str) -> Result<FlushResult, MachineError> {
    let r = m.flush(dev)?;
    for _ in 0..1_000_000 {
        if let Some(res) = m.flush_result(dev, r)? {
            return Ok(res);
        }
        if !m.step() {
            break;
        }
    }
    Ok(m.flush_result(dev, r)?.unwrap_or(FlushResult::Eio))
}

/// Runs `w` on a fresh machine (device `nv1`, Linux writeback defaults)
/// and returns the machine and the device's write history.
pub fn record(w: &dyn Workload, cfg: SimConfig) -> Result<(Machine, WriteHistory), MachineError> {
    let mut m = Machine::new(cfg);
    m.add_device(DeviceSpec::new("nv1", w.device_size()))?;
    w.run(&mut m, "nv1")?;
    let h = WriteHistory::from_log(m.log(), "nv1", w.device_size());
    Ok((m, h))
}

/// Deterministic payload bytes of version `v`.
pub(crate) fn payload(v: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (v.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8).collect()
}

/// FNV-1a of a version number and payload.
pub(crate) fn checksum(v: u64, data: &[u8]) -> u64 {
    let mut b = v.to_le_bytes().to_vec();
    b.extend_from_slice(data);
    crate::rng::fnv1a64(&b)
}

#[cfg(test)]
mod tests;
