//! `pmemlab oracle SCENARIO`: the scenario in the model and on the real
//! system, side by side.
//!
//! The model is pmem-core's scenario runner, step by step. The real system
//! is the seed's QEMU command line (QEMU 7.2 under TCG, `-m
//! 512M,slots=2,maxmem=2G`, one `memory-backend-file` + `virtio-pmem-pci`
//! per device, backing files in a fresh temporary directory) booting
//! Debian's Linux with a static guest agent as /init, which runs the guest's
//! steps on `/dev/pmemN` and handshakes with the host between steps. After
//! every step the host records cachestat of each backing file, QEMU's
//! `virtio_pmem*` trace events, QMP `query-memory-devices`, the guest's
//! device status and the data read. See `docs/fidelity.md`.
//!
//! - [`plan`]: the scenario as agent lines and host actions;
//! - [`kernel`], [`agent`], [`initramfs`]: what boots;
//! - [`qemu`], [`qmp`]: the process and its monitor;
//! - [`probe`]: the host's view of a backing file;
//! - [`real`] and [`model_side`]: the two sides of a step; [`machine`]: the
//!   real machine as the model side is told it (QEMU's placement of the
//!   oracle's `-m`, QEMU's host side, the guest's nd_virtio);
//! - [`compare`] and [`report`]: the verdict.
//!
//! Exit code 0 when every compared quantity agrees, 1 when one does not, 2
//! on bad input (a missing QEMU or kernel, a guest that does not boot in
//! time, a step the real system cannot do), 130 on Ctrl-C or SIGTERM. No
//! QEMU outlives the run: its process group is killed on every way out.

pub mod agent;
pub mod compare;
pub mod dax;
pub mod driver;
mod error;
pub mod initramfs;
pub mod kernel;
pub mod load;
pub mod machine;
pub mod model_side;
pub mod phases;
pub mod plan;
pub mod probe;
pub mod qemu;
pub mod qmp;
pub mod real;
pub mod report;

pub use error::OracleError;
pub use probe::HostFolios;

use compare::Context;
use model_side::ModelStep;
use plan::Plan;
use pmem_core::scenario::{Op, Scenario};
use pmem_core::time::SimTime;
use probe::{Backing, PAGE};
use real::Session;
use report::{GuestDevice, Report, StepRow};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The options of `pmemlab oracle`.
#[derive(clap::Args, Debug, Clone)]
pub struct OracleArgs {
    /// The scenario (JSON).
    pub scenario: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Seconds the guest may take to boot, and each step to answer.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub timeout: f64,
    /// Keep the run's directory (backing files, initramfs, console and
    /// QEMU logs) and print its path.
    #[arg(long)]
    pub keep: bool,
    /// The host's folio unit: thp (what QEMU and this host do: 2 MiB
    /// folios) or 4k (the files are pre-read in 4 KiB steps before boot).
    #[arg(long, value_enum, default_value = "thp")]
    pub host_folios: HostFolios,
    /// `maxmem` of QEMU's `-m 512M,slots=2,maxmem=SIZE`: guest RAM plus
    /// room for every device (QEMU refuses devices that do not fit).
    #[arg(long, value_name = "SIZE", default_value = "2G")]
    pub maxmem: String,
    /// After the scenario, N guest processes flush at once on the first
    /// device (each --flush-count times a 64 KiB pwrite and an fsync).
    #[arg(long, value_name = "N")]
    pub flushers: Option<u64>,
    /// Rounds of pwrite + fsync per flusher.
    #[arg(long, value_name = "N", default_value_t = 10, requires = "flushers")]
    pub flush_count: u64,
    /// Seconds the guest waits for the flushers before it counts the rest
    /// as hung.
    #[arg(long, value_name = "SECS", default_value_t = 60, requires = "flushers")]
    pub flushers_wait: u64,
    /// Distance between the flushers' 64 KiB chunks (64K: packed; 2M: one
    /// host folio each, which makes each host fsync write more).
    #[arg(long, value_name = "SIZE", default_value = "64K", requires = "flushers")]
    pub flusher_stride: String,
    /// A slow host disk: QEMU's fsync/fdatasync of the backing files wait
    /// MS milliseconds first (a preloaded shim), so flushes pile up.
    #[arg(long, value_name = "MS")]
    pub host_fsync_delay: Option<f64>,
    /// The guest's nd_virtio: serialized (as Debian ships it: flush_lock)
    /// or unserialized (the lock calls patched out: the older driver).
    /// Default: the scenario devices' `driver` (linux-serialized or
    /// linux-concurrent), else serialized. The model side runs the same.
    #[arg(long, value_enum)]
    pub driver: Option<driver::Driver>,
    /// The uncompressed guest kernel (default: the one
    /// scripts/ensure-qemu.sh cached).
    #[arg(long, value_name = "VMLINUX")]
    pub kernel: Option<PathBuf>,
}

/// Runs the oracle for the command line: prints the report (or one error
/// line) and returns the exit code.
pub fn cli(args: &OracleArgs) -> u8 {
    qemu::install_signal_handlers();
    let result = oracle(args);
    if qemu::interrupted() {
        eprintln!("pmemlab: oracle: interrupted; QEMU was stopped");
        return 130;
    }
    match result {
        Ok(report) => {
            let mut out = std::io::stdout().lock();
            let text = if args.json {
                serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
            } else {
                report.text()
            };
            let _ = out.write_all(text.as_bytes());
            if report.agree {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("pmemlab: oracle: {}", e.to_string().trim().replace('\n', " "));
            2
        }
    }
}

/// Runs the scenario on both sides and compares them.
pub fn oracle(args: &OracleArgs) -> Result<Report, OracleError> {
    let started = Instant::now();
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(OracleError::Usage(format!("--timeout {}: give a number of seconds above 0", args.timeout)));
    }
    pmem_core::size::parse_size(&args.maxmem)
        .map_err(|e| OracleError::Usage(format!("--maxmem {}: {e}", args.maxmem)))?;
    let scenario = crate::run::load_scenario(&args.scenario, &pmem_core::budget::Budget::default())?;
    // The model's host folio is the host's, as --host-folios sets it up.
    let mut model = scenario.model().clone();
    model.host_folio = pmem_core::scenario::ByteSize(args.host_folios.pages() * probe::PAGE);
    let scenario = scenario.with_model(model).map_err(|e| OracleError::Usage(e.to_string()))?;
    let real_machine = machine::RealMachine::new(&scenario, &args.maxmem, args.driver)?;
    let mut plan = Plan::new(&scenario)?;
    let load = load_of(args, &scenario)?;
    if let Some(l) = &load {
        plan.add_load(l);
    }
    let qemu = kernel::on_path("qemu-system-x86_64").ok_or_else(|| OracleError::Missing {
        what: "QEMU".into(),
        detail: "qemu-system-x86_64 is not on PATH".into(),
        package: "qemu-system-x86",
    })?;
    let kernel = kernel::find(args.kernel.as_deref())?;
    let agent = agent::build(&kernel::oracle_dir())?;
    let slow_fsync = slow_fsync(args.host_fsync_delay)?;
    let dir = run_dir()?;
    let initrd = dir.path().join("initrd.cpio");
    write_initramfs(&initrd, &agent, &kernel, &plan, real_machine.driver)?;
    let pages = tracked_pages(&scenario);
    let files = create_files(dir.path(), &plan, &pages, args.host_folios)?;
    // The model's clock starts when the real files were made (see `run_steps`).
    let created = Instant::now();
    let launch = qemu::Launch {
        qemu,
        vmlinux: kernel.vmlinux.clone(),
        initrd,
        devices: Vec::new(),
        scratch: if plan.dax { Some(dax::make_image(dir.path())?) } else { None },
        start: 0,
        qmp: dir.path().join("qmp.sock"),
        log_dir: dir.path().to_path_buf(),
        memory: machine::memory_option(&args.maxmem),
        slow_fsync,
    };
    let mut session = Session::new(launch, plan.clone(), files, Duration::from_secs_f64(args.timeout));
    let mut steps = match (real_machine.runner(&scenario), session.boot(0)) {
        (Ok(runner), Ok(())) => {
            let mut runners = vec![runner];
            runners.extend(phases::other_runners(&real_machine, &scenario)?);
            run_steps(runners, &plan, &pages, &mut session, (args.host_folios, created))?
        }
        // Both refuse to start: compare the refusals.
        (Err(model), Err(OracleError::Guest(real))) if real.contains("before the guest booted") => {
            vec![refused_at_start(model.to_string(), real)]
        }
        (Err(model), Ok(())) => vec![refused_at_start(model.to_string(), "QEMU started".into())],
        (_, Err(e)) => return Err(e),
    };
    let booted = steps.first().is_none_or(|s| s.op != "start");
    if let Some(l) = load.as_ref().filter(|_| booted) {
        steps.push(load_step(&scenario, &real_machine, l, &mut session, scenario.steps().len())?);
    }
    let last = session.trace_now();
    let (after_last_step, powered_off) = session.finish(last);
    let disagreements = steps.iter().flat_map(|s| &s.quantities).filter(|q| q.compared && !q.agree).count();
    let guest_devices =
        session.guest_devices.iter().map(|(&index, &(size, resource))| GuestDevice { index, size, resource }).collect();
    if args.keep {
        eprintln!("pmemlab: oracle: kept {}", dir.keep().display());
    }
    Ok(Report {
        scenario: scenario.name().to_string(),
        host_folios: args.host_folios,
        agree: disagreements == 0,
        disagreements,
        kernel: kernel.version,
        boots: session.boots,
        wall_seconds: started.elapsed().as_secs_f64(),
        after_last_step,
        powered_off,
        driver: real_machine.driver,
        host_fsync_delay_ms: args.host_fsync_delay,
        guest_devices,
        steps,
        compared: report::COMPARED.to_vec(),
        not_compared: report::NOT_COMPARED.to_vec(),
    })
}

/// The slow-disk shim and its delay in µs, for `--host-fsync-delay MS`.
fn slow_fsync(delay_ms: Option<f64>) -> Result<Option<(PathBuf, u64)>, OracleError> {
    match delay_ms {
        None => Ok(None),
        Some(ms) if ms.is_finite() && (0.0..=10_000.0).contains(&ms) => {
            Ok(Some((agent::build_slow_fsync(&kernel::oracle_dir())?, (ms * 1000.0) as u64)))
        }
        Some(ms) => Err(OracleError::Usage(format!("--host-fsync-delay {ms}: give 0 to 10000 milliseconds"))),
    }
}

/// One backing file per device (hot-plugged ones included), in `dir`.
fn create_files(
    dir: &Path,
    plan: &Plan,
    pages: &BTreeMap<String, BTreeSet<u64>>,
    folios: HostFolios,
) -> Result<Vec<Backing>, OracleError> {
    plan.devices
        .iter()
        .map(|d| {
            let set = pages.get(&d.id).cloned().unwrap_or_default();
            Backing::create(&dir.join(format!("{}.img", d.id)), d.size.0, folios, &set)
        })
        .collect()
}

/// A fresh directory on a disk file system (cachestat shows no dirty pages
/// on tmpfs).
fn run_dir() -> Result<tempfile::TempDir, OracleError> {
    let base = std::env::temp_dir();
    let base = match crate::fs::FsKind::of_path(&base) {
        Ok(k) if !k.is_memory_only() => base,
        _ => PathBuf::from("/var/tmp"),
    };
    tempfile::Builder::new()
        .prefix("pmemlab-oracle-")
        .tempdir_in(&base)
        .map_err(OracleError::io(format!("cannot create a directory in {}", base.display())))
}

/// The one row of a run that never started: the model's refusal of a
/// device against the message QEMU exited with.
fn refused_at_start(model: String, real: String) -> StepRow {
    // QEMU prints `qemu-system-x86_64: -device …: MESSAGE`.
    let shown = if real.ends_with(&model) { model.clone() } else { real.clone() };
    StepRow {
        index: 0,
        op: "start".into(),
        model: format!("the machine refuses a device: {model}"),
        real,
        quantities: vec![compare::Quantity::compared("refusal at start", None, model, shown)],
    }
}

/// Runs the steps on both sides. The model keeps the real host's clock:
/// its time 0 is when the backing files were created (`created`: their
/// inodes went dirty then, as the real ones did), and before each step and
/// after it (before it is read) it lets pass the real time that went by —
/// the boot, a reboot, the guest agent's own pace — so the host's flusher,
/// which works by wall-clock age on the real side, sees the same ages in
/// the model. The model runs once per phase of the host flusher
/// ([`phases`]), all in lockstep with the one real run.
fn run_steps(
    mut runners: Vec<pmem_core::scenario::ScenarioRunner<machine::QemuPlug>>,
    plan: &Plan,
    pages: &BTreeMap<String, BTreeSet<u64>>,
    session: &mut Session,
    (folios, created): (HostFolios, Instant),
) -> Result<Vec<StepRow>, OracleError> {
    let scenario = runners[0].scenario().clone();
    let mut real_flush = BTreeMap::new();
    let mut model_flush = vec![BTreeMap::new(); runners.len()];
    let mut dated = vec![BTreeSet::new(); runners.len()];
    let mut rows = Vec::new();
    for (i, step) in scenario.steps().iter().enumerate() {
        let mut before = Vec::new();
        for (runner, dated) in runners.iter_mut().zip(&mut dated) {
            before.push(model_step_begins(runner, dated, step, pages, created)?);
        }
        let outcomes: Vec<_> = runners.iter_mut().map(|r| r.step().cloned()).collect();
        let Some(Some(first_outcome)) = outcomes.first().cloned() else { break };
        let mut real = session.step(i)?;
        if let Op::ExpectDurable { device, offset, data } = &step.op {
            real.durable = plan.index(device).map(|k| session.files[k].durable_range(offset.0, data.byte_len()));
        }
        let mut per_phase = Vec::new();
        let phases = runners.iter_mut().zip(before).zip(outcomes).zip(&mut model_flush);
        for (((runner, (counts, crash_image)), outcome), flushes) in phases {
            // The real step took time (a reboot takes many seconds): the
            // model is read at the same moment as the real host.
            runner.pass_time_to(real_clock(created));
            let m = runner.machine();
            let outcome = outcome.unwrap_or_else(|| first_outcome.clone());
            let model = ModelStep {
                devices: model_side::devices(m),
                data: model_side::data(m, step),
                flushes: model_side::flushes(m, &outcome),
                crash_image,
                outcome,
            };
            let mut ctx = Context { plan, folios, before: &counts, real_flush: &mut real_flush, model_flush: flushes };
            per_phase.push(compare::step(&mut ctx, step, &model, &real));
        }
        let verdict = if first_outcome.ok { "" } else { " [the model's step FAILED]" };
        rows.push(StepRow {
            index: i,
            op: step.op.name().to_string(),
            model: format!("{}{verdict}", first_outcome.detail),
            real: real.note.clone(),
            quantities: phases::merge(per_phase),
        });
    }
    Ok(rows)
}

/// What the model holds before a step: each device's popped and completed
/// requests, and before a power failure the crash image of the tracked
/// pages.
type Before = (BTreeMap<String, (u64, u64)>, BTreeMap<String, BTreeMap<u64, Vec<u8>>>);

/// Before a step in one model: each file not yet dated is dated from before
/// the boot, the real time that went by is passed in, and [`Before`] read.
fn model_step_begins(
    runner: &mut pmem_core::scenario::ScenarioRunner<machine::QemuPlug>,
    dated: &mut BTreeSet<String>,
    step: &pmem_core::scenario::Step,
    pages: &BTreeMap<String, BTreeSet<u64>>,
    created: Instant,
) -> Result<Before, OracleError> {
    for id in runner.machine().device_ids().to_vec() {
        if dated.insert(id.to_string()) {
            // Every file, hot-plugged ones too, was created before the boot.
            runner.host_file_dirtied(&id, SimTime::ZERO).map_err(|e| OracleError::Usage(e.to_string()))?;
        }
    }
    runner.pass_time_to(real_clock(created));
    let counts = model_side::devices(runner.machine()).into_iter().map(|d| (d.id, (d.popped, d.completed))).collect();
    let crash_image = match step.op {
        Op::PowerFailure => model_side::crash_image(runner.machine(), pages),
        _ => BTreeMap::new(),
    };
    Ok((counts, crash_image))
}

/// The real host's time since `created`, as the model's clock.
fn real_clock(created: Instant) -> SimTime {
    SimTime(u64::try_from(created.elapsed().as_nanos()).unwrap_or(u64::MAX))
}

fn load_of(args: &OracleArgs, scenario: &Scenario) -> Result<Option<load::Load>, OracleError> {
    let Some(processes) = args.flushers else { return Ok(None) };
    let Some(first) = scenario.devices().first() else {
        return Err(OracleError::Usage("--flushers needs a scenario with a device at boot".into()));
    };
    if !(1..=4096).contains(&processes) || !(1..=100_000).contains(&args.flush_count) {
        return Err(OracleError::Usage(format!(
            "--flushers {processes} --flush-count {}: give 1 to 4096 processes and 1 to 100000 rounds",
            args.flush_count
        )));
    }
    let stride = pmem_core::size::parse_size(&args.flusher_stride)
        .ok()
        .filter(|s| *s >= load::CHUNK && s.is_multiple_of(4096))
        .ok_or_else(|| {
            OracleError::Usage(format!(
                "--flusher-stride {}: give a size of at least 64K, in whole pages",
                args.flusher_stride
            ))
        })?;
    if (processes - 1) * stride + load::CHUNK > first.size.0 {
        return Err(OracleError::Usage(format!(
            "--flushers {processes} --flusher-stride {}: the chunks do not fit in device '{}' ({} bytes)",
            args.flusher_stride, first.id, first.size.0
        )));
    }
    Ok(Some(load::Load { processes, rounds: args.flush_count, wait_s: args.flushers_wait, stride }))
}

fn load_step(
    scenario: &Scenario,
    real_machine: &machine::RealMachine,
    l: &load::Load,
    session: &mut Session,
    index: usize,
) -> Result<StepRow, OracleError> {
    let m = real_machine.machine(scenario).map_err(|e| OracleError::Guest(format!("the model's machine: {e}")))?;
    let model = load::run_model(m, l);
    let real = session.step(index)?;
    Ok(StepRow {
        index,
        op: "flushers".into(),
        model: format!(
            "{} processes x {} rounds of 64 KiB pwrite + fsync on a fresh model machine (QEMU's host side, {} driver)",
            l.processes,
            l.rounds,
            real_machine.driver.personality()
        ),
        real: real.note.clone(),
        quantities: load::compare(&model, &real),
    })
}

/// The pages each device's steps touch (written, read or checked).
pub fn tracked_pages(scenario: &Scenario) -> BTreeMap<String, BTreeSet<u64>> {
    let mut pages: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for step in scenario.steps() {
        let (device, offset, len) = match &step.op {
            Op::Write { device, offset, data }
            | Op::ExpectData { device, offset, data }
            | Op::ExpectDurable { device, offset, data } => (device, offset.0, data.byte_len()),
            Op::Read { device, offset, len, .. } => (device, offset.0, len.0),
            _ => continue,
        };
        let set = pages.entry(device.clone()).or_default();
        set.extend(offset / PAGE..(offset + len.max(1)).div_ceil(PAGE));
    }
    pages
}

/// The initramfs: the agent as /init, the modules (decompressed), their
/// order and the steps.
fn write_initramfs(
    path: &Path,
    agent: &Path,
    kernel: &kernel::Kernel,
    plan: &Plan,
    driver: driver::Driver,
) -> Result<(), OracleError> {
    let read = |p: &Path| std::fs::read(p).map_err(OracleError::io(format!("cannot read {}", p.display())));
    let mut cpio = initramfs::Cpio::new();
    cpio.dir("lib").dir("lib/modules").executable("init", &read(agent)?);
    let mut order = String::new();
    let dax = if plan.dax { kernel::dax_modules(&kernel.version)? } else { Vec::new() };
    for m in kernel.modules.iter().chain(&dax) {
        let name = m.file_name().and_then(|n| n.to_str()).unwrap_or("m.ko").trim_end_matches(".xz").to_string();
        let mut bytes = if m.extension().is_some_and(|e| e == "xz") { unxz(m)? } else { read(m)? };
        if name == "nd_virtio.ko" && driver == driver::Driver::Unserialized {
            bytes = driver::unserialize(&bytes).map_err(OracleError::Guest)?;
        }
        cpio.file(&format!("lib/modules/{name}"), &bytes);
        order.push_str(&format!("/lib/modules/{name}\n"));
    }
    cpio.file("modules.order", order.as_bytes()).file("steps", plan.steps_file().as_bytes());
    std::fs::write(path, cpio.finish()).map_err(OracleError::io(format!("cannot write {}", path.display())))
}

fn unxz(path: &Path) -> Result<Vec<u8>, OracleError> {
    let out = std::process::Command::new("xz").arg("-dc").arg(path).output().map_err(|_| OracleError::Missing {
        what: "xz".into(),
        detail: "xz is not on PATH".into(),
        package: "xz-utils",
    })?;
    if !out.status.success() {
        return Err(OracleError::Guest(format!("{}: xz could not decompress it", path.display())));
    }
    Ok(out.stdout)
}
