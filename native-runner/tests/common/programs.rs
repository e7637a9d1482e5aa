//! Helpers for the tests of real programs recorded with `pmemlab record`
//! (record.rs, clients.rs): the example programs, the interposer, gcc, the
//! tools a client needs, and the JSON a run prints.

use super::stdout;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

/// examples/programs in the source tree.
pub fn programs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/programs")
}

/// Builds the interposer next to the pmemlab binary under test (it is a
/// cdylib, which cargo does not build for a test of another package).
pub fn build_interposer() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_pmemlab"));
        let profile_dir = bin.parent().unwrap();
        let target_dir = profile_dir.parent().unwrap();
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo.args(["build", "-q", "-p", "pmemlab-interpose", "--target-dir"]).arg(target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cargo.arg("--release");
        }
        let st = cargo.status().expect("run cargo to build the interposer");
        assert!(st.success(), "cargo build -p pmemlab-interpose failed");
        assert!(profile_dir.join("libpmemlab_interpose.so").is_file());
    });
}

/// Compiles `src` (under examples/programs) into `dir/name` with gcc.
pub fn gcc(dir: &Path, src: &str, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let o = Command::new("gcc").args(["-O1", "-o"]).arg(&out).arg(programs().join(src)).args(extra).output();
    let o = o.expect("gcc is needed for these tests (apt-get install -y gcc)");
    assert!(o.status.success(), "gcc {src}: {}", String::from_utf8_lossy(&o.stderr));
    out
}

/// A path as text.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The JSON document on stdout (after the recorded program's own output,
/// which passes through).
pub fn json(o: &Output) -> Value {
    let out = stdout(o);
    let doc = out.find("\n{").map(|i| &out[i + 1..]).unwrap_or(&out);
    serde_json::from_str(doc).unwrap_or_else(|e| panic!("not JSON ({e}): {out}{}", super::stderr(o)))
}

/// Panics, naming the Debian package, unless `argv` runs and succeeds: a
/// client test never skips silently (scripts/ensure-clients.sh installs them).
pub fn require(argv: &[&str], package: &str) {
    let ok = Command::new(argv[0]).args(&argv[1..]).output().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`{}` failed: this test needs the Debian package {package} (scripts/ensure-clients.sh installs it: apt-get install -y {package})",
        argv.join(" ")
    );
}
