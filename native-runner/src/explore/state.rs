//! [`StateFile`]: a saved campaign (`--state FILE`), and what resuming one
//! (`--resume FILE`) checks.

use super::options::ExploreOptions;
use super::target::{Target, TargetInfo};
use super::ExploreError;
use crate::output::{write_file, OutputError};
use pmem_core::crash::{CampaignConfig, CampaignReport};
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

/// Reads a state file to resume.
pub fn load_state(path: &Path) -> Result<StateFile, ExploreError> {
    let bad = |reason: String| ExploreError::State { path: path.to_path_buf(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| {
        bad(if e.kind() == std::io::ErrorKind::NotFound { "no such state file".into() } else { e.to_string() })
    })?;
    let state: StateFile = serde_json::from_str(&text)
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
/// `target` with the knobs `opts` gives; returns the saved knobs.
pub fn check_resume(
    opts: &ExploreOptions,
    state: &StateFile,
    path: &Path,
    target: &Target,
    cfg: &CampaignConfig,
) -> Result<CampaignConfig, ExploreError> {
    let s = &state.config;
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
    if t.workload != target.info.workload || t.device != target.info.device {
        return Err(ExploreError::State {
            path: path.to_path_buf(),
            reason: format!("it explores {} device {}, not this target", t.describe(), t.device),
        });
    }
    if opts.tear.is_some_and(|x| x != s.tear) {
        return Err(differs("--tear", cfg.tear.to_string(), s.tear.to_string()));
    }
    if opts.shard.is_some_and(|x| x != s.shard) {
        return Err(differs(
            "--shard",
            format!("{}/{}", cfg.shard.0, cfg.shard.1),
            format!("{}/{}", s.shard.0, s.shard.1),
        ));
    }
    for (opt, given, saved) in [
        ("--samples", opts.samples, s.samples_per_point),
        ("--exhaustive-limit", opts.exhaustive_limit, s.exhaustive_limit),
        ("--torn-samples", opts.torn_samples, s.torn_samples_per_point),
    ] {
        if given.is_some_and(|g| g != saved) {
            return Err(differs(opt, given.unwrap_or_default().to_string(), saved.to_string()));
        }
    }
    let mut cfg = CampaignConfig { max_states: None, ..s.clone() };
    if opts.no_shrink {
        cfg.shrink = false;
    }
    Ok(cfg)
}
