//! The SIGSEGV handler: the first write fault of a page of a protected
//! device mapping in an epoch is noted (its content kept as the shadow)
//! and the page unprotected; any other fault goes to the program's own
//! action (or the default one). Async-signal-safe: it takes the spin lock,
//! copies one page into memory allocated at load, and calls mprotect.

use crate::real;
use crate::state::{lock, State, OUT_OF_RANGE, PAGE};
use libc::{c_int, c_void, siginfo_t};
use std::sync::atomic::Ordering;

/// Installs the handler; the action it replaces becomes the program's.
pub fn install(s: &mut State) {
    // SAFETY: an all-zero sigaction is valid; the fields are set below.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = on_segv as extern "C" fn(c_int, *mut siginfo_t, *mut c_void) as usize;
    act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
    // SAFETY: both pointers are valid for the call; the handler is a plain
    // `extern "C" fn` that lives as long as the process.
    let r = unsafe {
        libc::sigemptyset(&mut act.sa_mask);
        real::sigaction(libc::SIGSEGV, &act, &mut s.program_segv)
    };
    if r == 0 {
        crate::state::INSTALLED.store(true, Ordering::Relaxed);
    }
}

/// Handles a fault in a device mapping; false when it is not ours.
fn ours(addr: usize) -> bool {
    let mut s = lock();
    if !crate::state::enabled() {
        return false;
    }
    let Some(m) = s.maps.iter().find(|m| m.contains(addr) && m.prot & libc::PROT_WRITE != 0).copied() else {
        return false;
    };
    if crate::state::FORKED.load(Ordering::Relaxed) {
        crate::state::CHILD_STORED.store(true, Ordering::Relaxed);
    }
    let page_addr = addr & !(PAGE - 1);
    let file_off = m.file_off + (page_addr - m.start) as u64;
    if file_off < s.devices[m.device].size {
        s.note_dirty(m.device, file_off / PAGE as u64, page_addr);
    } else {
        OUT_OF_RANGE.store(file_off + 1, Ordering::Relaxed);
    }
    crate::state::protect(page_addr, PAGE, m.prot);
    true
}

extern "C" fn on_segv(sig: c_int, info: *mut siginfo_t, ctx: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    if ours(addr) {
        return;
    }
    let act = lock().program_segv;
    let h = act.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // The default action: returning re-runs the faulting instruction,
        // which then ends the process with SIGSEGV as it would have.
        // SAFETY: an all-zero sigaction is SIG_DFL; the pointers are valid.
        unsafe {
            let dfl: libc::sigaction = std::mem::zeroed();
            real::sigaction(libc::SIGSEGV, &dfl, std::ptr::null_mut());
        }
        return;
    }
    if act.sa_flags & libc::SA_RESETHAND != 0 {
        // SAFETY: an all-zero sigaction is SIG_DFL.
        lock().program_segv = unsafe { std::mem::zeroed() };
    }
    if act.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the program installed this address as an SA_SIGINFO
        // handler; it gets the arguments the kernel gave ours.
        let f: extern "C" fn(c_int, *mut siginfo_t, *mut c_void) = unsafe { std::mem::transmute(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: the program installed this address as a plain handler.
        let f: extern "C" fn(c_int) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
}
