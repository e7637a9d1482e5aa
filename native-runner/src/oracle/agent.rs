//! The guest agent (`tools/guest-agent/agent.c`): built with `gcc -static`
//! and cached by the hash of its source, and the lines it prints on the
//! console (see the protocol in the source's header).

use super::error::OracleError;
use super::kernel::on_path;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The agent's source, compiled into pmemlab so that the oracle works from
/// any directory.
pub const SOURCE: &str = include_str!("../../../tools/guest-agent/agent.c");

/// The host-side slow-disk shim (`tools/guest-agent/slow-fsync.c`), preloaded
/// into QEMU for `--host-fsync-delay`.
pub const SLOW_FSYNC_SOURCE: &str = include_str!("../../../tools/guest-agent/slow-fsync.c");

/// The static agent binary in `cache`, built when it is not there yet.
pub fn build(cache: &Path) -> Result<PathBuf, OracleError> {
    build_c(cache, "guest-agent", SOURCE, &["-static", "-O2"], &[])
}

/// The slow-fsync shim (a shared object) in `cache`.
pub fn build_slow_fsync(cache: &Path) -> Result<PathBuf, OracleError> {
    build_c(cache, "slow-fsync", SLOW_FSYNC_SOURCE, &["-shared", "-fPIC", "-O2"], &["-ldl"])
}

/// Compiles `source` with gcc into `cache/NAME-HASH`, unless it is there.
fn build_c(cache: &Path, name: &str, source: &str, flags: &[&str], libs: &[&str]) -> Result<PathBuf, OracleError> {
    let gcc = on_path("gcc").ok_or_else(|| OracleError::Missing {
        what: "gcc".into(),
        detail: "gcc is not on PATH (it builds the guest agent)".into(),
        package: "gcc",
    })?;
    let hash = source.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    let bin = cache.join(format!("{name}-{hash:016x}"));
    if bin.is_file() {
        return Ok(bin);
    }
    std::fs::create_dir_all(cache).map_err(OracleError::io(format!("cannot create {}", cache.display())))?;
    let src = cache.join(format!("{name}-{hash:016x}.c"));
    std::fs::write(&src, source).map_err(OracleError::io(format!("cannot write {}", src.display())))?;
    let tmp = cache.join(format!("{name}-{hash:016x}.tmp{}", std::process::id()));
    let out = Command::new(gcc)
        .args(flags)
        .arg("-o")
        .arg(&tmp)
        .arg(&src)
        .args(libs)
        .output()
        .map_err(OracleError::io("cannot run gcc"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().find(|l| l.contains("error")).unwrap_or("gcc failed");
        let hint = if err.contains("cannot find -lc") { " (the static C library: libc6-dev)" } else { "" };
        return Err(OracleError::Guest(format!("building {name} failed{hint}: {}", first.trim())));
    }
    std::fs::rename(&tmp, &bin).map_err(OracleError::io(format!("cannot write {}", bin.display())))?;
    Ok(bin)
}

/// What a step of the agent reported.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepReport {
    /// The step's index.
    pub index: usize,
    /// Its return code (0 or -1; for flushers, the failed fsyncs).
    pub rc: i64,
    /// errno when it failed.
    pub errno: i32,
    /// Status register of each virtio-pmem device (virtio index order).
    pub status: Vec<u8>,
    /// Bytes read.
    pub data: Vec<u8>,
    /// Flushers: processes still stuck when the agent stopped waiting.
    pub hung: Option<i64>,
    /// Flushers: errno of one more fsync after them (0: it returned 0).
    pub after: Option<i32>,
}

/// One line of the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// The devices are there; the first step to run.
    Boot,
    /// A device: index, size, guest-physical start (as the guest sees it).
    Dev {
        /// pmem index.
        index: usize,
        /// Size in bytes.
        size: u64,
        /// Start address.
        resource: Option<u64>,
    },
    /// Waiting for the host before step N.
    Wait(usize),
    /// Step done.
    Step(StepReport),
    /// Every step done; powering off.
    End,
    /// Setup failed.
    Fatal(String),
}

fn field<'a>(words: &[&'a str], key: &str) -> Option<&'a str> {
    words.iter().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

fn hex_u64(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

/// Parses a console line; `None` for anything that is not the agent's.
pub fn parse(line: &str) -> Option<Line> {
    let rest = line.trim_end_matches(['\r', '\n']);
    let rest = &rest[rest.find("PMEMLAB ")? + "PMEMLAB ".len()..];
    let words: Vec<&str> = rest.split_whitespace().collect();
    match *words.first()? {
        "BOOT" => Some(Line::Boot),
        "END" => Some(Line::End),
        "FATAL" => Some(Line::Fatal(rest["FATAL".len()..].trim().to_string())),
        "WAIT" => words.get(1)?.parse().ok().map(Line::Wait),
        "DEV" => Some(Line::Dev {
            index: words.get(1)?.parse().ok()?,
            size: field(&words, "size")?.parse().ok()?,
            resource: field(&words, "resource").and_then(hex_u64),
        }),
        "STEP" => Some(Line::Step(StepReport {
            index: words.get(1)?.parse().ok()?,
            rc: field(&words, "rc")?.parse().ok()?,
            errno: field(&words, "errno")?.parse().ok()?,
            status: field(&words, "status")?.split(',').filter_map(hex_u64).map(|v| v as u8).collect(),
            data: decode_hex(field(&words, "data").unwrap_or(""))?,
            hung: field(&words, "hung").and_then(|v| v.parse().ok()),
            after: field(&words, "after").and_then(|v| v.parse().ok()),
        })),
        _ => None,
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// Bytes as the agent's hex.
pub fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_line_gives_its_fields() {
        let l = parse("PMEMLAB STEP 2 rc=0 errno=0 status=0x0000000f,0x0000004f data=68690a\r").unwrap();
        assert_eq!(
            l,
            Line::Step(StepReport {
                index: 2,
                rc: 0,
                errno: 0,
                status: vec![0xf, 0x4f],
                data: b"hi\n".to_vec(),
                ..Default::default()
            })
        );
        let load = parse("PMEMLAB STEP 9 rc=3 errno=5 status=0x0000004f hung=128 after=5 data=").unwrap();
        let Line::Step(r) = load else { panic!("{load:?}") };
        assert_eq!((r.rc, r.errno, r.hung, r.after, r.status), (3, 5, Some(128), Some(5), vec![0x4f]));
    }

    #[test]
    fn kernel_noise_and_broken_lines_are_not_agent_lines() {
        assert_eq!(parse("[    2.7] reboot: Power down"), None);
        assert_eq!(parse("PMEMLAB STEP x rc=0"), None);
        assert_eq!(parse("PMEMLAB STEP 1 rc=0 errno=0 status=none data=abc"), None);
        assert_eq!(parse("junk PMEMLAB WAIT 3"), Some(Line::Wait(3)));
        assert_eq!(
            parse("PMEMLAB DEV 0 size=67108864 resource=0x100000000"),
            Some(Line::Dev { index: 0, size: 64 << 20, resource: Some(0x1_0000_0000) })
        );
    }
}
