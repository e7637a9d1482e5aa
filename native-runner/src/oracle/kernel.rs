//! The guest kernel and its modules: an uncompressed `vmlinux` (cached by
//! `scripts/ensure-qemu.sh`, or given with `--kernel`) and the virtio-pmem
//! stack from `/lib/modules/VERSION`.

use super::error::OracleError;
use std::path::{Path, PathBuf};

/// The modules, in load order (each after what it depends on, as
/// `modinfo -F depends` gives for Debian's 6.1 kernel), relative to
/// `/lib/modules/VERSION/kernel/drivers`.
pub const MODULES: [&str; 10] = [
    "virtio/virtio_ring",
    "virtio/virtio",
    "virtio/virtio_pci_legacy_dev",
    "virtio/virtio_pci_modern_dev",
    "virtio/virtio_pci",
    "nvdimm/libnvdimm",
    "nvdimm/nd_btt",
    "nvdimm/nd_pmem",
    "nvdimm/nd_virtio",
    "nvdimm/virtio_pmem",
];

/// Where the oracle caches what it builds: `$PMEMLAB_ORACLE_DIR`, else
/// `$CARGO_TARGET_DIR/oracle`, else `target/oracle` (the places
/// `scripts/ensure-qemu.sh` writes to).
pub fn oracle_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PMEMLAB_ORACLE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d).join("oracle");
    }
    // The binary lives in TARGET/debug (tests in TARGET/debug/deps).
    if let Ok(exe) = std::env::current_exe() {
        if let Some(d) = exe.ancestors().skip(1).take(3).map(|a| a.join("oracle")).find(|d| d.is_dir()) {
            return d;
        }
    }
    PathBuf::from("target/oracle")
}

/// A bootable kernel and the modules of the same version.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// The uncompressed ELF kernel.
    pub vmlinux: PathBuf,
    /// Its release, e.g. `6.1.0-57-amd64`.
    pub version: String,
    /// The module files, in load order.
    pub modules: Vec<PathBuf>,
}

/// Finds the kernel: `explicit`, else the newest `vmlinux-*` in the cache.
pub fn find(explicit: Option<&Path>) -> Result<Kernel, OracleError> {
    let vmlinux = match explicit {
        Some(p) => p.to_path_buf(),
        None => cached_vmlinux()?,
    };
    let version = release_of(&vmlinux)?;
    let modules = modules_of(&version)?;
    Ok(Kernel { vmlinux, version, modules })
}

fn cached_vmlinux() -> Result<PathBuf, OracleError> {
    let dir = oracle_dir();
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|it| {
            it.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("vmlinux-")))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().ok_or_else(|| OracleError::Missing {
        what: "the guest kernel".into(),
        detail: format!(
            "no uncompressed kernel (vmlinux-*) in {} (scripts/ensure-qemu.sh extracts it from /boot/vmlinuz-*)",
            dir.display()
        ),
        package: "linux-image-amd64",
    })
}

/// The kernel release in an uncompressed kernel's banner ("Linux version
/// 6.1.0-57-amd64 (…)"); an error when the file is not an ELF kernel.
pub fn release_of(vmlinux: &Path) -> Result<String, OracleError> {
    let bad = |reason: String| OracleError::BadKernel { path: vmlinux.to_path_buf(), reason };
    let bytes = std::fs::read(vmlinux).map_err(|e| bad(format!("cannot read the kernel: {e}")))?;
    if !bytes.starts_with(b"\x7fELF") {
        return Err(bad(
            "not an uncompressed ELF kernel (vmlinux); give the file scripts/ensure-qemu.sh extracts".into()
        ));
    }
    const BANNER: &[u8] = b"Linux version ";
    // The first banner that names a release (a format string may come first).
    let release = bytes.windows(BANNER.len()).enumerate().filter(|(_, w)| *w == BANNER).find_map(|(at, _)| {
        let rest = &bytes[at + BANNER.len()..];
        let end = rest.iter().position(|&b| b == b' ' || b == 0).unwrap_or(rest.len()).min(128);
        let version = String::from_utf8_lossy(&rest[..end]).into_owned();
        (!version.is_empty() && version.chars().all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c)))
            .then_some(version)
    });
    release.ok_or_else(|| bad("an ELF file without a \"Linux version\" banner: not a Linux kernel".into()))
}

fn modules_of(version: &str) -> Result<Vec<PathBuf>, OracleError> {
    find_modules(version, "kernel/drivers", &MODULES)
}

/// The modules a DAX-mounted ext4 needs ([`super::dax::MODULES`]), in load
/// order.
pub fn dax_modules(version: &str) -> Result<Vec<PathBuf>, OracleError> {
    find_modules(version, "kernel", &super::dax::MODULES)
}

/// Each of `names` (relative to `/lib/modules/VERSION/DIR`), plain or
/// xz-compressed.
fn find_modules(version: &str, dir: &str, names: &[&str]) -> Result<Vec<PathBuf>, OracleError> {
    let base = Path::new("/lib/modules").join(version).join(dir);
    names
        .iter()
        .map(|m| {
            let plain = base.join(format!("{m}.ko"));
            let xz = base.join(format!("{m}.ko.xz"));
            if plain.is_file() {
                Ok(plain)
            } else if xz.is_file() {
                Ok(xz)
            } else {
                Err(OracleError::Missing {
                    what: format!("the kernel module {m}.ko of Linux {version}"),
                    detail: format!("{} does not exist", plain.display()),
                    package: "linux-image-amd64",
                })
            }
        })
        .collect()
}

/// Finds a program on `PATH`.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_elf_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bzImage");
        std::fs::write(&p, b"MZ not a kernel").unwrap();
        let e = release_of(&p).unwrap_err().to_string();
        assert!(e.contains("bzImage") && e.contains("not an uncompressed ELF kernel"), "{e}");
    }

    #[test]
    fn the_release_is_read_from_the_banner() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vmlinux");
        std::fs::write(&p, b"\x7fELF....Linux version 6.1.0-57-amd64 (debian-kernel@lists)").unwrap();
        assert_eq!(release_of(&p).unwrap(), "6.1.0-57-amd64");
    }
}
