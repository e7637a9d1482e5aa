//! SQLite on the simulated virtio-pmem device: crash images of a real
//! SQLite run, judged by SQLite's own recovery.
//!
//! `durability_with_flushing_sync` proves the VFS keeps SQLite's promises at
//! more than 1,000 crash images; `data_loss_without_flushing_sync` is the
//! negative control: the same campaign with an `xSync` that sends no flush
//! request must be caught.

use pmemlab::sqlite::{run_campaign, SqliteCampaignOptions, Synchronous};

fn small(no_flush: bool) -> SqliteCampaignOptions {
    SqliteCampaignOptions { transactions: 12, seed: 7, no_flush, ..SqliteCampaignOptions::default() }
}

#[test]
fn durability_with_flushing_sync() {
    let r = run_campaign(&small(false)).expect("campaign runs");
    eprintln!("{r}");
    assert_eq!(r.commits_returned, 13, "schema + 12 transactions");
    assert!(r.vfs.flushes >= 13 * 4, "every commit sends flush requests: {:?}", r.vfs);
    assert_eq!(r.vfs.skipped_flushes, 0);
    assert_eq!(r.crash_points_explored, r.crash_points, "every crash point explored");
    assert!(r.states_checked >= 1_000, "only {} crash images checked", r.states_checked);
    assert_eq!(r.violations, 0, "seed {}: {:?}", r.options.seed, r.first_violation);
    assert!(r.first_violation.is_none() && r.counterexample.is_none());
}

#[test]
fn durability_with_flushing_sync_at_8_byte_tearing() {
    // What real persistent memory promises: only aligned 8-byte stores are
    // atomic. The file table's state words are exactly that.
    let opts = SqliteCampaignOptions {
        tear: "8B".parse().expect("a granularity"),
        torn_samples_per_point: 24,
        transactions: 6,
        ..small(false)
    };
    let r = run_campaign(&opts).expect("campaign runs");
    eprintln!("{r}");
    assert!(r.states_checked >= 1_000, "only {} crash images checked", r.states_checked);
    assert_eq!(r.violations, 0, "seed {}: {:?}", r.options.seed, r.first_violation);
}

#[test]
fn data_loss_without_flushing_sync() {
    let opts = SqliteCampaignOptions { max_states: Some(1_500), ..small(true) };
    let r = run_campaign(&opts).expect("campaign runs");
    eprintln!("{r}");
    assert_eq!(r.vfs.flushes, 2, "only the format's flushes: {:?}", r.vfs);
    assert!(r.vfs.skipped_flushes >= 13 * 2, "{:?}", r.vfs);
    assert!(r.violations > 0, "seed {}: no violation found in {} images", opts.seed, r.states_checked);
    let first = r.first_violation.as_ref().expect("a first violation");
    assert!(!first.pages.is_empty() || first.commits_returned > 0, "{first:?}");
    let bad = ["lost-commit", "corruption", "sqlite-error", "foreign-state"];
    assert!(r.violation_kinds.keys().all(|k| bad.contains(&k.as_str())), "{:?}", r.violation_kinds);
    let minimal = r.counterexample.as_ref().expect("a shrunk counterexample");
    assert!(minimal.pages.len() <= first.pages.len());
    let json = serde_json::to_value(&r).expect("the report serializes");
    assert_eq!(json["violations"], r.violations);
}

#[test]
fn synchronous_full_can_lose_the_last_commit() {
    // SQLite documents it: in journal_mode=DELETE with synchronous=FULL the
    // deletion of the journal is not synced, so a crash right after COMMIT
    // returns may roll the transaction back.
    let opts = SqliteCampaignOptions {
        transactions: 4,
        synchronous: Synchronous::Full,
        max_states: Some(400),
        ..SqliteCampaignOptions::default()
    };
    let r = run_campaign(&opts).expect("campaign runs");
    eprintln!("{r}");
    assert!(r.violation_kinds.get("lost-commit").is_some_and(|&n| n > 0), "{:?}", r.violation_kinds);
    assert_eq!(r.violation_kinds.len(), 1, "only lost commits, never corruption: {:?}", r.violation_kinds);
}

#[test]
fn bad_options_are_refused_in_one_sentence() {
    let e = run_campaign(&SqliteCampaignOptions { transactions: 0, ..SqliteCampaignOptions::default() }).unwrap_err();
    assert!(e.contains("transactions must be between 1 and"), "{e}");
    assert!(!e.contains('\n'));
}

/// The figures of docs/sqlite.md, with the default options (40
/// transactions): `cargo test --release -p pmemlab --test sqlite_campaign
/// -- --ignored --nocapture`.
#[test]
#[ignore = "a minute of work; prints the figures for docs/sqlite.md"]
fn default_campaigns_print_figures() {
    for no_flush in [false, true] {
        let r = run_campaign(&SqliteCampaignOptions { no_flush, ..SqliteCampaignOptions::default() }).unwrap();
        println!("{r}");
        assert_eq!(r.passed(), !no_flush);
    }
}

#[test]
fn same_seed_same_campaign() {
    // SQLite draws journal nonces from its own process-wide generator, so
    // the bytes of journal headers differ between runs; the shape of the
    // run and the verdicts must not.
    let opts = SqliteCampaignOptions { transactions: 3, ..small(false) };
    let run = || {
        let mut r = run_campaign(&opts).expect("campaign runs");
        (r.record_ms, r.explore_ms) = (0, 0);
        r
    };
    assert_eq!(run(), run());
}
