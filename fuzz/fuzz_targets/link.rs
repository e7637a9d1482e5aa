//! A URL fragment fed to the web's `Link::parse`; see `pmem_fuzz::inputs::link`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pmem_fuzz::inputs::link(data));
