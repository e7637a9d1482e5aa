//! Real, unmodified clients recorded with `pmemlab record` and explored with
//! `pmemlab explore --trace` (issue 10, point 4): SQLite (rollback journal
//! and WAL, through Python's sqlite3 module), LMDB (python3-lmdb, default
//! and writemap), PMDK (libpmemobj transactions). Each: with its flushes,
//! every crash point explored and no violation; with `--no-flush` (the
//! negative control) a transaction whose commit returned is lost. The
//! planted bug (caught and shrunk) is record.rs's. The workloads, checkers
//! and why each is set up as it is: examples/programs/{sqlite,lmdb,pmdk}.
//!
//! The Debian packages they need are installed by scripts/ensure-clients.sh
//! (the README's test command runs it); a missing one fails the test.

mod common;

use common::programs::{build_interposer, gcc, json, programs, require, s};
use common::{cleanup, disk_dir, pmemlab, stderr, stdout};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Debian's Python, which has python3-lmdb (a `python3` on PATH may not).
const PYTHON: &str = "/usr/bin/python3";
/// The device the workloads mark each returned commit on (see
/// examples/programs/committed.py).
const MARKS: &str = "marks.img,size=64K";
/// The negative control: flushes dropped, every crash point visited with a
/// few images each.
const NO_FLUSH: &[&str] =
    &["--no-flush", "--exhaustive-limit", "1", "--samples", "2", "--torn-samples", "0", "--no-shrink"];

/// One client's recorded run in its own directory.
struct Run {
    dir: PathBuf,
    trace: PathBuf,
    images: Option<PathBuf>,
}

impl Run {
    /// Records `program` with the devices `pmem` into `dir/trace.json`,
    /// after `prepare(dir)`.
    fn record(name: &str, prepare: impl FnOnce(&Path), pmem: &[&str], program: &[&str]) -> Run {
        build_interposer();
        let dir = disk_dir(name);
        prepare(&dir);
        let mut args = vec!["record"];
        for p in pmem {
            args.extend(["--pmem", p]);
        }
        args.extend(["--trace", "trace.json", "--json", "--"]);
        args.extend(program);
        let o = pmemlab(&dir, &args, "");
        assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
        let summary = json(&o);
        let figures = ["stores", "bytes", "flushes", "pages"].map(|k| format!("{k} {}", summary[k]));
        eprintln!("{name}: recorded {}", figures.join(", "));
        assert!(summary["stores"].as_u64().unwrap() > 0 && summary["flushes"].as_u64().unwrap() > 0, "{summary}");
        // Crash images on a memory file system when there is one: a PMDK pool
        // image is megabytes, written once per image.
        let images = Path::new("/dev/shm").is_dir().then(|| {
            let d = PathBuf::from(format!("/dev/shm/pmemlab-clients-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&d).unwrap();
            d
        });
        Run { trace: dir.join("trace.json"), dir, images }
    }

    /// The checker-server command of `checker` (under examples/programs) for
    /// a campaign crashing `device`.
    fn checker(&self, checker: &str, device: &str, extra: &[&str]) -> String {
        let path = programs().join(checker);
        let base = format!("{PYTHON} {} --trace {} --device {device} --marks marks.img", s(&path), s(&self.trace));
        format!("{base} {} --server", extra.join(" "))
    }

    /// Explores the trace crashing `device`, judged by `server`; the report.
    fn explore(&self, device: &str, server: &str, options: &[&str]) -> Value {
        let mut args = vec!["explore", "--trace", "trace.json", "--device", device, "--checker-server", server];
        args.extend(["-j", "2", "--json"]);
        if let Some(d) = &self.images {
            args.extend(["--image-dir", s(d)]);
        }
        args.extend(options);
        let started = std::time::Instant::now();
        let o = pmemlab(&self.dir, &args, "");
        let took = started.elapsed().as_secs_f64();
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}{}", stdout(&o), stderr(&o));
        let r = json(&o);
        // The figures of docs/programs.md (a log, not an assertion).
        let c = &r["campaign"];
        let figures = ["points_total", "checked", "duplicates", "violations_total"].map(|k| format!("{k} {}", c[k]));
        eprintln!("{}: {device} {options:?}: {}, {took:.1} s", self.dir.display(), figures.join(", "));
        assert_eq!(r["campaign"]["next_point"], Value::Null, "the campaign ran to its end: {}", r["campaign"]);
        r
    }

    fn done(self) {
        cleanup(&self.dir);
        if let Some(d) = self.images {
            cleanup(&d);
        }
    }
}

fn total(r: &Value, key: &str) -> u64 {
    r["campaign"][key].as_u64().unwrap()
}

/// Asserts a campaign with flushes found nothing; its crash points.
fn assert_clean(r: &Value) -> u64 {
    let c = &r["campaign"];
    assert_eq!(total(r, "violations_total"), 0, "violations with the flushes: {}", c["violations"]);
    assert_eq!(total(r, "sampled_points") + total(r, "exhaustive_points"), total(r, "points_total"));
    total(r, "points_total")
}

/// Asserts the negative control lost a transaction whose commit returned.
fn assert_loses(r: &Value) {
    assert!(total(r, "violations_total") >= 1, "no violation without the flushes: {}", r["campaign"]);
    let lost = r["campaign"]["violations"].as_array().unwrap().iter();
    let lost = lost.filter(|v| v["message"].as_str().unwrap().contains("returned")).count();
    assert!(lost >= 1, "no returned commit lost: {}", r["campaign"]["violations"]);
    assert_eq!(r["target"]["no_flush"], true);
}

fn sqlite(mode: &str, second: &str, n: &str) {
    require(&[PYTHON, "-c", "import sqlite3"], "python3");
    let journal = format!("{second},size=1M,empty=on");
    let workload = programs().join("sqlite/workload.py");
    let program = [PYTHON, s(&workload), mode, n, "db.img", "marks.img"];
    let devices = ["db.img,size=1M,empty=on", &journal, MARKS];
    let run = Run::record(&format!("clients-sqlite-{mode}"), |_| {}, &devices, &program);
    let mut points = 0;
    for device in ["db.img", second] {
        points += assert_clean(&run.explore(device, &run.checker("sqlite/check.py", device, &[]), &[]));
    }
    assert!(points >= 1000, "{points} crash points");
    let crashed = if mode == "wal" { second } else { "db.img" };
    assert_loses(&run.explore(crashed, &run.checker("sqlite/check.py", crashed, &["--no-flush"]), NO_FLUSH));
    run.done();
}

#[test]
fn sqlite_with_a_rollback_journal_loses_no_commit_and_without_flushes_it_does() {
    sqlite("rollback", "db.img-journal", "45");
}

#[test]
fn sqlite_in_wal_mode_loses_no_commit_and_without_flushes_it_does() {
    sqlite("wal", "db.img-wal", "150");
}

fn lmdb(mode: &str, n: &str) {
    require(&[PYTHON, "-c", "import lmdb"], "python3-lmdb");
    let workload = programs().join("lmdb/workload.py");
    let program = [PYTHON, s(&workload), mode, n, "data.mdb", "marks.img"];
    let run = Run::record(&format!("clients-lmdb-{mode}"), |_| {}, &["data.mdb,size=1M,empty=on", MARKS], &program);
    let extra: &[&str] = if mode == "writemap" { &["--writemap"] } else { &[] };
    let points = assert_clean(&run.explore("data.mdb", &run.checker("lmdb/check.py", "data.mdb", extra), &[]));
    assert!(points >= 1000, "{points} crash points");
    let nf = [extra, &["--no-flush"]].concat();
    assert_loses(&run.explore("data.mdb", &run.checker("lmdb/check.py", "data.mdb", &nf), NO_FLUSH));
    run.done();
}

#[test]
fn lmdb_with_write_calls_loses_no_commit_and_without_flushes_it_does() {
    lmdb("default", "120");
}

#[test]
fn lmdb_storing_through_its_map_loses_no_commit_and_without_flushes_it_does() {
    lmdb("writemap", "80");
}

#[test]
fn a_pmdk_pool_loses_no_transaction_and_without_flushes_it_does() {
    require(&["pmempool", "--version"], "pmdk-tools");
    require(&["test", "-f", "/usr/include/libpmemobj.h"], "libpmemobj-dev");
    let build = disk_dir("clients-pmdk-build");
    let prog = gcc(&build, "pmdk/pmdk-tx.c", "pmdk-tx", &["-lpmemobj"]);
    // The pool is created before the recorded run: its content is the
    // trace's durable start (no crash explored inside pmemobj_create).
    let create = |dir: &Path| {
        let o = std::process::Command::new(&prog).args(["create", "pmdk.pool", "8388608"]).current_dir(dir).output();
        let o = o.unwrap();
        assert!(o.status.success(), "pmdk-tx create: {}", String::from_utf8_lossy(&o.stderr));
    };
    let program = [s(&prog), "run", "pmdk.pool", "marks.img", "36"];
    let run = Run::record("clients-pmdk", create, &["pmdk.pool,size=8M", MARKS], &program);
    let checker = |extra: &[&str]| {
        let args = [&["--program", s(&prog)], extra].concat();
        run.checker("pmdk/check.py", "pmdk.pool", &args)
    };
    let points = assert_clean(&run.explore("pmdk.pool", &checker(&[]), &[]));
    assert!(points >= 1000, "{points} crash points");
    assert_loses(&run.explore("pmdk.pool", &checker(&["--no-flush"]), NO_FLUSH));
    // pmempool check, the PMDK tool, agrees on a sample of the images.
    let sample = ["--exhaustive-limit", "1", "--samples", "1", "--torn-samples", "0"];
    assert_clean(&run.explore("pmdk.pool", &checker(&["--pmempool"]), &sample));
    run.done();
    cleanup(&build);
}
