//! Feature bits, configuration space and device status of virtio-pmem.

use super::personality::{HostSide, Vmm};
use super::rate_limiter::RateLimiterConfig;
use super::DeviceError;
use crate::memory::{GuestAddress, PAGE_SIZE};
use serde::{Deserialize, Serialize};

/// Virtio device id of pmem.
pub const VIRTIO_ID_PMEM: u32 = 27;
/// Feature bit 0: the region is announced as shared-memory region 0.
pub const VIRTIO_PMEM_F_SHMEM_REGION: u64 = 1 << 0;
/// Feature bit 28: indirect descriptors.
pub const VIRTIO_F_INDIRECT_DESC: u64 = 1 << 28;
/// Feature bit 32: virtio 1.x.
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;

/// The status value a failed request gets (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureStatus {
    /// -1 (`0xFFFF_FFFF`), as the virtio spec and Firecracker.
    #[default]
    Spec,
    /// 1 (EIO), as QEMU, cloud-hypervisor and crosvm.
    Qemu,
}

impl FailureStatus {
    /// The little-endian `ret` value written.
    pub fn value(self) -> u32 {
        match self {
            FailureStatus::Spec => u32::MAX,
            FailureStatus::Qemu => 1,
        }
    }
}

/// Configuration of one virtio-pmem device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PmemConfig {
    /// Device id (QEMU's `id=`).
    pub id: String,
    /// Guest-physical start of the region.
    pub start: GuestAddress,
    /// Size of the region in bytes.
    pub size: u64,
    /// Offer VIRTIO_PMEM_F_SHMEM_REGION.
    pub shmem_region: bool,
    /// Offer VIRTIO_F_INDIRECT_DESC.
    pub indirect_desc: bool,
    /// Guest writes refused (QEMU's `readonly=on`).
    pub readonly: bool,
    /// Status value of failed requests (for a device without a VMM; a named
    /// VMM writes its own).
    pub failure_status: FailureStatus,
    /// The VMM whose host side the device reproduces; `None` keeps pmemlab's
    /// generic host side ([`HostSide::generic`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmm: Option<Vmm>,
    /// Firecracker's rate limiter of flushes (Firecracker only; `None`, the
    /// default, does not limit, as Firecracker without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limiter: Option<RateLimiterConfig>,
}

impl PmemConfig {
    /// A device named `id` at `start` of `size` bytes with default options.
    pub fn new(id: &str, start: GuestAddress, size: u64) -> Self {
        PmemConfig {
            id: id.to_string(),
            start,
            size,
            shmem_region: false,
            indirect_desc: true,
            readonly: false,
            failure_status: FailureStatus::Spec,
            vmm: None,
            rate_limiter: None,
        }
    }

    /// The host-side knobs: the VMM's, or the generic ones.
    pub fn host_side(&self) -> HostSide {
        match self.vmm {
            Some(v) => v.host_side(),
            None => HostSide::generic(self.failure_status),
        }
    }

    /// Checks size and alignment, and that only Firecracker has a rate
    /// limiter.
    pub fn validate(&self) -> Result<(), DeviceError> {
        if self.rate_limiter.is_some() && self.vmm != Some(Vmm::Firecracker) {
            return Err(DeviceError::RateLimiterNotFirecracker { vmm: self.vmm });
        }
        if self.size == 0 || !self.size.is_multiple_of(PAGE_SIZE) {
            return Err(DeviceError::BadSize { size: self.size });
        }
        if !self.start.0.is_multiple_of(PAGE_SIZE) {
            return Err(DeviceError::BadStart { start: self.start.0 });
        }
        Ok(())
    }

    /// Feature bits the device offers.
    pub fn offered_features(&self) -> u64 {
        let mut f = VIRTIO_F_VERSION_1;
        if self.shmem_region {
            f |= VIRTIO_PMEM_F_SHMEM_REGION;
        }
        if self.indirect_desc {
            f |= VIRTIO_F_INDIRECT_DESC;
        }
        f
    }
}

/// The 16-byte configuration space: `le64 start; le64 size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigSpace {
    /// Guest-physical start of the region (0 with SHMEM_REGION).
    pub start: u64,
    /// Size of the region (0 with SHMEM_REGION).
    pub size: u64,
}

impl ConfigSpace {
    /// Size of the configuration space in bytes.
    pub const LEN: usize = 16;

    /// The little-endian bytes.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.start.to_le_bytes());
        b[8..].copy_from_slice(&self.size.to_le_bytes());
        b
    }

    /// A driver's read of `data.len()` bytes at `offset`; bytes beyond the
    /// space read as zero (as cloud-hypervisor does). Returns false when part
    /// of the read was out of range.
    pub fn read(&self, offset: u64, data: &mut [u8]) -> bool {
        let bytes = self.to_bytes();
        let mut in_range = true;
        for (i, out) in data.iter_mut().enumerate() {
            match offset.checked_add(i as u64).filter(|&p| p < Self::LEN as u64) {
                Some(p) => *out = bytes[p as usize],
                None => {
                    *out = 0;
                    in_range = false;
                }
            }
        }
        in_range
    }
}

/// The virtio device status register.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceStatus(pub u8);

impl DeviceStatus {
    /// The guest noticed the device.
    pub const ACKNOWLEDGE: u8 = 1;
    /// The guest has a driver for it.
    pub const DRIVER: u8 = 2;
    /// The driver is ready.
    pub const DRIVER_OK: u8 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u8 = 8;
    /// The device hit an error it cannot recover from without a reset.
    pub const DEVICE_NEEDS_RESET: u8 = 64;
    /// The guest gave up on the device.
    pub const FAILED: u8 = 128;

    /// True when `bit` is set.
    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_space_is_little_endian_start_then_size() {
        let c = ConfigSpace { start: 0x1_0000_0000, size: 4 << 30 };
        let b = c.to_bytes();
        assert_eq!(&b[..8], &[0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(u64::from_le_bytes(b[8..].try_into().unwrap()), 4 << 30);
        let mut part = [0xAA; 4];
        assert!(c.read(4, &mut part));
        assert_eq!(part, [1, 0, 0, 0]);
        let mut over = [0xAA; 4];
        assert!(!c.read(14, &mut over));
        assert_eq!(over, [0, 0, 0, 0]);
        assert!(!c.read(u64::MAX, &mut over));
    }

    #[test]
    fn sizes_and_features() {
        let mut c = PmemConfig::new("nv1", GuestAddress(1 << 32), 4096);
        c.validate().unwrap();
        assert_eq!(c.offered_features() & VIRTIO_F_VERSION_1, VIRTIO_F_VERSION_1);
        assert_eq!(c.offered_features() & VIRTIO_PMEM_F_SHMEM_REGION, 0);
        c.shmem_region = true;
        assert_ne!(c.offered_features() & VIRTIO_PMEM_F_SHMEM_REGION, 0);
        c.size = 4097;
        assert_eq!(c.validate(), Err(DeviceError::BadSize { size: 4097 }));
        c.size = 0;
        assert!(c.validate().is_err());
        c.size = 4096;
        c.start = GuestAddress(12);
        assert_eq!(c.validate(), Err(DeviceError::BadStart { start: 12 }));
        assert_eq!(FailureStatus::Spec.value(), 0xFFFF_FFFF);
        assert_eq!(FailureStatus::Qemu.value(), 1);
    }
}
