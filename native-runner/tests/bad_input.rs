//! Bad input to `run`, `soak` and the command line: one line naming the
//! problem, exit code 2, no panic, no file left behind, nothing replaced.

mod common;

use common::{assert_user_error, cleanup, disk_dir, pmemlab, stdout};
use std::path::Path;

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

const GOOD: &str = r#"{"version": 1, "devices": [{"id": "nv1", "size": "64K"}], "steps": [
    {"op": "write", "device": "nv1", "offset": 0, "text": "x"}]}"#;

#[test]
fn malformed_scenarios_options_and_files_are_one_line_and_exit_2() {
    let dir = disk_dir("bad-input");
    let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    w("good.json", GOOD);
    w("syntax.json", "{\"version\": 1,,}");
    w("version.json", r#"{"version": 2}"#);
    w("op.json", r#"{"version": 1, "devices": [{"id": "nv1", "size": "64K"}], "steps": [{"op": "wrte"}]}"#);
    w("size.json", r#"{"version": 1, "devices": [{"id": "nv1", "size": "4097"}]}"#);
    w(
        "twice.json",
        r#"{"version": 1, "devices": [{"id": "a", "mem-path": "same.img", "size": "64K"}, {"id": "b", "mem-path": "same.img", "size": "64K"}]}"#,
    );
    w("nodir.json", r#"{"version": 1, "devices": [{"id": "nv1", "mem-path": "no/such/dir/x.img", "size": "64K"}]}"#);
    w(
        "escape.json",
        r#"{"version": 1, "devices": [{"id": "nv1", "mem-path": "../../outside-pmemlab.img", "size": "64K"}]}"#,
    );
    w(
        "ro.json",
        r#"{"version": 1, "devices": [{"id": "nv1", "mem-path": "ro.img", "size": "64K", "readonly": true}]}"#,
    );
    w("binary.json", "\u{0}\u{1}");
    std::fs::write(dir.join("binary.json"), [0xffu8, 0xfe, 0x00]).unwrap();
    std::fs::create_dir(dir.join("adir.json")).unwrap();
    w("mine.img", "user data");
    w("wrongsize.json", r#"{"version": 1, "devices": [{"id": "nv1", "mem-path": "mine.img", "size": "64K"}]}"#);
    let before = entries(&dir);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["run", "missing.json"], "missing.json: cannot read the scenario: no such file"),
        (vec!["run", "adir.json"], "is a directory"),
        (vec!["run", "binary.json"], "not UTF-8"),
        (vec!["run", "syntax.json"], "JSON syntax error at line 1"),
        (vec!["run", "version.json"], "version 2 is not supported"),
        (vec!["run", "op.json"], "unknown op \"wrte\""),
        (vec!["run", "size.json"], "is not a multiple of 4096"),
        (vec!["run", "twice.json"], "would both use"),
        (vec!["run", "nodir.json"], "does not exist"),
        (vec!["run", "escape.json"], "creates backing files only under"),
        (vec!["run", "ro.json"], "read-only backend cannot create it"),
        (vec!["run", "wrongsize.json", "--reuse"], "the existing file is 9 bytes"),
        (vec!["run", "good.json", "--seed", "abc"], "invalid value 'abc' for '--seed <N>'"),
        (vec!["run", "good.json", "--backend", "disk"], "invalid value 'disk' for '--backend"),
        (vec!["run", "good.json", "--frobnicate"], "unexpected argument '--frobnicate'"),
        (vec!["run", "good.json", "--reuse", "--fresh"], "cannot be used with"),
        (vec!["run", "good.json", "--dir", "nowhere"], "--dir nowhere: no such directory"),
        (vec!["run", "good.json", "--crash-images", "nowhere"], "--crash-images nowhere: no such directory"),
        (vec!["run", "good.json", "--backend", "model", "--crash-images", "."], "--crash-images needs real files"),
        (vec!["run"], "required"),
        (vec!["frobnicate"], "unrecognized subcommand"),
        (vec!["soak", "mine.img"], "the file exists"),
        (vec!["soak", "s.img", "--pages", "0"], "--pages 0"),
        (vec!["soak", "s.img", "--size", "12345"], "multiple of 4096"),
        (vec!["soak", "s.img", "--size", "lots"], "lots"),
        (vec!["soak", "s.img", "--crash-image", "c.img"], "needs --writes"),
    ];
    for (args, want) in cases {
        let o = pmemlab(&dir, &args, "");
        assert_user_error(&o, want);
        assert!(stdout(&o).is_empty(), "{args:?} printed: {}", stdout(&o));
        assert_eq!(entries(&dir), before, "{args:?} left files behind");
    }
    assert_eq!(std::fs::read(dir.join("mine.img")).unwrap(), b"user data", "never replaced");
    // The good scenario runs (and leaves its backing file).
    let o = pmemlab(&dir, &["run", "good.json"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(dir.join("nv1.img").exists());
    // Help is not an error.
    let o = pmemlab(&dir, &["run", "--help"], "");
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("--crash-images"));
    cleanup(&dir);
}
