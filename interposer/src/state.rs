//! What the interposer knows: the devices (with the shadow of their
//! recorded content and the pages dirtied in the current epoch), the
//! shared mappings of them, which descriptors refer to them, and the
//! program's own SIGSEGV action. All of it behind one spin lock, which the
//! fault handler takes too (a spin lock needs no allocation and is
//! async-signal-safe as long as the holder never faults, and the holder
//! only reads the mappings).

use crate::emit;
use pmem_core::trace::raw::{KIND_HELLO, KIND_STORE, KIND_UNTRACEABLE};
use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The page size the device tracks stores in.
pub const PAGE: usize = 4096;
/// Most devices followed (`pmemlab record` refuses more:
/// `record::MAX_RECORDED_DEVICES`).
pub const MAX_DEVICES: usize = 16;
/// Most shared mappings of the devices at once.
pub const MAX_MAPPINGS: usize = 256;
/// Descriptors below this number are followed by table; the kernel's
/// default limit is 1024.
pub const MAX_FDS: usize = 65536;

/// One device file.
#[derive(Clone, Copy)]
pub struct Device {
    /// `st_dev` of the file.
    pub st_dev: u64,
    /// `st_ino` of the file.
    pub st_ino: u64,
    /// The device's size in bytes.
    pub size: u64,
    /// The file's length as the program left it.
    pub file_len: u64,
    /// The recorded content of the pages dirtied in this epoch, as of
    /// their first write fault (an anonymous mapping of `size` bytes:
    /// memory is used only for pages touched).
    shadow: *mut u8,
    /// One bit a page: dirtied in this epoch.
    bits: *mut u8,
    /// The dirtied pages, in the order of their first fault.
    list: *mut u64,
    /// Entries in `list`.
    dirty: usize,
}

/// One shared mapping of a device.
#[derive(Clone, Copy, Default)]
pub struct Mapping {
    /// In use.
    pub active: bool,
    /// First address.
    pub start: usize,
    /// Length in bytes, a whole number of pages.
    pub len: usize,
    /// The device.
    pub device: usize,
    /// File offset of `start`.
    pub file_off: u64,
    /// The protection the program asked for (the mapping itself lacks
    /// PROT_WRITE except on the pages dirtied in this epoch).
    pub prot: i32,
}

impl Mapping {
    /// Whether `addr` is inside.
    pub fn contains(&self, addr: usize) -> bool {
        self.active && addr >= self.start && addr - self.start < self.len
    }

    /// Whether `[addr, addr+len)` meets the mapping.
    pub fn overlaps(&self, addr: usize, len: usize) -> bool {
        self.active && addr < self.start + self.len && self.start < addr.saturating_add(len)
    }

    /// The address of file page `page` in the mapping, if it maps it.
    pub fn address_of(&self, page: u64) -> Option<usize> {
        let at = page * PAGE as u64;
        (self.active && at >= self.file_off && at - self.file_off < self.len as u64)
            .then(|| self.start + (at - self.file_off) as usize)
    }
}

/// Everything behind the lock.
pub struct State {
    /// Devices in the order pmemlab listed them.
    pub devices: [Device; MAX_DEVICES],
    /// How many.
    pub ndev: usize,
    /// The shared mappings.
    pub maps: [Mapping; MAX_MAPPINGS],
    /// Device index + 1 per descriptor (0: not a device).
    pub fds: [u8; MAX_FDS],
    /// The program's own SIGSEGV action.
    pub program_segv: libc::sigaction,
}

struct Shared(UnsafeCell<State>);

// SAFETY: every access goes through `lock()`, which gives one thread at a
// time a reference.
unsafe impl Sync for Shared {}

const NO_DEVICE: Device = Device {
    st_dev: 0,
    st_ino: 0,
    size: 0,
    file_len: 0,
    shadow: std::ptr::null_mut(),
    bits: std::ptr::null_mut(),
    list: std::ptr::null_mut(),
    dirty: 0,
};

const NO_MAPPING: Mapping = Mapping { active: false, start: 0, len: 0, device: 0, file_off: 0, prot: 0 };

static STATE: Shared = Shared(UnsafeCell::new(State {
    devices: [NO_DEVICE; MAX_DEVICES],
    ndev: 0,
    maps: [NO_MAPPING; MAX_MAPPINGS],
    fds: [0; MAX_FDS],
    // SAFETY: an all-zero sigaction is SIG_DFL with an empty mask.
    program_segv: unsafe { std::mem::zeroed() },
}));
static LOCK: AtomicBool = AtomicBool::new(false);
/// Recording (set at load when the variables are there; cleared when the
/// program did something that cannot be followed).
pub static ENABLED: AtomicBool = AtomicBool::new(false);
/// The SIGSEGV handler is ours (from load on, even once recording stops).
pub static INSTALLED: AtomicBool = AtomicBool::new(false);
/// This process is a forked child of the one that loaded the library:
/// its stores to the inherited mappings are not the recorded program's.
pub static FORKED: AtomicBool = AtomicBool::new(false);
/// A forked child stored through an inherited device mapping.
pub static CHILD_STORED: AtomicBool = AtomicBool::new(false);
/// A store past a device's end (offset + 1; 0: none), noticed by the
/// fault handler and reported at the next sync.
pub static OUT_OF_RANGE: AtomicU64 = AtomicU64::new(0);

/// The state, locked.
pub struct Guard(());

/// Takes the lock (spinning, then yielding).
pub fn lock() -> Guard {
    let mut spins = 0u32;
    while LOCK.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        spins += 1;
        if spins > 64 {
            // SAFETY: sched_yield takes no arguments.
            unsafe {
                libc::syscall(libc::SYS_sched_yield);
            }
        } else {
            std::hint::spin_loop();
        }
    }
    Guard(())
}

impl Drop for Guard {
    fn drop(&mut self) {
        LOCK.store(false, Ordering::Release);
    }
}

impl Deref for Guard {
    type Target = State;
    fn deref(&self) -> &State {
        // SAFETY: the guard holds the lock: no other reference exists.
        unsafe { &*STATE.0.get() }
    }
}

impl DerefMut for Guard {
    fn deref_mut(&mut self) -> &mut State {
        // SAFETY: the guard holds the lock: no other reference exists.
        unsafe { &mut *STATE.0.get() }
    }
}

/// Whether recording is on.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// A new anonymous mapping of `len` bytes (null on failure).
fn anon(len: usize) -> *mut u8 {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    // SAFETY: a fresh anonymous mapping touches no existing memory.
    let p =
        unsafe { libc::syscall(libc::SYS_mmap, 0usize, len.max(1), libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0) };
    if p < 0 && p > -4096 {
        std::ptr::null_mut()
    } else {
        p as *mut u8
    }
}

/// Sets the protection of `[addr, addr+len)` with the system call.
pub fn protect(addr: usize, len: usize, prot: i32) {
    // SAFETY: the range is a mapping of the program's the state follows;
    // changing its protection touches no memory.
    unsafe {
        libc::syscall(libc::SYS_mprotect, addr, len, prot);
    }
}

/// `st_dev` and `st_ino` of an open descriptor.
pub fn identity(fd: i32) -> Option<(u64, u64)> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: `st` is writable memory of the size of `struct stat`.
    let r = unsafe { libc::fstat(fd, st.as_mut_ptr()) };
    // SAFETY: fstat filled it on success.
    (r == 0).then(|| unsafe { st.assume_init() }).map(|s| (s.st_dev, s.st_ino))
}

/// Reads the variables, prepares the devices and the handler, and says
/// hello. Does nothing without both variables.
pub fn init() {
    let (Some(devices), Some(fd)) = (std::env::var_os("PMEMLAB_RECORD_DEVICES"), std::env::var_os("PMEMLAB_RECORD_FD"))
    else {
        return;
    };
    let Some(fd) = fd.to_str().and_then(|s| s.parse::<i32>().ok()) else { return };
    let mut s = lock();
    for line in devices.to_string_lossy().lines() {
        let Some((size, path)) = line.split_once(' ') else { continue };
        let (Ok(size), Ok(c)) = (size.parse::<u64>(), std::ffi::CString::new(path)) else { continue };
        let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
        // SAFETY: `c` is NUL-terminated and `st` is writable memory of the
        // size of `struct stat`.
        if unsafe { libc::stat(c.as_ptr(), st.as_mut_ptr()) } != 0 || s.ndev == MAX_DEVICES {
            continue;
        }
        // SAFETY: stat filled it.
        let st = unsafe { st.assume_init() };
        let pages = size.div_ceil(PAGE as u64) as usize;
        let n = s.ndev;
        s.devices[n] = Device {
            st_dev: st.st_dev,
            st_ino: st.st_ino,
            size,
            file_len: st.st_size as u64,
            shadow: anon(pages * PAGE),
            bits: anon(pages.div_ceil(8)),
            list: anon(pages * 8).cast(),
            dirty: 0,
        };
        s.ndev += 1;
    }
    emit::FD.store(fd, Ordering::Relaxed);
    for d in 0..1024 {
        s.register_fd(d);
    }
    crate::fault::install(&mut s);
    // SAFETY: registers a plain `extern "C" fn` that lives as long as the
    // process.
    unsafe { libc::pthread_atfork(None, None, Some(on_fork_child)) };
    ENABLED.store(true, Ordering::Relaxed);
    emit::record(KIND_HELLO, 0, 0, 0, b"");
}

impl State {
    /// The device `fd` refers to.
    pub fn device_of(&self, fd: i32) -> Option<usize> {
        let i = usize::try_from(fd).ok().filter(|&i| i < MAX_FDS)?;
        self.fds[i].checked_sub(1).map(usize::from)
    }

    /// The device with this identity.
    pub fn device_with(&self, id: (u64, u64)) -> Option<usize> {
        self.devices[..self.ndev].iter().position(|d| (d.st_dev, d.st_ino) == id)
    }

    /// Looks at what `fd` refers to now and notes it.
    pub fn register_fd(&mut self, fd: i32) {
        let Some(i) = usize::try_from(fd).ok().filter(|&i| i < MAX_FDS) else { return };
        let dev = identity(fd).and_then(|id| self.device_with(id));
        self.fds[i] = dev.map(|d| d as u8 + 1).unwrap_or(0);
    }

    /// The first write fault of file page `page` of device `d` in this
    /// epoch, at `addr` in a mapping: keeps its content as the shadow.
    /// Async-signal-safe.
    pub fn note_dirty(&mut self, d: usize, page: u64, addr: usize) {
        let dev = &mut self.devices[d];
        if dev.shadow.is_null() || dev.bits.is_null() || dev.list.is_null() {
            return;
        }
        let (byte, bit) = ((page / 8) as usize, 1u8 << (page % 8));
        // SAFETY: `page` is below the device's page count (the caller
        // checked the offset against the size): the bitmap, the list and
        // the shadow have room for it; `addr` is a readable page of a
        // mapping of the file.
        unsafe {
            if *dev.bits.add(byte) & bit != 0 {
                return;
            }
            *dev.bits.add(byte) |= bit;
            *dev.list.add(dev.dirty) = page;
            std::ptr::copy_nonoverlapping(addr as *const u8, dev.shadow.add(page as usize * PAGE), PAGE);
        }
        dev.dirty += 1;
    }

    /// Records the stores made through the mappings of device `d` since its
    /// last sync: every page dirtied is protected again, then diffed
    /// against its shadow; each run of changed bytes becomes a store.
    pub fn sync_device(&mut self, d: usize) {
        self.report_out_of_range();
        let dirty = self.devices[d].dirty;
        for i in 0..dirty {
            // SAFETY: the first `dirty` entries of the list are written.
            let page = unsafe { *self.devices[d].list.add(i) };
            let mut source = None;
            for m in self.maps.iter().filter(|m| m.device == d) {
                if let Some(addr) = m.address_of(page) {
                    if m.prot & libc::PROT_WRITE != 0 {
                        protect(addr, PAGE, m.prot & !libc::PROT_WRITE);
                    }
                    source = source.or(Some(addr));
                }
            }
            if let Some(addr) = source {
                self.diff_page(d, page, addr);
            }
            let dev = &mut self.devices[d];
            // SAFETY: as in `note_dirty`.
            unsafe { *dev.bits.add((page / 8) as usize) &= !(1u8 << (page % 8)) };
        }
        self.devices[d].dirty = 0;
    }

    fn diff_page(&mut self, d: usize, page: u64, addr: usize) {
        let mut now = [0u8; PAGE];
        let dev = &self.devices[d];
        // SAFETY: `addr` is a readable page of a mapping of the file, the
        // shadow has room for `page`; other threads may store to the page
        // meanwhile (it is protected now, they wait in the fault handler).
        let old = unsafe {
            std::ptr::copy_nonoverlapping(addr as *const u8, now.as_mut_ptr(), PAGE);
            std::slice::from_raw_parts_mut(dev.shadow.add(page as usize * PAGE), PAGE)
        };
        let base = page * PAGE as u64;
        let limit = (dev.size - base).min(PAGE as u64) as usize;
        let mut i = 0;
        while i < limit {
            if now[i] == old[i] {
                i += 1;
                continue;
            }
            let start = i;
            let mut end = i + 1;
            let mut j = end;
            // Runs closer than 16 bytes make one store.
            while j < limit && j - end < 16 {
                if now[j] != old[j] {
                    end = j + 1;
                }
                j += 1;
            }
            emit::record(KIND_STORE, d as u32, base + start as u64, 0, &now[start..end]);
            i = end;
        }
        old.copy_from_slice(&now);
    }

    /// Records every device's pending stores.
    pub fn sync_all(&mut self) {
        for d in 0..self.ndev {
            self.sync_device(d);
        }
    }

    /// A store by a write call of `bytes` at `offset` of device `d`.
    pub fn record_write(&mut self, d: usize, offset: u64, bytes: &[u8]) {
        for (k, chunk) in bytes.chunks(1 << 30).enumerate() {
            emit::record(KIND_STORE, d as u32, offset + (k as u64) * (1 << 30), 1, chunk);
        }
        let dev = &mut self.devices[d];
        dev.file_len = dev.file_len.max(offset + bytes.len() as u64);
    }

    fn report_out_of_range(&mut self) {
        let at = OUT_OF_RANGE.swap(0, Ordering::Relaxed);
        if at != 0 {
            let mut msg = [0u8; 96];
            let text = b"the program stored through a mapping past the end of a device, at file offset ";
            let n = text.len();
            msg[..n].copy_from_slice(text);
            let digits = decimal(at - 1, &mut msg[n..]);
            self.untraceable_bytes(&msg[..n + digits]);
        }
    }

    /// The program did something the recording cannot follow: says so in
    /// the stream, gives every mapping back its protection and stops.
    pub fn untraceable(&mut self, why: &str) {
        self.untraceable_bytes(why.as_bytes());
    }

    fn untraceable_bytes(&mut self, why: &[u8]) {
        emit::record(KIND_UNTRACEABLE, 0, 0, 0, why);
        ENABLED.store(false, Ordering::Relaxed);
        for m in self.maps.iter_mut().filter(|m| m.active) {
            protect(m.start, m.len, m.prot);
            m.active = false;
        }
    }

    /// A free slot for a mapping.
    pub fn free_mapping(&mut self) -> Option<&mut Mapping> {
        self.maps.iter_mut().find(|m| !m.active)
    }
}

/// Writes `n` in decimal into `out`; returns the digits written.
fn decimal(mut n: u64, out: &mut [u8]) -> usize {
    let mut tmp = [0u8; 20];
    let mut k = 0;
    loop {
        tmp[k] = b'0' + (n % 10) as u8;
        k += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let k = k.min(out.len());
    for i in 0..k {
        out[i] = tmp[k - 1 - i];
    }
    k
}

/// In a forked child: the state is the parent's copy; the lock is free
/// (only the forking thread exists, and it held no lock: fork is not
/// called inside a hook).
extern "C" fn on_fork_child() {
    FORKED.store(true, Ordering::Relaxed);
    LOCK.store(false, Ordering::Release);
}

/// Records the pending stores of every device (at exit). A forked child
/// records none (the pages noted are its parent's), but says so when it
/// stored through an inherited mapping itself.
pub fn record_pending_everywhere() {
    if !enabled() {
        return;
    }
    let mut s = lock();
    if !FORKED.load(Ordering::Relaxed) {
        s.sync_all();
    } else if CHILD_STORED.load(Ordering::Relaxed) {
        s.untraceable("a forked child process stored through a shared mapping of a device it inherited");
    }
}
