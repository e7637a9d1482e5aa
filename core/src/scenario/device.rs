//! A device of a scenario, with QEMU's option names: the
//! `memory-backend-file` object (`id`, `mem-path`, `size`, `share`,
//! `readonly`) and the kind of device in front of it (`mode`).

use super::error::{Location, ScenarioError};
use super::fields::{boolean, describe, string, ByteSize, Fields};
use crate::sim::{DeviceMode, DeviceSpec};
use serde::Serialize;
use serde_json::Value;

/// Most devices a scenario may have, hot-plugged ones included.
pub const MAX_DEVICES: usize = 64;

/// Largest device: 16 TiB.
pub const MAX_DEVICE_SIZE: u64 = 16 << 40;

/// One device, as `-object memory-backend-file,…` + `-device
/// virtio-pmem-pci,…` would give it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceOptions {
    /// The id steps name the device by (QEMU's `id=`).
    pub id: String,
    /// The backing file for the native runner (`mem-path=`); the core
    /// simulates the file and ignores it.
    #[serde(rename = "mem-path", skip_serializing_if = "Option::is_none")]
    pub mem_path: Option<String>,
    /// Size in bytes: a non-zero multiple of 4096.
    pub size: ByteSize,
    /// `share=on` (default here) or `share=off` (a private copy-on-write
    /// mapping: nothing ever reaches the file).
    pub share: bool,
    /// `readonly=on`: guest stores fail.
    pub readonly: bool,
    /// The kind of device (default virtio-pmem).
    pub mode: DeviceMode,
}

/// The fields of a device object.
pub(super) const DEVICE_FIELDS: [&str; 6] = ["id", "mem-path", "size", "share", "readonly", "mode"];

/// Checks a QEMU id: a letter first, then letters, digits, `-`, `.`, `_`
/// (QEMU's `id_wellformed`).
fn qemu_id(v: &Value) -> Result<String, String> {
    let s = string(v)?;
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')) {
        return Err(format!(
            "{} is not a valid id; an id starts with a letter and holds only letters, digits, '-', '.' and '_'",
            describe(v)
        ));
    }
    Ok(s)
}

fn device_size(v: &Value) -> Result<ByteSize, String> {
    let size = super::fields::byte_size(v)?;
    if size.0 == 0 {
        return Err("the size must not be zero; it is a non-zero multiple of 4096".to_string());
    }
    if !size.0.is_multiple_of(4096) {
        return Err(format!("{} is not a multiple of 4096", describe(v)));
    }
    if size.0 > MAX_DEVICE_SIZE {
        return Err(format!("{} is larger than the largest device the simulator takes, 16T", describe(v)));
    }
    Ok(size)
}

fn mode(v: &Value) -> Result<DeviceMode, String> {
    let accepted = "expected one of \"virtio-pmem\", \"emulated-nvdimm\", \"real-nvdimm\"";
    match v.as_str() {
        Some("virtio-pmem") => Ok(DeviceMode::VirtioPmem),
        Some("emulated-nvdimm") => Ok(DeviceMode::EmulatedNvdimm),
        Some("real-nvdimm") => Ok(DeviceMode::RealNvdimm),
        _ => Err(format!("{accepted}, found {}", describe(v))),
    }
}

/// The name of a mode as the format writes it.
pub(super) fn mode_name(mode: DeviceMode) -> &'static str {
    match mode {
        DeviceMode::VirtioPmem => "virtio-pmem",
        DeviceMode::EmulatedNvdimm => "emulated-nvdimm",
        DeviceMode::RealNvdimm => "real-nvdimm",
    }
}

impl DeviceOptions {
    /// Reads a device object. `prefix` goes before field names in errors
    /// (`"device."` inside a `hotplug` step); `taken` are the ids already
    /// in use.
    pub(super) fn parse(
        at: Location,
        prefix: &'static str,
        value: Value,
        taken: &[String],
    ) -> Result<DeviceOptions, ScenarioError> {
        let mut f = Fields::new(at, prefix, value, &DEVICE_FIELDS)?;
        let id = f.req("id", "give the device an id, e.g. \"nv1\"", qemu_id)?;
        if taken.contains(&id) {
            return Err(f.invalid("id", format!("\"{id}\" is already the id of another device; ids are unique")));
        }
        Ok(DeviceOptions {
            id,
            mem_path: f.opt("mem-path", string)?,
            size: f.req("size", "give the size, e.g. \"64M\" (a non-zero multiple of 4096)", device_size)?,
            share: f.or("share", true, boolean)?,
            readonly: f.or("readonly", false, boolean)?,
            mode: f.or("mode", DeviceMode::VirtioPmem, mode)?,
        })
    }

    /// The machine's description of this device.
    pub fn spec(&self) -> DeviceSpec {
        let mut spec = DeviceSpec::new(&self.id, self.size.0);
        spec.share = self.share;
        spec.readonly = self.readonly;
        spec.mode = self.mode;
        spec
    }
}
