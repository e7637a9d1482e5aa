//! `pmemlab demo`: the built-in demonstration on the model — a write and a
//! flush, six flushes on a 4-slot ring (two wait for a free slot), a
//! hot-plugged second device whose removal is refused.

use crate::report::{Report, Reporter};
use pmem_core::event::EventLog;
use pmem_core::guest::FlushResult;
use pmem_core::sim::{DeviceSpec, Machine, MachineError, SimConfig};
use serde::Serialize;
use std::io::{self, Write};

/// Options of `pmemlab demo`.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct DemoOptions {
    /// Seed of the run: the same seed gives the same event log.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
}

/// What the demonstration did; its JSON form is the event log alone.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct DemoReport {
    /// The machine's event log.
    pub log: EventLog,
    /// What the first flush came back with.
    #[serde(skip)]
    pub first_flush: Option<FlushResult>,
    /// Why unplugging the second device was refused.
    #[serde(skip)]
    pub unplug: String,
}

impl Report for DemoReport {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        for ev in self.log.events() {
            writeln!(out, "{ev}")?;
        }
        writeln!(out)?;
        writeln!(out, "first flush: {:?}", self.first_flush)?;
        writeln!(out, "unplug: {}", self.unplug)?;
        writeln!(out, "event-log fingerprint: {:016x}", self.log.fingerprint())
    }
}

/// Plays the demonstration.
pub fn play(opts: &DemoOptions) -> Result<DemoReport, MachineError> {
    let mut m = Machine::new(SimConfig { seed: opts.seed, queue_size: 4, ..SimConfig::default() });
    m.add_device(DeviceSpec::new("nv1", 4 << 30))?;
    m.guest_write("nv1", 0, b"hello, pmem")?;
    let first = m.flush("nv1")?;
    m.run_until_idle(10_000);
    // Six flushes at once on a 4-slot ring: two wait for a free slot.
    for _ in 0..6 {
        m.flush("nv1")?;
    }
    m.run_until_idle(10_000);
    // A second device is hot-plugged; removing it is refused.
    m.add_device(DeviceSpec::new("nv2", 1 << 30))?;
    let unplug = match m.remove_device("nv2") {
        Err(refused) => refused.to_string(),
        Ok(()) => "accepted (virtio-pmem should refuse it)".to_string(),
    };
    m.guest_write("nv2", 4096, b"second device")?;
    m.flush("nv2")?;
    m.run_until_idle(10_000);
    let first_flush = m.flush_result("nv1", first)?;
    Ok(DemoReport { log: m.log().clone(), first_flush, unplug })
}

/// Runs `pmemlab demo`.
pub fn demo(opts: &DemoOptions, rep: &mut Reporter<'_>) -> Result<(), String> {
    let report = play(opts).map_err(|e| e.to_string())?;
    rep.report(&report).map_err(|e| format!("cannot write the report: {e}"))
}
