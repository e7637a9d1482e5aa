use super::*;
use crate::guest::FlushResult;
use crate::host::SimpleBackend;

fn machine(seed: u64) -> Machine {
    Machine::new(SimConfig { seed, ..SimConfig::default() })
}

#[test]
fn a_flush_round_trip_succeeds() {
    let mut m = machine(1);
    m.add_device(DeviceSpec::new("nv1", 1 << 30)).unwrap();
    m.guest_write("nv1", 4096, b"hello").unwrap();
    let r = m.flush("nv1").unwrap();
    assert_eq!(m.flush_result("nv1", r).unwrap(), None);
    m.run_until_idle(1000);
    assert_eq!(m.flush_result("nv1", r).unwrap(), Some(FlushResult::Ok));
    assert_eq!(m.backend("nv1").unwrap().stats().syncs_ok, 1);
    assert_eq!(m.guest_read("nv1", 4096, 5).unwrap(), b"hello");
}

#[test]
fn a_failed_host_sync_is_eio_to_the_application() {
    let mut m = machine(2);
    let mut b = SimpleBackend::new(1 << 20);
    b.fail_next_syncs(1);
    m.add_device_with_backend(DeviceSpec::new("nv1", 1 << 20), Box::new(b)).unwrap();
    let r1 = m.flush("nv1").unwrap();
    m.run_until_idle(1000);
    let r2 = m.flush("nv1").unwrap();
    m.run_until_idle(1000);
    assert_eq!(m.flush_result("nv1", r1).unwrap(), Some(FlushResult::Eio));
    assert_eq!(m.flush_result("nv1", r2).unwrap(), Some(FlushResult::Ok));
}

#[test]
fn a_full_ring_parks_requests_and_completions_wake_them() {
    let mut m = Machine::new(SimConfig { seed: 3, queue_size: 4, ..SimConfig::default() });
    m.add_device(DeviceSpec::new("nv1", 1 << 20)).unwrap();
    let reqs: Vec<_> = (0..10).map(|_| m.flush("nv1").unwrap()).collect();
    let snap = m.device_snapshot("nv1").unwrap();
    assert_eq!(snap.in_flight, 4);
    assert_eq!(snap.parked, 6);
    m.run_until_idle(10_000);
    for r in reqs {
        assert_eq!(m.flush_result("nv1", r).unwrap(), Some(FlushResult::Ok));
    }
    let parked = m.log().events().iter().filter(|e| matches!(e.kind, EventKind::FlushParked { .. })).count();
    let woken = m.log().events().iter().filter(|e| matches!(e.kind, EventKind::FlushWoken { .. })).count();
    assert_eq!(parked, 6);
    assert_eq!(woken, 6);
}

#[test]
fn without_indirect_each_flush_takes_two_descriptors() {
    let mut m = Machine::new(SimConfig { seed: 3, queue_size: 4, ..SimConfig::default() });
    let mut spec = DeviceSpec::new("nv1", 1 << 20);
    spec.indirect_desc = false;
    m.add_device(spec).unwrap();
    let reqs: Vec<_> = (0..5).map(|_| m.flush("nv1").unwrap()).collect();
    assert_eq!(m.device_snapshot("nv1").unwrap().in_flight, 2);
    m.run_until_idle(10_000);
    for r in reqs {
        assert_eq!(m.flush_result("nv1", r).unwrap(), Some(FlushResult::Ok));
    }
}

#[test]
fn several_devices_and_hotplug_but_no_unplug() {
    let mut m = machine(4);
    m.add_device(DeviceSpec::new("nv1", 1 << 30)).unwrap();
    m.add_device(DeviceSpec::new("nv2", 4 << 30)).unwrap();
    m.guest_write("nv1", 0, b"a").unwrap();
    m.flush("nv1").unwrap();
    m.run_until_idle(100);
    m.add_device(DeviceSpec::new("nv3", 1 << 20)).unwrap();
    let hot = m.log().events().iter().find_map(|e| match (&e.device, &e.kind) {
        (Some(d), EventKind::DeviceAdded { hotplug, .. }) if &**d == "nv3" => Some(*hotplug),
        _ => None,
    });
    assert_eq!(hot, Some(true));
    m.guest_write("nv3", 0, b"b").unwrap();
    let r = m.flush("nv3").unwrap();
    m.run_until_idle(100);
    assert_eq!(m.flush_result("nv3", r).unwrap(), Some(FlushResult::Ok));
    // Regions do not overlap and each device has its own backend.
    assert_eq!(m.backend("nv1").unwrap().stats().syncs_started, 1);
    assert_eq!(m.backend("nv2").unwrap().stats().syncs_started, 0);
    assert_eq!(m.backend("nv3").unwrap().stats().syncs_started, 1);
    let err = m.remove_device("nv2").unwrap_err();
    assert!(err.to_string().contains("cannot be removed"), "{err}");
    assert!(matches!(err, MachineError::HotUnplugUnsupported { .. }));
    assert_eq!(m.device_ids().len(), 3);
    assert!(matches!(m.add_device(DeviceSpec::new("nv1", 4096)), Err(MachineError::DuplicateId(_))));
    assert!(matches!(m.add_device(DeviceSpec::new("odd", 4097)), Err(MachineError::Device(_))));
}

#[test]
fn accesses_outside_a_device_are_refused() {
    let mut m = machine(5);
    m.add_device(DeviceSpec::new("nv1", 8192)).unwrap();
    assert!(matches!(m.guest_write("nv1", 8190, b"abc"), Err(MachineError::OutsideDevice { .. })));
    assert!(matches!(m.guest_write("nv1", u64::MAX, b"a"), Err(MachineError::OutsideDevice { .. })));
    assert!(matches!(m.guest_write("zz", 0, b"a"), Err(MachineError::UnknownDevice(_))));
    let mut spec = DeviceSpec::new("ro", 8192);
    spec.readonly = true;
    m.add_device(spec).unwrap();
    // Dropped as QEMU drops it: no error, nothing stored, the drop logged.
    m.guest_write("ro", 0, b"a").unwrap();
    assert_eq!(m.guest_read("ro", 0, 1).unwrap(), vec![0]);
    assert!(m.log().events().iter().any(|e| matches!(e.kind, EventKind::StoreDropped { offset: 0, len: 1 })));
}

fn scripted_run(seed: u64) -> EventLog {
    let mut m = Machine::new(SimConfig { seed, queue_size: 8, ..SimConfig::default() });
    m.add_device(DeviceSpec::new("nv1", 1 << 30)).unwrap();
    m.add_device(DeviceSpec::new("nv2", 1 << 20)).unwrap();
    for i in 0..20u64 {
        m.guest_write("nv1", i * 4096, &i.to_le_bytes()).unwrap();
        m.flush("nv1").unwrap();
        if i % 3 == 0 {
            m.flush("nv2").unwrap();
        }
        m.run_for(1_500_000);
    }
    m.run_until_idle(100_000);
    m.log().clone()
}

#[test]
fn same_seed_same_event_log() {
    let a = scripted_run(99);
    let b = scripted_run(99);
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(a, b);
    let c = scripted_run(100);
    assert_ne!(a.fingerprint(), c.fingerprint(), "a different seed must change latencies");
}

#[test]
fn event_log_round_trips_through_json() {
    let log = scripted_run(7);
    let json = serde_json::to_string(&log).unwrap();
    let back: EventLog = serde_json::from_str(&json).unwrap();
    assert_eq!(back, log);
}

fn spec(id: &str, mode: DeviceMode, share: bool) -> DeviceSpec {
    let mut s = DeviceSpec::new(id, 1 << 20);
    s.mode = mode;
    s.share = share;
    s
}

/// Writes, flushes (and waits for the answer), writes again without a flush.
fn write_flush_write(m: &mut Machine, id: &str) -> Option<FlushResult> {
    m.guest_write(id, 0, b"flushed").unwrap();
    let r = m.flush(id).unwrap();
    m.run_for(50_000_000);
    m.guest_write(id, 4096, b"unflushed").unwrap();
    m.flush_result(id, r).unwrap()
}

#[test]
fn guest_crash_and_vmm_kill_lose_nothing_but_power_failure_does() {
    for kind in [CrashKind::GuestCrash, CrashKind::VmmKill, CrashKind::PowerFailure] {
        let mut m = machine(11);
        m.add_device(spec("nv1", DeviceMode::VirtioPmem, true)).unwrap();
        assert_eq!(write_flush_write(&mut m, "nv1"), Some(FlushResult::Ok));
        m.crash(kind).unwrap();
        assert_eq!(m.guest_read("nv1", 0, 7).unwrap(), b"flushed", "{kind:?}: flushed data survives");
        let after = m.guest_read("nv1", 4096, 9).unwrap();
        if kind == CrashKind::PowerFailure {
            assert_eq!(after, vec![0; 9], "power failure loses the unflushed write");
        } else {
            assert_eq!(after, b"unflushed", "{kind:?}: the host page cache survives");
        }
        // The device works after the restart.
        let r = m.flush("nv1").unwrap();
        m.run_for(50_000_000);
        assert_eq!(m.flush_result("nv1", r).unwrap(), Some(FlushResult::Ok));
    }
}

#[test]
fn emulated_nvdimm_flush_never_reaches_the_host() {
    let mut m = machine(12);
    m.add_device(spec("nd", DeviceMode::EmulatedNvdimm, true)).unwrap();
    assert_eq!(write_flush_write(&mut m, "nd"), Some(FlushResult::Ok), "the guest believes it");
    assert_eq!(m.backend("nd").unwrap().stats().syncs_started, 0);
    m.crash(CrashKind::PowerFailure).unwrap();
    assert_eq!(m.guest_read("nd", 0, 7).unwrap(), vec![0; 7], "even the 'flushed' write is gone");
    assert!(m.map_sync("nd").is_ok(), "MAP_SYNC is allowed on an NVDIMM, but means nothing here");
}

#[test]
fn real_nvdimm_stores_survive_power_failure() {
    let mut m = machine(13);
    m.add_device(spec("pm", DeviceMode::RealNvdimm, true)).unwrap();
    write_flush_write(&mut m, "pm");
    m.crash(CrashKind::PowerFailure).unwrap();
    assert_eq!(m.guest_read("pm", 4096, 9).unwrap(), b"unflushed");
    assert!(m.map_sync("pm").is_ok());
}

#[test]
fn map_sync_is_refused_on_virtio_pmem() {
    let mut m = machine(14);
    m.add_device(spec("nv1", DeviceMode::VirtioPmem, true)).unwrap();
    let err = m.map_sync("nv1").unwrap_err();
    assert!(matches!(err, MachineError::MapSyncUnsupported(_)));
    assert!(err.to_string().contains("EOPNOTSUPP"), "{err}");
}

#[test]
fn share_off_loses_everything_even_when_flushed() {
    let mut m = machine(15);
    m.add_device(spec("nv1", DeviceMode::VirtioPmem, false)).unwrap();
    assert_eq!(write_flush_write(&mut m, "nv1"), Some(FlushResult::Ok));
    assert_eq!(m.read_durable("nv1", 0, 7).unwrap(), vec![0; 7], "nothing reached the file");
    m.crash(CrashKind::VmmKill).unwrap();
    assert_eq!(m.guest_read("nv1", 0, 7).unwrap(), vec![0; 7], "the private copy died with the VMM");
    let lost = m.log().events().iter().find_map(|e| match &e.kind {
        EventKind::Crash { lost_pages, .. } => Some(lost_pages.clone()),
        _ => None,
    });
    assert_eq!(lost, Some(vec![0, 1]), "the crash event names the lost private pages");
}

#[test]
fn injected_fsync_failure_is_eio_then_retry_succeeds_fsyncgate() {
    let mut m = machine(16);
    m.add_device(spec("nv1", DeviceMode::VirtioPmem, true)).unwrap();
    m.guest_write("nv1", 0, b"data").unwrap();
    m.inject_sync_failures("nv1", 1).unwrap();
    let r1 = m.flush("nv1").unwrap();
    m.run_for(50_000_000);
    let r2 = m.flush("nv1").unwrap();
    m.run_for(50_000_000);
    assert_eq!(m.flush_result("nv1", r1).unwrap(), Some(FlushResult::Eio));
    assert_eq!(m.flush_result("nv1", r2).unwrap(), Some(FlushResult::Ok));
    assert_eq!(m.read_durable("nv1", 0, 4).unwrap(), vec![0; 4], "the retry succeeded without the data");
    m.crash(CrashKind::PowerFailure).unwrap();
    assert_eq!(m.guest_read("nv1", 0, 4).unwrap(), vec![0; 4]);
}
