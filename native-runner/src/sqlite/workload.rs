//! The transactions of the campaign and the database state after each
//! prefix of them.
//!
//! Commit 0 creates the schema; commit `t` (1..=N) is transaction `t`: two
//! to four INSERTs of fresh rows, an UPDATE of a live row half of the time
//! and a DELETE of a live row a third of the time. Every row records the
//! transaction that wrote it last, and its value is bytes drawn from the
//! seed, so the table's content after `k` commits is known exactly and
//! differs from the content after any other number of commits.

use pmem_core::rng::{fnv1a64, SimRng};
use std::collections::BTreeMap;

/// The schema (commit 0).
pub const SCHEMA: &str = "CREATE TABLE t(id INTEGER PRIMARY KEY, txn INTEGER NOT NULL, val BLOB NOT NULL);
CREATE INDEX t_txn ON t(txn);";

/// One statement of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `INSERT INTO t VALUES (id, txn, val)`.
    Insert {
        /// Row id.
        id: i64,
        /// Value.
        val: Vec<u8>,
    },
    /// `UPDATE t SET txn = ?, val = ? WHERE id = ?`.
    Update {
        /// Row id.
        id: i64,
        /// New value.
        val: Vec<u8>,
    },
    /// `DELETE FROM t WHERE id = ?`.
    Delete {
        /// Row id.
        id: i64,
    },
}

/// A row: the transaction that wrote it last and its value.
pub type Row = (i64, Vec<u8>);

/// The planned transactions and the expected table after each commit.
#[derive(Clone, Debug)]
pub struct Plan {
    /// `txns[t - 1]` = the statements of transaction `t`.
    pub txns: Vec<Vec<Op>>,
    /// `fingerprints[k]` = fingerprint of the table after `k` commits
    /// (`k = 0`: no table yet, `k = 1`: empty table, `k = t + 1`: after
    /// transaction `t`).
    pub fingerprints: Vec<u64>,
    /// Rows after each commit (same indexing), for messages.
    pub row_counts: Vec<usize>,
}

/// Fingerprint of a table's rows, in id order.
pub fn fingerprint<'a>(rows: impl IntoIterator<Item = (i64, &'a Row)>) -> u64 {
    let mut bytes = Vec::new();
    for (id, (txn, val)) in rows {
        bytes.extend_from_slice(&id.to_le_bytes());
        bytes.extend_from_slice(&txn.to_le_bytes());
        bytes.extend_from_slice(&(val.len() as u64).to_le_bytes());
        bytes.extend_from_slice(val);
    }
    fnv1a64(&bytes)
}

/// Fingerprint standing for "the table does not exist".
pub const NO_TABLE: u64 = 0;

fn value(rng: &mut SimRng, t: u64, id: i64) -> Vec<u8> {
    let len = rng.range_inclusive(40, 700) as usize;
    let mut v = format!("t{t}/r{id}:").into_bytes();
    let mut tail = vec![0u8; len];
    rng.fill(&mut tail);
    v.extend_from_slice(&tail);
    v
}

impl Plan {
    /// `transactions` transactions drawn from `seed`.
    pub fn new(transactions: u64, seed: u64) -> Self {
        let mut rng = SimRng::new(seed).derive("sqlite-workload");
        let mut table: BTreeMap<i64, Row> = BTreeMap::new();
        let mut next_id = 1i64;
        let mut txns = Vec::new();
        let mut fingerprints = vec![NO_TABLE, fingerprint(table.iter().map(|(k, v)| (*k, v)))];
        let mut row_counts = vec![0, 0];
        for t in 1..=transactions {
            let mut ops = Vec::new();
            for _ in 0..rng.range_inclusive(2, 4) {
                let id = next_id;
                next_id += 1;
                let val = value(&mut rng, t, id);
                table.insert(id, (t as i64, val.clone()));
                ops.push(Op::Insert { id, val });
            }
            let pick = |rng: &mut SimRng, table: &BTreeMap<i64, Row>| {
                let n = table.len() as u64;
                table.keys().nth(rng.below(n) as usize).copied()
            };
            if rng.chance(1, 2) {
                if let Some(id) = pick(&mut rng, &table) {
                    let val = value(&mut rng, t, id);
                    table.insert(id, (t as i64, val.clone()));
                    ops.push(Op::Update { id, val });
                }
            }
            if rng.chance(1, 3) {
                if let Some(id) = pick(&mut rng, &table) {
                    table.remove(&id);
                    ops.push(Op::Delete { id });
                }
            }
            txns.push(ops);
            fingerprints.push(fingerprint(table.iter().map(|(k, v)| (*k, v))));
            row_counts.push(table.len());
        }
        Plan { txns, fingerprints, row_counts }
    }

    /// The number of commits whose table has fingerprint `fp`.
    pub fn state_of(&self, fp: u64) -> Option<usize> {
        self.fingerprints.iter().position(|&f| f == fp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prefix_has_its_own_fingerprint_and_plans_repeat() {
        let p = Plan::new(60, 3);
        assert_eq!(p.txns.len(), 60);
        assert_eq!(p.fingerprints.len(), 62);
        let mut seen = std::collections::HashSet::new();
        assert!(p.fingerprints.iter().all(|f| seen.insert(*f)), "two prefixes share a fingerprint");
        assert_eq!(Plan::new(60, 3).fingerprints, p.fingerprints);
        assert_ne!(Plan::new(60, 4).fingerprints, p.fingerprints);
        assert!(p.txns.iter().flatten().any(|o| matches!(o, Op::Delete { .. })));
        assert!(p.txns.iter().flatten().any(|o| matches!(o, Op::Update { .. })));
    }
}
