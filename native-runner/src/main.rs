//! `pmemlab`: the native runner of the virtio-pmem laboratory.
//!
//! Subcommands: `demo` (the built-in scenario), `inspect FILE…` (the page
//! cache of files, through cachestat) and `qemu ARGS…` (QEMU's command line
//! and monitor over real backing files). User mistakes print one line
//! `pmemlab: …` and exit with code 2.

use clap::{Parser, Subcommand};
use pmem_core::sim::{DeviceSpec, Machine, SimConfig};
use pmemlab::inspect::{inspect_file, notes, render_table};
use std::path::PathBuf;
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
    /// Show the real page-cache state of files, like fincore.
    ///
    /// Through the Linux cachestat system call (Linux 6.5+): pages cached,
    /// dirty (newer than the disk: lost on power failure), under writeback,
    /// evicted and recently evicted, and the file system of each file.
    Inspect {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// The files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Start a guest from QEMU's arguments and open a monitor prompt.
    ///
    /// For example `pmemlab qemu -object
    /// memory-backend-file,id=mem1,share=on,mem-path=./virtio_pmem.img,size=4G
    /// -device virtio-pmem-pci,memdev=mem1,id=nv1`; the monitor reads stdin
    /// (type `help` there). `pmemlab qemu --help` lists the options.
    #[command(disable_help_flag = true)]
    Qemu {
        /// QEMU arguments: -object memory-backend-file,…, -device
        /// virtio-pmem-pci,…, -m SIZE.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
        args: Vec<String>,
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

/// `inspect`: every file is reported; files that cannot be read are named
/// on stderr, one line each, and make the exit code 2 (the returned error
/// is then empty: everything has been said).
fn inspect(files: &[PathBuf], json: bool) -> Result<(), String> {
    let mut reports = Vec::new();
    let mut failed = 0;
    for f in files {
        match inspect_file(f) {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("pmemlab: inspect: {e}");
                failed += 1;
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&reports).map_err(|e| e.to_string())?);
        for n in notes(&reports) {
            eprintln!("pmemlab: {n}");
        }
    } else if !reports.is_empty() {
        print!("{}", render_table(&reports));
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(String::new())
    }
}

/// Lets a closed stdout (`pmemlab demo | head`) end the process quietly, as
/// it ends `cat`, instead of `println!` panicking on EPIPE.
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any other thread exists;
    // it only resets the disposition of SIGPIPE to the default (terminate),
    // which Rust's runtime set to "ignore". No handler code is installed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    default_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { seed, json } => demo(seed, json),
        Command::Inspect { files, json } => inspect(&files, json),
        Command::Qemu { args } => {
            if args.iter().any(|a| a == "--help" || a == "-h" || a == "-help") {
                println!("{}", QEMU_USAGE);
                return ExitCode::SUCCESS;
            }
            pmemlab::qemu::run(&args).map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("pmemlab: {msg}");
            }
            ExitCode::from(2)
        }
    }
}

const QEMU_USAGE: &str = "\
usage: pmemlab qemu [-m SIZE] (-object memory-backend-file,… -device virtio-pmem-pci,…)…

  -object memory-backend-file,id=ID,mem-path=FILE,size=SIZE[,share=on][,readonly=on][,pmem=on][,align=SIZE][,resize=on]
  -device virtio-pmem-pci,id=ID,memdev=ID[,memaddr=ADDR]
  -m SIZE   guest RAM (MiB unless suffixed; default 128M)

SIZE takes QEMU's suffixes K, M, G, T (powers of 1024). share defaults to off, as in QEMU:
guest stores then never reach the file. An existing FILE must have exactly SIZE bytes
unless resize=on (pmemlab's own option) is given; a missing FILE is created.
Then a monitor prompt reads commands from stdin (a terminal or a pipe); type help there.";
