//! The rest of a real QEMU command line: every option `pmemlab qemu` does
//! not model is taken with a one-line note saying why it does not change the
//! answer, and refused only when it would (the refusal says why).
//!
//! What is modelled lives elsewhere: `-object memory-backend-file` and
//! `-device virtio-pmem-pci` in [`super::config`], `-m` in
//! [`pmem_core::sim::MemoryOptions`], `-machine TYPE` in
//! [`pmem_core::sim::MachineType`] (pc and q35 split RAM differently, which
//! moves the device memory).

use super::config::ConfigError;
use super::opts::Opts;
use pmem_core::sim::MachineType;

/// QEMU options that take no value.
const FLAGS: &[&str] = &[
    "enable-kvm",
    "nographic",
    "no-reboot",
    "no-shutdown",
    "S",
    "s",
    "snapshot",
    "daemonize",
    "nodefaults",
    "no-user-config",
    "no-hpet",
    "no-acpi",
    "usb",
    "full-screen",
    "mem-prealloc",
    "no-fd-bootchk",
    "only-migratable",
    "preconfig",
    "enable-fips",
];

/// Why an option changes nothing pmemlab answers, by group.
const WHY: &[(&[&str], &str)] = &[
    (
        &["enable-kvm", "accel", "cpu", "smp", "icount", "overcommit"],
        "the accelerator and the vCPUs are not modelled: QEMU runs virtio-pmem's handler in the notifying vCPU and its fsync on a worker thread under KVM and TCG alike, and the simulated guest issues one operation at a time",
    ),
    (
        &["kernel", "initrd", "append", "dtb", "bios", "L", "boot", "no-reboot", "no-shutdown", "S", "s", "preconfig"],
        "no guest kernel boots here: the monitor's write/read/fsync commands play the guest's application",
    ),
    (
        &["drive", "blockdev", "hda", "hdb", "hdc", "hdd", "cdrom", "fda", "fdb", "snapshot", "sd", "mtdblock", "pflash", "virtfs", "fsdev", "iscsi", "add-fd"],
        "other block devices are not modelled; they do not touch the virtio-pmem device or its backing file",
    ),
    (
        &["netdev", "nic", "net"],
        "networking is not modelled; it does not touch the virtio-pmem device",
    ),
    (
        &["nographic", "display", "vga", "vnc", "spice", "serial", "parallel", "monitor", "qmp", "qmp-pretty", "mon", "chardev", "audiodev", "usb", "usbdevice", "k", "full-screen", "daemonize", "pidfile", "name", "msg", "trace", "D", "d", "nodefaults", "no-user-config", "sandbox", "enable-fips", "seed"],
        "consoles, displays, monitors and logs are not modelled (pmemlab's monitor is its standard input)",
    ),
    (
        &["rtc", "uuid", "smbios", "watchdog", "watchdog-action", "no-hpet", "no-acpi", "no-fd-bootchk", "global", "numa", "mem-path", "mem-prealloc", "only-migratable", "action", "writeconfig", "plugin"],
        "this machine setting is not modelled; it does not change where the device is, what the guest's stores reach or what a flush syncs",
    ),
];

/// Options refused because they would change the answer.
const REFUSED: &[(&str, &str)] = &[
    ("incoming", "it restores a migrated guest's state, which pmemlab does not have"),
    ("loadvm", "it restores a snapshot's guest state, which pmemlab does not have"),
    ("readconfig", "pmemlab cannot see the options the file holds; give them on the command line"),
];

/// What an option not modelled comes to.
#[derive(Debug)]
pub enum Other {
    /// Taken, with a note.
    Note(String),
    /// `-machine`: the machine type.
    Machine(MachineType, Vec<String>),
}

/// True when `-flag` takes no value.
pub fn is_flag(flag: &str) -> bool {
    FLAGS.contains(&flag)
}

/// An option other than `-object`, `-device`, `-m` (with its value, if it
/// takes one): a note, the machine type, or a refusal saying why.
pub fn other_option(flag: &str, value: Option<&str>) -> Result<Other, ConfigError> {
    if let Some((_, why)) = REFUSED.iter().find(|(f, _)| *f == flag) {
        return Err(ConfigError::Argument(format!("option '-{flag}' is refused: {why}")));
    }
    if matches!(flag, "machine" | "M") {
        return machine(value.unwrap_or_default());
    }
    let shown = match value {
        Some(v) => format!("-{flag} {v}"),
        None => format!("-{flag}"),
    };
    if flag == "global" && value.is_some_and(|v| v.starts_with("virtio-pmem") || v.starts_with("memory-backend")) {
        return Err(ConfigError::Argument(format!(
            "{shown}: a -global for the virtio-pmem device or its backend is refused: put the property on the -device or -object itself, where pmemlab reads it"
        )));
    }
    match WHY.iter().find(|(flags, _)| flags.contains(&flag)) {
        Some((_, why)) => Ok(Other::Note(format!("{shown}: {why}"))),
        None => Err(ConfigError::Argument(format!(
            "option '-{flag}' is not one pmemlab knows: it reads QEMU 7.2's options (-object, -device, -m and -machine are modelled; the others it knows are taken with a note)"
        ))),
    }
}

/// `-machine [type=]TYPE[,prop=value…]`.
fn machine(text: &str) -> Result<Other, ConfigError> {
    let opts = Opts::parse(text).map_err(|source| ConfigError::Opts { what: "-machine".into(), source })?;
    let name = opts.kind.clone().or_else(|| opts.get("type").map(str::to_string)).unwrap_or_else(|| "pc".into());
    let kind = MachineType::from_qemu_name(&name).ok_or_else(|| {
        ConfigError::Argument(format!(
            "-machine {name}: refused: pmemlab models the pc (i440FX) and q35 machines, whose device memory above 4 GiB holds virtio-pmem; '{name}' places memory devices differently or has none"
        ))
    })?;
    let mut notes = Vec::new();
    for (key, value) in &opts.pairs {
        match key.as_str() {
            "type" => {}
            "max-ram-below-4g" | "sgx-epc" => {
                return Err(ConfigError::Argument(format!(
                    "-machine {key}={value}: refused: it moves the device memory (and so the device's address), which pmemlab does not model"
                )))
            }
            "accel" => notes.push(format!(
                "-machine accel={value}: {}",
                WHY[0].1
            )),
            _ => notes.push(format!(
                "-machine {key}={value}: not modelled; it does not change where the device is or what a flush syncs"
            )),
        }
    }
    Ok(Other::Machine(kind, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_say_why_and_refusals_say_why() {
        let note = |f: &str, v: Option<&str>| match other_option(f, v).unwrap() {
            Other::Note(n) => n,
            Other::Machine(..) => panic!("not a note"),
        };
        assert!(note("smp", Some("2")).starts_with("-smp 2: the accelerator and the vCPUs are not modelled"));
        assert!(note("enable-kvm", None).contains("under KVM and TCG alike"));
        assert!(note("drive", Some("file=disk.img,if=virtio")).contains("other block devices"));
        assert!(other_option("incoming", Some("tcp:0:4444")).unwrap_err().to_string().contains("migrated guest"));
        assert!(other_option("frobnicate", None).unwrap_err().to_string().contains("not one pmemlab knows"));
        let g = other_option("global", Some("virtio-pmem-pci.event_idx=off")).unwrap_err().to_string();
        assert!(g.contains("put the property on the -device"), "{g}");
        assert!(matches!(other_option("global", Some("kvm-pit.lost_tick_policy=delay")), Ok(Other::Note(_))));
    }

    #[test]
    fn the_machine_type_is_read_and_other_machines_refused() {
        let Ok(Other::Machine(kind, notes)) = other_option("machine", Some("q35,accel=kvm,nvdimm=on")) else {
            panic!("q35 is a machine")
        };
        assert_eq!(kind, MachineType::Q35);
        assert_eq!(notes.len(), 2);
        assert!(matches!(other_option("M", Some("pc-i440fx-7.2")), Ok(Other::Machine(MachineType::Pc, _))));
        assert!(matches!(other_option("machine", Some("type=pc")), Ok(Other::Machine(MachineType::Pc, _))));
        let e = other_option("machine", Some("microvm")).unwrap_err().to_string();
        assert!(e.contains("'microvm' places memory devices differently"), "{e}");
        let e = other_option("machine", Some("pc,max-ram-below-4g=1G")).unwrap_err().to_string();
        assert!(e.contains("moves the device memory"), "{e}");
    }
}
