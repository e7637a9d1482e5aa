//! Configuration of a simulated machine and its devices.

use super::device_memory::DeviceMemoryConfig;
use crate::device::{FailureStatus, RateLimiterConfig, Vmm};
use crate::event::LogRetention;
use crate::guest::DriverPersonality;
use crate::host::{BackingMode, PageCacheConfig, TearGranularity};
use crate::memory::GuestAddress;
use serde::{Deserialize, Serialize};

/// Knobs of a simulated machine, with documented defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// The one seed every random choice derives from.
    pub seed: u64,
    /// Guest RAM in bytes (default 1 GiB; sparse, costs nothing untouched).
    pub ram_size: u64,
    /// Virtqueue size (default 128, as QEMU).
    pub queue_size: u16,
    /// Delay from a notification to the device running, min/max ns
    /// (default 1–5 µs).
    pub notify_latency_ns: (u64, u64),
    /// Delay from an interrupt to the guest handler, min/max ns (default
    /// 1–3 µs).
    pub interrupt_latency_ns: (u64, u64),
    /// Duration of a host sync of the simple backend, ns (default 2 ms).
    pub sync_latency_ns: u64,
    /// Host page-cache knobs (Linux defaults).
    pub host: PageCacheConfig,
    /// How pages under writeback tear on a power failure (default 512 B).
    pub tear: TearGranularity,
    /// How much of the event log the machine keeps (default: all of it).
    pub log: LogRetention,
    /// Where memory devices go: the machine type, `slots` and `maxmem`
    /// (default: a pc machine with no `maxmem` limit).
    pub device_memory: DeviceMemoryConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 0,
            ram_size: 1 << 30,
            queue_size: 128,
            notify_latency_ns: (1_000, 5_000),
            interrupt_latency_ns: (1_000, 3_000),
            sync_latency_ns: 2_000_000,
            host: PageCacheConfig::default(),
            tear: TearGranularity::default(),
            log: LogRetention::All,
            device_memory: DeviceMemoryConfig::default(),
        }
    }
}

/// What kind of persistent memory the guest is given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceMode {
    /// virtio-pmem: a guest flush becomes a host fsync of the backing file.
    #[default]
    VirtioPmem,
    /// An emulated NVDIMM on a regular host file: the guest believes its
    /// stores are durable once flushed from the CPU cache, but nothing tells
    /// the host to sync — writes persist only when the host's background
    /// writeback happens to run.
    EmulatedNvdimm,
    /// A real NVDIMM: stores are durable once out of the CPU cache.
    RealNvdimm,
}

impl DeviceMode {
    /// How the host maps the backing file of a device of this mode with
    /// `share=on` (`share`) or `share=off`: a real NVDIMM is persistent
    /// whatever `share` says (there is no page cache in between); otherwise
    /// `share=off` is a private copy-on-write mapping and `share=on` a
    /// shared one. The one place this rule lives: the simulated machine and
    /// the native runner's real-file devices both ask here.
    pub fn backing_mode(self, share: bool) -> BackingMode {
        match (self, share) {
            (DeviceMode::RealNvdimm, _) => BackingMode::Persistent,
            (_, false) => BackingMode::Private,
            (_, true) => BackingMode::Shared,
        }
    }
}

/// How to plug in one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSpec {
    /// Device id.
    pub id: String,
    /// Size in bytes (a non-zero multiple of 4096).
    pub size: u64,
    /// Guest-physical start (QEMU's `memaddr`); placed first-fit in the
    /// device-memory region when `None`.
    pub start: Option<GuestAddress>,
    /// The backend's `align=`; `None`: its 4 KiB pages.
    #[serde(default)]
    pub align: Option<u64>,
    /// Offer VIRTIO_PMEM_F_SHMEM_REGION.
    pub shmem_region: bool,
    /// Offer VIRTIO_F_INDIRECT_DESC.
    pub indirect_desc: bool,
    /// `readonly=on`.
    pub readonly: bool,
    /// Failure status value.
    pub failure_status: FailureStatus,
    /// Kind of device.
    pub mode: DeviceMode,
    /// `share=on` (default) or `share=off` (private copy-on-write mapping:
    /// nothing ever reaches the file).
    pub share: bool,
    /// The VMM whose host side the device reproduces (its queue size and
    /// failure status replace [`SimConfig::queue_size`] and
    /// `failure_status`); `None` (default) keeps the generic host side.
    pub vmm: Option<Vmm>,
    /// The guest driver's version; `None` (default) keeps the generic
    /// driver.
    pub driver: Option<DriverPersonality>,
    /// Firecracker's rate limiter of flushes (Firecracker only); `None`
    /// (default) does not limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limiter: Option<RateLimiterConfig>,
}

impl DeviceSpec {
    /// A device `id` of `size` bytes with default options.
    pub fn new(id: &str, size: u64) -> Self {
        DeviceSpec {
            id: id.to_string(),
            size,
            start: None,
            align: None,
            shmem_region: false,
            indirect_desc: true,
            readonly: false,
            failure_status: FailureStatus::Spec,
            mode: DeviceMode::VirtioPmem,
            share: true,
            vmm: None,
            driver: None,
            rate_limiter: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backing_mode_follows_the_device_mode_and_share() {
        use BackingMode::*;
        use DeviceMode::*;
        let table = [
            (VirtioPmem, true, Shared),
            (VirtioPmem, false, Private),
            (EmulatedNvdimm, true, Shared),
            (EmulatedNvdimm, false, Private),
            (RealNvdimm, true, Persistent),
            (RealNvdimm, false, Persistent),
        ];
        for (mode, share, want) in table {
            assert_eq!(mode.backing_mode(share), want, "{mode:?} share={share}");
        }
    }
}
