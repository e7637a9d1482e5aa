//! `pmemlab run` on real files of a disk file system.

mod common;

use common::{assert_user_error, cleanup, disk_dir, pmemlab, stderr, stdout};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios").join(name)
}

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn runs_an_example_on_real_files_with_the_model_and_the_kernel_side_by_side() {
    let dir = disk_dir("run-example");
    let s = example("fsync-then-crash.json");
    let o = pmemlab(&dir, &["run", s.to_str().unwrap(), "--dir", "."], "");
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("guest stores 11 bytes at offset 0x0"), "{out}");
    assert!(out.contains("side by side  nv1: model 1 dirty, 0 writeback | kernel 1 dirty"), "{out}");
    assert!(out.contains("result: passed: 8 of 8 steps"), "{out}");
    assert!(out.contains("nv1: 1 real fdatasync(s)"), "{out}");
    // The file is real: after the power failure it holds what survived.
    let bytes = std::fs::read(dir.join("nv1.img")).unwrap();
    assert_eq!(bytes.len(), 64 << 20);
    assert_eq!(&bytes[..11], b"balance=100");
    assert!(bytes[4096..4106].iter().all(|&b| b == 0), "the unflushed record was lost in the file too");
    cleanup(&dir);
}

#[test]
fn the_json_report_has_the_log_outcomes_and_kernel_figures_and_matches_the_model_run() {
    let dir = disk_dir("run-json");
    let s = example("why-fsync.json");
    let o = pmemlab(&dir, &["run", s.to_str().unwrap(), "--dir", ".", "--json"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let file = json(&o);
    assert_eq!(file["backend"], "file");
    assert_eq!(file["passed"], true);
    let steps = file["outcomes"].as_array().unwrap().len();
    assert!(steps >= 5);
    assert_eq!(file["side_by_side"].as_array().unwrap().len(), steps, "one comparison per step and device");
    assert_eq!(file["devices"][0]["fs"], "ext4");
    assert!(file["devices"][0]["created"].as_bool().unwrap());
    assert!(!file["log"]["events"].as_array().unwrap().is_empty());
    // The kernel saw the store as a dirty page right after it.
    let first = &file["side_by_side"][0];
    if !first["kernel"].is_null() {
        assert_eq!(first["kernel"]["dirty"], 1, "{first}");
        assert_eq!(first["model"]["dirty"], 1);
    }
    // The model-only run gives the same event log.
    let o = pmemlab(&dir, &["run", s.to_str().unwrap(), "--backend", "model", "--json"], "");
    assert_eq!(o.status.code(), Some(0));
    let model = json(&o);
    assert_eq!(model["fingerprint"], file["fingerprint"]);
    assert!(model["devices"].as_array().unwrap().is_empty());
    cleanup(&dir);
}

#[test]
fn a_failed_expectation_exits_1_and_is_listed() {
    let dir = disk_dir("run-fail");
    let s = write(
        &dir,
        "s.json",
        r#"{"version": 1, "devices": [{"id": "nv1", "size": "1M"}], "steps": [
            {"op": "write", "device": "nv1", "offset": 0, "text": "lost"},
            {"op": "power_failure"},
            {"op": "expect_data", "device": "nv1", "offset": 0, "text": "lost"}]}"#,
    );
    let o = pmemlab(&dir, &["run", s.to_str().unwrap()], "");
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("step 2 (expect_data): expected \"lost\", got 4 zero bytes"), "{}", stdout(&o));
    // Without mem-path the file is ID.img next to the scenario.
    assert_eq!(std::fs::read(dir.join("nv1.img")).unwrap()[..4], [0, 0, 0, 0]);
    let o = pmemlab(&dir, &["run", s.to_str().unwrap(), "--fresh", "--json"], "");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json(&o)["failed_expectations"].as_array().unwrap().len(), 1);
    cleanup(&dir);
}

#[test]
fn an_existing_backing_file_is_refused_unless_reused_or_zeroed() {
    let dir = disk_dir("run-existing");
    let _scenario = write(
        &dir,
        "s.json",
        r#"{"version": 1, "devices": [{"id": "nv1", "mem-path": "data.img", "size": "8K"}], "steps": [
            {"op": "expect_data", "device": "nv1", "offset": 0, "text": "old"}]}"#,
    );
    let mut content = vec![0u8; 8192];
    content[..3].copy_from_slice(b"old");
    std::fs::write(dir.join("data.img"), &content).unwrap();
    let o = pmemlab(&dir, &["run", "s.json"], "");
    assert_user_error(&o, "data.img exists");
    assert_eq!(std::fs::read(dir.join("data.img")).unwrap(), content, "refused and untouched");
    let o = pmemlab(&dir, &["run", "s.json", "--reuse"], "");
    assert_eq!(o.status.code(), Some(0), "the guest sees the old content: {}", stdout(&o));
    assert!(stdout(&o).contains("already holds 1 non-zero page(s)"), "{}", stdout(&o));
    let o = pmemlab(&dir, &["run", "s.json", "--fresh"], "");
    assert_eq!(o.status.code(), Some(1), "zeroed: the expectation fails");
    assert!(std::fs::read(dir.join("data.img")).unwrap().iter().all(|&b| b == 0));
    cleanup(&dir);
}

#[test]
fn crash_images_lose_unflushed_writes_and_leave_the_backing_file_alone() {
    let dir = disk_dir("run-images");
    std::fs::create_dir(dir.join("images")).unwrap();
    let s = write(
        &dir,
        "s.json",
        r#"{"version": 1, "seed": 5, "devices": [{"id": "nv1", "size": "64K"}], "steps": [
            {"op": "write", "device": "nv1", "offset": 0, "text": "flushed"},
            {"op": "fsync", "device": "nv1"},
            {"op": "write", "device": "nv1", "offset": 0, "text": "FLUSHED"},
            {"op": "write", "device": "nv1", "offset": 8192, "hex": "ab", "len": "4K"},
            {"op": "write", "device": "nv1", "offset": 16384, "hex": "cd", "len": "4K"},
            {"op": "write", "device": "nv1", "offset": 24576, "hex": "ef", "len": "4K"}]}"#,
    );
    let o = pmemlab(&dir, &["run", s.to_str().unwrap(), "--crash-images", "images", "--json"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report = json(&o);
    let images = report["crash_images"].as_array().unwrap();
    assert_eq!(images.len(), 2, "durable and sampled, at the end");
    assert_eq!(images[0]["reverted"].as_array().unwrap().len(), 4, "{}", images[0]);
    // The backing file keeps every write; the durable image only the flushed one.
    let file = std::fs::read(dir.join("nv1.img")).unwrap();
    assert_eq!(&file[..7], b"FLUSHED");
    assert!(file[8192..12288].iter().all(|&b| b == 0xab));
    let durable = std::fs::read(dir.join("images/nv1-end-durable.img")).unwrap();
    assert_eq!(durable.len(), file.len());
    assert_eq!(&durable[..7], b"flushed");
    assert!(durable[8192..].iter().all(|&b| b == 0), "unflushed pages are gone");
    // The sampled image keeps some newer pages and is made of old and new content only.
    let sampled = std::fs::read(dir.join("images/nv1-end-sampled.img")).unwrap();
    let kept = images[1]["kept"].as_array().unwrap().len() + images[1]["torn"].as_array().unwrap().len();
    assert!(kept <= 4);
    for (page, byte) in [(2usize, 0xab), (4, 0xcd), (6, 0xef)] {
        let p = &sampled[page * 4096..(page + 1) * 4096];
        assert!(p.iter().all(|&b| b == 0 || b == byte), "page {page} mixes only old and new content");
    }
    // Writing images again refuses to replace them.
    let o = pmemlab(&dir, &["run", s.to_str().unwrap(), "--crash-images", "images", "--reuse"], "");
    assert_user_error(&o, "nv1-end-durable.img: the file exists");
    cleanup(&dir);
}

/// A scenario storing to pages 0, 10 and 1024, then an fsync, with host
/// folios of `folio`.
fn folio_scenario(dir: &Path, folio: &str) -> PathBuf {
    let text = format!(
        r#"{{ "version": 1, "seed": 1,
  "model": {{ "host_folio": "{folio}", "dirty_expire_ms": null, "dirty_writeback_interval_ms": null }},
  "devices": [ {{ "id": "nv1", "mem-path": "./nv1.img", "size": "16M" }} ],
  "steps": [
    {{ "op": "write", "device": "nv1", "offset": 0, "text": "a" }},
    {{ "op": "write", "device": "nv1", "offset": 40960, "text": "b" }},
    {{ "op": "write", "device": "nv1", "offset": 4194304, "text": "c" }},
    {{ "op": "fsync", "device": "nv1" }} ] }}"#
    );
    write(dir, &format!("folio-{folio}.json"), &text)
}

#[test]
fn the_host_folio_knob_matches_what_the_kernel_counts() {
    // 4 KiB: the mapping asks for no read-ahead (MADV_RANDOM): the kernel
    // dirties exactly the stored pages. 2 MiB: MADV_HUGEPAGE, as QEMU does;
    // this host's ext4 gives large folios and dirties 512 pages per store
    // (REAL-QEMU.md). The model with the matching knob agrees at every step.
    for (folio, after_first, after_all) in [("4K", 1, 3), ("2M", 512, 1024)] {
        let dir = disk_dir(&format!("run-folio-{folio}"));
        let s = folio_scenario(&dir, folio);
        let o = pmemlab(&dir, &["run", s.to_str().unwrap(), "--dir", "."], "");
        assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
        let out = stdout(&o);
        let first = format!("model {after_first} dirty, 0 writeback | kernel {after_first} dirty");
        let all = format!("model {after_all} dirty, 0 writeback | kernel {after_all} dirty");
        assert!(out.contains(&first) && out.contains(&all), "{folio}: {out}");
        assert!(out.contains("model and kernel agreed after 4 of 4 step(s)"), "{folio}: {out}");
        cleanup(&dir);
    }
}
