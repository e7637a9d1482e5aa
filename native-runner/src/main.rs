//! `pmemlab`: the native runner of the virtio-pmem laboratory.

use clap::{Parser, Subcommand};
use pmem_core::sim::{DeviceSpec, Machine, SimConfig};
use std::process::ExitCode;

/// pmemlab — a laboratory for virtio-pmem persistence.
#[derive(Parser, Debug)]
#[command(name = "pmemlab", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the built-in demonstration scenario and print its event log.
    Demo {
        /// Seed of the run (same seed, same log).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print the event log as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn demo(seed: u64, json: bool) -> Result<(), String> {
    let mut m = Machine::new(SimConfig { seed, queue_size: 4, ..SimConfig::default() });
    let e = |e: pmem_core::sim::MachineError| e.to_string();
    m.add_device(DeviceSpec::new("nv1", 4 << 30)).map_err(e)?;
    m.guest_write("nv1", 0, b"hello, pmem").map_err(e)?;
    let first = m.flush("nv1").map_err(e)?;
    m.run_until_idle(10_000);
    // Six flushes at once on a 4-slot ring: two wait for a free slot.
    for _ in 0..6 {
        m.flush("nv1").map_err(e)?;
    }
    m.run_until_idle(10_000);
    // A second device is hot-plugged; removing it is refused.
    m.add_device(DeviceSpec::new("nv2", 1 << 30)).map_err(e)?;
    let refused = m.remove_device("nv2").unwrap_err();
    m.guest_write("nv2", 4096, b"second device").map_err(e)?;
    m.flush("nv2").map_err(e)?;
    m.run_until_idle(10_000);
    if json {
        println!("{}", serde_json::to_string_pretty(m.log()).map_err(|e| e.to_string())?);
    } else {
        for ev in m.log().events() {
            println!("{ev}");
        }
        println!();
        println!("first flush: {:?}", m.flush_result("nv1", first).map_err(e)?);
        println!("unplug: {refused}");
        println!("event-log fingerprint: {:016x}", m.log().fingerprint());
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { seed, json } => demo(seed, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("pmemlab: {msg}");
            ExitCode::from(2)
        }
    }
}
