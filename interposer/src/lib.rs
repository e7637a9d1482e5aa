//! `pmemlab-interpose`: the library `pmemlab record` loads into a program
//! with `LD_PRELOAD` to capture its stores and flushes to the backing files
//! of virtio-pmem devices (see `docs/programs.md`).
//!
//! It reads two variables at load time:
//!
//! | variable | value |
//! | --- | --- |
//! | `PMEMLAB_RECORD_DEVICES` | one device a line: `SIZE PATH` (bytes, then the file) |
//! | `PMEMLAB_RECORD_FD` | the descriptor the raw event stream goes to |
//!
//! and, when both are there, follows every descriptor and shared mapping of
//! those files: stores through `mmap(MAP_SHARED)` ([`fault`]: the mapping is
//! write-protected, the first write fault of each page in an epoch is noted
//! and the page unprotected; [`state::sync_device`] diffs the noted pages
//! against a shadow of their recorded content at the next flush or write
//! call, then protects them again), write calls, truncation and flushes
//! ([`hooks`]); removing or renaming a device file stops the recording. Records go out in the format of `pmem_core::trace::raw`.
//!
//! Real functions are found with `dlsym(RTLD_NEXT, …)` ([`real`]); the
//! library's own I/O uses raw system calls, so it never runs into its own
//! hooks. Child processes: a forked child inherits the state and the
//! protected mappings; its write and flush calls on a device are recorded
//! under its own pid (pmemlab refuses a trace in which two processes used
//! the devices), a store of its through an inherited mapping makes the
//! recording untraceable at its exit, and it records nothing of its
//! parent's pending stores. An `exec`ed program loads the library again
//! (the variables are inherited) and follows the device descriptors it
//! inherited.

#![cfg(target_os = "linux")]
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(clippy::missing_safety_doc)]

mod emit;
mod fault;
mod hooks;
mod real;
mod state;

/// Runs when the library is loaded: reads the variables, prepares the
/// devices and installs the fault handler.
extern "C" fn on_load() {
    state::init();
}

/// Runs when the process exits normally: stores not yet recorded are
/// recorded (as writes that no flush covers).
extern "C" fn on_unload() {
    state::record_pending_everywhere();
}

#[used]
#[link_section = ".init_array"]
static ON_LOAD: extern "C" fn() = on_load;

#[used]
#[link_section = ".fini_array"]
static ON_UNLOAD: extern "C" fn() = on_unload;
