use super::*;
use crate::crash::{Campaign, CampaignConfig, CampaignReport};
use crate::host::TearGranularity;

fn campaign(w: &dyn Workload, cfg: CampaignConfig) -> CampaignReport {
    let (_, h) = record(w, SimConfig { seed: 1, ..SimConfig::default() }).unwrap();
    let checker = w.checker();
    Campaign::new(&h, checker.as_ref(), cfg).run()
}

#[test]
fn in_place_update_loses_data() {
    let r = campaign(&InPlaceUpdate::default(), CampaignConfig::default());
    assert!(r.violations_total > 0, "{r:?}");
    let cx = r.counterexample.expect("shrunk");
    assert!(cx.minimal.persisted.len() <= 2);
}

#[test]
fn wal_missing_barrier_is_caught_and_shrinks_to_at_most_two_pages() {
    let r = campaign(&Wal { barriers: false, ..Wal::default() }, CampaignConfig::default());
    assert!(r.violations_total > 0);
    let cx = r.counterexample.expect("a counterexample");
    assert!(cx.minimal.persisted.len() <= 2, "{:?}", cx.minimal);
    assert!(cx.minimal.message.contains("committed"), "{}", cx.minimal.message);
}

#[test]
fn correct_wal_and_shadow_paging_always_recover() {
    for w in [Box::new(Wal::default()) as Box<dyn Workload>, Box::new(ShadowPaging::default())] {
        for tear in TearGranularity::ALL {
            let r = campaign(w.as_ref(), CampaignConfig { tear, ..CampaignConfig::default() });
            assert_eq!(r.violations_total, 0, "{} at {tear}: {:?}", w.name(), r.violations.first());
            assert!(r.checked > 100);
        }
    }
}

#[test]
fn correct_wal_passes_more_than_100000_explored_states() {
    let w = Wal { transactions: 250, barriers: true };
    let cfg =
        CampaignConfig { tear: TearGranularity::Store8, torn_samples_per_point: 300, ..CampaignConfig::default() };
    let r = campaign(&w, cfg);
    assert!(r.checked >= 100_000, "only {} states", r.checked);
    assert_eq!(r.violations_total, 0, "{:?}", r.violations.first());
}

#[test]
fn campaigns_shard_and_resume_to_the_same_result() {
    let w = Wal { barriers: false, transactions: 8 };
    let (_, h) = record(&w, SimConfig::default()).unwrap();
    let checker = w.checker();
    let full = Campaign::new(&h, checker.as_ref(), CampaignConfig::default()).run();
    // Shards: together they check what the whole campaign checks.
    // Duplicates are judged across shards, so each image is checked once.
    let (mut checked, mut dups, mut viol) = (0, 0, 0);
    for i in 0..3 {
        let cfg = CampaignConfig { shard: (i, 3), ..CampaignConfig::default() };
        let r = Campaign::new(&h, checker.as_ref(), cfg).run();
        checked += r.checked;
        dups += r.duplicates;
        viol += r.violations_total;
    }
    assert_eq!((checked, dups, viol), (full.checked, full.duplicates, full.violations_total));
    assert!(full.duplicates > 0 && full.violations_total > 0, "the control must have duplicates and violations");
    // Resume: stop early, serialize, continue.
    let cfg = CampaignConfig { max_states: Some(50), ..CampaignConfig::default() };
    let part = Campaign::new(&h, checker.as_ref(), cfg).run();
    assert!(part.next_point.is_some());
    let json = serde_json::to_string(&part).unwrap();
    let back: CampaignReport = serde_json::from_str(&json).unwrap();
    let done = Campaign::new(&h, checker.as_ref(), CampaignConfig::default()).resume(back, &mut |_| {}).unwrap();
    assert_eq!(done.next_point, None);
    assert_eq!(done.checked, full.checked);
    assert_eq!(done.violations_total, full.violations_total);
    assert_eq!(done.per_point, full.per_point);
}
