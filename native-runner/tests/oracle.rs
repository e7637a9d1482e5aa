//! `pmemlab oracle`: bad input (no QEMU, a bogus kernel, a step the real
//! system cannot do, a guest that does not boot in time, Ctrl-C) ends with
//! one line, exit code 2 (130 for a signal) and no QEMU left; and one real
//! run of an example scenario on QEMU with a Linux guest agrees with the
//! model on flush requests, data read back and dirty pages.
//!
//! The tests that boot a guest need `scripts/ensure-qemu.sh` to have run
//! (scripts/test.sh does); without QEMU they print why and pass.

mod common;

use common::{assert_user_error, cleanup, disk_dir, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios").join(name)
}

/// The oracle with `envs` set (TMPDIR is always the test's own directory,
/// so the run directory, which QEMU's command line names, is unique).
fn oracle(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pmemlab"));
    c.arg("oracle").args(args).current_dir(dir).env("TMPDIR", dir).stdin(Stdio::null());
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("run pmemlab")
}

/// Why the real-QEMU tests cannot run here, if they cannot.
fn no_real_qemu() -> Option<String> {
    if pmemlab::oracle::kernel::on_path("qemu-system-x86_64").is_none() {
        return Some("qemu-system-x86_64 is not installed (run scripts/ensure-qemu.sh)".into());
    }
    if let Err(e) = pmemlab::oracle::kernel::find(None) {
        return Some(format!("no guest kernel: {e}"));
    }
    None
}

/// QEMU processes whose command line names `dir`.
fn qemu_left(dir: &Path) -> String {
    let out = Command::new("pgrep").arg("-af").arg(dir.to_str().unwrap()).output().expect("pgrep");
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.contains("pgrep")).collect::<Vec<_>>().join("\n")
}

/// A directory holding a fake `qemu-system-x86_64` with `body`.
fn fake_qemu(dir: &Path, body: &str) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let q = bin.join("qemu-system-x86_64");
    std::fs::write(&q, format!("#!/bin/sh\n{body}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&q, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

#[test]
fn no_qemu_on_path_is_one_line_naming_the_package() {
    let dir = disk_dir("oracle-no-qemu");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = oracle(&dir, &[example("fsync-then-crash.json").to_str().unwrap()], &[("PATH", empty.to_str().unwrap())]);
    assert_user_error(&o, "qemu-system-x86");
    assert!(stderr(&o).contains("not on PATH"), "{}", stderr(&o));
    cleanup(&dir);
}

#[test]
fn a_bogus_kernel_is_one_line_naming_the_file() {
    let dir = disk_dir("oracle-bogus-kernel");
    let path = fake_qemu(&dir, "exit 1");
    let kernel = dir.join("not-a-vmlinux");
    std::fs::write(&kernel, "this is text, not a kernel\n").unwrap();
    let scenario = example("fsync-then-crash.json");
    let args = [scenario.to_str().unwrap(), "--kernel", kernel.to_str().unwrap()];
    let o = oracle(&dir, &args, &[("PATH", &path)]);
    assert_user_error(&o, "not-a-vmlinux");
    assert!(stderr(&o).contains("not an uncompressed ELF kernel"), "{}", stderr(&o));
    // A kernel that does not exist names the file too.
    let args = [scenario.to_str().unwrap(), "--kernel", "/nonexistent/vmlinux"];
    assert_user_error(&oracle(&dir, &args, &[("PATH", &path)]), "/nonexistent/vmlinux");
    cleanup(&dir);
}

#[test]
fn a_step_the_real_system_cannot_do_is_refused_before_boot() {
    let dir = disk_dir("oracle-unsupported");
    let s = dir.join("inject.json");
    std::fs::write(
        &s,
        r#"{"version":1,"name":"m","devices":[{"id":"nv1","size":"1M"}],
            "steps":[{"op":"write","device":"nv1","offset":0,"text":"a"},{"op":"inject_fsync_error","device":"nv1"}]}"#,
    )
    .unwrap();
    let o = oracle(&dir, &[s.to_str().unwrap()], &[]);
    assert_user_error(&o, "step 1 (inject_fsync_error): the real system cannot do this step");
    // mmap with a hotplug: the DAX scratch device would move the plugged one.
    let s = dir.join("mmap-hotplug.json");
    std::fs::write(
        &s,
        r#"{"version":1,"name":"m","devices":[{"id":"nv1","size":"1M"}],
            "steps":[{"op":"mmap","device":"nv1"},{"op":"hotplug","device":{"id":"nv2","size":"1M","mem-path":"b.img"}}]}"#,
    )
    .unwrap();
    assert_user_error(&oracle(&dir, &[s.to_str().unwrap()], &[]), "step 0 (mmap)");
    // A device mode QEMU is not set up for.
    let o = oracle(&dir, &[example("nvdimm-emulation.json").to_str().unwrap()], &[]);
    assert_user_error(&o, "device 'emulated'");
    // A bad --timeout.
    let o = oracle(&dir, &[example("fsync-then-crash.json").to_str().unwrap(), "--timeout", "0"], &[]);
    assert_user_error(&o, "--timeout 0");
    // A VMM other than QEMU; a driver the guest cannot load for every device.
    let ch = dir.join("ch.json");
    std::fs::write(&ch, r#"{"version":1,"devices":[{"id":"nv1","size":"1M","vmm":"cloud-hypervisor"}],"steps":[]}"#)
        .unwrap();
    assert_user_error(&oracle(&dir, &[ch.to_str().unwrap()], &[]), "the real system is QEMU 7.2");
    let two = dir.join("two.json");
    std::fs::write(
        &two,
        r#"{"version":1,"devices":[{"id":"a","size":"1M","driver":"linux-concurrent"},
            {"id":"b","size":"1M","driver":"linux-serialized"}],"steps":[]}"#,
    )
    .unwrap();
    assert_user_error(&oracle(&dir, &[two.to_str().unwrap()], &[]), "one nd_virtio for every device");
    // A -m QEMU refuses.
    let o = oracle(&dir, &[example("fsync-then-crash.json").to_str().unwrap(), "--maxmem", "100M"], &[]);
    assert_user_error(&o, "must be at least the initial memory size");
    cleanup(&dir);
}

#[test]
fn a_guest_that_does_not_boot_in_time_is_exit_2_and_leaves_no_qemu() {
    if let Some(why) = no_real_qemu() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = disk_dir("oracle-timeout");
    // Under TCG the guest needs about 3.5 s to reach /init.
    let o = oracle(&dir, &[example("fsync-then-crash.json").to_str().unwrap(), "--timeout", "0.5"], &[]);
    assert_user_error(&o, "did not boot within 0.5 s");
    assert_eq!(qemu_left(&dir), "", "a QEMU process outlived the run");
    // A "QEMU" that never answers, with a child of its own: the whole
    // process group goes.
    let path = fake_qemu(&dir, r#"if [ "$1" = child ]; then sleep 600; exit; fi; "$0" child & sleep 600"#);
    let o = oracle(&dir, &[example("fsync-then-crash.json").to_str().unwrap(), "--timeout", "1"], &[("PATH", &path)]);
    assert_user_error(&o, "did not boot within 1 s");
    assert_eq!(qemu_left(&dir), "", "the fake QEMU or its child outlived the run");
    cleanup(&dir);
}

#[test]
fn sigterm_stops_qemu_and_exits_130() {
    if let Some(why) = no_real_qemu() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = disk_dir("oracle-sigterm");
    let child = Command::new(env!("CARGO_BIN_EXE_pmemlab"))
        .args(["oracle", example("why-fsync.json").to_str().unwrap()])
        .env("TMPDIR", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until QEMU runs, then stop the oracle.
    let mut waited = 0;
    while qemu_left(&dir).is_empty() && waited < 600 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        waited += 1;
    }
    assert!(!qemu_left(&dir).is_empty(), "QEMU never started");
    // SAFETY: kill(2) of the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
    assert_eq!(qemu_left(&dir), "", "QEMU outlived SIGTERM");
    cleanup(&dir);
}

fn quantity<'a>(report: &'a serde_json::Value, step: usize, name: &str) -> Vec<&'a serde_json::Value> {
    report["steps"][step]["quantities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["name"].as_str().unwrap().starts_with(name))
        .collect()
}

#[test]
fn fsync_then_crash_on_real_qemu_agrees_on_flushes_data_and_dirty_pages() {
    if let Some(why) = no_real_qemu() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = disk_dir("oracle-real");
    let o = oracle(&dir, &[example("fsync-then-crash.json").to_str().unwrap(), "--json"], &[]);
    // Every compared quantity agrees (exit 0).
    assert_eq!(o.status.code(), Some(0), "stdout: {}\nstderr: {}", stdout(&o), stderr(&o));
    let r: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON report");
    // Step 1 is the fsync: exactly one flush request reached QEMU, on both sides.
    let flush = quantity(&r, 1, "flush requests");
    assert_eq!((flush[0]["model"].as_str(), flush[0]["real"].as_str()), (Some("1"), Some("1")), "{flush:?}");
    for step in 0..r["steps"].as_array().unwrap().len() {
        for q in quantity(&r, step, "flush re").into_iter().chain(quantity(&r, step, "data")) {
            assert_eq!(q["agree"], true, "step {step}: {q}");
        }
        for q in quantity(&r, step, "dirty pages (2 MiB").into_iter().chain(quantity(&r, step, "crash image")) {
            assert_eq!(q["agree"], true, "step {step}: {q}");
        }
    }
    // After the power failure (step 5) the restarted guest reads the
    // flushed record and not the unflushed one.
    assert_eq!(quantity(&r, 6, "data read")[0]["real"], "\"balance=100\"");
    assert_eq!(quantity(&r, 7, "data read")[0]["real"], "10 zero bytes");
    // QEMU places the device at 4 GiB with -m 512M,slots=2,maxmem=2G.
    // The model places it there too.
    let memaddr = quantity(&r, 0, "memaddr");
    assert!(memaddr[0]["real"].as_str().unwrap().starts_with("0x100000000 "), "{memaddr:?}");
    assert_eq!(memaddr[0]["model"], memaddr[0]["real"], "{memaddr:?}");
    // The model runs with the host's 2 MiB folios: one store, 512 dirty
    // pages on both sides (the model's own count, not one the oracle makes).
    let dirty = quantity(&r, 0, "dirty pages (2 MiB");
    assert_eq!((dirty[0]["model"].as_str(), dirty[0]["real"].as_str()), (Some("512"), Some("512")), "{dirty:?}");
    assert_eq!(r["boots"], 2, "one boot, and one after the power failure");
    assert_eq!(qemu_left(&dir), "");
    cleanup(&dir);
}

#[test]
fn map_sync_is_refused_by_the_real_guest_kernel_as_by_the_model() {
    if let Some(why) = no_real_qemu() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = disk_dir("oracle-mmap");
    let o = oracle(&dir, &[example("map-sync.json").to_str().unwrap(), "--json"], &[]);
    assert_eq!(o.status.code(), Some(0), "stdout: {}\nstderr: {}", stdout(&o), stderr(&o));
    let r: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON report");
    // Step 0: mmap with MAP_SYNC of a file on a DAX ext4 on virtio-pmem; the
    // real guest kernel's errno, named.
    let result = quantity(&r, 0, "result");
    assert_eq!(
        (result[0]["model"].as_str(), result[0]["real"].as_str()),
        (Some("failed (EOPNOTSUPP)"), Some("failed (EOPNOTSUPP)"))
    );
    // Step 1: without MAP_SYNC it maps, and statx says the file is DAX.
    assert_eq!(quantity(&r, 1, "result")[0]["real"], "ok");
    assert_eq!(quantity(&r, 1, "mapping is DAX")[0]["real"], "yes");
    // The msync (step 4) is one flush request on both sides, and the
    // scratch device added none to the steps around it.
    for step in 0..r["steps"].as_array().unwrap().len() {
        let want = if step == 4 { "1" } else { "0" };
        assert_eq!(quantity(&r, step, "flush requests")[0]["real"], want, "step {step}");
    }
    assert_eq!(qemu_left(&dir), "");
    cleanup(&dir);
}

#[test]
fn a_device_qemu_refuses_at_start_is_refused_by_the_model_with_the_same_message() {
    if let Some(why) = no_real_qemu() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = disk_dir("oracle-refused");
    let scenario = dir.join("big.json");
    std::fs::write(
        &scenario,
        r#"{ "version": 1, "devices": [ { "id": "nv1", "size": "4G" } ],
             "steps": [ { "op": "write", "device": "nv1", "offset": 0, "text": "x" } ] }"#,
    )
    .unwrap();
    // The seed's 4G device does not fit in maxmem=2G: QEMU exits at once.
    let o = oracle(&dir, &[scenario.to_str().unwrap(), "--json"], &[]);
    assert_eq!(o.status.code(), Some(0), "stdout: {}\nstderr: {}", stdout(&o), stderr(&o));
    let r: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON report");
    let q = quantity(&r, 0, "refusal at start");
    assert_eq!(q[0]["model"], "not enough space, currently 0x0 in use of total space for memory devices 0x60000000");
    assert_eq!(q[0]["agree"], true);
    assert!(r["steps"][0]["real"].as_str().unwrap().contains("qemu-system-x86_64: -device virtio-pmem-pci"));
    assert_eq!(qemu_left(&dir), "");
    cleanup(&dir);
}
