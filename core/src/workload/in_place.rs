//! A record overwritten in place: the classic way to lose data on a crash.

use super::{flush_and_wait, Workload};
use crate::crash::{Checker, CrashContext, ImageReader};
use crate::machine_prelude::*;

/// Overwrites a two-page record (each page: `le64 version` then the version
/// repeated) with version 1, 2, …, flushing after each update. Its checker
/// demands that the record is entirely one version, at least the last one
/// acknowledged. A crash during an update leaves a record that is neither.
#[derive(Clone, Debug)]
pub struct InPlaceUpdate {
    /// Number of updates.
    pub rounds: u64,
}

impl Default for InPlaceUpdate {
    fn default() -> Self {
        InPlaceUpdate { rounds: 20 }
    }
}

fn record(v: u64) -> Vec<u8> {
    let mut r = vec![v as u8; 8192];
    r[0..8].copy_from_slice(&v.to_le_bytes());
    r[4096..4104].copy_from_slice(&v.to_le_bytes());
    r
}

impl Workload for InPlaceUpdate {
    fn name(&self) -> &'static str {
        "in-place"
    }

    fn description(&self) -> &'static str {
        "a two-page record overwritten in place, flushed after each update (loses data on a crash)"
    }

    fn run(&self, m: &mut Machine, dev: &str) -> Result<(), MachineError> {
        for v in 1..=self.rounds {
            m.guest_write(dev, 0, &record(v))?;
            flush_and_wait(m, dev)?;
        }
        Ok(())
    }

    fn checker(&self) -> Box<dyn Checker> {
        Box::new(|img: &dyn ImageReader, ctx: &CrashContext| {
            let mut buf = vec![0u8; 8192];
            img.read(0, &mut buf);
            let v0 = u64::from_le_bytes(buf[0..8].try_into().unwrap_or_default());
            let acked = ctx.point.acked_flushes as u64;
            if buf != record(v0) && !(v0 == 0 && buf.iter().all(|&b| b == 0)) {
                let v1 = u64::from_le_bytes(buf[4096..4104].try_into().unwrap_or_default());
                return Err(format!("record is torn: first page says version {v0}, second page {v1}"));
            }
            if v0 < acked {
                return Err(format!("record holds version {v0} but version {acked} was acknowledged"));
            }
            Ok(())
        })
    }
}
