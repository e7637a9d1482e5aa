//! Each case was measured on QEMU 7.2.22 (`query-memory-devices`, or the
//! message it exits with).

use super::*;

const M: u64 = 1 << 20;

fn seed() -> DeviceMemory {
    let cfg = MemoryOptions::parse("512M,slots=2,maxmem=2G").unwrap().config(MachineType::Pc).unwrap();
    DeviceMemory::of(512 * M, &cfg)
}

fn dev(id: &str, start: u64, size: u64) -> PlacedDevice<'_> {
    PlacedDevice { id, start, size }
}

#[test]
fn the_seeds_devices_land_above_4g_one_after_the_other() {
    let r = seed();
    assert_eq!((r.base, r.size, r.capacity), (0x1_0000_0000, 0xe000_0000, Some(0x6000_0000)));
    let a = r.place(&[], None, 4096, 64 * M).unwrap();
    assert_eq!(a, 4294967296);
    let b = r.place(&[dev("nv1", a, 64 * M)], None, 4096, 16 * M).unwrap();
    assert_eq!(b, 4362076160);
}

#[test]
fn ram_above_4g_moves_the_region() {
    // pc: 5G of RAM → 3G below, 2G above → region at 6G.
    let pc = MemoryOptions::parse("5G,slots=2,maxmem=8G").unwrap().config(MachineType::Pc).unwrap();
    assert_eq!(DeviceMemory::of(5 << 30, &pc).base, 6442450944);
    // q35: 3G of RAM → 2G below, 1G above → region at 5G.
    let q35 = MemoryOptions::parse("3G,slots=2,maxmem=8G").unwrap().config(MachineType::Q35).unwrap();
    assert_eq!(DeviceMemory::of(3 << 30, &q35).base, 5368709120);
    // All RAM below the hole: the region at 4G.
    assert_eq!(MachineType::Pc.ram_below_4g(512 * M), 512 * M);
    assert_eq!(MachineType::Q35.ram_below_4g(3 << 30), 2 << 30);
}

#[test]
fn first_fit_fills_the_gap_before_a_fixed_device_and_aligns() {
    let r = seed();
    // nv1 fixed at +128M: a 16M device goes before it, at the start.
    let fixed = [dev("nv1", 0x1_0800_0000, 64 * M)];
    assert_eq!(r.place(&fixed, None, 4096, 16 * M), Ok(4294967296));
    // 1M at the start, 16M after it (4 KiB alignment), then a 2M-aligned one.
    let plugged = [dev("nv3", r.base, M), dev("nv2", r.base + M, 16 * M)];
    assert_eq!(r.place(&plugged[..1], None, 4096, 16 * M), Ok(4296015872));
    assert_eq!(r.place(&plugged, None, 2 * M, 4 * M), Ok(4313841664));
}

#[test]
fn qemus_refusals_word_for_word() {
    let r = seed();
    let msg = |e: Result<u64, PlacementError>| e.unwrap_err().to_string();
    assert_eq!(
        msg(r.place(&[], Some(0x8000_0000), 4096, 64 * M)),
        "can't add memory device [0x80000000:0x4000000], usable range for memory devices [0x100000000:0xe0000000]"
    );
    assert_eq!(msg(r.place(&[], Some(0x1_0000_0800), 4096, 64 * M)), "address must be aligned to 0x1000 bytes");
    let nv1 = [dev("nv1", r.base, 64 * M)];
    assert_eq!(
        msg(r.place(&nv1, Some(0x1_0010_0000), 4096, 16 * M)),
        "address range conflicts with memory device id='nv1'"
    );
    assert_eq!(msg(r.place(&[], None, 2 * M, M)), "backend memory size must be multiple of 0x200000");
    // Inside the region but past the end of the room for alignment.
    assert!(r.place(&[], Some(0x1_a000_0000), 4096, 64 * M).is_ok());
    let small = MemoryOptions::parse("512M,slots=2,maxmem=560M").unwrap().config(MachineType::Pc).unwrap();
    assert_eq!(
        msg(DeviceMemory::of(512 * M, &small).place(&[], None, 4096, 64 * M)),
        "not enough space, currently 0x0 in use of total space for memory devices 0x3000000"
    );
    let none = MemoryOptions::parse("512M").unwrap().config(MachineType::Pc).unwrap();
    assert_eq!(
        msg(DeviceMemory::of(512 * M, &none).place(&[], None, 4096, 64 * M)),
        "memory devices (e.g. for memory hotplug) are not enabled, please specify the maxmem option"
    );
    // The seed's 4G device in maxmem=2G.
    assert_eq!(
        msg(r.place(&[], None, 4096, 4 << 30)),
        "not enough space, currently 0x0 in use of total space for memory devices 0x60000000"
    );
}

#[test]
fn the_m_option_is_checked_as_qemu_checks_it() {
    let err = |s: &str| MemoryOptions::parse(s).unwrap_err();
    assert_eq!(err("512M,slots=2"), "slots specified but no max-size");
    assert_eq!(
        err("512M,maxmem=256M"),
        "invalid value of maxmem: maximum memory size (0x10000000) must be at least the initial memory size (0x20000000)"
    );
    assert_eq!(
        err("512M,slots=2,maxmem=512M"),
        "invalid value of maxmem: memory slots were specified but maximum memory size (0x20000000) is equal to the initial memory size (0x20000000)"
    );
    assert_eq!(err("512M,slots=300,maxmem=2G"), "unsupported amount of memory slots: 300");
    assert_eq!(err("512M,maxmem=2000001K"), "maximum memory size must by aligned to multiple of 4096 bytes");
    // A bare -m is MiB, a bare maxmem bytes.
    assert_eq!(MemoryOptions::parse("512").unwrap().ram_size, 512 * M);
    assert!(err("512M,slots=2,maxmem=2048").contains("(0x800)"));
    assert!(err("512M,colour=red").contains("unknown option 'colour'"));
    // maxmem without slots is fine; the region has no alignment room then.
    let cfg = MemoryOptions::parse("512M,maxmem=2G").unwrap().config(MachineType::Pc).unwrap();
    assert_eq!(DeviceMemory::of(512 * M, &cfg).size, 0x6000_0000);
}

#[test]
fn the_models_default_has_no_limit_but_qemus_start() {
    let r = DeviceMemory::of(1 << 30, &DeviceMemoryConfig::default());
    assert_eq!(r.base, 1 << 32);
    assert_eq!(r.capacity, None);
    assert_eq!(r.place(&[], None, 4096, 16 << 40), Ok(1 << 32));
    assert_eq!(MachineType::from_qemu_name("pc-q35-7.2"), Some(MachineType::Q35));
    assert_eq!(MachineType::from_qemu_name("microvm"), None);
}
