//! An explore state file's campaign, resumed against a fixed history; see `pmem_fuzz::inputs::state`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pmem_fuzz::inputs::state(data));
