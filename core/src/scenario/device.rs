//! A device of a scenario, with QEMU's option names: the
//! `memory-backend-file` object (`id`, `mem-path`, `size`, `share`,
//! `readonly`), the kind of device in front of it (`mode`), and, for
//! virtio-pmem, whose host side and guest driver it reproduces (`vmm`,
//! `driver`; see `docs/personalities.md`), and for Firecracker its
//! `rate_limiter`, in Firecracker's own JSON shape.

use super::error::{Location, ScenarioError};
use super::fields::{boolean, describe, string, whole, ByteSize, Fields};
use crate::device::{RateLimiterConfig, TokenBucketConfig, Vmm};
use crate::guest::DriverPersonality;
use crate::sim::{DeviceMode, DeviceSpec};
use serde::Serialize;
use serde_json::Value;

pub use crate::budget::{MAX_DEVICES, MAX_DEVICE_SIZE};

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
    /// The VMM whose virtio-pmem host side the device reproduces (absent:
    /// pmemlab's generic host side).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vmm: Option<Vmm>,
    /// The guest's virtio-pmem driver version (absent: pmemlab's generic
    /// driver).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<DriverPersonality>,
    /// Firecracker's rate limiter of flushes, as Firecracker's API takes it
    /// (`vmm` must be `"firecracker"`; absent: no limiter, Firecracker's
    /// default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limiter: Option<RateLimiterConfig>,
}

/// The fields of a device object.
pub(super) const DEVICE_FIELDS: [&str; 9] =
    ["id", "mem-path", "size", "share", "readonly", "mode", "vmm", "driver", "rate_limiter"];

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

fn vmm(v: &Value) -> Result<Vmm, String> {
    let accepted = "expected one of \"qemu\", \"cloud-hypervisor\", \"firecracker\", \"crosvm\"";
    v.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| format!("{accepted}, found {}", describe(v)))
}

fn driver(v: &Value) -> Result<DriverPersonality, String> {
    let accepted = "expected \"linux-serialized\" (nd_virtio with flush_lock) or \"linux-concurrent\" (without it)";
    v.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| format!("{accepted}, found {}", describe(v)))
}

/// Firecracker's `RateLimiterConfig`: `bandwidth` and `ops`, each optional
/// (or null). Unknown keys are refused, as Firecracker refuses them
/// (`deny_unknown_fields`).
fn rate_limiter(v: &Value) -> Result<RateLimiterConfig, String> {
    let Value::Object(map) = v else {
        return Err(format!("expected an object with \"bandwidth\" and/or \"ops\", found {}", describe(v)));
    };
    if let Some(k) = map.keys().find(|k| !matches!(k.as_str(), "bandwidth" | "ops")) {
        return Err(format!("\"{k}\" is not a rate limiter field; expected \"bandwidth\" and/or \"ops\""));
    }
    let bucket = |name: &str| match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(b) => token_bucket(b).map(Some).map_err(|m| format!("{name}: {m}")),
    };
    Ok(RateLimiterConfig { bandwidth: bucket("bandwidth")?, ops: bucket("ops")? })
}

/// Firecracker's `TokenBucketConfig`: `size` and `refill_time` (ms) required,
/// `one_time_burst` optional, all whole numbers ≥ 0. Zero is accepted: as in
/// Firecracker, a bucket of size 0 or refill time 0 does not limit.
/// (Firecracker ignores unknown keys in a bucket; pmemlab refuses them, so
/// a misspelt `one_time_burst` is not silently lost.)
fn token_bucket(v: &Value) -> Result<TokenBucketConfig, String> {
    let Value::Object(map) = v else {
        return Err(format!("expected an object {{\"size\": N, \"refill_time\": MS}}, found {}", describe(v)));
    };
    let fields = ["size", "one_time_burst", "refill_time"];
    if let Some(k) = map.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(format!(
            "\"{k}\" is not a token bucket field; expected \"size\", \"refill_time\", \"one_time_burst\""
        ));
    }
    let number = |name: &str| map.get(name).map(|n| whole(n).map_err(|m| format!("{name}: {m}"))).transpose();
    let required = |name: &str, hint: &str| number(name)?.ok_or_else(|| format!("{name} is missing; {hint}"));
    let burst = match map.get("one_time_burst") {
        Some(Value::Null) => None,
        _ => number("one_time_burst")?,
    };
    Ok(TokenBucketConfig {
        size: required("size", "give the bucket's capacity in tokens")?,
        one_time_burst: burst,
        refill_time: required("refill_time", "give the milliseconds from empty to full")?,
    })
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
        let mut d = DeviceOptions {
            id,
            mem_path: f.opt("mem-path", string)?,
            size: f.req("size", "give the size, e.g. \"64M\" (a non-zero multiple of 4096)", device_size)?,
            share: f.or("share", true, boolean)?,
            readonly: f.or("readonly", false, boolean)?,
            mode: f.or("mode", DeviceMode::VirtioPmem, mode)?,
            vmm: None,
            driver: None,
            rate_limiter: None,
        };
        d.vmm = f.opt("vmm", vmm)?;
        d.driver = f.opt("driver", driver)?;
        d.rate_limiter = f.nullable("rate_limiter", None, rate_limiter)?;
        if d.rate_limiter.is_some() && d.vmm != Some(Vmm::Firecracker) {
            let vmm = d.vmm.map_or("no \"vmm\"".to_string(), |v| format!("\"vmm\": \"{v}\""));
            let message = format!(
                "a rate limiter is Firecracker's (its pmem device has one since v1.16); this device has {vmm}, so give it \"vmm\": \"firecracker\" or drop the rate_limiter"
            );
            return Err(f.invalid("rate_limiter", message));
        }
        if d.mode != DeviceMode::VirtioPmem {
            let field = if d.vmm.is_some() { "vmm" } else { "driver" };
            if d.vmm.is_some() || d.driver.is_some() {
                let message = format!(
                    "a {field} applies to a virtio-pmem device only; mode \"{}\" has no flush queue",
                    mode_name(d.mode)
                );
                return Err(f.invalid(field, message));
            }
        }
        Ok(d)
    }

    /// The machine's description of this device.
    pub fn spec(&self) -> DeviceSpec {
        let mut spec = DeviceSpec::new(&self.id, self.size.0);
        spec.share = self.share;
        spec.readonly = self.readonly;
        spec.mode = self.mode;
        spec.vmm = self.vmm;
        spec.driver = self.driver;
        spec.rate_limiter = self.rate_limiter;
        spec
    }
}

#[cfg(test)]
mod tests {
    use crate::device::{DeviceEvent, Vmm};
    use crate::event::EventKind;
    use crate::guest::DriverPersonality;
    use crate::scenario::Scenario;
    use serde_json::{json, Value};

    fn scenario(device: Value, steps: Vec<Value>) -> Result<Scenario, String> {
        let v = json!({ "version": 1, "devices": [device], "steps": steps });
        Scenario::parse(&v.to_string()).map_err(|e| e.to_string())
    }

    #[test]
    fn vmm_and_driver_are_read_and_written_back() {
        let dev = json!({ "id": "nv1", "size": "2M", "vmm": "firecracker", "driver": "linux-concurrent" });
        let s = scenario(dev, vec![]).unwrap();
        let d = &s.devices()[0];
        assert_eq!((d.vmm, d.driver), (Some(Vmm::Firecracker), Some(DriverPersonality::LinuxConcurrent)));
        let spec = d.spec();
        assert_eq!((spec.vmm, spec.driver), (d.vmm, d.driver));
        let back = serde_json::to_value(d).unwrap();
        assert_eq!((back["vmm"].clone(), back["driver"].clone()), (json!("firecracker"), json!("linux-concurrent")));
        // Absent: the generic device and driver, and nothing written back.
        let plain = scenario(json!({ "id": "nv1", "size": "2M" }), vec![]).unwrap();
        assert_eq!((plain.devices()[0].vmm, plain.devices()[0].driver), (None, None));
        assert!(serde_json::to_value(&plain.devices()[0]).unwrap().get("vmm").is_none());
    }

    #[test]
    fn a_bad_vmm_or_driver_is_one_clear_error() {
        let e = scenario(json!({ "id": "nv1", "size": "2M", "vmm": "kvmtool" }), vec![]).unwrap_err();
        assert!(e.contains("field \"vmm\"") && e.contains("\"cloud-hypervisor\"") && e.contains("\"kvmtool\""), "{e}");
        let e = scenario(json!({ "id": "nv1", "size": "2M", "driver": 3 }), vec![]).unwrap_err();
        assert!(e.contains("field \"driver\"") && e.contains("\"linux-serialized\"") && e.contains("found 3"), "{e}");
        let e =
            scenario(json!({ "id": "nv1", "size": "2M", "mode": "real-nvdimm", "vmm": "qemu" }), vec![]).unwrap_err();
        assert!(e.contains("virtio-pmem device only") && e.contains("\"real-nvdimm\""), "{e}");
    }

    #[test]
    fn a_rate_limiter_is_read_in_firecrackers_shape_and_written_back() {
        let limiter = json!({ "bandwidth": { "size": 2097152, "refill_time": 1000, "one_time_burst": 4096 },
                              "ops": { "size": 10, "refill_time": 1000 } });
        let dev = json!({ "id": "nv1", "size": "2M", "vmm": "firecracker", "rate_limiter": limiter });
        let s = scenario(dev, vec![]).unwrap();
        let d = &s.devices()[0];
        let rl = d.rate_limiter.expect("read");
        assert_eq!(rl.bandwidth.map(|b| (b.size, b.one_time_burst, b.refill_time)), Some((2 << 20, Some(4096), 1000)));
        assert_eq!(rl.ops.map(|b| (b.size, b.one_time_burst)), Some((10, None)));
        assert_eq!(d.spec().rate_limiter, d.rate_limiter);
        assert_eq!(serde_json::to_value(d).unwrap()["rate_limiter"], limiter);
        // Firecracker accepts zero (a bucket that does not limit), null
        // buckets and an empty limiter.
        for ok in [
            json!({ "ops": { "size": 0, "refill_time": 1000 } }),
            json!({ "ops": { "size": 1, "refill_time": 0 } }),
            json!({ "bandwidth": null, "ops": { "size": 1, "refill_time": 1, "one_time_burst": null } }),
            json!({}),
        ] {
            let dev = json!({ "id": "nv1", "size": "2M", "vmm": "firecracker", "rate_limiter": ok });
            assert!(scenario(dev, vec![]).is_ok(), "{ok}");
        }
        let plain = scenario(json!({ "id": "nv1", "size": "2M", "vmm": "firecracker" }), vec![]).unwrap();
        assert_eq!(plain.devices()[0].rate_limiter, None);
        assert!(serde_json::to_value(&plain.devices()[0]).unwrap().get("rate_limiter").is_none());
    }

    #[test]
    fn a_bad_rate_limiter_is_one_clear_error() {
        let with = |vmm: Option<&str>, limiter: Value| {
            let mut dev = json!({ "id": "nv1", "size": "2M", "rate_limiter": limiter });
            if let Some(v) = vmm {
                dev["vmm"] = json!(v);
            }
            scenario(dev, vec![]).unwrap_err()
        };
        let ops = json!({ "ops": { "size": 1, "refill_time": 1000 } });
        let e = with(Some("qemu"), ops.clone());
        assert!(
            e.contains("field \"rate_limiter\"") && e.contains("\"vmm\": \"qemu\"") && e.contains("Firecracker's"),
            "{e}"
        );
        let e = with(None, ops);
        assert!(e.contains("no \"vmm\"") && e.contains("\"firecracker\""), "{e}");
        let fc = Some("firecracker");
        let cases = [
            (json!({ "ops": { "size": -1, "refill_time": 1000 } }), "ops: size: expected a whole number ≥ 0, found -1"),
            (
                json!({ "ops": { "size": 1, "refill_time": "1s" } }),
                "ops: refill_time: expected a whole number ≥ 0, found \"1s\"",
            ),
            (json!({ "bandwidth": { "refill_time": 1000 } }), "bandwidth: size is missing"),
            (json!({ "bandwidth": { "size": 1 } }), "bandwidth: refill_time is missing"),
            (json!({ "ops": { "size": 1, "refill_time": 1, "burst": 5 } }), "\"burst\" is not a token bucket field"),
            (json!({ "iops": { "size": 1, "refill_time": 1 } }), "\"iops\" is not a rate limiter field"),
            (json!({ "ops": 5 }), "ops: expected an object"),
            (json!(true), "expected an object with \"bandwidth\""),
        ];
        for (limiter, want) in cases {
            let e = with(fc, limiter.clone());
            assert!(e.contains("field \"rate_limiter\"") && e.contains(want), "{limiter}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    #[test]
    fn a_rate_limited_scenario_waits_for_the_bucket() {
        // One flush per second (bandwidth = the file size): the second fsync
        // is still pending 500 ms after the first; without the limiter
        // (negative control) it has returned.
        let steps = vec![
            json!({ "op": "fsync", "device": "nv1" }),
            json!({ "op": "fsync", "device": "nv1", "blocking": false }),
            json!({ "op": "wait", "ms": 500 }),
            json!({ "op": "expect_flush", "device": "nv1", "result": "pending" }),
            json!({ "op": "wait", "ms": 600 }),
            json!({ "op": "expect_flush", "device": "nv1", "result": "ok" }),
        ];
        let limiter = json!({ "bandwidth": { "size": 2097152, "refill_time": 1000 } });
        let dev = json!({ "id": "nv1", "size": "2M", "vmm": "firecracker", "rate_limiter": limiter });
        let run = scenario(dev, steps.clone()).unwrap().run();
        assert!(run.passed(), "{:?}", run.failed_expectations);
        let unlimited = scenario(json!({ "id": "nv1", "size": "2M", "vmm": "firecracker" }), steps).unwrap().run();
        assert!(!unlimited.passed());
    }

    /// 300 stores, each followed by a flush that does not wait, then a
    /// last blocking fsync that expects -EIO.
    fn flushers(vmm: &str, driver: &str, expect_eio: bool) -> Scenario {
        let mut steps = Vec::new();
        for i in 0..300u64 {
            steps.push(json!({ "op": "write", "device": "nv1", "offset": i * 4096, "text": "x" }));
            steps.push(json!({ "op": "fsync", "device": "nv1", "blocking": false }));
        }
        steps.push(json!({ "op": "run_until_idle" }));
        let mut last = json!({ "op": "fsync", "device": "nv1" });
        if expect_eio {
            last["expect_error"] = json!("EIO");
        }
        steps.push(last);
        scenario(json!({ "id": "nv1", "size": "2M", "vmm": vmm, "driver": driver }), steps).unwrap()
    }

    fn broke(log: &crate::event::EventLog) -> bool {
        log.events().iter().any(|e| matches!(e.kind, EventKind::Device(DeviceEvent::VirtioError { .. })))
    }

    #[test]
    fn the_300_flusher_scenario_breaks_qemu_with_the_old_driver_only() {
        let run = flushers("qemu", "linux-concurrent", true).run();
        assert!(run.passed(), "{:?}", run.failed_expectations);
        assert!(broke(&run.log));
        // Negative controls: the same load, the serialized driver or
        // cloud-hypervisor: the last fsync returns 0, so expecting EIO fails.
        for (vmm, driver) in [("qemu", "linux-serialized"), ("cloud-hypervisor", "linux-concurrent")] {
            let run = flushers(vmm, driver, false).run();
            assert!(run.passed(), "{vmm} {driver}: {:?}", run.failed_expectations);
            assert!(!broke(&run.log), "{vmm} {driver}");
            assert!(!flushers(vmm, driver, true).run().passed(), "{vmm} {driver}");
        }
    }
}
