//! A simple host backend: a sparse byte store that counts syncs.

use super::{HostBackend, HostError, HostStats, PendingSyncs, SyncCompletion, SyncTicket};
use crate::memory::SparsePages;
use crate::time::SimTime;

/// A byte store with a fixed sync latency that counts syncs and can be told
/// to fail the next ones. It has no notion of durability: it is the stand-in
/// for tests of the device and the queue, where only "was the host asked to
/// sync, and what did it answer" matters.
#[derive(Debug, Clone)]
pub struct SimpleBackend {
    size: u64,
    data: SparsePages,
    sync_latency: u64,
    fail_next: u64,
    next_ticket: u64,
    pending: PendingSyncs,
    stats: HostStats,
}

impl SimpleBackend {
    /// A backend for a file of `size` bytes whose syncs complete at once.
    pub fn new(size: u64) -> Self {
        SimpleBackend {
            size,
            data: SparsePages::new(),
            sync_latency: 0,
            fail_next: 0,
            next_ticket: 0,
            pending: PendingSyncs::new(),
            stats: HostStats::default(),
        }
    }

    /// Sets how long each sync takes, in simulated nanoseconds.
    pub fn with_sync_latency(mut self, nanos: u64) -> Self {
        self.sync_latency = nanos;
        self
    }

    /// Makes the next `n` syncs fail with EIO (a test hook: built for tests
    /// and with the `test-utils` feature).
    #[cfg(any(test, feature = "test-utils"))]
    pub fn fail_next_syncs(&mut self, n: u64) {
        self.fail_next = n;
    }

    fn check(&self, offset: u64, len: usize) -> Result<(), HostError> {
        let len = len as u64;
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(HostError::OutOfBounds { offset, len, size: self.size }),
        }
    }
}

impl HostBackend for SimpleBackend {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), HostError> {
        self.check(offset, buf.len())?;
        self.data.read(offset, buf);
        Ok(())
    }

    fn write_at(&mut self, _now: SimTime, offset: u64, data: &[u8]) -> Result<(), HostError> {
        self.check(offset, data.len())?;
        self.data.write(offset, data);
        self.stats.bytes_written += data.len() as u64;
        Ok(())
    }

    fn begin_sync(&mut self, now: SimTime) -> SyncTicket {
        let ticket = SyncTicket(self.next_ticket);
        self.next_ticket += 1;
        self.stats.syncs_started += 1;
        let fail = self.fail_next > 0;
        if fail {
            self.fail_next -= 1;
        }
        self.pending.push(now.plus_nanos(self.sync_latency), ticket, fail);
        ticket
    }

    fn advance(&mut self, now: SimTime) -> Vec<SyncCompletion> {
        self.pending.take_due(now, &mut self.stats)
    }

    fn next_event_time(&self) -> Option<SimTime> {
        self.pending.next_time()
    }

    fn stats(&self) -> HostStats {
        HostStats { resident_pages: self.data.touched_pages() as u64, ..self.stats.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_complete_after_latency_and_failures_are_injected() {
        let mut b = SimpleBackend::new(8192).with_sync_latency(100);
        b.fail_next_syncs(1);
        let t1 = b.begin_sync(SimTime(0));
        let t2 = b.begin_sync(SimTime(10));
        assert!(b.advance(SimTime(99)).is_empty());
        assert_eq!(b.next_event_time(), Some(SimTime(100)));
        let done = b.advance(SimTime(200));
        assert_eq!(done.len(), 2);
        assert_eq!(done[0].ticket, t1);
        assert_eq!(done[0].result, Err(HostError::SyncFailed));
        assert_eq!(done[1].ticket, t2);
        assert_eq!(done[1].result, Ok(()));
        assert_eq!(b.stats().syncs_failed, 1);
        assert_eq!(b.stats().syncs_ok, 1);
    }

    #[test]
    fn out_of_bounds_is_refused() {
        let mut b = SimpleBackend::new(4096);
        assert!(matches!(
            b.write_at(SimTime(0), 4095, &[1, 2]),
            Err(HostError::OutOfBounds { offset: 4095, len: 2, size: 4096 })
        ));
        let mut buf = [0u8; 1];
        assert!(b.read_at(u64::MAX, &mut buf).is_err());
    }
}
