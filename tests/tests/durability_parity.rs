//! Parity of the durability model: for every example scenario, in every
//! device mode, the event-log fingerprint, the durable image and every crash
//! image of every crash point equal those recorded in
//! `tests/golden/durability.json` (recorded before the durability model was
//! unified; see docs/architecture.md). `PMEMLAB_BLESS=1` rewrites the file.

use pmem_core::crash::{Campaign, CampaignConfig, ImageReader, ImageView, WriteHistory};
use pmem_core::rng::fnv1a64;
use pmem_core::scenario::Scenario;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn examples() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for dir in ["examples/scenarios", "examples/explore"] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        for p in paths {
            let text = std::fs::read_to_string(&p).unwrap();
            let name = format!("{dir}/{}", p.file_name().unwrap().to_string_lossy());
            out.push((name, serde_json::from_str(&text).unwrap()));
        }
    }
    out
}

const MODES: [(&str, &str, bool); 5] = [
    ("as-written", "", true),
    ("virtio-pmem", "virtio-pmem", true),
    ("emulated-nvdimm", "emulated-nvdimm", true),
    ("real-nvdimm", "real-nvdimm", true),
    ("share-off", "virtio-pmem", false),
];

fn with_mode(mut v: Value, mode: &str, share: bool) -> Value {
    if mode.is_empty() {
        return v;
    }
    let set = |d: &mut Value| {
        if let Value::Object(m) = d {
            m.insert("mode".into(), json!(mode));
            m.insert("share".into(), json!(share));
        }
    };
    if let Some(Value::Array(devs)) = v.get_mut("devices") {
        devs.iter_mut().for_each(set);
    }
    if let Some(Value::Array(steps)) = v.get_mut("steps") {
        for s in steps.iter_mut() {
            if s.get("op").and_then(Value::as_str) == Some("hotplug") {
                if let Some(d) = s.get_mut("device").filter(|d| d.is_object()) {
                    set(d);
                }
            }
        }
    }
    v
}

/// The content of every page the history knows, in an image, hashed.
fn image_digest(history: &WriteHistory, view: &ImageView<'_>) -> u64 {
    let mut acc = Vec::new();
    let mut page = vec![0u8; 4096];
    for p in history.pages() {
        view.read(p * 4096, &mut page);
        acc.extend_from_slice(&p.to_le_bytes());
        acc.extend_from_slice(&fnv1a64(&page).to_le_bytes());
    }
    fnv1a64(&acc)
}

fn digest_device(history: &WriteHistory) -> Value {
    let noop = |_: &dyn ImageReader, _: &pmem_core::crash::CrashContext| Ok(());
    let campaign = Campaign::new(history, &noop, CampaignConfig::default());
    let mut points = Vec::new();
    for point in history.points() {
        let mut durable = Vec::new();
        for p in history.pages() {
            let (_, h) = history.base(p, point);
            durable.extend_from_slice(&h.to_le_bytes());
        }
        let (images, exhaustive) = campaign.images_at(point);
        let mut acc = Vec::new();
        for image in &images {
            let view = ImageView::new(history, point, image);
            acc.extend_from_slice(&image_digest(history, &view).to_le_bytes());
        }
        points.push(json!({
            "durable_upto": point.durable_upto,
            "writes_done": point.writes_done,
            "durable": format!("{:016x}", fnv1a64(&durable)),
            "images": images.len(),
            "exhaustive": exhaustive,
            "digest": format!("{:016x}", fnv1a64(&acc)),
        }));
    }
    json!({ "writes": history.writes(), "points": points })
}

fn compute() -> Value {
    let mut all = Map::new();
    for (name, value) in examples() {
        for (label, mode, share) in MODES {
            let v = with_mode(value.clone(), mode, share);
            let scenario = match Scenario::from_value(v) {
                Ok(s) => s,
                Err(e) => {
                    all.insert(format!("{name} {label}"), json!({ "refused": e.to_string() }));
                    continue;
                }
            };
            let run = scenario.run();
            let mut devices = BTreeMap::new();
            for d in scenario.all_devices() {
                let h = WriteHistory::from_log(&run.log, &d.id, d.size.0);
                devices.insert(d.id.clone(), digest_device(&h));
            }
            all.insert(
                format!("{name} {label}"),
                json!({ "fingerprint": format!("{:016x}", run.log.fingerprint()), "devices": devices }),
            );
        }
    }
    Value::Object(all)
}

#[test]
fn every_example_in_every_mode_gives_the_recorded_log_and_crash_images() {
    let path = root().join("tests/golden/durability.json");
    let got = compute();
    if std::env::var_os("PMEMLAB_BLESS").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        return;
    }
    let want: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let (Value::Object(g), Value::Object(w)) = (&got, &want) else { panic!("not objects") };
    assert_eq!(g.keys().collect::<Vec<_>>(), w.keys().collect::<Vec<_>>(), "the same variants");
    for (k, wv) in w {
        assert_eq!(&g[k], wv, "{k}: differs from the recorded parity values");
    }
    assert!(w.len() >= 40, "every example in every mode: {}", w.len());
}

#[test]
fn the_parity_check_can_fail() {
    // Negative control: one written byte more changes the recorded values.
    let (name, mut value) = examples().into_iter().find(|(n, _)| n.contains("why-fsync")).unwrap();
    let steps = value["steps"].as_array_mut().unwrap();
    steps.insert(0, json!({ "op": "write", "device": "nv1", "offset": 12288, "text": "x" }));
    let s = Scenario::from_value(value).unwrap();
    let run = s.run();
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("tests/golden/durability.json")).unwrap()).unwrap();
    let recorded = &want[format!("{name} as-written")];
    assert_ne!(json!(format!("{:016x}", run.log.fingerprint())), recorded["fingerprint"]);
    let d = s.all_devices().next().unwrap();
    let h = WriteHistory::from_log(&run.log, &d.id, d.size.0);
    assert_ne!(digest_device(&h), recorded["devices"][&d.id]);
}
