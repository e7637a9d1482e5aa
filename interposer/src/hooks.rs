//! The functions the program calls instead of the C library's: each
//! passes the call on and records what it does to a device file.
//!
//! Before a write call on a device, the stores made through its mappings
//! are recorded first, so the recorded order is the program's.

use crate::emit;
use crate::real;
use crate::state::{enabled, lock, State, INSTALLED, PAGE};
use libc::{c_char, c_int, c_uint, c_void, iovec, off_t, size_t, ssize_t};
use pmem_core::trace::raw::{KIND_FLUSH, KIND_MAP_SYNC, KIND_TRUNCATE, KIND_ZERO};
use std::sync::atomic::Ordering;

/// The device `fd` refers to, when recording.
fn device_fd(fd: c_int) -> Option<usize> {
    if !enabled() {
        return None;
    }
    lock().device_of(fd)
}

/// The offset a `write(2)` on `fd` stores at.
fn current_offset(fd: c_int) -> u64 {
    // SAFETY: fcntl(F_GETFL), fstat and lseek read the descriptor's state;
    // `st` is writable memory of the size of `struct stat`.
    unsafe {
        if libc::fcntl(fd, libc::F_GETFL) & libc::O_APPEND != 0 {
            let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
            if libc::fstat(fd, st.as_mut_ptr()) == 0 {
                return st.assume_init().st_size as u64;
            }
        }
        libc::lseek(fd, 0, libc::SEEK_CUR).max(0) as u64
    }
}

/// Whether a write on `fd` returns only once its data is durable: the
/// descriptor was opened with `O_DSYNC` or `O_SYNC` (which includes it), or
/// `pwritev2` was given `RWF_DSYNC`/`RWF_SYNC` (`rwf`).
fn synchronous_write(fd: c_int, rwf: c_int) -> bool {
    // SAFETY: fcntl(F_GETFL) only reads the descriptor's flags.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    rwf & (libc::RWF_DSYNC | libc::RWF_SYNC) != 0 || (fl != -1 && fl & libc::O_DSYNC != 0)
}

/// The flush call code (`raw::flush_call_name`) of a synchronous write.
const HOW_SYNC_WRITE: u64 = 6;

/// Runs `call` (a write call of `fd` on device `d`, `rwf` its `pwritev2`
/// flags or 0), after recording the pending mapping stores; records what it
/// wrote at `offset` (None: the descriptor's current offset) from the
/// buffers `iov`, and a flush after it when the write was synchronous.
fn write_call(
    d: usize,
    fd: c_int,
    offset: Option<u64>,
    iov: &[iovec],
    rwf: c_int,
    call: impl FnOnce() -> ssize_t,
) -> ssize_t {
    let mut s = lock();
    s.sync_device(d);
    let at = offset.unwrap_or_else(|| current_offset(fd));
    let synchronous = synchronous_write(fd, rwf);
    let r = call();
    if r > 0 {
        let mut left = r as usize;
        let mut off = at;
        for v in iov {
            let n = v.iov_len.min(left);
            if n == 0 {
                break;
            }
            // SAFETY: the kernel just read `n` bytes of this buffer, which
            // the program passed for the call.
            let bytes = unsafe { std::slice::from_raw_parts(v.iov_base as *const u8, n) };
            s.record_write(d, off, bytes);
            off += n as u64;
            left -= n;
        }
        if synchronous {
            emit::record(KIND_FLUSH, d as u32, HOW_SYNC_WRITE, 0, b"");
        }
    }
    r
}

fn one(buf: *const c_void, n: size_t) -> [iovec; 1] {
    [iovec { iov_base: buf as *mut c_void, iov_len: n }]
}

fn iovs<'a>(iov: *const iovec, n: c_int) -> &'a [iovec] {
    if iov.is_null() || n <= 0 {
        return &[];
    }
    // SAFETY: the program passed `n` iovecs for the call.
    unsafe { std::slice::from_raw_parts(iov, n as usize) }
}

#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    match device_fd(fd) {
        // SAFETY (both): the program's own arguments, passed on.
        Some(d) => write_call(d, fd, None, &one(buf, n), 0, || unsafe { real::write(fd, buf, n) }),
        None => unsafe { real::write(fd, buf, n) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn pwrite(fd: c_int, buf: *const c_void, n: size_t, off: off_t) -> ssize_t {
    match device_fd(fd) {
        // SAFETY (both): the program's own arguments, passed on.
        Some(d) => write_call(d, fd, Some(off as u64), &one(buf, n), 0, || unsafe { real::pwrite(fd, buf, n, off) }),
        None => unsafe { real::pwrite(fd, buf, n, off) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn pwrite64(fd: c_int, buf: *const c_void, n: size_t, off: off_t) -> ssize_t {
    match device_fd(fd) {
        // SAFETY (both): the program's own arguments, passed on.
        Some(d) => write_call(d, fd, Some(off as u64), &one(buf, n), 0, || unsafe { real::pwrite64(fd, buf, n, off) }),
        None => unsafe { real::pwrite64(fd, buf, n, off) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    match device_fd(fd) {
        // SAFETY (both): the program's own arguments, passed on.
        Some(d) => write_call(d, fd, None, iovs(iov, n), 0, || unsafe { real::writev(fd, iov, n) }),
        None => unsafe { real::writev(fd, iov, n) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn pwritev(fd: c_int, iov: *const iovec, n: c_int, off: off_t) -> ssize_t {
    match device_fd(fd) {
        // SAFETY (both): the program's own arguments, passed on.
        Some(d) => write_call(d, fd, Some(off as u64), iovs(iov, n), 0, || unsafe { real::pwritev(fd, iov, n, off) }),
        None => unsafe { real::pwritev(fd, iov, n, off) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn pwritev64(fd: c_int, iov: *const iovec, n: c_int, off: off_t) -> ssize_t {
    match device_fd(fd) {
        // SAFETY (both): the program's own arguments, passed on.
        Some(d) => write_call(d, fd, Some(off as u64), iovs(iov, n), 0, || unsafe { real::pwritev64(fd, iov, n, off) }),
        None => unsafe { real::pwritev64(fd, iov, n, off) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn pwritev2(fd: c_int, iov: *const iovec, n: c_int, off: off_t, flags: c_int) -> ssize_t {
    let at = (off >= 0).then_some(off as u64);
    match device_fd(fd) {
        // SAFETY (both): the program's own arguments, passed on.
        Some(d) => write_call(d, fd, at, iovs(iov, n), flags, || unsafe { real::pwritev2(fd, iov, n, off, flags) }),
        None => unsafe { real::pwritev2(fd, iov, n, off, flags) },
    }
}

/// What a program built with 64-bit file offsets calls for `pwritev2` (glibc
/// redirects the name), Python's `os.pwritev` with flags among them.
#[no_mangle]
pub unsafe extern "C" fn pwritev64v2(fd: c_int, iov: *const iovec, n: c_int, off: off_t, flags: c_int) -> ssize_t {
    let at = (off >= 0).then_some(off as u64);
    match device_fd(fd) {
        // SAFETY (both): the program's own arguments, passed on.
        Some(d) => write_call(d, fd, at, iovs(iov, n), flags, || unsafe { real::pwritev64v2(fd, iov, n, off, flags) }),
        None => unsafe { real::pwritev64v2(fd, iov, n, off, flags) },
    }
}

/// Runs a truncation of device `d` to `len` bytes and records it.
fn truncate_call(d: usize, len: off_t, call: impl FnOnce() -> c_int) -> c_int {
    let mut s = lock();
    s.sync_device(d);
    let r = call();
    if r == 0 {
        emit::record(KIND_TRUNCATE, d as u32, len as u64, 0, b"");
        s.devices[d].file_len = len as u64;
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn ftruncate(fd: c_int, len: off_t) -> c_int {
    match device_fd(fd) {
        // SAFETY (both): the program's own arguments, passed on.
        Some(d) => truncate_call(d, len, || unsafe { real::ftruncate(fd, len) }),
        None => unsafe { real::ftruncate(fd, len) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn ftruncate64(fd: c_int, len: off_t) -> c_int {
    match device_fd(fd) {
        // SAFETY (both): the program's own arguments, passed on.
        Some(d) => truncate_call(d, len, || unsafe { real::ftruncate64(fd, len) }),
        None => unsafe { real::ftruncate64(fd, len) },
    }
}

/// Runs an fallocate of device `d` and records what it changes.
fn fallocate_call(d: usize, mode: c_int, off: off_t, len: off_t, call: impl FnOnce() -> c_int) -> c_int {
    let mut s = lock();
    s.sync_device(d);
    if mode & (libc::FALLOC_FL_COLLAPSE_RANGE | libc::FALLOC_FL_INSERT_RANGE) != 0 {
        s.untraceable("the program moved data inside a device file with fallocate (collapse or insert range)");
        return call();
    }
    let r = call();
    if r != 0 {
        return r;
    }
    let (off, len) = (off as u64, len as u64);
    if mode & (libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_ZERO_RANGE) != 0 {
        emit::record(KIND_ZERO, d as u32, off, len, b"");
    } else if mode & libc::FALLOC_FL_KEEP_SIZE == 0 && off + len > s.devices[d].file_len {
        emit::record(KIND_TRUNCATE, d as u32, off + len, 0, b"");
        s.devices[d].file_len = off + len;
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn fallocate(fd: c_int, mode: c_int, off: off_t, len: off_t) -> c_int {
    match device_fd(fd) {
        // SAFETY (both): the program's own arguments, passed on.
        Some(d) => fallocate_call(d, mode, off, len, || unsafe { real::fallocate(fd, mode, off, len) }),
        None => unsafe { real::fallocate(fd, mode, off, len) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn fallocate64(fd: c_int, mode: c_int, off: off_t, len: off_t) -> c_int {
    match device_fd(fd) {
        // SAFETY (both): the program's own arguments, passed on.
        Some(d) => fallocate_call(d, mode, off, len, || unsafe { real::fallocate64(fd, mode, off, len) }),
        None => unsafe { real::fallocate64(fd, mode, off, len) },
    }
}

/// Runs an open of `path` (relative to `dir`) and follows the descriptor
/// if it is a device; `O_TRUNC` on a device is recorded.
fn open_call(dir: c_int, path: *const c_char, flags: c_int, call: impl FnOnce() -> c_int) -> c_int {
    if !enabled() {
        return call();
    }
    let truncates = flags & libc::O_TRUNC != 0 && flags & libc::O_ACCMODE != libc::O_RDONLY;
    let mut s = lock();
    let before = if truncates { path_device(&s, dir, path) } else { None };
    if let Some(d) = before {
        s.sync_device(d);
    }
    let fd = call();
    if fd >= 0 {
        s.register_fd(fd);
        if let Some(d) = before.filter(|_| s.device_of(fd).is_some()) {
            emit::record(KIND_TRUNCATE, d as u32, 0, 0, b"");
            s.devices[d].file_len = 0;
        }
    }
    fd
}

/// The device at `path` (relative to `dir`), if it exists.
fn path_device(s: &State, dir: c_int, path: *const c_char) -> Option<usize> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: `path` is the program's NUL-terminated path; `st` is writable
    // memory of the size of `struct stat`.
    let r = unsafe { libc::fstatat(dir, path, st.as_mut_ptr(), 0) };
    // SAFETY: fstatat filled it on success.
    let st = (r == 0).then(|| unsafe { st.assume_init() })?;
    s.device_with((st.st_dev, st.st_ino))
}

#[no_mangle]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: the program's own arguments, passed on.
    open_call(libc::AT_FDCWD, path, flags, || unsafe { real::open(path, flags, mode) })
}

#[no_mangle]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: the program's own arguments, passed on.
    open_call(libc::AT_FDCWD, path, flags, || unsafe { real::open64(path, flags, mode) })
}

#[no_mangle]
pub unsafe extern "C" fn openat(dir: c_int, path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: the program's own arguments, passed on.
    open_call(dir, path, flags, || unsafe { real::openat(dir, path, flags, mode) })
}

#[no_mangle]
pub unsafe extern "C" fn openat64(dir: c_int, path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: the program's own arguments, passed on.
    open_call(dir, path, flags, || unsafe { real::openat64(dir, path, flags, mode) })
}

#[no_mangle]
pub unsafe extern "C" fn creat(path: *const c_char, mode: c_uint) -> c_int {
    let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
    // SAFETY: the program's own arguments, passed on.
    open_call(libc::AT_FDCWD, path, flags, || unsafe { real::creat(path, mode) })
}

#[no_mangle]
pub unsafe extern "C" fn creat64(path: *const c_char, mode: c_uint) -> c_int {
    let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
    // SAFETY: the program's own arguments, passed on.
    open_call(libc::AT_FDCWD, path, flags, || unsafe { real::creat64(path, mode) })
}

#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if enabled() {
        if fd == emit::FD.load(Ordering::Relaxed) {
            // The recording's own descriptor stays open (a program closing
            // every descriptor it did not open must not end the trace).
            return 0;
        }
        let mut s = lock();
        if let Some(i) = usize::try_from(fd).ok().filter(|&i| i < s.fds.len()) {
            s.fds[i] = 0;
        }
    }
    // SAFETY: the program's own argument, passed on.
    unsafe { real::close(fd) }
}

fn dup_call(to: c_int, call: impl FnOnce() -> c_int) -> c_int {
    if enabled() && to >= 0 && to == emit::FD.load(Ordering::Relaxed) {
        lock().untraceable("the program replaced the recording's descriptor with dup2");
    }
    let fd = call();
    if fd >= 0 && enabled() {
        lock().register_fd(fd);
    }
    fd
}

#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    // SAFETY: the program's own argument, passed on.
    dup_call(-1, || unsafe { real::dup(fd) })
}

#[no_mangle]
pub unsafe extern "C" fn dup2(fd: c_int, to: c_int) -> c_int {
    // SAFETY: the program's own arguments, passed on.
    dup_call(to, || unsafe { real::dup2(fd, to) })
}

#[no_mangle]
pub unsafe extern "C" fn dup3(fd: c_int, to: c_int, flags: c_int) -> c_int {
    // SAFETY: the program's own arguments, passed on.
    dup_call(to, || unsafe { real::dup3(fd, to, flags) })
}

/// Runs a flush call of the devices `which` (by index) and records a flush
/// of each when it succeeds.
fn flush_call(which: &[usize], how: u64, call: impl FnOnce() -> c_int) -> c_int {
    let mut s = lock();
    for &d in which {
        s.sync_device(d);
    }
    let r = call();
    if r == 0 {
        for &d in which {
            emit::record(KIND_FLUSH, d as u32, how, 0, b"");
        }
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn fsync(fd: c_int) -> c_int {
    match device_fd(fd) {
        // SAFETY (both): the program's own argument, passed on.
        Some(d) => flush_call(&[d], 0, || unsafe { real::fsync(fd) }),
        None => unsafe { real::fsync(fd) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn fdatasync(fd: c_int) -> c_int {
    match device_fd(fd) {
        // SAFETY (both): the program's own argument, passed on.
        Some(d) => flush_call(&[d], 1, || unsafe { real::fdatasync(fd) }),
        None => unsafe { real::fdatasync(fd) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn sync_file_range(fd: c_int, off: off_t, n: off_t, flags: c_uint) -> c_int {
    match device_fd(fd) {
        // SAFETY (both): the program's own arguments, passed on.
        Some(d) => flush_call(&[d], 3, || unsafe { real::sync_file_range(fd, off, n, flags) }),
        None => unsafe { real::sync_file_range(fd, off, n, flags) },
    }
}

fn all_devices() -> Vec<usize> {
    if !enabled() {
        return Vec::new();
    }
    (0..lock().ndev).collect()
}

#[no_mangle]
pub unsafe extern "C" fn syncfs(fd: c_int) -> c_int {
    // SAFETY: the program's own argument, passed on.
    flush_call(&all_devices(), 4, || unsafe { real::syncfs(fd) })
}

#[no_mangle]
pub unsafe extern "C" fn sync() {
    flush_call(&all_devices(), 5, || {
        // SAFETY: sync takes no arguments.
        unsafe { real::sync() };
        0
    });
}

#[no_mangle]
pub unsafe extern "C" fn msync(addr: *mut c_void, len: size_t, flags: c_int) -> c_int {
    let d = if enabled() && flags & libc::MS_SYNC != 0 {
        lock().maps.iter().find(|m| m.overlaps(addr as usize, len)).map(|m| m.device)
    } else {
        None
    };
    match d {
        // SAFETY (both): the program's own arguments, passed on.
        Some(d) => flush_call(&[d], 2, || unsafe { real::msync(addr, len, flags) }),
        None => unsafe { real::msync(addr, len, flags) },
    }
}

/// Mapping flags the recording follows on a shared mapping of a device.
const FOLLOWED_FLAGS: c_int = libc::MAP_SHARED
    | libc::MAP_SHARED_VALIDATE
    | libc::MAP_FIXED
    | libc::MAP_FIXED_NOREPLACE
    | libc::MAP_POPULATE
    | libc::MAP_NORESERVE
    | libc::MAP_NONBLOCK
    | libc::MAP_LOCKED
    | libc::MAP_DENYWRITE
    | libc::MAP_EXECUTABLE;

/// Drops the mappings inside `[addr, addr+len)` (recording their stores
/// first); one that the range cuts makes the recording untraceable.
fn forget_range(s: &mut State, addr: usize, len: usize, what: &str) {
    let len = len.div_ceil(PAGE) * PAGE;
    for i in 0..s.maps.len() {
        let m = s.maps[i];
        if !m.overlaps(addr, len) {
            continue;
        }
        s.sync_device(m.device);
        if addr <= m.start && m.start + m.len <= addr + len {
            s.maps[i].active = false;
        } else {
            s.untraceable(what);
            return;
        }
    }
}

/// A mapping call of device `d`.
fn map_device(
    d: usize,
    len: size_t,
    prot: c_int,
    flags: c_int,
    off: off_t,
    call: impl FnOnce(c_int) -> *mut c_void,
) -> *mut c_void {
    let mut s = lock();
    if flags & libc::MAP_SYNC != 0 {
        emit::record(KIND_MAP_SYNC, d as u32, off as u64, len as u64, b"");
        // SAFETY: errno is this thread's.
        unsafe { *libc::__errno_location() = libc::EOPNOTSUPP };
        return libc::MAP_FAILED;
    }
    if flags & 0x3 == libc::MAP_PRIVATE {
        return call(prot);
    }
    if flags & !FOLLOWED_FLAGS != 0 {
        s.untraceable("the program mapped a device file with mapping flags the recording does not follow");
        return call(prot);
    }
    let p = call(prot & !libc::PROT_WRITE);
    if p == libc::MAP_FAILED {
        return p;
    }
    let m = crate::state::Mapping {
        active: true,
        start: p as usize,
        len: len.div_ceil(PAGE) * PAGE,
        device: d,
        file_off: off as u64,
        prot,
    };
    match s.free_mapping() {
        Some(slot) => *slot = m,
        None => {
            crate::state::protect(m.start, m.len, prot);
            s.untraceable("the program keeps more shared mappings of the devices than the recording follows (256)");
        }
    }
    p
}

fn mmap_call(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
    call: impl FnOnce(c_int) -> *mut c_void,
) -> *mut c_void {
    if !enabled() {
        return call(prot);
    }
    if flags & libc::MAP_FIXED != 0 {
        forget_range(&mut lock(), addr as usize, len, "the program mapped over part of a device mapping");
    }
    match (flags & libc::MAP_ANONYMOUS == 0).then(|| device_fd(fd)).flatten() {
        Some(d) => map_device(d, len, prot, flags, off, call),
        None => call(prot),
    }
}

#[no_mangle]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    // SAFETY: the program's own arguments, passed on (with PROT_WRITE
    // taken away from a device mapping).
    mmap_call(addr, len, prot, flags, fd, off, |p| unsafe { real::mmap(addr, len, p, flags, fd, off) })
}

#[no_mangle]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    // SAFETY: as for mmap.
    mmap_call(addr, len, prot, flags, fd, off, |p| unsafe { real::mmap64(addr, len, p, flags, fd, off) })
}

#[no_mangle]
pub unsafe extern "C" fn munmap(addr: *mut c_void, len: size_t) -> c_int {
    if enabled() {
        forget_range(&mut lock(), addr as usize, len, "the program unmapped part of a device mapping");
    }
    // SAFETY: the program's own arguments, passed on.
    unsafe { real::munmap(addr, len) }
}

#[no_mangle]
pub unsafe extern "C" fn mremap(
    addr: *mut c_void,
    old: size_t,
    new: size_t,
    flags: c_int,
    to: *mut c_void,
) -> *mut c_void {
    if enabled() {
        let mut s = lock();
        if s.maps.iter().any(|m| m.overlaps(addr as usize, old)) {
            s.untraceable(
                "the program moved or resized a device mapping with mremap, which the recording does not follow",
            );
        }
    }
    // SAFETY: the program's own arguments, passed on.
    unsafe { real::mremap(addr, old, new, flags, to) }
}

#[no_mangle]
pub unsafe extern "C" fn mprotect(addr: *mut c_void, len: size_t, prot: c_int) -> c_int {
    if enabled() {
        let mut s = lock();
        let len = len.div_ceil(PAGE) * PAGE;
        if let Some(i) = s.maps.iter().position(|m| m.overlaps(addr as usize, len)) {
            let m = s.maps[i];
            if m.start == addr as usize && m.len == len {
                s.sync_device(m.device);
                s.maps[i].prot = prot;
                // SAFETY: the program's own range.
                return unsafe { real::mprotect(addr, len, prot & !libc::PROT_WRITE) };
            }
            s.untraceable("the program changed the protection of part of a device mapping");
        }
    }
    // SAFETY: the program's own arguments, passed on.
    unsafe { real::mprotect(addr, len, prot) }
}

#[no_mangle]
pub unsafe extern "C" fn sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int {
    if sig != libc::SIGSEGV || !INSTALLED.load(Ordering::Relaxed) {
        // SAFETY: the program's own arguments, passed on.
        return unsafe { real::sigaction(sig, act, old) };
    }
    // The program's SIGSEGV action is kept and called for faults that are
    // not the recording's; the process keeps the recording's handler.
    let mut s = lock();
    // SAFETY: the program passes valid pointers (or null).
    unsafe {
        if !old.is_null() {
            *old = s.program_segv;
        }
        if !act.is_null() {
            s.program_segv = *act;
        }
    }
    0
}

#[no_mangle]
pub unsafe extern "C" fn signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    if sig != libc::SIGSEGV || !INSTALLED.load(Ordering::Relaxed) {
        // SAFETY: the program's own arguments, passed on.
        return unsafe { real::signal(sig, handler) };
    }
    let mut s = lock();
    let old = s.program_segv.sa_sigaction;
    // SAFETY: an all-zero sigaction is valid; the handler is set next.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = handler;
    act.sa_flags = libc::SA_RESTART;
    s.program_segv = act;
    old
}

#[no_mangle]
pub unsafe extern "C" fn _exit(status: c_int) -> ! {
    crate::state::record_pending_everywhere();
    // SAFETY: ends the process.
    unsafe { real::_exit(status) };
    unreachable!("_exit returned")
}

#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn _Exit(status: c_int) -> ! {
    crate::state::record_pending_everywhere();
    // SAFETY: ends the process.
    unsafe { real::_Exit(status) };
    unreachable!("_Exit returned")
}

/// Before removing or renaming paths: a device file among them makes the
/// recording untraceable (a device is followed by its inode; a new file at
/// its path would not be).
fn names_call(paths: &[(c_int, *const c_char)], call: impl FnOnce() -> c_int) -> c_int {
    if enabled() {
        let mut s = lock();
        if paths.iter().any(|&(dir, p)| path_device(&s, dir, p).is_some()) {
            s.untraceable("the program removed or renamed a device file, which the recording does not follow");
        }
    }
    call()
}

#[no_mangle]
pub unsafe extern "C" fn unlink(path: *const c_char) -> c_int {
    // SAFETY: the program's own argument, passed on.
    names_call(&[(libc::AT_FDCWD, path)], || unsafe { real::unlink(path) })
}

#[no_mangle]
pub unsafe extern "C" fn unlinkat(dir: c_int, path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: the program's own arguments, passed on.
    names_call(&[(dir, path)], || unsafe { real::unlinkat(dir, path, flags) })
}

#[no_mangle]
pub unsafe extern "C" fn rename(old: *const c_char, new: *const c_char) -> c_int {
    let paths = [(libc::AT_FDCWD, old), (libc::AT_FDCWD, new)];
    // SAFETY: the program's own arguments, passed on.
    names_call(&paths, || unsafe { real::rename(old, new) })
}

#[no_mangle]
pub unsafe extern "C" fn renameat(od: c_int, old: *const c_char, nd: c_int, new: *const c_char) -> c_int {
    // SAFETY: the program's own arguments, passed on.
    names_call(&[(od, old), (nd, new)], || unsafe { real::renameat(od, old, nd, new) })
}

#[no_mangle]
pub unsafe extern "C" fn renameat2(
    od: c_int,
    old: *const c_char,
    nd: c_int,
    new: *const c_char,
    flags: c_uint,
) -> c_int {
    // SAFETY: the program's own arguments, passed on.
    names_call(&[(od, old), (nd, new)], || unsafe { real::renameat2(od, old, nd, new, flags) })
}
