//! From the interposer's records to scenario steps: a store becomes a
//! `write` step, a flush an `fsync` (or `msync`) step, a truncation or a
//! punched hole a `write` of zeros over the bytes that now read as zero, a
//! refused `MAP_SYNC` an `mmap` step expecting EOPNOTSUPP.

use super::raw::{self, RawRecord};
use super::{InitialFile, RecordStats, TraceDevice, TraceError};
use crate::event::HexBytes;
use crate::scenario::{ByteSize, Data, Op, Pattern, Step, MAX_ACCESS};
use std::collections::BTreeSet;

/// The steps of a recording, what they hold, and notes.
pub(super) struct Converted {
    pub steps: Vec<Step>,
    pub stats: RecordStats,
    pub notes: Vec<String>,
    pub initial_steps: usize,
}

struct Conversion<'a> {
    devices: &'a [TraceDevice],
    len: Vec<u64>,
    out: Converted,
    pages: BTreeSet<(String, u64)>,
    pid: Option<u32>,
}

/// Converts `records` of a run on `devices`, whose files held `initial`
/// at the start.
pub(super) fn steps(
    records: &[RawRecord],
    devices: &[TraceDevice],
    initial: &[InitialFile],
) -> Result<Converted, TraceError> {
    let mut c = Conversion {
        devices,
        len: devices.iter().enumerate().map(|(i, d)| initial.get(i).map_or(d.size, |f| f.len)).collect(),
        out: Converted { steps: Vec::new(), stats: RecordStats::default(), notes: Vec::new(), initial_steps: 0 },
        pages: BTreeSet::new(),
        pid: None,
    };
    c.initial(initial)?;
    for r in records {
        c.record(r)?;
    }
    c.out.stats.pages = c.pages.len() as u64;
    Ok(c.out)
}

impl Conversion<'_> {
    fn device(&self, r: &RawRecord) -> Result<&TraceDevice, TraceError> {
        self.devices.get(r.device as usize).ok_or_else(|| {
            TraceError::Untraceable(format!(
                "the recording names device {}, but there are {}",
                r.device,
                self.devices.len()
            ))
        })
    }

    /// One process only may touch the devices: the order of two processes'
    /// stores is not known.
    fn check_pid(&mut self, r: &RawRecord) -> Result<(), TraceError> {
        match self.pid {
            None => self.pid = Some(r.pid),
            Some(p) if p != r.pid => {
                return Err(TraceError::Untraceable(format!(
                    "two processes (pids {p} and {}) used the devices; a recording follows one",
                    r.pid
                )))
            }
            Some(_) => {}
        }
        Ok(())
    }

    fn record(&mut self, r: &RawRecord) -> Result<(), TraceError> {
        if r.kind == raw::KIND_HELLO {
            return Ok(());
        }
        if r.kind == raw::KIND_UNTRACEABLE {
            return Err(TraceError::Untraceable(String::from_utf8_lossy(&r.payload).into_owned()));
        }
        self.check_pid(r)?;
        let d = self.device(r)?.clone();
        match r.kind {
            raw::KIND_STORE => self.store(&d, r.a, &r.payload),
            raw::KIND_FLUSH => {
                let op = if r.a == 2 {
                    Op::Msync { device: d.id.clone(), blocking: true }
                } else {
                    Op::Fsync { device: d.id.clone(), blocking: true }
                };
                self.out.stats.flushes += 1;
                self.push(op, Some(raw::flush_call_name(r.a)));
                Ok(())
            }
            raw::KIND_TRUNCATE => self.truncate(&d, r.device as usize, r.a),
            raw::KIND_ZERO => {
                let end = r.a.saturating_add(r.b).min(d.size);
                self.zeros(&d, r.a, end);
                Ok(())
            }
            _ => {
                self.out.notes.push(format!(
                    "the program asked for a MAP_SYNC mapping of {} and got EOPNOTSUPP, as on virtio-pmem",
                    d.path
                ));
                let step = Step {
                    op: Op::Mmap { device: d.id.clone(), map_sync: true },
                    expect_error: Some("EOPNOTSUPP".into()),
                    note: Some("mmap with MAP_SYNC, refused".into()),
                };
                self.out.steps.push(step);
                Ok(())
            }
        }
    }

    /// The files' content at the start: written, then flushed, so it is
    /// the durable state the program's run starts from.
    fn initial(&mut self, initial: &[InitialFile]) -> Result<(), TraceError> {
        for (d, file) in self.devices.iter().zip(initial) {
            for (offset, bytes) in &file.extents {
                if offset.saturating_add(bytes.len() as u64) > d.size {
                    return Err(TraceError::Untraceable(format!("{} holds data past the device's size", d.path)));
                }
                for (k, chunk) in bytes.chunks(MAX_ACCESS as usize).enumerate() {
                    let data = Data { pattern: Pattern::Hex(HexBytes(chunk.into())), repeat: None, len: None };
                    let at = ByteSize(offset + k as u64 * MAX_ACCESS);
                    self.push(
                        Op::Write { device: d.id.clone(), offset: at, data },
                        Some("the file's content at the start"),
                    );
                }
            }
            if !file.extents.is_empty() {
                self.push(
                    Op::Fsync { device: d.id.clone(), blocking: true },
                    Some("the file's content at the start is durable"),
                );
            }
        }
        self.out.initial_steps = self.out.steps.len();
        Ok(())
    }

    fn push(&mut self, op: Op, note: Option<&str>) {
        self.out.steps.push(Step { op, expect_error: None, note: note.map(str::to_string) });
    }

    fn store(&mut self, d: &TraceDevice, offset: u64, bytes: &[u8]) -> Result<(), TraceError> {
        let end = offset.saturating_add(bytes.len() as u64);
        if end > d.size {
            return Err(TraceError::Untraceable(format!(
                "the program stored {} bytes at offset {offset} of {}, past the end of the {}-byte device",
                bytes.len(),
                d.path,
                d.size
            )));
        }
        self.out.stats.stores += 1;
        self.out.stats.bytes += bytes.len() as u64;
        for p in offset / 4096..end.div_ceil(4096) {
            self.pages.insert((d.id.clone(), p));
        }
        for (k, chunk) in bytes.chunks(MAX_ACCESS as usize).enumerate() {
            let data = Data { pattern: Pattern::Hex(HexBytes(chunk.into())), repeat: None, len: None };
            let at = ByteSize(offset + k as u64 * MAX_ACCESS);
            self.push(Op::Write { device: d.id.clone(), offset: at, data }, None);
        }
        Ok(())
    }

    fn truncate(&mut self, d: &TraceDevice, index: usize, len: u64) -> Result<(), TraceError> {
        if len > d.size {
            return Err(TraceError::Untraceable(format!(
                "the program made {} {len} bytes long, past the device's size of {} bytes",
                d.path, d.size
            )));
        }
        let old = self.len[index].min(d.size);
        if len < old {
            self.zeros(d, len, old);
        }
        self.len[index] = len;
        Ok(())
    }

    /// Bytes `start..end` now read as zero.
    fn zeros(&mut self, d: &TraceDevice, start: u64, end: u64) {
        let mut at = start;
        while at < end {
            let n = (end - at).min(MAX_ACCESS);
            let data = Data { pattern: Pattern::Hex(HexBytes(vec![0u8].into())), repeat: None, len: Some(ByteSize(n)) };
            self.push(
                Op::Write { device: d.id.clone(), offset: ByteSize(at), data },
                Some("bytes cut off or punched out read as zero"),
            );
            at += n;
        }
    }
}
