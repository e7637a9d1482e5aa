//! pmem-core: a platform-independent simulation of the virtio-pmem device.
//!
//! The layers, top to bottom:
//! - [`guest`]: the guest driver, after Linux `nd_virtio`;
//! - [`queue`]: the split virtqueue, stored in guest-memory bytes;
//! - [`device`]: the virtio-pmem device (parse → state machine);
//! - [`host`]: the host side — the backing file behind the DAX window;
//! - [`memory`]: sparse guest RAM and the [`memory::GuestMemory`] trait;
//! - [`pmem_window`]: the machine's guest-physical map, RAM plus one DAX
//!   window per device over its host backend;
//! - [`trace`]: recordings of real programs as scenarios;
//! - [`sim`]: the deterministic machine that runs them in logical time from
//!   one seed, writing an [`event`] log.
//!
//! The device and the host each emit their own event type
//! ([`device::DeviceEvent`], [`host::HostEvent`]) and know nothing of the
//! log; [`event`] collects them. [`size`] reads and writes sizes as QEMU does,
//! for every front end. [`budget`] owns every limit on what outside input
//! may make pmemlab hold; [`json`] refuses duplicate keys in JSON read from
//! outside.
//!
//! The crate is pure: no I/O, no wall clock, no threads, no global RNG, and
//! no `unsafe`. It builds for `wasm32-unknown-unknown`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod budget;
pub mod crash;
pub mod device;
pub mod durability;
pub mod event;
pub mod guest;
pub mod host;
pub mod json;
pub mod memory;
pub mod pmem_window;
pub mod queue;
pub mod rng;
pub mod scenario;
pub mod sim;
pub mod size;
pub mod time;
pub mod trace;
pub mod workload;

/// Imports used by workload modules.
pub(crate) mod machine_prelude {
    pub use crate::sim::{Machine, MachineError};
}

#[cfg(all(feature = "rust-vmm", not(target_arch = "wasm32")))]
pub mod vmm;
