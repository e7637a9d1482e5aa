//! `pmemlab inspect FILE…`: the real page-cache state of files, like
//! util-linux `fincore`, through [`crate::cachestat`].
//!
//! For every file: its size, its number of pages (of the host page size),
//! and the kernel's counts of pages cached, dirty (in memory, newer than the
//! disk: lost on power failure), under writeback, evicted and recently
//! evicted, plus the file system it lives on. `--json` prints an array of
//! [`FileReport`]s.
//!
//! When cachestat cannot answer (kernel older than 6.5, a refused file
//! system, `EPERM`), the report says so in one line per distinct reason and
//! the sizes are still shown. A file that cannot be opened is reported in
//! one line naming it; the other files are still inspected and the command
//! exits with code 2.

use crate::cachestat::{cachestat_file, page_size, CacheStat, CacheStatError};
use crate::fs::FsKind;
use crate::report::{Report, Reporter};
use pmem_core::size::human_size;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Options of `pmemlab inspect`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct InspectOptions {
    /// The files to report on (regular files; each one that cannot be read
    /// is named on stderr, the others are still reported).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// The reports of the files that could be inspected: a table as text, an
/// array of [`FileReport`]s as JSON.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct InspectReport(pub Vec<FileReport>);

impl Report for InspectReport {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        out.write_all(render_table(&self.0).as_bytes())
    }

    fn json_notes(&self) -> Vec<String> {
        notes(&self.0)
    }
}

/// Runs `pmemlab inspect`: every file is reported; the ones that cannot be
/// read are named on stderr, one line each, and make the result an error
/// (an empty one: everything has been said).
pub fn inspect(opts: &InspectOptions, rep: &mut Reporter<'_>) -> Result<(), String> {
    let mut reports = Vec::new();
    let mut failed = 0;
    for f in &opts.files {
        match inspect_file(f) {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("pmemlab: inspect: {e}");
                failed += 1;
            }
        }
    }
    rep.report(&InspectReport(reports)).map_err(|e| format!("cannot write the report: {e}"))?;
    if failed == 0 {
        Ok(())
    } else {
        Err(String::new())
    }
}

/// The page-cache state of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReport {
    /// The file, as given.
    pub file: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Host page size in bytes.
    pub page_size: u64,
    /// Pages the file spans (size rounded up).
    pub pages: u64,
    /// The file system (`null` when it could not be told).
    pub fs: Option<FsKind>,
    /// The kernel's counts (`null` when cachestat could not answer).
    pub cachestat: Option<CacheStat>,
    /// Why cachestat could not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cachestat_error: Option<CacheStatError>,
}

/// Why a file could not be inspected at all.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The file does not exist.
    #[error("{}: no such file", .0.display())]
    Missing(PathBuf),
    /// Not a regular file.
    #[error("{}: not a regular file (inspect reports the page cache of regular files)", .0.display())]
    NotRegular(PathBuf),
    /// Any other failure to open or stat it.
    #[error("{}: {}", .0.display(), .1)]
    Io(PathBuf, io::Error),
}

/// Inspects one file.
pub fn inspect_file(path: &Path) -> Result<FileReport, InspectError> {
    let file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => InspectError::Missing(path.to_path_buf()),
        _ => InspectError::Io(path.to_path_buf(), e),
    })?;
    let meta = file.metadata().map_err(|e| InspectError::Io(path.to_path_buf(), e))?;
    if !meta.is_file() {
        return Err(InspectError::NotRegular(path.to_path_buf()));
    }
    let page_size = page_size();
    let (cachestat, cachestat_error) = match cachestat_file(&file) {
        Ok(c) => (Some(c), None),
        Err(e) => (None, Some(e)),
    };
    Ok(FileReport {
        file: path.to_path_buf(),
        size: meta.len(),
        page_size,
        pages: meta.len().div_ceil(page_size),
        fs: FsKind::of_file(&file).ok(),
        cachestat,
        cachestat_error,
    })
}

/// The reports as a table, then one line per distinct reason cachestat
/// failed and one line for memory-only file systems.
pub fn render_table(reports: &[FileReport]) -> String {
    let header = ["SIZE", "PAGES", "CACHED", "DIRTY", "WRITEBACK", "EVICTED", "RECENTLY_EVICTED", "FS", "FILE"];
    let dash = || "-".to_string();
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in reports {
        let c = r.cachestat;
        let n = |f: fn(&CacheStat) -> u64| c.as_ref().map(|c| f(c).to_string()).unwrap_or_else(dash);
        rows.push(vec![
            human_size(r.size),
            r.pages.to_string(),
            n(|c| c.cached),
            n(|c| c.dirty),
            n(|c| c.writeback),
            n(|c| c.evicted),
            n(|c| c.recently_evicted),
            r.fs.map(|f| f.to_string()).unwrap_or_else(dash),
            r.file.display().to_string(),
        ]);
    }
    let widths: Vec<usize> =
        (0..header.len()).map(|i| rows.iter().map(|row| row[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else if i + 2 == row.len() {
                // The FS column is text: left-aligned.
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            } else {
                line.push_str(&format!("{cell:>w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for line in notes(reports) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// One line per distinct reason cachestat gave no figures, and one for files
/// on memory-only file systems.
pub fn notes(reports: &[FileReport]) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for r in reports {
        if let Some(e) = &r.cachestat_error {
            let line = format!("note: {e}; page-cache counts are not shown");
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
    }
    let memory_only: Vec<String> = reports
        .iter()
        .filter(|r| r.fs.is_some_and(FsKind::is_memory_only))
        .map(|r| r.file.display().to_string())
        .collect();
    if !memory_only.is_empty() {
        lines.push(format!(
            "note: {} on a memory-only file system (tmpfs): no disk behind it, so DIRTY and WRITEBACK stay 0 \
             and say nothing about durability",
            if memory_only.len() == 1 { format!("{} is", memory_only[0]) } else { "some files are".to_string() }
        ));
    }
    lines
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_named() {
        let err = inspect_file(Path::new("/nonexistent/pmemlab-x")).unwrap_err();
        assert_eq!(err.to_string(), "/nonexistent/pmemlab-x: no such file");
        let err = inspect_file(Path::new("/")).unwrap_err();
        assert!(matches!(err, InspectError::NotRegular(_)));
    }

    #[test]
    fn table_shows_dashes_and_one_note_per_reason() {
        let mk = |file: &str, err: Option<CacheStatError>| FileReport {
            file: file.into(),
            size: 8192,
            page_size: 4096,
            pages: 2,
            fs: Some(FsKind::Ext4),
            cachestat: if err.is_none() { Some(CacheStat { cached: 2, dirty: 1, ..Default::default() }) } else { None },
            cachestat_error: err,
        };
        let t = render_table(&[
            mk("a", Some(CacheStatError::Unavailable)),
            mk("b", Some(CacheStatError::Unavailable)),
            mk("c", None),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5, "{t}");
        assert!(lines[0].starts_with("SIZE") || lines[0].trim_start().starts_with("SIZE"));
        assert!(lines[1].contains(" - ") && lines[1].ends_with(" a"), "{t}");
        assert!(lines[3].contains("ext4") && lines[3].ends_with(" c"), "{t}");
        assert!(lines[4].starts_with("note: cachestat is not available"), "{t}");
    }
}
