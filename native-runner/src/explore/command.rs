//! [`CommandChecker`]: a crash image judged by a command of the user's.
//!
//! For every image the checker writes a new sparse file of the device's
//! size (only the pages the history ever wrote can differ from zero), runs
//! `/bin/sh -c 'CMD "$@"' pmemlab-checker IMAGE` — so `CMD` may use shell
//! syntax, and the image path is its last argument — with the environment
//!
//! | variable | value |
//! | --- | --- |
//! | `PMEMLAB_IMAGE` | the image file |
//! | `PMEMLAB_IMAGE_SIZE` | its size in bytes |
//! | `PMEMLAB_DEVICE` | the device id |
//! | `PMEMLAB_CRASH_POINT` | the crash point's index |
//! | `PMEMLAB_WRITES_DONE` | writes issued before the crash |
//! | `PMEMLAB_DURABLE_WRITES` | writes a completed flush made durable |
//! | `PMEMLAB_ACKED_FLUSHES` | flushes returned 0 to the application |
//! | `PMEMLAB_FAILED_FLUSHES` | flushes returned -EIO |
//! | `PMEMLAB_IMAGE_DIR` | with a file layout (a trace): the image's directory, also the working directory |
//!
//! and removes the file again. Exit status 0 means consistent; any other
//! status, or death by a signal, is a violation whose message is the
//! command's last line of output. The command runs in its own process
//! group (a timeout kills the whole group; Ctrl-C at the terminal does not
//! reach it, and the campaign stops once the running checks end). Exit status 126 or 127 is the shell
//! saying the command could not be run at all: that stops the campaign (a
//! user error), rather than reporting every image as inconsistent. With a
//! timeout, a command running longer is killed and the image counts as a
//! violation.

use pmem_core::crash::{Checker, CrashContext, ImageReader};
use pmem_core::memory::PAGE_SIZE;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs a command on crash images (see the module docs).
#[derive(Clone, Debug)]
pub struct CommandChecker {
    command: Arc<str>,
    dir: Arc<PathBuf>,
    device: Arc<str>,
    pages: Arc<Vec<u64>>,
    size: u64,
    timeout: Option<Duration>,
    counter: Arc<AtomicU64>,
    runs: Arc<AtomicU64>,
    fatal: Arc<Mutex<Option<String>>>,
    layout: Option<Arc<PathBuf>>,
    companions: Option<Companions>,
}

/// Files written next to each image in its directory before the command
/// runs (a recorded program's other devices), by the crash being checked.
#[derive(Clone)]
pub struct Companions(pub Arc<WriteCompanions>);

/// Writes the companion files into a directory, for one crash.
pub type WriteCompanions = dyn Fn(&Path, &CrashContext) -> std::io::Result<()> + Send + Sync;

impl std::fmt::Debug for Companions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Companions")
    }
}

/// Writes a crash image: a new sparse file of `size` bytes holding the
/// non-zero pages among `pages` (every other page of the image is zero).
pub fn write_image(image: &dyn ImageReader, pages: &[u64], size: u64, path: &Path) -> std::io::Result<()> {
    let f = OpenOptions::new().write(true).create_new(true).open(path)?;
    fill_image(&f, image, pages, size)
}

/// Sizes `f` to `size` bytes and writes the non-zero pages among `pages`.
pub fn fill_image(f: &File, image: &dyn ImageReader, pages: &[u64], size: u64) -> std::io::Result<()> {
    f.set_len(size)?;
    let mut buf = vec![0u8; PAGE_SIZE as usize];
    for &p in pages {
        let at = p * PAGE_SIZE;
        if at >= size {
            continue;
        }
        let n = (size - at).min(PAGE_SIZE) as usize;
        image.read(at, &mut buf[..n]);
        if buf[..n].iter().any(|&b| b != 0) {
            f.write_all_at(&buf[..n], at)?;
        }
    }
    Ok(())
}

fn last_line(path: &Path) -> String {
    let Ok(mut f) = File::open(path) else { return String::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
    let mut tail = Vec::new();
    let _ = f.read_to_end(&mut tail);
    let text = String::from_utf8_lossy(&tail);
    let line = text.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    let mut s: String = line.chars().take(300).collect();
    if line.chars().count() > 300 {
        s.push('…');
    }
    s
}

impl CommandChecker {
    /// A checker running `command` on images of `size` bytes of `device`
    /// whose history wrote `pages`, with image files in `dir`.
    pub fn new(
        command: &str,
        dir: &Path,
        device: &str,
        pages: Vec<u64>,
        size: u64,
        timeout: Option<Duration>,
    ) -> CommandChecker {
        CommandChecker {
            command: command.into(),
            dir: Arc::new(dir.to_path_buf()),
            device: device.into(),
            pages: Arc::new(pages),
            size,
            timeout,
            counter: Arc::new(AtomicU64::new(0)),
            runs: Arc::new(AtomicU64::new(0)),
            fatal: Arc::new(Mutex::new(None)),
            layout: None,
            companions: None,
        }
    }

    /// Each image at `rel` inside a new directory of its own, which is the
    /// command's working directory and is in `PMEMLAB_IMAGE_DIR` (a
    /// recorded program's file layout, so its own recovery can open it).
    /// `companions` writes further files into that directory first.
    pub fn with_layout(mut self, rel: &Path, companions: Option<Companions>) -> CommandChecker {
        self.layout = Some(Arc::new(rel.to_path_buf()));
        self.companions = companions;
        self
    }

    /// Why the command cannot be run, once that is known.
    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Times the command ran.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    fn set_fatal(&self, why: String) -> String {
        let mut f = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(why.clone());
        }
        why
    }

    fn run(&self, image: &Path, out: &Path, cwd: Option<&Path>, ctx: &CrashContext) -> Result<(), String> {
        let log = File::create(out).map_err(|e| self.set_fatal(format!("cannot create {}: {e}", out.display())))?;
        let log2 = log.try_clone().map_err(|e| self.set_fatal(format!("cannot duplicate a descriptor: {e}")))?;
        let p = &ctx.point;
        use std::os::unix::process::CommandExt;
        let mut command = Command::new("/bin/sh");
        if let Some(dir) = cwd {
            command.current_dir(dir).env("PMEMLAB_IMAGE_DIR", dir);
        }
        let mut child = command
            // Its own process group: a timeout kills the command's children
            // too.
            .process_group(0)
            .arg("-c")
            .arg(format!("{} \"$@\"", self.command))
            .arg("pmemlab-checker")
            .arg(image)
            .env("PMEMLAB_IMAGE", image)
            .env("PMEMLAB_IMAGE_SIZE", self.size.to_string())
            .env("PMEMLAB_DEVICE", &*self.device)
            .env("PMEMLAB_CRASH_POINT", p.index.to_string())
            .env("PMEMLAB_WRITES_DONE", p.writes_done.to_string())
            .env("PMEMLAB_DURABLE_WRITES", p.durable_upto.to_string())
            .env("PMEMLAB_ACKED_FLUSHES", p.acked_flushes.to_string())
            .env("PMEMLAB_FAILED_FLUSHES", p.failed_flushes.to_string())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| self.set_fatal(format!("cannot start /bin/sh to run the checker: {e}")))?;
        self.runs.fetch_add(1, Ordering::Relaxed);
        let status = match self.timeout {
            None => child.wait(),
            Some(limit) => {
                let start = Instant::now();
                let mut nap = Duration::from_micros(50);
                loop {
                    match child.try_wait() {
                        Ok(Some(s)) => break Ok(s),
                        Ok(None) if start.elapsed() >= limit => {
                            if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
                                // SAFETY: kill(2) with a negative pid signals
                                // the process group the child leads (created
                                // by `process_group(0)` above, not yet
                                // reaped); no memory is involved.
                                unsafe {
                                    libc::kill(-pgid, libc::SIGKILL);
                                }
                            }
                            let _ = child.kill();
                            let _ = child.wait();
                            return Err(format!("the checker ran longer than {}s and was killed", limit.as_secs_f64()));
                        }
                        Ok(None) => {
                            std::thread::sleep(nap);
                            nap = (nap * 2).min(Duration::from_millis(5));
                        }
                        Err(e) => break Err(e),
                    }
                }
            }
        }
        .map_err(|e| self.set_fatal(format!("waiting for the checker failed: {e}")))?;
        if status.success() {
            return Ok(());
        }
        let line = last_line(out);
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(c @ (126 | 127)), _) => Err(self.set_fatal(format!(
                "the checker command `{}` could not be run (exit status {c}{}{line})",
                self.command,
                if line.is_empty() { "" } else { ": " }
            ))),
            (Some(c), _) if line.is_empty() => Err(format!("checker exit status {c}")),
            (Some(c), _) => Err(format!("checker exit status {c}: {line}")),
            (None, Some(sig)) => {
                Err(format!("the checker was killed by signal {sig}{}{line}", if line.is_empty() { "" } else { ": " }))
            }
            (None, None) => Err("the checker ended abnormally".to_string()),
        }
    }
}

impl Checker for CommandChecker {
    fn check(&self, image: &dyn ImageReader, ctx: &CrashContext) -> Result<(), String> {
        if let Some(f) = self.fatal() {
            return Err(f);
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-point{}-{n}", self.device, ctx.point.index);
        let cwd = self.layout.as_ref().map(|_| self.dir.join(&name));
        let path = match (&self.layout, &cwd) {
            (Some(rel), Some(d)) => d.join(&**rel),
            _ => self.dir.join(format!("{name}.img")),
        };
        let out = self.dir.join(format!("{name}.out"));
        let made = path.parent().map_or(Ok(()), std::fs::create_dir_all);
        let others = |()| match (&self.companions, &cwd) {
            (Some(c), Some(d)) => (c.0)(d, ctx),
            _ => Ok(()),
        };
        if let Err(e) = made.and_then(|()| write_image(image, &self.pages, self.size, &path)).and_then(others) {
            let _ = std::fs::remove_file(&path);
            return Err(self.set_fatal(format!("cannot write the crash image {}: {e}", path.display())));
        }
        let result = self.run(&path, &out, cwd.as_deref(), ctx);
        match &cwd {
            Some(d) => drop(std::fs::remove_dir_all(d)),
            None => drop(std::fs::remove_file(&path)),
        }
        let _ = std::fs::remove_file(&out);
        result
    }
}
