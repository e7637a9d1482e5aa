//! The write history of one device, recovered from an event log: a
//! [`DurabilityModel`] that keeps every version, and the crash points.

use crate::device::DeviceEvent;
use crate::durability::{zero_prior, DurabilityModel, PageVersion, PendingPage, Retention};
use crate::event::{EventKind, EventLog};
use crate::host::BackingMode;
use serde::{Deserialize, Serialize};

/// A point at which a crash may be injected: just after an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashPoint {
    /// Position in the list of crash points.
    pub index: usize,
    /// Sequence number of the event the crash follows (`None`: before the
    /// first event).
    pub after_event: Option<u64>,
    /// Writes issued so far.
    pub writes_done: usize,
    /// Writes guaranteed durable (covered by a completed flush).
    pub durable_upto: usize,
    /// Flushes returned to the application with success so far.
    pub acked_flushes: usize,
    /// Flushes returned with EIO so far.
    pub failed_flushes: usize,
}

/// Everything the crash explorer needs about one device's run: every
/// version of every page its writes produced (a [`DurabilityModel`] with
/// [`Retention::Every`]) and the crash points with their durability
/// frontier.
///
/// The history explores the flush promise of virtio-pmem (`share=on`)
/// whatever the device's mode; callers that explore another mode say so.
#[derive(Clone, Debug)]
pub struct WriteHistory {
    device: String,
    model: DurabilityModel,
    points: Vec<CrashPoint>,
}

impl WriteHistory {
    /// Builds the history of device `device` (of `size` bytes, initially all
    /// zeros) from a log. The history ends at the first crash in the log.
    pub fn from_log(log: &EventLog, device: &str, size: u64) -> Self {
        let mut model = DurabilityModel::new(size, BackingMode::Shared, Retention::Every);
        let mut points = Vec::new();
        let (mut acked, mut failed) = (0usize, 0usize);
        let push = |points: &mut Vec<CrashPoint>, model: &DurabilityModel, after: Option<u64>, a, f| {
            let index = points.len();
            points.push(CrashPoint {
                index,
                after_event: after,
                writes_done: model.writes(),
                durable_upto: model.durable_upto(),
                acked_flushes: a,
                failed_flushes: f,
            });
        };
        push(&mut points, &model, None, 0, 0);
        for e in log.events() {
            if e.device.as_deref() != Some(device) {
                continue;
            }
            if let EventKind::Crash { .. } = e.kind {
                break;
            }
            if let EventKind::DeviceAdded { folio_pages, .. } = e.kind {
                model = model.with_folio_pages(folio_pages);
            }
            let moved = model.apply(&e.kind, &mut zero_prior);
            match &e.kind {
                EventKind::GuestWrite { .. } => push(&mut points, &model, Some(e.seq), acked, failed),
                EventKind::Device(DeviceEvent::RequestCompleted { .. }) if moved => {
                    push(&mut points, &model, Some(e.seq), acked, failed)
                }
                EventKind::FlushReturned { ok, .. } => {
                    if *ok {
                        acked += 1;
                    } else {
                        failed += 1;
                    }
                    push(&mut points, &model, Some(e.seq), acked, failed);
                }
                _ => {}
            }
        }
        WriteHistory { device: device.to_string(), model, points }
    }

    /// The same history without the crash points before event `seq` (a
    /// preamble that is no part of the run explored, such as a recorded
    /// file's content at the start); the points left are renumbered from 0.
    pub fn starting_at_event(mut self, seq: u64) -> WriteHistory {
        self.points.retain(|p| p.after_event.is_some_and(|e| e >= seq));
        for (i, p) in self.points.iter_mut().enumerate() {
            p.index = i;
        }
        self
    }

    /// The device.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Size of the device in bytes.
    pub fn size(&self) -> u64 {
        self.model.size()
    }

    /// The durability model behind the history.
    pub fn model(&self) -> &DurabilityModel {
        &self.model
    }

    /// The crash points, in order.
    pub fn points(&self) -> &[CrashPoint] {
        &self.points
    }

    /// Number of writes.
    pub fn writes(&self) -> usize {
        self.model.writes()
    }

    /// Pages written at least once.
    pub fn pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.model.pages()
    }

    /// All versions of a page, oldest first.
    pub fn versions(&self, page: u64) -> &[PageVersion] {
        self.model.versions(page)
    }

    /// The durable content of `page` at `point`: the last version written
    /// before the durability frontier (or the initial content), with its
    /// hash.
    pub fn base(&self, page: u64, point: &CrashPoint) -> (&[u8], u64) {
        self.model.base(page, point.durable_upto)
    }

    /// The versions of `page` that may or may not have reached the disk at
    /// `point`: those written after the durability frontier, oldest first.
    pub fn candidates(&self, page: u64, point: &CrashPoint) -> &[PageVersion] {
        self.model.candidates(page, point.durable_upto, point.writes_done)
    }

    /// Pages with at least one candidate at `point`, with their durable
    /// content and candidates.
    pub fn pending(&self, point: &CrashPoint) -> Vec<PendingPage<'_>> {
        self.model.pending(point.durable_upto, point.writes_done)
    }
}
