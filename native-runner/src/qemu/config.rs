//! The QEMU objects and devices pmemlab models, read from QEMU's own syntax,
//! and the whole command line around them.
//!
//! - `-object memory-backend-file,id=ID,mem-path=FILE,size=SIZE[,share=on]
//!   [,readonly=on][,pmem=on][,align=SIZE][,resize=on]` →
//!   [`MemoryBackendFile`]. `share` defaults to off, as in QEMU (stores then
//!   never reach the file). `resize=on` is pmemlab's own: permission to
//!   change the size of an existing file (QEMU refuses a smaller file and
//!   maps the start of a larger one; pmemlab refuses both unless asked).
//!   Other memory backends (`memory-backend-ram`, `-memfd`) are guest RAM:
//!   taken with a note, refused as a virtio-pmem device's `memdev`.
//! - `-device virtio-pmem-pci,id=ID,memdev=ID[,memaddr=ADDR]
//!   [,indirect_desc=on|off]` → [`VirtioPmemPci`]. pmemlab needs the `id`
//!   (the monitor's commands name devices by it); QEMU would make one up.
//! - `-m [size=]SIZE[,slots=N][,maxmem=SIZE]` →
//!   [`pmem_core::sim::MemoryOptions`]: RAM (MiB unless suffixed; default
//!   128M as QEMU) and the room for memory devices (without `maxmem` QEMU
//!   refuses every virtio-pmem device, and so does pmemlab).
//! - `-machine pc|q35|…` and every other QEMU 7.2 option: [`super::cmdline`].
//!
//! A QEMU option that would change the answer is refused with the reason;
//! one that would not is taken with a one-line note.

use super::cmdline::{self, Other};
use super::opts::{Opts, OptsError};
use pmem_core::sim::{DeviceMemoryConfig, MachineType, MemoryOptions};
use pmem_core::size::{parse_size, SizeError};
use std::path::PathBuf;

/// QEMU's default guest RAM (`-m` absent): 128 MiB.
pub const DEFAULT_RAM: u64 = 128 << 20;

/// Options of `memory-backend-file` that pmemlab understands.
pub const BACKEND_OPTIONS: &str = "id, mem-path, size, share, readonly, pmem, align, resize";
/// Options of `virtio-pmem-pci` that pmemlab understands.
pub const DEVICE_OPTIONS: &str = "id, memdev, memaddr, indirect_desc, bus";

/// Options of an option string, each with why it does not change the
/// answer (noted) or does (refused).
type Reasons = &'static [(&'static str, &'static str)];

/// QEMU 7.2's other `memory-backend-file` options, with why pmemlab takes
/// them with a note.
const BACKEND_NOTED: Reasons = &[
    ("prealloc", "QEMU writes every page of the file when it starts, so the host's page cache starts with the whole file dirty; pmemlab starts clean: dirty-page counts differ until the first flush, what is durable does not"),
    ("prealloc-threads", "threads for prealloc"),
    ("prealloc-context", "threads for prealloc"),
    ("dump", "core dumps are not modelled"),
    ("merge", "KSM merging does not change the file's content"),
    ("host-nodes", "NUMA placement of the host's pages does not change their content"),
    ("policy", "NUMA placement of the host's pages does not change their content"),
    ("reserve", "swap reservation does not change the file's content"),
    ("x-use-canonical-path-for-ramblock-id", "a migration naming detail"),
];

/// QEMU 7.2's `memory-backend-file` options refused, with why.
const BACKEND_REFUSED: Reasons = &[(
    "discard-data",
    "QEMU throws the file's pages away when it exits, so nothing the guest wrote is kept; pmemlab does not model that",
)];

/// QEMU 7.2's other `virtio-pmem-pci` properties, taken with a note.
const DEVICE_NOTED: Reasons = &[
    ("event_idx", "QEMU pops each flush before the guest's kick returns, so event suppression never changed a kick (REAL-QEMU.md)"),
    ("packed", "the model draws a split ring; a packed ring carries the same one request per flush"),
    ("addr", "PCI topology"),
    ("multifunction", "PCI topology"),
    ("acpi-index", "PCI topology"),
    ("aer", "PCI error reporting"),
    ("rombar", "option ROM"),
    ("romfile", "option ROM"),
    ("romsize", "option ROM"),
    ("disable-legacy", "virtio transport version"),
    ("disable-modern", "virtio transport version"),
    ("modern-pio-notify", "how the guest notifies, not what the device does"),
    ("page-per-vq", "how the guest notifies, not what the device does"),
    ("ats", "IOMMU"),
    ("iommu_platform", "IOMMU"),
    ("any_layout", "Linux sends the same two buffers either way"),
    ("notify_on_empty", "virtio-pmem's queue has no such notification"),
    ("queue_reset", "Linux's nd_virtio never resets the queue"),
    ("failover_pair_id", "networking failover"),
    ("migrate-extra", "migration"),
    ("use-disabled-flag", "migration"),
    ("use-started", "migration"),
    ("virtio-pci-bus-master-bug-migration", "migration"),
    ("x-ats-page-aligned", "IOMMU"),
    ("x-disable-legacy-check", "virtio transport version"),
    ("x-disable-pcie", "PCI topology"),
    ("x-ignore-backend-features", "migration"),
    ("x-pcie-deverr-init", "PCI topology"),
    ("x-pcie-extcap-init", "PCI topology"),
    ("x-pcie-flr-init", "PCI topology"),
    ("x-pcie-lnkctl-init", "PCI topology"),
    ("x-pcie-lnksta-dllla", "PCI topology"),
    ("x-pcie-pm-init", "PCI topology"),
];

/// Why a QEMU argument is refused: one sentence naming the problem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Bad option syntax.
    #[error("{what}: {source}")]
    Opts {
        /// The argument.
        what: String,
        /// The problem.
        source: OptsError,
    },
    /// A bad size.
    #[error("{what}: {key}={source}")]
    Size {
        /// The argument.
        what: String,
        /// The key.
        key: &'static str,
        /// The problem.
        source: SizeError,
    },
    /// An object type pmemlab does not model.
    #[error("object type '{0}' is not supported: a virtio-pmem device here is backed by memory-backend-file (a real file to map and sync)")]
    ObjectType(String),
    /// A device type pmemlab does not model.
    #[error("{0}")]
    DeviceType(String),
    /// A required option is missing.
    #[error("{what}: '{key}' is missing ({why})")]
    Missing {
        /// The argument.
        what: String,
        /// The key.
        key: &'static str,
        /// What it is for.
        why: &'static str,
    },
    /// An unknown option.
    #[error("{what}: unknown option '{key}' (accepted: {accepted})")]
    Unknown {
        /// The argument.
        what: String,
        /// The key.
        key: String,
        /// What is accepted.
        accepted: &'static str,
    },
    /// A real QEMU option that would change the answer.
    #[error("{what}: {key} is refused: {why}")]
    Unmodelled {
        /// The argument.
        what: String,
        /// The key and value.
        key: String,
        /// Why it would change the answer.
        why: &'static str,
    },
    /// A bad value.
    #[error("{what}: {problem}")]
    Value {
        /// The argument.
        what: String,
        /// The problem.
        problem: String,
    },
    /// An argument that is not `-object`, `-device` or `-m`.
    #[error("{0}")]
    Argument(String),
}

/// `-object memory-backend-file,…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryBackendFile {
    /// Object id.
    pub id: String,
    /// The backing file.
    pub mem_path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// `MAP_SHARED` (on) or `MAP_PRIVATE` (off, QEMU's default).
    pub share: bool,
    /// Read-only mapping.
    pub readonly: bool,
    /// `pmem=on`: QEMU treats the file as real persistent memory.
    pub pmem: bool,
    /// `align=`: alignment of the region in guest-physical space.
    pub align: Option<u64>,
    /// pmemlab's `resize=on`.
    pub resize: bool,
    /// Notes on the options taken but not modelled.
    pub notes: Vec<String>,
}

/// `-device virtio-pmem-pci,…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtioPmemPci {
    /// Device id.
    pub id: String,
    /// The memory backend's id.
    pub memdev: String,
    /// Guest-physical address of the region (`memaddr=`), if fixed.
    pub memaddr: Option<u64>,
    /// `indirect_desc=` (default on): offer VIRTIO_F_INDIRECT_DESC.
    pub indirect_desc: bool,
    /// `bus=`: the PCI bus (not modelled, but on q35 only a device given a
    /// bus, a root port, can be hot-plugged).
    pub bus: Option<String>,
    /// Notes on the properties taken but not modelled.
    pub notes: Vec<String>,
}

/// The host side a `virtio-pmem-pci` device of a command line reproduces:
/// QEMU's own (one element popped per notification, in the vCPU; an empty
/// queue at a notification breaks the device; queue 128; status 1).
pub const VMM: pmem_core::device::Vmm = pmem_core::device::Vmm::Qemu;

/// The guest driver assumed behind a command line: Linux's nd_virtio with
/// `flush_lock`, as Debian's 6.1 kernel ships it.
pub const DRIVER: pmem_core::guest::DriverPersonality = pmem_core::guest::DriverPersonality::LinuxSerialized;

/// A whole QEMU command line, as far as pmemlab models it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuConfig {
    /// `-m`: guest RAM, `slots`, `maxmem`.
    pub memory: MemoryOptions,
    /// `-machine`: the machine type.
    pub machine: MachineType,
    /// Memory backends, in order.
    pub objects: Vec<MemoryBackendFile>,
    /// Devices, in order.
    pub devices: Vec<VirtioPmemPci>,
    /// Ids of the other memory backends (guest RAM: `memory-backend-ram`,
    /// `memory-backend-memfd`).
    pub ram_backends: Vec<String>,
    /// One line per option taken but not modelled.
    pub notes: Vec<String>,
}

/// QEMU's rule for ids: a letter, then letters, digits, `-`, `.`, `_`.
pub fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// Checks the keys of an option string: `known` are read, `noted` taken
/// with a note (returned), `refused` refused with their reason, any other
/// key is one QEMU 7.2 does not have.
fn check_keys(
    what: &str,
    opts: &Opts,
    known: &[&str],
    (noted, refused): (Reasons, Reasons),
    accepted: &'static str,
) -> Result<Vec<String>, ConfigError> {
    let mut notes = Vec::new();
    for (k, v) in &opts.pairs {
        if known.contains(&k.as_str()) {
            continue;
        }
        let what = what.to_string();
        if let Some((_, why)) = noted.iter().find(|(n, _)| n == k) {
            notes.push(format!("{what}: {k}={v} is not modelled ({why})"));
        } else if let Some((_, why)) = refused.iter().find(|(n, _)| n == k) {
            return Err(ConfigError::Unmodelled { what, key: format!("{k}={v}"), why });
        } else {
            return Err(ConfigError::Unknown { what, key: k.clone(), accepted });
        }
    }
    Ok(notes)
}

fn id_of(what: &str, opts: &Opts, why: &'static str) -> Result<String, ConfigError> {
    let id = opts.get("id").ok_or(ConfigError::Missing { what: what.into(), key: "id", why })?;
    if !valid_id(id) {
        return Err(ConfigError::Value {
            what: what.into(),
            problem: format!("id '{id}' is not an identifier: it must start with a letter and contain only letters, digits, '-', '.' and '_'"),
        });
    }
    Ok(id.to_string())
}

impl MemoryBackendFile {
    /// Parses the option string of `-object` / `object_add`.
    pub fn parse(text: &str) -> Result<MemoryBackendFile, ConfigError> {
        let what = "memory-backend-file";
        let opts = Opts::parse(text).map_err(|source| ConfigError::Opts { what: "-object".into(), source })?;
        match opts.kind.as_deref() {
            Some("memory-backend-file") => {}
            Some(other) => return Err(ConfigError::ObjectType(other.to_string())),
            None => {
                return Err(ConfigError::Value {
                    what: "-object".into(),
                    problem: "the object type must come first (e.g. memory-backend-file,id=mem1,…)".into(),
                })
            }
        }
        let notes = check_keys(
            what,
            &opts,
            &["id", "mem-path", "size", "share", "readonly", "pmem", "align", "resize"],
            (BACKEND_NOTED, BACKEND_REFUSED),
            BACKEND_OPTIONS,
        )?;
        let id = id_of(what, &opts, "every object needs an id")?;
        let what = format!("memory-backend-file '{id}'");
        let opts_err = |source| ConfigError::Opts { what: what.clone(), source };
        let mem_path = opts.get("mem-path").filter(|p| !p.is_empty()).ok_or(ConfigError::Missing {
            what: what.clone(),
            key: "mem-path",
            why: "the backing file",
        })?;
        let size_text =
            opts.get("size").ok_or(ConfigError::Missing { what: what.clone(), key: "size", why: "e.g. size=4G" })?;
        let size =
            parse_size(size_text).map_err(|source| ConfigError::Size { what: what.clone(), key: "size", source })?;
        if size == 0 {
            return Err(ConfigError::Value { what, problem: "size=0: a memory backend cannot be empty".into() });
        }
        if !size.is_multiple_of(4096) {
            return Err(ConfigError::Value {
                what,
                problem: format!(
                    "size={size_text} ({size} bytes) is not a multiple of 4096: pmemlab's backing files are whole 4 KiB pages (QEMU would round it up)"
                ),
            });
        }
        let align = match opts.get("align") {
            None => None,
            Some(t) => {
                let a =
                    parse_size(t).map_err(|source| ConfigError::Size { what: what.clone(), key: "align", source })?;
                if a < 4096 || !a.is_power_of_two() {
                    return Err(ConfigError::Value {
                        what,
                        problem: format!("align={t} must be a power of two of at least 4K (e.g. align=2M)"),
                    });
                }
                Some(a)
            }
        };
        Ok(MemoryBackendFile {
            mem_path: PathBuf::from(mem_path),
            size,
            share: opts.get_bool("share").map_err(opts_err)?.unwrap_or(false),
            readonly: opts.get_bool("readonly").map_err(opts_err)?.unwrap_or(false),
            pmem: opts.get_bool("pmem").map_err(opts_err)?.unwrap_or(false),
            resize: opts.get_bool("resize").map_err(opts_err)?.unwrap_or(false),
            align,
            id,
            notes,
        })
    }
}

impl VirtioPmemPci {
    /// Parses the option string of `-device` / `device_add`.
    pub fn parse(text: &str) -> Result<VirtioPmemPci, ConfigError> {
        let opts = Opts::parse(text).map_err(|source| ConfigError::Opts { what: "-device".into(), source })?;
        match opts.kind.as_deref() {
            Some("virtio-pmem-pci") => {}
            Some("nvdimm") => {
                return Err(ConfigError::DeviceType(
                    "device type 'nvdimm' is not modelled: this lab runs virtio-pmem-pci (an emulated NVDIMM on a regular file never syncs it)".into(),
                ))
            }
            Some(other) => {
                return Err(ConfigError::DeviceType(format!(
                    "device type '{other}' is not supported: pmemlab models virtio-pmem-pci only"
                )))
            }
            None => {
                return Err(ConfigError::Value {
                    what: "-device".into(),
                    problem: "the device type must come first (e.g. virtio-pmem-pci,memdev=mem1,id=nv1)".into(),
                })
            }
        }
        let what = "virtio-pmem-pci";
        let notes = check_keys(
            what,
            &opts,
            &["id", "memdev", "memaddr", "indirect_desc", "bus"],
            (DEVICE_NOTED, &[]),
            DEVICE_OPTIONS,
        )?;
        let id = id_of(what, &opts, "pmemlab names devices by id in the monitor")?;
        let what = format!("virtio-pmem-pci '{id}'");
        let memdev = opts.get("memdev").ok_or(ConfigError::Missing {
            what: what.clone(),
            key: "memdev",
            why: "QEMU: \"'memdev' property is not set\"",
        })?;
        let memaddr = match opts.get("memaddr") {
            None => None,
            Some(t) => {
                let a =
                    parse_size(t).map_err(|source| ConfigError::Size { what: what.clone(), key: "memaddr", source })?;
                if !a.is_multiple_of(4096) {
                    return Err(ConfigError::Value {
                        what,
                        problem: format!("memaddr={t} is not aligned to 4096 bytes"),
                    });
                }
                Some(a)
            }
        };
        let indirect_desc = opts
            .get_bool("indirect_desc")
            .map_err(|source| ConfigError::Opts { what: what.clone(), source })?
            .unwrap_or(true);
        let bus = opts.get("bus").map(str::to_string);
        let mut notes = notes;
        if let Some(b) = &bus {
            notes.push(format!(
                "{what}: bus={b} is not modelled (PCI topology; on q35 it is what lets a device be hot-plugged)"
            ));
        }
        Ok(VirtioPmemPci { id, memdev: memdev.to_string(), memaddr, indirect_desc, bus, notes })
    }
}

impl QemuConfig {
    /// Reads a QEMU command line (the arguments after `pmemlab qemu`), and
    /// checks it as a whole: the `-m` and `-machine` rules, unique ids,
    /// every device's memdev exists and is used once.
    pub fn from_args(args: &[String]) -> Result<QemuConfig, ConfigError> {
        let mut cfg = QemuConfig {
            memory: MemoryOptions { ram_size: DEFAULT_RAM, slots: None, maxmem: None },
            machine: MachineType::default(),
            objects: Vec::new(),
            devices: Vec::new(),
            ram_backends: Vec::new(),
            notes: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let flag = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'));
            let Some(flag) = flag.filter(|f| !f.is_empty()) else {
                return Err(ConfigError::Argument(format!(
                    "unexpected argument '{arg}': QEMU's options start with '-' (a disk image goes after -drive file=)"
                )));
            };
            if cmdline::is_flag(flag) {
                cfg.take(cmdline::other_option(flag, None)?);
                continue;
            }
            let Some(value) = it.next() else {
                if !matches!(flag, "object" | "device" | "m" | "machine" | "M") {
                    // An option QEMU does not have is named as such.
                    cmdline::other_option(flag, None)?;
                }
                return Err(ConfigError::Argument(format!("option '{arg}' needs a value")));
            };
            match flag {
                "object" => cfg.object(value)?,
                "device" => cfg.device(value)?,
                "m" => {
                    cfg.memory = MemoryOptions::parse(value).map_err(ConfigError::Argument)?;
                }
                other => cfg.take(cmdline::other_option(other, Some(value))?),
            }
        }
        cfg.check()?;
        Ok(cfg)
    }

    fn take(&mut self, other: Other) {
        match other {
            Other::Note(n) => self.notes.push(n),
            Other::Machine(kind, notes) => {
                self.machine = kind;
                self.notes.extend(notes);
            }
        }
    }

    /// `-object TYPE,…`: a file backend is modelled; guest-RAM backends and
    /// other objects are taken with a note.
    fn object(&mut self, value: &str) -> Result<(), ConfigError> {
        let opts = Opts::parse(value).map_err(|source| ConfigError::Opts { what: "-object".into(), source })?;
        match opts.kind.as_deref() {
            Some("memory-backend-file") | None => {
                let o = MemoryBackendFile::parse(value)?;
                self.notes.extend(o.notes.iter().cloned());
                self.objects.push(o);
            }
            Some(kind @ ("memory-backend-ram" | "memory-backend-memfd")) => {
                let id = opts.get("id").unwrap_or_default().to_string();
                self.notes
                    .push(format!("-object {kind},id={id}: guest RAM is not modelled (it holds no virtio-pmem data)"));
                self.ram_backends.push(id);
            }
            Some(kind) if kind.starts_with("memory-backend") => return Err(ConfigError::ObjectType(kind.into())),
            Some(kind) => {
                self.notes.push(format!("-object {kind}: not modelled; it does not touch the virtio-pmem device"))
            }
        }
        Ok(())
    }

    /// `-device TYPE,…`: virtio-pmem-pci is modelled; other memory devices
    /// are refused (they take room in the device memory, or are NVDIMMs);
    /// any other device is taken with a note.
    fn device(&mut self, value: &str) -> Result<(), ConfigError> {
        let opts = Opts::parse(value).map_err(|source| ConfigError::Opts { what: "-device".into(), source })?;
        match opts.kind.as_deref() {
            Some("virtio-pmem-pci" | "nvdimm" | "virtio-pmem") | None => {
                let d = VirtioPmemPci::parse(value)?;
                self.notes.extend(d.notes.iter().cloned());
                self.devices.push(d);
            }
            Some(kind @ ("pc-dimm" | "virtio-mem-pci" | "virtio-mem")) => {
                return Err(ConfigError::DeviceType(format!(
                    "device type '{kind}' is refused: it takes room in the device memory, which moves the virtio-pmem devices; pmemlab models virtio-pmem-pci only"
                )))
            }
            Some(kind) => self.notes.push(format!(
                "-device {kind}: not modelled; it does not touch the virtio-pmem device"
            )),
        }
        Ok(())
    }

    /// The machine's device-memory settings (checked when read).
    pub fn device_memory(&self) -> DeviceMemoryConfig {
        // `from_args` checked them; an unchecked config keeps QEMU's
        // "no maxmem".
        self.memory.config(self.machine).unwrap_or(DeviceMemoryConfig {
            machine: self.machine,
            slots: 0,
            maxmem: Some(self.memory.ram_size),
        })
    }

    /// Cross-checks: unique object ids, unique device ids, every memdev
    /// names an object, no object used twice.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (i, o) in self.objects.iter().enumerate() {
            if self.objects[..i].iter().any(|p| p.id == o.id) {
                return Err(ConfigError::Argument(format!("duplicate object id '{}'", o.id)));
            }
        }
        for (i, d) in self.devices.iter().enumerate() {
            if self.devices[..i].iter().any(|p| p.id == d.id) {
                return Err(ConfigError::Argument(format!("Duplicate device ID '{}'", d.id)));
            }
            if self.ram_backends.contains(&d.memdev) {
                return Err(ConfigError::Argument(format!(
                    "device '{}': memdev '{}' is guest RAM (memory-backend-ram/-memfd): refused, since a virtio-pmem device is only persistent on a memory-backend-file",
                    d.id, d.memdev
                )));
            }
            if !self.objects.iter().any(|o| o.id == d.memdev) {
                return Err(ConfigError::Argument(format!(
                    "device '{}': memdev '{}' is not defined (add -object memory-backend-file,id={},…)",
                    d.id, d.memdev, d.memdev
                )));
            }
            if let Some(p) = self.devices[..i].iter().find(|p| p.memdev == d.memdev) {
                return Err(ConfigError::Argument(format!(
                    "device '{}': can't use already busy memdev: {} (device '{}' uses it)",
                    d.id, d.memdev, p.id
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn reads_the_documented_command_line() {
        let cfg = QemuConfig::from_args(&args(&[
            "-object",
            "memory-backend-file,id=mem1,share,mem-path=./virtio_pmem.img,size=4G",
            "-device",
            "virtio-pmem-pci,memdev=mem1,id=nv1",
            "-object",
            "memory-backend-file,id=mem2,share=on,mem-path=b.img,size=64M,readonly=on,pmem=on,align=2M",
            "--device",
            "virtio-pmem-pci,id=nv2,memdev=mem2,memaddr=0x200000000",
            "-m",
            "2G,slots=2,maxmem=16G",
        ]))
        .unwrap();
        assert_eq!(cfg.memory.ram_size, 2 << 30);
        assert_eq!(cfg.device_memory().maxmem, Some(16 << 30));
        assert_eq!(cfg.objects.len(), 2);
        let m1 = &cfg.objects[0];
        assert_eq!((m1.id.as_str(), m1.size, m1.share, m1.readonly), ("mem1", 4 << 30, true, false));
        let m2 = &cfg.objects[1];
        assert!(m2.readonly && m2.pmem && m2.share);
        assert_eq!(m2.align, Some(2 << 20));
        assert_eq!(
            cfg.devices[1],
            VirtioPmemPci {
                id: "nv2".into(),
                memdev: "mem2".into(),
                memaddr: Some(0x2_0000_0000),
                indirect_desc: true,
                bus: None,
                notes: Vec::new()
            }
        );
        // share defaults to off, as in QEMU.
        let o = MemoryBackendFile::parse("memory-backend-file,id=m,mem-path=x,size=4K").unwrap();
        assert!(!o.share);
    }

    #[test]
    fn every_mistake_is_one_line_naming_it() {
        let cases: &[(&[&str], &str)] = &[
            (&["-object", "memory-backend-file,id=m,mem-path=x,size=4Q"], "size='4Q' is not a size"),
            (
                &["-object", "memory-backend-file,id=m,mem-path=x,size=4G,discard-data=on"],
                "discard-data=on is refused: QEMU throws",
            ),
            (&["-object", "memory-backend-file,id=m,mem-path=x,size=4G,colour=red"], "unknown option 'colour'"),
            (&["-object", "memory-backend-file,mem-path=x,size=4G"], "'id' is missing"),
            (&["-object", "memory-backend-file,id=m,size=4G"], "'mem-path' is missing"),
            (&["-object", "memory-backend-file,id=m,mem-path=x"], "'size' is missing"),
            (&["-object", "memory-backend-file,id=1m,mem-path=x,size=4K"], "not an identifier"),
            (&["-object", "memory-backend-file,id=m,mem-path=x,size=4K,align=3K"], "power of two"),
            (&["-object", "memory-backend-file,id=m,mem-path=x,size=5000"], "not a multiple of 4096"),
            (&["-object", "memory-backend-file,id=m,mem-path=x,size=0"], "cannot be empty"),
            (&["-object", "memory-backend-epc,id=m,size=4K"], "object type 'memory-backend-epc'"),
            (
                &["-object", "memory-backend-ram,id=m,size=4K", "-device", "virtio-pmem-pci,id=n,memdev=m"],
                "memdev 'm' is guest RAM",
            ),
            (&["-device", "virtio-pmem-pci,id=nv1"], "'memdev' is missing"),
            (&["-device", "virtio-pmem-pci,memdev=m"], "'id' is missing"),
            (&["-device", "nvdimm,memdev=m,id=n"], "'nvdimm' is not modelled"),
            (&["-device", "virtio-pmem-pci,id=n,memdev=m,ioeventfd=on"], "unknown option 'ioeventfd'"),
            (&["-device", "virtio-pmem-pci,id=n,memdev=nope"], "memdev 'nope' is not defined"),
            (&["-incoming", "tcp:0:4444"], "option '-incoming' is refused"),
            (&["-frobnicate"], "not one pmemlab knows"),
            (&["-m", "512M,slots=2"], "slots specified but no max-size"),
            (&["-object"], "needs a value"),
            (&["disk.img"], "unexpected argument 'disk.img'"),
            (&["-m", "lots"], "-m: size='lots'"),
            (&["-machine", "microvm"], "pmemlab models the pc (i440FX) and q35 machines"),
        ];
        for (a, want) in cases {
            let e = QemuConfig::from_args(&args(a)).unwrap_err().to_string();
            assert!(e.contains(want), "{a:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let obj = "memory-backend-file,id=m,mem-path=x,size=4K";
        let dup = QemuConfig::from_args(&args(&["-object", obj, "-object", obj])).unwrap_err();
        assert_eq!(dup.to_string(), "duplicate object id 'm'");
        let two = args(&[
            "-object",
            obj,
            "-device",
            "virtio-pmem-pci,id=a,memdev=m",
            "-device",
            "virtio-pmem-pci,id=a,memdev=m",
        ]);
        assert_eq!(QemuConfig::from_args(&two).unwrap_err().to_string(), "Duplicate device ID 'a'");
        let busy = args(&[
            "-object",
            obj,
            "-device",
            "virtio-pmem-pci,id=a,memdev=m",
            "-device",
            "virtio-pmem-pci,id=b,memdev=m",
        ]);
        assert!(QemuConfig::from_args(&busy).unwrap_err().to_string().contains("can't use already busy memdev: m"));
    }

    #[test]
    fn a_whole_real_command_line_is_taken_with_one_note_per_option_not_modelled() {
        // The seed's command line as REAL-QEMU.md runs it, plus the usual rest.
        let line = "-machine pc,accel=kvm -enable-kvm -accel tcg -smp 2 -cpu host -m 512M,slots=2,maxmem=2G \
            -nographic -no-reboot -serial mon:stdio -kernel vmlinux -initrd initrd.cpio \
            -append console=ttyS0 -drive file=disk.img,if=virtio,format=raw \
            -netdev user,id=n0 -device virtio-net-pci,netdev=n0 -name vm,debug-threads=on \
            -object memory-backend-ram,id=ram0,size=512M \
            -object memory-backend-file,id=mem1,share=on,mem-path=./virtio_pmem.img,size=1G,prealloc=on \
            -device virtio-pmem-pci,memdev=mem1,id=nv1,event_idx=off,indirect_desc=off";
        let a: Vec<String> = line.split_whitespace().filter(|w| *w != "\\").map(String::from).collect();
        let cfg = QemuConfig::from_args(&a).unwrap();
        assert_eq!(cfg.memory.maxmem, Some(2 << 30));
        assert_eq!((cfg.objects.len(), cfg.devices.len()), (1, 1));
        assert!(!cfg.devices[0].indirect_desc);
        for want in [
            "-machine accel=kvm",
            "-enable-kvm",
            "-accel tcg",
            "-smp 2",
            "-cpu host",
            "-nographic",
            "-no-reboot",
            "-serial mon:stdio",
            "-kernel vmlinux",
            "-initrd",
            "-append",
            "-drive",
            "-netdev",
            "-device virtio-net-pci",
            "-name",
            "memory-backend-ram,id=ram0",
            "prealloc=on is not modelled",
            "event_idx=off is not modelled",
        ] {
            assert_eq!(cfg.notes.iter().filter(|n| n.contains(want)).count(), 1, "{want}: {:#?}", cfg.notes);
        }
        assert!(cfg.notes.iter().all(|n| !n.contains('\n')));
        assert_eq!(cfg.notes.len(), 18, "{:#?}", cfg.notes);
    }
}
