//! `pmemlab soak FILE`: a guest that stores and flushes without end, on a
//! real backing file, printing every store as it completes — the workload
//! of the SIGKILL reality check.
//!
//! Store `n` (from 1) goes to page `(n - 1) % pages` of the device: a
//! 24-byte record `le64 n, le64 page, le64 check` at the start of the page
//! (`check` = FNV-1a of the first 16 bytes). After the store returns —
//! the bytes are in the host page cache, through the `MAP_SHARED` mapping —
//! the command prints `wrote N page P`. Every `flush_every` stores it sends
//! a flush request through the virtqueue (a real `fdatasync` of the file)
//! and, once it returned 0, prints `flushed N`: every store up to `N` is
//! durable.
//!
//! Killing the process with SIGKILL at any moment must lose no store it
//! reported (the host page cache survives a VMM crash). With `--writes N`
//! it stops after `N` stores; `--crash-image OUT` then writes what a host
//! power failure at that moment could leave — the durable content only —
//! to the new file `OUT`, leaving the backing file as it is.

use crate::backend::{FileBackendError, FileBackendOptions};
use crate::crash_image::{write_crash_image, CrashImageReport, ImageChoice};
use crate::output::{check_writable, OutputError};
use crate::twin::TwinBackend;
use pmem_core::event::LogRetention;
use pmem_core::guest::FlushResult;
use pmem_core::rng::fnv1a64;
use pmem_core::sim::{DeviceMode, DeviceSpec, Machine, MachineError, SimConfig};
use pmem_core::workload::flush_and_wait;
use std::io::Write;
use std::path::PathBuf;

/// Bytes of a record.
pub const RECORD: usize = 24;

/// Events of its log a soak keeps (the most recent): a soak never ends, so
/// its memory must not grow with the stores; what a crash could leave comes
/// from the machine's durability model, which forgets what a flush made
/// durable.
pub const LOG_TAIL: usize = 128;

/// Options of `pmemlab soak`.
#[derive(clap::Args, Clone, Debug)]
pub struct SoakOptions {
    /// The backing file (created sparse; an existing one needs --force).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Device size in bytes, with QEMU's K/M/G/T suffixes (powers of 1024);
    /// a non-zero multiple of 4096.
    #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = pmem_core::size::parse_size)]
    pub size: u64,
    /// Pages the stores cycle over (1 to the device's pages).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub pages: u64,
    /// Send a flush request after every N stores (0: never).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub flush_every: u64,
    /// Stop after N stores (default: never; kill it to stop).
    #[arg(long, value_name = "N")]
    pub writes: Option<u64>,
    /// At the end, write a power-failure crash image (the durable content
    /// only) to the new FILE; needs --writes.
    #[arg(long, value_name = "FILE")]
    pub crash_image: Option<PathBuf>,
    /// Use an existing backing file (soak overwrites the start of its
    /// pages).
    #[arg(long)]
    pub force: bool,
    /// The memory budget: the model's event log grows with every store, so
    /// a soak stops with one line when the log reaches it.
    #[command(flatten)]
    pub limit: crate::limit::MemoryLimit,
}

/// Why `soak` could not run: one sentence.
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    /// A wrong option.
    #[error("{0}")]
    Usage(String),
    /// The backing file.
    #[error("{0}")]
    Backend(#[from] FileBackendError),
    /// The crash image.
    #[error("{0}")]
    Output(#[from] OutputError),
    /// The machine.
    #[error("{0}")]
    Machine(#[from] MachineError),
    /// The model's event log reached the memory limit.
    #[error("{0}; stop earlier with --writes N or raise --memory-limit")]
    Budget(String),
    /// A flush returned -EIO.
    #[error("flush after store {0} returned -EIO: the host could not sync the file")]
    FlushFailed(u64),
    /// Writing to stdout.
    #[error("cannot write to stdout: {0}")]
    Write(#[from] std::io::Error),
}

/// The record of store `n` to `page`.
pub fn record(n: u64, page: u64) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[..8].copy_from_slice(&n.to_le_bytes());
    r[8..16].copy_from_slice(&page.to_le_bytes());
    let check = fnv1a64(&r[..16]);
    r[16..].copy_from_slice(&check.to_le_bytes());
    r
}

/// Reads back the record at the start of a page: `Some(n)` when it is a
/// valid record of that page, `None` for a zero page, `Err` for garbage.
pub fn parse_record(bytes: &[u8], page: u64) -> Result<Option<u64>, String> {
    if bytes.len() < RECORD {
        return Err("short page".into());
    }
    if bytes[..RECORD].iter().all(|&b| b == 0) {
        return Ok(None);
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
    if bytes[..RECORD] != record(n, page) {
        return Err(format!("page {page} holds no valid record"));
    }
    Ok(Some(n))
}

/// Runs `pmemlab soak`, printing to `out`.
pub fn soak(opts: &SoakOptions, out: &mut dyn Write) -> Result<Option<CrashImageReport>, SoakError> {
    if opts.size == 0 || !opts.size.is_multiple_of(4096) {
        return Err(SoakError::Usage(format!(
            "--size {}: the device size must be a non-zero multiple of 4096 bytes",
            opts.size
        )));
    }
    if opts.pages == 0 || opts.pages.saturating_mul(4096) > opts.size {
        return Err(SoakError::Usage(format!(
            "--pages {}: between 1 and the device's {} pages",
            opts.pages,
            opts.size / 4096
        )));
    }
    if opts.crash_image.is_some() && opts.writes.is_none() {
        return Err(SoakError::Usage(
            "--crash-image needs --writes N: the image is written when the stores end".into(),
        ));
    }
    if let Some(p) = &opts.crash_image {
        check_writable(p, false)?;
    }
    if opts.file.exists() && !opts.force {
        return Err(SoakError::Usage(format!(
            "{}: the file exists; soak overwrites the start of its pages, so pass --force to use it anyway",
            opts.file.display()
        )));
    }
    let fopts = FileBackendOptions::new(&opts.file, opts.size);
    let twin = TwinBackend::open(&fopts, DeviceMode::VirtioPmem, Default::default())?;
    let probe = twin.probe();
    let mut m = Machine::new(SimConfig { log: LogRetention::Recent(LOG_TAIL), ..SimConfig::default() });
    m.add_device_with_backend(DeviceSpec::new("nv1", opts.size), Box::new(twin))?;
    writeln!(out, "soak {}: {} page(s), a flush every {} store(s)", opts.file.display(), opts.pages, opts.flush_every)?;
    out.flush()?;
    let mut n = 0u64;
    let budget = opts.limit.budget();
    while opts.writes.is_none_or(|w| n < w) {
        // The log keeps only its tail (`LOG_TAIL`): what it holds is metered
        // against the limit, every 64 stores.
        if n.is_multiple_of(64) {
            let mut meter = pmem_core::budget::LogMeter::default();
            meter.add(m.log().events());
            budget.check_log(&format!("store {n}"), meter.bytes()).map_err(|e| SoakError::Budget(e.to_string()))?;
        }
        n += 1;
        let page = (n - 1) % opts.pages;
        m.guest_write("nv1", page * 4096, &record(n, page))?;
        writeln!(out, "wrote {n} page {page}")?;
        out.flush()?;
        if opts.flush_every > 0 && n.is_multiple_of(opts.flush_every) {
            match flush_and_wait(&mut m, "nv1")? {
                FlushResult::Ok => {
                    writeln!(out, "flushed {n}")?;
                    out.flush()?;
                }
                FlushResult::Eio => return Err(SoakError::FlushFailed(n)),
            }
        }
    }
    let mut report = None;
    if let Some(path) = &opts.crash_image {
        let model = m.durability("nv1")?;
        let r = write_crash_image(probe.file().file(), opts.size, model, ImageChoice::DurableOnly, path, false)?;
        writeln!(
            out,
            "crash image {}: {} page(s) newer than the last flush reverted to their durable content",
            path.display(),
            r.reverted.len()
        )?;
        report = Some(r);
    }
    let s = probe.file().sync_stats();
    writeln!(
        out,
        "done {n}: {} real fdatasync(s), mean {}",
        s.syncs,
        s.mean_ns().map(|ns| pmem_core::time::SimTime(ns).to_string()).unwrap_or_else(|| "-".into())
    )?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_garbage_is_named() {
        let r = record(42, 3);
        assert_eq!(parse_record(&r, 3), Ok(Some(42)));
        assert!(parse_record(&r, 4).is_err(), "a record of another page");
        assert_eq!(parse_record(&[0u8; 4096], 1), Ok(None));
        let mut torn = r;
        torn[20] ^= 1;
        assert!(parse_record(&torn, 3).is_err());
    }
}
