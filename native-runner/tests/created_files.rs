//! A command that fails removes the files it created, and only those: a
//! file that was there before it ran stays, with its content.

mod common;

use common::{assert_user_error, cleanup, disk_dir, pmemlab};
use std::path::{Path, PathBuf};

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn explore_example(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/explore").join(name);
    p.to_str().unwrap().to_string()
}

#[test]
fn a_run_that_fails_on_its_third_device_removes_the_file_it_created_for_the_second() {
    let dir = disk_dir("created-run");
    let mine: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("mine.img"), &mine).unwrap();
    std::fs::write(dir.join("small.img"), b"too small").unwrap();
    let scenario = r#"{"version": 1, "devices": [
        {"id": "keep", "mem-path": "mine.img", "size": "64K"},
        {"id": "new", "mem-path": "new.img", "size": "64K"},
        {"id": "bad", "mem-path": "small.img", "size": "64K"}],
        "steps": [{"op": "write", "device": "keep", "offset": 0, "text": "x"}]}"#;
    std::fs::write(dir.join("s.json"), scenario).unwrap();
    let before = entries(&dir);
    let o = pmemlab(&dir, &["run", "s.json", "--reuse", "--crash-images", "."], "");
    assert_user_error(&o, "the existing file is 9 bytes");
    assert_eq!(entries(&dir), before, "new.img, created before the failure, is gone");
    assert_eq!(std::fs::read(dir.join("mine.img")).unwrap(), mine, "a file the run did not create stays as it was");
    assert_eq!(std::fs::read(dir.join("small.img")).unwrap(), b"too small");

    // Negative control: without the failing device the run succeeds and
    // keeps what it created — the backing file and its crash images.
    let good = scenario.replace(
        r#",
        {"id": "bad", "mem-path": "small.img", "size": "64K"}"#,
        "",
    );
    std::fs::write(dir.join("s.json"), good).unwrap();
    let o = pmemlab(&dir, &["run", "s.json", "--reuse", "--crash-images", "."], "");
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    for f in ["new.img", "keep-end-durable.img", "new-end-sampled.img"] {
        assert!(dir.join(f).exists(), "{f} kept after success");
    }
    cleanup(&dir);
}

#[test]
fn an_explore_whose_checker_cannot_run_removes_its_new_state_file_but_not_a_resumed_one() {
    let dir = disk_dir("created-explore");
    let s = explore_example("commit-no-barrier.json");
    let checker = std::fs::read_to_string(explore_example("check-commit.sh")).unwrap();
    std::fs::write(dir.join("chk.sh"), &checker).unwrap();
    std::fs::write(dir.join("broken.sh"), "exit 127\n").unwrap();
    let before = entries(&dir);
    let o = pmemlab(
        &dir,
        &["explore", &s, "--checker", "sh ./broken.sh", "--state", "st.json", "--html", "r.html", "--no-progress"],
        "",
    );
    assert_user_error(&o, "could not be run");
    assert_eq!(entries(&dir), before, "the state file it had saved is removed");

    // A campaign stopped early leaves its state; resuming it with a checker
    // that broke meanwhile fails, and the state file (not created by that
    // run) stays.
    let o = pmemlab(&dir, &["explore", &s, "--checker", "sh ./chk.sh", "--max-states", "3", "--state", "st.json"], "");
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", common::stderr(&o));
    assert!(common::stdout(&o).contains("resume with --resume st.json"), "{}", common::stdout(&o));
    let saved = std::fs::read(dir.join("st.json")).unwrap();
    std::fs::write(dir.join("chk.sh"), "exit 127\n").unwrap();
    let o = pmemlab(&dir, &["explore", "--resume", "st.json", "--checker", "sh ./chk.sh", "--html", "r.html"], "");
    assert_user_error(&o, "could not be run");
    assert!(dir.join("st.json").exists(), "the resumed state file stays");
    assert!(!dir.join("r.html").exists());
    let after: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("st.json")).unwrap()).unwrap();
    let saved: serde_json::Value = serde_json::from_slice(&saved).unwrap();
    assert_eq!(after["target"], saved["target"], "still the same campaign");
    cleanup(&dir);
}

#[test]
fn qemu_removes_the_backing_file_it_created_when_a_later_object_fails() {
    let dir = disk_dir("created-qemu");
    std::fs::write(dir.join("small.img"), b"nine byte").unwrap();
    let before = entries(&dir);
    let o = pmemlab(
        &dir,
        &[
            "qemu",
            "-object",
            "memory-backend-file,id=m1,share=on,mem-path=new.img,size=64K",
            "-object",
            "memory-backend-file,id=m2,share=on,mem-path=small.img,size=64K",
        ],
        "",
    );
    assert_user_error(&o, "small.img");
    assert_eq!(entries(&dir), before);
    assert_eq!(std::fs::read(dir.join("small.img")).unwrap(), b"nine byte");
    cleanup(&dir);
}
