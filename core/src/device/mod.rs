//! The virtio-pmem device (virtio device type 27).
//!
//! Three layers, as in cloud-hypervisor and Firecracker:
//! 1. [`request::parse`] — pure: reads and validates a popped chain, returns
//!    a [`Request`] or a typed [`RequestError`];
//! 2. [`PmemDevice`] — the state machine: pops chains, answers every one of
//!    them (malformed ones included), asks the host for syncs and completes
//!    requests when they finish, emitting [`DeviceEvent`]s into any
//!    `Extend<DeviceEvent>` (a `Vec<DeviceEvent>`, or the machine's
//!    `Vec<EventKind>`);
//! 3. the host backend ([`crate::host::HostBackend`]) does the sync.
//!
//! # Failure status
//!
//! The virtio spec says `ret` is 0 on success and -1 on failure; QEMU,
//! cloud-hypervisor and crosvm write 1 (EIO), Firecracker -1; Linux treats any
//! non-zero value as -EIO. pmemlab writes **-1 (`0xFFFF_FFFF`) by default**,
//! because the spec is the contract a driver author reads, and a driver that
//! tests `ret == -1` must work against us. [`FailureStatus::Qemu`] switches a
//! device to QEMU's 1, to show that Linux does not care.
//!
//! # VMM personalities
//!
//! A device configured with a [`Vmm`] ([`PmemConfig::vmm`]) behaves as that
//! VMM's host side ([`personality`]): queue size, failure status, chains
//! popped per notification, what an empty queue at a notification does,
//! one host sync per request or per batch. Without one it keeps the generic
//! behaviour described here. A Firecracker device may have Firecracker's
//! [`rate_limiter`] ([`PmemConfig::rate_limiter`]): a notification it
//! throttles is handled when the limiter's timer fires
//! ([`PmemDevice::admit_notification`], [`PmemDevice::rate_limiter_timer`]).
//!
//! # Bad input
//!
//! Like cloud-hypervisor, every chain that can be returned is returned: a
//! malformed chain goes back with used length 0 and no status written (its
//! writable part cannot be trusted); an unknown request type and a failed host
//! sync get the failure status and used length 4. A head that is not a valid
//! descriptor index cannot be returned; that is logged. A corrupt available
//! ring (an index more than the queue size ahead) cannot be processed at all:
//! the device sets `DEVICE_NEEDS_RESET` (as QEMU's `virtio_error` does) and
//! stops processing until the driver resets it. Nothing panics.

mod config;
mod event;
pub mod personality;
mod pmem;
pub mod rate_limiter;
pub mod request;

pub use config::{
    ConfigSpace, DeviceStatus, FailureStatus, PmemConfig, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, VIRTIO_ID_PMEM,
    VIRTIO_PMEM_F_SHMEM_REGION,
};
pub use event::DeviceEvent;
pub use personality::{HostSide, Vmm};
pub use pmem::{DeviceStats, PendingFlush, PmemDevice};
pub use rate_limiter::{RateLimiterConfig, Throttle, TokenBucketConfig};
pub use request::{Request, RequestError, RequestKind, VIRTIO_PMEM_REQ_TYPE_FLUSH};

#[cfg(test)]
mod personality_tests;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

/// Errors of device configuration and negotiation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum DeviceError {
    /// The driver accepted a feature the device does not offer.
    #[error("driver accepted features {accepted:#x} but the device offers only {offered:#x}")]
    UnofferedFeatures {
        /// Feature bits accepted.
        accepted: u64,
        /// Feature bits offered.
        offered: u64,
    },
    /// A modern device requires VIRTIO_F_VERSION_1.
    #[error("driver did not accept VIRTIO_F_VERSION_1; this device is virtio 1.x only")]
    NoVersion1,
    /// The region size is not usable.
    #[error("device size {size} is invalid: it must be a non-zero multiple of 4096 bytes")]
    BadSize {
        /// The size given.
        size: u64,
    },
    /// A rate limiter on a device whose VMM has none.
    #[error(
        "a rate limiter is Firecracker's (its pmem device has one since v1.16); this device's VMM is {}, so give it vmm \"firecracker\" or no rate limiter",
        vmm.map_or("pmemlab's generic host side".to_string(), |v| format!("\"{v}\""))
    )]
    RateLimiterNotFirecracker {
        /// The device's VMM (`None`: generic).
        vmm: Option<Vmm>,
    },
    /// The region start is not aligned.
    #[error("device start {start:#x} is not aligned to 4096 bytes")]
    BadStart {
        /// The start given.
        start: u64,
    },
}
