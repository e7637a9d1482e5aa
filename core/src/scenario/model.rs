//! The `model` object: the knobs of the host page cache and the machine, in
//! human units, mapped onto [`SimConfig`] and [`PageCacheConfig`].

use super::error::{Location, ScenarioError};
use super::fields::{boolean, byte_size, string, whole, ByteSize, Fields};
use crate::host::{PageCacheConfig, TearGranularity};
use crate::sim::SimConfig;
use serde::Serialize;
use serde_json::Value;

/// The model knobs of a scenario, every one optional in the file with
/// Linux's (and QEMU's) defaults. `None` switches a knob off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Model {
    /// `vm.dirty_expire_centisecs` in ms: age after which background
    /// writeback writes a dirty page (default 30000; null = never by age).
    pub dirty_expire_ms: Option<u64>,
    /// `vm.dirty_writeback_centisecs` in ms: flusher period (default 5000;
    /// null = no background writeback at all).
    pub dirty_writeback_interval_ms: Option<u64>,
    /// `vm.dirty_background_ratio`, percent of host memory (default 10;
    /// null = off).
    pub dirty_background_ratio: Option<u32>,
    /// `vm.dirty_ratio`, percent of host memory (default 20; null = off).
    pub dirty_ratio: Option<u32>,
    /// Memory the host page cache may use (default `"1G"`).
    pub host_memory: ByteSize,
    /// Fixed cost of one page write to disk, µs (default 50).
    pub io_latency_us: u64,
    /// Disk bandwidth in MB/s, 10^6 bytes per second (default 400).
    pub bandwidth_mb_s: u64,
    /// Disk cache flush at the end of an fsync, µs (default 200).
    pub flush_latency_us: u64,
    /// Let fsyncs that arrive while one runs share the next one (default
    /// true).
    pub coalesce_syncs: bool,
    /// The unit a page under writeback tears in on a power failure:
    /// `"8B"`, `"64B"`, `"512B"` (default) or `"4KiB"`.
    pub tear: TearGranularity,
    /// Size of the virtqueue: a power of two up to 32768 (default 128, as
    /// QEMU).
    pub queue_size: u16,
    /// The host's folio size: the unit the host page cache dirties and
    /// writes back — `"4K"` (default: small folios) up to `"2M"`, what QEMU's
    /// `MADV_HUGEPAGE` gets on a host file system with large folios (ext4 on
    /// Linux ≥ 6.x measured here: `REAL-QEMU.md`). Left out of the written
    /// form when it is the default.
    #[serde(skip_serializing_if = "ByteSize::is_page")]
    pub host_folio: ByteSize,
    /// When the host's flusher wakes within `dirty_writeback_interval_ms`,
    /// ms (default 0: at multiples of the interval from time 0). Left out of
    /// the written form when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub flusher_phase_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Default for Model {
    fn default() -> Self {
        let pc = PageCacheConfig::default();
        let sim = SimConfig::default();
        Model {
            dirty_expire_ms: pc.dirty_expire_ns.map(|n| n / 1_000_000),
            dirty_writeback_interval_ms: pc.dirty_writeback_interval_ns.map(|n| n / 1_000_000),
            dirty_background_ratio: pc.dirty_background_ratio,
            dirty_ratio: pc.dirty_ratio,
            host_memory: ByteSize(pc.host_memory_bytes),
            io_latency_us: pc.io_latency_ns / 1_000,
            bandwidth_mb_s: pc.bandwidth_bytes_per_sec / 1_000_000,
            flush_latency_us: pc.flush_latency_ns / 1_000,
            coalesce_syncs: pc.coalesce_syncs,
            tear: sim.tear,
            queue_size: sim.queue_size,
            host_folio: ByteSize(pc.folio_bytes),
            flusher_phase_ms: pc.flusher_phase_ns / 1_000_000,
        }
    }
}

/// The fields of `model`.
pub(super) const MODEL_FIELDS: [&str; 13] = [
    "dirty_expire_ms",
    "dirty_writeback_interval_ms",
    "dirty_background_ratio",
    "dirty_ratio",
    "host_memory",
    "io_latency_us",
    "bandwidth_mb_s",
    "flush_latency_us",
    "coalesce_syncs",
    "tear",
    "queue_size",
    "host_folio",
    "flusher_phase_ms",
];

/// Largest number of milliseconds that fits in nanoseconds.
const MAX_MS: u64 = u64::MAX / 1_000_000;
/// Largest number of microseconds that fits in nanoseconds.
const MAX_US: u64 = u64::MAX / 1_000;

fn millis(v: &Value) -> Result<u64, String> {
    let n = whole(v)?;
    if n > MAX_MS {
        return Err(format!("{n} ms is too long; at most {MAX_MS}"));
    }
    Ok(n)
}

fn micros(v: &Value) -> Result<u64, String> {
    let n = whole(v)?;
    if n > MAX_US {
        return Err(format!("{n} µs is too long; at most {MAX_US}"));
    }
    Ok(n)
}

fn percent(v: &Value) -> Result<u32, String> {
    match whole(v) {
        Ok(n) if n <= 100 => Ok(n as u32),
        _ => Err(format!("expected a percentage from 0 to 100, found {}", super::fields::describe(v))),
    }
}

fn host_memory(v: &Value) -> Result<ByteSize, String> {
    let size = byte_size(v)?;
    if size.0 < 4096 {
        return Err(format!("{} is less than one 4096-byte page", super::fields::describe(v)));
    }
    Ok(size)
}

fn host_folio(v: &Value) -> Result<ByteSize, String> {
    let size = byte_size(v)?;
    crate::host::check_folio_bytes(size.0)?;
    Ok(size)
}

fn bandwidth(v: &Value) -> Result<u64, String> {
    match whole(v) {
        Ok(n) if (1..=u64::MAX / 1_000_000).contains(&n) => Ok(n),
        _ => Err(format!("expected a bandwidth of at least 1 MB/s, found {}", super::fields::describe(v))),
    }
}

fn tear(v: &Value) -> Result<TearGranularity, String> {
    let s = string(v).map_err(|_| {
        format!("expected one of \"8B\", \"64B\", \"512B\", \"4KiB\", found {}", super::fields::describe(v))
    })?;
    s.parse()
}

fn queue_size(v: &Value) -> Result<u16, String> {
    match whole(v) {
        Ok(n) if n.is_power_of_two() && n <= 32768 => Ok(n as u16),
        _ => Err(format!("expected a power of two from 1 to 32768, found {}", super::fields::describe(v))),
    }
}

impl Model {
    /// Reads the `model` object; absent knobs take their defaults.
    pub(super) fn parse(value: Value) -> Result<Model, ScenarioError> {
        let mut f = Fields::new(Location::Model, "", value, &MODEL_FIELDS)?;
        let d = Model::default();
        Ok(Model {
            dirty_expire_ms: f.nullable("dirty_expire_ms", d.dirty_expire_ms, millis)?,
            dirty_writeback_interval_ms: f.nullable(
                "dirty_writeback_interval_ms",
                d.dirty_writeback_interval_ms,
                millis,
            )?,
            dirty_background_ratio: f.nullable("dirty_background_ratio", d.dirty_background_ratio, percent)?,
            dirty_ratio: f.nullable("dirty_ratio", d.dirty_ratio, percent)?,
            host_memory: f.or("host_memory", d.host_memory, host_memory)?,
            io_latency_us: f.or("io_latency_us", d.io_latency_us, micros)?,
            bandwidth_mb_s: f.or("bandwidth_mb_s", d.bandwidth_mb_s, bandwidth)?,
            flush_latency_us: f.or("flush_latency_us", d.flush_latency_us, micros)?,
            coalesce_syncs: f.or("coalesce_syncs", d.coalesce_syncs, boolean)?,
            tear: f.or("tear", d.tear, tear)?,
            queue_size: f.or("queue_size", d.queue_size, queue_size)?,
            host_folio: f.or("host_folio", d.host_folio, host_folio)?,
            flusher_phase_ms: f.or("flusher_phase_ms", d.flusher_phase_ms, millis)?,
        })
    }

    /// The page-cache knobs in the model's units (ns, bytes).
    pub fn page_cache_config(&self) -> PageCacheConfig {
        PageCacheConfig {
            dirty_expire_ns: self.dirty_expire_ms.map(|ms| ms.saturating_mul(1_000_000)),
            dirty_writeback_interval_ns: self.dirty_writeback_interval_ms.map(|ms| ms.saturating_mul(1_000_000)),
            dirty_background_ratio: self.dirty_background_ratio,
            dirty_ratio: self.dirty_ratio,
            host_memory_bytes: self.host_memory.0,
            io_latency_ns: self.io_latency_us.saturating_mul(1_000),
            bandwidth_bytes_per_sec: self.bandwidth_mb_s.saturating_mul(1_000_000),
            flush_latency_ns: self.flush_latency_us.saturating_mul(1_000),
            coalesce_syncs: self.coalesce_syncs,
            folio_bytes: self.host_folio.0,
            flusher_phase_ns: self.flusher_phase_ms.saturating_mul(1_000_000),
        }
    }

    /// The machine configuration for a run from `seed`; knobs the format
    /// does not expose keep [`SimConfig`]'s defaults.
    pub fn sim_config(&self, seed: u64) -> SimConfig {
        SimConfig {
            seed,
            queue_size: self.queue_size,
            host: self.page_cache_config(),
            tear: self.tear,
            ..SimConfig::default()
        }
    }
}
