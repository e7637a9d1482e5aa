//! Parsing a virtio-pmem request from a popped chain (pure: reads only).
//!
//! Wire format: a device-readable `le32 type` followed by a device-writable
//! `le32 ret`. The spec does not let a device assume message framing, so both
//! may be split over several buffers; the request is gathered from the
//! readable part and the status scattered into the writable part.

use crate::memory::{GuestAddress, GuestMemory, MemoryError};
use crate::queue::Descriptor;
use serde::{Deserialize, Serialize};

/// The only standard request type: flush.
pub const VIRTIO_PMEM_REQ_TYPE_FLUSH: u32 = 0;

/// Where the status goes: the writable buffers, in order.
pub type StatusBuffers = Vec<(u64, u32)>;

/// What the driver asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestKind {
    /// Make every completed write durable.
    Flush,
}

/// A parsed request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The request.
    pub kind: RequestKind,
    /// Where its status goes.
    pub status: StatusBuffers,
}

/// Why a chain is not a valid virtio-pmem request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum RequestError {
    /// The chain has no buffers at all.
    #[error("the chain has no buffers")]
    NoBuffers,
    /// A lone buffer cannot hold both request and status.
    #[error("the chain has only {descriptors} buffer; a request buffer and a status buffer are needed")]
    ChainTooShort {
        /// Buffers in the chain.
        descriptors: usize,
    },
    /// The first buffer is device-writable: there is no request to read.
    #[error("the head buffer is device-writable; the request must be device-readable")]
    HeadIsWriteOnly,
    /// No device-writable buffer: nowhere to put the status.
    #[error("no device-writable status buffer (all {descriptors} buffers are read-only)")]
    StatusNotWritable {
        /// Buffers in the chain.
        descriptors: usize,
    },
    /// A device-readable buffer after a writable one.
    #[error("buffer {position} is device-readable after a device-writable buffer")]
    ReadableAfterWritable {
        /// Its position.
        position: usize,
    },
    /// The readable part is shorter than the 4-byte request.
    #[error("request is {len} bytes; at least 4 are needed")]
    ShortRequest {
        /// Bytes in the readable part.
        len: u64,
    },
    /// The writable part is shorter than the 4-byte status.
    #[error("status buffer is {len} bytes; at least 4 are needed")]
    ShortStatus {
        /// Bytes in the writable part.
        len: u64,
    },
    /// A buffer could not be read.
    #[error("request buffer unreadable: {0}")]
    Memory(MemoryError),
    /// An unknown request type; the status buffer is valid and gets an answer.
    #[error("unknown request type {request_type}; only 0 (flush) is defined")]
    UnknownType {
        /// The type read.
        request_type: u32,
        /// Where the failure status goes.
        status: StatusBuffers,
    },
}

impl RequestError {
    /// True when the chain has no usable shape — no readable or no writable
    /// part, parts out of order, a buffer that cannot be mapped — the
    /// faults QEMU meets in `virtqueue_pop` or its `out_num < 1 || in_num <
    /// 1` check and answers with `virtio_error`. Short buffers and unknown
    /// types are not: QEMU copies what fits and syncs anyway.
    pub fn is_improper_chain(&self) -> bool {
        use RequestError::*;
        matches!(
            self,
            NoBuffers
                | ChainTooShort { .. }
                | HeadIsWriteOnly
                | StatusNotWritable { .. }
                | ReadableAfterWritable { .. }
                | Memory(_)
        )
    }
}

/// Parses the buffers of a chain into a request.
pub fn parse<M: GuestMemory + ?Sized>(mem: &M, buffers: &[Descriptor]) -> Result<Request, RequestError> {
    let first = buffers.first().ok_or(RequestError::NoBuffers)?;
    if first.is_write_only() {
        return Err(RequestError::HeadIsWriteOnly);
    }
    if buffers.len() < 2 {
        return Err(RequestError::ChainTooShort { descriptors: buffers.len() });
    }
    let split = buffers.iter().position(|d| d.is_write_only());
    let Some(split) = split else {
        return Err(RequestError::StatusNotWritable { descriptors: buffers.len() });
    };
    if let Some(pos) = buffers[split..].iter().position(|d| !d.is_write_only()) {
        return Err(RequestError::ReadableAfterWritable { position: split + pos });
    }
    let (readable, writable) = buffers.split_at(split);
    let req_len: u64 = readable.iter().map(|d| u64::from(d.len)).sum();
    if req_len < 4 {
        return Err(RequestError::ShortRequest { len: req_len });
    }
    let status_len: u64 = writable.iter().map(|d| u64::from(d.len)).sum();
    if status_len < 4 {
        return Err(RequestError::ShortStatus { len: status_len });
    }
    let mut ty = [0u8; 4];
    gather(mem, readable, &mut ty).map_err(RequestError::Memory)?;
    let status: StatusBuffers = writable.iter().map(|d| (d.addr, d.len)).collect();
    match u32::from_le_bytes(ty) {
        VIRTIO_PMEM_REQ_TYPE_FLUSH => Ok(Request { kind: RequestKind::Flush, status }),
        other => Err(RequestError::UnknownType { request_type: other, status }),
    }
}

/// Reads `out.len()` bytes from the start of a list of buffers.
pub fn gather<M: GuestMemory + ?Sized>(mem: &M, bufs: &[Descriptor], out: &mut [u8]) -> Result<(), MemoryError> {
    let mut done = 0usize;
    for d in bufs {
        if done == out.len() {
            break;
        }
        let n = (out.len() - done).min(d.len as usize);
        mem.read(GuestAddress(d.addr), &mut out[done..done + n])?;
        done += n;
    }
    Ok(())
}

/// Writes `data` into the start of a list of `(addr, len)` buffers.
pub fn scatter<M: GuestMemory + ?Sized>(mem: &mut M, bufs: &[(u64, u32)], data: &[u8]) -> Result<(), MemoryError> {
    let mut done = 0usize;
    for &(addr, len) in bufs {
        if done == data.len() {
            break;
        }
        let n = (data.len() - done).min(len as usize);
        mem.write(GuestAddress(addr), &data[done..done + n])?;
        done += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::GuestMemoryMap;
    use crate::queue::{VIRTQ_DESC_F_NEXT as N, VIRTQ_DESC_F_WRITE as W};

    fn mem() -> GuestMemoryMap {
        let mut m = GuestMemoryMap::new(GuestAddress(0), 0x10000);
        m.write_le32(GuestAddress(0x100), VIRTIO_PMEM_REQ_TYPE_FLUSH).unwrap();
        m.write_le32(GuestAddress(0x200), 7).unwrap();
        m
    }

    fn d(addr: u64, len: u32, flags: u16) -> Descriptor {
        Descriptor::new(addr, len, flags, 0)
    }

    #[test]
    fn a_flush_parses() {
        let r = parse(&mem(), &[d(0x100, 4, N), d(0x104, 4, W)]).unwrap();
        assert_eq!(r.kind, RequestKind::Flush);
        assert_eq!(r.status, vec![(0x104, 4)]);
    }

    #[test]
    fn a_flush_split_over_buffers_parses() {
        let mut m = mem();
        m.write(GuestAddress(0x300), &[0, 0]).unwrap();
        m.write(GuestAddress(0x310), &[0, 0]).unwrap();
        let r = parse(&m, &[d(0x300, 2, N), d(0x310, 2, N), d(0x400, 1, W | N), d(0x410, 3, W)]).unwrap();
        assert_eq!(r.status.len(), 2);
        let mut m2 = m;
        scatter(&mut m2, &r.status, &0xFFFF_FFFFu32.to_le_bytes()).unwrap();
        let mut b = [0u8; 1];
        m2.read(GuestAddress(0x400), &mut b).unwrap();
        assert_eq!(b[0], 0xFF);
        let mut rest = [0u8; 4];
        m2.read(GuestAddress(0x410), &mut rest).unwrap();
        assert_eq!(rest, [0xFF, 0xFF, 0xFF, 0]);
    }

    #[test]
    fn no_buffers() {
        assert_eq!(parse(&mem(), &[]), Err(RequestError::NoBuffers));
    }

    #[test]
    fn chain_too_short() {
        assert_eq!(parse(&mem(), &[d(0x100, 8, 0)]), Err(RequestError::ChainTooShort { descriptors: 1 }));
    }

    #[test]
    fn head_is_write_only() {
        assert_eq!(parse(&mem(), &[d(0x100, 4, W | N), d(0x104, 4, W)]), Err(RequestError::HeadIsWriteOnly));
    }

    #[test]
    fn status_not_writable() {
        assert_eq!(
            parse(&mem(), &[d(0x100, 4, N), d(0x104, 4, 0)]),
            Err(RequestError::StatusNotWritable { descriptors: 2 })
        );
    }

    #[test]
    fn readable_after_writable() {
        assert_eq!(
            parse(&mem(), &[d(0x100, 4, N), d(0x104, 4, W | N), d(0x108, 4, 0)]),
            Err(RequestError::ReadableAfterWritable { position: 2 })
        );
    }

    #[test]
    fn short_request() {
        assert_eq!(parse(&mem(), &[d(0x100, 3, N), d(0x104, 4, W)]), Err(RequestError::ShortRequest { len: 3 }));
    }

    #[test]
    fn short_status() {
        assert_eq!(parse(&mem(), &[d(0x100, 4, N), d(0x104, 2, W)]), Err(RequestError::ShortStatus { len: 2 }));
    }

    #[test]
    fn unreadable_request() {
        assert!(matches!(
            parse(&mem(), &[d(0xFFFF_0000, 4, N), d(0x104, 4, W)]),
            Err(RequestError::Memory(MemoryError::OutOfRange { .. }))
        ));
    }

    #[test]
    fn unknown_type_keeps_the_status_location() {
        assert_eq!(
            parse(&mem(), &[d(0x200, 4, N), d(0x204, 4, W)]),
            Err(RequestError::UnknownType { request_type: 7, status: vec![(0x204, 4)] })
        );
    }
}
