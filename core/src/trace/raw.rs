//! The raw event stream the recording interposer writes while the program
//! runs, and its decoder.
//!
//! The stream is append-only binary, little-endian: each record is a
//! 32-byte header — kind (`u8`), three zero bytes, the process id (`u32`),
//! the device index (`u32`), the payload length (`u32`), two arguments
//! (`u64`, `u64`) — followed by the payload. The interposer (crate
//! `pmemlab-interpose`) encodes with [`encode_header`], which needs no
//! allocation; `pmemlab record` decodes with [`decode`] and turns the
//! records into a [`Trace`](super::Trace).

use super::TraceError;

/// Length of a record header in bytes.
pub const HEADER_LEN: usize = 32;

/// A process started recording (`a`: 1 when it is the program pmemlab
/// started, 0 for a process it started in turn).
pub const KIND_HELLO: u8 = 1;
/// Bytes stored in the device at offset `a` (through a mapping or a write
/// call; `b`: 0 for a mapping, 1 for a write call); the payload is the bytes.
pub const KIND_STORE: u8 = 2;
/// A flush of the device (`a`: which call, see [`flush_call_name`]).
pub const KIND_FLUSH: u8 = 3;
/// The file was cut or extended to `a` bytes (`ftruncate`, `O_TRUNC`,
/// `fallocate` with `FALLOC_FL_PUNCH_HOLE` uses [`KIND_ZERO`]).
pub const KIND_TRUNCATE: u8 = 4;
/// `b` bytes from offset `a` read as zeros from now on (a punched hole).
pub const KIND_ZERO: u8 = 5;
/// The program asked for a `MAP_SYNC` mapping and got EOPNOTSUPP.
pub const KIND_MAP_SYNC: u8 = 6;
/// The program did something the recording cannot follow; the payload
/// says what, in one sentence.
pub const KIND_UNTRACEABLE: u8 = 7;

/// The call behind a [`KIND_FLUSH`] record, by its `a` argument.
pub fn flush_call_name(a: u64) -> &'static str {
    match a {
        0 => "fsync",
        1 => "fdatasync",
        2 => "msync",
        3 => "sync_file_range",
        4 => "syncfs",
        5 => "sync",
        6 => "O_DSYNC write",
        _ => "flush",
    }
}

/// One decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRecord {
    /// The kind (`KIND_*`).
    pub kind: u8,
    /// The process that wrote it.
    pub pid: u32,
    /// The device index (the position in the device list pmemlab passed).
    pub device: u32,
    /// First argument.
    pub a: u64,
    /// Second argument.
    pub b: u64,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Encodes a record header into `out` (no allocation).
pub fn encode_header(kind: u8, pid: u32, device: u32, payload_len: u32, a: u64, b: u64) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[0] = kind;
    out[4..8].copy_from_slice(&pid.to_le_bytes());
    out[8..12].copy_from_slice(&device.to_le_bytes());
    out[12..16].copy_from_slice(&payload_len.to_le_bytes());
    out[16..24].copy_from_slice(&a.to_le_bytes());
    out[24..32].copy_from_slice(&b.to_le_bytes());
    out
}

fn le32(b: &[u8]) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[..4]);
    u32::from_le_bytes(x)
}

fn le64(b: &[u8]) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[..8]);
    u64::from_le_bytes(x)
}

/// Decodes a whole stream. A record cut short, or of an unknown kind, is
/// a [`TraceError`] naming its byte offset.
pub fn decode(bytes: &[u8]) -> Result<Vec<RawRecord>, TraceError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < HEADER_LEN {
            return Err(TraceError::RawTruncated { offset: at as u64 });
        }
        let kind = rest[0];
        if !(KIND_HELLO..=KIND_UNTRACEABLE).contains(&kind) {
            return Err(TraceError::RawKind { offset: at as u64, kind });
        }
        let len = le32(&rest[12..]) as usize;
        if rest.len() - HEADER_LEN < len {
            return Err(TraceError::RawTruncated { offset: at as u64 });
        }
        out.push(RawRecord {
            kind,
            pid: le32(&rest[4..]),
            device: le32(&rest[8..]),
            a: le64(&rest[16..]),
            b: le64(&rest[24..]),
            payload: rest[HEADER_LEN..HEADER_LEN + len].to_vec(),
        });
        at += HEADER_LEN + len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, a: u64, payload: &[u8]) -> Vec<u8> {
        let mut v = encode_header(kind, 7, 1, payload.len() as u32, a, 9).to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn a_stream_decodes_to_its_records() {
        let mut s = record(KIND_STORE, 4096, b"abc");
        s.extend(record(KIND_FLUSH, 2, b""));
        let r = decode(&s).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].kind, r[0].pid, r[0].device, r[0].a, r[0].b), (KIND_STORE, 7, 1, 4096, 9));
        assert_eq!(r[0].payload, b"abc");
        assert_eq!(flush_call_name(r[1].a), "msync");
    }

    #[test]
    fn a_cut_record_is_refused_with_its_offset() {
        let mut s = record(KIND_FLUSH, 0, b"");
        s.extend(record(KIND_STORE, 0, b"abcdef"));
        s.truncate(s.len() - 2);
        assert_eq!(decode(&s), Err(TraceError::RawTruncated { offset: 32 }));
        assert_eq!(decode(&s[..10]), Err(TraceError::RawTruncated { offset: 0 }));
    }

    #[test]
    fn an_unknown_kind_is_refused() {
        let s = record(99, 0, b"");
        assert_eq!(decode(&s), Err(TraceError::RawKind { offset: 0, kind: 99 }));
    }
}
