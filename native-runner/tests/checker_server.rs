//! `pmemlab explore --checker-server`: the persistent checker protocol
//! (docs/checker-protocol.md) against the per-image command, and servers
//! that die, hang, answer garbage or cannot start.

mod common;

use common::{assert_user_error, cleanup, disk_dir, pmemlab, stderr, stdout};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn scenario() -> String {
    examples().join("explore/commit-no-barrier.json").display().to_string()
}

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(o), stderr(o)))
}

/// A campaign of the commit scenario with checker option `how` (`--checker`
/// or `--checker-server`) and command `cmd`, plus `extra` options.
fn campaign(dir: &Path, how: &str, cmd: &str, extra: &[&str]) -> std::process::Output {
    let s = scenario();
    let mut args = vec!["explore", s.as_str(), how, cmd, "--json"];
    args.extend_from_slice(extra);
    pmemlab(dir, &args, "")
}

/// What two checkers must agree on: the images checked and every
/// violation's crash point, position, pages and image, and the minimal
/// counterexample.
fn verdicts(r: &Value) -> Value {
    let c = &r["campaign"];
    let strip = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().unwrap().remove("message");
        v
    };
    serde_json::json!({
        "checked": c["checked"], "duplicates": c["duplicates"], "per_point": c["per_point"],
        "violations_total": c["violations_total"],
        "violations": c["violations"].as_array().unwrap().iter().map(strip).collect::<Vec<_>>(),
        "minimal": strip(&c["counterexample"]["minimal"]),
    })
}

/// The violation messages, with the per-image command's `checker exit
/// status 1: ` taken off.
fn messages(r: &Value) -> Vec<String> {
    r["campaign"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["message"].as_str().unwrap().trim_start_matches("checker exit status 1: ").to_string())
        .collect()
}

/// Processes whose command line holds `marker` (none may outlive pmemlab).
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else { continue };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(marker) {
            found.push(format!("{}: {text}", e.file_name().to_string_lossy()));
        }
    }
    found
}

/// Writes a shell checker server to `dir/name` that answers like the
/// shell example but misbehaves on every third image it is sent: `act` is
/// the shell command run then.
fn misbehaving_server(dir: &Path, name: &str, act: &str) -> String {
    let good = examples().join("checkers/check-commit-server.sh");
    let script = format!(
        "#!/bin/sh\n# {name}\nn=0\nwhile IFS= read -r request; do\n  n=$((n + 1))\n  if [ $((n % 3)) -eq 0 ]; then {act}; continue; fi\n  printf '%s\\n' \"$request\" | {good} || exit 9\ndone\n",
        good = good.display()
    );
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[test]
fn python_and_shell_servers_agree_with_the_checker_spawned_per_image() {
    let dir = disk_dir("server-agree");
    let py = examples().join("checkers/check_commit.py").display().to_string();
    let sh_server = examples().join("checkers/check-commit-server.sh").display().to_string();
    let sh_image = examples().join("explore/check-commit.sh").display().to_string();
    let per_image = campaign(&dir, "--checker", &format!("python3 {py}"), &["-j", "2"]);
    assert_eq!(per_image.status.code(), Some(1), "the scenario has violations: {}", stderr(&per_image));
    let want = json(&per_image);
    assert!(want["campaign"]["violations_total"].as_u64().unwrap() >= 3);
    for (how, cmd) in [
        ("--checker-server", format!("python3 {py} --server")),
        ("--checker-server", sh_server.clone()),
        ("--checker", sh_image),
    ] {
        for jobs in ["1", "2"] {
            let o = campaign(&dir, how, &cmd, &["-j", jobs]);
            assert_eq!(o.status.code(), Some(1), "{how} {cmd}: {}", stderr(&o));
            let got = json(&o);
            assert_eq!(verdicts(&got), verdicts(&want), "{how} {cmd} -j {jobs}");
            assert_eq!(messages(&got), messages(&want), "{how} {cmd} -j {jobs}");
        }
    }
    // The report names the server, and the correct scenario passes.
    let o = campaign(&dir, "--checker-server", &sh_server, &[]);
    assert!(json(&o)["target"]["checker_server"].as_str().unwrap().ends_with("check-commit-server.sh"));
    let ok = pmemlab(
        &dir,
        &[
            "explore",
            examples().join("explore/commit-with-barrier.json").to_str().unwrap(),
            "--checker-server",
            &format!("python3 {py} --server"),
        ],
        "",
    );
    assert_eq!(ok.status.code(), Some(0), "{}{}", stdout(&ok), stderr(&ok));
    cleanup(&dir);
}

/// A server misbehaving on every third image: every image is still
/// reported, the campaign completes, the broken ones are violations that
/// say what happened, and no server is left running.
fn every_image_is_reported(name: &str, act: &str, extra: &[&str], says: &str) {
    let dir = disk_dir(name);
    let server = misbehaving_server(&dir, name, act);
    let reference =
        json(&campaign(&dir, "--checker", &examples().join("explore/check-commit.sh").display().to_string(), &[]));
    let mut opts = vec!["-j", "1", "--no-shrink"];
    opts.extend_from_slice(extra);
    let o = campaign(&dir, "--checker-server", &server, &opts);
    assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
    let r = json(&o);
    let (c, want) = (&r["campaign"], &reference["campaign"]);
    assert_eq!(r["complete"], true, "{name}");
    assert_eq!(c["checked"], want["checked"], "{name}: every image is checked");
    let checked = c["checked"].as_u64().unwrap();
    let broken = messages(&r).iter().filter(|m| m.contains(says)).count() as u64;
    // One server answers two images and fails the third: with one job, every
    // third image of the campaign.
    assert_eq!(broken, checked / 3, "{name}: {:?}", messages(&r));
    assert!(c["violations_total"].as_u64().unwrap() >= broken);
    assert!(processes_with(&server).is_empty(), "{name}: left running: {:?}", processes_with(&server));
    cleanup(&dir);
}

#[test]
fn a_server_that_dies_every_third_image_is_restarted() {
    every_image_is_reported("server-dies", "exit 3", &[], "it exited with status 3");
}

#[test]
fn a_server_that_hangs_is_killed_at_the_timeout() {
    every_image_is_reported("server-hangs", "sleep 611", &["--timeout", "2"], "no answer within 2s");
    assert!(processes_with("sleep 611").is_empty(), "the hung server's child is killed with it");
}

#[test]
fn a_server_that_answers_garbage_is_restarted() {
    every_image_is_reported("server-garbage", "echo 'maybe?'", &[], "answered `maybe?`");
}

#[test]
fn a_server_that_cannot_start_or_always_dies_stops_the_campaign() {
    let dir = disk_dir("server-fatal");
    let o = campaign(&dir, "--checker-server", "/nonexistent/checker --server", &[]);
    assert_user_error(&o, "could not be run");
    assert!(o.stdout.is_empty());
    let o = campaign(&dir, "--checker-server", "read line; exit 4", &["-j", "2"]);
    assert_user_error(&o, "failed 5 images in a row");
    let o = campaign(&dir, "--checker-server", "  ", &[]);
    assert_user_error(&o, "--checker-server: the command is empty");
    let o = campaign(&dir, "--checker-server", "true", &["--checker", "true"]);
    assert_eq!(o.status.code(), Some(2));
    cleanup(&dir);
}

#[test]
fn sigterm_ctrl_c_and_sigkill_leave_no_server_running() {
    let cases = [
        (libc::SIGTERM, "server-sigterm", "sleep 612"),
        (libc::SIGINT, "server-sigint", "sleep 613"),
        (libc::SIGKILL, "server-sigkill", "sleep 614"),
    ];
    for (sig, name, sleep) in cases {
        let dir = disk_dir(name);
        // Answers two images, then hangs (no --timeout).
        let server = misbehaving_server(&dir, name, sleep);
        let mut child = Command::new(env!("CARGO_BIN_EXE_pmemlab"))
            .args(["explore", &scenario(), "--checker-server", &server, "-j", "2", "--state", "s.json"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while processes_with(sleep).is_empty() {
            assert!(start.elapsed() < Duration::from_secs(20), "{name}: the server never hung");
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: kill(2) on the pid of our own child, not yet reaped.
        unsafe {
            libc::kill(child.id() as libc::pid_t, sig);
        }
        let status = child.wait().unwrap();
        if sig == libc::SIGKILL {
            // The kernel tells each server's shell, which kills its group;
            // the group's members die in no fixed order, so wait for all.
            let start = Instant::now();
            let running = || !processes_with(sleep).is_empty() || !processes_with(&server).is_empty();
            while running() && start.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(20));
            }
        } else {
            assert_eq!(status.code(), Some(130), "{name}: stops as an interrupted campaign");
            assert!(dir.join("s.json").exists(), "{name}: the state is saved");
        }
        for marker in [server.as_str(), sleep] {
            assert!(processes_with(marker).is_empty(), "{name}: left running: {:?}", processes_with(marker));
        }
        cleanup(&dir);
    }
}
