//! The real machine as the model side is told it: QEMU's device memory of
//! the oracle's `-m` (so the model places each device where QEMU does, and
//! refuses what QEMU refuses, with the core's one placement rule), QEMU's
//! host side (`vmm: qemu`), and the nd_virtio the guest loads (`driver`).
//!
//! A scenario's own `vmm` and `driver` are kept where the real system can
//! run them: the real VMM is QEMU, and the guest loads one nd_virtio, so
//! every device's driver is the same.

use super::driver::Driver;
use super::error::OracleError;
use super::qemu::MEMORY;
use pmem_core::device::Vmm;
use pmem_core::guest::DriverPersonality;
use pmem_core::scenario::{DeviceOptions, DevicePlug, Scenario, ScenarioRunner};
use pmem_core::sim::device_memory::PlacedDevice;
use pmem_core::sim::{DeviceMemory, Machine, MachineError, MachineType, MemoryOptions};

/// The real machine's memory and guest driver, for the model side.
#[derive(Clone, Copy, Debug)]
pub struct RealMachine {
    /// The device memory of QEMU's `-m`.
    pub memory: DeviceMemory,
    /// The driver the guest loads.
    pub driver: Driver,
}

impl RealMachine {
    /// The machine of `-m MEMORY,maxmem=MAXMEM` and the driver: `driver` if
    /// given, else the scenario's (all devices must agree), else Debian's
    /// serialized one. Refuses a VMM other than QEMU.
    pub fn new(scenario: &Scenario, maxmem: &str, driver: Option<Driver>) -> Result<RealMachine, OracleError> {
        let m = memory_option(maxmem);
        let opts = MemoryOptions::parse(&m).map_err(|e| OracleError::Usage(format!("--maxmem {maxmem}: {e}")))?;
        let cfg = opts.config(MachineType::Pc).map_err(|e| OracleError::Usage(format!("--maxmem {maxmem}: {e}")))?;
        let memory = DeviceMemory::of(opts.ram_size, &cfg);
        let mut wanted: Option<(Driver, String)> = driver.map(|d| (d, "--driver".to_string()));
        for d in scenario.all_devices() {
            if let Some(v) = d.vmm.filter(|v| *v != Vmm::Qemu) {
                return Err(OracleError::UnsupportedDevice {
                    id: d.id.clone(),
                    reason: format!("its vmm is {v}; the real system is QEMU 7.2"),
                });
            }
            let Some(p) = d.driver else { continue };
            let mine = Driver::of(p);
            match &wanted {
                Some((w, from)) if *w != mine => {
                    return Err(OracleError::Usage(format!(
                        "device '{}' asks for driver {p} but {from} asks for {}: the guest loads one nd_virtio for every device",
                        d.id,
                        w.personality()
                    )))
                }
                Some(_) => {}
                None => wanted = Some((mine, format!("device '{}'", d.id))),
            }
        }
        Ok(RealMachine { memory, driver: wanted.map_or(Driver::Serialized, |(d, _)| d) })
    }

    /// A model runner of `scenario` on this machine (an initial device QEMU
    /// would refuse is the error).
    pub fn runner(&self, scenario: &Scenario) -> Result<ScenarioRunner<QemuPlug>, MachineError> {
        ScenarioRunner::with_plug(scenario, QemuPlug(*self))
    }

    /// A model machine of `scenario` with its initial devices, no step run.
    pub fn machine(&self, scenario: &Scenario) -> Result<Machine, MachineError> {
        let mut m = Machine::new(scenario.model().sim_config(scenario.seed()));
        let mut plug = QemuPlug(*self);
        for d in scenario.devices() {
            plug.plug(&mut m, d)?;
        }
        Ok(m)
    }
}

/// QEMU's `-m` value of the oracle's command line.
pub fn memory_option(maxmem: &str) -> String {
    format!("{MEMORY},maxmem={maxmem}")
}

/// Plugs a scenario's devices as QEMU does: placed in the device memory of
/// the real `-m`, with QEMU's host side and the real guest driver.
#[derive(Clone, Copy, Debug)]
pub struct QemuPlug(pub RealMachine);

impl DevicePlug for QemuPlug {
    fn plug(&mut self, machine: &mut Machine, device: &DeviceOptions) -> Result<(), MachineError> {
        let configs: Vec<_> =
            machine.device_ids().iter().filter_map(|id| machine.device_snapshot(id).ok()).map(|s| s.config).collect();
        let plugged: Vec<PlacedDevice<'_>> =
            configs.iter().map(|c| PlacedDevice { id: &c.id, start: c.start.0, size: c.size }).collect();
        let mut spec = device.spec();
        let start = self.0.memory.place(&plugged, None, pmem_core::sim::device_memory::FILE_PAGE_ALIGN, spec.size)?;
        spec.start = Some(pmem_core::memory::GuestAddress(start));
        spec.vmm = Some(spec.vmm.unwrap_or(Vmm::Qemu));
        spec.driver = Some(spec.driver.unwrap_or(self.0.driver.personality()));
        machine.add_device(spec)
    }
}

impl Driver {
    /// The model's driver personality of this nd_virtio.
    pub fn personality(self) -> DriverPersonality {
        match self {
            Driver::Serialized => DriverPersonality::LinuxSerialized,
            Driver::Unserialized => DriverPersonality::LinuxConcurrent,
        }
    }

    /// The nd_virtio that behaves as `p`.
    pub fn of(p: DriverPersonality) -> Driver {
        match p {
            DriverPersonality::LinuxSerialized => Driver::Serialized,
            DriverPersonality::LinuxConcurrent => Driver::Unserialized,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(devices: &str) -> Scenario {
        Scenario::parse(&format!(r#"{{"version":1,"devices":[{devices}],"steps":[]}}"#)).unwrap()
    }

    #[test]
    fn the_model_gets_qemus_place_host_side_and_driver() {
        let s = scenario(r#"{"id":"nv1","size":"64M"},{"id":"nv2","size":"16M"}"#);
        let real = RealMachine::new(&s, "2G", Some(Driver::Unserialized)).unwrap();
        let m = real.machine(&s).unwrap();
        let snap = |id: &str| m.device_snapshot(id).unwrap().config;
        assert_eq!((snap("nv1").start.0, snap("nv2").start.0), (0x1_0000_0000, 0x1_0400_0000));
        assert_eq!(snap("nv1").vmm, Some(Vmm::Qemu));
        // The seed's 4G device does not fit in maxmem=2G: QEMU's message.
        let big = scenario(r#"{"id":"nv1","size":"4G"}"#);
        let e = RealMachine::new(&big, "2G", None).unwrap().machine(&big).unwrap_err().to_string();
        assert_eq!(e, "not enough space, currently 0x0 in use of total space for memory devices 0x60000000");
        assert!(RealMachine::new(&big, "8G", None).unwrap().machine(&big).is_ok());
    }

    #[test]
    fn the_driver_comes_from_the_option_or_the_scenario_and_must_agree() {
        let s = scenario(r#"{"id":"nv1","size":"2M","driver":"linux-concurrent"}"#);
        assert_eq!(RealMachine::new(&s, "2G", None).unwrap().driver, Driver::Unserialized);
        let e = RealMachine::new(&s, "2G", Some(Driver::Serialized)).unwrap_err().to_string();
        assert!(e.contains("one nd_virtio for every device"), "{e}");
        let ch = scenario(r#"{"id":"nv1","size":"2M","vmm":"cloud-hypervisor"}"#);
        assert!(RealMachine::new(&ch, "2G", None).unwrap_err().to_string().contains("the real system is QEMU 7.2"));
        assert!(RealMachine::new(&s, "100M", None).unwrap_err().to_string().contains("must be at least"));
    }
}
