//! [`StateFile`]: a saved campaign (`--state FILE`), and what resuming one
//! (`--resume FILE`) checks.
//!
//! A state file is data, never trusted: its size is checked against the
//! budget before it is read, a key given twice is refused, the campaign is
//! re-derived from the scenario (or workload) and the command line and
//! compared with the saved one ([`check_resume`]), every progress field is
//! range-checked against that campaign (pmem-core's `Campaign::start_point`),
//! and the checker command saved in it is only compared with `--checker`,
//! never run.

use super::target::{Target, TargetInfo};
use super::ExploreError;
use crate::output::{write_file, OutputError};
use pmem_core::budget::Budget;
use pmem_core::crash::{CampaignConfig, CampaignReport, ConfigRequest};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Format name of state files.
pub const STATE_FORMAT: &str = "pmemlab-explore-state";

/// A saved campaign.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StateFile {
    /// [`STATE_FORMAT`].
    pub format: String,
    /// 1.
    pub version: u32,
    /// What is explored.
    pub target: TargetInfo,
    /// The campaign's knobs (`max_states` is per run and not kept).
    pub config: CampaignConfig,
    /// Progress and results.
    pub report: CampaignReport,
    /// Wall-clock time spent so far, ms.
    pub elapsed_ms: u64,
}

/// Reads a state file to resume (at most the budget's input size; a key
/// given twice is refused).
pub fn load_state(path: &Path, budget: &Budget) -> Result<StateFile, ExploreError> {
    let bad = |reason: String| ExploreError::State { path: path.to_path_buf(), reason };
    let missing = |e: std::io::Error| {
        bad(if e.kind() == std::io::ErrorKind::NotFound { "no such state file".into() } else { e.to_string() })
    };
    let size = std::fs::metadata(path).map_err(missing)?.len();
    budget.check_input("the state file", size).map_err(|e| bad(e.to_string()))?;
    let text = std::fs::read_to_string(path).map_err(missing)?;
    let state: StateFile = pmem_core::json::from_str_unique(&text)
        .map_err(|e| bad(format!("not a pmemlab explore state file ({e})").replace('\n', " ")))?;
    if state.format != STATE_FORMAT || state.version != 1 {
        return Err(bad(format!("format {} version {} is not {STATE_FORMAT} version 1", state.format, state.version)));
    }
    Ok(state)
}

/// Writes `state` to `path` (atomically).
pub fn save_state(path: &Path, state: &StateFile) -> Result<(), OutputError> {
    let json = serde_json::to_vec_pretty(state).unwrap_or_default();
    write_file(path, &json, true)
}

fn differs(option: &str, given: String, saved: String) -> ExploreError {
    ExploreError::Usage(format!(
        "{option} {given} differs from the resumed campaign's {saved}; drop the option, or start a new campaign"
    ))
}

/// Checks that the campaign saved in `state` (read from `path`) explores
/// `target`, and that every knob given again (`request`) equals the saved
/// one (pmem-core's [`ConfigRequest::resumed`]); returns the saved knobs.
pub fn check_resume(
    request: ConfigRequest,
    state: &StateFile,
    path: &Path,
    target: &Target,
) -> Result<CampaignConfig, ExploreError> {
    let t = &state.target;
    let stale = |what: &str| ExploreError::State {
        path: path.to_path_buf(),
        reason: format!("{what} changed since the state was saved; start a new campaign"),
    };
    if t.scenario_fingerprint != target.info.scenario_fingerprint {
        return Err(stale("the scenario"));
    }
    if t.history_fingerprint != target.info.history_fingerprint {
        return Err(stale("the write history"));
    }
    if t.checker != target.info.checker {
        return Err(differs(
            "--checker",
            format!("`{}`", target.info.checker.clone().unwrap_or_default()),
            format!("`{}`", t.checker.clone().unwrap_or_default()),
        ));
    }
    if t.checker_server != target.info.checker_server {
        return Err(differs(
            "--checker-server",
            format!("`{}`", target.info.checker_server.clone().unwrap_or_default()),
            format!("`{}`", t.checker_server.clone().unwrap_or_default()),
        ));
    }
    if t.workload != target.info.workload || t.device != target.info.device {
        return Err(ExploreError::State {
            path: path.to_path_buf(),
            reason: format!("it explores {} device {}, not this target", t.describe(), t.device),
        });
    }
    request.resumed(&state.config).map_err(|m| differs(option_name(m.field), m.given, m.saved))
}

/// The command-line option of a campaign knob.
fn option_name(field: &str) -> &'static str {
    match field {
        "seed" => "--seed",
        "tear" => "--tear",
        "shard" => "--shard",
        "samples_per_point" => "--samples",
        "exhaustive_limit" => "--exhaustive-limit",
        "torn_samples_per_point" => "--torn-samples",
        _ => "an option",
    }
}
