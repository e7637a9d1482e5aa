//! Event-log JSON as the web imports it; see `pmem_fuzz::inputs::event_log`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pmem_fuzz::inputs::event_log(data));
