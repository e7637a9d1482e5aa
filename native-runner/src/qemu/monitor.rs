//! The monitor prompt of `pmemlab qemu`: QEMU's HMP commands for memory
//! devices, and guest commands that play the application inside the guest.
//!
//! Commands are read line by line (a terminal or a pipe); every line gets an
//! answer, a bad line gets an `Error: …` line, and the prompt carries on.
//! When the input is not a terminal, each command is echoed after the
//! `(qemu)` prompt so the transcript reads like a session. See [`HELP`].

use super::config::{MemoryBackendFile, VirtioPmemPci};
use super::vm::{DeviceView, Vm};
use crate::cachestat::cachestat_file;
use pmem_core::device::DeviceStatus;
use pmem_core::guest::FlushResult;
use pmem_core::size::{human_size, parse_size};
use std::fmt::Write as _;
use std::io::{self, BufRead, Write};

/// The prompt, as QEMU's.
pub const PROMPT: &str = "(qemu) ";

/// Largest `read` the monitor prints at once.
pub const MAX_READ: u64 = 1 << 20;

/// The answer to `help`.
pub const HELP: &str = "\
object_add memory-backend-file,id=ID,mem-path=FILE,size=SIZE[,share=on][,readonly=on][,pmem=on][,align=SIZE][,resize=on]
                          add a memory backend (opens FILE, or creates it)
object_del ID             remove a memory backend no device uses (the file stays)
device_add virtio-pmem-pci,id=ID,memdev=ID[,memaddr=ADDR][,indirect_desc=off]
                          hot-plug a virtio-pmem device on a memory backend
device_del ID             refused: virtio-pmem cannot be hot-unplugged
info memdev               the memory backends
info memory-devices       the plugged memory devices (id, memdev, address, size)
info pmem [ID]            device state: virtqueue indices, counters, sync latency, page cache of the file
info events [N]           the last N events of the simulation (default 20)
write ID OFFSET DATA      the guest stores DATA at OFFSET of the device
                          (DATA: text to the end of the line, \"quoted\\x00text\", or hex:00ff…)
read ID OFFSET LEN        the guest loads LEN bytes at OFFSET (at most 1M)
fsync ID / msync ID       the guest syncs: a flush request through the virtqueue, a host
                          fdatasync of the file, the answer back
mmap ID [FLAGS]           the guest maps the DAX file; MAP_SYNC is refused (EOPNOTSUPP)
ndctl ...                 refused: virtio-pmem has no NVDIMM regions or namespaces
help                      this text
quit                      leave";

/// The answer to one line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// What to print (may be empty; ends without a newline).
    pub text: String,
    /// Leave the monitor.
    pub quit: bool,
}

impl Reply {
    fn text(text: impl Into<String>) -> Reply {
        Reply { text: text.into(), quit: false }
    }

    fn error(msg: impl std::fmt::Display) -> Reply {
        Reply::text(format!("Error: {msg}"))
    }
}

/// Runs the monitor until `quit` or the end of the input.
pub fn run(vm: &mut Vm, input: impl BufRead, mut out: impl Write, echo: bool) -> io::Result<()> {
    out.write_all(PROMPT.as_bytes())?;
    out.flush()?;
    for line in input.lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                if echo {
                    writeln!(out)?;
                }
                writeln!(out, "Error: the line is not valid UTF-8")?;
                out.write_all(PROMPT.as_bytes())?;
                out.flush()?;
                continue;
            }
            Err(e) => return Err(e),
        };
        if echo {
            writeln!(out, "{line}")?;
        }
        let reply = execute(vm, &line);
        if !reply.text.is_empty() {
            writeln!(out, "{}", reply.text)?;
        }
        if reply.quit {
            return out.flush();
        }
        out.write_all(PROMPT.as_bytes())?;
        out.flush()?;
    }
    if echo {
        writeln!(out)?;
    }
    out.flush()
}

/// Splits off the first word.
fn word(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

/// Answers one monitor line.
pub fn execute(vm: &mut Vm, line: &str) -> Reply {
    let Some((cmd, rest)) = word(line) else {
        return Reply::default();
    };
    let args = rest.trim();
    match cmd {
        "help" | "?" => Reply::text(HELP),
        "quit" | "q" => Reply { text: String::new(), quit: true },
        "object_add" => object_add(vm, args),
        "object_del" => one_id(args, "object_del ID").map_or_else(Reply::error, |id| match vm.object_del(id) {
            Ok(()) => Reply::default(),
            Err(e) => Reply::error(e),
        }),
        "device_add" => device_add(vm, args),
        "device_del" => one_id(args, "device_del ID").map_or_else(Reply::error, |id| match vm.device_del(id) {
            Ok(()) => Reply::default(),
            Err(e) => Reply::error(e),
        }),
        "info" => info(vm, args),
        "write" => guest_write(vm, rest),
        "read" => guest_read(vm, args),
        "fsync" | "msync" => guest_sync(vm, cmd, args),
        "mmap" => guest_mmap(vm, args),
        "ndctl" | "daxctl" | "create-namespace" | "destroy-namespace" | "namespace" | "region" => {
            Reply::error(format!(
                "{cmd}: not supported on virtio-pmem. QEMU documents: \"ACPI NVDIMM features like regions/namespaces \
                 are not supported\" and \"ndctl command is not supported\". The guest sees one pmem region from the \
                 virtio device (nd_virtio), with no labels or namespaces to create, destroy or reconfigure."
            ))
        }
        other => Reply::error(format!("unknown command '{other}'; type help for the list")),
    }
}

fn one_id<'a>(args: &'a str, usage: &str) -> Result<&'a str, String> {
    match word(args) {
        Some((id, rest)) if rest.trim().is_empty() => Ok(id),
        _ => Err(format!("usage: {usage}")),
    }
}

fn object_add(vm: &mut Vm, args: &str) -> Reply {
    if args.is_empty() {
        return Reply::error("usage: object_add memory-backend-file,id=ID,mem-path=FILE,size=SIZE[,share=on]…");
    }
    let cfg = match MemoryBackendFile::parse(args) {
        Ok(c) => c,
        Err(e) => return Reply::error(e),
    };
    let parse_notes = cfg.notes.clone();
    match vm.object_add(cfg) {
        Ok(notes) => {
            Reply::text(parse_notes.iter().chain(&notes).map(|n| format!("note: {n}")).collect::<Vec<_>>().join("\n"))
        }
        Err(e) => Reply::error(e),
    }
}

fn device_add(vm: &mut Vm, args: &str) -> Reply {
    if args.is_empty() {
        return Reply::error("usage: device_add virtio-pmem-pci,id=ID,memdev=ID[,memaddr=ADDR]");
    }
    let cfg = match VirtioPmemPci::parse(args) {
        Ok(c) => c,
        Err(e) => return Reply::error(e),
    };
    let id = cfg.id.clone();
    let notes: String = cfg.notes.iter().map(|n| format!("\nnote: {n}")).collect();
    match vm.device_add(cfg) {
        Ok(()) => match vm.device(&id) {
            Ok(d) => Reply::text(format!(
                "{id}: virtio-pmem-pci plugged at {:#x}, {} ({}){notes}",
                d.snapshot.config.start.0,
                human_size(d.snapshot.config.size),
                d.probe.info().path.display()
            )),
            Err(e) => Reply::error(e),
        },
        Err(e) => Reply::error(e),
    }
}

fn info(vm: &mut Vm, args: &str) -> Reply {
    let Some((what, rest)) = word(args) else {
        return Reply::text("info memdev | info memory-devices | info pmem [ID] | info events [N]");
    };
    let rest = rest.trim();
    match what {
        "memdev" => Reply::text(info_memdev(vm)),
        "memory-devices" => Reply::text(info_memory_devices(vm)),
        "pmem" if rest.is_empty() => {
            let all: Vec<String> = vm.devices().iter().map(render_pmem).collect();
            Reply::text(if all.is_empty() { "no virtio-pmem devices".to_string() } else { all.join("\n") })
        }
        "pmem" => match one_id(rest, "info pmem [ID]")
            .map_err(|e| e.to_string())
            .and_then(|id| vm.device(id).map(|d| render_pmem(&d)).map_err(|e| e.to_string()))
        {
            Ok(t) => Reply::text(t),
            Err(e) => Reply::error(e),
        },
        "events" => {
            let n = if rest.is_empty() {
                Ok(20)
            } else {
                rest.parse::<usize>().map_err(|_| format!("info events: '{rest}' is not a count"))
            };
            match n {
                Ok(n) => {
                    let events = vm.machine().log().events();
                    let from = events.len().saturating_sub(n);
                    Reply::text(events[from..].iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))
                }
                Err(e) => Reply::error(e),
            }
        }
        other => Reply::error(format!(
            "info {other}: unknown; try info memdev, info memory-devices, info pmem or info events"
        )),
    }
}

fn info_memdev(vm: &Vm) -> String {
    let mut out = String::new();
    for o in vm.objects() {
        let on = |b: bool| if b { "true" } else { "false" };
        let _ = writeln!(out, "memory backend: {}", o.cfg.id);
        let _ = writeln!(out, "  size:  {}", o.cfg.size);
        let _ = writeln!(out, "  share:  {}", on(o.cfg.share));
        let _ = writeln!(out, "  readonly:  {}", on(o.cfg.readonly));
        let _ = writeln!(out, "  pmem:  {}", on(o.cfg.pmem));
        if let Some(a) = o.cfg.align {
            let _ = writeln!(out, "  align:  {a}");
        }
        let _ = writeln!(out, "  mem-path:  {}", o.probe.info().path.display());
        let _ = writeln!(out, "  used by:  {}", o.used_by.unwrap_or("(none)"));
    }
    if out.is_empty() {
        out.push_str("no memory backends");
    }
    out.trim_end().to_string()
}

fn info_memory_devices(vm: &Vm) -> String {
    let mut out = String::new();
    for d in vm.devices() {
        let _ = writeln!(out, "Memory device [virtio-pmem]: \"{}\"", d.cfg.id);
        let _ = writeln!(out, "  memaddr: {:#x}", d.snapshot.config.start.0);
        let _ = writeln!(out, "  size: {}", d.snapshot.config.size);
        let _ = writeln!(out, "  memdev: /objects/{}", d.cfg.memdev);
    }
    if out.is_empty() {
        out.push_str("no memory devices");
    }
    out.trim_end().to_string()
}

fn ms(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

fn render_pmem(d: &DeviceView<'_>) -> String {
    let s = &d.snapshot;
    let info = d.probe.info();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: virtio-pmem-pci on memdev {}, {:#x}+{:#x} ({}), share={}, readonly={}",
        d.cfg.id,
        d.cfg.memdev,
        s.config.start.0,
        s.config.size,
        human_size(s.config.size),
        if info.share { "on" } else { "off" },
        if info.readonly { "on" } else { "off" },
    );
    let _ = writeln!(
        out,
        "  virtqueue 0 (size {}): desc {:#x}, avail {:#x}, used {:#x}; next_avail {}, next_used {}, avail.idx {}",
        s.layout.size,
        s.layout.desc_table.0,
        s.layout.avail_ring.0,
        s.layout.used_ring.0,
        s.next_avail,
        s.next_used,
        s.avail_idx
    );
    let _ = writeln!(
        out,
        "  driver: {} free descriptors, {} in flight, {} parked; device: {} waiting for the host, status {:#04x}{}",
        s.free_descriptors,
        s.in_flight,
        s.parked,
        s.waiting_for_host,
        s.status,
        if DeviceStatus(s.status).has(DeviceStatus::DEVICE_NEEDS_RESET) { " (NEEDS_RESET)" } else { "" }
    );
    let st = &s.stats;
    let _ = writeln!(
        out,
        "  device counters: popped {}, flushes ok {}, failed {}, rejected {}, unknown types {}, interrupts {}",
        st.popped, st.flushes_ok, st.flushes_failed, st.rejected, st.unknown_types, st.interrupts
    );
    let h = &s.host;
    let _ = writeln!(
        out,
        "  host: bytes stored {}, pages touched {}, syncs started {}, ok {}, failed {}",
        h.bytes_written, h.resident_pages, h.syncs_started, h.syncs_ok, h.syncs_failed
    );
    render_host_file(&mut out, d);
    out
}

/// The host side of `info pmem`: the real syncs' latencies and the
/// kernel's page cache of the backing file.
fn render_host_file(out: &mut String, d: &DeviceView<'_>) {
    let info = d.probe.info();
    let ss = d.probe.sync_stats();
    match (ss.last_ns, ss.min_ns, ss.mean_ns(), ss.max_ns) {
        (Some(last), Some(min), Some(mean), Some(max)) => {
            let _ = writeln!(
                out,
                "  host {} latency: last {}, min {}, mean {}, max {}",
                info.sync.name(),
                ms(last),
                ms(min),
                ms(mean),
                ms(max)
            );
        }
        _ => {
            let _ = writeln!(out, "  host {}: none yet", info.sync.name());
        }
    }
    match cachestat_file(d.probe.file()) {
        Ok(c) => {
            let _ = write!(
                out,
                "  page cache of {} (kernel cachestat): {} cached, {} dirty, {} writeback",
                info.path.display(),
                c.cached,
                c.dirty,
                c.writeback
            );
            if !info.share {
                out.push_str(" (share=off: the guest's stores are in private pages, not counted here)");
            }
        }
        Err(e) => {
            let _ = write!(out, "  page cache of {}: {e}", info.path.display());
        }
    }
}

/// DATA of `write`: `hex:…`, `"quoted"` with escapes, or the text itself.
pub fn parse_data(text: &str) -> Result<Vec<u8>, String> {
    if let Some(hex) = text.strip_prefix("hex:") {
        let hex: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if hex.is_empty() || !hex.len().is_multiple_of(2) {
            return Err("hex: needs an even, non-zero number of hexadecimal digits".into());
        }
        return hex
            .chunks(2)
            .map(|p| {
                std::str::from_utf8(p)
                    .ok()
                    .and_then(|s| u8::from_str_radix(s, 16).ok())
                    .ok_or_else(|| format!("hex: '{}' is not a hexadecimal byte", String::from_utf8_lossy(p)))
            })
            .collect();
    }
    if let Some(inner) = text.strip_prefix('"') {
        let Some(inner) = inner.strip_suffix('"') else {
            return Err("the quoted DATA has no closing quote".into());
        };
        return unescape(inner);
    }
    if text.is_empty() {
        return Err("usage: write ID OFFSET DATA".into());
    }
    Ok(text.as_bytes().to_vec())
}

fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('r') => out.push(b'\r'),
            Some('0') => out.push(0),
            Some('\\') => out.push(b'\\'),
            Some('"') => out.push(b'"'),
            Some('x') => {
                let h: String = chars.by_ref().take(2).collect();
                let b = u8::from_str_radix(&h, 16).ok().filter(|_| h.len() == 2);
                out.push(b.ok_or_else(|| format!("'\\x{h}' is not a hexadecimal byte escape"))?);
            }
            Some(o) => return Err(format!("unknown escape '\\{o}' (use \\n \\t \\r \\0 \\\\ \\\" or \\xNN)")),
            None => return Err("the quoted DATA ends with a lone backslash".into()),
        }
    }
    Ok(out)
}

fn number(what: &str, text: &str) -> Result<u64, String> {
    parse_size(text).map_err(|e| format!("{what} {e}"))
}

fn guest_write(vm: &mut Vm, rest: &str) -> Reply {
    let usage = "usage: write ID OFFSET DATA";
    let Some((id, rest)) = word(rest) else { return Reply::error(usage) };
    let Some((offset, rest)) = word(rest) else { return Reply::error(usage) };
    let data = rest.strip_prefix(|c: char| c.is_whitespace()).unwrap_or(rest).trim_end_matches(['\r', '\n']);
    let result = number("OFFSET", offset)
        .and_then(|off| parse_data(data).map(|d| (off, d)))
        .and_then(|(off, d)| vm.write(id, off, &d).map(|()| (off, d.len())).map_err(|e| e.to_string()));
    match result {
        Ok((off, len)) if vm.device(id).is_ok_and(|d| d.snapshot.config.readonly) => Reply::text(format!(
            "{id}: store of {len} bytes at {off:#x} dropped: the backend is readonly=on (QEMU maps the file read-only and ignores the write; the guest is not told)"
        )),
        Ok((off, len)) => {
            let share = vm.device(id).map(|d| d.probe.info().share).unwrap_or(true);
            Reply::text(format!(
                "{id}: stored {len} bytes at {off:#x} ({})",
                if share {
                    "in the host page cache; not durable until fsync or msync"
                } else {
                    "in private copy-on-write pages: share=off, they never reach the file"
                }
            ))
        }
        Err(e) => Reply::error(e),
    }
}

fn guest_read(vm: &mut Vm, args: &str) -> Reply {
    let parts: Vec<&str> = args.split_whitespace().collect();
    let [id, offset, len] = parts[..] else {
        return Reply::error("usage: read ID OFFSET LEN");
    };
    let result = number("OFFSET", offset).and_then(|o| number("LEN", len).map(|l| (o, l))).and_then(|(o, l)| {
        if l > MAX_READ {
            Err(format!("LEN {l} is more than the monitor prints at once ({MAX_READ} bytes)"))
        } else {
            vm.read(id, o, l).map(|d| (o, d)).map_err(|e| e.to_string())
        }
    });
    match result {
        Ok((o, data)) => Reply::text(format!("{id} {o:#x}+{}: \"{}\"", data.len(), data.escape_ascii())),
        Err(e) => Reply::error(e),
    }
}

fn guest_sync(vm: &mut Vm, cmd: &str, args: &str) -> Reply {
    let id = match one_id(args, &format!("{cmd} ID")) {
        Ok(id) => id,
        Err(e) => return Reply::error(e),
    };
    let outcome = match vm.flush(id) {
        Ok(o) => o,
        Err(e) => return Reply::error(e),
    };
    let info = match vm.device(id) {
        Ok(d) => d.probe.info().clone(),
        Err(e) => return Reply::error(e),
    };
    let mut out = String::new();
    for e in &outcome.events {
        let _ = writeln!(out, "  {e}");
    }
    let host = match outcome.sync_ns {
        Some(ns) => format!("host {} of {} took {}", info.sync.name(), info.path.display(), ms(ns)),
        None => format!("no host {} ran", info.sync.name()),
    };
    let _ = match outcome.result {
        Some(FlushResult::Ok) => write!(out, "{cmd} {id}: ok (the device answered 0; {host})"),
        Some(FlushResult::Eio) => write!(out, "{cmd} {id}: -EIO (the device reported a failure; {host})"),
        None => write!(out, "{cmd} {id}: no answer from the device (see info pmem; it may need a reset)"),
    };
    if !info.share {
        let _ = write!(
            out,
            "\nnote: share=off: the sync succeeded, yet nothing reached {} (the stores are in private pages)",
            info.path.display()
        );
    }
    Reply::text(out)
}

fn guest_mmap(vm: &mut Vm, args: &str) -> Reply {
    let Some((id, rest)) = word(args) else {
        return Reply::error("usage: mmap ID [MAP_SHARED|MAP_SYNC…]");
    };
    let d = match vm.device(id) {
        Ok(d) => d,
        Err(e) => return Reply::error(e),
    };
    let flags: Vec<String> = rest
        .split(|c: char| c == '|' || c == ',' || c.is_whitespace())
        .filter(|f| !f.is_empty())
        .map(str::to_uppercase)
        .collect();
    const KNOWN: &[&str] = &["MAP_SHARED", "MAP_SHARED_VALIDATE", "MAP_PRIVATE", "MAP_SYNC", "MAP_POPULATE"];
    if let Some(bad) = flags.iter().find(|f| !KNOWN.contains(&f.as_str())) {
        return Reply::error(format!("mmap: unknown flag '{bad}' (known: {})", KNOWN.join(", ")));
    }
    if flags.iter().any(|f| f == "MAP_SYNC") {
        return Reply::error(format!(
            "mmap {id} MAP_SHARED_VALIDATE|MAP_SYNC: EOPNOTSUPP (Operation not supported): virtio-pmem is not real \
             persistent memory (its region is asynchronous: the guest kernel does not mark it DAX-synchronous), so a \
             store is not durable when it leaves the CPU; MAP_SYNC is refused to tell the application to use fsync or \
             msync, which send a flush request"
        ));
    }
    let private = flags.iter().any(|f| f == "MAP_PRIVATE");
    Reply::text(format!(
        "mmap {id}: ok, a DAX mapping of {} at guest-physical {:#x}{}",
        human_size(d.snapshot.config.size),
        d.snapshot.config.start.0,
        if private {
            " (MAP_PRIVATE in the guest: stores there would stay in guest copies; the monitor's write stores to the shared DAX window)"
        } else {
            "; stores go straight to the host page cache: write, then fsync or msync to make them durable"
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_forms() {
        assert_eq!(parse_data("hello world").unwrap(), b"hello world");
        assert_eq!(parse_data("hex:00ff 10").unwrap(), vec![0, 255, 16]);
        assert_eq!(parse_data("\"a\\x00b\\n\"").unwrap(), b"a\x00b\n");
        assert!(parse_data("hex:0").is_err());
        assert!(parse_data("hex:zz").is_err());
        assert!(parse_data("\"open").is_err());
        assert!(parse_data("\"\\q\"").is_err());
        assert!(parse_data("\"\\x4\"").is_err());
        assert!(parse_data("").is_err());
    }

    /// `-m 128M,slots=2,maxmem=2G`: room for devices.
    fn seed_memory() -> pmem_core::sim::DeviceMemoryConfig {
        pmem_core::sim::MemoryOptions::parse("128M,slots=2,maxmem=2G").unwrap().config(Default::default()).unwrap()
    }

    #[test]
    fn bad_lines_get_an_error_and_never_panic() {
        let mut vm = Vm::new(128 << 20, seed_memory());
        for line in [
            "bogus",
            "info",
            "info nothing",
            "info pmem nv9",
            "info events x",
            "write",
            "write nv1",
            "write nv1 0",
            "write nv9 0 x",
            "write nv1 zz x",
            "read nv1 0",
            "read nv1 0 0 0",
            "read nv1 0 2M",
            "fsync",
            "fsync nv9",
            "msync a b",
            "mmap",
            "mmap nv9 MAP_SYNC",
            "device_del nv9",
            "device_del",
            "object_del mem9",
            "object_add",
            "object_add memory-backend-file",
            "object_add memory-backend-file,id=m,size=4K",
            "device_add",
            "device_add virtio-pmem-pci,id=a,memdev=none",
            "ndctl create-namespace",
            "\u{0}\u{1}é",
        ] {
            let r = execute(&mut vm, line);
            assert!(!r.quit, "{line}");
            if line == "info" {
                continue;
            }
            assert!(r.text.starts_with("Error: "), "{line:?} -> {}", r.text);
            assert!(!r.text.contains('\n'), "{line:?} -> {}", r.text);
        }
        assert!(execute(&mut vm, "quit").quit);
        assert_eq!(execute(&mut vm, "   "), Reply::default());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// Whatever the line, the monitor answers and keeps going; an
        /// unknown command word is an error line.
        #[test]
        fn any_line_gets_an_answer_never_a_panic(
            cmd in proptest::sample::select(vec![
                "write", "read", "fsync", "msync", "mmap", "info", "device_add", "device_del",
                "object_add", "object_del", "ndctl", "help", "zap",
            ]),
            args in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::string::string_regex("[ -~]{0,12}").unwrap(),
                    proptest::sample::select(vec![
                        "nv1".to_string(), "0".to_string(), "4K".to_string(), "0x10".to_string(),
                        "-1".to_string(), "99999999999999999999".to_string(), "hex:zz".to_string(),
                        "\"a\\x0".to_string(), "MAP_SYNC".to_string(), "memdev".to_string(),
                        "virtio-pmem-pci,id=x,memdev=mem1".to_string(), "pmem".to_string(),
                        "memory-backend-file,id=m,mem-path=/nonexistent/x,size=4K".to_string(),
                    ]),
                ],
                0..4,
            ),
        ) {
            let dir = std::env::temp_dir().join(format!("pmemlab-monitor-prop-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("img");
            let _ = std::fs::remove_file(&path);
            let mut vm = Vm::new(128 << 20, seed_memory());
            let obj = format!("memory-backend-file,id=mem1,share=on,mem-path={},size=64K", path.display());
            vm.object_add(MemoryBackendFile::parse(&obj).unwrap()).unwrap();
            vm.device_add(VirtioPmemPci::parse("virtio-pmem-pci,id=nv1,memdev=mem1").unwrap()).unwrap();
            let line = format!("{cmd} {}", args.join(" "));
            let reply = execute(&mut vm, &line);
            proptest::prop_assert!(!reply.quit);
            if cmd == "zap" {
                proptest::prop_assert!(reply.text.starts_with("Error: unknown command 'zap'"));
            }
            // The machine still works afterwards.
            proptest::prop_assert!(execute(&mut vm, "fsync nv1").text.contains("fsync nv1: ok"));
            drop(vm);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
