//! The concurrent-flusher load (`--flushers N`): N guest processes, each
//! `--flush-count` times a 64 KiB `pwrite` to its own range and an `fsync`,
//! on the first device — the load that fills QEMU's 128-entry queue when
//! the guest driver does not serialize flushes (see REAL-QEMU.md). It runs
//! after the scenario's steps, on the real system and on a fresh model
//! machine of the scenario, and is compared as one more step.

use super::agent::StepReport;
use super::compare::Quantity;
use super::real::RealStep;
use pmem_core::guest::FlushResult;
use pmem_core::scenario::MAX_ACTIONS_PER_STEP;
use pmem_core::sim::Machine;

/// Bytes each flusher writes before each fsync.
pub const CHUNK: u64 = 64 << 10;

/// The load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Load {
    /// Processes.
    pub processes: u64,
    /// write + fsync rounds per process.
    pub rounds: u64,
    /// Seconds the guest waits for the processes before it counts the
    /// rest as hung.
    pub wait_s: u64,
    /// Distance between the processes' chunks, in bytes (64 KiB: packed;
    /// 2 MiB: one host folio each, so each host fsync writes more).
    pub stride: u64,
}

impl Load {
    /// The agent's line for step `index`.
    pub fn agent_line(&self, index: usize) -> String {
        format!("{index} flushers 0 {} {} {} {}", self.processes, self.rounds, self.wait_s, self.stride)
    }
}

/// What the model says of the load.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelLoad {
    /// Processes with a failed fsync.
    pub failed: u64,
    /// Processes whose last flush never returned.
    pub hung: u64,
    /// Flush requests made.
    pub requests: u64,
    /// Requests popped but never completed.
    pub unanswered: u64,
    /// Device status after the load.
    pub status: u8,
    /// One more flush after the load: true when it returned 0.
    pub after_ok: Option<bool>,
}

/// Runs the load on `m`, a fresh machine of the scenario: in each round
/// every process still running stores its chunk and issues its flush, then
/// the machine runs until idle (the processes wait for their flushes). As
/// the guest agent counts them: a process whose flush never returns hangs
/// for good (it does no more rounds); one that got an error goes on and
/// counts as failed.
pub fn run_model(mut m: Machine, load: &Load) -> ModelLoad {
    let Some(dev) = m.device_ids().first().cloned() else { return ModelLoad::default() };
    let mut out = ModelLoad::default();
    let n = load.processes as usize;
    let (mut failed, mut hung) = (vec![false; n], vec![false; n]);
    let chunk = vec![0x61u8; CHUNK as usize];
    for _ in 0..load.rounds {
        let mut pending = Vec::new();
        for p in (0..n).filter(|&p| !hung[p]) {
            let at = p as u64 * load.stride;
            match m.guest_write(&dev, at, &chunk).and_then(|()| m.flush(&dev)) {
                Ok(req) => pending.push((p, req)),
                Err(_) => failed[p] = true,
            }
        }
        out.requests += pending.len() as u64;
        m.run_until_idle(MAX_ACTIONS_PER_STEP);
        for &(p, req) in &pending {
            match m.flush_result(&dev, req) {
                Ok(Some(FlushResult::Ok)) => {}
                Ok(None) => hung[p] = true,
                _ => failed[p] = true,
            }
        }
    }
    out.hung = hung.iter().filter(|&&h| h).count() as u64;
    out.failed = (0..n).filter(|&p| failed[p] && !hung[p]).count() as u64;
    if let Ok(snap) = m.device_snapshot(&dev) {
        out.status = snap.status;
        out.unanswered = snap.stats.popped.saturating_sub(snap.stats.flushes_ok + snap.stats.flushes_failed);
    }
    if let Ok(req) = m.flush(&dev) {
        out.requests += 1;
        m.run_until_idle(MAX_ACTIONS_PER_STEP);
        out.after_ok = m.flush_result(&dev, req).ok().flatten().map(|r| r == FlushResult::Ok);
    } else {
        out.after_ok = Some(false);
    }
    out
}

/// The quantities of the load step.
pub fn compare(model: &ModelLoad, real: &RealStep) -> Vec<Quantity> {
    let r = real.report.clone().unwrap_or_default();
    let StepReport { rc, hung, after, status, .. } = r;
    let after_text = |ok: Option<bool>| match ok {
        Some(true) => "ok".to_string(),
        Some(false) => "eio".to_string(),
        None => "none".to_string(),
    };
    let real_after = after.map(|e| e == 0);
    let unanswered = real.trace.requests.saturating_sub(real.trace.responses);
    vec![
        Quantity::compared("flushers with a failed fsync", None, model.failed.to_string(), rc.to_string()),
        Quantity::compared(
            "flushers hung (a flush never returned)",
            None,
            model.hung.to_string(),
            hung.unwrap_or(0).to_string(),
        ),
        // QEMU traces virtio_pmem_response even when virtqueue_push then
        // returns early on a broken device, so this is shown only.
        Quantity::shown(
            "flush requests without a response trace",
            None,
            model.unanswered.to_string(),
            unanswered.to_string(),
        ),
        Quantity::compared(
            "device status after the load",
            None,
            format!("{:#04x}", model.status),
            status.first().map_or("none".into(), |s| format!("{s:#04x}")),
        ),
        Quantity::compared("one more fsync after the load", None, after_text(model.after_ok), after_text(real_after)),
        Quantity::shown("flush requests", None, model.requests.to_string(), real.trace.requests.to_string()),
        Quantity::shown(
            "most flush requests in flight in QEMU",
            None,
            "-".into(),
            real.trace.max_in_flight.to_string(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::driver::Driver;
    use crate::oracle::machine::RealMachine;
    use pmem_core::scenario::Scenario;

    fn load_on(driver: Driver) -> ModelLoad {
        let s = Scenario::parse(r#"{"version":1,"devices":[{"id":"nv1","size":"64M"}],"steps":[]}"#).unwrap();
        let real = RealMachine::new(&s, "2G", Some(driver)).unwrap();
        let l = Load { processes: 300, rounds: 3, wait_s: 1, stride: CHUNK };
        run_model(real.machine(&s).unwrap(), &l)
    }

    #[test]
    fn the_old_driver_breaks_qemus_device_and_the_serialized_one_does_not() {
        let old = load_on(Driver::Unserialized);
        assert_eq!(old.status, 0x4f, "{old:?}");
        assert_eq!(old.hung + old.failed, 300, "every process hangs or fails: {old:?}");
        assert!(old.hung >= 128, "the flushes QEMU popped never complete: {old:?}");
        assert_eq!(old.after_ok, Some(false));
        let new = load_on(Driver::Serialized);
        assert_eq!((new.status, new.hung, new.failed, new.after_ok), (0x0f, 0, 0, Some(true)), "{new:?}");
    }
}
