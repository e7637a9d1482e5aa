//! [`Vm`]: a [`Machine`] with QEMU's objects and devices on top.
//!
//! Memory backends (`object_add`) are opened as [`FileBackend`]s at once, as
//! QEMU opens `mem-path` when the object is created; a device
//! (`device_add`) takes its backend into the machine, hot-plugged when the
//! machine has already run. Device ids and object ids are separate name
//! spaces, as in QEMU. The machine's flush requests fail with status 1
//! (EIO), as QEMU writes.

use super::config::{MemoryBackendFile, QemuConfig, VirtioPmemPci};
use crate::backend::{FileBackend, FileBackendError, FileBackendOptions, FileBackendProbe};
use crate::created::CreatedFiles;
use pmem_core::device::FailureStatus;
use pmem_core::event::Event;
use pmem_core::guest::FlushResult;
use pmem_core::memory::GuestAddress;
use pmem_core::sim::{DeviceMemoryConfig, DeviceSnapshot, DeviceSpec, Machine, MachineError, MachineType, SimConfig};
use pmem_core::size::human_size;

/// Steps a guest command may run the machine for before giving up.
pub const MAX_STEPS: u64 = 1_000_000;

/// Why a monitor or command-line operation failed: one sentence.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// The backing file could not be used.
    #[error("memory-backend-file '{id}': {source}")]
    Backend {
        /// The object.
        id: String,
        /// Why.
        source: FileBackendError,
    },
    /// The machine refused.
    #[error("{0}")]
    Machine(#[from] MachineError),
    /// Anything else, as a sentence.
    #[error("{0}")]
    Refused(String),
}

struct ObjectSlot {
    cfg: MemoryBackendFile,
    backend: Option<FileBackend>,
    probe: FileBackendProbe,
    used_by: Option<String>,
}

struct DeviceSlot {
    cfg: VirtioPmemPci,
    probe: FileBackendProbe,
}

/// A memory backend, for reports.
#[derive(Debug)]
pub struct ObjectView<'a> {
    /// Its configuration.
    pub cfg: &'a MemoryBackendFile,
    /// Its file.
    pub probe: &'a FileBackendProbe,
    /// The device using it.
    pub used_by: Option<&'a str>,
}

/// A plugged device, for reports.
#[derive(Debug)]
pub struct DeviceView<'a> {
    /// Its configuration.
    pub cfg: &'a VirtioPmemPci,
    /// Its backend's file.
    pub probe: &'a FileBackendProbe,
    /// The machine's snapshot of it.
    pub snapshot: DeviceSnapshot,
}

/// What a guest `fsync`/`msync` came to.
#[derive(Debug)]
pub struct FlushOutcome {
    /// What the application got (`None`: no answer yet).
    pub result: Option<FlushResult>,
    /// Events of the round trip.
    pub events: Vec<Event>,
    /// Wall-clock latency of the host sync it caused, ns.
    pub sync_ns: Option<u64>,
}

/// The simulated guest with QEMU's objects and devices.
///
/// The backing files its objects created are removed when it is dropped,
/// unless [`Vm::keep_created_files`] was called (the session ended well).
pub struct Vm {
    machine: Machine,
    objects: Vec<ObjectSlot>,
    devices: Vec<DeviceSlot>,
    created: CreatedFiles,
    /// The guest runs: a `device_add` is a hot-plug.
    running: bool,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm")
            .field("machine", &self.machine)
            .field("objects", &self.objects.iter().map(|o| &o.cfg.id).collect::<Vec<_>>())
            .finish()
    }
}

impl Vm {
    /// A guest with `ram_size` bytes of RAM, QEMU's device memory as
    /// `device_memory` says (`-machine`, `-m …,slots=,maxmem=`), a
    /// 128-entry queue per device (as QEMU), and no devices.
    pub fn new(ram_size: u64, device_memory: DeviceMemoryConfig) -> Vm {
        Vm::with_sim_config(SimConfig { ram_size, queue_size: 128, device_memory, ..SimConfig::default() })
    }

    /// A guest with an explicit simulation configuration.
    pub fn with_sim_config(cfg: SimConfig) -> Vm {
        Vm {
            machine: Machine::new(cfg),
            objects: Vec::new(),
            devices: Vec::new(),
            created: CreatedFiles::new(),
            running: true,
        }
    }

    /// Builds the guest of a command line: every object, then every device
    /// (as QEMU does). On failure the guest is dropped, and with it the
    /// files this call created. Returns the notes the objects produced.
    pub fn from_config(cfg: &QemuConfig) -> Result<(Vm, Vec<String>), VmError> {
        let mut vm = Vm::new(cfg.memory.ram_size, cfg.device_memory());
        vm.running = false;
        let mut notes = Vec::new();
        for o in &cfg.objects {
            notes.extend(vm.object_add(o.clone())?);
        }
        for d in &cfg.devices {
            vm.device_add(d.clone())?;
        }
        vm.running = true;
        Ok((vm, notes))
    }

    /// The session ended well: the backing files the objects created stay
    /// when the guest is dropped.
    pub fn keep_created_files(&mut self) {
        std::mem::take(&mut self.created).keep();
    }

    /// The machine.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// `object_add memory-backend-file,…`: opens (or creates) the file.
    /// Returns notes worth telling the user (file created, share=off, …).
    pub fn object_add(&mut self, cfg: MemoryBackendFile) -> Result<Vec<String>, VmError> {
        if self.objects.iter().any(|o| o.cfg.id == cfg.id) {
            return Err(VmError::Refused(format!("an object with id '{}' already exists", cfg.id)));
        }
        let others = self.objects.iter().map(|o| (o.cfg.id.as_str(), o.probe.info().path.as_path()));
        let super::backing::OpenedBacking { backend, mut notes } = super::backing::open_backing(&cfg, others)?;
        let probe = backend.probe();
        let info = probe.info();
        if info.created {
            self.created.add(&info.path);
            notes.push(format!("{}: created {} ({}, sparse)", cfg.id, info.path.display(), human_size(info.size)));
        }
        if let Some(old) = info.resized_from {
            notes.push(format!(
                "{}: resized {} from {old} to {} bytes (resize=on)",
                cfg.id,
                info.path.display(),
                info.size
            ));
        }
        if !cfg.share {
            notes.push(format!(
                "{}: share=off: guest stores go to private copy-on-write pages and never reach {}, whatever the guest syncs",
                cfg.id,
                info.path.display()
            ));
        }
        if cfg.pmem {
            notes.push(format!(
                "{}: pmem=on tells QEMU the file is real persistent memory; {} is an ordinary file here, so durability still comes from the flush requests",
                cfg.id,
                info.path.display()
            ));
        }
        self.objects.push(ObjectSlot { cfg, backend: Some(backend), probe, used_by: None });
        Ok(notes)
    }

    /// `object_del ID`: only for objects no device uses (the file stays).
    pub fn object_del(&mut self, id: &str) -> Result<(), VmError> {
        let i = self
            .objects
            .iter()
            .position(|o| o.cfg.id == id)
            .ok_or_else(|| VmError::Refused(format!("object '{id}' not found")))?;
        if self.objects[i].used_by.is_some() {
            return Err(VmError::Refused(format!("object '{id}' is in use, can not be deleted")));
        }
        self.objects.remove(i);
        Ok(())
    }

    /// `device_add virtio-pmem-pci,…`: plugs (or hot-plugs) a device on its
    /// memory backend.
    pub fn device_add(&mut self, cfg: VirtioPmemPci) -> Result<(), VmError> {
        if self.devices.iter().any(|d| d.cfg.id == cfg.id) {
            return Err(VmError::Refused(format!("Duplicate device ID '{}'", cfg.id)));
        }
        if self.running && cfg.bus.is_none() && self.machine.config().device_memory.machine == MachineType::Q35 {
            // qdev_device_add: q35's root bus is not hot-pluggable.
            return Err(VmError::Refused(
                "Bus 'pcie.0' does not support hotplugging (q35: hot-plug into a root port, -device pcie-root-port,id=rp1 on the command line and bus=rp1 here)".into(),
            ));
        }
        let Some(oi) = self.objects.iter().position(|o| o.cfg.id == cfg.memdev) else {
            return Err(VmError::Refused(format!(
                "device '{}': memdev '{}' is not defined (QEMU: Property 'virtio-pmem-pci.memdev' can't find value '{}')",
                cfg.id, cfg.memdev, cfg.memdev
            )));
        };
        if self.objects[oi].used_by.is_some() {
            return Err(VmError::Refused(format!("can't use already busy memdev: {}", cfg.memdev)));
        }
        let obj = self.objects[oi].cfg.clone();
        // The machine places it, by QEMU's rules (`memaddr`, `align`, `maxmem`).
        let mut spec = DeviceSpec::new(&cfg.id, obj.size);
        spec.start = cfg.memaddr.map(GuestAddress);
        spec.align = obj.align;
        spec.indirect_desc = cfg.indirect_desc;
        spec.readonly = obj.readonly;
        spec.failure_status = FailureStatus::Qemu;
        (spec.vmm, spec.driver) = (Some(super::config::VMM), Some(super::config::DRIVER));
        let backend = match self.objects[oi].backend.take() {
            Some(b) => b,
            None => open_backend(&obj)?,
        };
        let probe = backend.probe();
        if let Err(e) = self.machine.add_device_with_backend(spec, Box::new(backend)) {
            // The machine dropped the backend: map the file again, so the
            // object stays usable.
            self.objects[oi].backend = open_backend(&obj).ok();
            return Err(e.into());
        }
        self.objects[oi].used_by = Some(cfg.id.clone());
        self.devices.push(DeviceSlot { cfg, probe });
        Ok(())
    }

    /// `device_del ID`: always refused for an existing device (virtio-pmem
    /// cannot be unplugged); the refusal is in the event log.
    pub fn device_del(&mut self, id: &str) -> Result<(), VmError> {
        if !self.devices.iter().any(|d| d.cfg.id == id) {
            return Err(VmError::Refused(format!("Device '{id}' not found")));
        }
        Ok(self.machine.remove_device(id)?)
    }

    /// The memory backends, in order.
    pub fn objects(&self) -> impl Iterator<Item = ObjectView<'_>> {
        self.objects.iter().map(|o| ObjectView { cfg: &o.cfg, probe: &o.probe, used_by: o.used_by.as_deref() })
    }

    /// The devices, in order.
    pub fn devices(&self) -> Vec<DeviceView<'_>> {
        self.devices
            .iter()
            .filter_map(|d| {
                let snapshot = self.machine.device_snapshot(&d.cfg.id).ok()?;
                Some(DeviceView { cfg: &d.cfg, probe: &d.probe, snapshot })
            })
            .collect()
    }

    /// One device.
    pub fn device(&self, id: &str) -> Result<DeviceView<'_>, VmError> {
        let d = self
            .devices
            .iter()
            .find(|d| d.cfg.id == id)
            .ok_or_else(|| VmError::Refused(format!("Device '{id}' not found")))?;
        Ok(DeviceView { cfg: &d.cfg, probe: &d.probe, snapshot: self.machine.device_snapshot(id)? })
    }

    /// The guest stores `data` at `offset` of device `id`.
    pub fn write(&mut self, id: &str, offset: u64, data: &[u8]) -> Result<(), VmError> {
        self.device(id)?;
        Ok(self.machine.guest_write(id, offset, data)?)
    }

    /// The guest loads `len` bytes at `offset` of device `id`.
    pub fn read(&mut self, id: &str, offset: u64, len: u64) -> Result<Vec<u8>, VmError> {
        self.device(id)?;
        Ok(self.machine.guest_read(id, offset, len)?)
    }

    /// The guest syncs device `id`: a flush request through the virtqueue,
    /// then the machine runs until idle.
    pub fn flush(&mut self, id: &str) -> Result<FlushOutcome, VmError> {
        let probe = self.device(id)?.probe.clone();
        let syncs_before = probe.sync_stats().syncs;
        let first = self.machine.log().len();
        let req = self.machine.flush(id)?;
        self.machine.run_until_idle(MAX_STEPS);
        let result = self.machine.flush_result(id, req)?;
        let stats = probe.sync_stats();
        let sync_ns = if stats.syncs > syncs_before { stats.last_ns } else { None };
        Ok(FlushOutcome { result, events: self.machine.log().events()[first..].to_vec(), sync_ns })
    }
}

fn open_backend(cfg: &MemoryBackendFile) -> Result<FileBackend, VmError> {
    let opts =
        FileBackendOptions::new(&cfg.mem_path, cfg.size).share(cfg.share).readonly(cfg.readonly).resize(cfg.resize);
    FileBackend::open(&opts).map_err(|source| VmError::Backend { id: cfg.id.clone(), source })
}
