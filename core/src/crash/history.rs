//! The write history of one device, recovered from an event log.

use crate::device::DeviceEvent;
use crate::event::{EventKind, EventLog};
use crate::memory::{page_spans, PageSpan, PAGE_SIZE};
use crate::rng::fnv1a64;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One version of a page: its whole content after a write.
#[derive(Clone, Debug)]
pub struct PageVersion {
    /// Index of the write that produced it.
    pub write: usize,
    /// Content hash (FNV-1a).
    pub hash: u64,
    /// The 4 KiB content.
    pub data: Arc<[u8]>,
}

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

/// Everything the crash explorer needs about one device's run: the writes,
/// every version of every page they produced, and the crash points with
/// their durability frontier.
///
/// The flush promise (virtio spec): every write that completed before the
/// flush request was made available is durable once the used-ring entry for
/// it appears. So a write is *durable* once a flush request made available
/// after it has completed with status 0.
#[derive(Clone, Debug)]
pub struct WriteHistory {
    device: String,
    size: u64,
    versions: BTreeMap<u64, Vec<PageVersion>>,
    initial: BTreeMap<u64, PageVersion>,
    points: Vec<CrashPoint>,
    writes: usize,
}

static ZERO_PAGE: [u8; PAGE_SIZE as usize] = [0u8; PAGE_SIZE as usize];

impl WriteHistory {
    /// Builds the history of device `device` (of `size` bytes, initially all
    /// zeros) from a log. The history ends at the first crash in the log.
    pub fn from_log(log: &EventLog, device: &str, size: u64) -> Self {
        let mut current: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut versions: BTreeMap<u64, Vec<PageVersion>> = BTreeMap::new();
        let mut points = Vec::new();
        let mut covered: BTreeMap<u16, usize> = BTreeMap::new();
        let (mut writes, mut durable, mut acked, mut failed) = (0usize, 0usize, 0usize, 0usize);
        let push_point = |points: &mut Vec<CrashPoint>, after: Option<u64>, w, d, a, f| {
            let index = points.len();
            points.push(CrashPoint {
                index,
                after_event: after,
                writes_done: w,
                durable_upto: d,
                acked_flushes: a,
                failed_flushes: f,
            });
        };
        push_point(&mut points, None, 0, 0, 0, 0);
        for e in log.events() {
            if e.device.as_deref() != Some(device) {
                continue;
            }
            match &e.kind {
                EventKind::GuestWrite { offset, data, .. } => {
                    let data = &data.0;
                    for PageSpan { page, in_page, range } in page_spans(*offset, data.len()) {
                        let n = range.len();
                        let content = current.entry(page).or_insert_with(|| vec![0u8; PAGE_SIZE as usize]);
                        content[in_page..in_page + n].copy_from_slice(&data[range]);
                        versions.entry(page).or_default().push(PageVersion {
                            write: writes,
                            hash: fnv1a64(content),
                            data: Arc::from(content.as_slice()),
                        });
                    }
                    writes += 1;
                    push_point(&mut points, Some(e.seq), writes, durable, acked, failed);
                }
                EventKind::ChainAvailable { head, .. } => {
                    covered.insert(*head, writes);
                }
                EventKind::Device(DeviceEvent::RequestCompleted { head, status: Some(0), .. }) => {
                    if let Some(&w) = covered.get(head) {
                        if w > durable {
                            durable = w;
                            push_point(&mut points, Some(e.seq), writes, durable, acked, failed);
                        }
                    }
                }
                EventKind::FlushReturned { ok, .. } => {
                    if *ok {
                        acked += 1;
                    } else {
                        failed += 1;
                    }
                    push_point(&mut points, Some(e.seq), writes, durable, acked, failed);
                }
                EventKind::Crash { .. } => break,
                _ => {}
            }
        }
        let initial = BTreeMap::new();
        WriteHistory { device: device.to_string(), size, versions, initial, points, writes }
    }

    /// The device.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Size of the device in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The crash points, in order.
    pub fn points(&self) -> &[CrashPoint] {
        &self.points
    }

    /// Number of writes.
    pub fn writes(&self) -> usize {
        self.writes
    }

    /// Pages written at least once.
    pub fn pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.versions.keys().copied()
    }

    /// All versions of a page, oldest first.
    pub fn versions(&self, page: u64) -> &[PageVersion] {
        self.versions.get(&page).map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// The durable content of `page` at `point`: the last version written
    /// before the durability frontier (or the initial content).
    pub fn base(&self, page: u64, point: &CrashPoint) -> (&[u8], u64) {
        let v = self.versions(page);
        let n = v.partition_point(|x| x.write < point.durable_upto);
        if n == 0 {
            match self.initial.get(&page) {
                Some(p) => (&p.data, p.hash),
                None => (&ZERO_PAGE, zero_hash()),
            }
        } else {
            (&v[n - 1].data, v[n - 1].hash)
        }
    }

    /// The versions of `page` that may or may not have reached the disk at
    /// `point`: those written after the durability frontier, oldest first.
    pub fn candidates(&self, page: u64, point: &CrashPoint) -> &[PageVersion] {
        let v = self.versions(page);
        let lo = v.partition_point(|x| x.write < point.durable_upto);
        let hi = v.partition_point(|x| x.write < point.writes_done);
        &v[lo..hi]
    }

    /// Pages with at least one candidate at `point`, with their candidates.
    pub fn pending(&self, point: &CrashPoint) -> Vec<(u64, &[PageVersion])> {
        self.versions.keys().map(|&p| (p, self.candidates(p, point))).filter(|(_, c)| !c.is_empty()).collect()
    }
}

fn zero_hash() -> u64 {
    use std::sync::OnceLock;
    static H: OnceLock<u64> = OnceLock::new();
    *H.get_or_init(|| fnv1a64(&ZERO_PAGE))
}
