//! The SQLite VFS: C callbacks over a [`PmemRegion`].
//!
//! Every callback is a thin shim: it checks it runs on the thread that
//! registered the VFS, turns the C arguments into Rust values, calls the
//! [`PmemRegion`] method that does the work, and turns the result into a
//! SQLite result code. No callback lets a panic cross into C: each body runs
//! under `catch_unwind` and a panic becomes `SQLITE_IOERR`.
//!
//! The machine behind the region is not `Send`, so the region lives in a
//! `RefCell` owned by the registering thread. [`PmemVfs`] is not `Send`
//! either; a connection moved to another thread (or opened there by name)
//! gets `SQLITE_MISUSE`/`SQLITE_CANTOPEN`/`SQLITE_IOERR` from every
//! callback instead of touching the region.

use super::region::{PmemRegion, VfsError};
use libsqlite3_sys as ffi;
use pmem_core::rng::SimRng;
use rusqlite::{Connection, OpenFlags};
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::ThreadId;

/// Longest path SQLite may hand the VFS.
const MAX_PATHNAME: c_int = 512;
/// Sector size reported to SQLite.
const SECTOR_SIZE: c_int = 512;
/// Simulated time is logical: `xCurrentTime` reports this fixed Julian day
/// (2024-01-01 00:00 UTC).
const JULIAN_DAY: f64 = 2_460_310.5;

struct VfsShared {
    owner: ThreadId,
    region: RefCell<PmemRegion>,
    rng: RefCell<SimRng>,
    open_files: Cell<usize>,
}

/// What SQLite allocates per open file (`szOsFile` bytes): the base
/// structure first, then a pointer to our handle.
#[repr(C)]
struct PmemFile {
    base: ffi::sqlite3_file,
    handle: *mut FileHandle,
}

enum Target {
    /// A file of the region.
    Slot(usize),
    /// A nameless temporary file: kept in host memory, never durable.
    Temp(Vec<u8>),
}

struct FileHandle {
    shared: *const VfsShared,
    target: Target,
    lock: c_int,
}

static IO_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

/// Runs a callback body; a panic becomes `on_panic`.
fn guard<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(on_panic)
}

/// The shared state of `vfs`, when called on the thread that owns it.
///
/// # Safety
/// `vfs` must be a VFS registered by [`PmemVfs::register`] and not yet freed.
unsafe fn shared_of<'a>(vfs: *mut ffi::sqlite3_vfs) -> Option<&'a VfsShared> {
    // SAFETY: the caller guarantees `vfs` is ours; its pAppData points to a
    // live `VfsShared` (freed only after unregistering, when no file is open).
    let shared = unsafe { ((*vfs).pAppData as *const VfsShared).as_ref() }?;
    // `owner` is never written after construction, so reading it from any
    // thread is race-free; everything else is touched only by the owner.
    (std::thread::current().id() == shared.owner).then_some(shared)
}

/// The handle of an open file and its VFS, when called on the owner thread.
///
/// # Safety
/// `file` must be a file opened by [`x_open`] and not yet closed.
unsafe fn handle_of<'a>(file: *mut ffi::sqlite3_file) -> Option<(&'a VfsShared, &'a mut FileHandle)> {
    // SAFETY: `file` was initialised by x_open as a PmemFile (SQLite passes
    // back the pointer it gave xOpen, of szOsFile = size_of::<PmemFile>()
    // bytes); its handle came from Box::into_raw and lives until x_close.
    let handle = unsafe { (*(file as *mut PmemFile)).handle };
    if handle.is_null() {
        return None;
    }
    // SAFETY: non-null, so a live handle; `shared` is written once at
    // creation, so reading it is race-free, and the VfsShared outlives every
    // open file.
    let shared = unsafe { (*handle).shared.as_ref() }?;
    if std::thread::current().id() != shared.owner {
        return None;
    }
    // SAFETY: on the owner thread, SQLite calls one method of a file at a
    // time and never re-enters, so this is the only reference to the handle.
    let handle = unsafe { handle.as_mut() }?;
    Some((shared, handle))
}

/// The region, when not already borrowed (a re-entrant call is refused).
fn region(shared: &VfsShared) -> Option<std::cell::RefMut<'_, PmemRegion>> {
    shared.region.try_borrow_mut().ok()
}

/// Copies `msg` into a C buffer of `n` bytes, NUL-terminated and truncated.
///
/// # Safety
/// `out` must be valid for `n` bytes of writes.
unsafe fn copy_c_string(msg: &str, n: c_int, out: *mut c_char) {
    if out.is_null() || n <= 0 {
        return;
    }
    let len = msg.len().min(n as usize - 1);
    // SAFETY: `out` holds n bytes (caller); len + 1 <= n.
    unsafe {
        ptr::copy_nonoverlapping(msg.as_ptr() as *const c_char, out, len);
        *out.add(len) = 0;
    }
}

/// The name SQLite passed, as UTF-8.
///
/// # Safety
/// `name` must be null or a NUL-terminated string.
unsafe fn name_of<'a>(name: *const c_char) -> Option<&'a str> {
    if name.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated (SQLite's contract for names).
    unsafe { CStr::from_ptr(name) }.to_str().ok()
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    guard(ffi::SQLITE_CANTOPEN, || {
        let pfile = file as *mut PmemFile;
        // SAFETY: SQLite gives xOpen szOsFile = size_of::<PmemFile>() bytes,
        // suitably aligned; until success it must see pMethods == NULL.
        unsafe {
            ptr::write(pfile, PmemFile { base: ffi::sqlite3_file { pMethods: ptr::null() }, handle: ptr::null_mut() })
        };
        // SAFETY: SQLite calls xOpen with the VFS it was registered with.
        let Some(shared) = (unsafe { shared_of(vfs) }) else { return ffi::SQLITE_MISUSE };
        let target = if name.is_null() {
            Target::Temp(Vec::new())
        } else {
            // SAFETY: a non-null name is NUL-terminated.
            let Some(name) = (unsafe { name_of(name) }) else { return ffi::SQLITE_CANTOPEN };
            let Some(mut region) = region(shared) else { return ffi::SQLITE_CANTOPEN };
            let create = flags & ffi::SQLITE_OPEN_CREATE != 0;
            let exclusive = flags & ffi::SQLITE_OPEN_EXCLUSIVE != 0;
            match region.open(name, create, exclusive) {
                Ok(slot) => Target::Slot(slot),
                Err(e) => {
                    let code = match e {
                        VfsError::FlushFailed { .. } => ffi::SQLITE_IOERR_FSYNC,
                        VfsError::Device(_) => ffi::SQLITE_IOERR,
                        _ => ffi::SQLITE_CANTOPEN,
                    };
                    region.note(e);
                    return code;
                }
            }
        };
        let handle = Box::into_raw(Box::new(FileHandle { shared, target, lock: ffi::SQLITE_LOCK_NONE }));
        // SAFETY: pfile was initialised above; IO_METHODS is a static.
        unsafe {
            (*pfile).handle = handle;
            (*pfile).base.pMethods = &IO_METHODS;
        }
        shared.open_files.set(shared.open_files.get() + 1);
        if !out_flags.is_null() {
            // SAFETY: SQLite passes a valid int pointer or NULL.
            unsafe { *out_flags = flags };
        }
        ffi::SQLITE_OK
    })
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    guard(ffi::SQLITE_IOERR_CLOSE, || {
        // SAFETY: SQLite closes only files our xOpen opened.
        let Some((shared, handle)) = (unsafe { handle_of(file) }) else { return ffi::SQLITE_MISUSE };
        if let (Target::Slot(slot), Some(mut region)) = (&handle.target, region(shared)) {
            region.lock_changed(*slot, handle.lock, ffi::SQLITE_LOCK_NONE);
        }
        // SAFETY: the handle came from Box::into_raw in x_open and is freed
        // exactly once, here; the pointer is cleared so it cannot be reused.
        unsafe {
            let pfile = file as *mut PmemFile;
            drop(Box::from_raw((*pfile).handle));
            (*pfile).handle = ptr::null_mut();
        }
        shared.open_files.set(shared.open_files.get().saturating_sub(1));
        ffi::SQLITE_OK
    })
}

unsafe extern "C" fn x_read(file: *mut ffi::sqlite3_file, buf: *mut c_void, amt: c_int, offset: i64) -> c_int {
    guard(ffi::SQLITE_IOERR_READ, || {
        // SAFETY: an open file of ours.
        let Some((shared, handle)) = (unsafe { handle_of(file) }) else { return ffi::SQLITE_IOERR_READ };
        let (Ok(len), Ok(offset)) = (usize::try_from(amt), u64::try_from(offset)) else {
            return ffi::SQLITE_IOERR_READ;
        };
        // SAFETY: SQLite passes a buffer of `amt` writable bytes.
        let buf = unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, len) };
        let complete = match &handle.target {
            Target::Temp(data) => {
                let avail = data.len().saturating_sub(offset as usize).min(len);
                if avail > 0 {
                    buf[..avail].copy_from_slice(&data[offset as usize..offset as usize + avail]);
                }
                buf[avail..].fill(0);
                avail == len
            }
            Target::Slot(slot) => {
                let Some(mut region) = region(shared) else { return ffi::SQLITE_IOERR_READ };
                match region.read(*slot, offset, buf) {
                    Ok(c) => c,
                    Err(e) => {
                        region.note(e);
                        return ffi::SQLITE_IOERR_READ;
                    }
                }
            }
        };
        if complete {
            ffi::SQLITE_OK
        } else {
            ffi::SQLITE_IOERR_SHORT_READ
        }
    })
}

unsafe extern "C" fn x_write(file: *mut ffi::sqlite3_file, buf: *const c_void, amt: c_int, offset: i64) -> c_int {
    guard(ffi::SQLITE_IOERR_WRITE, || {
        // SAFETY: an open file of ours.
        let Some((shared, handle)) = (unsafe { handle_of(file) }) else { return ffi::SQLITE_IOERR_WRITE };
        let (Ok(len), Ok(offset)) = (usize::try_from(amt), u64::try_from(offset)) else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        // SAFETY: SQLite passes a buffer of `amt` readable bytes.
        let data = unsafe { std::slice::from_raw_parts(buf as *const u8, len) };
        match &mut handle.target {
            Target::Temp(v) => {
                let end = offset as usize + len;
                if v.len() < end {
                    v.resize(end, 0);
                }
                v[offset as usize..end].copy_from_slice(data);
                ffi::SQLITE_OK
            }
            Target::Slot(slot) => {
                let Some(mut region) = region(shared) else { return ffi::SQLITE_IOERR_WRITE };
                match region.write(*slot, offset, data) {
                    Ok(()) => ffi::SQLITE_OK,
                    Err(e) => {
                        let full = matches!(e, VfsError::Full { .. });
                        region.note(e);
                        if full {
                            ffi::SQLITE_FULL
                        } else {
                            ffi::SQLITE_IOERR_WRITE
                        }
                    }
                }
            }
        }
    })
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    guard(ffi::SQLITE_IOERR_TRUNCATE, || {
        // SAFETY: an open file of ours.
        let Some((shared, handle)) = (unsafe { handle_of(file) }) else { return ffi::SQLITE_IOERR_TRUNCATE };
        let Ok(size) = u64::try_from(size) else { return ffi::SQLITE_IOERR_TRUNCATE };
        match &mut handle.target {
            Target::Temp(v) => {
                v.resize(size as usize, 0);
                ffi::SQLITE_OK
            }
            Target::Slot(slot) => {
                let Some(mut region) = region(shared) else { return ffi::SQLITE_IOERR_TRUNCATE };
                match region.truncate(*slot, size) {
                    Ok(()) => ffi::SQLITE_OK,
                    Err(e) => {
                        region.note(e);
                        ffi::SQLITE_IOERR_TRUNCATE
                    }
                }
            }
        }
    })
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, _flags: c_int) -> c_int {
    guard(ffi::SQLITE_IOERR_FSYNC, || {
        // SAFETY: an open file of ours.
        let Some((shared, handle)) = (unsafe { handle_of(file) }) else { return ffi::SQLITE_IOERR_FSYNC };
        let Target::Slot(slot) = handle.target else { return ffi::SQLITE_OK };
        let Some(mut region) = region(shared) else { return ffi::SQLITE_IOERR_FSYNC };
        match region.sync(slot) {
            Ok(()) => ffi::SQLITE_OK,
            Err(e) => {
                region.note(e);
                ffi::SQLITE_IOERR_FSYNC
            }
        }
    })
}

unsafe extern "C" fn x_file_size(file: *mut ffi::sqlite3_file, out: *mut i64) -> c_int {
    guard(ffi::SQLITE_IOERR_FSTAT, || {
        // SAFETY: an open file of ours.
        let Some((shared, handle)) = (unsafe { handle_of(file) }) else { return ffi::SQLITE_IOERR_FSTAT };
        let size = match &handle.target {
            Target::Temp(v) => v.len() as u64,
            Target::Slot(slot) => match region(shared) {
                Some(region) => region.size(*slot),
                None => return ffi::SQLITE_IOERR_FSTAT,
            },
        };
        // SAFETY: SQLite passes a valid pointer for the size.
        unsafe { *out = size as i64 };
        ffi::SQLITE_OK
    })
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    guard(ffi::SQLITE_IOERR_LOCK, || {
        // SAFETY: an open file of ours.
        let Some((shared, handle)) = (unsafe { handle_of(file) }) else { return ffi::SQLITE_IOERR_LOCK };
        if level > handle.lock {
            if let (Target::Slot(slot), Some(mut region)) = (&handle.target, region(shared)) {
                region.lock_changed(*slot, handle.lock, level);
            }
            handle.lock = level;
        }
        ffi::SQLITE_OK
    })
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    guard(ffi::SQLITE_IOERR_UNLOCK, || {
        // SAFETY: an open file of ours.
        let Some((shared, handle)) = (unsafe { handle_of(file) }) else { return ffi::SQLITE_IOERR_UNLOCK };
        if level < handle.lock {
            if let (Target::Slot(slot), Some(mut region)) = (&handle.target, region(shared)) {
                region.lock_changed(*slot, handle.lock, level);
            }
            handle.lock = level;
        }
        ffi::SQLITE_OK
    })
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    guard(ffi::SQLITE_IOERR_CHECKRESERVEDLOCK, || {
        // SAFETY: an open file of ours.
        let Some((shared, handle)) = (unsafe { handle_of(file) }) else {
            return ffi::SQLITE_IOERR_CHECKRESERVEDLOCK;
        };
        let reserved = match (&handle.target, region(shared)) {
            (Target::Slot(slot), Some(region)) => region.reserved(*slot),
            (Target::Slot(_), None) => return ffi::SQLITE_IOERR_CHECKRESERVEDLOCK,
            (Target::Temp(_), _) => handle.lock >= ffi::SQLITE_LOCK_RESERVED,
        };
        // SAFETY: SQLite passes a valid int pointer.
        unsafe { *out = c_int::from(reserved) };
        ffi::SQLITE_OK
    })
}

unsafe extern "C" fn x_file_control(_file: *mut ffi::sqlite3_file, _op: c_int, _arg: *mut c_void) -> c_int {
    ffi::SQLITE_NOTFOUND
}

unsafe extern "C" fn x_sector_size(_file: *mut ffi::sqlite3_file) -> c_int {
    SECTOR_SIZE
}

unsafe extern "C" fn x_device_characteristics(_file: *mut ffi::sqlite3_file) -> c_int {
    // A crash changes only bytes that were being written: a torn page mixes
    // the new version with the one before, which agree outside the write.
    ffi::SQLITE_IOCAP_POWERSAFE_OVERWRITE
}

unsafe extern "C" fn x_delete(vfs: *mut ffi::sqlite3_vfs, name: *const c_char, sync_dir: c_int) -> c_int {
    guard(ffi::SQLITE_IOERR_DELETE, || {
        // SAFETY: SQLite calls with our VFS.
        let Some(shared) = (unsafe { shared_of(vfs) }) else { return ffi::SQLITE_IOERR_DELETE };
        // SAFETY: a NUL-terminated name or NULL.
        let Some(name) = (unsafe { name_of(name) }) else { return ffi::SQLITE_IOERR_DELETE };
        let Some(mut region) = region(shared) else { return ffi::SQLITE_IOERR_DELETE };
        match region.delete(name, sync_dir != 0) {
            Ok(()) => ffi::SQLITE_OK,
            Err(e) => {
                let code = match e {
                    VfsError::NoSuchFile(_) | VfsError::Unsupported { .. } => ffi::SQLITE_IOERR_DELETE_NOENT,
                    VfsError::FlushFailed { .. } => ffi::SQLITE_IOERR_DIR_FSYNC,
                    _ => ffi::SQLITE_IOERR_DELETE,
                };
                region.note(e);
                code
            }
        }
    })
}

unsafe extern "C" fn x_access(vfs: *mut ffi::sqlite3_vfs, name: *const c_char, flags: c_int, out: *mut c_int) -> c_int {
    guard(ffi::SQLITE_IOERR_ACCESS, || {
        // SAFETY: SQLite calls with our VFS.
        let Some(shared) = (unsafe { shared_of(vfs) }) else { return ffi::SQLITE_IOERR_ACCESS };
        // SAFETY: a NUL-terminated name or NULL.
        let name = unsafe { name_of(name) }.unwrap_or("");
        let Some(region) = region(shared) else { return ffi::SQLITE_IOERR_ACCESS };
        let size = region.file_size(name);
        // As the unix VFS: an empty file does not "exist" for SQLite.
        let yes = match flags {
            ffi::SQLITE_ACCESS_EXISTS => size.is_some_and(|s| s > 0),
            _ => size.is_some(),
        };
        // SAFETY: SQLite passes a valid int pointer.
        unsafe { *out = c_int::from(yes) };
        ffi::SQLITE_OK
    })
}

unsafe extern "C" fn x_full_pathname(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n_out: c_int,
    out: *mut c_char,
) -> c_int {
    guard(ffi::SQLITE_CANTOPEN, || {
        // Names in the region are flat: the full name is the name.
        // SAFETY: a NUL-terminated name or NULL.
        let Some(name) = (unsafe { name_of(name) }) else { return ffi::SQLITE_CANTOPEN };
        if name.len() + 1 > n_out.max(0) as usize {
            return ffi::SQLITE_CANTOPEN;
        }
        // SAFETY: SQLite gives n_out bytes at `out`; the name fits.
        unsafe { copy_c_string(name, n_out, out) };
        ffi::SQLITE_OK
    })
}

unsafe extern "C" fn x_dl_open(_vfs: *mut ffi::sqlite3_vfs, _name: *const c_char) -> *mut c_void {
    ptr::null_mut()
}

unsafe extern "C" fn x_dl_error(_vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) {
    // SAFETY: SQLite gives n bytes at `out`.
    unsafe { copy_c_string("extensions cannot be loaded through the pmemlab VFS", n, out) };
}

type DlSym = unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char);

unsafe extern "C" fn x_dl_sym(_vfs: *mut ffi::sqlite3_vfs, _h: *mut c_void, _sym: *const c_char) -> Option<DlSym> {
    None
}

unsafe extern "C" fn x_dl_close(_vfs: *mut ffi::sqlite3_vfs, _h: *mut c_void) {}

unsafe extern "C" fn x_randomness(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    guard(0, || {
        // SAFETY: SQLite calls with our VFS.
        let Some(shared) = (unsafe { shared_of(vfs) }) else { return 0 };
        let Ok(mut rng) = shared.rng.try_borrow_mut() else { return 0 };
        let len = n.max(0) as usize;
        // SAFETY: SQLite gives n writable bytes at `out`.
        let buf = unsafe { std::slice::from_raw_parts_mut(out as *mut u8, len) };
        rng.fill(buf);
        n
    })
}

unsafe extern "C" fn x_sleep(_vfs: *mut ffi::sqlite3_vfs, microseconds: c_int) -> c_int {
    // Time is logical: nothing waits.
    microseconds
}

unsafe extern "C" fn x_current_time(_vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    // SAFETY: SQLite passes a valid pointer.
    unsafe { *out = JULIAN_DAY };
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_current_time_int64(_vfs: *mut ffi::sqlite3_vfs, out: *mut ffi::sqlite3_int64) -> c_int {
    // SAFETY: SQLite passes a valid pointer.
    unsafe { *out = (JULIAN_DAY * 86_400_000.0) as i64 };
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_get_last_error(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    guard(0, || {
        // SAFETY: SQLite calls with our VFS.
        let Some(shared) = (unsafe { shared_of(vfs) }) else { return 0 };
        if let Some(region) = region(shared) {
            // SAFETY: SQLite gives n bytes at `out`.
            unsafe { copy_c_string(region.last_error().unwrap_or(""), n, out) };
        }
        0
    })
}

/// A registered SQLite VFS whose files live in a [`PmemRegion`].
///
/// Dropping it unregisters the VFS. Not `Send`: the region (and its
/// machine) stay on the thread that registered it.
pub struct PmemVfs {
    vfs: *mut ffi::sqlite3_vfs,
    shared: *mut VfsShared,
    name: CString,
    db_name: String,
}

impl std::fmt::Debug for PmemVfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PmemVfs").field("name", &self.name).field("db_name", &self.db_name).finish()
    }
}

impl PmemVfs {
    /// Registers a VFS over `region` under a new name `pmemlab-N` (not the
    /// default VFS). `seed` seeds `xRandomness`.
    pub fn register(region: PmemRegion, seed: u64) -> Result<Self, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = CString::new(format!("pmemlab-{}", NEXT.fetch_add(1, Ordering::Relaxed)))
            .map_err(|e| format!("VFS name: {e}"))?;
        let db_name = region.table().slots[super::table::DB_SLOT].name.clone();
        let shared = Box::into_raw(Box::new(VfsShared {
            owner: std::thread::current().id(),
            region: RefCell::new(region),
            rng: RefCell::new(SimRng::new(seed).derive("sqlite-vfs")),
            open_files: Cell::new(0),
        }));
        let vfs = Box::into_raw(Box::new(ffi::sqlite3_vfs {
            iVersion: 2,
            szOsFile: std::mem::size_of::<PmemFile>() as c_int,
            mxPathname: MAX_PATHNAME,
            pNext: ptr::null_mut(),
            zName: name.as_ptr(),
            pAppData: shared as *mut c_void,
            xOpen: Some(x_open),
            xDelete: Some(x_delete),
            xAccess: Some(x_access),
            xFullPathname: Some(x_full_pathname),
            xDlOpen: Some(x_dl_open),
            xDlError: Some(x_dl_error),
            xDlSym: Some(x_dl_sym),
            xDlClose: Some(x_dl_close),
            xRandomness: Some(x_randomness),
            xSleep: Some(x_sleep),
            xCurrentTime: Some(x_current_time),
            xGetLastError: Some(x_get_last_error),
            xCurrentTimeInt64: Some(x_current_time_int64),
            xSetSystemCall: None,
            xGetSystemCall: None,
            xNextSystemCall: None,
        }));
        // SAFETY: `vfs` is a complete sqlite3_vfs whose name and app data
        // stay alive until it is unregistered (in Drop / into_region).
        let rc = unsafe { ffi::sqlite3_vfs_register(vfs, 0) };
        let this = PmemVfs { vfs, shared, name, db_name };
        if rc != ffi::SQLITE_OK {
            // Not registered: Drop's unregister is a harmless no-op.
            return Err(format!("sqlite3_vfs_register failed with code {rc}"));
        }
        Ok(this)
    }

    /// The name to open connections with.
    pub fn name(&self) -> &str {
        self.name.to_str().unwrap_or("")
    }

    fn shared(&self) -> &VfsShared {
        // SAFETY: `shared` is valid for as long as `self` (freed only in
        // Drop / into_region), and `self` is not Send, so this is the owner
        // thread.
        unsafe { &*self.shared }
    }

    /// Opens the database through this VFS (read-write, created if
    /// absent).
    pub fn open(&self) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Connection::open_with_flags_and_vfs(&self.db_name, flags, self.name())
    }

    /// Runs `f` on the region (refused while a callback is using it).
    pub fn with_region<R>(&self, f: impl FnOnce(&mut PmemRegion) -> R) -> Result<R, String> {
        let mut region = self.shared().region.try_borrow_mut().map_err(|_| "the region is in use".to_string())?;
        Ok(f(&mut region))
    }

    /// Files open through this VFS.
    pub fn open_files(&self) -> usize {
        self.shared().open_files.get()
    }

    /// Unregisters the VFS and gives the region back. Refused (the VFS is
    /// returned) while a file is open, so close every connection first.
    pub fn into_region(self) -> Result<PmemRegion, Self> {
        if self.open_files() > 0 {
            return Err(self);
        }
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: registered by us; after unregistering, no connection uses
        // the VFS (none has a file open), so both boxes can be freed; each
        // pointer came from Box::into_raw and is freed once (Drop is skipped).
        unsafe {
            ffi::sqlite3_vfs_unregister(this.vfs);
            drop(Box::from_raw(this.vfs));
            let shared = Box::from_raw(this.shared);
            drop(ptr::read(&this.name));
            Ok(shared.region.into_inner())
        }
    }
}

impl Drop for PmemVfs {
    fn drop(&mut self) {
        // SAFETY: unregistering a VFS that is (or is not) registered is
        // harmless.
        unsafe { ffi::sqlite3_vfs_unregister(self.vfs) };
        if self.open_files() > 0 {
            // A connection still holds a file: its methods may still reach
            // the VFS and its name, so leak them rather than free them.
            std::mem::forget(std::mem::take(&mut self.name));
            return;
        }
        // SAFETY: both came from Box::into_raw and no open file refers to
        // them; they are freed exactly once.
        unsafe {
            drop(Box::from_raw(self.vfs));
            drop(Box::from_raw(self.shared));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmem_core::event::CrashKind;
    use pmem_core::sim::{DeviceSpec, Machine, SimConfig};

    fn vfs(flush: bool) -> PmemVfs {
        let mut m = Machine::new(SimConfig::default());
        m.add_device(DeviceSpec::new("pmem0", 1 << 20)).unwrap();
        PmemVfs::register(PmemRegion::format(m, "pmem0", "v.db", flush).unwrap(), 7).unwrap()
    }

    #[test]
    fn sqlite_runs_on_the_region_and_every_commit_flushes() {
        let v = vfs(true);
        let conn = v.open().unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=DELETE; PRAGMA synchronous=EXTRA; CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);",
        )
        .unwrap();
        let n: i64 = conn.query_row("SELECT sum(x) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 3);
        let stats = v.with_region(|r| r.stats().clone()).unwrap();
        assert!(stats.flushes >= 4, "{stats:?}");
        assert!(stats.deletes >= 2, "the journal is deleted at each commit: {stats:?}");
        assert_eq!(v.with_region(|r| r.file_size("v.db-journal")).unwrap(), None);
        assert!(v.into_region().is_err(), "a connection is open");
    }

    #[test]
    fn a_failed_flush_makes_commit_fail_with_ioerr_fsync() {
        let v = vfs(true);
        let conn = v.open().unwrap();
        conn.execute_batch("PRAGMA synchronous=EXTRA; CREATE TABLE t(x)").unwrap();
        v.with_region(|r| r.machine_mut().inject_sync_failures("pmem0", 1).unwrap()).unwrap();
        let err = conn.execute("INSERT INTO t VALUES (1)", []).unwrap_err();
        assert_eq!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::SystemIoFailure), "{err}");
        assert_eq!(err.sqlite_error().map(|e| e.extended_code), Some(ffi::SQLITE_IOERR_FSYNC), "{err}");
        assert_eq!(v.with_region(|r| r.stats().failed_flushes).unwrap(), 1);
        assert!(v.with_region(|r| r.last_error().unwrap_or("").contains("xSync returned EIO")).unwrap());
        // With FULL the previous journal's deletion is still pending, and the
        // flush that makes it durable (when the next journal is created)
        // fails: the error reaches SQLite from xOpen.
        conn.execute_batch("PRAGMA synchronous=FULL").unwrap();
        conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
        v.with_region(|r| r.machine_mut().inject_sync_failures("pmem0", 1).unwrap()).unwrap();
        let err = conn.execute("INSERT INTO t VALUES (3)", []).unwrap_err();
        assert_eq!(err.sqlite_error().map(|e| e.extended_code), Some(ffi::SQLITE_IOERR_FSYNC), "{err}");
    }

    #[test]
    fn after_a_power_failure_sqlite_recovers_through_the_vfs() {
        let v = vfs(true);
        let conn = v.open().unwrap();
        conn.execute_batch("PRAGMA synchronous=EXTRA; CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap();
        drop(conn);
        let mut region = v.into_region().unwrap();
        region.machine_mut().crash(CrashKind::PowerFailure).unwrap();
        let v = PmemVfs::register(PmemRegion::mount(region.into_machine(), "pmem0", true).unwrap(), 1).unwrap();
        let conn = v.open().unwrap();
        let n: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
        let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok");
    }

    #[test]
    fn other_threads_are_refused() {
        let v = vfs(true);
        let conn = v.open().unwrap();
        conn.execute_batch("CREATE TABLE t(x)").unwrap();
        let name = v.name().to_string();
        let res = std::thread::spawn(move || {
            Connection::open_with_flags_and_vfs("v.db", OpenFlags::SQLITE_OPEN_READ_WRITE, name.as_str()).map(|_| ())
        })
        .join()
        .unwrap();
        assert!(res.is_err());
    }
}
