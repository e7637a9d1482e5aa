//! The real side: QEMU with the guest agent, driven step by step over the
//! plan, and what the host records after every step.

use super::agent::{Line, StepReport};
use super::error::OracleError;
use super::plan::{HostAction, Plan};
use super::probe::Backing;
use super::qemu::{interrupted, BackingFile, Launch, Qemu, TraceCounts, Waited};
use super::qmp::{MemoryDevice, Qmp};
use crate::cachestat::CacheStat;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What the host saw for one step.
#[derive(Clone, Debug, Default)]
pub struct RealStep {
    /// The agent's report (none when QEMU ended or was killed in the step).
    pub report: Option<StepReport>,
    /// cachestat of each backing file, in plan order.
    pub files: Vec<Option<CacheStat>>,
    /// Trace events of this step.
    pub trace: TraceCounts,
    /// QMP `query-memory-devices` after the step.
    pub memory: Vec<MemoryDevice>,
    /// QMP's answer to a hotplug or unplug (Err: QEMU's message).
    pub qmp: Option<Result<(), String>>,
    /// The disk content of each device's tracked pages (at a power failure).
    pub crash_image: BTreeMap<String, BTreeMap<u64, Vec<u8>>>,
    /// The disk content the step checks (`expect_durable`).
    pub durable: Option<Vec<u8>>,
    /// What happened, in words (restarts, crashes).
    pub note: String,
}

/// A QEMU run over a plan.
pub struct Session {
    launch: Launch,
    plan: Plan,
    /// The backing files, in plan order.
    pub files: Vec<Backing>,
    qemu: Option<Qemu>,
    qmp: Option<Qmp>,
    plugged: usize,
    timeout: Duration,
    /// Guest boots so far.
    pub boots: u32,
    /// The guest's own view of each device: index → (size, start).
    pub guest_devices: BTreeMap<usize, (u64, Option<u64>)>,
}

impl Session {
    /// A session; nothing runs until [`Session::boot`].
    pub fn new(launch: Launch, plan: Plan, files: Vec<Backing>, timeout: Duration) -> Session {
        let plugged = plan.initial;
        Session {
            launch,
            plan,
            files,
            qemu: None,
            qmp: None,
            plugged,
            timeout,
            boots: 0,
            guest_devices: BTreeMap::new(),
        }
    }

    fn backing(&self, i: usize) -> BackingFile {
        let d = &self.plan.devices[i];
        BackingFile {
            id: d.id.clone(),
            path: self.files[i].path.clone(),
            size: d.size.0,
            share: d.share,
            readonly: d.readonly,
        }
    }

    /// Starts QEMU with the devices plugged so far; the agent begins at
    /// step `start`. Returns when it reported its devices.
    pub fn boot(&mut self, start: usize) -> Result<(), OracleError> {
        self.stop();
        let _ = std::fs::remove_file(&self.launch.qmp);
        self.launch.start = start;
        self.launch.devices = (0..self.plugged).map(|i| self.backing(i)).collect();
        let deadline = Instant::now() + self.timeout;
        let mut q = Qemu::launch(&self.launch)?;
        self.boots += 1;
        loop {
            match q.next_line(deadline) {
                Ok(Line::Boot) => break,
                Ok(Line::Fatal(why)) => return Err(OracleError::Guest(format!("the guest agent failed: {why}"))),
                Ok(_) => {}
                Err(w) => return Err(self.boot_failure(&q, w)),
            }
        }
        self.qmp = Some(Qmp::connect(&self.launch.qmp, deadline)?);
        self.qemu = Some(q);
        Ok(())
    }

    fn boot_failure(&self, q: &Qemu, w: Waited) -> OracleError {
        if interrupted() {
            return OracleError::Guest("interrupted".into());
        }
        match w {
            Waited::TimedOut => OracleError::Timeout(format!(
                "the guest did not boot within {} s (QEMU under TCG; see --timeout)",
                self.timeout.as_secs_f64()
            )),
            Waited::Exited(code) => {
                let msg = q.messages().into_iter().find(|l| !l.trim().is_empty()).unwrap_or_default();
                let code = code.map_or("a signal".to_string(), |c| format!("status {c}"));
                OracleError::Guest(format!("QEMU ended with {code} before the guest booted: {}", msg.trim()))
            }
        }
    }

    fn qemu(&mut self) -> Result<&mut Qemu, OracleError> {
        self.qemu.as_mut().ok_or_else(|| OracleError::Guest("QEMU is not running".into()))
    }

    /// Waits for the agent's next WAIT or STEP line of step `index`.
    fn expect(&mut self, index: usize, want_step: bool, deadline: Instant) -> Result<Option<StepReport>, OracleError> {
        let timeout = self.timeout;
        loop {
            match self.qemu()?.next_line(deadline) {
                Ok(Line::Wait(i)) if !want_step && i == index => return Ok(None),
                Ok(Line::Step(r)) if want_step && r.index == index => return Ok(Some(r)),
                Ok(Line::Dev { index: d, size, resource }) => {
                    self.guest_devices.insert(d, (size, resource));
                }
                Ok(Line::Fatal(why)) => return Err(OracleError::Guest(format!("the guest agent failed: {why}"))),
                Ok(other) => {
                    return Err(OracleError::Guest(format!("step {index}: the guest agent said {other:?} out of turn")))
                }
                Err(_) if interrupted() => return Err(OracleError::Guest("interrupted".into())),
                Err(Waited::TimedOut) => {
                    return Err(OracleError::Timeout(format!(
                        "step {index}: the guest did not answer within {} s",
                        timeout.as_secs_f64()
                    )))
                }
                Err(Waited::Exited(c)) => {
                    return Err(OracleError::Guest(format!(
                        "step {index}: QEMU ended (status {c:?}) in the middle of the step"
                    )))
                }
            }
        }
    }

    /// Runs step `index` of the plan on the real system.
    pub fn step(&mut self, index: usize) -> Result<RealStep, OracleError> {
        let host = self.plan.steps[index].host.clone();
        let extra = match host {
            HostAction::Sleep(d) => d,
            HostAction::UntilClean => Duration::from_secs(90),
            HostAction::Load(s) => Duration::from_secs(s + 30),
            _ => Duration::ZERO,
        };
        let deadline = Instant::now() + self.timeout + extra;
        self.expect(index, false, deadline)?;
        let before = self.qemu()?.trace();
        let mut real = RealStep::default();
        match host {
            HostAction::PowerFailure | HostAction::VmmKill => {
                real.trace = delta(self.stop(), before);
                if host == HostAction::PowerFailure {
                    for f in &mut self.files {
                        f.apply_crash_image()?;
                    }
                    real.crash_image = self.crash_images();
                    real.note = "QEMU killed; each file rewritten with its fsync'd copy; QEMU restarted".into();
                } else {
                    real.note = "QEMU killed (SIGKILL) and restarted; the host page cache kept".into();
                }
                self.restart_after(index)?;
            }
            HostAction::GuestCrash => {
                self.qemu()?.go()?;
                let code = self.qemu()?.wait_until(deadline);
                real.trace = delta(self.stop(), before);
                real.note = format!("guest kernel panic (sysrq c); QEMU ended with {code:?}; QEMU restarted");
                self.restart_after(index)?;
            }
            _ => {
                real.qmp = self.host_action(&host, deadline);
                self.qemu()?.go()?;
                real.report = self.expect(index, true, deadline)?;
                // An fsync the guest saw return was answered by the device.
                let answered =
                    real.report.is_some() && self.plan.steps[index].agent_line.split(' ').nth(1) == Some("fsync");
                let trace = if answered {
                    self.qemu()?.trace_after(&before, 1, Duration::from_secs(5))
                } else {
                    self.qemu()?.trace()
                };
                real.trace = delta(trace, before);
            }
        }
        self.probe(&mut real)?;
        Ok(real)
    }

    fn host_action(&mut self, host: &HostAction, deadline: Instant) -> Option<Result<(), String>> {
        match *host {
            HostAction::Sleep(d) => std::thread::sleep(d),
            HostAction::UntilClean => {
                while Instant::now() < deadline
                    && self.files.iter().any(|f| f.stat().is_some_and(|c| c.dirty + c.writeback > 0))
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            HostAction::Hotplug(k) => {
                let b = self.backing(k);
                let r = self.qmp.as_mut()?.hotplug(&b);
                if r.is_ok() {
                    self.plugged = self.plugged.max(k + 1);
                }
                return Some(r);
            }
            HostAction::Unplug(k) => {
                let id = self.plan.devices[k].id.clone();
                return Some(self.qmp.as_mut()?.unplug(&id));
            }
            _ => {}
        }
        None
    }

    fn restart_after(&mut self, index: usize) -> Result<(), OracleError> {
        if index + 1 < self.plan.steps.len() {
            self.boot(index + 1)?;
        }
        Ok(())
    }

    fn crash_images(&self) -> BTreeMap<String, BTreeMap<u64, Vec<u8>>> {
        let ids = self.plan.devices.iter().map(|d| d.id.clone());
        ids.zip(&self.files).take(self.plugged).map(|(id, f)| (id, f.durable_pages().clone())).collect()
    }

    fn probe(&mut self, real: &mut RealStep) -> Result<(), OracleError> {
        for f in &mut self.files {
            f.update_durable();
        }
        real.files = self.files.iter().map(Backing::stat).collect();
        if let Some(q) = self.qmp.as_mut() {
            real.memory = q.memory_devices().unwrap_or_default();
        }
        Ok(())
    }

    /// Kills QEMU (if it runs); the trace counts it had.
    fn stop(&mut self) -> TraceCounts {
        self.qmp = None;
        match self.qemu.take() {
            Some(mut q) => {
                let t = q.trace();
                q.kill();
                t
            }
            None => TraceCounts::default(),
        }
    }

    /// After the last step: the agent powers off. The flushes that came
    /// with it, and whether the guest powered off by itself (a guest with
    /// hung flushers may not; QEMU is killed then).
    pub fn finish(&mut self, last: TraceCounts) -> (TraceCounts, bool) {
        let deadline = Instant::now() + self.timeout;
        let n = self.plan.steps.len();
        let Some(q) = self.qemu.as_mut() else { return (TraceCounts::default(), true) };
        if matches!(q.next_line(deadline), Ok(Line::Wait(i)) if i == n) {
            let _ = q.go();
        }
        let mut ended = false;
        while let Ok(line) = q.next_line(deadline) {
            if line == Line::End {
                ended = true;
                break;
            }
        }
        let off = ended && q.wait_until(deadline) == Some(0);
        let end = q.trace();
        self.stop();
        (delta(end, last), off)
    }

    /// The trace counts of the running QEMU so far.
    pub fn trace_now(&self) -> TraceCounts {
        self.qemu.as_ref().map(Qemu::trace).unwrap_or_default()
    }
}

fn delta(after: TraceCounts, before: TraceCounts) -> TraceCounts {
    TraceCounts {
        requests: after.requests.saturating_sub(before.requests),
        done: after.done.saturating_sub(before.done),
        failed: after.failed.saturating_sub(before.failed),
        responses: after.responses.saturating_sub(before.responses),
        max_in_flight: after.max_in_flight,
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop();
    }
}
