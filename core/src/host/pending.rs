//! Syncs that finish at a known time: the bookkeeping of backends whose
//! sync completes after a fixed or measured delay.

use super::{HostError, HostStats, SyncCompletion, SyncTicket};
use crate::time::SimTime;

/// Syncs begun and not yet reported, each with its completion time and
/// whether it failed.
#[derive(Clone, Debug, Default)]
pub struct PendingSyncs {
    pending: Vec<(SimTime, SyncTicket, bool)>,
}

impl PendingSyncs {
    /// No sync pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a sync that completes at `at` (with EIO when `failed`).
    pub fn push(&mut self, at: SimTime, ticket: SyncTicket, failed: bool) {
        self.pending.push((at, ticket, failed));
    }

    /// Takes the syncs complete at or before `now`, in completion order,
    /// counting them in `stats`.
    pub fn take_due(&mut self, now: SimTime, stats: &mut HostStats) -> Vec<SyncCompletion> {
        let mut done: Vec<(SimTime, SyncTicket, bool)> = Vec::new();
        self.pending.retain(|p| {
            if p.0 <= now {
                done.push(*p);
                false
            } else {
                true
            }
        });
        done.sort();
        done.into_iter()
            .map(|(at, ticket, failed)| {
                if failed {
                    stats.syncs_failed += 1;
                } else {
                    stats.syncs_ok += 1;
                }
                SyncCompletion { ticket, result: if failed { Err(HostError::SyncFailed) } else { Ok(()) }, at }
            })
            .collect()
    }

    /// When the next pending sync completes.
    pub fn next_time(&self) -> Option<SimTime> {
        self.pending.iter().map(|p| p.0).min()
    }
}
