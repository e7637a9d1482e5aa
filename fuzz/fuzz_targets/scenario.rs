//! Scenario JSON text fed to `Scenario::parse`, then run under the budget; see `pmem_fuzz::inputs::scenario`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pmem_fuzz::inputs::scenario(data));
