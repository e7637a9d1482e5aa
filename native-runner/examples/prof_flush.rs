use pmem_core::sim::{DeviceSpec, Machine, SimConfig};
use pmem_core::workload::flush_and_wait;
use pmemlab::backend::{FileBackend, FileBackendOptions, SyncTiming};
use std::os::fd::AsRawFd;
fn machine(opts: &FileBackendOptions) -> Machine {
    let backend = FileBackend::open(opts).unwrap();
    let log = if std::env::var("ALL").is_ok() {
        pmem_core::event::LogRetention::All
    } else {
        pmem_core::event::LogRetention::Recent(std::env::var("KEEP").ok().and_then(|s| s.parse().ok()).unwrap_or(256))
    };
    let mut m = Machine::new(SimConfig { seed: 1, log, ..SimConfig::default() });
    m.add_device_with_backend(DeviceSpec::new("nv1", 4 << 20), Box::new(backend)).unwrap();
    m
}
fn main() {
    let dir = std::env::var("DIR").unwrap_or("/dev/shm".into());
    let n: u64 = std::env::var("N").ok().and_then(|s| s.parse().ok()).unwrap_or(256);
    let path = std::path::PathBuf::from(dir).join("prof-flush.img");
    let _ = std::fs::remove_file(&path);
    let opts = FileBackendOptions::new(&path, 4 << 20).timing(SyncTiming::Fixed(1_000));
    let mut m = machine(&opts);
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4 << 20,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    } as *mut u8;
    let mut data = vec![0u8; 4096];
    let (mut dev, mut raw) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    let only = std::env::var("ONLY").unwrap_or_default();
    for r in 0..4000u32 {
        if std::env::var("ALL").is_ok() && m.log().len() > 4000 {
            m = machine(&opts);
        }
        data.fill(r as u8);
        if only != "raw" {
            let t = std::time::Instant::now();
            for p in 0..n {
                m.guest_write("nv1", p * 4096, &data).unwrap();
            }
            flush_and_wait(&mut m, "nv1").unwrap();
            dev += t.elapsed();
        }
        data.fill(r as u8 ^ 0x55);
        if only != "dev" {
            let t = std::time::Instant::now();
            for p in 0..n as usize {
                unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr.add(p * 4096), 4096) }
            }
            file.sync_data().unwrap();
            raw += t.elapsed();
        }
    }
    eprintln!(
        "dev {:?} raw {:?} per round: dev {:.1} us raw {:.1} us; extra per page {:.0} ns",
        dev,
        raw,
        dev.as_secs_f64() / 4e-3,
        raw.as_secs_f64() / 4e-3,
        (dev.as_secs_f64() - raw.as_secs_f64()) / 4000.0 / n as f64 * 1e9
    );
}
