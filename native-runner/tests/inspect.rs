//! `pmemlab inspect` on real files on a disk file system: the kernel's
//! dirty-page counts before and after fsync.

mod common;

use common::{assert_user_error, cleanup, disk_dir, pmemlab, stdout};
use serde_json::Value;
use std::fs::File;
use std::io::Write;

const PAGES: u64 = 16;

fn inspect_json(dir: &std::path::Path, file: &str) -> Value {
    let o = pmemlab(dir, &["inspect", "--json", file], "");
    assert!(o.status.success(), "{}", common::stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).expect("inspect --json prints JSON");
    v.as_array().expect("an array")[0].clone()
}

fn counts(report: &Value) -> Option<(u64, u64, u64)> {
    let c = report.get("cachestat")?.as_object()?;
    let n = |k: &str| c[k].as_u64().unwrap();
    Some((n("cached"), n("dirty"), n("writeback")))
}

#[test]
fn dirty_pages_show_until_fsync_then_none() {
    let dir = disk_dir("dirty");
    let path = dir.join("data.bin");
    let page: Vec<u8> = (0..4096u32).map(|i| (i % 253) as u8).collect();
    // A concurrent global sync (another test, another process) could clean
    // the pages before we look; try a few times.
    let mut dirty_seen = None;
    for _ in 0..5 {
        let mut f = File::create(&path).unwrap();
        for _ in 0..PAGES {
            f.write_all(&page).unwrap();
        }
        drop(f); // closed, not synced
        let report = inspect_json(&dir, "data.bin");
        assert_eq!(report["size"], PAGES * 4096);
        assert_eq!(report["pages"], PAGES);
        assert_eq!(report["fs"].as_str().map(|s| s != "tmpfs"), Some(true));
        let Some((cached, dirty, _)) = counts(&report) else {
            let why = &report["cachestat_error"];
            eprintln!("skipped: cachestat unavailable here: {why}");
            cleanup(&dir);
            return;
        };
        assert_eq!(cached, PAGES, "{report}");
        if dirty > 0 {
            dirty_seen = Some(dirty);
            break;
        }
    }
    let dirty = dirty_seen.expect("cachestat never reported a dirty page after writing without fsync");
    assert!(dirty <= PAGES);

    File::open(&path).unwrap().sync_all().unwrap();
    let report = inspect_json(&dir, "data.bin");
    assert_eq!(counts(&report), Some((PAGES, 0, 0)), "after fsync nothing is dirty or under writeback: {report}");

    // The table says the same.
    let o = pmemlab(&dir, &["inspect", "data.bin"], "");
    let table = stdout(&o);
    let row = table.lines().nth(1).unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cols[2..=5], &["16", "16", "0", "0"], "{table}");
    assert!(row.ends_with("data.bin"), "{table}");
    cleanup(&dir);
}

#[test]
fn a_missing_file_is_one_line_and_exit_2_while_others_are_still_shown() {
    let dir = disk_dir("missing");
    std::fs::write(dir.join("present.bin"), vec![1u8; 8192]).unwrap();
    let o = pmemlab(&dir, &["inspect", "absent.bin"], "");
    assert_user_error(&o, "absent.bin: no such file");
    assert!(stdout(&o).is_empty());
    let o = pmemlab(&dir, &["inspect", "present.bin", "absent.bin"], "");
    assert_user_error(&o, "absent.bin");
    assert!(stdout(&o).contains("present.bin"), "{}", stdout(&o));
    cleanup(&dir);
}
