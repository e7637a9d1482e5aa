//! The program to record: found as the shell would, dynamically linked
//! (the interposer is loaded by the dynamic loader, so a static binary
//! cannot be traced), and the interposer library to load into it.

use super::RecordError;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The interposer's file name (what `cargo build` puts next to pmemlab).
pub const INTERPOSER_FILE: &str = "libpmemlab_interpose.so";

/// The executable `name` stands for: a path when it holds a `/`, else the
/// first match on `PATH`.
pub fn find_program(name: &str) -> Result<PathBuf, RecordError> {
    let executable = |p: &Path| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if name.contains('/') {
        let p = PathBuf::from(name);
        if !p.exists() {
            return Err(RecordError::NoProgram { name: name.into(), reason: "no such file".into() });
        }
        if !executable(&p) {
            return Err(RecordError::NoProgram { name: name.into(), reason: "not an executable file".into() });
        }
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| executable(p))
        .ok_or_else(|| RecordError::NoProgram { name: name.into(), reason: "not found on PATH".into() })
}

/// Refuses a statically linked ELF executable (no `PT_INTERP` program
/// header). Scripts (`#!`) are fine: their interpreter loads the library.
pub fn check_dynamic(path: &Path) -> Result<(), RecordError> {
    let mut head = vec![0u8; 64 * 1024];
    let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)).unwrap_or(0);
    head.truncate(n);
    if !head.starts_with(b"\x7fELF") {
        return Ok(());
    }
    match has_interp(&head) {
        Some(true) | None => Ok(()),
        Some(false) => Err(RecordError::Static { path: path.to_path_buf() }),
    }
}

/// Whether a 64-bit little-endian ELF image has a `PT_INTERP` header
/// (`None`: another kind of ELF, or headers past `head`).
fn has_interp(head: &[u8]) -> Option<bool> {
    if head.get(4) != Some(&2) || head.get(5) != Some(&1) {
        return None;
    }
    let u16_at = |o: usize| head.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u64_at = |o: usize| head.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize);
    let (phoff, phentsize, phnum) = (u64_at(0x20)?, u16_at(0x36)?, u16_at(0x38)?);
    let mut found = false;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let kind = head.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))?;
        found |= kind == 3; // PT_INTERP
    }
    Some(found)
}

/// The interposer: `given`, else next to the running pmemlab (or one
/// directory up, for test binaries in `target/*/deps`).
pub fn find_interposer(given: Option<&Path>) -> Result<PathBuf, RecordError> {
    if let Some(p) = given {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(RecordError::NoInterposer { looked: p.to_path_buf() })
        };
    }
    let exe = std::env::current_exe().map_err(|_| RecordError::NoInterposer { looked: INTERPOSER_FILE.into() })?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let candidates = [dir.join(INTERPOSER_FILE), dir.join("..").join(INTERPOSER_FILE)];
    candidates
        .iter()
        .find(|p| p.is_file())
        .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
        .ok_or_else(|| RecordError::NoInterposer { looked: candidates[0].clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_is_dynamic_and_found_on_path() {
        let sh = find_program("sh").unwrap();
        assert!(check_dynamic(&sh).is_ok());
        assert!(matches!(find_program("no-such-program-pmemlab"), Err(RecordError::NoProgram { .. })));
    }

    #[test]
    fn an_elf_without_interp_is_static() {
        // A minimal ELF64 header with one PT_LOAD program header.
        let mut h = vec![0u8; 0x40 + 0x38];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[0x20] = 0x40;
        h[0x36] = 0x38;
        h[0x38] = 1;
        h[0x40] = 1; // PT_LOAD
        assert_eq!(has_interp(&h), Some(false));
        h[0x40] = 3; // PT_INTERP
        assert_eq!(has_interp(&h), Some(true));
    }
}
