//! `pmemlab`: the native runner of the virtio-pmem laboratory.
//!
//! Subcommands: `run SCENARIO` (a scenario on real files, the model and the
//! kernel side by side), `explore` (crash-consistency campaigns), `inspect
//! FILE…` (the page cache of files, through cachestat), `qemu ARGS…` (QEMU's
//! command line and monitor over real backing files), `soak FILE` (stores
//! and flushes without end), `demo`. User mistakes — command-line errors
//! included — print one line `pmemlab: …` and exit with code 2.
//!
//! Each subcommand is one variant of [`Command`] and one function that
//! returns a [`Status`]; adding a subcommand touches only those two places.

use clap::{Parser, Subcommand, ValueEnum};
use pmem_core::host::TearGranularity;
use pmem_core::sim::{DeviceSpec, Machine, SimConfig};
use pmemlab::explore::{explore, install_interrupt_handler, parse_shard, ExploreExit, ExploreOptions};
use pmemlab::inspect::{inspect_file, notes, render_table};
use pmemlab::qemu::size::parse_size;
use pmemlab::run::{run, BackendKind, Existing, RunOptions};
use pmemlab::soak::{soak, SoakOptions};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// pmemlab — a laboratory for virtio-pmem persistence.
#[derive(Parser, Debug)]
#[command(name = "pmemlab", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--backend` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Backend {
    /// Real files (the page-cache model in lockstep).
    File,
    /// The page-cache model only; no file is touched.
    Model,
}

/// The options of `pmemlab explore` (boxed in [`Command`]: they are many).
#[derive(clap::Args, Debug)]
struct ExploreArgs {
    /// The scenario (JSON).
    scenario: Option<PathBuf>,
    /// The checker command (run through /bin/sh; the image path is
    /// appended as its last argument).
    #[arg(long, value_name = "CMD")]
    checker: Option<String>,
    /// A built-in workload instead of a scenario.
    #[arg(long, value_name = "NAME", conflicts_with = "scenario")]
    workload: Option<String>,
    /// The device to crash, when the scenario writes to several.
    #[arg(long, value_name = "ID")]
    device: Option<String>,
    /// Seed of the run and of the sampled images.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Check about N states in this run, then stop at the next crash
    /// point (resumable).
    #[arg(long, value_name = "N")]
    max_states: Option<u64>,
    /// Take every N-th image of each crash point, from I (0 ≤ I < N).
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    shard: Option<(u64, u64)>,
    /// Save the campaign to FILE (after every batch, at most once a
    /// second, and at the end).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Continue the campaign saved in FILE (and keep saving there).
    #[arg(long, value_name = "FILE")]
    resume: Option<PathBuf>,
    /// Checker processes run at once (default: the number of cores).
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Write a self-contained HTML report.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Write the minimal counterexample's crash image to FILE.
    #[arg(long, value_name = "FILE")]
    counterexample: Option<PathBuf>,
    /// Replace existing report, state and image files.
    #[arg(long)]
    force: bool,
    /// Unit a page being written tears in: 8B, 64B, 512B or 4KiB
    /// (default: the scenario's model, else 512B).
    #[arg(long, value_name = "UNIT")]
    tear: Option<TearGranularity>,
    /// Images sampled at a crash point with too many to enumerate
    /// (default 256).
    #[arg(long, value_name = "N")]
    samples: Option<u64>,
    /// Enumerate a crash point exhaustively up to N images (default
    /// 4096).
    #[arg(long, value_name = "N")]
    exhaustive_limit: Option<u64>,
    /// Torn images sampled per crash point (default 32; 0 = none).
    #[arg(long, value_name = "N")]
    torn_samples: Option<u64>,
    /// Kill a checker running longer than SECS seconds (the image then
    /// counts as a violation).
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// Do not shrink the first violation.
    #[arg(long)]
    no_shrink: bool,
    /// Directory for the crash-image files (default: a new temporary
    /// directory, removed at the end).
    #[arg(long, value_name = "DIR")]
    image_dir: Option<PathBuf>,
    /// Never draw the progress bar (it is drawn only on a terminal).
    #[arg(long)]
    no_progress: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario on real files and print its event log.
    ///
    /// Each device's mem-path becomes a real file (relative to --dir, else
    /// to the scenario's directory; ID.img without one), mapped MAP_SHARED
    /// and synced with fdatasync, with the page-cache model in lockstep:
    /// after every step the model's dirty/writeback pages are shown next to
    /// the kernel's (cachestat). Exit code 1 when a step fails or an
    /// expectation does not hold, 2 on bad input.
    Run {
        /// The scenario (JSON, see docs/scenario.md).
        scenario: PathBuf,
        /// Print a JSON report (log, outcomes, failed expectations, model
        /// and kernel figures) instead of the readable log.
        #[arg(long)]
        json: bool,
        /// Override the scenario's seed.
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
        /// What backs the devices.
        #[arg(long, value_enum, default_value = "file")]
        backend: Backend,
        /// Directory the devices' mem-paths are relative to.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Allow changing the size of an existing backing file of another
        /// size (otherwise it is refused and left untouched).
        #[arg(long)]
        resize: bool,
        /// Use backing files that exist already, with their content (as
        /// QEMU would); without it an existing file is refused, since a
        /// scenario's expectations assume zero-filled devices.
        #[arg(long, conflicts_with = "fresh")]
        reuse: bool,
        /// Replace the content of existing backing files with zeros.
        #[arg(long)]
        fresh: bool,
        /// Write crash images (durable content only, and with a seeded
        /// subset of newer pages) before every power_failure step and at the
        /// end, as new files in DIR; the backing files are only read.
        #[arg(long, value_name = "DIR")]
        crash_images: Option<PathBuf>,
    },
    /// Crash-consistency campaign: check every crash image of a run.
    ///
    /// The scenario's device history gives crash points (after every write
    /// and flush); at each, the possible disk images (exhaustive when few,
    /// sampled from the seed when many, torn at --tear) are written to
    /// temporary files and CMD runs with the image path as its last
    /// argument and in PMEMLAB_IMAGE (also PMEMLAB_CRASH_POINT,
    /// PMEMLAB_DEVICE, PMEMLAB_ACKED_FLUSHES, …); exit 0 = consistent.
    /// `--workload NAME` explores a built-in workload with its own checker
    /// (in-place, wal, wal-missing-barrier, shadow-paging). Exit code 1 when
    /// violations are found, 0 when none, 2 on bad input, 130 when
    /// interrupted (the state is saved).
    Explore(Box<ExploreArgs>),
    /// Serve the built browser visualizer on 127.0.0.1.
    ///
    /// Serves the site that ./scripts/build-web.sh writes (target/site by
    /// default); ./scripts/run.sh builds and serves it in one go.
    Serve {
        /// The built site.
        #[arg(long, default_value = "target/site")]
        dir: PathBuf,
        /// Port on 127.0.0.1, or the next free one when it is taken (0 = any
        /// free port).
        #[arg(long, env = "PMEMLAB_PORT", default_value_t = 8417)]
        port: u16,
    },
    /// SQLite as a real client: a crash-consistency campaign.
    ///
    /// Runs transactions through a SQLite VFS whose files live in a pmem
    /// region (xSync = a flush request through the virtqueue), explores the
    /// crash images of the run, and reopens each with stock SQLite: `PRAGMA
    /// integrity_check` must say ok and every transaction whose COMMIT
    /// returned must be there. `--no-flush` is the negative control (xSync
    /// does not flush): it must find lost commits or corruption. Exit code 1
    /// when violations are found. See docs/sqlite.md.
    SqliteCampaign {
        /// Transactions after the schema commit.
        #[arg(long, default_value_t = 40)]
        transactions: u64,
        /// Seed of the machine, the transactions and the samples.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Stop at the first crash point after this many images.
        #[arg(long, value_name = "N")]
        max_states: Option<u64>,
        /// Tear granularity (8B, 64B, 512B, 4KiB).
        #[arg(long, default_value = "512B")]
        tear: TearGranularity,
        /// The negative control: xSync sends no flush request.
        #[arg(long)]
        no_flush: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Store and flush without end on a real file, printing each store.
    ///
    /// Store N goes to page (N-1) % PAGES as a 24-byte record; `wrote N
    /// page P` is printed once the store completed (it is in the host page
    /// cache), `flushed N` once a flush request (a real fdatasync) covering
    /// stores up to N returned 0. Kill it with SIGKILL: no reported store is
    /// lost. With --writes and --crash-image, a power-failure crash image
    /// (durable content only) is written at the end.
    Soak {
        /// The backing file (created; an existing one needs --force).
        file: PathBuf,
        /// Device size (K/M/G/T suffixes).
        #[arg(long, default_value = "1M", value_parser = parse_size_arg)]
        size: u64,
        /// Pages the stores cycle over.
        #[arg(long, default_value_t = 16)]
        pages: u64,
        /// A flush request after every N stores (0: never).
        #[arg(long, value_name = "N", default_value_t = 8)]
        flush_every: u64,
        /// Stop after N stores (default: never).
        #[arg(long, value_name = "N")]
        writes: Option<u64>,
        /// At the end, write a power-failure crash image to FILE.
        #[arg(long, value_name = "FILE")]
        crash_image: Option<PathBuf>,
        /// Use an existing backing file.
        #[arg(long)]
        force: bool,
    },
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

fn parse_size_arg(s: &str) -> Result<u64, String> {
    parse_size(s).map_err(|e| e.to_string())
}

/// What a subcommand ends with.
enum Status {
    /// Exit code 0, 1, 130…
    Exit(u8),
    /// A user error: one line, exit code 2 (empty: already said).
    Error(String),
}

impl<E: std::fmt::Display> From<Result<(), E>> for Status {
    fn from(r: Result<(), E>) -> Status {
        match r {
            Ok(()) => Status::Exit(0),
            Err(e) => Status::Error(e.to_string()),
        }
    }
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

/// Parses the command line; a mistake becomes one line (clap's own message
/// without its usage block) and exit code 2. Help and version print as
/// clap prints them.
fn parse_cli() -> Result<Cli, ExitCode> {
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    Err(ExitCode::SUCCESS)
                }
                _ => {
                    // clap's message is its first paragraph; the usage block follows.
                    let text = e.render().to_string();
                    let para: Vec<&str> = text
                        .lines()
                        .map(str::trim)
                        .skip_while(|l| l.is_empty())
                        .take_while(|l| !l.is_empty())
                        .collect();
                    let msg = para.join(" ");
                    let msg = msg.trim_start_matches("error:").trim();
                    eprintln!("pmemlab: {msg} (see pmemlab --help)");
                    Err(ExitCode::from(2))
                }
            }
        }
    }
}

fn run_cmd(opts: RunOptions) -> Status {
    let mut out = std::io::stdout().lock();
    match run(&opts, &mut out) {
        Ok(true) => Status::Exit(0),
        Ok(false) => Status::Exit(1),
        Err(e) => Status::Error(e.to_string()),
    }
}

fn explore_cmd(opts: ExploreOptions) -> Status {
    install_interrupt_handler();
    let mut out = std::io::stdout().lock();
    match explore(&opts, &mut out) {
        Ok(ExploreExit::Clean) => Status::Exit(0),
        Ok(ExploreExit::Violations) => Status::Exit(1),
        Ok(ExploreExit::Interrupted) => {
            eprintln!("pmemlab: interrupted; the campaign stopped at a crash-point boundary");
            Status::Exit(130)
        }
        Err(e) => Status::Error(e.to_string()),
    }
}

fn main() -> ExitCode {
    default_sigpipe();
    let cli = match parse_cli() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let status = match cli.command {
        Command::Demo { seed, json } => demo(seed, json).into(),
        Command::Inspect { files, json } => inspect(&files, json).into(),
        Command::Qemu { args } => {
            if args.iter().any(|a| a == "--help" || a == "-h" || a == "-help") {
                println!("{}", QEMU_USAGE);
                return ExitCode::SUCCESS;
            }
            pmemlab::qemu::run(&args).into()
        }
        Command::Run { scenario, json, seed, backend, dir, resize, reuse, fresh, crash_images } => {
            run_cmd(RunOptions {
                scenario,
                json,
                seed,
                backend: match backend {
                    Backend::File => BackendKind::File,
                    Backend::Model => BackendKind::Model,
                },
                dir,
                resize,
                existing: match (reuse, fresh) {
                    (true, _) => Existing::Reuse,
                    (_, true) => Existing::Fresh,
                    _ => Existing::Refuse,
                },
                crash_images,
            })
        }
        Command::Explore(args) => {
            let ExploreArgs {
                scenario,
                checker,
                workload,
                device,
                seed,
                max_states,
                shard,
                state,
                resume,
                jobs,
                json,
                html,
                counterexample,
                force,
                tear,
                samples,
                exhaustive_limit,
                torn_samples,
                timeout,
                no_shrink,
                image_dir,
                no_progress,
            } = *args;
            let timeout = match timeout {
                Some(t) if !(t.is_finite() && t > 0.0) => {
                    return finish(Status::Error(format!("--timeout {t}: give a number of seconds above 0")))
                }
                Some(t) => Some(Duration::from_secs_f64(t)),
                None => None,
            };
            explore_cmd(ExploreOptions {
                scenario,
                workload,
                checker,
                device,
                seed,
                max_states,
                shard,
                state,
                resume,
                jobs,
                json,
                html,
                counterexample,
                force,
                tear,
                samples,
                exhaustive_limit,
                torn_samples,
                timeout,
                no_shrink,
                image_dir,
                progress: !no_progress && std::io::stderr().is_terminal(),
            })
        }
        Command::Serve { dir, port } => pmemlab::serve::serve(&dir, port).into(),
        Command::SqliteCampaign { transactions, seed, max_states, tear, no_flush, json } => {
            let opts = pmemlab::sqlite::SqliteCampaignOptions {
                transactions,
                seed,
                max_states,
                tear,
                no_flush,
                ..Default::default()
            };
            match pmemlab::sqlite::run_campaign(&opts) {
                Err(e) => Status::Error(e),
                Ok(report) => {
                    if json {
                        match serde_json::to_string_pretty(&report) {
                            Ok(j) => println!("{j}"),
                            Err(e) => return finish(Status::Error(e.to_string())),
                        }
                    } else {
                        println!("{report}");
                    }
                    Status::Exit(if report.violations > 0 { 1 } else { 0 })
                }
            }
        }
        Command::Soak { file, size, pages, flush_every, writes, crash_image, force } => {
            let opts = SoakOptions { file, size, pages, flush_every, writes, crash_image, force };
            let mut out = std::io::stdout().lock();
            soak(&opts, &mut out).map(|_| ()).into()
        }
    };
    finish(status)
}

fn finish(status: Status) -> ExitCode {
    match status {
        Status::Exit(code) => ExitCode::from(code),
        Status::Error(msg) => {
            if !msg.is_empty() {
                // One line, whatever the message holds.
                eprintln!("pmemlab: {}", msg.trim().replace('\n', " "));
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
