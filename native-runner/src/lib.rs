//! `pmemlab`: the native runner of the virtio-pmem laboratory.
//!
//! The platform-independent [`pmem_core`] simulates the guest, the device's
//! virtqueue and the host; this crate connects it to the real host:
//!
//! - [`backend`]: [`FileBackend`](backend::FileBackend), the backing file of a
//!   device mapped through vm-memory (as cloud-hypervisor maps it) and synced
//!   with a real `fdatasync`;
//! - [`cachestat`]: the Linux `cachestat(2)` system call — how many pages of a
//!   file are cached, dirty, under writeback, evicted;
//! - [`fs`]: which file system a path lives on (tmpfs has no disk behind it);
//! - [`inspect`]: `pmemlab inspect FILE…`, a `fincore` built on cachestat;
//! - [`qemu`]: `pmemlab qemu ARGS…`, QEMU's own `-object`/`-device` syntax
//!   and a monitor prompt driving a [`pmem_core::sim::Machine`];
//! - [`twin`]: [`TwinBackend`](twin::TwinBackend), a real file and the
//!   page-cache model of it in lockstep;
//! - [`crash_image`]: crash images of a real file, written to new files from
//!   pmem-core's durability model of the device;
//! - [`run`]: `pmemlab run SCENARIO`, a scenario on real files with the
//!   model and the kernel side by side;
//! - [`explore`]: `pmemlab explore`, crash-consistency campaigns with a
//!   checker command, in parallel, resumable, with JSON and HTML reports;
//! - [`merge`]: `pmemlab merge REPORT…`, the shard reports of a campaign
//!   combined into the report of one run;
//! - [`soak`]: `pmemlab soak FILE`, stores and flushes without end, for the
//!   SIGKILL reality check;
//! - [`output`]: report files written atomically, never replacing a file
//!   unasked; [`created`]: the guard that removes the files a failed
//!   command created;
//! - [`report`]: every command's output, as readable text or one JSON
//!   document (`--json`);
//! - [`demo`]: `pmemlab demo`, the built-in demonstration;
//! - [`limit`]: `--memory-limit`, the memory budget of a command.
//!
//! User mistakes (a bad option, a file of the wrong size, a missing
//! directory) come back as errors whose `Display` is one plain sentence; the
//! binary prints it on one line and exits with code 2.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod backend;
pub mod cachestat;
pub mod crash_image;
pub mod created;
pub mod demo;
pub mod explore;
pub mod fs;
pub mod inspect;
pub mod limit;
pub mod merge;
pub mod oracle;
pub mod output;
pub mod qemu;
pub mod record;
pub mod report;
pub mod run;
pub mod serve;
pub mod soak;
pub mod sqlite;
pub mod twin;
