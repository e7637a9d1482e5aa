//! The reality check of the design's claims about failures:
//! - killing the VMM (SIGKILL, mid-workload) loses no completed store —
//!   the stores are in the host page cache, which survives the process;
//! - a host power failure (simulated: the runner's crash image of the same
//!   file) loses every store not covered by a completed flush.

mod common;

use common::{cleanup, disk_dir, stderr, stdout};
use pmemlab::soak::{parse_record, record};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

const PAGES: u64 = 16;

/// Last store reported per page, and the last store reported at all.
fn reported(lines: &[String]) -> (BTreeMap<u64, u64>, u64) {
    let mut last = BTreeMap::new();
    let mut max = 0;
    for l in lines {
        let mut w = l.split_whitespace();
        if w.next() == Some("wrote") {
            let n: u64 = w.next().unwrap().parse().unwrap();
            assert_eq!(w.next(), Some("page"));
            let p: u64 = w.next().unwrap().parse().unwrap();
            assert_eq!(p, (n - 1) % PAGES);
            last.insert(p, n);
            max = max.max(n);
        }
    }
    (last, max)
}

fn records(path: &Path) -> BTreeMap<u64, Option<u64>> {
    let bytes = std::fs::read(path).unwrap();
    (0..PAGES).map(|p| (p, parse_record(&bytes[(p * 4096) as usize..], p).unwrap())).collect()
}

/// Runs `pmemlab soak` until it reported `at_least` stores, kills it with
/// SIGKILL, and checks every reported store is in the file.
fn kill_mid_workload(flush_every: u64, at_least: u64) {
    let dir = disk_dir(&format!("sigkill-{flush_every}"));
    let file = dir.join("soak.img");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pmemlab"))
        .args(["soak", file.to_str().unwrap(), "--pages", &PAGES.to_string()])
        .args(["--flush-every", &flush_every.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "soak ended early: {lines:?}");
        lines.push(line.trim().to_string());
        if line.starts_with(&format!("wrote {at_least} ")) {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "killed, not ended: {status:?}");
    // What it printed before dying counts as reported too.
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    lines.extend(rest.lines().map(str::to_string));
    let (last, max) = reported(&lines);
    assert!(max >= at_least);
    let flushed = lines.iter().filter_map(|l| l.strip_prefix("flushed ")).filter_map(|n| n.parse::<u64>().ok()).max();
    let on_disk = records(&file);
    for p in 0..PAGES {
        let want = last.get(&p).copied();
        let have = on_disk[&p];
        // The store after the last reported one may have completed unseen.
        let unseen = max + 1;
        assert!(
            have == want || (have == Some(unseen) && (unseen - 1) % PAGES == p),
            "page {p}: the file holds store {have:?}, the last reported store is {want:?} (reported up to {max}, flushed up to {flushed:?})"
        );
    }
    // Stores after the last completed flush were not durable by any promise,
    // and survived all the same.
    let unflushed = max - flushed.unwrap_or(0);
    assert!(unflushed > 0 || flush_every == 1, "the kill should land between flushes");
    cleanup(&dir);
}

#[test]
fn sigkill_mid_workload_loses_no_completed_store_even_unflushed() {
    // No flush at all: nothing is durable, and still nothing is lost.
    kill_mid_workload(0, 1500);
}

#[test]
fn sigkill_mid_workload_with_flushes_loses_no_completed_store() {
    kill_mid_workload(16, 1500);
}

#[test]
fn a_simulated_power_failure_of_the_same_workload_loses_the_unflushed_stores() {
    let dir = disk_dir("power-failure");
    let file = dir.join("soak.img");
    let image = dir.join("after-power-failure.img");
    let o = Command::new(env!("CARGO_BIN_EXE_pmemlab"))
        .args(["soak", file.to_str().unwrap(), "--pages", &PAGES.to_string(), "--flush-every", "64"])
        .args(["--writes", "1000", "--crash-image", image.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("flushed 960"), "{}", stdout(&o));
    // The backing file holds every store (the last 16: 985..=1000), untouched
    // by writing the image.
    let file_records = records(&file);
    let image_records = records(&image);
    for p in 0..PAGES {
        let last = (985..=1000).find(|n| (n - 1) % PAGES == p).unwrap();
        assert_eq!(file_records[&p], Some(last), "page {p} of the backing file");
        // The power failure keeps only what the flush after store 960 made durable.
        let durable = (945..=960).find(|n| (n - 1) % PAGES == p).unwrap();
        assert_eq!(image_records[&p], Some(durable), "page {p} of the crash image");
    }
    let f = std::fs::read(&file).unwrap();
    let i = std::fs::read(&image).unwrap();
    assert_eq!(f.len(), i.len());
    assert_ne!(f, i, "the power failure lost the 40 unflushed stores");
    assert!(stdout(&o).contains("16 page(s) newer than the last flush reverted"), "{}", stdout(&o));
    // The same check through the library's record format.
    assert_eq!(parse_record(&record(7, 6), 6), Ok(Some(7)));
    cleanup(&dir);
}
