//! A device file's content before the program runs: its non-zero pages,
//! which the trace makes the durable state the run starts from.

use super::RecordError;
use pmem_core::memory::PAGE_SIZE;
use pmem_core::trace::InitialFile;
use std::io::Read;
use std::path::Path;

/// Reads `path` (at most `size` bytes) and keeps its non-zero pages, runs
/// of them merged into one extent.
pub fn read_initial(path: &Path, size: u64) -> Result<InitialFile, RecordError> {
    let fail = |e: std::io::Error| RecordError::Spawn(format!("{}: cannot read its content: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(fail)?;
    let len = file.metadata().map_err(fail)?.len();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file.take(size));
    let mut out = InitialFile { len, extents: Vec::new() };
    let mut page = vec![0u8; PAGE_SIZE as usize];
    let mut offset = 0u64;
    loop {
        let mut filled = 0;
        while filled < page.len() {
            let n = reader.read(&mut page[filled..]).map_err(fail)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        let bytes = &page[..filled];
        if bytes.iter().any(|&b| b != 0) {
            match out.extents.last_mut() {
                Some((at, run)) if *at + run.len() as u64 == offset => run.extend_from_slice(bytes),
                _ => out.extents.push((offset, bytes.to_vec())),
            }
        }
        offset += filled as u64;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_non_zero_pages_are_kept_and_runs_merge() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.img");
        let mut data = vec![0u8; 5 * 4096];
        data[4096] = 1;
        data[2 * 4096 + 7] = 2;
        data[4 * 4096] = 3;
        std::fs::write(&p, &data).unwrap();
        let f = read_initial(&p, data.len() as u64).unwrap();
        assert_eq!(f.len, 5 * 4096);
        let shape: Vec<(u64, usize)> = f.extents.iter().map(|(o, b)| (*o, b.len())).collect();
        assert_eq!(shape, [(4096, 8192), (4 * 4096, 4096)]);
        assert_eq!(f.extents[0].1[4096 + 7], 2);
    }
}
