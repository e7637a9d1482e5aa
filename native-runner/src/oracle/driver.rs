//! Guest driver versions: Debian's `nd_virtio.ko` as shipped (its
//! `virtio_pmem_flush` holds `vpmem->flush_lock`, so at most one flush is
//! outstanding — the upstream patch "nvdimm: virtio_pmem: serialize flush
//! requests"), or the older, unserialized driver, made from it by turning
//! the two calls (`mutex_lock`, `mutex_unlock`) into a 5-byte `mov eax,
//! imm32` and dropping the module signature (the kernel then loads it
//! tainted, as it does any unsigned module when signatures are not
//! enforced).
//!
//! The calls are found through the module's relocations: each `call` is an
//! `e8` byte followed by a 4-byte displacement that a `R_X86_64_PLT32`
//! relocation against the function's symbol fills in at load time. With the
//! opcode changed to `b8` the relocation fills the immediate instead, and
//! the instruction only clobbers `eax`, which the call clobbered anyway.

/// Which nd_virtio the guest loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// As shipped: flushes serialized by `flush_lock`.
    Serialized,
    /// The lock calls patched out: the driver before the serialization.
    Unserialized,
}

const SIGNATURE_MAGIC: &[u8] = b"~Module signature appended~\n";

fn u16_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as u64)
}
fn u32_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as u64)
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A section header: (name offset, type, file offset, size, link, info).
fn section(b: &[u8], i: u64) -> Option<(u64, u64, u64, u64, u64, u64)> {
    let (shoff, shentsize) = (u64_at(b, 0x28)?, u16_at(b, 0x3a)?);
    let h = (shoff + i * shentsize) as usize;
    Some((
        u32_at(b, h)?,
        u32_at(b, h + 4)?,
        u64_at(b, h + 0x18)?,
        u64_at(b, h + 0x20)?,
        u32_at(b, h + 0x28)?,
        u32_at(b, h + 0x2c)?,
    ))
}

fn c_string(b: &[u8], at: u64) -> &[u8] {
    let rest = b.get(at as usize..).unwrap_or(&[]);
    &rest[..rest.iter().position(|&c| c == 0).unwrap_or(rest.len())]
}

/// The module without its appended signature.
fn unsigned(module: &[u8]) -> &[u8] {
    if !module.ends_with(SIGNATURE_MAGIC) {
        return module;
    }
    // struct module_signature (12 bytes, sig_len big-endian last) precedes the magic.
    let end = module.len() - SIGNATURE_MAGIC.len();
    let Some(len) = module.get(end - 4..end).map(|s| u32::from_be_bytes(s.try_into().unwrap_or([0; 4])) as usize)
    else {
        return module;
    };
    module.get(..end.saturating_sub(12 + len)).unwrap_or(module)
}

/// `nd_virtio.ko` with the calls to `mutex_lock` and `mutex_unlock` patched
/// out; an error when the module has no such call (a driver without the
/// serialization already, or not nd_virtio).
pub fn unserialize(module: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = unsigned(module).to_vec();
    let b = out.clone();
    let bad = || "nd_virtio.ko is not an ELF64 module this patcher understands".to_string();
    if !b.starts_with(b"\x7fELF\x02\x01") {
        return Err(bad());
    }
    let shnum = u16_at(&b, 0x3c).ok_or_else(bad)?;
    let mut patched = Vec::new();
    for i in 0..shnum {
        let (_, kind, offset, size, link, info) = section(&b, i).ok_or_else(bad)?;
        if kind != 4 {
            continue; // SHT_RELA only
        }
        let (_, _, target_off, _, _, _) = section(&b, info).ok_or_else(bad)?;
        let (_, _, sym_off, _, strtab, _) = section(&b, link).ok_or_else(bad)?;
        let (_, _, str_off, _, _, _) = section(&b, strtab).ok_or_else(bad)?;
        for r in 0..size / 24 {
            let e = (offset + r * 24) as usize;
            let (r_offset, r_info) = (u64_at(&b, e).ok_or_else(bad)?, u64_at(&b, e + 8).ok_or_else(bad)?);
            let name_off = u32_at(&b, (sym_off + (r_info >> 32) * 24) as usize).ok_or_else(bad)?;
            let name = c_string(&b, str_off + name_off);
            if (name == b"mutex_lock" || name == b"mutex_unlock") && (r_info & 0xffff_ffff) == 4 {
                let at = (target_off + r_offset - 1) as usize;
                if out.get(at) != Some(&0xe8) {
                    return Err(format!(
                        "nd_virtio.ko: the {} relocation is not on a call",
                        String::from_utf8_lossy(name)
                    ));
                }
                out[at] = 0xb8;
                patched.push(String::from_utf8_lossy(name).into_owned());
            }
        }
    }
    if !(patched.iter().any(|n| n == "mutex_lock") && patched.iter().any(|n| n == "mutex_unlock")) {
        return Err("nd_virtio.ko calls no mutex_lock/mutex_unlock: it has no flush_lock to remove".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_without_the_lock_calls_is_refused() {
        assert!(unserialize(b"not an elf").unwrap_err().contains("not an ELF64"));
    }

    #[test]
    fn the_signature_is_cut_at_its_length() {
        let mut m = b"\x7fELFbody".to_vec();
        m.extend_from_slice(b"SIG");
        m.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
        m.extend_from_slice(SIGNATURE_MAGIC);
        assert_eq!(unsigned(&m), b"\x7fELFbody");
    }

    #[test]
    fn debians_nd_virtio_loses_exactly_its_two_lock_calls() {
        let Some(path) = std::fs::read_dir("/lib/modules").ok().and_then(|mut d| {
            d.find_map(|e| {
                let p = e.ok()?.path().join("kernel/drivers/nvdimm/nd_virtio.ko");
                p.is_file().then_some(p)
            })
        }) else {
            eprintln!("skipped: no nd_virtio.ko installed");
            return;
        };
        let original = std::fs::read(path).unwrap();
        let patched = unserialize(&original).unwrap();
        let body = unsigned(&original);
        assert_eq!(patched.len(), body.len());
        let changed: Vec<usize> = (0..body.len()).filter(|&i| body[i] != patched[i]).collect();
        assert_eq!(changed.len(), 2, "{changed:?}");
        assert!(changed.iter().all(|&i| body[i] == 0xe8 && patched[i] == 0xb8));
    }
}
