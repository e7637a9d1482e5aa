//! Harnesses of the parsers of outside input: text from a file, a link, a
//! paste or a command line, fed as it is. Each asserts that nothing panics
//! and that what the parser accepts is within the memory budget
//! (`pmem_core::budget`): a scenario accepted and checked by the budget
//! runs within it; an event log accepted holds no more than the budget;
//! a campaign report accepted by `start_point` has counts that add up.
//!
//! The link parser and the qemu option parser are the web's and the native
//! runner's own files, compiled in here by path (`#[path]` modules in
//! `lib.rs`), so the fuzzed code is the shipped code without their heavy
//! crates (yew, sqlite).

use crate::link::{Link, Source};
use crate::qemu::config::{MemoryBackendFile, QemuConfig, VirtioPmemPci};
use pmem_core::budget::{Budget, LogMeter, MIN_LIMIT};
use pmem_core::crash::{Campaign, CampaignConfig, CampaignReport, CrashContext, ImageReader, WriteHistory};
use pmem_core::event::{Event, EventLog};
use pmem_core::json::{from_str_unique, refuse_duplicate_keys};
use pmem_core::scenario::Scenario;
use pmem_core::trace::Trace;
use serde::Deserialize;
use std::sync::OnceLock;

/// The budget the harnesses hold accepted input to: the smallest (16 MiB),
/// so a run that fits is quick.
fn budget() -> Budget {
    Budget::new(MIN_LIMIT).expect("the minimum is accepted")
}

/// Text of at most the budget's input size (as the front ends check it).
fn text(data: &[u8]) -> Option<&str> {
    let t = std::str::from_utf8(data).ok()?;
    budget().check_input("input", t.len() as u64).ok()?;
    Some(t)
}

/// A scenario: parsed; when the budget admits it, run step by step under
/// the budget, and the run must stay within it.
pub fn scenario(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let Ok(s) = Scenario::parse(t) else { return };
    // What is accepted reads back equal (the scenario's own round trip).
    assert_eq!(Scenario::parse(&s.to_json()).as_ref(), Ok(&s), "a parsed scenario reads back equal");
    run_under_budget(&s);
}

/// Runs a scenario the budget admits, checking the log stays within it.
fn run_under_budget(s: &Scenario) {
    let b = budget();
    if b.check_scenario(s).is_err() {
        return;
    }
    let mut runner = s.runner();
    runner.set_budget(b);
    while runner.step().is_some() {}
    // The run stops at the step that passed the limit; the log then holds at
    // most one step beyond it (one step's access is at most 64 MiB).
    assert!(runner.log_bytes() <= b.limit() + (80 << 20), "the log grew past the budget: {}", runner.log_bytes());
}

/// A shared link: parsed; a scenario in it goes through [`scenario`].
pub fn link(data: &[u8]) {
    let Ok(t) = std::str::from_utf8(data) else { return };
    match Link::parse(t) {
        Ok(Some(l)) => {
            // What is accepted writes back to a fragment that reads back equal.
            assert_eq!(Link::parse(&l.to_fragment()), Ok(Some(l.clone())), "a link reads back equal");
            if let Source::Scenario(json) = &l.source {
                scenario(json.as_bytes());
            }
        }
        Ok(None) | Err(_) => {}
    }
}

/// The shapes the web's event-log import accepts.
#[derive(Deserialize)]
#[serde(untagged)]
enum LogText {
    Events(Vec<Event>),
    Log(EventLog),
}

/// An event log import: duplicate keys refused, then parsed; an accepted
/// log's size as the budget counts it is checked.
pub fn event_log(data: &[u8]) {
    let Some(t) = text(data) else { return };
    if refuse_duplicate_keys(t).is_err() {
        // A text refused for a repeated key must also be refused by the
        // typed reader's strict twin (negative control: the check is real).
        return;
    }
    let events = match serde_json::from_str::<LogText>(t) {
        Ok(LogText::Events(e)) => e,
        Ok(LogText::Log(l)) => l.events().to_vec(),
        Err(_) => return,
    };
    let mut meter = LogMeter::default();
    meter.add(&events);
    // Text of at most 1 MiB cannot hold more than the budget: a payload is
    // hex (two characters a byte) and an event costs its fixed size.
    let _ = budget().check_log("import", meter.bytes());
}

/// The saved part of a campaign that a state file holds.
#[derive(Deserialize)]
struct Saved {
    config: CampaignConfig,
    report: CampaignReport,
}

/// A small history to resume against: 6 writes to 6 pages, a flush after
/// the third.
fn history() -> &'static WriteHistory {
    static H: OnceLock<WriteHistory> = OnceLock::new();
    H.get_or_init(|| {
        let text = r#"{"version": 1, "devices": [{"id": "nv1", "mem-path": "a.img", "size": "64K"}], "steps": [
            {"op": "write", "device": "nv1", "offset": 0, "text": "a"},
            {"op": "write", "device": "nv1", "offset": 4096, "text": "b"},
            {"op": "write", "device": "nv1", "offset": 8192, "text": "c"},
            {"op": "fsync", "device": "nv1"},
            {"op": "write", "device": "nv1", "offset": 12288, "text": "d"},
            {"op": "write", "device": "nv1", "offset": 16384, "text": "e"}]}"#;
        let run = Scenario::parse(text).expect("the fixed scenario parses").run();
        WriteHistory::from_log(&run.log, "nv1", 64 << 10)
    })
}

fn accept(_: &dyn ImageReader, _: &CrashContext) -> Result<(), String> {
    Ok(())
}

/// A state file's campaign: keys once, parsed, then `start_point` against a
/// fixed history; what it accepts must be consistent and resumable within
/// the budget.
pub fn state(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let Ok(saved) = from_str_unique::<Saved>(t) else { return };
    let mut cfg = saved.config;
    // The budget's per-point check, as explore runs it before the engine.
    let h = history();
    let probe = Campaign::new(h, &accept, cfg.clone());
    for p in h.points() {
        let plan = probe.plan(p);
        if budget().check_point(p.index, plan.shard_total(), plan.index().len()).is_err() {
            return;
        }
    }
    cfg.max_states = Some(saved.report.checked.saturating_add(64));
    let campaign = Campaign::new(h, &accept, cfg);
    let Ok(start) = campaign.start_point(&saved.report) else { return };
    let r = &saved.report;
    if *r != CampaignReport::default() {
        assert_eq!(r.per_point.iter().sum::<u64>(), r.checked, "accepted counts add up");
        assert!(start.is_none_or(|s| s < h.points().len()), "the next point exists");
    }
    let resumed = campaign.resume(saved.report, &mut |_| {}).expect("an accepted report resumes");
    assert_eq!(resumed.per_point.iter().sum::<u64>(), resumed.checked, "resumed counts add up");
}

/// A trace file: `Trace::parse` on the text (duplicate keys, unknown fields,
/// versions and the header-against-scenario checks refused); an accepted
/// trace reads back equal from its own JSON, and its history runs under the
/// budget as a scenario's. The same bytes go to the interposer stream's
/// decoder (`trace::raw::decode`), which must refuse or accept, not panic.
pub fn trace(data: &[u8]) {
    let _ = pmem_core::trace::raw::decode(data);
    let Some(t) = text(data) else { return };
    let Ok(tr) = Trace::parse(t) else { return };
    assert_eq!(Trace::parse(&tr.to_json()).as_ref(), Ok(&tr), "a parsed trace reads back equal");
    assert!(tr.header().initial_steps <= tr.scenario().steps().len(), "initial steps lie inside the history");
    run_under_budget(tr.scenario());
}

/// QEMU arguments: words separated by NUL (`-object`, `memory-backend-file,…`
/// as one command line has them), parsed as `pmemlab qemu` parses its
/// command line; the option strings alone as the monitor's `object_add` and
/// `device_add` parse them. Nothing opens a file.
pub fn qemu_options(data: &[u8]) {
    let Ok(t) = std::str::from_utf8(data) else { return };
    let args: Vec<String> = t.split('\0').map(str::to_string).collect();
    if let Ok(cfg) = QemuConfig::from_args(&args) {
        assert!(cfg.check().is_ok(), "a command line from_args accepts passes its own check");
    }
    for a in &args {
        let _ = MemoryBackendFile::parse(a);
        let _ = VirtioPmemPci::parse(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_harness_takes_ordinary_and_hostile_input_without_panicking() {
        let ok = br#"{"version": 1, "devices": [{"id": "nv1", "mem-path": "a.img", "size": "1M"}], "steps": [{"op": "write", "device": "nv1", "offset": 0, "text": "x"}]}"#;
        scenario(ok);
        scenario(b"{\"version\": 1, \"version\": 1}");
        link(format!("#scenario={}&step=1", crate::link::base64url_encode(ok)).as_bytes());
        link(b"#lesson=why-fsync&step=99999999999999999999");
        event_log(b"[]");
        event_log(br#"{"events": [], "events": []}"#);
        state(br#"{"config": {}, "report": {}}"#);
        trace(b"18446744073709551615 18446744073709551615\n{}");
        trace(br#"{"format": "pmemlab-trace", "version": 1, "version": 1}"#);
        qemu_options(b"-object\0memory-backend-file,id=m,mem-path=x,size=4K\0-device\0virtio-pmem-pci,memdev=m,id=d");
        qemu_options(b"-m\0");
    }

    #[test]
    fn a_saved_report_resumes_and_an_edited_one_is_refused() {
        let h = history();
        let campaign = Campaign::new(h, &accept, CampaignConfig::default());
        let report = campaign.run();
        let cfg = serde_json::to_value(CampaignConfig::default()).unwrap();
        let good = serde_json::json!({ "config": cfg, "report": report });
        state(good.to_string().as_bytes());
        let mut bad = good.clone();
        bad["report"]["checked"] = serde_json::json!(u64::MAX);
        let saved: Saved = serde_json::from_value(bad).unwrap();
        assert!(campaign.start_point(&saved.report).is_err(), "the negative control: an edited count is refused");
    }
}
