//! [`ServerChecker`]: crash images judged by a persistent checker process
//! of the user's (`--checker-server CMD`), the protocol of
//! docs/checker-protocol.md.
//!
//! `CMD` runs through `/bin/sh -c` once per job (worker thread), in its own
//! process group, and lives for the whole campaign. For every image
//! pmemlab writes the image file (as the per-image command gets it, see
//! [`super::command`]) and one JSON line to the server's stdin — the
//! [`ImageFacts`]: `image`, `images` (one per device), `device`, `size`,
//! `crash_point`, `writes_done`, `durable_writes`, `acked_flushes`,
//! `failed_flushes` — and reads one line from its stdout: `ok`, or
//! `fail: REASON` (a violation whose message is REASON). The image file is
//! removed once the answer is in.
//!
//! A server that exits, closes its stdout, answers anything else, or takes
//! longer than `--timeout` is killed (its whole process group); the image
//! counts as a violation whose message says what happened, and the next
//! image starts a new server. A server that cannot be run (the shell's exit
//! status 126 or 127), or that fails [`FAILURES_IN_A_ROW`] images in a row,
//! stops the campaign (`explore` then exits with 2 and one line).
//!
//! No server outlives pmemlab: they are killed when the campaign ends, on
//! an error, on Ctrl-C or SIGTERM (the campaign stops, see
//! [`super::install_interrupt_handler`]); and should pmemlab itself be
//! killed, the shell leading each server's process group gets SIGTERM from
//! the kernel (`PR_SET_PDEATHSIG`, armed by the one thread that starts
//! servers) and kills its whole group (see `watched`).

use super::command::{kill_group, last_line, ImageFacts, ImageFiles};
use super::target::CheckerSet;
use pmem_core::crash::{Checker, CrashContext, ImageReader};
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A server failing this many images in a row (on any threads, with no
/// verdict between) stops the campaign: it is not the images, it is the
/// server.
pub const FAILURES_IN_A_ROW: u64 = 5;

/// The longest verdict line read (a longer one is an answer of garbage).
const MAX_LINE: u64 = 64 * 1024;

/// How long servers get to exit on their own once their stdin is closed at
/// the end of a campaign, before they are killed.
const GRACE: Duration = Duration::from_millis(200);

/// How often a wait for an answer looks at the stop flag (Ctrl-C).
const POLL: Duration = Duration::from_millis(50);

/// A persistent checker per job (see the module docs).
pub struct ServerChecker {
    command: Arc<str>,
    files: ImageFiles,
    timeout: Option<Duration>,
    stop: &'static AtomicBool,
    idle: Mutex<Vec<Server>>,
    spawner: Mutex<Option<Spawner>>,
    fatal: Mutex<Option<String>>,
    failures_in_a_row: AtomicU64,
    starts: AtomicU64,
}

/// One running server: the process, and the thread that talks to it.
struct Server {
    child: Child,
    requests: Option<Sender<String>>,
    answers: Receiver<Result<String, String>>,
    stderr: PathBuf,
    answered: u64,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.requests = None;
        kill_group(&mut self.child);
        let _ = std::fs::remove_file(&self.stderr);
    }
}

/// What a server made of one image.
enum Answer {
    /// `ok` or `fail: …`.
    Verdict(Result<(), String>),
    /// It died, hung or answered garbage: why.
    Broken(String),
}

impl ServerChecker {
    /// Servers running `command` on the images `files` writes; `stop` is
    /// the campaign's stop flag (Ctrl-C). Starts one server now, so that a
    /// command that cannot start stops the campaign before it begins.
    pub fn new(
        command: &str,
        files: ImageFiles,
        timeout: Option<Duration>,
        stop: &'static AtomicBool,
    ) -> Result<ServerChecker, String> {
        let checker = ServerChecker {
            command: command.into(),
            files,
            timeout,
            stop,
            idle: Mutex::new(Vec::new()),
            spawner: Mutex::new(Some(Spawner::new()?)),
            fatal: Mutex::new(None),
            failures_in_a_row: AtomicU64::new(0),
            starts: AtomicU64::new(0),
        };
        let first = checker.start()?;
        checker.idle.lock().unwrap_or_else(|p| p.into_inner()).push(first);
        Ok(checker)
    }

    /// Servers started so far (restarts included).
    pub fn starts(&self) -> u64 {
        self.starts.load(Ordering::Relaxed)
    }

    fn set_fatal(&self, why: String) -> String {
        let mut f = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
        f.get_or_insert(why).clone()
    }

    /// Starts a server (through the spawner thread).
    fn start(&self) -> Result<Server, String> {
        let k = self.starts.fetch_add(1, Ordering::Relaxed);
        let stderr = self.files.dir().join(format!("checker-server-{k}.err"));
        let request = SpawnRequest {
            command: self.command.to_string(),
            stderr: stderr.clone(),
            env: vec![
                ("PMEMLAB_CHECKER_PROTOCOL", "1".into()),
                ("PMEMLAB_DEVICE", self.files.device().into()),
                ("PMEMLAB_IMAGE_SIZE", self.files.size().to_string()),
                ("PMEMLAB_IMAGE_DIR", self.files.dir().display().to_string()),
            ],
        };
        let spawner = self.spawner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(spawner) = spawner.as_ref() else { return Err("the campaign is ending".into()) };
        let (child, stdin, stdout) =
            spawner.spawn(request).map_err(|e| format!("cannot start the checker server `{}`: {e}", self.command))?;
        let (requests, answers) = talk(stdin, stdout);
        Ok(Server { child, requests: Some(requests), answers, stderr, answered: 0 })
    }

    /// Sends the image's facts to `server` and waits for its answer.
    fn ask(&self, server: &mut Server, facts: &ImageFacts) -> Answer {
        let line = match serde_json::to_string(facts) {
            Ok(l) => l,
            Err(e) => return Answer::Broken(format!("the image's facts cannot be written as JSON: {e}")),
        };
        if server.requests.as_ref().is_none_or(|r| r.send(line).is_err()) {
            return Answer::Broken("the checker server's connection is gone".into());
        }
        let start = Instant::now();
        loop {
            let slice = match self.timeout {
                Some(limit) if start.elapsed() >= limit => {
                    return Answer::Broken(format!(
                        "the checker server gave no answer within {}s and was killed",
                        limit.as_secs_f64()
                    ))
                }
                Some(limit) => (limit - start.elapsed()).min(POLL),
                None => POLL,
            };
            match server.answers.recv_timeout(slice) {
                Ok(Ok(answer)) => return parse_verdict(&answer),
                Ok(Err(why)) => return Answer::Broken(why),
                Err(RecvTimeoutError::Disconnected) => return Answer::Broken("the checker server went away".into()),
                Err(RecvTimeoutError::Timeout) if self.stop.load(Ordering::Relaxed) => {
                    return Answer::Broken("interrupted".into())
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Kills a broken server (dropping it kills its process group) and
    /// words what happened (its exit status and the last line it wrote on
    /// stderr); the fatal cases stop the campaign.
    fn bury(&self, mut server: Server, why: String) -> String {
        let first = server.answered == 0;
        let status = wait_briefly(&mut server.child);
        let said = last_line(&server.stderr);
        drop(server);
        let mut msg = why;
        use std::os::unix::process::ExitStatusExt;
        match status.map(|s| (s.code(), s.signal())) {
            Some((Some(c @ (126 | 127)), _)) if first => {
                return self.set_fatal(format!(
                    "the checker server `{}` could not be run (exit status {c}{}{said})",
                    self.command,
                    if said.is_empty() { "" } else { ": " }
                ));
            }
            Some((Some(c), _)) => msg.push_str(&format!(" (it exited with status {c})")),
            Some((None, Some(sig))) => msg.push_str(&format!(" (it was killed by signal {sig})")),
            _ => {}
        }
        if !said.is_empty() {
            msg.push_str(&format!("; its stderr: {said}"));
        }
        let row = self.failures_in_a_row.fetch_add(1, Ordering::SeqCst) + 1;
        if row >= FAILURES_IN_A_ROW && !self.stop.load(Ordering::Relaxed) {
            self.set_fatal(format!(
                "the checker server `{}` failed {row} images in a row, the last with: {msg}",
                self.command
            ));
        }
        msg
    }
}

/// The verdict a line says, or why it is garbage.
fn parse_verdict(line: &str) -> Answer {
    let Some(text) = line.strip_suffix('\n') else {
        return Answer::Broken(format!("the checker server's answer is longer than {MAX_LINE} bytes"));
    };
    let text = text.trim();
    if text == "ok" {
        return Answer::Verdict(Ok(()));
    }
    if text == "fail" {
        return Answer::Verdict(Err("the checker server said fail".into()));
    }
    if let Some(reason) = text.strip_prefix("fail:").map(str::trim) {
        let reason = if reason.is_empty() { "the checker server said fail" } else { reason };
        return Answer::Verdict(Err(reason.to_string()));
    }
    let shown: String = text.chars().take(120).collect();
    Answer::Broken(format!("the checker server answered `{shown}`, not `ok` or `fail: REASON`"))
}

/// The exit status of a server that is ending anyway (it closed its pipe),
/// when it ends within a moment.
fn wait_briefly(child: &mut Child) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if start.elapsed() < Duration::from_millis(20) => std::thread::sleep(Duration::from_millis(1)),
            _ => return None,
        }
    }
}

/// The thread that talks to one server: writes each request line, reads
/// one answer line. SIGPIPE is blocked on it, so a server gone away is an
/// `EPIPE` here, not the end of pmemlab (whose SIGPIPE is the default).
fn talk(mut stdin: ChildStdin, stdout: ChildStdout) -> (Sender<String>, Receiver<Result<String, String>>) {
    let (req_tx, req_rx) = mpsc::channel::<String>();
    let (ans_tx, ans_rx) = mpsc::channel();
    std::thread::spawn(move || {
        block_sigpipe();
        let mut reader = BufReader::new(stdout);
        for mut req in req_rx {
            req.push('\n');
            if let Err(e) = stdin.write_all(req.as_bytes()).and_then(|()| stdin.flush()) {
                let _ = ans_tx.send(Err(format!("the checker server does not read its stdin ({e})")));
                return;
            }
            let mut line = String::new();
            let answer = match reader.by_ref().take(MAX_LINE).read_line(&mut line) {
                Ok(0) => Err("the checker server closed its stdout without answering".to_string()),
                Ok(_) => Ok(line),
                Err(e) => Err(format!("the checker server's answer cannot be read ({e})")),
            };
            let end = answer.is_err();
            if ans_tx.send(answer).is_err() || end {
                return;
            }
        }
    });
    (req_tx, ans_rx)
}

fn block_sigpipe() {
    // SAFETY: `set` is a local sigset_t initialised by sigemptyset before
    // use; pthread_sigmask only changes this thread's signal mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// What the spawner thread needs to start a server.
struct SpawnRequest {
    command: String,
    stderr: PathBuf,
    env: Vec<(&'static str, String)>,
}

type Spawned = std::io::Result<(Child, ChildStdin, ChildStdout)>;

/// The one long-lived thread that starts servers: `PR_SET_PDEATHSIG`
/// fires when the thread that forked a process ends, so servers must not
/// be forked by the campaign's worker threads, which end every batch.
struct Spawner {
    requests: Sender<(SpawnRequest, Sender<Spawned>)>,
}

impl Spawner {
    fn new() -> Result<Spawner, String> {
        let (tx, rx) = mpsc::channel::<(SpawnRequest, Sender<Spawned>)>();
        std::thread::Builder::new()
            .name("checker-server-spawner".into())
            .spawn(move || {
                for (req, reply) in rx {
                    let _ = reply.send(spawn(&req));
                }
            })
            .map_err(|e| format!("cannot start a thread for the checker servers: {e}"))?;
        Ok(Spawner { requests: tx })
    }

    fn spawn(&self, req: SpawnRequest) -> Spawned {
        let (tx, rx) = mpsc::channel();
        let gone = || std::io::Error::other("the server-starting thread ended");
        self.requests.send((req, tx)).map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }
}

/// The shell script that runs a server's `command`: the shell leads the
/// server's process group and, on SIGTERM (what the kernel sends it when
/// pmemlab dies, see [`spawn`]), kills the whole group — the server and
/// whatever it started. The command gets the shell's stdin (through fd 3:
/// an asynchronous list's own stdin is /dev/null), the shell lets go of
/// stdin and stdout (so a server closing its stdout is seen), and exits
/// with the command's status (127: not found).
fn watched(command: &str) -> String {
    format!(
        "trap 'kill -KILL 0' TERM; exec 3<&0; {{ {command}\n}} <&3 3<&- & exec 3<&- 0</dev/null 1>/dev/null; wait $!"
    )
}

fn spawn(req: &SpawnRequest) -> Spawned {
    use std::os::unix::process::CommandExt;
    let stderr = std::fs::File::create(&req.stderr)?;
    let mut cmd = Command::new("/bin/sh");
    cmd.process_group(0)
        .arg("-c")
        .arg(watched(&req.command))
        .envs(req.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr);
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls prctl(2) and getppid(2), which are async-signal-safe; it
    // allocates nothing and touches no lock.
    unsafe {
        let parent = libc::getpid();
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            if libc::getppid() != parent {
                // pmemlab ended before the signal was armed.
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        kill_group(&mut child);
        return Err(std::io::Error::other("the server's pipes were not made"));
    };
    Ok((child, stdin, stdout))
}

impl Drop for ServerChecker {
    /// Ends every server: closes their stdin, gives them 0.2 s to exit,
    /// then kills their process groups.
    fn drop(&mut self) {
        let mut idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        for s in &mut idle {
            s.requests = None;
        }
        let start = Instant::now();
        while start.elapsed() < GRACE && idle.iter_mut().any(|s| matches!(s.child.try_wait(), Ok(None))) {
            std::thread::sleep(Duration::from_millis(2));
        }
        drop(idle);
        self.spawner.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// One job's checker: the server it holds between images.
struct ServerHandle<'a> {
    owner: &'a ServerChecker,
    server: RefCell<Option<Server>>,
}

impl Drop for ServerHandle<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.server.get_mut().take() {
            self.owner.idle.lock().unwrap_or_else(|p| p.into_inner()).push(s);
        }
    }
}

impl Checker for ServerHandle<'_> {
    fn check(&self, image: &dyn ImageReader, ctx: &CrashContext) -> Result<(), String> {
        let owner = self.owner;
        if let Some(f) = owner.fatal() {
            return Err(f);
        }
        let facts = owner.files.write(image, ctx).map_err(|e| owner.set_fatal(e))?;
        let result = self.judge(&facts);
        facts.remove();
        result
    }
}

impl ServerHandle<'_> {
    fn judge(&self, facts: &ImageFacts) -> Result<(), String> {
        let owner = self.owner;
        let mut slot = self.server.borrow_mut();
        let mut server = match slot.take() {
            Some(s) => s,
            None => owner.start().map_err(|e| owner.set_fatal(e))?,
        };
        match owner.ask(&mut server, facts) {
            Answer::Verdict(v) => {
                server.answered += 1;
                owner.failures_in_a_row.store(0, Ordering::SeqCst);
                *slot = Some(server);
                v
            }
            Answer::Broken(why) => Err(owner.bury(server, why)),
        }
    }
}

impl CheckerSet for ServerChecker {
    fn make(&self) -> Box<dyn Checker + '_> {
        let server = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        Box::new(ServerHandle { owner: self, server: RefCell::new(server) })
    }

    fn fatal(&self) -> Option<String> {
        self.fatal.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(line: &str) -> Option<Result<(), String>> {
        match parse_verdict(line) {
            Answer::Verdict(v) => Some(v),
            Answer::Broken(_) => None,
        }
    }

    #[test]
    fn verdict_lines() {
        assert_eq!(verdict("ok\n"), Some(Ok(())));
        assert_eq!(verdict("  ok \r\n"), Some(Ok(())));
        assert_eq!(verdict("fail: record 2 missing\n"), Some(Err("record 2 missing".into())));
        assert_eq!(verdict("fail\n"), Some(Err("the checker server said fail".into())));
        assert_eq!(verdict("fail:\n"), Some(Err("the checker server said fail".into())));
        assert_eq!(verdict("okay\n"), None);
        assert_eq!(verdict("failure\n"), None);
        assert_eq!(verdict("{\"ok\": true}\n"), None);
        assert_eq!(verdict("ok"), None, "a line cut at the length limit is not a verdict");
    }
}
