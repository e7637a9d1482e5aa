//! `pmemlab explore`: campaigns with checker commands on real temporary
//! files, reports, shards, resume.

mod common;

use common::{assert_user_error, cleanup, disk_dir, pmemlab, stderr, stdout};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/explore")
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(o), stderr(o)))
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn a_missing_barrier_is_found_shrunk_and_reported_in_json_and_html() {
    let dir = disk_dir("explore-violation");
    let s = examples().join("commit-no-barrier.json");
    let check = examples().join("check-commit.sh");
    let o = pmemlab(
        &dir,
        &["explore", arg(&s), "--checker", arg(&check), "--json", "--html", "r.html", "--counterexample", "cx.img"],
        "",
    );
    assert_eq!(o.status.code(), Some(1), "violations exit 1: {}", stderr(&o));
    let r = json(&o);
    let c = &r["campaign"];
    assert!(c["violations_total"].as_u64().unwrap() >= 3, "{c}");
    assert!(r["complete"].as_bool().unwrap());
    let cx = &c["counterexample"]["minimal"];
    assert_eq!(cx["persisted"].as_array().unwrap().len(), 1, "{cx}");
    assert_eq!(cx["persisted"][0]["page"], 0, "the commit word alone");
    assert!(cx["message"].as_str().unwrap().contains("its record is missing"), "{cx}");
    // The counterexample image holds the commit word without its record.
    let img = std::fs::read(dir.join("cx.img")).unwrap();
    assert_eq!(img.len(), 1 << 20);
    assert_eq!(&img[..6], b"COMMIT");
    assert!(img[4096..4104].iter().all(|&b| b == 0));
    let html = std::fs::read_to_string(dir.join("r.html")).unwrap();
    for want in [
        "<svg",
        "Timeline of the crash points",
        "Failing crash points",
        "Minimal counterexample",
        "States explored per crash point",
        "its record is missing",
    ] {
        assert!(html.contains(want), "{want} missing from the HTML report");
    }
    assert!(!html.contains("<script") && !html.contains("src="), "self-contained");
    assert_eq!(entries(&dir), vec!["cx.img", "r.html"], "no temporary files left");
    cleanup(&dir);
}

#[test]
fn with_the_barrier_every_image_is_consistent_and_the_checker_sees_its_environment() {
    let dir = disk_dir("explore-clean");
    let s = examples().join("commit-with-barrier.json");
    let check = examples().join("check-commit.sh");
    let o = pmemlab(&dir, &["explore", arg(&s), "--checker", arg(&check), "--tear", "4KiB"], "");
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("no violation"), "{}", stdout(&o));
    // A checker that verifies what pmemlab passes it.
    let env_check = dir.join("env.sh");
    std::fs::write(
        &env_check,
        "#!/bin/sh\n[ \"$1\" = \"$PMEMLAB_IMAGE\" ] || { echo \"arg $1 is not $PMEMLAB_IMAGE\"; exit 3; }\n\
         [ -f \"$1\" ] || { echo no image; exit 3; }\n\
         [ \"$(stat -c %s \"$1\")\" = \"$PMEMLAB_IMAGE_SIZE\" ] || { echo size; exit 3; }\n\
         [ \"$PMEMLAB_DEVICE\" = nv1 ] || { echo device; exit 3; }\n\
         case \"$PMEMLAB_CRASH_POINT$PMEMLAB_ACKED_FLUSHES$PMEMLAB_WRITES_DONE\" in *[!0-9]*|'') echo numbers; exit 3;; esac\n\
         exit 0\n",
    )
    .unwrap();
    let o = pmemlab(&dir, &["explore", arg(&s), "--checker", &format!("sh {}", arg(&env_check)), "--tear", "4KiB"], "");
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // Negative control: a checker that rejects everything is believed.
    let o = pmemlab(&dir, &["explore", arg(&s), "--checker", "false", "--tear", "4KiB", "--json", "--no-shrink"], "");
    assert_eq!(o.status.code(), Some(1));
    let r = json(&o);
    assert_eq!(r["campaign"]["violations_total"], r["campaign"]["checked"]);
    cleanup(&dir);
}

#[test]
fn shards_together_check_what_one_campaign_checks() {
    let dir = disk_dir("explore-shard");
    let full = json(&pmemlab(&dir, &["explore", "--workload", "wal-missing-barrier", "--json"], ""));
    let handled =
        |r: &Value| r["campaign"]["checked"].as_u64().unwrap() + r["campaign"]["duplicates"].as_u64().unwrap();
    let mut sum = 0;
    let mut violations = 0;
    for i in 0..3 {
        let o = pmemlab(
            &dir,
            &["explore", "--workload", "wal-missing-barrier", "--json", "--shard", &format!("{i}/3")],
            "",
        );
        let r = json(&o);
        assert_eq!(r["config"]["shard"], serde_json::json!([i, 3]));
        sum += handled(&r);
        violations += r["campaign"]["violations_total"].as_u64().unwrap();
    }
    assert_eq!(sum, handled(&full));
    assert!(violations >= 1 && full["campaign"]["violations_total"].as_u64().unwrap() >= 1);
    // The correct WAL has none, in any shard.
    let o = pmemlab(&dir, &["explore", "--workload", "wal", "--shard", "1/2"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    cleanup(&dir);
}

#[test]
fn a_stopped_campaign_resumes_to_the_same_result() {
    let dir = disk_dir("explore-resume");
    let s = examples().join("commit-no-barrier.json");
    let check = examples().join("check-commit.sh");
    let full = json(&pmemlab(&dir, &["explore", arg(&s), "--checker", arg(&check), "--json", "--tear", "4KiB"], ""));
    let o = pmemlab(
        &dir,
        &["explore", arg(&s), "--checker", arg(&check), "--tear", "4KiB", "--max-states", "5", "--state", "st.json"],
        "",
    );
    let out = stdout(&o);
    assert!(out.contains("incomplete (max-states)"), "{out}");
    assert!(out.contains("resume with --resume st.json"), "{out}");
    let saved: Value = serde_json::from_slice(&std::fs::read(dir.join("st.json")).unwrap()).unwrap();
    assert_eq!(saved["format"], "pmemlab-explore-state");
    let part = saved["report"]["checked"].as_u64().unwrap();
    assert!(part >= 5 && part < full["campaign"]["checked"].as_u64().unwrap(), "{part}");
    // Resume without repeating the scenario (its path is in the state file,
    // its content is re-read and compared); the checker is given again.
    let o = pmemlab(&dir, &["explore", "--resume", "st.json", "--checker", arg(&check), "--json"], "");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let done = json(&o);
    assert!(done["complete"].as_bool().unwrap());
    for k in ["checked", "duplicates", "violations_total", "per_point"] {
        assert_eq!(done["campaign"][k], full["campaign"][k], "{k}");
    }
    // Another checker cannot continue it.
    let o = pmemlab(&dir, &["explore", arg(&s), "--checker", "true", "--resume", "st.json"], "");
    assert_user_error(&o, "differs from the resumed campaign");
    // Nor another tear.
    let o = pmemlab(&dir, &["explore", "--resume", "st.json", "--checker", arg(&check), "--tear", "8B"], "");
    assert_user_error(&o, "--tear 8B differs");
    cleanup(&dir);
}

#[test]
fn bad_explore_input_is_one_line_exit_2_and_leaves_no_file() {
    let dir = disk_dir("explore-bad");
    let s = examples().join("commit-no-barrier.json");
    let check = examples().join("check-commit.sh");
    std::fs::write(dir.join("mine.html"), "precious").unwrap();
    let before = entries(&dir);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["explore", arg(&s)], "needs --checker"),
        (vec!["explore"], "nothing to explore"),
        (vec!["explore", "--workload", "nope"], "no such workload"),
        (vec!["explore", arg(&s), "--checker", "./no-such-checker"], "could not be run"),
        (vec!["explore", arg(&s), "--checker", arg(&check), "--shard", "3/2"], "I must be below N"),
        (vec!["explore", arg(&s), "--checker", arg(&check), "--shard", "x"], "is not I/N"),
        (vec!["explore", arg(&s), "--checker", arg(&check), "--tear", "7B"], "7B"),
        (vec!["explore", arg(&s), "--checker", arg(&check), "--jobs", "0"], "--jobs 0"),
        (vec!["explore", arg(&s), "--checker", arg(&check), "--html", "mine.html"], "the file exists"),
        (vec!["explore", arg(&s), "--checker", arg(&check), "--html", "no/dir/r.html"], "does not exist"),
        (vec!["explore", arg(&s), "--checker", arg(&check), "--resume", "missing.json"], "no such state file"),
        (
            vec!["explore", arg(&s), "--checker", arg(&check), "--resume", "mine.html"],
            "not a pmemlab explore state file",
        ),
        (vec!["explore", "no-such.json", "--checker", "true"], "no such file"),
        (vec!["explore", arg(&s), "--checker", "true", "--device", "nv9"], "--device nv9"),
        (vec!["explore", "--workload", "wal", "--max-states", "0"], "--max-states 0"),
        (vec!["explore", "--workload", "wal", "--timeout=-1"], "--timeout -1"),
    ];
    for (args, want) in cases {
        let o = pmemlab(&dir, &args, "");
        assert_user_error(&o, want);
        assert!(stdout(&o).is_empty(), "{args:?} printed: {}", stdout(&o));
        assert_eq!(entries(&dir), before, "{args:?} left files behind");
    }
    assert_eq!(std::fs::read_to_string(dir.join("mine.html")).unwrap(), "precious");
    cleanup(&dir);
}

#[test]
fn a_checker_that_hangs_is_killed_and_counted_as_a_violation() {
    let dir = disk_dir("explore-timeout");
    let s = examples().join("commit-with-barrier.json");
    let o = pmemlab(
        &dir,
        &["explore", arg(&s), "--checker", "sleep 5; true", "--timeout", "0.2", "--max-states", "1", "--tear", "4KiB"],
        "",
    );
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("ran longer than 0.2s and was killed"), "{}", stdout(&o));
    cleanup(&dir);
}

#[test]
fn ctrl_c_stops_at_a_batch_boundary_saves_the_state_and_the_campaign_resumes() {
    use std::process::{Command, Stdio};
    let dir = disk_dir("explore-sigint");
    let s = examples().join("commit-with-barrier.json");
    let full = json(&pmemlab(&dir, &["explore", arg(&s), "--checker", "true", "--tear", "4KiB", "--json"], ""));
    let child = Command::new(env!("CARGO_BIN_EXE_pmemlab"))
        .args(["explore", arg(&s), "--checker", "sleep 0.1; true", "--tear", "4KiB", "--jobs", "1"])
        .args(["--state", "st.json"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once a batch was committed and saved.
    let start = std::time::Instant::now();
    loop {
        let saved: Option<Value> =
            std::fs::read(dir.join("st.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
        if saved.is_some_and(|v| v["report"]["checked"].as_u64().unwrap_or(0) > 0) {
            break;
        }
        assert!(start.elapsed().as_secs() < 60, "no batch was saved");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: sends SIGINT to the child we spawned (its pid is alive: not
    // yet waited for).
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(sent, 0);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
    let saved: Value = serde_json::from_slice(&std::fs::read(dir.join("st.json")).unwrap()).unwrap();
    let next = saved["report"]["next_point"].as_u64().expect("an unfinished campaign");
    assert!(next > 0, "some crash points were committed before the interrupt");
    let o = pmemlab(&dir, &["explore", "--resume", "st.json", "--checker", "sleep 0.1; true", "--json"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let done = json(&o);
    assert!(done["complete"].as_bool().unwrap());
    assert_eq!(done["campaign"]["checked"], full["campaign"]["checked"]);
    assert_eq!(done["campaign"]["per_point"], full["campaign"]["per_point"]);
    cleanup(&dir);
}
