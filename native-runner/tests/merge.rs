//! `pmemlab merge`: shards of a campaign run through GNU parallel (directly,
//! and by the recipe in examples/scale-out/) and merged equal one run of it, byte for byte in the JSON's results (every
//! field but `RUN_FIELDS`); shards of two campaigns, a missing shard, a
//! shard twice or of another count are refused.

mod common;

use common::{assert_user_error, cleanup, disk_dir, pmemlab, stderr, stdout};
use pmemlab::explore::RUN_FIELDS;
use std::path::{Path, PathBuf};
use std::process::Command;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// The JSON text of a report without the lines of the fields that say how
/// it was run (each is one line in pretty JSON; none is the last field).
fn results(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let run_line = |l: &str| RUN_FIELDS.iter().any(|f| l.starts_with(&format!("  \"{f}\":")));
    let kept: Vec<&str> = text.lines().filter(|l| !run_line(l)).collect();
    assert!(text.lines().count() - kept.len() >= 3, "the run fields are there to take out");
    kept.join("\n")
}

/// Runs `explore ARGS --shard {}/4 --json > PREFIX{}.json` for the 4 shards
/// through GNU parallel (installed by scripts/ensure-toolchain.sh).
fn shards_through_parallel(dir: &Path, args: &[&str], prefix: &str) -> Vec<String> {
    let version = Command::new("parallel").arg("--version").output();
    let gnu = version.as_ref().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("GNU parallel"));
    assert!(gnu, "GNU parallel is needed: run scripts/ensure-toolchain.sh (it installs the Debian package)");
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let job = format!(
        "{} explore {} --shard {{}}/4 --json -j 1 > {prefix}{{}}.json; test $? -le 1",
        env!("CARGO_BIN_EXE_pmemlab"),
        quoted.join(" ")
    );
    let o = Command::new("parallel")
        .args(["--will-cite", "--halt", "now,fail=1", "-j", "4", &job, ":::", "0", "1", "2", "3"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "parallel: {}{}", stdout(&o), stderr(&o));
    (0..4).map(|i| format!("{prefix}{i}.json")).collect()
}

fn single_run(dir: &Path, args: &[&str], out: &str) {
    let mut a = vec!["explore"];
    a.extend_from_slice(args);
    a.push("--json");
    let o = pmemlab(dir, &a, "");
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    std::fs::write(dir.join(out), &o.stdout).unwrap();
}

#[test]
fn four_shards_through_gnu_parallel_merge_into_the_single_run() {
    let dir = disk_dir("merge-parallel");
    let server = examples().join("checkers/check-commit-server.sh").display().to_string();
    let scenario = examples().join("explore/commit-no-barrier.json").display().to_string();
    // A workload with sampled points and more violations than a report keeps
    // (100), and a scenario judged by a checker server.
    let campaigns: [(&str, Vec<&str>); 2] = [
        ("inplace", vec!["--workload", "in-place", "--exhaustive-limit", "2", "--samples", "40"]),
        ("commit", vec![scenario.as_str(), "--checker-server", server.as_str()]),
    ];
    for (name, args) in &campaigns {
        single_run(&dir, args, &format!("{name}-single.json"));
        let shards = shards_through_parallel(&dir, args, &format!("{name}-shard"));
        let merged = format!("{name}-merged.json");
        let mut a = vec!["merge", "-o", merged.as_str(), "--html", "m.html", "--force"];
        a.extend(shards.iter().rev().map(String::as_str));
        let o = pmemlab(&dir, &a, "");
        assert_eq!(o.status.code(), Some(1), "{name}: the campaign has violations: {}", stderr(&o));
        assert!(stdout(&o).contains("merged from 4 shard report(s)"), "{}", stdout(&o));
        let single = results(&dir.join(format!("{name}-single.json")));
        assert_eq!(results(&dir.join(&merged)), single, "{name}: merged shards = one run");
        let v: serde_json::Value = serde_json::from_str(&single).unwrap();
        assert!(v["campaign"]["violations_total"].as_u64().unwrap() > 0, "{name}");
        assert!(v["campaign"]["counterexample"].is_object(), "{name}");
        // The shards did split the work.
        let shard0: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(&shards[0])).unwrap()).unwrap();
        assert!(shard0["campaign"]["checked"].as_u64() < v["campaign"]["checked"].as_u64(), "{name}");
        // --json prints the same document the -o file holds.
        let o = pmemlab(&dir, &["merge", "--json", &shards[0], &shards[1], &shards[2], &shards[3]], "");
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            std::fs::read_to_string(dir.join(&merged)).unwrap().trim()
        );
    }
    // The GNU parallel recipe of examples/scale-out/ does the same.
    let recipe = examples().join("scale-out/parallel.sh");
    let o = Command::new(&recipe)
        .args(["4", "recipe", "--"])
        .args(&campaigns[1].1)
        .env("PMEMLAB", env!("CARGO_BIN_EXE_pmemlab"))
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "the recipe: {}", stderr(&o));
    assert_eq!(results(&dir.join("recipe/report.json")), results(&dir.join("commit-single.json")));
    assert!(dir.join("recipe/report.html").exists());
    let in_place = ["inplace-shard0.json", "inplace-shard1.json", "inplace-shard2.json", "inplace-shard3.json"];
    let refuse = |args: &[&str], want: &str| {
        let mut a = vec!["merge"];
        a.extend_from_slice(args);
        assert_user_error(&pmemlab(&dir, &a, ""), want);
    };
    // Negative controls: shards of two campaigns, a missing shard, one shard
    // twice, another shard count, a file that is no report.
    refuse(&[in_place[0], in_place[1], in_place[2], "commit-shard3.json"], "are shards of different campaigns: their");
    refuse(&[in_place[0], in_place[1], in_place[3]], "shard(s) 2/4 of the campaign are missing");
    refuse(&[in_place[0], in_place[1], in_place[2], in_place[2], in_place[3]], "are the same shard");
    refuse(&[in_place[0], in_place[1], in_place[2], in_place[3], "inplace-single.json"], "shard count mismatch");
    refuse(&["m.html"], "not a report of `pmemlab explore --json`");
    refuse(&["nope.json"], "nope.json: no such report");
    // Same target, another knob: named.
    single_run(
        &dir,
        &["--workload", "in-place", "--exhaustive-limit", "2", "--samples", "41", "--shard", "3/4"],
        "k.json",
    );
    refuse(&[in_place[0], in_place[1], in_place[2], "k.json"], "config.samples_per_point (40 against 41)");
    cleanup(&dir);
}
