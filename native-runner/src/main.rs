//! `pmemlab`: the native runner of the virtio-pmem laboratory.
//!
//! Subcommands: `run SCENARIO` (a scenario on real files, the model and the
//! kernel side by side), `explore` (crash-consistency campaigns), `record -- PROGRAM` (a real
//! program's stores and flushes as a trace), `inspect
//! FILE…` (the page cache of files, through cachestat), `merge REPORT…`
//! (shard reports into one), `qemu ARGS…` (QEMU's
//! command line and monitor over real backing files), `soak FILE` (stores
//! and flushes without end), `sqlite-campaign`, `serve`, `demo`. User
//! mistakes — command-line errors included — print one line `pmemlab: …`
//! and exit with code 2.
//!
//! Each subcommand is one variant of [`Command`] holding the library's own
//! options struct (clap parses straight into it), and one function that
//! returns a [`Status`]; its output goes through a [`Reporter`].

use clap::{Parser, Subcommand};
use pmemlab::created::CreatedFiles;
use pmemlab::demo::{demo, DemoOptions};
use pmemlab::explore::{explore, install_interrupt_handler, ExploreExit, ExploreOptions};
use pmemlab::inspect::{inspect, InspectOptions};
use pmemlab::merge::{merge, MergeOptions};
use pmemlab::report::{Format, Reporter};
use pmemlab::run::{run, RunOptions};
use pmemlab::soak::{soak, SoakOptions};
use pmemlab::sqlite::{run_campaign, SqliteCampaignOptions};
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
    /// Run a scenario on real files and print its event log.
    ///
    /// Each device's mem-path becomes a real file (relative to --dir, else
    /// to the scenario's directory; ID.img without one), mapped MAP_SHARED
    /// and synced with fdatasync, with the page-cache model in lockstep:
    /// after every step the model's dirty/writeback pages are shown next to
    /// the kernel's (cachestat). With --json, one report (log, outcomes,
    /// failed expectations, model and kernel figures) instead of the
    /// readable log. Exit code 1 when a step fails or an expectation does
    /// not hold, 2 on bad input (files the run created are then removed).
    Run {
        #[command(flatten)]
        options: RunOptions,
        #[command(flatten)]
        format: Format,
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
    /// (the names are listed under --workload). Exit code 1 when
    /// violations are found, 0 when none, 2 on bad input, 130 when
    /// interrupted (the state is saved).
    Explore {
        #[command(flatten)]
        options: Box<ExploreOptions>,
        #[command(flatten)]
        format: Format,
    },
    /// Merge the shard reports of a campaign into the report of one run.
    ///
    /// REPORT… are the JSON reports of `explore --shard I/N --json`, all N
    /// shards of one campaign; the merged report equals the one a single run
    /// gives (but for jobs, wall time and rate). Refuses shards of different
    /// campaigns, a shard twice, a missing shard. Exit code 1 when the
    /// campaign found violations, 0 when not, 2 on bad input.
    Merge {
        #[command(flatten)]
        options: MergeOptions,
        #[command(flatten)]
        format: Format,
    },
    /// Runs an unmodified, dynamically linked PROGRAM with the recording
    /// library loaded and writes the stores and flushes it made on the
    /// --pmem backing files as a trace, for `explore --trace`. The
    /// program's output and exit status pass through; exit 2 when it
    /// cannot be traced (one line, no trace written).
    Record {
        #[command(flatten)]
        options: pmemlab::record::RecordOptions,
        #[command(flatten)]
        format: Format,
    },
    /// The scenario in the model and on real QEMU with a real Linux guest,
    /// side by side (see docs/fidelity.md). Exit code 0 when every compared
    /// quantity agrees, 1 when one does not, 2 on bad input.
    Oracle(pmemlab::oracle::OracleArgs),
    /// Serve the built browser visualizer on 127.0.0.1.
    ///
    /// Serves the site that ./scripts/build-web.sh writes (target/site by
    /// default); ./scripts/run.sh builds and serves it in one go.
    Serve {
        /// The directory of the built site.
        #[arg(long, value_name = "DIR", default_value = "target/site")]
        dir: PathBuf,
        /// Port on 127.0.0.1, or the next free one when it is taken (0 = any
        /// free port).
        #[arg(long, value_name = "PORT", env = "PMEMLAB_PORT", default_value_t = 8417)]
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
        #[command(flatten)]
        options: SqliteCampaignOptions,
        #[command(flatten)]
        format: Format,
    },
    /// Store and flush without end on a real file, printing each store.
    ///
    /// Store N goes to page (N-1) % PAGES as a 24-byte record; `wrote N
    /// page P` is printed once the store completed (it is in the host page
    /// cache), `flushed N` once a flush request (a real fdatasync) covering
    /// stores up to N returned 0. Kill it with SIGKILL: no reported store is
    /// lost. With --writes and --crash-image, a power-failure crash image
    /// (durable content only) is written at the end.
    Soak(SoakOptions),
    /// Run the built-in demonstration scenario and print its event log.
    Demo {
        #[command(flatten)]
        options: DemoOptions,
        #[command(flatten)]
        format: Format,
    },
    /// Show the real page-cache state of files, like fincore.
    ///
    /// Through the Linux cachestat system call (Linux 6.5+): pages cached,
    /// dirty (newer than the disk: lost on power failure), under writeback,
    /// evicted and recently evicted, and the file system of each file.
    /// With --json, an array of reports.
    Inspect {
        #[command(flatten)]
        options: InspectOptions,
        #[command(flatten)]
        format: Format,
    },
    /// Start a guest from QEMU's arguments and open a monitor prompt.
    ///
    /// For example `pmemlab qemu -m 512M,slots=2,maxmem=8G -object
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

impl Status {
    /// Exit code 0 when `ok`, else 1 (the command ran and found a problem).
    fn verdict(ok: bool) -> Status {
        Status::Exit(if ok { 0 } else { 1 })
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

fn run_cmd(opts: &RunOptions, format: Format) -> Status {
    match run(opts, &mut Reporter::stdio(format)) {
        Ok(passed) => Status::verdict(passed),
        Err(e) => Status::Error(e.to_string()),
    }
}

fn explore_cmd(opts: &ExploreOptions, format: Format) -> Status {
    install_interrupt_handler();
    match explore(opts, &mut Reporter::stdio(format)) {
        Ok(ExploreExit::Clean) => Status::Exit(0),
        Ok(ExploreExit::Violations) => Status::Exit(1),
        Ok(ExploreExit::Interrupted) => {
            eprintln!("pmemlab: interrupted; the campaign stopped at a crash-point boundary");
            Status::Exit(130)
        }
        Err(e) => Status::Error(e.to_string()),
    }
}

fn record_cmd(opts: &pmemlab::record::RecordOptions, format: Format) -> Status {
    match pmemlab::record::record(opts, &mut Reporter::stdio(format)) {
        Ok(code) => Status::Exit(u8::try_from(code).unwrap_or(1)),
        Err(e) => Status::Error(e.to_string()),
    }
}

fn sqlite_campaign_cmd(opts: &SqliteCampaignOptions, format: Format) -> Status {
    let report = match run_campaign(opts) {
        Ok(r) => r,
        Err(e) => return Status::Error(e),
    };
    match Reporter::stdio(format).report(&report) {
        Ok(()) => Status::verdict(report.violations == 0),
        Err(e) => Status::Error(format!("cannot write the report: {e}")),
    }
}

/// `soak` creates its backing file (when missing) and its crash image;
/// if it fails, they go again.
fn soak_cmd(opts: &SoakOptions) -> Status {
    let mut created = CreatedFiles::new();
    created.add_if_new(&opts.file);
    if let Some(p) = &opts.crash_image {
        created.add_if_new(p);
    }
    match soak(opts, &mut std::io::stdout().lock()) {
        Ok(_) => {
            created.keep();
            Status::Exit(0)
        }
        Err(e) => Status::Error(e.to_string()),
    }
}

fn qemu_cmd(args: &[String]) -> Status {
    if args.iter().any(|a| a == "--help" || a == "-h" || a == "-help") {
        println!("{QEMU_USAGE}");
        return Status::Exit(0);
    }
    pmemlab::qemu::run(args).into()
}

fn main() -> ExitCode {
    default_sigpipe();
    let cli = match parse_cli() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let status = match cli.command {
        Command::Run { options, format } => run_cmd(&options, format),
        Command::Explore { options, format } => explore_cmd(&options, format),
        Command::Merge { options, format } => match merge(&options, &mut Reporter::stdio(format)) {
            Ok(violations) => Status::verdict(!violations),
            Err(e) => Status::Error(e.to_string()),
        },
        Command::Record { options, format } => record_cmd(&options, format),
        Command::Oracle(args) => Status::Exit(pmemlab::oracle::cli(&args)),
        Command::Serve { dir, port } => pmemlab::serve::serve(&dir, port).into(),
        Command::SqliteCampaign { options, format } => sqlite_campaign_cmd(&options, format),
        Command::Soak(options) => soak_cmd(&options),
        Command::Demo { options, format } => demo(&options, &mut Reporter::stdio(format)).into(),
        Command::Inspect { options, format } => inspect(&options, &mut Reporter::stdio(format)).into(),
        Command::Qemu { args } => qemu_cmd(&args),
    };
    finish(status)
}

fn finish(status: Status) -> ExitCode {
    match status {
        Status::Exit(code) => ExitCode::from(code),
        Status::Error(msg) => {
            if !msg.is_empty() {
                // One line, whatever the message holds.
                eprintln!("pmemlab: {}", pmemlab::output::escape(&msg.trim().replace('\n', " ")));
            }
            ExitCode::from(2)
        }
    }
}

const QEMU_USAGE: &str = "\
usage: pmemlab qemu -m SIZE,maxmem=MAX[,slots=N] [-machine pc|q35] (-object memory-backend-file,… -device virtio-pmem-pci,…)…

  -object memory-backend-file,id=ID,mem-path=FILE,size=SIZE[,share=on][,readonly=on][,pmem=on][,align=SIZE][,resize=on]
  -device virtio-pmem-pci,id=ID,memdev=ID[,memaddr=ADDR][,indirect_desc=off]
  -m SIZE,maxmem=MAX[,slots=N]   guest RAM (MiB unless suffixed; default 128M) and room for the
            devices: without maxmem QEMU refuses every virtio-pmem device; devices go first-fit
            above 4 GiB (plus the RAM above 4 GiB), as QEMU 7.2 places them
  Any other QEMU 7.2 option is taken with a one-line note, or refused when it would change
  the answer (the refusal says why). See docs/qemu.md.

SIZE takes QEMU's suffixes K, M, G, T (powers of 1024). share defaults to off, as in QEMU:
guest stores then never reach the file. An existing FILE must have exactly SIZE bytes
unless resize=on (pmemlab's own option) is given; a missing FILE is created.
Then a monitor prompt reads commands from stdin (a terminal or a pipe); type help there.";
