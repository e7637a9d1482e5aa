//! The native runner's QEMU option parsers, compiled from their own files
//! (no file is opened by them).

/// `key=value,…` option strings.
#[path = "../../../native-runner/src/qemu/opts.rs"]
#[allow(missing_docs, dead_code)]
pub mod opts;

/// Whole QEMU command lines (the options this model does not read).
#[path = "../../../native-runner/src/qemu/cmdline.rs"]
#[allow(missing_docs, dead_code)]
pub mod cmdline;

/// The `-object`/`-device`/`-m` arguments.
#[path = "../../../native-runner/src/qemu/config.rs"]
#[allow(missing_docs, dead_code)]
pub mod config;
