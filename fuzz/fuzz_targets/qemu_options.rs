//! `pmemlab qemu` command-line words; see `pmem_fuzz::inputs::qemu_options`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pmem_fuzz::inputs::qemu_options(data));
