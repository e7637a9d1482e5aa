//! The real functions behind the hooks, found once with
//! `dlsym(RTLD_NEXT, …)`.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The address of the next definition of `name` (NUL-terminated) after
/// this library, cached in `slot`. Ends the process with a message when
/// the C library has none (it cannot go on without the real function).
pub fn resolve(slot: &AtomicUsize, name: &'static str) -> usize {
    let cached = slot.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: `name` is a NUL-terminated literal (every caller passes
    // `concat!(…, "\0")`); RTLD_NEXT asks for the definition after ours.
    let f = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) } as usize;
    if f == 0 {
        crate::emit::die("pmemlab-interpose: the C library has no such function: ", name);
    }
    slot.store(f, Ordering::Relaxed);
    f
}

/// Defines `real::NAME(args)`: a call of the C library's `NAME`.
macro_rules! real_fn {
    ($name:ident($($arg:ident: $t:ty),*) -> $r:ty) => {
        #[allow(clippy::too_many_arguments, non_snake_case)]
        pub unsafe fn $name($($arg: $t),*) -> $r {
            static SLOT: AtomicUsize = AtomicUsize::new(0);
            let f = resolve(&SLOT, concat!(stringify!($name), "\0"));
            // SAFETY: `f` is the C library's function of this name, whose
            // C signature is the one declared here.
            let f: unsafe extern "C" fn($($t),*) -> $r = unsafe { std::mem::transmute(f) };
            // SAFETY: the caller passes the arguments its own caller gave
            // the hook, as the C function expects them.
            unsafe { f($($arg),*) }
        }
    };
}

use libc::{c_char, c_int, c_uint, c_void, iovec, off_t, size_t, ssize_t};

real_fn!(open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int);
real_fn!(open64(path: *const c_char, flags: c_int, mode: c_uint) -> c_int);
real_fn!(openat(dir: c_int, path: *const c_char, flags: c_int, mode: c_uint) -> c_int);
real_fn!(openat64(dir: c_int, path: *const c_char, flags: c_int, mode: c_uint) -> c_int);
real_fn!(creat(path: *const c_char, mode: c_uint) -> c_int);
real_fn!(creat64(path: *const c_char, mode: c_uint) -> c_int);
real_fn!(close(fd: c_int) -> c_int);
real_fn!(dup(fd: c_int) -> c_int);
real_fn!(dup2(fd: c_int, to: c_int) -> c_int);
real_fn!(dup3(fd: c_int, to: c_int, flags: c_int) -> c_int);
real_fn!(write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t);
real_fn!(pwrite(fd: c_int, buf: *const c_void, n: size_t, off: off_t) -> ssize_t);
real_fn!(pwrite64(fd: c_int, buf: *const c_void, n: size_t, off: off_t) -> ssize_t);
real_fn!(writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t);
real_fn!(pwritev(fd: c_int, iov: *const iovec, n: c_int, off: off_t) -> ssize_t);
real_fn!(pwritev64(fd: c_int, iov: *const iovec, n: c_int, off: off_t) -> ssize_t);
real_fn!(pwritev2(fd: c_int, iov: *const iovec, n: c_int, off: off_t, flags: c_int) -> ssize_t);
real_fn!(pwritev64v2(fd: c_int, iov: *const iovec, n: c_int, off: off_t, flags: c_int) -> ssize_t);
real_fn!(ftruncate(fd: c_int, len: off_t) -> c_int);
real_fn!(ftruncate64(fd: c_int, len: off_t) -> c_int);
real_fn!(fallocate(fd: c_int, mode: c_int, off: off_t, len: off_t) -> c_int);
real_fn!(fallocate64(fd: c_int, mode: c_int, off: off_t, len: off_t) -> c_int);
real_fn!(fsync(fd: c_int) -> c_int);
real_fn!(fdatasync(fd: c_int) -> c_int);
real_fn!(msync(addr: *mut c_void, len: size_t, flags: c_int) -> c_int);
real_fn!(sync_file_range(fd: c_int, off: off_t, n: off_t, flags: c_uint) -> c_int);
real_fn!(syncfs(fd: c_int) -> c_int);
real_fn!(sync() -> ());
real_fn!(mmap(addr: *mut c_void, len: size_t, prot: c_int, flags: c_int, fd: c_int, off: off_t) -> *mut c_void);
real_fn!(mmap64(addr: *mut c_void, len: size_t, prot: c_int, flags: c_int, fd: c_int, off: off_t) -> *mut c_void);
real_fn!(munmap(addr: *mut c_void, len: size_t) -> c_int);
real_fn!(mremap(addr: *mut c_void, old: size_t, new: size_t, flags: c_int, to: *mut c_void) -> *mut c_void);
real_fn!(mprotect(addr: *mut c_void, len: size_t, prot: c_int) -> c_int);
real_fn!(sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int);
real_fn!(_exit(status: c_int) -> ());
real_fn!(_Exit(status: c_int) -> ());
real_fn!(signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t);
real_fn!(unlink(path: *const c_char) -> c_int);
real_fn!(unlinkat(dir: c_int, path: *const c_char, flags: c_int) -> c_int);
real_fn!(rename(old: *const c_char, new: *const c_char) -> c_int);
real_fn!(renameat(olddir: c_int, old: *const c_char, newdir: c_int, new: *const c_char) -> c_int);
real_fn!(renameat2(olddir: c_int, old: *const c_char, newdir: c_int, new: *const c_char, flags: c_uint) -> c_int);
