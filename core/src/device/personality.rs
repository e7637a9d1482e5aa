//! VMM personalities: how each VMM's virtio-pmem host side handles its
//! queue, written from that VMM's own source (see `docs/personalities.md`
//! for the files and versions read).
//!
//! A [`Vmm`] names a VMM; [`HostSide`] holds the knobs its code implies, and
//! the device state machine ([`super::PmemDevice`]) reads only the knobs. A
//! device configured without a VMM ([`PmemConfig::vmm`](super::PmemConfig)
//! `None`) keeps pmemlab's generic host side ([`HostSide::generic`]): the
//! model every scenario written before personalities existed runs on.

use super::config::FailureStatus;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A VMM whose virtio-pmem host side pmemlab reproduces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Vmm {
    /// QEMU (`hw/virtio/virtio-pmem.c`): one element popped per
    /// notification, synchronously in the notifying vCPU; fsync on a thread
    /// pool; an empty queue or an improper chain at a notification calls
    /// `virtio_error` (NEEDS_RESET, broken); queue 128; status 1. The seed's
    /// VMM, so the default.
    #[default]
    Qemu,
    /// cloud-hypervisor (`virtio-devices/src/pmem.rs`): pops until the queue
    /// is empty, `sync_all` per request, queue 256, status 1 (EIO).
    CloudHypervisor,
    /// Firecracker ≥ 1.14 (`src/vmm/src/devices/virtio/pmem/device.rs`):
    /// pops until empty, one `msync` of the whole file per notification whose
    /// result answers every request of the batch, queue 256, status -1.
    Firecracker,
    /// crosvm (`devices/src/virtio/pmem.rs`): pops until empty, one msync of
    /// the whole arena per request, queue 256, status 1 (EIO).
    Crosvm,
}

/// Every VMM, in the order the docs list them.
pub const ALL_VMMS: [Vmm; 4] = [Vmm::Qemu, Vmm::CloudHypervisor, Vmm::Firecracker, Vmm::Crosvm];

impl Vmm {
    /// The name scenarios and the CLI use (`"qemu"`, `"cloud-hypervisor"`,
    /// `"firecracker"`, `"crosvm"`).
    pub fn name(self) -> &'static str {
        match self {
            Vmm::Qemu => "qemu",
            Vmm::CloudHypervisor => "cloud-hypervisor",
            Vmm::Firecracker => "firecracker",
            Vmm::Crosvm => "crosvm",
        }
    }

    /// The host-side knobs this VMM's code implies.
    pub fn host_side(self) -> HostSide {
        let until_empty = HostSide { queue_size: 256, named: true, ..HostSide::generic(FailureStatus::Qemu) };
        match self {
            Vmm::Qemu => HostSide {
                queue_size: 128,
                pops: PopPolicy::OnePerNotify,
                synchronous_notify: true,
                empty_notify: EmptyNotify::NeedsReset,
                broken_chain: BrokenChain::NeedsReset,
                unknown_type: UnknownType::Flush,
                ..until_empty
            },
            Vmm::CloudHypervisor | Vmm::Crosvm => until_empty,
            Vmm::Firecracker => HostSide {
                failure_status: FailureStatus::Spec,
                unknown_type: UnknownType::ReturnEmpty,
                sync: SyncGranularity::PerBatch,
                ..until_empty
            },
        }
    }
}

impl fmt::Display for Vmm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A VMM name that is not one of [`ALL_VMMS`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a VMM pmemlab models; expected one of \"qemu\", \"cloud-hypervisor\", \"firecracker\", \"crosvm\""
)]
pub struct UnknownVmm(pub String);

impl FromStr for Vmm {
    type Err = UnknownVmm;

    fn from_str(s: &str) -> Result<Vmm, UnknownVmm> {
        ALL_VMMS.into_iter().find(|v| v.name() == s).ok_or_else(|| UnknownVmm(s.to_string()))
    }
}

/// How many chains one notification makes the device pop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PopPolicy {
    /// One (QEMU's `virtio_pmem_flush` calls `virtqueue_pop` once).
    OnePerNotify,
    /// Until the available ring is empty.
    UntilEmpty,
}

/// What a notification that finds the available ring empty does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EmptyNotify {
    /// `virtio_error("virtio-pmem missing request data")`: DEVICE_NEEDS_RESET
    /// and a broken device that completes nothing more (QEMU).
    NeedsReset,
    /// Nothing: a spurious notification is harmless.
    Ignore,
}

/// What a chain the device cannot use as a request (no readable or no
/// writable part, a bad descriptor) does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BrokenChain {
    /// `virtio_error("virtio-pmem request not proper")`, the element is
    /// detached, not returned (QEMU).
    NeedsReset,
    /// The head goes back with used length 0 (cloud-hypervisor, Firecracker,
    /// crosvm).
    ReturnEmpty,
}

/// What a request of an unknown type gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnknownType {
    /// It is a flush: the device never reads the type (QEMU).
    Flush,
    /// The failure status, used length 4 (cloud-hypervisor, crosvm).
    FailureStatus,
    /// Used length 0, no status (Firecracker).
    ReturnEmpty,
}

/// How many host syncs a batch of flushes costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncGranularity {
    /// One sync per flush request.
    PerRequest,
    /// One sync per notification; its result answers every flush popped in
    /// that notification (Firecracker's cached `msync` result).
    PerBatch,
}

/// The knobs of a device's host side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSide {
    /// Virtqueue size the VMM offers.
    pub queue_size: u16,
    /// Status value of a failed request.
    pub failure_status: FailureStatus,
    /// Chains popped per notification.
    pub pops: PopPolicy,
    /// The device runs inside the guest's notification (QEMU's
    /// virtio-pmem-pci has no ioeventfd: the handler runs in the notifying
    /// vCPU thread before the kick returns), rather than some time later.
    pub synchronous_notify: bool,
    /// An empty queue at a notification.
    pub empty_notify: EmptyNotify,
    /// A chain that is no request.
    pub broken_chain: BrokenChain,
    /// A request of an unknown type.
    pub unknown_type: UnknownType,
    /// Host syncs per batch of flushes.
    pub sync: SyncGranularity,
    /// A named VMM (false for the generic host side): logs ignored spurious
    /// notifications, which the generic host side leaves out of its log.
    pub named: bool,
}

impl HostSide {
    /// pmemlab's generic host side, the model from before personalities:
    /// pops until empty, ignores an empty queue silently, returns broken
    /// chains with length 0, answers unknown types with `failure_status`,
    /// one sync per request, and runs some time after the notification.
    /// The queue size is the machine's.
    pub fn generic(failure_status: FailureStatus) -> HostSide {
        HostSide {
            queue_size: 128,
            failure_status,
            pops: PopPolicy::UntilEmpty,
            synchronous_notify: false,
            empty_notify: EmptyNotify::Ignore,
            broken_chain: BrokenChain::ReturnEmpty,
            unknown_type: UnknownType::FailureStatus,
            sync: SyncGranularity::PerRequest,
            named: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_a_wrong_one_says_what_is_accepted() {
        for v in ALL_VMMS {
            assert_eq!(v.name().parse::<Vmm>(), Ok(v));
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(v.name()));
        }
        let e = "kvmtool".parse::<Vmm>().unwrap_err().to_string();
        assert!(e.contains("'kvmtool'") && e.contains("\"cloud-hypervisor\""), "{e}");
        assert_eq!(Vmm::default(), Vmm::Qemu);
    }

    #[test]
    fn each_vmm_has_the_knobs_of_its_source() {
        let q = Vmm::Qemu.host_side();
        assert_eq!((q.queue_size, q.failure_status.value()), (128, 1));
        assert_eq!(
            (q.pops, q.empty_notify, q.synchronous_notify),
            (PopPolicy::OnePerNotify, EmptyNotify::NeedsReset, true)
        );
        let ch = Vmm::CloudHypervisor.host_side();
        assert_eq!((ch.queue_size, ch.failure_status.value(), ch.pops), (256, 1, PopPolicy::UntilEmpty));
        assert_eq!((ch.empty_notify, ch.sync), (EmptyNotify::Ignore, SyncGranularity::PerRequest));
        let fc = Vmm::Firecracker.host_side();
        assert_eq!((fc.queue_size, fc.failure_status.value(), fc.sync), (256, u32::MAX, SyncGranularity::PerBatch));
        let cv = Vmm::Crosvm.host_side();
        assert_eq!((cv.queue_size, cv.failure_status.value(), cv.unknown_type), (256, 1, UnknownType::FailureStatus));
        assert!(!HostSide::generic(FailureStatus::Spec).named);
    }
}
