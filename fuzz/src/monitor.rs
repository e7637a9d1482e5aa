//! The `monitor` target: lines of the `pmemlab qemu` monitor, executed one
//! after another on a guest with no memory backend. Lines that would open a
//! file (`object_add`) are skipped — the fuzzer must not create files
//! wherever a `mem-path` points — so what is fuzzed is the prompt's
//! parsing and every command's refusal paths, plus the data syntax
//! (`hex:…`, quoted strings with escapes) on its own.

use pmemlab::qemu::monitor::{execute, parse_data};
use pmemlab::qemu::Vm;

/// Runs each line of `data` (at most 64) through the monitor.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // QEMU without maxmem has no room for a memory device; give it some.
    let memory = pmem_core::sim::DeviceMemoryConfig { maxmem: Some(1 << 30), ..Default::default() };
    let mut vm = Vm::new(16 << 20, memory);
    for line in text.lines().take(64) {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.eq_ignore_ascii_case("object_add") {
            continue;
        }
        let _ = execute(&mut vm, line);
        if let Some(rest) = line.strip_prefix("data ") {
            if let Ok(bytes) = parse_data(rest) {
                assert!(bytes.len() <= rest.len(), "data never grows past its text");
            }
        }
    }
}
