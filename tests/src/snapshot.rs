//! What the differential test compares between two worlds, and how.

use pmem_core::device::{DeviceEvent, RequestError};
use std::fmt::Write as _;

/// A device event with the details that may legitimately differ between the
/// two queue implementations taken out.
///
/// - A chain fault keeps only the head: our walker names the fault precisely,
///   the virtio-queue adapter reports `ChainError::Truncated`.
/// - `Interrupt` and `InterruptSuppressed` are one decision point: ours
///   honours `VIRTQ_AVAIL_F_NO_INTERRUPT`, virtio-queue does not (documented
///   in `pmem_core::vmm`); neither touches the rings or memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// A chain was taken off the available ring.
    ChainPopped {
        /// Its head.
        head: u16,
    },
    /// The queue rejected the chain (walker or buffer check).
    ChainRejected {
        /// Its head.
        head: u16,
    },
    /// The parser rejected the request.
    RequestRejected {
        /// Its head.
        head: u16,
        /// The parse error (memory errors reduced to "memory").
        error: String,
    },
    /// A flush was parsed.
    FlushParsed {
        /// Its head.
        head: u16,
    },
    /// A host sync started.
    HostSyncStarted {
        /// The waiting chain.
        head: u16,
        /// The sync.
        ticket: u64,
    },
    /// A host sync finished.
    HostSyncFinished {
        /// The sync.
        ticket: u64,
        /// Whether it succeeded.
        ok: bool,
    },
    /// A chain went back to the used ring.
    RequestCompleted {
        /// Its head.
        head: u16,
        /// Status written, if any.
        status: Option<u32>,
        /// Used length.
        used_len: u32,
    },
    /// A head could not be returned.
    HeadNotReturned {
        /// The head.
        head: u16,
    },
    /// The device set DEVICE_NEEDS_RESET.
    DeviceNeedsReset,
    /// The device decided whether to interrupt.
    InterruptDecision,
}

/// Reduces an event to what must be equal in both worlds.
pub fn observe(event: &DeviceEvent) -> Observed {
    match event {
        DeviceEvent::ChainPopped { head } => Observed::ChainPopped { head: *head },
        DeviceEvent::ChainRejected { head, .. } => Observed::ChainRejected { head: *head },
        DeviceEvent::RequestRejected { head, error } => {
            let error = match error {
                RequestError::Memory(_) => "memory".to_string(),
                other => format!("{other:?}"),
            };
            Observed::RequestRejected { head: *head, error }
        }
        DeviceEvent::FlushParsed { head } => Observed::FlushParsed { head: *head },
        DeviceEvent::HostSyncStarted { head, ticket } => Observed::HostSyncStarted { head: *head, ticket: ticket.0 },
        DeviceEvent::HostSyncFinished { ticket, result } => {
            Observed::HostSyncFinished { ticket: ticket.0, ok: result.is_ok() }
        }
        DeviceEvent::RequestCompleted { head, status, used_len } => {
            Observed::RequestCompleted { head: *head, status: *status, used_len: *used_len }
        }
        DeviceEvent::HeadNotReturned { head, .. } => Observed::HeadNotReturned { head: *head },
        DeviceEvent::DeviceNeedsReset { .. } | DeviceEvent::VirtioError { .. } => Observed::DeviceNeedsReset,
        // Only named VMM personalities (and Firecracker's rate limiter)
        // emit these; both worlds run the generic host side.
        DeviceEvent::NotifyIgnored
        | DeviceEvent::NotificationThrottled { .. }
        | DeviceEvent::RateLimiterOverConsumed { .. }
        | DeviceEvent::RateLimiterTimerFired => Observed::InterruptDecision,
        DeviceEvent::CompletionDropped { head } => Observed::HeadNotReturned { head: *head },
        DeviceEvent::Interrupt | DeviceEvent::InterruptSuppressed => Observed::InterruptDecision,
    }
}

/// A label for the outcome an event records, for coverage counts of the
/// generated cases (`None` for events that are not an outcome).
pub fn outcome_label(event: &DeviceEvent) -> Option<String> {
    let variant = |debug: String| debug.split([' ', '(', '{']).next().unwrap_or_default().to_string();
    match event {
        DeviceEvent::ChainRejected { error, .. } => Some(format!("chain rejected: {}", variant(format!("{error:?}")))),
        DeviceEvent::RequestRejected { error, .. } => {
            Some(format!("request rejected: {}", variant(format!("{error:?}"))))
        }
        DeviceEvent::RequestCompleted { status: Some(0), .. } => Some("completed: status 0".into()),
        DeviceEvent::RequestCompleted { status: Some(_), .. } => Some("completed: failure status".into()),
        DeviceEvent::RequestCompleted { status: None, .. } => Some("completed: no status".into()),
        DeviceEvent::HostSyncFinished { result: Err(_), .. } => Some("host sync failed".into()),
        DeviceEvent::HeadNotReturned { .. } => Some("head not returned".into()),
        DeviceEvent::DeviceNeedsReset { .. } => Some("device needs reset".into()),
        DeviceEvent::InterruptSuppressed => Some("interrupt suppressed".into()),
        _ => None,
    }
}

/// Everything compared between two worlds after a device run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// All bytes of guest RAM (`None` if the read failed).
    pub memory: Option<Vec<u8>>,
    /// The bytes of the used ring (`None` if the read failed).
    pub used_ring: Option<Vec<u8>>,
    /// `used.idx` as the driver reads it.
    pub used_idx: Option<u16>,
    /// The device's next available index.
    pub next_avail: u16,
    /// The device's next used index.
    pub next_used: u16,
    /// DEVICE_NEEDS_RESET is set.
    pub needs_reset: bool,
    /// The device's events, reduced by [`observe`].
    pub observed: Vec<Observed>,
    /// Outcome of every guest-memory access of the driver actions.
    pub accesses: Vec<bool>,
}

/// Compares two snapshots; the error names the first difference of each kind.
pub fn compare(ours: &Snapshot, theirs: &Snapshot) -> Result<(), String> {
    let mut report = String::new();
    let mut field = |name: &str, a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug, equal: bool| {
        if !equal {
            let _ = writeln!(report, "{name}: ours {a:?}, theirs {b:?}");
        }
    };
    field("used.idx", &ours.used_idx, &theirs.used_idx, ours.used_idx == theirs.used_idx);
    field("next_avail", &ours.next_avail, &theirs.next_avail, ours.next_avail == theirs.next_avail);
    field("next_used", &ours.next_used, &theirs.next_used, ours.next_used == theirs.next_used);
    field("needs_reset", &ours.needs_reset, &theirs.needs_reset, ours.needs_reset == theirs.needs_reset);
    if ours.accesses != theirs.accesses {
        let i = first_difference(&ours.accesses, &theirs.accesses);
        let _ = writeln!(
            report,
            "driver memory access #{i} differs: ours {:?}, theirs {:?}",
            ours.accesses.get(i),
            theirs.accesses.get(i)
        );
    }
    if ours.observed != theirs.observed {
        let i = first_difference(&ours.observed, &theirs.observed);
        let _ = writeln!(
            report,
            "device event #{i} differs: ours {:?}, theirs {:?}",
            ours.observed.get(i),
            theirs.observed.get(i)
        );
    }
    bytes("used ring", &ours.used_ring, &theirs.used_ring, &mut report);
    bytes("guest memory", &ours.memory, &theirs.memory, &mut report);
    if report.is_empty() {
        Ok(())
    } else {
        Err(report)
    }
}

fn first_difference<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()))
}

fn bytes(name: &str, ours: &Option<Vec<u8>>, theirs: &Option<Vec<u8>>, report: &mut String) {
    match (ours, theirs) {
        (Some(a), Some(b)) if a == b => {}
        (Some(a), Some(b)) => {
            let diffs: Vec<usize> = a.iter().zip(b).enumerate().filter(|(_, (x, y))| x != y).map(|(i, _)| i).collect();
            let i = first_difference(a, b);
            let _ = writeln!(
                report,
                "{name}: {} bytes differ (lengths {} and {}), first at offset {i:#x}: ours {:02x?}, theirs {:02x?}",
                diffs.len(),
                a.len(),
                b.len(),
                a.get(i),
                b.get(i)
            );
        }
        _ => {
            let _ = writeln!(report, "{name}: readable in ours {}, in theirs {}", ours.is_some(), theirs.is_some());
        }
    }
}
