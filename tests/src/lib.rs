//! pmem-tests: integration and differential tests.
//!
//! The library holds what the test files and the benches share:
//! - [`action`]: the driver actions of the differential test — raw
//!   descriptor and ring writes (malformed ones included) and well-formed
//!   flushes, applied through the [`pmem_core::memory::GuestMemory`] trait;
//! - [`world`]: one "world" = guest memory + device-side queue + a
//!   [`pmem_core::device::PmemDevice`] + a [`pmem_core::host::SimpleBackend`],
//!   built over pmemlab's own split ring ([`world::OursWorld`]) or over
//!   rust-vmm's `virtio-queue` ([`world::TheirsWorld`]);
//! - [`snapshot`]: what is compared between two worlds, and the comparison.

pub mod action;
pub mod snapshot;
pub mod world;
