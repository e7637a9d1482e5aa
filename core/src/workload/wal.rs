//! A write-ahead log, with and without its ordering barrier.

use super::{checksum, flush_and_wait, payload, Workload};
use crate::crash::{Checker, CrashContext, ImageReader};
use crate::machine_prelude::*;

const LOG_SLOTS: u64 = 4;
const DATA_PAGES: u64 = 3;
const DATA_BASE: u64 = 8;
const PAYLOAD: usize = 256;

/// Transactions 1, 2, … each: (1) write a log record `{txid, checksum,
/// payload}` into slot `1 + (t-1) % 4`; (2) flush — **the barrier**; (3)
/// write the commit word (`le64 t` at offset 0); (4) flush — the commit is
/// acknowledged when this returns; (5) apply the payload to data page
/// `8 + t % 3`; (6) flush (so the log slot may be reused).
///
/// Recovery (in the checker) reads the commit word `c` and replays every
/// valid record of the last four transactions up to `c`. The checker demands
/// that `c` is at least the last acknowledged transaction and that after
/// replay every data page holds the newest committed transaction mapped to
/// it. Without the barrier (2), a crash can persist the commit word of `t`
/// but not its record: `t` is committed but cannot be recovered.
#[derive(Clone, Debug)]
pub struct Wal {
    /// Number of transactions.
    pub transactions: u64,
    /// Flush between the log record and the commit word.
    pub barriers: bool,
}

impl Default for Wal {
    fn default() -> Self {
        Wal { transactions: 24, barriers: true }
    }
}

fn slot(t: u64) -> u64 {
    4096 * (1 + (t - 1) % LOG_SLOTS)
}

fn data_page(t: u64) -> u64 {
    4096 * (DATA_BASE + t % DATA_PAGES)
}

fn data_bytes(t: u64) -> Vec<u8> {
    let mut d = t.to_le_bytes().to_vec();
    d.extend_from_slice(&payload(t, PAYLOAD));
    d
}

impl Wal {
    fn flushes_per_txn(&self) -> usize {
        if self.barriers {
            3
        } else {
            2
        }
    }

    /// Transactions acknowledged after `acked` flushes returned.
    fn acknowledged(&self, acked: usize) -> u64 {
        let k = self.flushes_per_txn();
        let commit_flush = k - 2; // index of the commit flush within a txn
        ((acked + k - 1 - commit_flush) / k) as u64
    }
}

impl Workload for Wal {
    fn name(&self) -> &'static str {
        if self.barriers {
            "wal"
        } else {
            "wal-missing-barrier"
        }
    }

    fn description(&self) -> &'static str {
        if self.barriers {
            "write-ahead log with a flush between log record and commit (always recovers)"
        } else {
            "write-ahead log missing the flush between log record and commit (must be caught)"
        }
    }

    fn run(&self, m: &mut Machine, dev: &str) -> Result<(), MachineError> {
        for t in 1..=self.transactions {
            let body = payload(t, PAYLOAD);
            let mut rec = t.to_le_bytes().to_vec();
            rec.extend_from_slice(&checksum(t, &body).to_le_bytes());
            rec.extend_from_slice(&body);
            m.guest_write(dev, slot(t), &rec)?;
            if self.barriers {
                flush_and_wait(m, dev)?;
            }
            m.guest_write(dev, 0, &t.to_le_bytes())?;
            flush_and_wait(m, dev)?;
            m.guest_write(dev, data_page(t), &data_bytes(t))?;
            flush_and_wait(m, dev)?;
        }
        Ok(())
    }

    fn checker(&self) -> Box<dyn Checker> {
        let this = self.clone();
        Box::new(move |img: &dyn ImageReader, ctx: &CrashContext| {
            let acked = this.acknowledged(ctx.point.acked_flushes);
            let c = img.read_u64(0);
            if c < acked {
                return Err(format!("commit word says {c} but transaction {acked} was acknowledged"));
            }
            if c > this.transactions {
                return Err(format!("commit word {c} is garbage"));
            }
            // Recovery: the data pages, then replay of valid records.
            let len = 8 + PAYLOAD;
            let mut data: Vec<Vec<u8>> = (0..DATA_PAGES)
                .map(|i| {
                    let mut b = vec![0u8; len];
                    img.read(4096 * (DATA_BASE + i), &mut b);
                    b
                })
                .collect();
            let first = c.saturating_sub(LOG_SLOTS - 1).max(1);
            for t in first..=c {
                let mut rec = vec![0u8; 16 + PAYLOAD];
                img.read(slot(t), &mut rec);
                let id = u64::from_le_bytes(rec[0..8].try_into().unwrap_or_default());
                let sum = u64::from_le_bytes(rec[8..16].try_into().unwrap_or_default());
                if id == t && sum == checksum(t, &rec[16..]) {
                    data[(t % DATA_PAGES) as usize] = data_bytes(t);
                }
            }
            for (i, page) in data.iter().enumerate() {
                let i = i as u64;
                // The newest committed transaction mapped to this page.
                let expect = (1..=c).rev().find(|t| t % DATA_PAGES == i);
                let want = expect.map(data_bytes).unwrap_or_else(|| vec![0u8; len]);
                if *page != want {
                    let have = u64::from_le_bytes(page[0..8].try_into().unwrap_or_default());
                    return Err(format!(
                        "transaction {} is committed (commit word {c}) but data page {} holds transaction {have} after recovery",
                        expect.unwrap_or(0),
                        DATA_BASE + i
                    ));
                }
            }
            Ok(())
        })
    }
}
