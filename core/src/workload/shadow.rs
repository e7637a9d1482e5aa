//! Shadow paging: write a new copy, then flip an atomic pointer.

use super::{checksum, flush_and_wait, payload, Workload};
use crate::crash::{Checker, CrashContext, ImageReader};
use crate::machine_prelude::*;

const BODY: usize = 1024;

/// Keeps two slots (pages 1 and 2) and a pointer (an 8-byte version number
/// at offset 0; version `v` lives in slot `1 + v % 2`). An update writes the
/// new version into the inactive slot, flushes, writes the pointer, and
/// flushes again. Its checker follows the pointer and demands a complete,
/// checksummed version at least as new as the last acknowledged one.
#[derive(Clone, Debug)]
pub struct ShadowPaging {
    /// Number of updates.
    pub rounds: u64,
}

impl Default for ShadowPaging {
    fn default() -> Self {
        ShadowPaging { rounds: 20 }
    }
}

fn slot_offset(v: u64) -> u64 {
    4096 * (1 + v % 2)
}

impl Workload for ShadowPaging {
    fn name(&self) -> &'static str {
        "shadow-paging"
    }

    fn description(&self) -> &'static str {
        "copy-on-write: new version into the spare slot, flush, flip an 8-byte pointer, flush (always recovers)"
    }

    fn run(&self, m: &mut Machine, dev: &str) -> Result<(), MachineError> {
        for v in 1..=self.rounds {
            let body = payload(v, BODY);
            let mut slot = Vec::with_capacity(16 + BODY);
            slot.extend_from_slice(&v.to_le_bytes());
            slot.extend_from_slice(&checksum(v, &body).to_le_bytes());
            slot.extend_from_slice(&body);
            m.guest_write(dev, slot_offset(v), &slot)?;
            flush_and_wait(m, dev)?;
            m.guest_write(dev, 0, &v.to_le_bytes())?;
            flush_and_wait(m, dev)?;
        }
        Ok(())
    }

    fn checker(&self) -> Box<dyn Checker> {
        Box::new(|img: &dyn ImageReader, ctx: &CrashContext| {
            let acked = (ctx.point.acked_flushes / 2) as u64;
            let p = img.read_u64(0);
            if p < acked {
                return Err(format!("pointer says version {p} but version {acked} was acknowledged"));
            }
            if p == 0 {
                return Ok(());
            }
            let mut slot = vec![0u8; 16 + BODY];
            img.read(slot_offset(p), &mut slot);
            let v = u64::from_le_bytes(slot[0..8].try_into().unwrap_or_default());
            let sum = u64::from_le_bytes(slot[8..16].try_into().unwrap_or_default());
            if v != p || sum != checksum(p, &slot[16..]) {
                return Err(format!("pointer says version {p} but its slot holds a damaged or other version ({v})"));
            }
            Ok(())
        })
    }
}
