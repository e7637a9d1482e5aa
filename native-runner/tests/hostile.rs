//! Hostile and careless input, through the binary: for each class, the
//! input, one line on stderr, exit code 2, and the child's peak memory
//! (its `ru_maxrss` from `wait4`) below the budget it ran with.

mod common;

use common::{cleanup, disk_dir, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a child did: exit code, output, and its peak resident set.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    peak_rss: u64,
}

/// Runs `pmemlab ARGS` in `dir` and measures its peak RSS (bytes).
///
/// Through GNU time (`/usr/bin/time -f %M -o FILE`), which reads the
/// child's `ru_maxrss` from `wait4`: a child forked straight from this test
/// process would carry the test process's own high-water mark across its
/// `execve` (Linux keeps `maxrss` over exec), so time's small process is
/// the parent.
fn measured(dir: &Path, args: &[&str]) -> Ran {
    use std::os::unix::process::CommandExt;
    let rss_file = dir.join(".peak-rss");
    let mut cmd = Command::new("/usr/bin/time");
    // SAFETY: the closure runs in the forked child before exec and only
    // calls setrlimit(2), which is async-signal-safe, on a local struct.
    unsafe {
        cmd.pre_exec(|| {
            // A guard for the machine: whatever goes wrong, the child cannot
            // take more than 4 GiB of address space (it then fails instead).
            let cap = libc::rlimit { rlim_cur: 4 << 30, rlim_max: 4 << 30 };
            if libc::setrlimit(libc::RLIMIT_AS, &cap) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .arg(env!("CARGO_BIN_EXE_pmemlab"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run pmemlab under /usr/bin/time");
    let report = std::fs::read_to_string(&rss_file).unwrap_or_default();
    // The last line is %M; a line before it says when the child failed.
    let kib: u64 = report.lines().last().and_then(|l| l.trim().parse().ok()).expect("time's %M");
    Ran {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        peak_rss: kib * 1024,
    }
}

/// One clean line, exit code 2, memory below `budget`.
fn assert_refused(r: &Ran, want: &str, budget: u64) {
    assert_eq!(r.code, Some(2), "exit code; stderr: {}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "one line expected, got: {}", r.stderr);
    assert!(r.stderr.starts_with("pmemlab: "), "{}", r.stderr);
    assert!(r.stderr.contains(want), "expected {want:?} in: {}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(r.peak_rss < budget, "peak RSS {} MiB is above the budget {} MiB", r.peak_rss >> 20, budget >> 20);
}

fn scenario_with_steps(steps: &[String], size: &str) -> String {
    format!(
        r#"{{"version": 1, "devices": [{{"id": "nv1", "mem-path": "nv1.img", "size": "{size}"}}], "steps": [{}]}}"#,
        steps.join(",\n")
    )
}

fn write_step(len: &str) -> String {
    format!(r#"{{"op": "write", "device": "nv1", "offset": 0, "text": "x", "len": "{len}"}}"#)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const MIB: u64 = 1 << 20;

#[test]
fn a_small_scenario_asking_for_a_thousand_64_mib_writes_is_refused_before_it_runs() {
    let dir = disk_dir("hostile-writes");
    let text = scenario_with_steps(&vec![write_step("64M"); 1000], "64M");
    assert!(text.len() < 80_000, "{}", text.len());
    write(&dir, "big.json", &text);
    let r = measured(&dir, &["run", "big.json", "--backend", "model"]);
    assert_refused(&r, "the scenario writes 62.5 GiB in 1000 steps", 64 * MIB);
    assert!(r.stderr.contains("above the memory limit of 1 GiB"), "{}", r.stderr);
    // With a smaller limit, a smaller scenario is refused too; one that fits runs.
    let two = scenario_with_steps(&vec![write_step("8M"); 2], "64M");
    write(&dir, "two.json", &two);
    let r = measured(&dir, &["run", "two.json", "--backend", "model", "--memory-limit", "16M"]);
    assert_refused(&r, "above the memory limit of 16 MiB", 64 * MIB);
    let r = measured(&dir, &["run", "two.json", "--backend", "model", "--memory-limit", "64M"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(!dir.join("nv1.img").exists(), "the model backend touches no file");
    cleanup(&dir);
}

#[test]
fn a_memory_limit_below_the_minimum_or_not_a_size_is_a_usage_error() {
    let dir = disk_dir("hostile-limit");
    write(&dir, "s.json", &scenario_with_steps(&[], "1M"));
    for (limit, want) in [("1M", "below the smallest accepted, 16 MiB"), ("much", "--memory-limit")] {
        let r = measured(&dir, &["run", "s.json", "--memory-limit", limit]);
        assert_refused(&r, want, 64 * MIB);
    }
    cleanup(&dir);
}

#[test]
fn a_scenario_file_above_the_input_limit_is_refused_unread() {
    let dir = disk_dir("hostile-bigfile");
    let f = std::fs::File::create(dir.join("huge.json")).unwrap();
    f.set_len(65 * MIB).unwrap();
    let r = measured(&dir, &["run", "huge.json", "--backend", "model"]);
    assert_refused(&r, "the scenario file is 65 MiB, above the 64 MiB accepted for input", 32 * MIB);
    cleanup(&dir);
}

#[test]
fn duplicate_keys_in_a_scenario_are_refused_with_the_key_named() {
    let dir = disk_dir("hostile-dupkeys");
    write(
        &dir,
        "d.json",
        r#"{"version": 1, "seed": 1, "seed": 2, "devices": [{"id": "nv1", "mem-path": "a.img", "size": "1M"}]}"#,
    );
    let r = measured(&dir, &["run", "d.json", "--backend", "model"]);
    assert_refused(&r, "duplicate key \"seed\" at line 1", 64 * MIB);
    cleanup(&dir);
}

#[test]
fn control_characters_in_a_note_are_escaped_not_sent_to_the_terminal() {
    let dir = disk_dir("hostile-note");
    let step = r#"{"op": "write", "device": "nv1", "offset": 0, "text": "a", "note": "\u001b[2J\rstep 9 ok\nfake"}"#;
    write(&dir, "n.json", &scenario_with_steps(&[step.to_string()], "1M"));
    let r = measured(&dir, &["run", "n.json", "--backend", "model"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(!r.stdout.contains('\u{1b}') && !r.stdout.contains('\r'), "{:?}", r.stdout);
    assert!(r.stdout.contains(r"note: \x1b[2J\rstep 9 ok\nfake"), "{}", r.stdout);
    // Negative control: the JSON report keeps the note as it is (escaped by JSON).
    let r = measured(&dir, &["run", "n.json", "--backend", "model", "--json"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    cleanup(&dir);
}

/// A scenario of `pages` one-page writes with no flush: its last crash
/// point has 2^pages images.
fn explore_scenario(dir: &Path, pages: u64) -> PathBuf {
    let steps: Vec<String> = (0..pages)
        .map(|i| format!(r#"{{"op": "write", "device": "nv1", "offset": {}, "text": "page {i}"}}"#, i * 4096))
        .collect();
    write(dir, "e.json", &scenario_with_steps(&steps, "1M"))
}

#[test]
fn explore_with_absurd_sample_counts_is_refused_before_any_image_is_built() {
    let dir = disk_dir("hostile-samples");
    explore_scenario(&dir, 30);
    let max = u64::MAX.to_string();
    for args in [
        vec!["explore", "e.json", "--checker", "true", "--torn-samples", &max, "--tear", "512B"],
        vec!["explore", "e.json", "--checker", "true", "--samples", &max, "--exhaustive-limit", "1"],
        vec!["explore", "e.json", "--checker", "true", "--exhaustive-limit", &max],
    ] {
        let r = measured(&dir, &args);
        assert_refused(&r, "would hold", 64 * MIB);
        assert!(r.stderr.contains("lower --samples, --torn-samples or --exhaustive-limit"), "{}", r.stderr);
    }
    // Negative control: ordinary counts run.
    let ok = ["--samples", "8", "--torn-samples", "4", "--exhaustive-limit", "4", "--tear", "512B"];
    let r = measured(&dir, &[&["explore", "e.json", "--checker", "true"][..], &ok[..]].concat());
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    cleanup(&dir);
}

/// Saves a stopped campaign to `st.json` in `dir`; returns it as JSON.
fn saved_campaign(dir: &Path) -> serde_json::Value {
    explore_scenario(dir, 6);
    let r = measured(dir, &["explore", "e.json", "--checker", "true", "--max-states", "3", "--state", "st.json"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    serde_json::from_slice(&std::fs::read(dir.join("st.json")).unwrap()).unwrap()
}

#[test]
fn a_checker_command_written_into_a_state_file_is_never_run() {
    let dir = disk_dir("hostile-state-cmd");
    let mut state = saved_campaign(&dir);
    state["target"]["checker"] = serde_json::json!("touch PWNED; true");
    std::fs::write(dir.join("st.json"), serde_json::to_vec(&state).unwrap()).unwrap();
    // Without --checker: refused, and the saved command is shown, not run.
    let r = measured(&dir, &["explore", "--resume", "st.json"]);
    assert_refused(&r, "resuming needs --checker CMD or --checker-server CMD again", 64 * MIB);
    assert!(r.stderr.contains("touch PWNED"), "{}", r.stderr);
    // With another --checker: refused as a different campaign.
    let r = measured(&dir, &["explore", "--resume", "st.json", "--checker", "true"]);
    assert_refused(&r, "differs from the resumed campaign", 64 * MIB);
    assert!(!dir.join("PWNED").exists(), "the state file's command ran");
    // Negative control: the same command given on the command line runs.
    let r = measured(&dir, &["explore", "--resume", "st.json", "--checker", "touch PWNED; true"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(dir.join("PWNED").exists(), "a command from the command line runs");
    cleanup(&dir);
}

#[test]
fn edited_progress_in_a_state_file_is_refused() {
    let dir = disk_dir("hostile-state-edit");
    let good = saved_campaign(&dir);
    let edits: Vec<(&str, serde_json::Value)> = vec![
        ("/report/next_point", serde_json::json!(1000)),
        ("/report/points_total", serde_json::json!(0)),
        ("/report/checked", serde_json::json!(u64::MAX - 1)),
        ("/config/shard", serde_json::json!([5, 3])),
        ("/config/shard", serde_json::json!([0, 0])),
    ];
    for (field, value) in edits {
        let mut s = good.clone();
        *s.pointer_mut(field).unwrap() = value;
        std::fs::write(dir.join("st.json"), serde_json::to_vec(&s).unwrap()).unwrap();
        let r = measured(&dir, &["explore", "--resume", "st.json", "--checker", "true"]);
        assert_eq!(r.code, Some(2), "{field}: {} {}", r.stdout, r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{field}: {}", r.stderr);
        assert!(!r.stdout.contains("complete"), "{field}: {}", r.stdout);
    }
    // A key given twice is refused, naming it.
    let text = serde_json::to_string(&good).unwrap().replacen("{", "{\"version\": 1, ", 1);
    std::fs::write(dir.join("st.json"), text).unwrap();
    let r = measured(&dir, &["explore", "--resume", "st.json", "--checker", "true"]);
    assert_refused(&r, "duplicate key \"version\"", 64 * MIB);
    // Negative control: the unedited file resumes.
    std::fs::write(dir.join("st.json"), serde_json::to_vec(&good).unwrap()).unwrap();
    let r = measured(&dir, &["explore", "--resume", "st.json", "--checker", "true"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    cleanup(&dir);
}

#[test]
fn the_summary_of_a_stopped_campaign_says_to_give_the_checker_again() {
    let dir = disk_dir("hostile-resume-hint");
    explore_scenario(&dir, 6);
    let o = common::pmemlab(
        &dir,
        &["explore", "e.json", "--checker", "true", "--max-states", "2", "--state", "st.json"],
        "",
    );
    assert!(stdout(&o).contains("resume with --resume st.json --checker 'true'"), "{}{}", stdout(&o), stderr(&o));
    cleanup(&dir);
}

const QEMU_DEV: &str = "virtio-pmem-pci,memdev=m1,id=nv1";

fn qemu_object(id: &str, path: &str) -> String {
    format!("memory-backend-file,id={id},share=on,mem-path={path},size=64K")
}

#[test]
fn qemu_uses_an_existing_file_as_qemu_does_and_says_so() {
    let dir = disk_dir("hostile-qemu-existing");
    std::fs::write(dir.join("old.img"), vec![7u8; 64 << 10]).unwrap();
    let o = common::pmemlab(
        &dir,
        &["qemu", "-m", "512M,slots=2,maxmem=2G", "-object", &qemu_object("m1", "old.img"), "-device", QEMU_DEV],
        "quit\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("m1: old.img exists (64 KiB); as QEMU does, its content is the device's"),
        "{}",
        stderr(&o)
    );
    // Negative control: a new file gets no such note.
    let o = common::pmemlab(
        &dir,
        &["qemu", "-m", "512M,slots=2,maxmem=2G", "-object", &qemu_object("m1", "new.img"), "-device", QEMU_DEV],
        "quit\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("exists"), "{}", stderr(&o));
    cleanup(&dir);
}

#[test]
fn qemu_resolves_and_reports_symbolic_links_and_refuses_a_dangling_one() {
    let dir = disk_dir("hostile-qemu-link");
    std::fs::write(dir.join("real.img"), vec![0u8; 64 << 10]).unwrap();
    std::os::unix::fs::symlink(dir.join("real.img"), dir.join("link.img")).unwrap();
    let o = common::pmemlab(
        &dir,
        &["qemu", "-m", "512M,slots=2,maxmem=2G", "-object", &qemu_object("m1", "link.img"), "-device", QEMU_DEV],
        "quit\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("mem-path link.img is a symbolic link; using its target"), "{}", stderr(&o));
    std::os::unix::fs::symlink(dir.join("nowhere.img"), dir.join("dangling.img")).unwrap();
    let o = common::pmemlab(
        &dir,
        &["qemu", "-m", "512M,slots=2,maxmem=2G", "-object", &qemu_object("m1", "dangling.img"), "-device", QEMU_DEV],
        "quit\n",
    );
    common::assert_user_error(&o, "does not create a file through a link");
    assert!(!dir.join("nowhere.img").exists(), "nothing created through the link");
    cleanup(&dir);
}

#[test]
fn qemu_refuses_two_backends_on_one_file_whatever_the_paths_say() {
    let dir = disk_dir("hostile-qemu-shared");
    std::fs::write(dir.join("a.img"), vec![0u8; 64 << 10]).unwrap();
    std::fs::hard_link(dir.join("a.img"), dir.join("b.img")).unwrap();
    let args = ["qemu", "-object", &qemu_object("m1", "a.img"), "-object", &qemu_object("m2", "./b.img")];
    let o = common::pmemlab(&dir, &args, "quit\n");
    common::assert_user_error(&o, "is already the file of object 'm1'");
    // Through the monitor too.
    let o = common::pmemlab(
        &dir,
        &["qemu", "-m", "512M,slots=2,maxmem=2G", "-object", &qemu_object("m1", "a.img")],
        &format!("object_add {}\nquit\n", qemu_object("m2", "a.img")),
    );
    assert!(stdout(&o).contains("is already the file of object 'm1'"), "{}{}", stdout(&o), stderr(&o));
    cleanup(&dir);
}

/// Starts a campaign whose checker is slow, with its temporary image
/// directory under `tmp`, and sends `signal` once the directory exists.
fn signalled_campaign(dir: &Path, tmp: &Path, signal: libc::c_int) -> std::process::Output {
    explore_scenario(dir, 6);
    let child = Command::new(env!("CARGO_BIN_EXE_pmemlab"))
        .args(["explore", "e.json", "--checker", "sleep 0.2; true", "--jobs", "1", "--state", "st.json"])
        .current_dir(dir)
        .env("TMPDIR", tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while std::fs::read_dir(tmp).unwrap().next().is_none() {
        assert!(start.elapsed().as_secs() < 60, "no temporary directory appeared");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: signals the child we spawned and have not waited for yet.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
    child.wait_with_output().unwrap()
}

#[test]
fn sigterm_and_sighup_stop_a_campaign_like_ctrl_c_and_leave_no_temporary_directory() {
    for (name, signal) in [("term", libc::SIGTERM), ("hup", libc::SIGHUP)] {
        let dir = disk_dir(&format!("hostile-sig{name}"));
        let tmp = dir.join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let o = signalled_campaign(&dir, &tmp, signal);
        assert_eq!(o.status.code(), Some(130), "{name}: {}{}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains("interrupted"), "{name}: {}", stderr(&o));
        let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
        assert!(left.is_empty(), "{name}: left behind: {left:?}");
        assert!(dir.join("st.json").exists(), "{name}: the state is saved");
        cleanup(&dir);
    }
    // Negative control: SIGKILL cannot be handled, and its directory stays.
    let dir = disk_dir("hostile-sigkill");
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let o = signalled_campaign(&dir, &tmp, libc::SIGKILL);
    assert_eq!(o.status.code(), None, "killed by the signal");
    assert!(std::fs::read_dir(&tmp).unwrap().next().is_some(), "SIGKILL leaves the directory (the check can fail)");
    cleanup(&dir);
}
