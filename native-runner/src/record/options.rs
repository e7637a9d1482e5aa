//! [`RecordOptions`]: the options of `pmemlab record`, and `--pmem`'s
//! `FILE,size=SIZE[,resize=on]`.

use pmem_core::size::parse_size;
use std::path::PathBuf;

/// One `--pmem FILE,size=SIZE[,resize=on]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PmemSpec {
    /// The backing file.
    pub path: PathBuf,
    /// The device's size in bytes.
    pub size: u64,
    /// Let an existing file of another size be resized (as `run`'s
    /// `resize=on`).
    pub resize: bool,
    /// `empty=on`: a missing file is created empty (0 bytes) rather than
    /// of SIZE bytes, and an existing one may be shorter than SIZE — for
    /// programs that refuse a file of zeros (SQLite) and grow the file up
    /// to SIZE themselves.
    pub empty: bool,
}

/// Parses `FILE,size=SIZE[,resize=on][,empty=on]` (sizes with QEMU's
/// suffixes).
pub fn parse_pmem(s: &str) -> Result<PmemSpec, String> {
    let mut parts = s.split(',');
    let path = parts.next().filter(|p| !p.is_empty()).ok_or_else(|| format!("--pmem '{s}': give FILE,size=SIZE"))?;
    let (mut size, mut resize, mut empty) = (None, false, false);
    for part in parts {
        match part.split_once('=') {
            Some(("size", v)) => size = Some(parse_size(v).map_err(|e| format!("--pmem '{s}': {e}"))?),
            Some(("resize", "on")) => resize = true,
            Some(("resize", "off")) => resize = false,
            Some(("empty", "on")) => empty = true,
            Some(("empty", "off")) => empty = false,
            _ => {
                return Err(format!(
                    "--pmem '{s}': unknown option '{part}'; the options are size=SIZE, resize=on|off and empty=on|off"
                ))
            }
        }
    }
    let size = size.ok_or_else(|| format!("--pmem '{s}': the size is missing, e.g. {path},size=64M"))?;
    if size == 0 || !size.is_multiple_of(4096) {
        return Err(format!("--pmem '{s}': size {size} is not a non-zero multiple of 4096"));
    }
    if resize && empty {
        return Err(format!("--pmem '{s}': give resize=on or empty=on, not both"));
    }
    Ok(PmemSpec { path: PathBuf::from(path), size, resize, empty })
}

/// Options of `pmemlab record`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RecordOptions {
    /// A virtio-pmem device's backing file and size,
    /// FILE,size=SIZE with optional ,resize=on and ,empty=on (repeat for several devices):
    /// created when missing, as `run` does; an existing file must have SIZE
    /// bytes unless resize=on; with empty=on a new file starts empty and may
    /// grow up to SIZE.
    #[arg(long = "pmem", value_name = "FILE,size=SIZE", required = true, value_parser = parse_pmem)]
    pub pmem: Vec<PmemSpec>,
    /// Where the trace goes (default: PROGRAM's file name + .trace.json in
    /// the current directory); an existing file is refused without --force.
    #[arg(long, value_name = "OUT")]
    pub trace: Option<PathBuf>,
    /// Replace an existing trace file.
    #[arg(long)]
    pub force: bool,
    /// The interposer library (default: libpmemlab_interpose.so next to the
    /// pmemlab binary, or PMEMLAB_INTERPOSER).
    #[arg(long, value_name = "SO", env = "PMEMLAB_INTERPOSER")]
    pub interposer: Option<PathBuf>,
    /// The program and its arguments (after --).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "PROGRAM ARGS")]
    pub command: Vec<String>,
}

impl RecordOptions {
    /// The trace file.
    pub fn trace_path(&self) -> PathBuf {
        self.trace.clone().unwrap_or_else(|| {
            let prog = self.command.first().map(String::as_str).unwrap_or("program");
            let name = std::path::Path::new(prog).file_name().map(|n| n.to_string_lossy().into_owned());
            PathBuf::from(format!("{}.trace.json", name.unwrap_or_else(|| "program".into())))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pmem_spec_reads_the_file_and_size() {
        let s = parse_pmem("db.img,size=64M").unwrap();
        assert_eq!((s.path, s.size, s.resize), (PathBuf::from("db.img"), 64 << 20, false));
        assert!(parse_pmem("db.img,size=1M,resize=on").unwrap().resize);
        assert!(parse_pmem("db.img,size=1M,empty=on").unwrap().empty);
    }

    #[test]
    fn a_bad_pmem_spec_names_the_problem() {
        for (spec, want) in [
            ("db.img", "size is missing"),
            ("db.img,size=1000", "multiple of 4096"),
            ("db.img,size=1M,share=off", "unknown option 'share=off'"),
            ("db.img,size=1M,resize=on,empty=on", "not both"),
            (",size=1M", "FILE,size=SIZE"),
            ("db.img,size=lots", "--pmem 'db.img,size=lots'"),
        ] {
            let e = parse_pmem(spec).unwrap_err();
            assert!(e.contains(want), "{spec}: {e}");
        }
    }
}
