//! The event timeline and the journey of a flush request through the
//! layers (application → driver → available ring → device → host fsync →
//! used ring → interrupt → application), both read from the event log.

use pmem_core::device::DeviceEvent;
use pmem_core::event::{Event, EventKind, RequestId};
use pmem_core::host::HostEvent;
use pmem_core::time::SimTime;

/// How an event is drawn: its kind of actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// The guest application or driver.
    Guest,
    /// The virtio-pmem device and its rings.
    Device,
    /// The host page cache and disk.
    Host,
    /// Failures and operator actions.
    Fault,
}

impl Lane {
    /// CSS class key.
    pub fn key(self) -> &'static str {
        match self {
            Lane::Guest => "guest",
            Lane::Device => "device",
            Lane::Host => "host",
            Lane::Fault => "fault",
        }
    }
}

/// The lane of an event.
pub fn lane(kind: &EventKind) -> Lane {
    use EventKind::*;
    match kind {
        GuestWrite { .. }
        | GuestRead { .. }
        | FlushRequested { .. }
        | FlushParked { .. }
        | ChainAvailable { .. }
        | Notified
        | FlushReturned { .. }
        | FlushWoken { .. }
        | NvdimmFlush { .. }
        | MapSync { .. }
        | DriverFault { .. } => Lane::Guest,
        Host(_) | Device(DeviceEvent::HostSyncFinished { .. }) => Lane::Host,
        Crash { .. } | FaultInjected { .. } | UnplugRefused { .. } | Device(DeviceEvent::DeviceNeedsReset { .. }) => {
            Lane::Fault
        }
        _ => Lane::Device,
    }
}

/// One stage of a flush's journey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    /// What happens at this stage.
    pub label: &'static str,
    /// When it happened (`None`: not yet, or never).
    pub at: Option<(u64, SimTime)>,
}

/// The journey of one flush request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Journey {
    /// The request.
    pub request: RequestId,
    /// Its stages, in order.
    pub stages: Vec<Stage>,
}

/// The labels of a journey's stages.
pub const STAGES: [&str; 9] = [
    "application calls fsync",
    "driver puts the chain on the available ring",
    "driver notifies the device",
    "device pops the chain",
    "host fsync of the backing file starts",
    "host fsync finishes",
    "device writes status, puts the head on the used ring",
    "device interrupts the guest",
    "fsync returns to the application",
];

/// The journey of the latest flush request of device `id` in `events`.
pub fn last_flush_journey(events: &[Event], id: &str) -> Option<Journey> {
    let mine = |e: &&Event| e.device.as_deref() == Some(id);
    let (start, request) =
        events.iter().enumerate().rev().filter(|(_, e)| mine(e)).find_map(|(i, e)| match e.kind {
            EventKind::FlushRequested { request } => Some((i, request)),
            _ => None,
        })?;
    let mut stages: Vec<Stage> = STAGES.iter().map(|l| Stage { label: l, at: None }).collect();
    let mark = |stages: &mut Vec<Stage>, k: usize, e: &Event| {
        if stages[k].at.is_none() {
            stages[k].at = Some((e.seq, e.at));
        }
    };
    mark(&mut stages, 0, &events[start]);
    let mut head = None;
    let mut ticket = None;
    for e in events[start + 1..].iter().filter(mine) {
        match &e.kind {
            EventKind::ChainAvailable { request: r, head: h, .. } if *r == request => {
                head = Some(*h);
                mark(&mut stages, 1, e);
            }
            EventKind::Notified if head.is_some() => mark(&mut stages, 2, e),
            EventKind::Device(DeviceEvent::ChainPopped { head: h }) if head == Some(*h) && stages[2].at.is_some() => {
                mark(&mut stages, 3, e)
            }
            EventKind::Device(DeviceEvent::HostSyncStarted { head: h, ticket: t })
                if head == Some(*h) && stages[3].at.is_some() =>
            {
                ticket = Some(*t);
                mark(&mut stages, 4, e);
            }
            EventKind::Device(DeviceEvent::HostSyncFinished { ticket: t, .. }) if ticket == Some(*t) => {
                mark(&mut stages, 5, e)
            }
            EventKind::Device(DeviceEvent::RequestCompleted { head: h, .. })
                if head == Some(*h) && stages[3].at.is_some() =>
            {
                mark(&mut stages, 6, e)
            }
            EventKind::Device(DeviceEvent::Interrupt) if stages[6].at.is_some() => mark(&mut stages, 7, e),
            EventKind::FlushReturned { request: r, .. } if *r == request => {
                mark(&mut stages, 8, e);
                break;
            }
            EventKind::NvdimmFlush { request: r, .. } if *r == request => {
                stages.truncate(1);
                stages.push(Stage {
                    label: "NVDIMM: flushed in the guest, the host is never told",
                    at: Some((e.seq, e.at)),
                });
                break;
            }
            EventKind::Crash { .. } => break,
            _ => {}
        }
    }
    Some(Journey { request, stages })
}

/// True for the host events that only repeat per page what another event
/// says in bulk; a compact timeline may fold them.
pub fn is_page_detail(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Host(HostEvent::WritebackStarted { .. } | HostEvent::WritebackFinished { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmem_core::sim::{DeviceMode, DeviceSpec, Machine, SimConfig};

    #[test]
    fn a_completed_flush_passes_every_stage_in_order() {
        let mut m = Machine::new(SimConfig::default());
        m.add_device(DeviceSpec::new("nv1", 1 << 20)).unwrap();
        m.guest_write("nv1", 0, b"x").unwrap();
        let r = m.flush("nv1").unwrap();
        let half = last_flush_journey(m.log().events(), "nv1").unwrap();
        assert_eq!(half.request, r);
        assert!(half.stages[2].at.is_some() && half.stages[3].at.is_none(), "{half:?}");
        while m.flush_result("nv1", r).unwrap().is_none() && m.step() {}
        let j = last_flush_journey(m.log().events(), "nv1").unwrap();
        let seqs: Vec<u64> = j.stages.iter().map(|s| s.at.expect("every stage").0).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{j:?}");
    }

    #[test]
    fn an_nvdimm_flush_never_reaches_the_host() {
        let mut m = Machine::new(SimConfig::default());
        let mut spec = DeviceSpec::new("nv1", 1 << 20);
        spec.mode = DeviceMode::EmulatedNvdimm;
        m.add_device(spec).unwrap();
        m.flush("nv1").unwrap();
        let j = last_flush_journey(m.log().events(), "nv1").unwrap();
        assert_eq!(j.stages.len(), 2);
        assert!(j.stages[1].label.contains("never told"));
        assert!(last_flush_journey(m.log().events(), "nv2").is_none());
    }
}
