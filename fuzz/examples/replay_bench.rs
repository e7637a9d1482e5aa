//! Replays a `device` corpus five times through the harness, uninstrumented
//! (no sanitizer, no coverage), and prints the runs per second: what the
//! harness itself costs, apart from libFuzzer's instrumentation.
//!
//!     cargo run --release --example replay_bench -- corpus/device

use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use pmem_fuzz::device::{run, DeviceInput};
fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "corpus/device".into());
    let inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir).unwrap().map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect();
    let t = std::time::Instant::now();
    let mut n = 0u64;
    for _ in 0..5 {
        for bytes in &inputs {
            let Ok(input) = DeviceInput::arbitrary_take_rest(Unstructured::new(bytes)) else { continue };
            run(&input);
            n += 1;
        }
    }
    eprintln!("{n} runs in {:?}: {:.0}/s", t.elapsed(), n as f64 / t.elapsed().as_secs_f64());
}
