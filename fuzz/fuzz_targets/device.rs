//! Arbitrary guest memory, ring indices and host sync failures fed to the
//! virtio-pmem device; see `pmem_fuzz::device`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pmem_fuzz::device::{run, DeviceInput};

fuzz_target!(|input: DeviceInput| run(&input));
