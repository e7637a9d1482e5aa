use super::*;
use pmem_core::guest::FlushResult;
use pmem_core::sim::{DeviceSpec, Machine, SimConfig};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory for one test (the file system does not matter for
/// these: mapping and syncing behave alike on tmpfs and on disks).
fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pmemlab-backend-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_and_flush(b: &mut FileBackend, offset: u64, data: &[u8]) -> SyncCompletion {
    b.write_at(SimTime(0), offset, data).unwrap();
    let t = b.begin_sync(SimTime(10));
    let next = b.next_event_time().expect("a sync is pending");
    let done = b.advance(next);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].ticket, t);
    done.into_iter().next().unwrap()
}

#[test]
fn share_on_stores_reach_the_file_and_share_off_stores_never_do() {
    let dir = scratch("share");
    for share in [true, false] {
        let path = dir.join(format!("img-{share}"));
        let before = vec![0xAAu8; 8192];
        std::fs::write(&path, &before).unwrap();
        let mut b = FileBackend::open(&FileBackendOptions::new(&path, 8192).share(share)).unwrap();
        let done = write_and_flush(&mut b, 4096 + 10, b"durable?");
        // The sync itself succeeds either way (QEMU's fsync does too).
        assert_eq!(done.result, Ok(()));
        // The guest sees its own store in both cases.
        let mut back = [0u8; 8];
        b.read_at(4096 + 10, &mut back).unwrap();
        assert_eq!(&back, b"durable?");
        let on_disk = std::fs::read(&path).unwrap();
        if share {
            assert_eq!(&on_disk[4096 + 10..4096 + 18], b"durable?", "share=on: the store must reach the file");
            assert_eq!(on_disk[..4096], before[..4096]);
        } else {
            assert_eq!(on_disk, before, "share=off: the file must be unchanged after write + flush");
        }
        assert_eq!(b.sync_stats().syncs, 1);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_flush_through_the_machine_makes_the_guest_store_reach_the_file() {
    let dir = scratch("machine");
    let path = dir.join("virtio_pmem.img");
    let backend = FileBackend::open(&FileBackendOptions::new(&path, 1 << 20)).unwrap();
    let probe = backend.probe();
    assert!(probe.info().created);
    let mut m = Machine::new(SimConfig { seed: 3, ..SimConfig::default() });
    m.add_device_with_backend(DeviceSpec::new("nv1", 1 << 20), Box::new(backend)).unwrap();
    m.guest_write("nv1", 12_288, b"through the ring").unwrap();
    let req = m.flush("nv1").unwrap();
    m.run_until_idle(10_000);
    assert_eq!(m.flush_result("nv1", req).unwrap(), Some(FlushResult::Ok));
    assert_eq!(&std::fs::read(&path).unwrap()[12_288..12_304], b"through the ring");
    let s = probe.sync_stats();
    assert_eq!((s.syncs, s.failed), (1, 0));
    assert!(s.last_ns.is_some());
    assert_eq!(m.device_snapshot("nv1").unwrap().host.syncs_ok, 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_file_is_created_sparse_with_the_size() {
    let dir = scratch("create");
    let path = dir.join("new.img");
    let b = FileBackend::open(&FileBackendOptions::new(&path, 64 << 10)).unwrap();
    assert!(b.info().created);
    assert_eq!(b.size(), 64 << 10);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 64 << 10);
    let mut buf = [1u8; 16];
    b.read_at((64 << 10) - 16, &mut buf).unwrap();
    assert_eq!(buf, [0u8; 16]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_existing_file_of_another_size_is_refused_and_left_untouched() {
    let dir = scratch("size");
    let path = dir.join("user.img");
    let content: Vec<u8> = (0..12_288u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let err = FileBackend::open(&FileBackendOptions::new(&path, 16_384)).unwrap_err();
    assert!(matches!(err, FileBackendError::SizeMismatch { actual: 12_288, wanted: 16_384, .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("12288") && msg.contains("resize=on") && !msg.contains('\n'), "{msg}");
    assert_eq!(std::fs::read(&path).unwrap(), content);
    // Read-only cannot resize either.
    let err = FileBackend::open(&FileBackendOptions::new(&path, 16_384).readonly(true)).unwrap_err();
    assert!(matches!(err, FileBackendError::ReadOnlySizeMismatch { .. }), "{err}");
    // With explicit consent the file grows, keeping its content.
    let b = FileBackend::open(&FileBackendOptions::new(&path, 16_384).resize(true)).unwrap();
    assert_eq!(b.info().resized_from, Some(12_288));
    assert!(!b.info().created);
    let now = std::fs::read(&path).unwrap();
    assert_eq!(now.len(), 16_384);
    assert_eq!(&now[..12_288], &content[..]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sizes_that_are_not_page_multiples_are_refused_before_touching_anything() {
    let dir = scratch("badsize");
    for size in [0u64, 1, 4095, 4097, 6000] {
        let path = dir.join(format!("f{size}"));
        let err = FileBackend::open(&FileBackendOptions::new(&path, size)).unwrap_err();
        assert!(matches!(err, FileBackendError::BadSize { size: s } if s == size), "{err}");
        assert!(err.to_string().contains("multiple of 4096"));
        assert!(!path.exists(), "nothing may be created for a bad size");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn path_problems_give_one_clear_line() {
    let dir = scratch("paths");
    let err = FileBackend::open(&FileBackendOptions::new(dir.join("no/such/dir/x.img"), 4096)).unwrap_err();
    assert!(matches!(err, FileBackendError::MissingDirectory { .. }), "{err}");
    assert!(err.to_string().contains("does not exist"));
    let err = FileBackend::open(&FileBackendOptions::new(&dir, 4096)).unwrap_err();
    assert!(matches!(err, FileBackendError::IsDirectory { .. }), "{err}");
    let plain = dir.join("plain");
    std::fs::write(&plain, b"x").unwrap();
    let err = FileBackend::open(&FileBackendOptions::new(plain.join("under-a-file"), 4096)).unwrap_err();
    assert!(matches!(err, FileBackendError::NotADirectory { .. }), "{err}");
    let err = FileBackend::open(&FileBackendOptions::new(dir.join("absent"), 4096).readonly(true)).unwrap_err();
    assert!(matches!(err, FileBackendError::ReadOnlyMissing { .. }), "{err}");
    assert!(!dir.join("absent").exists());
    assert!(!err.to_string().contains('\n'));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_read_only_backend_reads_and_refuses_stores() {
    let dir = scratch("ro");
    let path = dir.join("ro.img");
    let mut content = vec![0u8; 4096];
    content[..5].copy_from_slice(b"hello");
    std::fs::write(&path, &content).unwrap();
    let mut b = FileBackend::open(&FileBackendOptions::new(&path, 4096).readonly(true)).unwrap();
    let mut buf = [0u8; 5];
    b.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    assert!(b.write_at(SimTime(0), 0, b"HELLO").is_err());
    assert_eq!(std::fs::read(&path).unwrap(), content);
    // Syncing a read-only file is allowed (and harmless).
    b.begin_sync(SimTime(0));
    assert_eq!(b.sync_stats().failed, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn accesses_beyond_the_end_are_errors_and_touched_pages_are_counted() {
    let dir = scratch("bounds");
    let mut b = FileBackend::open(&FileBackendOptions::new(dir.join("b.img"), 8192)).unwrap();
    assert!(matches!(
        b.write_at(SimTime(0), 8190, b"abc"),
        Err(HostError::OutOfBounds { offset: 8190, len: 3, size: 8192 })
    ));
    let mut buf = [0u8; 2];
    assert!(b.read_at(u64::MAX, &mut buf).is_err());
    b.write_at(SimTime(0), 4094, b"span").unwrap();
    assert_eq!(b.stats().resident_pages, 2);
    assert_eq!(b.stats().bytes_written, 4);
    b.write_at(SimTime(0), 8192, b"").unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fixed_timing_completes_at_a_known_time_and_still_measures() {
    let dir = scratch("timing");
    let opts =
        FileBackendOptions::new(dir.join("t.img"), 4096).timing(SyncTiming::Fixed(2_000_000)).sync(SyncMethod::Fsync);
    let mut b = FileBackend::open(&opts).unwrap();
    b.begin_sync(SimTime(500));
    assert_eq!(b.next_event_time(), Some(SimTime(2_000_500)));
    assert!(b.advance(SimTime(2_000_499)).is_empty());
    assert_eq!(b.advance(SimTime(2_000_500)).len(), 1);
    assert_eq!(b.stats().syncs_ok, 1);
    assert_eq!(b.sync_stats().syncs, 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
