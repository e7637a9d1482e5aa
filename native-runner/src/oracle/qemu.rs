//! One QEMU process: the seed's command line under TCG with the guest
//! agent as /init, its console (the agent's lines, and the byte that lets
//! it go on), its trace events on stderr, and a kill of its whole process
//! group on every way out (drop, Ctrl-C, SIGTERM, pmemlab's own death).

use super::agent::{self, Line};
use super::error::OracleError;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Guest RAM and memory-device slots, as in the seed; `maxmem` (what lets
/// QEMU place virtio-pmem at all) comes from `--maxmem` (2G by default):
/// [`super::machine::memory_option`].
pub const MEMORY: &str = "512M,slots=2";

/// A backing file on QEMU's command line.
#[derive(Clone, Debug)]
pub struct BackingFile {
    /// The device id (`-device …,id=`); the memory backend is `m-ID`.
    pub id: String,
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// `share=on`.
    pub share: bool,
    /// `readonly=on`.
    pub readonly: bool,
}

impl BackingFile {
    /// The memory backend's id.
    pub fn memdev(&self) -> String {
        format!("m-{}", self.id)
    }
}

/// What to start.
#[derive(Clone, Debug)]
pub struct Launch {
    /// qemu-system-x86_64.
    pub qemu: PathBuf,
    /// The uncompressed kernel.
    pub vmlinux: PathBuf,
    /// The initramfs.
    pub initrd: PathBuf,
    /// The devices present at boot.
    pub devices: Vec<BackingFile>,
    /// The DAX scratch device, plugged after them ([`super::dax`]).
    pub scratch: Option<BackingFile>,
    /// The first step the agent runs.
    pub start: usize,
    /// The QMP socket.
    pub qmp: PathBuf,
    /// Where the console and stderr are copied.
    pub log_dir: PathBuf,
    /// The value of `-m` (RAM, slots and `maxmem`).
    pub memory: String,
    /// A slow host disk: the shim preloaded into QEMU and its delay (µs).
    pub slow_fsync: Option<(PathBuf, u64)>,
}

/// Trace events of `-trace 'virtio_pmem*'` seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TraceCounts {
    /// `virtio_pmem_flush_request`: a request popped from the queue.
    pub requests: u64,
    /// `virtio_pmem_flush_done`: the host fsync returned.
    pub done: u64,
    /// … with a non-zero return.
    pub failed: u64,
    /// `virtio_pmem_response`: the answer pushed to the used ring.
    pub responses: u64,
    /// Most requests popped and not yet answered at one time (over the
    /// QEMU run so far).
    pub max_in_flight: u64,
}

#[derive(Debug)]
struct Stderr {
    counts: TraceCounts,
    last: Instant,
    other: Vec<String>,
}

/// The process group of the running QEMU (0: none), for the signal handler.
static RUNNING: AtomicI32 = AtomicI32::new(0);
/// Set when Ctrl-C or SIGTERM arrived while QEMU ran.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    let pgid = RUNNING.load(Ordering::SeqCst);
    if pgid > 0 {
        // SAFETY: kill(2) is async-signal-safe; it only sends a signal.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        INTERRUPTED.store(true, Ordering::SeqCst);
    } else {
        // SAFETY: _exit(2) is async-signal-safe and ends the process.
        unsafe { libc::_exit(130) };
    }
}

/// Kills QEMU's process group on Ctrl-C and SIGTERM (the run then ends
/// with exit code 130).
pub fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_signal` only calls async-signal-safe functions and
        // touches atomics; the sigaction struct is zeroed and then filled.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// True when a signal ended the run.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// A running QEMU.
pub struct Qemu {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<Stderr>>,
    exited: Option<ExitStatus>,
}

/// How waiting for the agent ended, when it did not give a line.
#[derive(Debug)]
pub enum Waited {
    /// QEMU ended (status).
    Exited(Option<i32>),
    /// The deadline passed.
    TimedOut,
}

impl Qemu {
    /// Starts QEMU with the seed's command line for `l`.
    pub fn launch(l: &Launch) -> Result<Qemu, OracleError> {
        let mut cmd = command(l);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
            // SAFETY: between fork and exec the closure only calls prctl(2),
            // which is async-signal-safe; it asks for SIGKILL when pmemlab
            // dies, so no QEMU outlives it.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().map_err(OracleError::io(format!("cannot start {}", l.qemu.display())))?;
        RUNNING.store(child.id() as i32, Ordering::SeqCst);
        let stdin = child.stdin.take();
        let lines = read_console(child.stdout.take(), l.log_dir.join("console.log"));
        let stderr = read_stderr(child.stderr.take(), l.log_dir.join("qemu-stderr.log"));
        Ok(Qemu { child, stdin, lines, stderr, exited: None })
    }

    /// The next agent line, until `deadline`.
    pub fn next_line(&mut self, deadline: Instant) -> Result<Line, Waited> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(text) => {
                    if let Some(line) = agent::parse(&text) {
                        return Ok(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Err(Waited::TimedOut),
                Err(RecvTimeoutError::Disconnected) => return Err(Waited::Exited(self.wait_until(deadline))),
            }
        }
    }

    /// Lets the agent run its next step.
    pub fn go(&mut self) -> Result<(), OracleError> {
        let stdin = self.stdin.as_mut().ok_or_else(|| OracleError::Guest("QEMU's console is closed".into()))?;
        stdin.write_all(b"\n").and_then(|_| stdin.flush()).map_err(OracleError::io("cannot write to QEMU's console"))
    }

    /// The trace counts, once stderr has been quiet for a moment (the
    /// worker thread's `flush_done` comes a few ms after the request).
    pub fn trace(&self) -> TraceCounts {
        let quiet = Duration::from_millis(40);
        let until = Instant::now() + Duration::from_millis(500);
        loop {
            let s = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
            let settled = s.counts.requests == s.counts.responses && s.last.elapsed() >= quiet;
            if settled || Instant::now() >= until {
                return s.counts;
            }
            drop(s);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// [`Qemu::trace`], once at least `responses` more flush responses than
    /// `before` have been traced (or `wait` has passed): a guest fsync that
    /// returned was answered, but QEMU's trace lines reach us through a
    /// pipe, later on a loaded host than the guest's report.
    pub fn trace_after(&self, before: &TraceCounts, responses: u64, wait: Duration) -> TraceCounts {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            let done = self.stderr.lock().unwrap_or_else(|p| p.into_inner()).counts.responses;
            if done >= before.responses + responses {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.trace()
    }

    /// QEMU's own messages (stderr lines that are not trace events).
    pub fn messages(&self) -> Vec<String> {
        self.stderr.lock().unwrap_or_else(|p| p.into_inner()).other.clone()
    }

    /// Waits for QEMU to end, until `deadline`; its exit code.
    pub fn wait_until(&mut self, deadline: Instant) -> Option<i32> {
        while self.exited.is_none() && Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(st)) => self.exited = Some(st),
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => break,
            }
        }
        self.exited.and_then(|s| s.code())
    }

    /// Kills the whole process group and reaps QEMU.
    pub fn kill(&mut self) {
        if self.exited.is_none() {
            let pgid = self.child.id() as i32;
            // SAFETY: kill(2) on QEMU's own process group (it leads it).
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            self.exited = self.child.wait().ok();
        }
        RUNNING.store(0, Ordering::SeqCst);
        self.stdin = None;
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        self.kill();
    }
}

fn command(l: &Launch) -> Command {
    let mut c = Command::new(&l.qemu);
    c.args(["-accel", "tcg", "-nographic", "-no-reboot", "-m"]).arg(&l.memory);
    c.arg("-kernel").arg(&l.vmlinux).arg("-initrd").arg(&l.initrd);
    c.arg("-append").arg(format!(
        "console=ttyS0 quiet panic=-1 pmemlab.start={} pmemlab.ndev={} pmemlab.dax={}",
        l.start,
        l.devices.len(),
        u8::from(l.scratch.is_some())
    ));
    for d in l.devices.iter().chain(&l.scratch) {
        c.arg("-object").arg(backend_option(d));
        c.arg("-device").arg(format!("virtio-pmem-pci,memdev={},id={}", d.memdev(), d.id));
    }
    c.args(["-trace", "virtio_pmem*"]);
    c.arg("-qmp").arg(format!("unix:{},server=on,wait=off", l.qmp.display()));
    if let Some((shim, us)) = &l.slow_fsync {
        c.env("LD_PRELOAD", shim).env("PMEMLAB_FSYNC_DELAY_US", us.to_string());
    }
    c
}

/// The `-object` option of a backing file.
pub fn backend_option(d: &BackingFile) -> String {
    format!(
        "memory-backend-file,id={},share={},mem-path={},size={}{}",
        d.memdev(),
        if d.share { "on" } else { "off" },
        d.path.display(),
        d.size,
        if d.readonly { ",readonly=on" } else { "" }
    )
}

fn read_console(out: Option<std::process::ChildStdout>, log: PathBuf) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(out) = out {
        std::thread::spawn(move || {
            let mut log = std::fs::OpenOptions::new().create(true).append(true).open(log).ok();
            let mut r = BufReader::new(out);
            let mut buf = Vec::new();
            while r.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                let line = String::from_utf8_lossy(&buf).into_owned();
                if let Some(f) = log.as_mut() {
                    let _ = f.write_all(&buf);
                }
                buf.clear();
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

fn read_stderr(err: Option<std::process::ChildStderr>, log: PathBuf) -> Arc<Mutex<Stderr>> {
    let shared =
        Arc::new(Mutex::new(Stderr { counts: TraceCounts::default(), last: Instant::now(), other: Vec::new() }));
    if let Some(err) = err {
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            let mut log = std::fs::OpenOptions::new().create(true).append(true).open(log).ok();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Some(f) = log.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
                let mut st = s.lock().unwrap_or_else(|p| p.into_inner());
                st.last = Instant::now();
                count_trace(&mut st, line);
            }
        });
    }
    shared
}

fn count_trace(st: &mut Stderr, line: String) {
    if line.contains("virtio_pmem_flush_request") {
        st.counts.requests += 1;
        let c = &mut st.counts;
        c.max_in_flight = c.max_in_flight.max(c.requests.saturating_sub(c.responses));
    } else if line.contains("virtio_pmem_flush_done") {
        st.counts.done += 1;
        if !line.trim_end().ends_with("return=0") {
            st.counts.failed += 1;
        }
    } else if line.contains("virtio_pmem_response") {
        st.counts.responses += 1;
    } else if st.other.len() < 20 {
        st.other.push(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracles_command_line_is_one_pmemlab_qemu_takes_whole() {
        let file = |id: &str, share| BackingFile {
            id: id.into(),
            path: format!("/tmp/{id}.img").into(),
            size: 1 << 20,
            share,
            readonly: !share,
        };
        let l = Launch {
            qemu: "qemu-system-x86_64".into(),
            vmlinux: "vmlinux".into(),
            initrd: "initrd.cpio".into(),
            devices: vec![file("nv1", true), file("nv2", false)],
            scratch: Some(file("pmemlab-dax", true)),
            start: 0,
            qmp: "/tmp/qmp.sock".into(),
            log_dir: "/tmp".into(),
            memory: super::super::machine::memory_option("2G"),
            slow_fsync: None,
        };
        let args: Vec<String> = command(&l).get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        let cfg = crate::qemu::QemuConfig::from_args(&args).unwrap();
        // The DAX scratch device comes after the scenario's.
        assert_eq!((cfg.objects.len(), cfg.devices.len()), (3, 3));
        assert!(args.iter().any(|a| a.contains("pmemlab.ndev=2 pmemlab.dax=1")));
        assert_eq!(cfg.memory.maxmem, Some(2 << 30));
        assert!(cfg.objects[1].readonly && !cfg.objects[1].share);
        // -accel, -nographic, -no-reboot, -kernel, -initrd, -append, -trace, -qmp.
        assert_eq!(cfg.notes.len(), 8, "{:#?}", cfg.notes);
    }
}
