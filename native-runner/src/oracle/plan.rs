//! A scenario as the real system runs it: one agent line per step (the
//! guest's part, `nop` when the host does it all) and what the host does
//! around it.

use super::agent::encode_hex;
use super::error::OracleError;
use pmem_core::scenario::{DeviceOptions, Op, Scenario, Step};
use pmem_core::sim::DeviceMode;
use std::time::Duration;

/// Longest `wait` the real host sleeps through.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// What the host does for a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostAction {
    /// Nothing but the handshake (the guest does the step, or the step only
    /// reads host figures).
    None,
    /// Sleep: the host's flusher runs in real time.
    Sleep(Duration),
    /// Wait until no page of any backing file is dirty or under writeback.
    UntilClean,
    /// QMP `object-add` + `device_add` of the device (its index in
    /// [`Plan::devices`]).
    Hotplug(usize),
    /// QMP `device_del` of the device.
    Unplug(usize),
    /// The guest kernel crashes (sysrq c); QEMU exits (`-no-reboot`) and is
    /// started again with the next step.
    GuestCrash,
    /// QEMU is killed; the host keeps its page cache.
    VmmKill,
    /// The concurrent-flusher load; the guest waits this many seconds for
    /// it.
    Load(u64),
    /// QEMU is killed and each backing file is replaced by what the host's
    /// disk holds (the crash image), then QEMU starts again.
    PowerFailure,
}

/// One step for the real system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedStep {
    /// The agent's line (`I op args`).
    pub agent_line: String,
    /// The host's part.
    pub host: HostAction,
    /// The device the step names (index into [`Plan::devices`]).
    pub device: Option<usize>,
}

/// The whole scenario for the real system.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Every device, the initial ones first, then hot-plugged ones in order
    /// (`/dev/pmemN` is device N).
    pub devices: Vec<DeviceOptions>,
    /// How many devices exist at boot.
    pub initial: usize,
    /// One per scenario step.
    pub steps: Vec<PlannedStep>,
    /// Whether a step maps a device: the guest gets the DAX scratch device
    /// ([`super::dax`]).
    pub dax: bool,
}

impl Plan {
    /// Plans `scenario`, or says which step or device the real system cannot
    /// run.
    pub fn new(scenario: &Scenario) -> Result<Plan, OracleError> {
        let mut devices: Vec<DeviceOptions> = scenario.devices().to_vec();
        let initial = devices.len();
        for d in &devices {
            check_device(d)?;
        }
        let mut steps = Vec::new();
        for (i, step) in scenario.steps().iter().enumerate() {
            if let Op::Hotplug { device } = &step.op {
                check_device(device)?;
                devices.push(device.clone());
            }
            steps.push(plan_step(i, step, &devices)?);
        }
        let mmap = scenario.steps().iter().position(|s| matches!(s.op, Op::Mmap { .. }));
        if let (Some(index), true) = (mmap, devices.len() > initial) {
            return Err(OracleError::Unsupported {
                index,
                op: "mmap".into(),
                reason: "mmap steps are probed on a DAX scratch device plugged at boot, which would move the address \
                         of the device this scenario hot-plugs"
                    .into(),
            });
        }
        Ok(Plan { devices, initial, steps, dax: mmap.is_some() })
    }

    /// The index of a device id.
    pub fn index(&self, id: &str) -> Option<usize> {
        self.devices.iter().position(|d| d.id == id)
    }

    /// Appends the concurrent-flusher load as the last step.
    pub fn add_load(&mut self, load: &super::load::Load) {
        let line = load.agent_line(self.steps.len());
        self.steps.push(PlannedStep { agent_line: line, host: HostAction::Load(load.wait_s), device: Some(0) });
    }

    /// The agent's steps file.
    pub fn steps_file(&self) -> String {
        self.steps.iter().map(|s| format!("{}\n", s.agent_line)).collect()
    }
}

fn check_device(d: &DeviceOptions) -> Result<(), OracleError> {
    let refuse = |reason: &str| Err(OracleError::UnsupportedDevice { id: d.id.clone(), reason: reason.into() });
    match d.mode {
        DeviceMode::VirtioPmem => {}
        DeviceMode::EmulatedNvdimm => {
            return refuse("emulated NVDIMM (QEMU -device nvdimm with ACPI NFIT) is not set up by the oracle")
        }
        DeviceMode::RealNvdimm => return refuse("a real NVDIMM is not available on this host"),
    }
    Ok(())
}

fn plan_step(i: usize, step: &Step, devices: &[DeviceOptions]) -> Result<PlannedStep, OracleError> {
    let unsupported =
        |reason: &str| OracleError::Unsupported { index: i, op: step.op.name().into(), reason: reason.into() };
    let dev = |id: &str| devices.iter().position(|d| d.id == id);
    let guest = |line: String, device: &str| PlannedStep {
        agent_line: format!("{i} {line}"),
        host: HostAction::None,
        device: dev(device),
    };
    let host = |host: HostAction, device: Option<usize>| PlannedStep { agent_line: format!("{i} nop"), host, device };
    let d = |id: &str| dev(id).unwrap_or(0);
    Ok(match &step.op {
        Op::Write { device, offset, data } => {
            guest(format!("write {} {} {}", d(device), offset.0, encode_hex(&data.bytes())), device)
        }
        Op::Read { device, offset, len, .. } => guest(format!("read {} {} {}", d(device), offset.0, len.0), device),
        Op::ExpectData { device, offset, data } => {
            guest(format!("read {} {} {}", d(device), offset.0, data.byte_len()), device)
        }
        Op::Fsync { blocking: false, .. } | Op::Msync { blocking: false, .. } => {
            return Err(unsupported("the guest agent's fsync always waits for the flush (blocking: false is not run)"))
        }
        Op::Fsync { device, .. } | Op::Msync { device, .. } => guest(format!("fsync {}", d(device)), device),
        // Probed on the DAX scratch device (see `super::dax`).
        Op::Mmap { device, map_sync } => guest(format!("mmap {} {}", d(device), u8::from(*map_sync)), device),
        Op::InjectFsyncError { .. } => {
            return Err(unsupported("the host's disk cannot be made to fail an fsync on request"))
        }
        Op::Wait { time } => {
            let t = Duration::from_nanos(time.nanos());
            if t > MAX_WAIT {
                return Err(unsupported("the real host sleeps at most 600 s for a wait"));
            }
            host(HostAction::Sleep(t), None)
        }
        Op::RunUntilIdle => host(HostAction::UntilClean, None),
        Op::PowerFailure => host(HostAction::PowerFailure, None),
        Op::VmmKill => host(HostAction::VmmKill, None),
        Op::GuestCrash => PlannedStep { agent_line: format!("{i} crash"), host: HostAction::GuestCrash, device: None },
        Op::Hotplug { device } => {
            let k = d(&device.id);
            PlannedStep { agent_line: format!("{i} waitdev {k}"), host: HostAction::Hotplug(k), device: Some(k) }
        }
        Op::Unplug { device } => host(HostAction::Unplug(d(device)), dev(device)),
        Op::ExpectDurable { device, .. } | Op::ExpectFlush { device, .. } => host(HostAction::None, dev(device)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(steps: &str) -> Scenario {
        Scenario::parse(&format!(
            r#"{{"version":1,"name":"t","devices":[{{"id":"nv1","size":"1M"}}],"steps":[{steps}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn guest_steps_become_agent_lines_and_host_steps_nops() {
        let s = scenario(
            r#"{"op":"write","device":"nv1","offset":"4K","text":"hi"},{"op":"fsync","device":"nv1"},
               {"op":"wait","ms":5},{"op":"power_failure"},{"op":"expect_data","device":"nv1","offset":0,"hex":"00","len":3}"#,
        );
        let p = Plan::new(&s).unwrap();
        assert_eq!(p.steps_file(), "0 write 0 4096 6869\n1 fsync 0\n2 nop\n3 nop\n4 read 0 0 3\n");
        assert_eq!(p.steps[2].host, HostAction::Sleep(Duration::from_millis(5)));
        assert_eq!(p.steps[3].host, HostAction::PowerFailure);
    }

    #[test]
    fn a_step_the_agent_cannot_do_is_named() {
        let s = scenario(
            r#"{"op":"write","device":"nv1","offset":0,"text":"a"},{"op":"inject_fsync_error","device":"nv1"}"#,
        );
        let e = Plan::new(&s).unwrap_err().to_string();
        assert!(e.starts_with("step 1 (inject_fsync_error): the real system cannot do this step"), "{e}");
    }

    #[test]
    fn mmap_steps_ask_for_the_dax_scratch_device() {
        let s = scenario(r#"{"op":"mmap","device":"nv1","map_sync":true},{"op":"mmap","device":"nv1"}"#);
        let p = Plan::new(&s).unwrap();
        assert!(p.dax);
        assert_eq!(p.steps_file(), "0 mmap 0 1\n1 mmap 0 0\n");
        assert!(!Plan::new(&scenario(r#"{"op":"fsync","device":"nv1"}"#)).unwrap().dax);
    }

    #[test]
    fn mmap_with_a_hotplug_is_refused() {
        let s = scenario(
            r#"{"op":"mmap","device":"nv1"},{"op":"hotplug","device":{"id":"nv2","size":"1M","mem-path":"b.img"}}"#,
        );
        let e = Plan::new(&s).unwrap_err().to_string();
        assert!(e.starts_with("step 0 (mmap)") && e.contains("hot-plugs"), "{e}");
    }
}
