use super::*;
use crate::host::TearGranularity;
use crate::sim::DeviceMode;

const EXAMPLES: [(&str, &str); 7] = [
    ("why-fsync", include_str!("../../../examples/scenarios/why-fsync.json")),
    ("fsync-then-crash", include_str!("../../../examples/scenarios/fsync-then-crash.json")),
    ("fsyncgate", include_str!("../../../examples/scenarios/fsyncgate.json")),
    ("share-off", include_str!("../../../examples/scenarios/share-off.json")),
    ("nvdimm-emulation", include_str!("../../../examples/scenarios/nvdimm-emulation.json")),
    ("background-writeback", include_str!("../../../examples/scenarios/background-writeback.json")),
    ("hotplug", include_str!("../../../examples/scenarios/hotplug.json")),
];

fn example(name: &str) -> &'static str {
    EXAMPLES.iter().find(|(n, _)| *n == name).map(|(_, text)| *text).unwrap()
}

fn report(run: &ScenarioRun) -> String {
    let mut out = String::new();
    for o in &run.outcomes {
        out.push_str(&format!("{o}\n"));
    }
    for f in &run.failed_expectations {
        out.push_str(&format!("FAILED EXPECTATION {f}\n"));
    }
    out
}

/// A scenario with one 64 MiB device `nv1` (and `nv2` of 1 MiB) and the
/// given steps.
fn with_steps(steps: &str) -> String {
    format!(
        r#"{{ "version": 1, "name": "t", "seed": 9,
             "devices": [ {{ "id": "nv1", "size": "64M" }}, {{ "id": "nv2", "size": "1M" }} ],
             "steps": [ {steps} ] }}"#
    )
}

fn rejected(text: &str) -> (ScenarioError, String) {
    let err = Scenario::parse(text).expect_err("the scenario must be rejected");
    let msg = err.to_string();
    (err, msg)
}

fn run_steps(steps: &str) -> ScenarioRun {
    Scenario::parse(&with_steps(steps)).unwrap_or_else(|e| panic!("{e}")).run()
}

// ---- examples -------------------------------------------------------------

#[test]
fn every_example_runs_with_all_expectations_passing() {
    for (name, text) in EXAMPLES {
        let scenario = Scenario::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!scenario.name().is_empty() && !scenario.description().is_empty(), "{name}: name and description");
        let run = scenario.run();
        assert_eq!(run.outcomes.len(), scenario.steps().len());
        assert!(run.passed(), "{name}:\n{}", report(&run));
        let checks = scenario.steps().iter().filter(|s| s.op.name().starts_with("expect_")).count();
        assert!(checks >= 2, "{name}: an example checks something");
    }
}

#[test]
fn negative_control_a_wrong_expectation_is_reported_and_the_run_goes_on() {
    // fsync-then-crash with the lost write claimed to survive.
    let good = example("fsync-then-crash");
    let bad = good.replace(r#""offset": "4K", "hex": "00", "len": 10"#, r#""offset": "4K", "text": "balance=50""#);
    assert_ne!(good, bad, "the replacement must apply");
    let scenario = Scenario::parse(&bad).unwrap();
    let run = scenario.run();
    assert!(!run.passed());
    assert_eq!(run.outcomes.len(), scenario.steps().len(), "a failed expectation does not stop the run");
    assert_eq!(run.failed_expectations.len(), 1, "{}", report(&run));
    let f = &run.failed_expectations[0];
    assert_eq!((f.index, f.op.as_str()), (7, "expect_data"));
    assert_eq!(f.expected, "\"balance=50\"");
    assert!(f.actual.contains("10 zero bytes") && f.actual.contains("offset 0x1000"), "{f}");
    assert!(!run.outcomes[7].ok);
    assert!(run.outcomes[..7].iter().all(|o| o.ok), "{}", report(&run));
}

#[test]
fn examples_round_trip_through_to_json() {
    for (name, text) in EXAMPLES {
        let a = Scenario::parse(text).unwrap();
        let json = a.to_json();
        let b = Scenario::parse(&json).unwrap_or_else(|e| panic!("{name}: {e}\n{json}"));
        assert_eq!(a, b, "{name}");
        assert_eq!(json, b.to_json(), "{name}: to_json is stable");
        // And through serde.
        let c: Scenario = serde_json::from_str(&json).unwrap();
        assert_eq!(a, c);
    }
}

#[test]
fn every_op_and_knob_round_trips() {
    let text = r#"{
      "version": 1, "name": "all", "description": "every op", "seed": 18446744073709551615,
      "model": { "dirty_expire_ms": null, "dirty_writeback_interval_ms": 1000, "dirty_background_ratio": null,
                 "dirty_ratio": 50, "host_memory": "256M", "io_latency_us": 10, "bandwidth_mb_s": 1000,
                 "flush_latency_us": 0, "coalesce_syncs": false, "tear": "8B", "queue_size": 4 },
      "devices": [ { "id": "nv1", "mem-path": "/tmp/x.img", "size": 8192, "share": false, "readonly": true,
                     "mode": "emulated-nvdimm" } ],
      "steps": [
        { "op": "write", "device": "nv1", "offset": "1.5K", "hex": "de ad BE EF", "repeat": 3, "note": "n" },
        { "op": "write", "device": "nv1", "offset": 0, "text": "ab", "len": "1K", "expect_error": "read-only" },
        { "op": "read", "device": "nv1", "offset": 0, "len": 4 },
        { "op": "read", "device": "nv1", "offset": 0, "expect": "abab" },
        { "op": "read", "device": "nv1", "offset": 0, "expect_hex": "00" },
        { "op": "fsync", "device": "nv1", "blocking": false },
        { "op": "msync", "device": "nv1" },
        { "op": "mmap", "device": "nv1", "map_sync": true },
        { "op": "mmap", "device": "nv1" },
        { "op": "wait", "s": 1 }, { "op": "wait", "ms": 2 }, { "op": "wait", "us": 3 }, { "op": "wait", "ns": 4 },
        { "op": "run_until_idle" }, { "op": "power_failure" }, { "op": "guest_crash" }, { "op": "vmm_kill" },
        { "op": "inject_fsync_error", "device": "nv1" },
        { "op": "hotplug", "device": { "id": "nv2", "size": "4K" } },
        { "op": "unplug", "device": "nv2", "expect_error": "hot-unplug" },
        { "op": "expect_data", "device": "nv2", "offset": 0, "hex": "00", "len": "4K" },
        { "op": "expect_durable", "device": "nv1", "offset": 0, "text": "x", "repeat": 2 },
        { "op": "expect_flush", "device": "nv1", "result": "pending" }
      ] }"#;
    let a = Scenario::parse(text).unwrap_or_else(|e| panic!("{e}"));
    let b = Scenario::parse(&a.to_json()).unwrap_or_else(|e| panic!("{e}\n{}", a.to_json()));
    assert_eq!(a, b);
    assert_eq!(a.steps().len(), 23);
    let names: BTreeSet<&str> = a.steps().iter().map(|s| s.op.name()).collect();
    assert_eq!(names, op_names().collect(), "the scenario uses every op");
    assert_eq!(a.seed(), u64::MAX);
    let Op::Write { offset, data, .. } = &a.steps()[0].op else { panic!() };
    assert_eq!(offset.0, 1536);
    assert_eq!(data.bytes(), [0xde, 0xad, 0xbe, 0xef].repeat(3));
    let Op::Write { data, .. } = &a.steps()[1].op else { panic!() };
    assert_eq!(data.bytes().len(), 1024);
    assert_eq!(&data.bytes()[..5], b"ababa");
    // The JSON names ops with "op" first and writes sizes with suffixes.
    let json = a.to_json();
    assert!(json.contains("\"op\": \"write\""), "{json}");
    assert!(json.contains("\"host_memory\": \"256M\""), "{json}");
    assert!(json.contains("\"dirty_expire_ms\": null"), "{json}");
    assert!(json.contains("\"len\": \"1K\""), "{json}");
}

#[test]
fn same_seed_same_event_log_and_the_seed_matters() {
    let scenario = Scenario::parse(example("fsync-then-crash")).unwrap();
    let a = scenario.run();
    let b = scenario.run();
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(a, b);
    let c = scenario.clone().with_seed(scenario.seed() + 1).run();
    assert!(c.passed(), "{}", report(&c));
    assert_ne!(a.fingerprint(), c.fingerprint(), "flush latencies come from the seed");
}

#[test]
fn step_by_step_runner_matches_run() {
    let scenario = Scenario::parse(example("fsyncgate")).unwrap();
    let mut runner = scenario.runner();
    assert_eq!(runner.machine().device_ids(), ["nv1"]);
    let mut seen = 0;
    while let Some(o) = runner.step() {
        assert_eq!(o.index, seen);
        seen += 1;
    }
    assert!(runner.is_done());
    assert_eq!(runner.finish(), scenario.run());
}

// ---- validation: one test per kind of error ---------------------------------

#[test]
fn json_syntax_errors_give_line_and_column() {
    let (err, msg) = rejected("{\n  \"version\": 1,\n  \"steps\": [ { \"op\": \"write\", } ]\n}");
    assert!(matches!(err, ScenarioError::Syntax { line: 3, .. }), "{err:?}");
    assert!(msg.starts_with("JSON syntax error at line 3, column "), "{msg}");
    let (_, msg) = rejected("");
    assert!(msg.contains("line 1"), "{msg}");
}

#[test]
fn other_versions_are_refused_saying_which_are_supported() {
    let (err, msg) = rejected(r#"{ "version": 2, "future_field": true }"#);
    assert_eq!(err, ScenarioError::UnsupportedVersion { found: "2".into() });
    assert_eq!(msg, "scenario: field \"version\": version 2 is not supported; supported versions: 1");
    let (_, msg) = rejected(r#"{ "version": "1" }"#);
    assert!(msg.contains("version \"1\" is not supported"), "{msg}");
    let (err, msg) = rejected(r#"{ "steps": [] }"#);
    assert_eq!(err.field(), Some("version"));
    assert!(msg.contains("\"version\": 1"), "{msg}");
}

#[test]
fn a_scenario_that_is_not_an_object_is_refused() {
    let (err, msg) = rejected("[1, 2]");
    assert!(matches!(err, ScenarioError::NotAnObject { at: Location::Scenario, .. }));
    assert_eq!(msg, "scenario: expected a JSON object, found an array");
    let (_, msg) = rejected(&with_steps(r#"42"#));
    assert_eq!(msg, "step 0: expected a JSON object, found 42");
}

#[test]
fn unknown_top_level_and_model_fields_are_refused() {
    let (err, msg) = rejected(r#"{ "version": 1, "seeed": 3 }"#);
    assert_eq!(err.field(), Some("seeed"));
    assert!(msg.starts_with("scenario: unknown field \"seeed\"; accepted fields are version, name,"), "{msg}");
    let (_, msg) = rejected(r#"{ "version": 1, "model": { "dirty_expire": 5 } }"#);
    assert!(msg.starts_with("model: unknown field \"dirty_expire\"; accepted fields are dirty_expire_ms,"), "{msg}");
}

#[test]
fn bad_model_values_name_the_knob_and_the_accepted_values() {
    let cases = [
        (r#""tear": "7B""#, "model: field \"tear\": tear granularity '7B' is not one of 8B, 64B, 512B, 4KiB"),
        (r#""queue_size": 100"#, "model: field \"queue_size\": expected a power of two from 1 to 32768, found 100"),
        (r#""dirty_ratio": 120"#, "model: field \"dirty_ratio\": expected a percentage from 0 to 100, found 120"),
        (r#""dirty_expire_ms": "30s""#, "model: field \"dirty_expire_ms\": expected a whole number"),
        (r#""host_memory": "1Q""#, "model: field \"host_memory\": '1Q' is not a size"),
        (r#""bandwidth_mb_s": 0"#, "model: field \"bandwidth_mb_s\": expected a bandwidth of at least 1 MB/s"),
        (r#""coalesce_syncs": "yes""#, "model: field \"coalesce_syncs\": expected true or false"),
        (r#""io_latency_us": null"#, "model: field \"io_latency_us\": expected a whole number"),
    ];
    for (knob, want) in cases {
        let (_, msg) = rejected(&format!(r#"{{ "version": 1, "model": {{ {knob} }} }}"#));
        assert!(msg.starts_with(want), "{knob}: {msg}");
    }
    let (_, msg) = rejected(r#"{ "version": 1, "model": [] }"#);
    assert_eq!(msg, "model: expected a JSON object, found an array");
}

#[test]
fn model_knobs_map_onto_the_machine_config() {
    let s = Scenario::parse(
        r#"{ "version": 1, "seed": 5, "model": { "dirty_expire_ms": 1500, "dirty_writeback_interval_ms": null,
             "dirty_background_ratio": 5, "host_memory": "2G", "io_latency_us": 7, "bandwidth_mb_s": 100,
             "flush_latency_us": 3, "coalesce_syncs": false, "tear": "4KiB", "queue_size": 256 } }"#,
    )
    .unwrap();
    let cfg = s.model().sim_config(s.seed());
    assert_eq!(cfg.seed, 5);
    assert_eq!(cfg.queue_size, 256);
    assert_eq!(cfg.tear, TearGranularity::Page4K);
    assert_eq!(cfg.host.dirty_expire_ns, Some(1_500_000_000));
    assert_eq!(cfg.host.dirty_writeback_interval_ns, None);
    assert_eq!(cfg.host.dirty_background_ratio, Some(5));
    assert_eq!(cfg.host.dirty_ratio, Some(20), "default kept");
    assert_eq!(cfg.host.host_memory_bytes, 2 << 30);
    assert_eq!(cfg.host.io_latency_ns, 7_000);
    assert_eq!(cfg.host.bandwidth_bytes_per_sec, 100_000_000);
    assert_eq!(cfg.host.flush_latency_ns, 3_000);
    assert!(!cfg.host.coalesce_syncs);
    // Absent knobs are Linux's and QEMU's defaults.
    let d = Model::default().sim_config(0);
    assert_eq!(d.host, crate::host::PageCacheConfig::default());
    assert_eq!((d.queue_size, d.tear), (128, TearGranularity::Sector512));
}

#[test]
fn device_size_must_be_a_nonzero_multiple_of_4096() {
    let dev = |size: &str| {
        format!(r#"{{ "version": 1, "devices": [ {{ "id": "a", "size": "4K" }}, {{ "id": "b", "size": {size} }} ] }}"#)
    };
    let (err, msg) = rejected(&dev(r#""4097""#));
    assert_eq!(err.location(), Some(&Location::Device { index: 1 }));
    assert_eq!(msg, "device 1: field \"size\": \"4097\" is not a multiple of 4096");
    let (_, msg) = rejected(&dev("4097"));
    assert_eq!(msg, "device 1: field \"size\": 4097 is not a multiple of 4096");
    let (_, msg) = rejected(&dev(r#""0""#));
    assert!(msg.starts_with("device 1: field \"size\": the size must not be zero"), "{msg}");
    let (_, msg) = rejected(&dev(r#""64MB""#));
    assert!(msg.contains("'64MB' is not a size") && msg.contains("K, M, G, T"), "{msg}");
    let (_, msg) = rejected(&dev(r#""32T""#));
    assert!(msg.contains("larger than the largest device"), "{msg}");
    for ok in [r#""64M""#, r#""4k""#, r#""1g""#, "8192", r#""8192""#] {
        assert!(Scenario::parse(&dev(ok)).is_ok(), "{ok}");
    }
}

#[test]
fn device_fields_are_checked_with_their_index() {
    let devs = |d: &str| format!(r#"{{ "version": 1, "devices": [ {{ "id": "a", "size": "4K" }}, {d} ] }}"#);
    let cases = [
        (r#"{ "id": "a", "size": "4K" }"#, "device 1: field \"id\": \"a\" is already the id of another device"),
        (r#"{ "id": "1x", "size": "4K" }"#, "device 1: field \"id\": \"1x\" is not a valid id"),
        (r#"{ "size": "4K" }"#, "device 1: field \"id\" is missing; give the device an id"),
        (r#"{ "id": "b" }"#, "device 1: field \"size\" is missing; give the size"),
        (r#"{ "id": "b", "size": "4K", "mode": "nvdimm" }"#, "device 1: field \"mode\": expected one of \"virtio-pmem\", \"emulated-nvdimm\", \"real-nvdimm\", found \"nvdimm\""),
        (r#"{ "id": "b", "size": "4K", "share": "on" }"#, "device 1: field \"share\": expected true or false, found \"on\""),
        (r#"{ "id": "b", "size": "4K", "memdev": "m" }"#, "device 1: unknown field \"memdev\"; accepted fields are id, mem-path, size, share, readonly, mode"),
        (r#""nv2""#, "device 1: expected a JSON object, found \"nv2\""),
    ];
    for (d, want) in cases {
        let (_, msg) = rejected(&devs(d));
        assert!(msg.starts_with(want), "{d}: {msg}");
    }
    let (_, msg) = rejected(r#"{ "version": 1, "devices": { "id": "a" } }"#);
    assert_eq!(msg, "scenario: field \"devices\": expected an array of device objects, found an object");
}

#[test]
fn an_unknown_op_lists_the_ops() {
    let (err, msg) = rejected(&with_steps(r#"{ "op": "wrte", "device": "nv1" }"#));
    assert_eq!(err.step_index(), Some(0));
    assert_eq!(err.field(), Some("op"));
    assert!(
        msg.starts_with("step 0: unknown op \"wrte\"; expected one of write, read, fsync, msync, mmap, wait,"),
        "{msg}"
    );
    assert!(msg.ends_with("expect_data, expect_durable, expect_flush"), "{msg}");
    let (_, msg) = rejected(&with_steps(r#"{ "op": "fsync", "device": "nv1" }, { "device": "nv1" }"#));
    assert!(msg.starts_with("step 1: field \"op\" is missing; expected one of write, read,"), "{msg}");
    let (_, msg) = rejected(&with_steps(r#"{ "op": 3 }"#));
    assert!(msg.starts_with("step 0: field \"op\": expected a string"), "{msg}");
}

#[test]
fn an_unknown_step_field_names_the_step_and_the_accepted_fields() {
    let (err, msg) = rejected(&with_steps(
        r#"{ "op": "fsync", "device": "nv1" }, { "op": "write", "device": "nv1", "offset": 0, "text": "a", "lenght": 4 }"#,
    ));
    assert_eq!(err.step_index(), Some(1));
    assert_eq!(
        msg,
        "step 1 (write): unknown field \"lenght\"; accepted fields are op, device, offset, text, hex, repeat, len, expect_error, note"
    );
    // expect_error is only for steps that can fail.
    let (_, msg) = rejected(&with_steps(r#"{ "op": "power_failure", "expect_error": "x" }"#));
    assert_eq!(msg, "step 0 (power_failure): unknown field \"expect_error\"; accepted fields are op, note");
}

#[test]
fn a_step_naming_a_missing_device_lists_the_devices() {
    let (err, msg) = rejected(&with_steps(
        r#"{ "op": "wait", "ms": 1 }, { "op": "run_until_idle" }, { "op": "fsync", "device": "nv1" },
           { "op": "write", "device": "nv9", "offset": 0, "text": "a" }"#,
    ));
    assert_eq!(err.location(), Some(&Location::Step { index: 3, op: Some("write".into()) }));
    assert_eq!(msg, "step 3 (write): field \"device\": no device \"nv9\"; devices are nv1, nv2");
    // A hot-plugged device exists from its hotplug step on, not before.
    let (_, msg) = rejected(&with_steps(
        r#"{ "op": "fsync", "device": "nv3" }, { "op": "hotplug", "device": { "id": "nv3", "size": "4K" } }"#,
    ));
    assert_eq!(msg, "step 0 (fsync): field \"device\": no device \"nv3\"; devices are nv1, nv2");
    assert!(Scenario::parse(&with_steps(
        r#"{ "op": "hotplug", "device": { "id": "nv3", "size": "4K" } }, { "op": "fsync", "device": "nv3" }"#
    ))
    .is_ok());
    let (_, msg) = rejected(r#"{ "version": 1, "steps": [ { "op": "unplug", "device": "x" } ] }"#);
    assert_eq!(msg, "step 0 (unplug): field \"device\": no device \"x\"; there are no devices");
}

#[test]
fn missing_step_fields_say_what_to_give() {
    let cases = [
        (
            r#"{ "op": "write", "device": "nv1", "text": "a" }"#,
            "step 0 (write): field \"offset\" is missing; give the offset",
        ),
        (
            r#"{ "op": "write", "offset": 0, "text": "a" }"#,
            "step 0 (write): field \"device\" is missing; give the id of a device; devices are nv1, nv2",
        ),
        (
            r#"{ "op": "write", "device": "nv1", "offset": 0 }"#,
            "step 0 (write): field \"text\" is missing; give the bytes as \"text\" (UTF-8) or as \"hex\"",
        ),
        (r#"{ "op": "read", "device": "nv1", "offset": 0 }"#, "step 0 (read): field \"len\" is missing"),
        (
            r#"{ "op": "wait" }"#,
            "step 0 (wait): field \"ms\" is missing; give the time in exactly one of \"s\", \"ms\", \"us\", \"ns\"",
        ),
        (r#"{ "op": "hotplug" }"#, "step 0 (hotplug): field \"device\" is missing; give the new device as an object"),
    ];
    for (step, want) in cases {
        let (err, msg) = rejected(&with_steps(step));
        assert!(matches!(err, ScenarioError::MissingField { .. }), "{err:?}");
        assert!(msg.starts_with(want), "{step}: {msg}");
    }
}

#[test]
fn invalid_step_values_name_the_field_and_what_is_accepted() {
    let cases = [
        (
            r#"{ "op": "write", "device": "nv1", "offset": -1, "text": "a" }"#,
            "step 0 (write): field \"offset\": expected a byte count or a size string",
        ),
        (
            r#"{ "op": "write", "device": "nv1", "offset": "2X", "text": "a" }"#,
            "step 0 (write): field \"offset\": '2X' is not a size",
        ),
        (
            r#"{ "op": "write", "device": "nv1", "offset": 0, "text": "a", "hex": "61" }"#,
            "step 0 (write): field \"hex\": give the bytes either as \"text\" or as \"hex\", not both",
        ),
        (
            r#"{ "op": "write", "device": "nv1", "offset": 0, "hex": "6" }"#,
            "step 0 (write): field \"hex\": hex string has odd length 1",
        ),
        (
            r#"{ "op": "write", "device": "nv1", "offset": 0, "hex": "zz" }"#,
            "step 0 (write): field \"hex\": 'zz' is not hex",
        ),
        (
            r#"{ "op": "write", "device": "nv1", "offset": 0, "text": "" }"#,
            "step 0 (write): field \"text\": must hold at least one byte",
        ),
        (
            r#"{ "op": "write", "device": "nv1", "offset": 0, "text": "a", "repeat": 2, "len": 3 }"#,
            "step 0 (write): field \"len\": give either \"repeat\" or \"len\", not both",
        ),
        (
            r#"{ "op": "write", "device": "nv1", "offset": 0, "text": "a", "repeat": 0 }"#,
            "step 0 (write): field \"repeat\": expected a count of at least 1",
        ),
        (
            r#"{ "op": "write", "device": "nv1", "offset": 0, "text": "a", "len": "1G" }"#,
            "step 0 (write): field \"len\": the data is 1073741824 bytes; at most 64M per step",
        ),
        (
            r#"{ "op": "read", "device": "nv1", "offset": 0, "len": 3, "expect": "ab" }"#,
            "step 0 (read): field \"len\": 3 does not match the 2 expected bytes",
        ),
        (
            r#"{ "op": "read", "device": "nv1", "offset": 0, "expect": "ab", "expect_error": "x" }"#,
            "step 0 (read): field \"expect_error\": a read either expects bytes",
        ),
        (
            r#"{ "op": "fsync", "device": "nv1", "blocking": "no" }"#,
            "step 0 (fsync): field \"blocking\": expected true or false",
        ),
        (
            r#"{ "op": "mmap", "device": "nv1", "map_sync": 1 }"#,
            "step 0 (mmap): field \"map_sync\": expected true or false",
        ),
        (
            r#"{ "op": "wait", "ms": 5, "s": 1 }"#,
            "step 0 (wait): field \"ms\": give the time in exactly one unit; \"s\" is given already",
        ),
        (r#"{ "op": "wait", "ms": 1.5 }"#, "step 0 (wait): field \"ms\": expected a whole number ≥ 0, found 1.5"),
        (r#"{ "op": "wait", "s": 18446744074 }"#, "step 0 (wait): field \"s\": 18446744074 s is too long"),
        (
            r#"{ "op": "inject_fsync_error", "device": "nv1", "count": 0 }"#,
            "step 0 (inject_fsync_error): field \"count\": expected a count of at least 1",
        ),
        (
            r#"{ "op": "hotplug", "device": { "id": "nv3", "size": "5000" } }"#,
            "step 0 (hotplug): field \"device.size\": \"5000\" is not a multiple of 4096",
        ),
        (
            r#"{ "op": "hotplug", "device": { "id": "nv1", "size": "4K" } }"#,
            "step 0 (hotplug): field \"device.id\": \"nv1\" is already the id of another device",
        ),
        (
            r#"{ "op": "hotplug", "device": { "id": "nv3", "size": "4K", "bus": "pci" } }"#,
            "step 0 (hotplug): unknown field \"device.bus\"; accepted fields are device.id, device.mem-path,",
        ),
        (
            r#"{ "op": "hotplug", "device": "nv3" }"#,
            "step 0 (hotplug): field \"device\": expected an object, found \"nv3\"",
        ),
        (
            r#"{ "op": "expect_flush", "device": "nv1", "result": "ok" }"#,
            "step 0 (expect_flush): field \"device\": \"nv1\" has no fsync or msync before this step",
        ),
        (
            r#"{ "op": "msync", "device": "nv1" }, { "op": "expect_flush", "device": "nv1", "result": "EIO" }"#,
            "step 1 (expect_flush): field \"result\": expected one of \"ok\", \"eio\", \"pending\", found \"EIO\"",
        ),
        (
            r#"{ "op": "unplug", "device": "nv1", "expect_error": "" }"#,
            "step 0 (unplug): field \"expect_error\": expected some text",
        ),
        (
            r#"{ "op": "power_failure", "note": 5 }"#,
            "step 0 (power_failure): field \"note\": expected a string, found 5",
        ),
    ];
    for (step, want) in cases {
        let (err, msg) = rejected(&with_steps(step));
        assert!(err.step_index().is_some(), "{msg}");
        assert!(msg.starts_with(want), "{step}:\n  got  {msg}\n  want {want}");
    }
}

#[test]
fn errors_reach_serde_users_too() {
    let err = serde_json::from_str::<Scenario>(&with_steps(r#"{ "op": "wrte" }"#)).unwrap_err();
    assert!(err.to_string().contains("step 0: unknown op \"wrte\""), "{err}");
}

// ---- running ----------------------------------------------------------------

#[test]
fn a_step_that_fails_at_run_time_is_reported_with_its_index_and_the_run_goes_on() {
    let run = run_steps(
        r#"{ "op": "write", "device": "nv2", "offset": "1M", "text": "x" },
           { "op": "write", "device": "nv2", "offset": 0, "text": "x" },
           { "op": "expect_data", "device": "nv2", "offset": "2M", "text": "x" }"#,
    );
    assert!(!run.passed());
    let failed: Vec<_> = run.failures().collect();
    assert_eq!(failed.len(), 2, "{}", report(&run));
    assert_eq!((failed[0].index, failed[0].op.as_str()), (0, "write"));
    assert!(failed[0].detail.contains("outside device 'nv2'"), "{}", failed[0].detail);
    assert!(run.outcomes[1].ok, "the next step ran");
    assert_eq!(run.failed_expectations.len(), 1, "an expectation that cannot be checked fails");
    assert_eq!(run.failed_expectations[0].index, 2);
    assert!(run.failed_expectations[0].actual.starts_with("error: access"), "{:?}", run.failed_expectations);
}

#[test]
fn map_sync_refusal_is_recorded_unless_expected() {
    let run = run_steps(r#"{ "op": "mmap", "device": "nv1", "map_sync": true }"#);
    assert!(!run.outcomes[0].ok);
    assert!(run.outcomes[0].detail.contains("EOPNOTSUPP"), "{}", run.outcomes[0].detail);
    assert!(run.failed_expectations.is_empty(), "a refusal is a failed step, not a failed expectation");
    let run = run_steps(r#"{ "op": "mmap", "device": "nv1", "map_sync": true, "expect_error": "eopnotsupp" }"#);
    assert!(run.passed(), "{}", report(&run));
    assert!(run.outcomes[0].detail.starts_with("failed as expected: mmap(MAP_SYNC)"));
    // The wrong error, or no error, fails the expectation.
    let run = run_steps(r#"{ "op": "mmap", "device": "nv1", "map_sync": true, "expect_error": "EPERM" }"#);
    assert_eq!(run.failed_expectations.len(), 1);
    assert_eq!(run.failed_expectations[0].expected, "an error containing \"EPERM\"");
    let run = run_steps(r#"{ "op": "mmap", "device": "nv1", "expect_error": "EOPNOTSUPP" }"#);
    assert_eq!(run.failed_expectations.len(), 1);
    assert!(run.failed_expectations[0].actual.starts_with("success: nv1 mapped"), "{:?}", run.failed_expectations);
}

#[test]
fn unplug_is_always_refused() {
    let run = run_steps(r#"{ "op": "unplug", "device": "nv2" }"#);
    assert!(!run.passed());
    assert!(run.outcomes[0].detail.contains("does not support hot-unplug"), "{}", run.outcomes[0].detail);
    let refused = run.log.events().iter().any(|e| matches!(e.kind, crate::event::EventKind::UnplugRefused { .. }));
    assert!(refused, "the refusal is in the event log");
}

#[test]
fn a_flush_not_waited_for_is_lost_in_a_power_failure() {
    let run = run_steps(
        r#"{ "op": "write", "device": "nv1", "offset": 0, "text": "a", "len": "64K" },
           { "op": "fsync", "device": "nv1", "blocking": false },
           { "op": "expect_flush", "device": "nv1", "result": "pending" },
           { "op": "power_failure" },
           { "op": "expect_flush", "device": "nv1", "result": "pending" },
           { "op": "fsync", "device": "nv1" },
           { "op": "expect_flush", "device": "nv1", "result": "ok" }"#,
    );
    assert!(run.passed(), "{}", report(&run));
    assert!(run.outcomes[1].detail.contains("not waiting"), "{}", run.outcomes[1].detail);
}

#[test]
fn run_until_idle_lets_background_writeback_finish() {
    let run = run_steps(
        r#"{ "op": "write", "device": "nv1", "offset": "8K", "hex": "ab", "repeat": 3 },
           { "op": "run_until_idle" },
           { "op": "expect_durable", "device": "nv1", "offset": "8K", "hex": "ababab" },
           { "op": "read", "device": "nv1", "offset": "8K", "len": 3 },
           { "op": "read", "device": "nv1", "offset": "8K", "expect_hex": "abab00" }"#,
    );
    assert_eq!(run.failed_expectations.len(), 1, "{}", report(&run));
    assert_eq!(run.failed_expectations[0].index, 4);
    assert!(run.outcomes[1].detail.starts_with("idle after"), "{}", run.outcomes[1].detail);
    assert!(run.outcomes[1].at.as_nanos() >= 30_000_000_000, "dirty_expire is 30 s");
    assert_eq!(run.outcomes[3].detail, "loaded hex ababab at 0x2000");
}

#[test]
fn readonly_devices_drop_guest_stores_as_qemu_does() {
    let text = r#"{ "version": 1, "devices": [ { "id": "ro", "size": "4K", "readonly": true } ],
                   "steps": [ { "op": "write", "device": "ro", "offset": 0, "text": "x" },
                              { "op": "expect_data", "device": "ro", "offset": 0, "hex": "00" },
                              { "op": "fsync", "device": "ro" },
                              { "op": "expect_flush", "device": "ro", "result": "ok" } ] }"#;
    let run = Scenario::parse(text).unwrap().run();
    assert!(run.passed(), "{}", report(&run));
    assert!(run.outcomes[0].detail.contains("dropped: readonly=on"), "{}", run.outcomes[0].detail);
    // A negative control: expecting the store fails.
    let wrong = text.replace(r#""hex": "00""#, r#""text": "x""#);
    assert!(!Scenario::parse(&wrong).unwrap().run().passed());
}

#[test]
fn outcomes_point_at_their_events() {
    let scenario = Scenario::parse(example("fsync-then-crash")).unwrap();
    let run = scenario.run();
    let mut next = run.outcomes[0].events.start;
    for o in &run.outcomes {
        assert_eq!(o.events.start, next, "outcomes cover the log without gaps");
        next = o.events.end;
    }
    assert_eq!(next, run.log.len());
    let fsync = &run.outcomes[1];
    let kinds: Vec<_> = run.log.events()[fsync.events.clone()].iter().map(|e| &e.kind).collect();
    assert!(kinds.iter().any(|k| matches!(k, crate::event::EventKind::FlushReturned { ok: true, .. })));
}

#[test]
fn build_machine_plugs_the_initial_devices_with_their_options() {
    let s = Scenario::parse(example("nvdimm-emulation")).unwrap();
    let m = s.build_machine();
    assert_eq!(m.device_ids(), ["vpmem", "emulated", "real"]);
    assert_eq!(m.device_mode("emulated").unwrap(), DeviceMode::EmulatedNvdimm);
    assert_eq!(m.config().seed, 5);
    let h = Scenario::parse(example("hotplug")).unwrap();
    assert_eq!(h.all_devices().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["nv1", "nv2"]);
    assert_eq!(h.devices()[0].mem_path.as_deref(), Some("./nv1.img"));
}

#[test]
fn a_key_given_twice_is_refused_and_named() {
    let text =
        r#"{"version": 1, "seed": 1, "devices": [{"id": "nv1", "mem-path": "a.img", "size": "1M", "size": "2M"}]}"#;
    let err = Scenario::parse(text).unwrap_err();
    assert!(matches!(&err, ScenarioError::DuplicateKey { key, line: 1, .. } if key == "size"), "{err:?}");
    assert_eq!(err.field(), Some("size"));
    assert!(err.to_string().starts_with("duplicate key \"size\" at line 1"), "{err}");
    // The same keys in sibling objects are fine (negative control).
    let ok = r#"{"version": 1, "devices": [{"id": "a", "mem-path": "a.img", "size": "1M"}, {"id": "b", "mem-path": "b.img", "size": "1M"}]}"#;
    assert!(Scenario::parse(ok).is_ok());
}

#[test]
fn a_runner_held_to_a_budget_stops_at_the_step_that_passes_it() {
    use crate::budget::{Budget, MIN_LIMIT};
    let step = r#"{"op": "write", "device": "nv1", "offset": 0, "text": "x", "len": "8M"}"#;
    let steps = [step; 4].join(",");
    let text = format!(
        r#"{{"version": 1, "devices": [{{"id": "nv1", "mem-path": "a.img", "size": "64M"}}], "steps": [{steps}]}}"#
    );
    let scenario = Scenario::parse(&text).unwrap();
    let mut runner = scenario.runner();
    runner.set_budget(Budget::new(MIN_LIMIT).unwrap());
    let mut ran = 0;
    while runner.step().is_some() {
        ran += 1;
    }
    let why = runner.over_budget().expect("16 MiB cannot hold 32 MiB of stores").to_string();
    assert!(why.contains("the event log reached") && why.contains("after step 1"), "{why}");
    assert_eq!(ran, 2, "the step that passed the limit has its outcome, none after it");
    assert!(!runner.is_done());
    // Without a budget every step runs (negative control).
    let mut free = scenario.runner();
    while free.step().is_some() {}
    assert!(free.is_done() && free.over_budget().is_none());
}
