//! `pmemlab record` and `pmemlab explore --trace`: real programs (C built
//! with gcc, python3) recorded through the interposer, their crash states
//! explored, and the bad input of issue 10.

mod common;

use common::programs::{build_interposer, gcc, json, programs, s};
use common::{assert_user_error, cleanup, disk_dir, pmemlab, stderr, stdout};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

fn checker() -> String {
    s(&programs().join("planted-bug/check.sh")).to_string()
}

/// Records planted-bug (with `mode`, e.g. "--correct") into `trace`.
fn record_planted(dir: &Path, trace: &str, mode: &[&str]) -> Output {
    build_interposer();
    let prog = gcc(dir, "planted-bug/planted-bug.c", "planted-bug", &[]);
    let mut args = vec!["record", "--pmem", "rec.img,size=1M", "--trace", trace, "--json", "--", s(&prog), "rec.img"];
    args.extend_from_slice(mode);
    let o = pmemlab(dir, &args, "");
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    o
}

fn sha(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn the_planted_bug_is_recorded_found_and_shrunk_to_one_page() {
    let dir = disk_dir("record-bug");
    let rec = json(&record_planted(&dir, "bug.json", &[]));
    assert_eq!((rec["stores"].as_u64(), rec["flushes"].as_u64(), rec["pages"].as_u64()), (Some(6), Some(3), Some(2)));
    let before = (sha(&dir.join("rec.img")), sha(&dir.join("bug.json")));
    let o = pmemlab(&dir, &["explore", "--trace", "bug.json", "--checker", &checker(), "--json"], "");
    assert_eq!(o.status.code(), Some(1), "violations expected: {}{}", stdout(&o), stderr(&o));
    let r = json(&o);
    assert!(r["campaign"]["violations_total"].as_u64().unwrap() >= 3, "one per update at least: {r}");
    let cx = &r["campaign"]["counterexample"]["minimal"];
    assert_eq!(cx["persisted"].as_array().unwrap().len(), 1, "shrunk to the commit page alone: {cx}");
    assert_eq!(cx["persisted"][0]["page"], 0);
    assert!(cx["message"].as_str().unwrap_or_default().contains("committed but the payload"), "{cx}");
    assert_eq!(r["target"]["trace"], "bug.json");
    let after = (sha(&dir.join("rec.img")), sha(&dir.join("bug.json")));
    assert!(before == after, "explore must not modify the user's files");
    cleanup(&dir);
}

#[test]
fn the_right_order_has_no_violation_and_without_flushes_it_loses_data() {
    let dir = disk_dir("record-ok");
    record_planted(&dir, "ok.json", &["--correct"]);
    let o = pmemlab(&dir, &["explore", "--trace", "ok.json", "--checker", &checker(), "--json"], "");
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let r = json(&o);
    assert_eq!(r["campaign"]["violations_total"], 0);
    assert!(r["campaign"]["points_total"].as_u64().unwrap() >= 13, "{}", r["campaign"]);
    // The negative control: the same checker on the same run with the
    // flushes dropped.
    let args = ["explore", "--trace", "ok.json", "--checker", &checker(), "--no-flush", "--json"];
    let o = pmemlab(&dir, &args, "");
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let r = json(&o);
    assert!(r["campaign"]["violations_total"].as_u64().unwrap() > 0);
    assert_eq!(r["target"]["no_flush"], true);
    cleanup(&dir);
}

#[test]
fn a_checker_server_judges_a_trace_as_the_per_image_checker_does() {
    let dir = disk_dir("record-server");
    record_planted(&dir, "bug.json", &[]);
    let server = format!("{} {}", s(&programs().join("../checkers/check-commit-server.sh")), checker());
    let run = |how: &str, cmd: &str| json(&pmemlab(&dir, &["explore", "--trace", "bug.json", how, cmd, "--json"], ""));
    let (per_image, served) = (run("--checker", &checker()), run("--checker-server", &server));
    let found = |r: &Value| {
        let v = r["campaign"]["violations"].as_array().unwrap().iter();
        v.map(|v| {
            (v["point"].clone(), v["n"].clone(), v["message"].as_str().unwrap().replace("checker exit status 1: ", ""))
        })
        .collect::<Vec<_>>()
    };
    assert!(!found(&per_image).is_empty());
    assert_eq!(found(&served), found(&per_image));
    cleanup(&dir);
}

#[test]
fn stores_writes_and_flushes_of_a_c_program_keep_their_order_and_its_handler_runs() {
    build_interposer();
    let dir = disk_dir("record-segv");
    let prog = gcc(&dir, "probes/segv.c", "segv", &[]);
    let o = pmemlab(&dir, &["record", "--pmem", "d.img,size=64K", "--trace", "t.json", "--", s(&prog), "d.img"], "");
    assert_eq!(o.status.code(), Some(3), "the program's exit status passes through: {}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("segv: caught my own fault"), "the program's handler ran: {}", stdout(&o));
    let t: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("t.json")).unwrap()).unwrap();
    let steps: Vec<String> = t["scenario"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| {
            format!(
                "{} {}",
                st["op"].as_str().unwrap(),
                if st["offset"].is_null() { String::new() } else { st["offset"].to_string() }
            )
        })
        .collect();
    let want =
        ["write 100", "write \"8K\"", "write \"4K\"", "write \"12K\"", "write 12291", "fsync ", "write 101", "msync "];
    assert_eq!(steps, want);
    assert_eq!(t["exit"]["code"], 3);
    cleanup(&dir);
}

#[test]
fn a_forked_child_that_stores_nothing_leaves_the_recording_alone_and_one_that_stores_is_refused() {
    build_interposer();
    let dir = disk_dir("record-fork");
    let prog = gcc(&dir, "probes/fork.c", "fork", &[]);
    let o = pmemlab(
        &dir,
        &["record", "--pmem", "f.img,size=64K", "--trace", "f.json", "--json", "--", s(&prog), "f.img"],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let r = json(&o);
    assert_eq!((r["stores"].as_u64(), r["flushes"].as_u64()), (Some(1), Some(1)), "{r}");
    let args = ["record", "--pmem", "g.img,size=64K", "--trace", "g.json", "--", s(&prog), "g.img", "child-stores"];
    let o = pmemlab(&dir, &args, "");
    assert_user_error(&o, "a forked child process stored through a shared mapping");
    assert!(!dir.join("g.json").exists() && !dir.join("g.img").exists());
    cleanup(&dir);
}

#[test]
fn the_other_devices_files_sit_next_to_the_crash_image_with_their_durable_content() {
    build_interposer();
    let dir = disk_dir("record-two");
    let prog = gcc(&dir, "probes/two.c", "two", &[]);
    let args = [
        "record",
        "--pmem",
        "a.img,size=64K",
        "--pmem",
        "b.img,size=64K",
        "--trace",
        "t.json",
        "--",
        s(&prog),
        "a.img",
        "b.img",
    ];
    let o = pmemlab(&dir, &args, "");
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = pmemlab(&dir, &["explore", "--trace", "t.json", "--checker", "true"], "");
    assert_user_error(&o, "choose the one to crash with --device");
    // When a.img holds "A", b.img (flushed before) must hold "B".
    let check = r#"sh -c 'test -f b.img || exit 3; a=$(head -c 1 a.img); b=$(head -c 1 b.img); [ "$a" != A ] || [ "$b" = B ]' x"#;
    let o = pmemlab(&dir, &["explore", "--trace", "t.json", "--device", "a.img", "--checker", check, "--json"], "");
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(json(&o)["campaign"]["checked"].as_u64().unwrap() >= 3);
    // Without the flushes, b's "B" is never durable while a's "A" may be.
    let args = ["explore", "--trace", "t.json", "--device", "pmem0", "--checker", check, "--no-flush"];
    let o = pmemlab(&dir, &args, "");
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    cleanup(&dir);
}

#[test]
fn a_python_program_using_mmap_and_pwrite_is_recorded() {
    build_interposer();
    let dir = disk_dir("record-python");
    let script = dir.join("p.py");
    std::fs::write(
        &script,
        "import mmap, os, sys\nfd = os.open(sys.argv[1], os.O_RDWR)\nm = mmap.mmap(fd, 8192)\nm[0:5] = b'hello'\nm.flush()\nos.pwrite(fd, b'WORLD', 100)\nos.fsync(fd)\nm[200:203] = b'abc'\n",
    )
    .unwrap();
    let o = pmemlab(
        &dir,
        &["record", "--pmem", "p.img,size=64K", "--trace", "p.json", "--json", "--", "python3", s(&script), "p.img"],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let r = json(&o);
    assert_eq!((r["stores"].as_u64(), r["bytes"].as_u64(), r["flushes"].as_u64()), (Some(3), Some(13), Some(2)));
    cleanup(&dir);
}

#[test]
fn a_program_that_cannot_be_traced_is_one_line_and_leaves_nothing() {
    build_interposer();
    let dir = disk_dir("record-bad");
    // Not found.
    let o = pmemlab(&dir, &["record", "--pmem", "a.img,size=64K", "--", "no-such-program-pmemlab"], "");
    assert_user_error(&o, "no-such-program-pmemlab: not found on PATH");
    // Static.
    let st = gcc(&dir, "planted-bug/planted-bug.c", "static-bug", &["-static"]);
    let o = pmemlab(&dir, &["record", "--pmem", "a.img,size=64K", "--", s(&st), "a.img"], "");
    assert_user_error(&o, "statically linked");
    // mremap of the device mapping.
    let un = gcc(&dir, "probes/untraceable.c", "untraceable", &[]);
    let o = pmemlab(&dir, &["record", "--pmem", "a.img,size=64K", "--", s(&un), "a.img"], "");
    assert_user_error(&o, "cannot be traced: the program moved or resized a device mapping with mremap");
    // A device file removed by the program.
    let script = dir.join("unlink.py");
    std::fs::write(&script, "import os, sys\nfd = os.open(sys.argv[1], os.O_RDWR)\nos.pwrite(fd, b'x', 0)\nos.fsync(fd)\nos.unlink(sys.argv[1])\n").unwrap();
    let o = pmemlab(&dir, &["record", "--pmem", "a.img,size=64K", "--", "python3", s(&script), "a.img"], "");
    assert_user_error(&o, "removed or renamed a device file");
    std::fs::remove_file(&script).unwrap();
    // MAP_SYNC: refused with EOPNOTSUPP, the program exits 1 before any flush.
    let pb = gcc(&dir, "planted-bug/planted-bug.c", "planted-bug", &[]);
    let o = pmemlab(&dir, &["record", "--pmem", "a.img,size=64K", "--", s(&pb), "a.img", "--map-sync"], "");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("mmap: Operation not supported"), "the program saw EOPNOTSUPP: {err}");
    let last: Vec<&str> = err.lines().filter(|l| l.starts_with("pmemlab:")).collect();
    assert_eq!(last.len(), 1, "{err}");
    assert!(last[0].contains("ended with exit status 1 before any flush"), "{err}");
    let mut left: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert_eq!(left, ["planted-bug", "static-bug", "untraceable"], "no trace and no device file left behind");
    cleanup(&dir);
}

#[test]
fn a_truncated_or_foreign_trace_is_refused_in_one_line() {
    let dir = disk_dir("record-badtrace");
    record_planted(&dir, "t.json", &[]);
    let text = std::fs::read_to_string(dir.join("t.json")).unwrap();
    std::fs::write(dir.join("cut.json"), &text[..text.len() / 2]).unwrap();
    let at = text.rfind("\"version\": 1").unwrap();
    std::fs::write(dir.join("v9.json"), format!("{}\"version\": 9{}", &text[..at], &text[at + 12..])).unwrap();
    let dup = text.replacen("\"program\":", "\"program\": \"x\", \"program\":", 1);
    std::fs::write(dir.join("dup.json"), dup).unwrap();
    for (file, want) in [
        ("cut.json", "cut.json: the trace is truncated"),
        ("v9.json", "trace version 9 is not supported"),
        ("dup.json", "gives the key \"program\" twice"),
        ("none.json", "none.json: no such file"),
    ] {
        let o = pmemlab(&dir, &["explore", "--trace", file, "--checker", "true"], "");
        assert_user_error(&o, want);
    }
    let o = pmemlab(&dir, &["explore", "--trace", "t.json"], "");
    assert_user_error(&o, "a trace needs --checker");
    cleanup(&dir);
}

#[test]
fn an_existing_trace_is_kept_unless_forced() {
    let dir = disk_dir("record-force");
    record_planted(&dir, "t.json", &[]);
    let before = sha(&dir.join("t.json"));
    let pb = dir.join("planted-bug");
    let o = pmemlab(
        &dir,
        &["record", "--pmem", "rec.img,size=1M", "--trace", "t.json", "--", s(&pb), "rec.img", "--correct"],
        "",
    );
    assert_user_error(&o, "t.json: the file exists");
    assert_eq!(sha(&dir.join("t.json")), before);
    let o = pmemlab(
        &dir,
        &["record", "--pmem", "rec.img,size=1M", "--trace", "t.json", "--force", "--", s(&pb), "rec.img", "--correct"],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let t: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("t.json")).unwrap()).unwrap();
    assert_eq!(t["initial_steps"], 2, "the file's content from the first run is the durable start (2 pages, 1 flush)");
    assert_eq!(t["scenario"]["steps"][1]["op"], "fsync");
    cleanup(&dir);
}

#[test]
fn a_write_on_an_o_dsync_descriptor_is_recorded_as_a_write_and_a_flush() {
    build_interposer();
    let dir = disk_dir("record-dsync");
    let script = dir.join("d.py");
    // An O_DSYNC write (LMDB's meta page), a pwritev2 with RWF_DSYNC, and a
    // plain write on an ordinary descriptor of the same file (no flush).
    std::fs::write(
        &script,
        "import os, sys\nd = os.open(sys.argv[1], os.O_RDWR | os.O_DSYNC)\nos.pwrite(d, b'meta', 0)\nf = os.open(sys.argv[1], os.O_RDWR)\nos.pwritev(f, [b'sync'], 4096, os.RWF_DSYNC)\nos.pwrite(f, b'late', 8192)\n",
    )
    .unwrap();
    let o = pmemlab(
        &dir,
        &["record", "--pmem", "d.img,size=64K", "--trace", "d.json", "--json", "--", "python3", s(&script), "d.img"],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let t: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("d.json")).unwrap()).unwrap();
    let steps: Vec<String> = t["scenario"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| format!("{} {}", st["op"].as_str().unwrap(), st["note"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(steps, ["write ", "fsync O_DSYNC write", "write ", "fsync O_DSYNC write", "write "], "{steps:?}");
    cleanup(&dir);
}
