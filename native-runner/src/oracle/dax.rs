//! The DAX scratch device that `mmap` steps are probed on.
//!
//! `mmap` and MAP_SYNC need a DAX file system; a file system on a scenario's
//! device would change the bytes the oracle compares. So when a scenario maps
//! a device, the oracle adds one more virtio-pmem device after the scenario's
//! (`/dev/pmemN`, N = the number of scenario devices at boot) whose backing
//! file holds an ext4 file system made here with `mkfs.ext4` (4 KiB blocks,
//! as DAX needs; no journal) and one file, `/map`. The guest agent mounts it
//! `-o dax,noatime` before the first step and maps `/map` for each `mmap`
//! step. Whether MAP_SYNC is allowed is a property of the virtio-pmem region
//! (Linux marks every virtio-pmem region asynchronous, so `dax_synchronous`
//! is false and `mmap` with MAP_SYNC fails with EOPNOTSUPP), so the scratch
//! device answers for every device of the scenario.
//!
//! The scratch device is not compared: its file is not probed and it has no
//! model counterpart. Its flush requests would count with the scenario's;
//! there are none during the steps (the mount's superblock write comes before
//! the first step, and `noatime` keeps the probes from dirtying the inode).

use super::error::OracleError;
use super::kernel::on_path;
use super::qemu::BackingFile;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The scratch device's id (QEMU's `-device …,id=`).
pub const ID: &str = "pmemlab-dax";

/// Its size: small, a whole number of 2 MiB (the guest maps device memory in
/// 2 MiB sub-sections).
pub const SIZE: u64 = 32 << 20;

/// The modules ext4 needs in the guest, in load order (`modinfo -F depends`
/// of Debian's 6.1 `ext4.ko`: crc16, mbcache, jbd2; crc32c for its
/// checksums, which it asks the crypto API for), relative to
/// `/lib/modules/VERSION/kernel`.
pub const MODULES: [&str; 5] = ["lib/crc16", "crypto/crc32c_generic", "fs/mbcache", "fs/jbd2/jbd2", "fs/ext4/ext4"];

/// Makes the scratch file system in `dir` and returns its backing file.
pub fn make_image(dir: &Path) -> Result<BackingFile, OracleError> {
    let mkfs = on_path("mkfs.ext4").or_else(|| Some(PathBuf::from("/usr/sbin/mkfs.ext4")).filter(|p| p.is_file()));
    let mkfs = mkfs.ok_or_else(|| OracleError::Missing {
        what: "mkfs.ext4".into(),
        detail: "mkfs.ext4 is not on PATH nor in /usr/sbin (it makes the DAX scratch file system)".into(),
        package: "e2fsprogs",
    })?;
    let content = dir.join("dax-content");
    std::fs::create_dir_all(&content).map_err(OracleError::io(format!("cannot create {}", content.display())))?;
    let map = content.join("map");
    std::fs::write(&map, vec![0u8; 4096]).map_err(OracleError::io(format!("cannot write {}", map.display())))?;
    let path = dir.join(format!("{ID}.img"));
    let file = std::fs::File::create(&path).map_err(OracleError::io(format!("cannot create {}", path.display())))?;
    file.set_len(SIZE).map_err(OracleError::io(format!("cannot size {}", path.display())))?;
    drop(file);
    let out = Command::new(mkfs)
        .args(["-q", "-F", "-b", "4096", "-O", "^has_journal", "-L", ID, "-d"])
        .arg(&content)
        .arg(&path)
        .output()
        .map_err(OracleError::io("cannot run mkfs.ext4"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        return Err(OracleError::Guest(format!("mkfs.ext4 could not make the DAX scratch file system: {first}")));
    }
    Ok(BackingFile { id: ID.into(), path, size: SIZE, share: true, readonly: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_is_an_ext4_file_system_with_4k_blocks_holding_the_map_file() {
        if on_path("mkfs.ext4").is_none() && !Path::new("/usr/sbin/mkfs.ext4").is_file() {
            eprintln!("skipped: no mkfs.ext4");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let b = make_image(dir.path()).unwrap();
        let bytes = std::fs::read(&b.path).unwrap();
        assert_eq!(bytes.len() as u64, SIZE);
        // The ext4 superblock at 1024: magic 0xEF53 at +56, log2(block size) - 10 at +24.
        let sb = &bytes[1024..2048];
        assert_eq!(u16::from_le_bytes([sb[56], sb[57]]), 0xEF53);
        assert_eq!(u32::from_le_bytes(sb[24..28].try_into().unwrap()), 2, "4 KiB blocks");
        assert_eq!(&sb[120..120 + ID.len()], ID.as_bytes(), "the volume label");
        // No journal: COMPAT_HAS_JOURNAL (0x4) clear in s_feature_compat (+92).
        assert_eq!(u32::from_le_bytes(sb[92..96].try_into().unwrap()) & 0x4, 0);
    }
}
