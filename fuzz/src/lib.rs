//! Fuzz harnesses for pmem-core.
//!
//! The targets in `fuzz_targets/` are one line each; the work is here so the
//! harnesses and their invariant checkers can also be unit-tested (including
//! negative controls that prove a checker can fail):
//! - [`device`]: arbitrary guest memory, ring indices and host sync failures
//!   fed to `PmemDevice::process_now` over a `SplitQueue`, round after round;
//! - [`parse`]: arbitrary descriptor lists and descriptor tables fed to
//!   `request::parse`, `queue::walk_chain` and `queue::check_buffers`, each
//!   compared with a reference written from the spec;
//! - [`inputs`]: the parsers of outside input — scenario, shared link,
//!   event-log import, explore state, trace (a placeholder until the trace
//!   format lands), QEMU options — each asserting no panic and the memory
//!   budget held;
//! - [`monitor`]: the `pmemlab qemu` monitor's command lines on a machine
//!   with no file.
//!
//! A violated invariant panics with a message naming it; libFuzzer records
//! the input as a crash.

#![forbid(unsafe_code)]

pub mod device;
pub mod input;
pub mod inputs;
pub mod monitor;
pub mod parse;
pub mod recorder;

/// The web's link parser, compiled from its own file.
#[path = "../../web/src/link.rs"]
#[allow(missing_docs, dead_code)]
pub mod link;

pub mod qemu;
