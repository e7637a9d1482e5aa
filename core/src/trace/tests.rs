use super::raw::{
    encode_header, RawRecord, KIND_FLUSH, KIND_HELLO, KIND_MAP_SYNC, KIND_STORE, KIND_TRUNCATE, KIND_UNTRACEABLE,
};
use super::*;
use crate::scenario::Op;

fn header() -> TraceHeader {
    TraceHeader {
        program: "./prog".into(),
        args: vec!["db.img".into()],
        devices: vec![TraceDevice { id: "pmem0".into(), path: "db.img".into(), size: 1 << 20 }],
        exit: ExitStatus::Code(0),
        stats: RecordStats::default(),
        notes: Vec::new(),
        initial_steps: 0,
    }
}

fn blank(len: u64) -> Vec<InitialFile> {
    vec![InitialFile { len, extents: Vec::new() }]
}

fn rec(kind: u8, pid: u32, a: u64, b: u64, payload: &[u8]) -> RawRecord {
    RawRecord { kind, pid, device: 0, a, b, payload: payload.to_vec() }
}

fn sample() -> Trace {
    let records = [
        rec(KIND_HELLO, 5, 0, 0, b""),
        rec(KIND_STORE, 5, 4096, 0, b"RECORD 1"),
        rec(KIND_STORE, 5, 0, 0, b"VALID"),
        rec(KIND_FLUSH, 5, 2, 0, b""),
        rec(KIND_STORE, 5, 8190, 1, b"abcd"),
    ];
    Trace::from_records(header(), &records, &blank(1 << 20)).unwrap()
}

#[test]
fn records_become_write_and_flush_steps_with_their_stats() {
    let t = sample();
    let ops: Vec<&str> = t.scenario().steps().iter().map(|s| s.op.name()).collect();
    assert_eq!(ops, ["write", "write", "msync", "write"]);
    let s = t.header().stats;
    assert_eq!((s.stores, s.bytes, s.flushes, s.pages), (3, 17, 1, 3));
    let run = t.scenario().run();
    assert!(run.passed(), "{:?}", run.failed_expectations);
}

#[test]
fn a_trace_reads_back_equal() {
    let t = sample();
    assert_eq!(Trace::parse(&t.to_json()).unwrap(), t);
}

#[test]
fn truncation_writes_zeros_over_what_was_cut() {
    let records = [rec(KIND_STORE, 1, 0, 1, b"xyz"), rec(KIND_TRUNCATE, 1, 1, 0, b"")];
    let t = Trace::from_records(header(), &records, &blank(3)).unwrap();
    match &t.scenario().steps()[1].op {
        Op::Write { offset, data, .. } => assert_eq!((offset.0, data.bytes()), (1, vec![0, 0])),
        other => panic!("expected a write of zeros, got {other:?}"),
    }
}

#[test]
fn map_sync_is_an_mmap_step_refused_with_eopnotsupp() {
    let records = [rec(KIND_MAP_SYNC, 1, 0, 4096, b"")];
    let t = Trace::from_records(header(), &records, &blank(1 << 20)).unwrap();
    assert_eq!(t.scenario().steps()[0].op, Op::Mmap { device: "pmem0".into(), map_sync: true });
    assert_eq!(t.header().notes.len(), 1);
    assert!(t.scenario().run().passed(), "the scenario runner refuses MAP_SYNC with EOPNOTSUPP");
}

#[test]
fn what_cannot_be_traced_is_refused_with_the_reason() {
    let cases: [(Vec<RawRecord>, &str); 4] = [
        (vec![rec(KIND_UNTRACEABLE, 1, 0, 0, b"mremap of a device mapping")], "mremap"),
        (vec![rec(KIND_STORE, 1, 0, 0, b"a"), rec(KIND_STORE, 2, 1, 0, b"b")], "two processes"),
        (vec![rec(KIND_STORE, 1, (1 << 20) - 1, 0, b"ab")], "past the end"),
        (vec![rec(KIND_TRUNCATE, 1, 2 << 20, 0, b"")], "past the device's size"),
    ];
    for (records, want) in cases {
        let e = Trace::from_records(header(), &records, &blank(0)).unwrap_err();
        assert!(matches!(e, TraceError::Untraceable(_)) && e.to_string().contains(want), "{e}");
    }
}

#[test]
fn a_truncated_trace_is_refused_as_truncated() {
    let text = sample().to_json();
    for cut in [text.len() / 2, text.len() - 3, 1] {
        let e = Trace::parse(&text[..cut]).unwrap_err();
        assert!(matches!(e, TraceError::Truncated { .. }), "cut at {cut}: {e}");
    }
}

#[test]
fn another_version_or_format_is_refused() {
    let text = sample().to_json();
    // Keys are sorted: the trace's own version is the last one.
    let at = text.rfind("\"version\": 1").unwrap();
    let v2 = format!("{}\"version\": 2{}", &text[..at], &text[at + 12..]);
    assert!(matches!(Trace::parse(&v2), Err(TraceError::Version { .. })));
    assert!(Trace::parse(&v2).unwrap_err().to_string().contains("version 2"));
    let other = text.replacen("pmemlab-trace", "something-else", 1);
    assert!(matches!(Trace::parse(&other), Err(TraceError::Format { found: Some(_) })));
}

#[test]
fn a_duplicate_key_is_refused_by_name() {
    let text =
        sample().to_json().replacen("\"program\": \"./prog\",", "\"program\": \"./prog\", \"program\": \"x\",", 1);
    assert_eq!(Trace::parse(&text), Err(TraceError::DuplicateKey { key: "program".into() }));
    let nested = sample().to_json().replacen("\"id\": \"pmem0\",", "\"id\": \"pmem0\", \"id\": \"pmem0\",", 1);
    assert_eq!(Trace::parse(&nested), Err(TraceError::DuplicateKey { key: "id".into() }));
}

#[test]
fn bad_values_are_refused_naming_the_field() {
    let text = sample().to_json();
    let cases = [
        (text.replacen("\"size\": 1048576", "\"size\": 1000", 1), "devices"),
        (text.replacen("\"stores\": 3", "\"stores\": -1", 1), "stats"),
        (text.replacen("\"program\"", "\"programme\"", 1), "programme"),
        (text.replacen("\"mem-path\": \"db.img\"", "\"mem-path\": \"other.img\"", 1), "scenario"),
    ];
    for (t, field) in cases {
        let e = Trace::parse(&t).unwrap_err();
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
}

#[test]
fn raw_headers_encode_without_allocation_and_decode() {
    let mut s = encode_header(KIND_STORE, 1, 0, 2, 10, 0).to_vec();
    s.extend_from_slice(b"hi");
    assert_eq!(raw::decode(&s).unwrap()[0].payload, b"hi");
}

#[test]
fn the_initial_content_comes_first_and_is_flushed() {
    let initial = vec![InitialFile { len: 1 << 20, extents: vec![(8192, b"old".to_vec())] }];
    let t = Trace::from_records(header(), &[rec(KIND_STORE, 1, 0, 0, b"new")], &initial).unwrap();
    let ops: Vec<&str> = t.scenario().steps().iter().map(|s| s.op.name()).collect();
    assert_eq!(ops, ["write", "fsync", "write"]);
    assert_eq!(t.header().initial_steps, 2);
    assert_eq!(t.header().stats.stores, 1, "the initial content is not a store of the program's");
    let text = t.to_json().replacen("\"initial_steps\": 2", "\"initial_steps\": 9", 1);
    assert!(Trace::parse(&text).unwrap_err().to_string().contains("initial_steps"));
}
