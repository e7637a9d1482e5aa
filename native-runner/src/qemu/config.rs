//! The QEMU objects and devices pmemlab models, read from QEMU's own syntax.
//!
//! - `-object memory-backend-file,id=ID,mem-path=FILE,size=SIZE[,share=on]
//!   [,readonly=on][,pmem=on][,align=SIZE][,resize=on]` →
//!   [`MemoryBackendFile`]. `share` defaults to off, as in QEMU (stores then
//!   never reach the file). `resize=on` is pmemlab's own: permission to
//!   change the size of an existing file (QEMU refuses a smaller file and
//!   maps the start of a larger one; pmemlab refuses both unless asked).
//! - `-device virtio-pmem-pci,id=ID,memdev=ID[,memaddr=ADDR]` →
//!   [`VirtioPmemPci`]. pmemlab needs the `id` (the monitor's commands name
//!   devices by it); QEMU would make one up.
//! - `-m SIZE`: guest RAM (MiB unless suffixed; default 128M as QEMU).
//!
//! Real QEMU options that pmemlab does not model (`prealloc`, `bus`, …) are
//! refused by name, so a command line never means something else here than
//! in QEMU without saying so.

use super::opts::{Opts, OptsError};
use pmem_core::size::{parse_size, parse_size_mib, SizeError};
use std::path::PathBuf;

/// QEMU's default guest RAM (`-m` absent): 128 MiB.
pub const DEFAULT_RAM: u64 = 128 << 20;

/// Options of `memory-backend-file` that pmemlab understands.
pub const BACKEND_OPTIONS: &str = "id, mem-path, size, share, readonly, pmem, align, resize";
/// Options of `virtio-pmem-pci` that pmemlab understands.
pub const DEVICE_OPTIONS: &str = "id, memdev, memaddr";

const BACKEND_UNMODELLED: &[&str] = &[
    "discard-data",
    "dump",
    "merge",
    "prealloc",
    "prealloc-threads",
    "prealloc-context",
    "host-nodes",
    "policy",
    "reserve",
    "offset",
    "rom",
    "x-use-canonical-path-for-ramblock-id",
];

const DEVICE_UNMODELLED: &[&str] =
    &["bus", "addr", "multifunction", "rombar", "romfile", "disable-legacy", "disable-modern", "ats", "iommu_platform"];

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
    /// A real QEMU option that pmemlab does not model.
    #[error("{what}: option '{key}' is a QEMU option pmemlab does not model; drop it (accepted: {accepted})")]
    Unmodelled {
        /// The argument.
        what: String,
        /// The key.
        key: String,
        /// What is accepted.
        accepted: &'static str,
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
    /// Guest RAM in bytes.
    pub ram_size: u64,
    /// Memory backends, in order.
    pub objects: Vec<MemoryBackendFile>,
    /// Devices, in order.
    pub devices: Vec<VirtioPmemPci>,
}

/// QEMU's rule for ids: a letter, then letters, digits, `-`, `.`, `_`.
pub fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

fn check_keys(
    what: &str,
    opts: &Opts,
    known: &[&str],
    unmodelled: &[&str],
    accepted: &'static str,
) -> Result<(), ConfigError> {
    for (k, _) in &opts.pairs {
        if known.contains(&k.as_str()) {
            continue;
        }
        let what = what.to_string();
        return Err(if unmodelled.contains(&k.as_str()) {
            ConfigError::Unmodelled { what, key: k.clone(), accepted }
        } else {
            ConfigError::Unknown { what, key: k.clone(), accepted }
        });
    }
    Ok(())
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
        check_keys(
            what,
            &opts,
            &["id", "mem-path", "size", "share", "readonly", "pmem", "align", "resize"],
            BACKEND_UNMODELLED,
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
        check_keys(what, &opts, &["id", "memdev", "memaddr"], DEVICE_UNMODELLED, DEVICE_OPTIONS)?;
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
        Ok(VirtioPmemPci { id, memdev: memdev.to_string(), memaddr })
    }
}

impl QemuConfig {
    /// Reads a QEMU command line (the arguments after `pmemlab qemu`), and
    /// checks it as a whole: unique ids, every device's memdev exists and is
    /// used once.
    pub fn from_args(args: &[String]) -> Result<QemuConfig, ConfigError> {
        let mut cfg = QemuConfig { ram_size: DEFAULT_RAM, objects: Vec::new(), devices: Vec::new() };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let flag = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'));
            let Some(flag) = flag.filter(|f| !f.is_empty()) else {
                return Err(ConfigError::Argument(format!(
                    "unexpected argument '{arg}': pmemlab qemu takes -object, -device and -m options"
                )));
            };
            let mut value = || it.next().ok_or_else(|| ConfigError::Argument(format!("option '{arg}' needs a value")));
            match flag {
                "object" => cfg.objects.push(MemoryBackendFile::parse(value()?)?),
                "device" => cfg.devices.push(VirtioPmemPci::parse(value()?)?),
                "m" => {
                    let v = value()?;
                    let text = v.strip_prefix("size=").unwrap_or(v);
                    cfg.ram_size = parse_size_mib(text)
                        .map_err(|source| ConfigError::Size { what: "-m".into(), key: "size", source })?;
                }
                other => {
                    return Err(ConfigError::Argument(format!(
                        "option '-{other}' is not modelled: pmemlab qemu takes -object memory-backend-file,…, -device virtio-pmem-pci,… and -m"
                    )))
                }
            }
        }
        cfg.check()?;
        Ok(cfg)
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
            "2G",
        ]))
        .unwrap();
        assert_eq!(cfg.ram_size, 2 << 30);
        assert_eq!(cfg.objects.len(), 2);
        let m1 = &cfg.objects[0];
        assert_eq!((m1.id.as_str(), m1.size, m1.share, m1.readonly), ("mem1", 4 << 30, true, false));
        let m2 = &cfg.objects[1];
        assert!(m2.readonly && m2.pmem && m2.share);
        assert_eq!(m2.align, Some(2 << 20));
        assert_eq!(
            cfg.devices[1],
            VirtioPmemPci { id: "nv2".into(), memdev: "mem2".into(), memaddr: Some(0x2_0000_0000) }
        );
        // share defaults to off, as in QEMU.
        let o = MemoryBackendFile::parse("memory-backend-file,id=m,mem-path=x,size=4K").unwrap();
        assert!(!o.share);
    }

    #[test]
    fn every_mistake_is_one_line_naming_it() {
        let cases: &[(&[&str], &str)] = &[
            (&["-object", "memory-backend-file,id=m,mem-path=x,size=4Q"], "size='4Q' is not a size"),
            (&["-object", "memory-backend-file,id=m,mem-path=x,size=4G,prealloc=on"], "'prealloc' is a QEMU option"),
            (&["-object", "memory-backend-file,id=m,mem-path=x,size=4G,colour=red"], "unknown option 'colour'"),
            (&["-object", "memory-backend-file,mem-path=x,size=4G"], "'id' is missing"),
            (&["-object", "memory-backend-file,id=m,size=4G"], "'mem-path' is missing"),
            (&["-object", "memory-backend-file,id=m,mem-path=x"], "'size' is missing"),
            (&["-object", "memory-backend-file,id=1m,mem-path=x,size=4K"], "not an identifier"),
            (&["-object", "memory-backend-file,id=m,mem-path=x,size=4K,align=3K"], "power of two"),
            (&["-object", "memory-backend-file,id=m,mem-path=x,size=5000"], "not a multiple of 4096"),
            (&["-object", "memory-backend-file,id=m,mem-path=x,size=0"], "cannot be empty"),
            (&["-object", "memory-backend-ram,id=m,size=4K"], "object type 'memory-backend-ram'"),
            (&["-device", "virtio-pmem-pci,id=nv1"], "'memdev' is missing"),
            (&["-device", "virtio-pmem-pci,memdev=m"], "'id' is missing"),
            (&["-device", "nvdimm,memdev=m,id=n"], "'nvdimm' is not modelled"),
            (&["-device", "virtio-pmem-pci,id=n,memdev=m,bus=pci.0"], "'bus' is a QEMU option"),
            (&["-device", "virtio-pmem-pci,id=n,memdev=nope"], "memdev 'nope' is not defined"),
            (&["-enable-kvm"], "option '-enable-kvm' is not modelled"),
            (&["-object"], "needs a value"),
            (&["disk.img"], "unexpected argument 'disk.img'"),
            (&["-m", "lots"], "-m: size='lots'"),
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
}
