//! `pmemlab qemu` monitor lines on a machine with no file; see `pmem_fuzz::monitor`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pmem_fuzz::monitor::run(data));
