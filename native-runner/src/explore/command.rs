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
    files: ImageFiles,
    timeout: Option<Duration>,
    runs: Arc<AtomicU64>,
    fatal: Arc<Mutex<Option<String>>>,
}

/// Where a campaign's crash images go as files, and what they hold: a
/// device of `size` bytes whose history wrote `pages`. Shared by the
/// per-image command and the checker server.
#[derive(Clone, Debug)]
pub struct ImageFiles {
    dir: Arc<PathBuf>,
    device: Arc<str>,
    pages: Arc<Vec<u64>>,
    size: u64,
    counter: Arc<AtomicU64>,
    layout: Option<Arc<PathBuf>>,
    companions: Option<Companions>,
}

/// Files written next to each image in its directory before the checker
/// sees it (a recorded program's other devices), by the crash being checked.
#[derive(Clone)]
pub struct Companions(pub Arc<WriteCompanions>);

/// Writes the companion files into a directory, for one crash.
pub type WriteCompanions = dyn Fn(&Path, &CrashContext) -> std::io::Result<()> + Send + Sync;

impl std::fmt::Debug for Companions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Companions")
    }
}

/// The facts a checker gets about one crash image: as `PMEMLAB_*`
/// variables for a command ([`ImageFacts::env`]), as one JSON line for a
/// checker server (its serde form).
#[derive(Clone, Debug, serde::Serialize)]
pub struct ImageFacts {
    /// The image file (of the device explored).
    pub image: PathBuf,
    /// Every device's image: one per device (a trace's other devices are
    /// the companion files in `image_dir`).
    pub images: Vec<DeviceImage>,
    /// With a file layout (a trace): the directory of its own the image is
    /// in, at the program's path, with the program's other devices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_dir: Option<PathBuf>,
    /// The device explored.
    pub device: String,
    /// The image's size in bytes.
    pub size: u64,
    /// The crash point's index.
    pub crash_point: usize,
    /// Writes issued before the crash.
    pub writes_done: usize,
    /// Writes a completed flush made durable.
    pub durable_writes: usize,
    /// Flushes that returned 0 to the application.
    pub acked_flushes: usize,
    /// Flushes that returned -EIO.
    pub failed_flushes: usize,
    /// Where a per-image command's output goes.
    #[serde(skip)]
    pub output: PathBuf,
}

/// One device's crash image file.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DeviceImage {
    /// The device id.
    pub device: String,
    /// The image file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

impl ImageFacts {
    /// The environment of a per-image command (see the module docs).
    pub fn env(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        let mut env = vec![
            ("PMEMLAB_IMAGE", self.image.clone().into_os_string()),
            ("PMEMLAB_IMAGE_SIZE", self.size.to_string().into()),
            ("PMEMLAB_DEVICE", self.device.clone().into()),
            ("PMEMLAB_CRASH_POINT", self.crash_point.to_string().into()),
            ("PMEMLAB_WRITES_DONE", self.writes_done.to_string().into()),
            ("PMEMLAB_DURABLE_WRITES", self.durable_writes.to_string().into()),
            ("PMEMLAB_ACKED_FLUSHES", self.acked_flushes.to_string().into()),
            ("PMEMLAB_FAILED_FLUSHES", self.failed_flushes.to_string().into()),
        ];
        if let Some(d) = &self.image_dir {
            env.push(("PMEMLAB_IMAGE_DIR", d.clone().into_os_string()));
        }
        env
    }
}

impl ImageFiles {
    /// Image files in `dir` for `device` (`size` bytes, history wrote `pages`).
    pub fn new(dir: &Path, device: &str, pages: Vec<u64>, size: u64) -> ImageFiles {
        ImageFiles {
            dir: Arc::new(dir.to_path_buf()),
            device: device.into(),
            pages: Arc::new(pages),
            size,
            counter: Arc::new(AtomicU64::new(0)),
            layout: None,
            companions: None,
        }
    }

    /// Each image at `rel` inside a new directory of its own (a recorded
    /// program's file layout, so its own recovery can open it);
    /// `companions` writes further files into that directory first.
    pub fn with_layout(mut self, rel: &Path, companions: Option<Companions>) -> ImageFiles {
        self.layout = Some(Arc::new(rel.to_path_buf()));
        self.companions = companions;
        self
    }

    /// The device explored.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The images' size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The directory the images go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `image` to a new file named after the device and the crash
    /// point (or at the layout's path in a new directory so named, with the
    /// companion files); returns its facts. The caller removes the files
    /// ([`ImageFacts::remove`]). On failure nothing is left behind.
    pub fn write(&self, image: &dyn ImageReader, ctx: &CrashContext) -> Result<ImageFacts, String> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-point{}-{n}", self.device, ctx.point.index);
        let image_dir = self.layout.as_ref().map(|_| self.dir.join(&name));
        let path = match (&self.layout, &image_dir) {
            (Some(rel), Some(d)) => d.join(&**rel),
            _ => self.dir.join(format!("{name}.img")),
        };
        let made = path.parent().map_or(Ok(()), std::fs::create_dir_all);
        let others = |()| match (&self.companions, &image_dir) {
            (Some(c), Some(d)) => (c.0)(d, ctx),
            _ => Ok(()),
        };
        if let Err(e) = made.and_then(|()| write_image(image, &self.pages, self.size, &path)).and_then(others) {
            match &image_dir {
                Some(d) => drop(std::fs::remove_dir_all(d)),
                None => drop(std::fs::remove_file(&path)),
            }
            return Err(format!("cannot write the crash image {}: {e}", path.display()));
        }
        let p = &ctx.point;
        Ok(ImageFacts {
            image_dir,
            output: self.dir.join(format!("{name}.out")),
            images: vec![DeviceImage { device: self.device.to_string(), path: path.clone(), size: self.size }],
            image: path,
            device: self.device.to_string(),
            size: self.size,
            crash_point: p.index,
            writes_done: p.writes_done,
            durable_writes: p.durable_upto,
            acked_flushes: p.acked_flushes,
            failed_flushes: p.failed_flushes,
        })
    }
}

impl ImageFacts {
    /// Removes the image files (the image's directory, with a layout).
    pub fn remove(&self) {
        if let Some(d) = &self.image_dir {
            let _ = std::fs::remove_dir_all(d);
            return;
        }
        for i in &self.images {
            let _ = std::fs::remove_file(&i.path);
        }
    }
}

/// Kills the process group `child` leads (made with `process_group(0)`),
/// then the child itself, and reaps it.
pub fn kill_group(child: &mut std::process::Child) {
    if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group the
        // child leads (created by `process_group(0)`, not yet reaped, so its
        // id is not reused); no memory is involved.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
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

/// The last non-empty line of a file (at most 300 characters), or "".
pub fn last_line(path: &Path) -> String {
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
        CommandChecker::from_files(command, ImageFiles::new(dir, device, pages, size), timeout)
    }

    /// A checker running `command` on the images `files` writes.
    pub fn from_files(command: &str, files: ImageFiles, timeout: Option<Duration>) -> CommandChecker {
        CommandChecker {
            command: command.into(),
            files,
            timeout,
            runs: Arc::new(AtomicU64::new(0)),
            fatal: Arc::new(Mutex::new(None)),
        }
    }

    /// Each image at `rel` inside a directory of its own, which is the
    /// command's working directory and is in `PMEMLAB_IMAGE_DIR` (see
    /// [`ImageFiles::with_layout`]).
    pub fn with_layout(mut self, rel: &Path, companions: Option<Companions>) -> CommandChecker {
        self.files = self.files.with_layout(rel, companions);
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

    fn run(&self, facts: &ImageFacts, out: &Path) -> Result<(), String> {
        let log = File::create(out).map_err(|e| self.set_fatal(format!("cannot create {}: {e}", out.display())))?;
        let log2 = log.try_clone().map_err(|e| self.set_fatal(format!("cannot duplicate a descriptor: {e}")))?;
        use std::os::unix::process::CommandExt;
        let mut command = Command::new("/bin/sh");
        if let Some(dir) = &facts.image_dir {
            command.current_dir(dir);
        }
        let mut child = command
            // Its own process group: a timeout kills the command's children
            // too.
            .process_group(0)
            .arg("-c")
            .arg(format!("{} \"$@\"", self.command))
            .arg("pmemlab-checker")
            .arg(&facts.image)
            .envs(facts.env())
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
                            kill_group(&mut child);
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
        let facts = self.files.write(image, ctx).map_err(|e| self.set_fatal(e))?;
        let out = facts.output.clone();
        let result = self.run(&facts, &out);
        facts.remove();
        let _ = std::fs::remove_file(&out);
        result
    }
}
