//! Replays a `device` corpus and counts what it reaches, to show the target
//! gets past the ring into every answer the device can give.
//!
//!     cargo run --release --example tally -- corpus/device

use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use pmem_core::device::DeviceEvent;
use pmem_fuzz::device::{run_observed, DeviceInput};
use std::collections::BTreeMap;

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "corpus/device".into());
    let mut tally: BTreeMap<String, u64> = BTreeMap::new();
    let mut bump = |k: &str| *tally.entry(k.to_string()).or_default() += 1;
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("corpus file");
        // Decoded exactly as libfuzzer-sys's `fuzz_target!` does.
        let Ok(input) = DeviceInput::arbitrary_take_rest(Unstructured::new(&bytes)) else { continue };
        files += 1;
        let mut inputs_seen: BTreeMap<&str, bool> = BTreeMap::new();
        run_observed(&input, |o| {
            for e in &o.events {
                let k = match e {
                    DeviceEvent::ChainPopped { .. } => "chain popped".to_string(),
                    DeviceEvent::FlushParsed { .. } => "flush parsed".to_string(),
                    DeviceEvent::ChainRejected { error, .. } => format!("chain rejected: {}", variant(error)),
                    DeviceEvent::RequestRejected { error, .. } => format!("request rejected: {}", variant(error)),
                    DeviceEvent::HostSyncFinished { result: Err(_), .. } => "host sync failed".to_string(),
                    DeviceEvent::RequestCompleted { status: Some(0), .. } => "completed: status 0".to_string(),
                    DeviceEvent::RequestCompleted { status: Some(_), .. } => "completed: failure status".to_string(),
                    DeviceEvent::RequestCompleted { status: None, .. } => "completed: no status".to_string(),
                    DeviceEvent::HeadNotReturned { error, .. } => format!("head not returned: {}", variant(error)),
                    DeviceEvent::DeviceNeedsReset { .. } => "DEVICE_NEEDS_RESET".to_string(),
                    DeviceEvent::InterruptSuppressed => "interrupt suppressed".to_string(),
                    _ => continue,
                };
                bump(&k);
            }
            if o.pops.len() > 1 {
                inputs_seen.insert("inputs with >= 1 chain popped", true);
            }
            if o.used.len() >= 2 {
                inputs_seen.insert("inputs with >= 2 chains returned in one round", true);
            }
            if o.writes.iter().any(|w| !w.ok) {
                inputs_seen.insert("inputs with a refused device write", true);
            }
        });
        for k in inputs_seen.keys() {
            bump(k);
        }
    }
    println!("{files} inputs from {dir}");
    for (k, n) in &tally {
        println!("{n:>9}  {k}");
    }
}

/// The variant name of an error's `Debug` form.
fn variant(e: &impl std::fmt::Debug) -> String {
    let s = format!("{e:?}");
    s.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("").to_string()
}
