//! The native runner's QEMU option parsers, compiled from their own files
//! (no file is opened by them).

/// `key=value,…` option strings.
#[path = "../../../native-runner/src/qemu/opts.rs"]
#[allow(missing_docs, dead_code)]
pub mod opts;

/// The `-object`/`-device`/`-m` arguments.
#[path = "../../../native-runner/src/qemu/config.rs"]
#[allow(missing_docs, dead_code)]
pub mod config;
