//! The oracle's report: per step, model against real, as a text table or
//! JSON, and the list of what is compared and what is not.

use super::compare::Quantity;
use super::probe::HostFolios;
use super::qemu::TraceCounts;
use serde::Serialize;
use std::fmt::Write as _;

/// What is compared, step by step.
pub const COMPARED: [&str; 9] = [
    "result of each guest step (write, read, fsync/msync) and of hotplug/unplug, and QEMU's refusal message for unplug against the one the model quotes",
    "flush requests and responses per step (QEMU trace virtio_pmem_flush_request / virtio_pmem_response, all devices together: the events carry no device)",
    "dirty and writeback pages of each backing file after each step (cachestat), the model's dirty pages counted in whole host folios with --host-folios thp",
    "device status register (the guest's /sys/bus/virtio/devices/*/status)",
    "memaddr and size of each device (QMP query-memory-devices)",
    "data read by the guest (read, expect_data)",
    "data on the host's disk for expect_durable, and the crash image at a power failure: the fsync'd copy of each page the scenario touches (the last content cachestat showed clean)",
    "the result of the last flush (expect_flush)",
    "mmap steps: the result (MAP_SYNC refused with EOPNOTSUPP or not) and whether the mapping is DAX (statx), probed on a DAX-mounted ext4 on a scratch virtio-pmem device plugged after the scenario's (a file system on a scenario device would change its bytes)",
];

/// What is shown or not run, and why.
pub const NOT_COMPARED: [&str; 8] = [
    "power failure: a real host cannot lose power on request; QEMU is killed, each backing file is rewritten with its fsync'd copy and synced, and QEMU boots again on it (torn pages are not produced)",
    "guest crash: a real kernel panic (sysrq c) ends QEMU (-no-reboot), which boots again on the same files; vmm_kill: SIGKILL of QEMU, then a new QEMU",
    "cached pages are shown, not compared (read-ahead and folio sizes differ from the model)",
    "timing: the model's simulated nanoseconds against wall-clock milliseconds; a wait step sleeps for real, so the host flusher runs at its own phase",
    "the flush at guest poweroff (the pmem shutdown path) is reported after the last step, not compared",
    "evicted pages and the host's memory pressure",
    "the DAX scratch device of mmap steps: its file is not probed, and it is not in the model (a scenario with mmap steps and a hotplug is refused: the scratch device would move the hot-plugged one)",
    "steps the guest agent cannot do (injected fsync errors, NVDIMM modes, non-blocking flushes) stop the run with exit code 2",
];

/// One step.
#[derive(Clone, Debug, Serialize)]
pub struct StepRow {
    /// Position.
    pub index: usize,
    /// The op.
    pub op: String,
    /// What the model did.
    pub model: String,
    /// What happened on the real side beyond the figures.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub real: String,
    /// The quantities.
    pub quantities: Vec<Quantity>,
}

/// A device as the guest saw it.
#[derive(Clone, Debug, Serialize)]
pub struct GuestDevice {
    /// /dev/pmemN.
    pub index: usize,
    /// Size in bytes.
    pub size: u64,
    /// The namespace's start address, as the guest sees it.
    pub resource: Option<u64>,
}

/// The whole comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The host folio unit in effect.
    pub host_folios: HostFolios,
    /// True when every compared quantity agrees.
    pub agree: bool,
    /// Compared quantities that disagree.
    pub disagreements: usize,
    /// Guest kernel release.
    pub kernel: String,
    /// Guest boots (one, plus one per crash step).
    pub boots: u32,
    /// Wall time of the whole run, seconds.
    pub wall_seconds: f64,
    /// Trace events after the last step (the poweroff flush).
    pub after_last_step: TraceCounts,
    /// Whether the guest powered off by itself after the last step.
    pub powered_off: bool,
    /// The guest's nd_virtio.
    pub driver: super::driver::Driver,
    /// The slow-disk delay of QEMU's syncs, if any.
    pub host_fsync_delay_ms: Option<f64>,
    /// The devices as the guest saw them.
    pub guest_devices: Vec<GuestDevice>,
    /// Every step.
    pub steps: Vec<StepRow>,
    /// What is compared.
    pub compared: Vec<&'static str>,
    /// What is not, and why.
    pub not_compared: Vec<&'static str>,
}

impl Report {
    /// The report as a readable table.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let folios = match self.host_folios {
            HostFolios::Small => "4 KiB (pre-read)",
            HostFolios::Huge => "2 MiB (QEMU's MADV_HUGEPAGE)",
        };
        let _ = writeln!(s, "oracle: {} — model (pmem-core) vs real QEMU, Linux {} guest", self.scenario, self.kernel);
        let _ = writeln!(s, "host folios: {folios}; guest boots: {}; wall time {:.1} s", self.boots, self.wall_seconds);
        let _ = writeln!(s, "{:<44} {:<28} {:<28} verdict", "quantity", "model", "real");
        for st in &self.steps {
            let _ = writeln!(s, "step {} ({}): {}", st.index, st.op, st.model);
            if !st.real.is_empty() {
                let _ = writeln!(s, "  real: {}", st.real);
            }
            for q in &st.quantities {
                let name = match &q.device {
                    Some(d) => format!("{} [{d}]", q.name),
                    None => q.name.clone(),
                };
                let verdict = match (q.compared, q.agree) {
                    (false, _) => "shown",
                    (true, true) => "agree",
                    (true, false) => "DISAGREE",
                };
                let _ = writeln!(s, "  {:<42} {:<28} {:<28} {verdict}", name, q.model, q.real);
            }
        }
        let a = &self.after_last_step;
        let _ =
            writeln!(s, "after the last step (poweroff): {} flush request(s), {} response(s)", a.requests, a.responses);
        let _ = writeln!(
            s,
            "{}",
            if self.agree {
                "every compared quantity agrees".to_string()
            } else {
                format!(
                    "{} compared quantit{} DISAGREE",
                    self.disagreements,
                    if self.disagreements == 1 { "y" } else { "ies" }
                )
            }
        );
        let _ = writeln!(s, "compared:");
        for c in COMPARED {
            let _ = writeln!(s, "  - {c}");
        }
        let _ = writeln!(s, "not compared:");
        for c in NOT_COMPARED {
            let _ = writeln!(s, "  - {c}");
        }
        s
    }
}
