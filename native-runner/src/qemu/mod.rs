//! `pmemlab qemu ARGS…`: QEMU's command line and monitor for virtio-pmem,
//! over the simulated machine and real backing files.
//!
//! ```text
//! pmemlab qemu -object memory-backend-file,id=mem1,share=on,mem-path=./virtio_pmem.img,size=4G \
//!              -device virtio-pmem-pci,memdev=mem1,id=nv1
//! (qemu) write nv1 0 hello
//! (qemu) fsync nv1
//! (qemu) object_add memory-backend-file,id=mem2,share=on,mem-path=virtio_pmem2.img,size=4G
//! (qemu) device_add virtio-pmem-pci,id=nv2,memdev=mem2
//! (qemu) device_del nv2
//! Error: device 'nv2' cannot be removed: virtio-pmem does not support hot-unplug …
//! ```
//!
//! - sizes follow QEMU's suffix rules, in [`pmem_core::size`];
//! - [`opts`]: QEMU's `key=value,…` option strings;
//! - [`config`]: the `-object` / `-device` / `-m` arguments pmemlab models;
//! - [`cmdline`]: every other QEMU option, taken with a note or refused
//!   with the reason;
//! - [`vm`]: the machine with its memory backends and devices;
//! - [`backing`]: opening a backend's `mem-path` (an existing file used as
//!   QEMU uses it, with a note; links resolved and reported; one backend
//!   per file);
//! - [`monitor`]: the prompt (QEMU's HMP commands, plus guest commands).
//!
//! The whole command line is checked before any file is touched; a mistake
//! is one line naming it. If the command fails — a backing file cannot be
//! opened after others were created, or the monitor's I/O breaks — the
//! backing files it created (on the command line or with `object_add`) are
//! removed again ([`crate::created::CreatedFiles`]).

pub mod backing;
pub mod cmdline;
pub mod config;
pub mod monitor;
pub mod opts;
pub mod vm;

pub use config::QemuConfig;
pub use vm::{Vm, VmError};

use std::io::IsTerminal;

/// Why `pmemlab qemu` could not start: one sentence.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// The command line.
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    /// Building the machine.
    #[error("{0}")]
    Vm(#[from] VmError),
    /// Reading the monitor's input or writing its output.
    #[error("monitor I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs `pmemlab qemu ARGS…`: builds the machine, prints notes to stderr,
/// then runs the monitor on stdin/stdout.
pub fn run(args: &[String]) -> Result<(), QemuError> {
    let cfg = QemuConfig::from_args(args)?;
    for n in &cfg.notes {
        eprintln!("pmemlab: note: {n}");
    }
    let (mut vm, notes) = Vm::from_config(&cfg)?;
    for n in notes {
        eprintln!("pmemlab: note: {n}");
    }
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    monitor::run(&mut vm, stdin.lock(), std::io::stdout().lock(), !interactive)?;
    vm.keep_created_files();
    Ok(())
}
