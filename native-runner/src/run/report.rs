//! [`RunReport`]: what `pmemlab run` found — the JSON document of `--json`,
//! and the closing lines of the readable log.

use super::compare::SideBySide;
use super::plug::DeviceReport;
use super::BackendKind;
use crate::crash_image::CrashImageReport;
use crate::report::Report;
use pmem_core::event::EventLog;
use pmem_core::scenario::{FailedExpectation, StepOutcome};
use pmem_core::time::SimTime;
use serde::Serialize;
use std::io::{self, Write};
use std::path::PathBuf;

/// The report of a run.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// The scenario file.
    pub scenario: PathBuf,
    /// The scenario's name.
    pub name: String,
    /// The seed it ran with.
    pub seed: u64,
    /// What backed the devices.
    pub backend: BackendKind,
    /// Every step did what it was asked.
    pub passed: bool,
    /// The real files (empty with the model backend).
    pub devices: Vec<DeviceReport>,
    /// One outcome per step.
    pub outcomes: Vec<StepOutcome>,
    /// Expectations that did not hold.
    pub failed_expectations: Vec<FailedExpectation>,
    /// Model and kernel after every step, per real file.
    pub side_by_side: Vec<SideBySide>,
    /// Crash images written.
    pub crash_images: Vec<CrashImageReport>,
    /// Things said once (cachestat unavailable, tmpfs, …).
    pub notes: Vec<String>,
    /// Fingerprint of the event log (hex).
    pub fingerprint: String,
    /// The event log.
    pub log: EventLog,
}

impl Report for RunReport {
    /// The verdict, the fingerprint and each real file's syncs (the steps
    /// were logged as they ran).
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out)?;
        let total = self.outcomes.len();
        if self.passed {
            writeln!(out, "result: passed: {total} of {total} steps did what they were asked")?;
        } else {
            writeln!(
                out,
                "result: FAILED: {} of {total} steps did not do what they were asked; {} expectation(s) did not hold",
                self.outcomes.iter().filter(|o| !o.ok).count(),
                self.failed_expectations.len()
            )?;
            for f in &self.failed_expectations {
                writeln!(out, "  {f}")?;
            }
        }
        writeln!(out, "event-log fingerprint: {}", self.fingerprint)?;
        for r in &self.devices {
            self.write_syncs(r, out)?;
        }
        Ok(())
    }
}

impl RunReport {
    /// One device's real syncs, and how often model and kernel agreed.
    fn write_syncs(&self, r: &DeviceReport, out: &mut dyn Write) -> io::Result<()> {
        let s = &r.sync;
        let lat = |v: Option<u64>| v.map(|ns| SimTime(ns).to_string()).unwrap_or_else(|| "-".into());
        let agreed = self.side_by_side.iter().filter(|x| x.device == r.id && x.agrees()).count();
        let compared = self.side_by_side.iter().filter(|x| x.device == r.id).count();
        writeln!(
            out,
            "{}: {} real fdatasync(s) (mean {}, min {}, max {}){}; model and kernel agreed after {agreed} of {compared} step(s)",
            r.id,
            s.syncs,
            lat(s.mean_ns()),
            lat(s.min_ns),
            lat(s.max_ns),
            if s.failed > 0 { format!(", {} failed", s.failed) } else { String::new() },
        )
    }
}
