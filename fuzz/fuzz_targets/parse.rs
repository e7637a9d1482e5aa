//! Arbitrary descriptor lists and tables fed to the request parser and the
//! chain walker, compared with a reference; see `pmem_fuzz::parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pmem_fuzz::parse::{run, ParseInput};

fuzz_target!(|input: ParseInput| run(&input));
