//! The trace file parser and the interposer stream decoder; see `pmem_fuzz::inputs::trace`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pmem_fuzz::inputs::trace(data));
