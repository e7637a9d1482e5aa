//! `pmemlab record`: runs an unmodified, dynamically linked program with
//! the recording interposer (`interposer/`, loaded with `LD_PRELOAD`) and
//! writes what it stored and flushed on its virtio-pmem backing files as a
//! trace ([`pmem_core::trace`]).
//!
//! ```text
//! pmemlab record --pmem FILE,size=64M [--pmem …] [--trace OUT] [--force] [--json] -- PROGRAM ARGS…
//! ```
//!
//! 1. The backing files are created or checked with `run`'s rules
//!    ([`FileBackend::open`]), and their content read ([`initial`]: it
//!    becomes the durable state the trace starts from); the program is
//!    looked up ([`program`]): not found, or a static binary, is one line
//!    and exit 2.
//! 2. The program runs with stdin, stdout and stderr passed through, with
//!    `LD_PRELOAD` naming the interposer, `PMEMLAB_RECORD_DEVICES` the
//!    files and `PMEMLAB_RECORD_FD` an unnamed temporary file the raw
//!    records go to ([`spawn`]).
//! 3. The records become a trace ([`Trace::from_records`]); a program that
//!    did something the recording cannot follow, or that exited with a
//!    non-zero status before any flush, is one line and exit 2, and no
//!    trace is written. Otherwise the trace is written atomically (a
//!    temporary file renamed into place; an existing file only with
//!    `--force`), a summary is printed (`--json`: one document), and
//!    pmemlab exits with the program's status (128 + the signal when a
//!    signal ended it).
//!
//! The interposer is found next to the pmemlab binary (`cargo build` puts
//! `libpmemlab_interpose.so` there: the crate is a default member of the
//! workspace), or given with `--interposer` / `PMEMLAB_INTERPOSER`.

pub mod initial;
pub mod options;
pub mod program;
pub mod spawn;

use crate::backend::{FileBackend, FileBackendError, FileBackendOptions};
use crate::created::CreatedFiles;
use crate::output::{check_writable, write_file, OutputError};
use crate::report::{Report, Reporter};
pub use options::{parse_pmem, PmemSpec, RecordOptions};
use pmem_core::size::human_size;
use pmem_core::trace::{raw, RecordStats, Trace, TraceDevice, TraceError, TraceHeader};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

/// Why `record` could not record: one sentence.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The program cannot be found or run.
    #[error("{name}: {reason}")]
    NoProgram {
        /// The name given.
        name: String,
        /// Why.
        reason: String,
    },
    /// A statically linked program.
    #[error("{}: a statically linked program cannot be traced (the recording library is loaded by the dynamic loader); link it dynamically", path.display())]
    Static {
        /// The program.
        path: PathBuf,
    },
    /// The interposer library is missing.
    #[error("cannot find the recording library {}; build it with `cargo build` (it is put next to the pmemlab binary) or give --interposer", looked.display())]
    NoInterposer {
        /// Where it was looked for.
        looked: PathBuf,
    },
    /// A backing file.
    #[error("{0}")]
    Backend(#[from] FileBackendError),
    /// An `empty=on` file longer than the device.
    #[error("{}: the existing file is {len} bytes, more than the device's size {size}", path.display())]
    TooLong {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The device's size.
        size: u64,
    },
    /// More devices than the recording follows.
    #[error("{count} --pmem devices; a recording follows at most {MAX_RECORDED_DEVICES}")]
    TooManyDevices {
        /// How many were given.
        count: usize,
    },
    /// Two `--pmem` name the same file.
    #[error("--pmem {}: the file is given twice", path.display())]
    SameFile {
        /// The file.
        path: PathBuf,
    },
    /// The trace file.
    #[error("{0}")]
    Output(#[from] OutputError),
    /// Running the program.
    #[error("{0}")]
    Spawn(String),
    /// The recording.
    #[error("{program}: {source}")]
    Trace {
        /// The program.
        program: String,
        /// What went wrong.
        source: TraceError,
    },
    /// The program failed before it made anything durable.
    #[error("{program} ended with {status} before any flush; nothing it stored was made durable, so there is nothing to explore (no trace written)")]
    FailedBeforeFlush {
        /// The program.
        program: String,
        /// How it ended.
        status: pmem_core::trace::ExitStatus,
    },
    /// Writing the summary.
    #[error("cannot write the summary: {0}")]
    Write(#[from] std::io::Error),
}

/// Most devices one recording follows (the interposer's table).
pub const MAX_RECORDED_DEVICES: usize = 16;

/// What `record` prints at the end.
#[derive(Debug, Serialize)]
pub struct RecordSummary {
    /// The trace file.
    pub trace: PathBuf,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// How it ended.
    pub exit: pmem_core::trace::ExitStatus,
    /// What was captured.
    #[serde(flatten)]
    pub stats: RecordStats,
    /// The devices.
    pub devices: Vec<TraceDevice>,
    /// Notes (MAP_SYNC refused, …).
    pub notes: Vec<String>,
}

impl Report for RecordSummary {
    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let s = &self.stats;
        writeln!(
            out,
            "pmemlab: recorded {}: {} stores ({}) on {} pages, {} flushes; {}",
            self.command.join(" "),
            s.stores,
            human_size(s.bytes),
            s.pages,
            s.flushes,
            self.exit
        )?;
        for n in &self.notes {
            writeln!(out, "pmemlab: note: {n}")?;
        }
        writeln!(out, "pmemlab: trace written to {}", self.trace.display())
    }
}

/// Runs `pmemlab record`; returns the status pmemlab exits with (the
/// program's). On an error, the files it created are removed again.
pub fn record(opts: &RecordOptions, rep: &mut Reporter<'_>) -> Result<i32, RecordError> {
    let trace_path = opts.trace_path();
    check_writable(&trace_path, opts.force)?;
    let name = opts.command.first().cloned().unwrap_or_default();
    let program = program::find_program(&name)?;
    program::check_dynamic(&program)?;
    let interposer = program::find_interposer(opts.interposer.as_deref())?;
    let mut created = CreatedFiles::new();
    let devices = open_devices(&opts.pmem, &mut created)?;
    let initial =
        devices.iter().map(|d| initial::read_initial(d.path.as_ref(), d.size)).collect::<Result<Vec<_>, _>>()?;
    let ran = spawn::run(&program, &opts.command[1..], &interposer, &devices)?;
    let header = TraceHeader {
        program: name.clone(),
        args: opts.command[1..].to_vec(),
        devices: devices.clone(),
        exit: ran.exit,
        stats: RecordStats::default(),
        notes: Vec::new(),
        initial_steps: 0,
    };
    let to_error = |source| RecordError::Trace { program: name.clone(), source };
    let records = raw::decode(&ran.records).map_err(to_error)?;
    let trace = Trace::from_records(header, &records, &initial).map_err(to_error)?;
    if !ran.exit.success() && trace.header().stats.flushes == 0 {
        return Err(RecordError::FailedBeforeFlush { program: name, status: ran.exit });
    }
    created.add_if_new(&trace_path);
    write_file(&trace_path, trace.to_json().as_bytes(), opts.force)?;
    let h = trace.header();
    rep.report(&RecordSummary {
        trace: trace_path,
        command: opts.command.clone(),
        exit: h.exit,
        stats: h.stats,
        devices,
        notes: h.notes.clone(),
    })?;
    created.keep();
    Ok(h.exit.shell_code())
}

/// Creates or checks every backing file (with `run`'s rules) and names the
/// devices `pmem0`, `pmem1`, … in order.
fn open_devices(specs: &[PmemSpec], created: &mut CreatedFiles) -> Result<Vec<TraceDevice>, RecordError> {
    if specs.len() > MAX_RECORDED_DEVICES {
        return Err(RecordError::TooManyDevices { count: specs.len() });
    }
    let mut out: Vec<TraceDevice> = Vec::new();
    let mut seen = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        if s.empty {
            open_empty(s, created)?;
        } else {
            let fresh = created.add_if_new(&s.path);
            let backend = FileBackend::open(&FileBackendOptions::new(&s.path, s.size).resize(s.resize))?;
            if !fresh && backend.info().created {
                created.add(&s.path);
            }
        }
        let id = std::fs::canonicalize(&s.path).unwrap_or_else(|_| s.path.clone());
        if seen.contains(&id) {
            return Err(RecordError::SameFile { path: s.path.clone() });
        }
        seen.push(id);
        out.push(TraceDevice { id: format!("pmem{i}"), path: s.path.to_string_lossy().into_owned(), size: s.size });
    }
    Ok(out)
}

/// `empty=on`: creates a missing file empty, or checks that an existing one
/// fits the device.
fn open_empty(s: &PmemSpec, created: &mut CreatedFiles) -> Result<(), RecordError> {
    let io = |action: &'static str, e| {
        RecordError::Backend(FileBackendError::Io { path: s.path.clone(), action, source: e })
    };
    match std::fs::metadata(&s.path) {
        Ok(m) if !m.is_file() => Err(RecordError::Backend(FileBackendError::NotRegular { path: s.path.clone() })),
        Ok(m) if m.len() > s.size => Err(RecordError::TooLong { path: s.path.clone(), len: m.len(), size: s.size }),
        Ok(_) => Ok(()),
        Err(_) => {
            std::fs::OpenOptions::new().write(true).create_new(true).open(&s.path).map_err(|e| io("create", e))?;
            created.add(&s.path);
            Ok(())
        }
    }
}
