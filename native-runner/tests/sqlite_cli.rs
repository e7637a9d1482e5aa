//! `pmemlab sqlite-campaign`: the two documented commands, end to end.

use std::process::Command;

fn campaign(args: &[&str]) -> (i32, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_pmemlab")).arg("sqlite-campaign").args(args).output().expect("run pmemlab");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn flushing_xsync_survives_every_crash_image() {
    let (code, out) = campaign(&["--transactions", "6", "--json"]);
    assert_eq!(code, 0, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["violations"], 0);
    assert!(report["states_checked"].as_u64().unwrap_or(0) > 500, "{report}");
}

#[test]
fn xsync_without_flush_is_caught() {
    let (code, out) = campaign(&["--transactions", "6", "--no-flush", "--max-states", "400"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("minimal"), "{out}");
}
