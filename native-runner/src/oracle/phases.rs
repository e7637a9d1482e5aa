//! The host flusher's phase, which the oracle cannot know.
//!
//! Linux's flusher wakes every `dirty_writeback_interval` (5 s) at a phase
//! of its own, so a file whose inode expires at 30 s is written back
//! somewhere between 30 and 35 s. The model's flusher wakes at
//! `phase + k·interval` ([`pmem_core::host::PageCacheConfig::flusher_phase_ns`]).
//! The oracle runs the model at one phase per second of the interval, in
//! lockstep with the one real run; a quantity on which the phases differ is
//! one the model predicts only up to the phase: it agrees when the real value
//! is one of the model's.

use super::compare::Quantity;
use super::error::OracleError;
use super::machine::{QemuPlug, RealMachine};
use pmem_core::scenario::{Scenario, ScenarioRunner};

/// The phases the model runs at, ms: 0 first (the model's own), then every
/// further second of the scenario's flusher interval (none without one).
pub fn phases(scenario: &Scenario) -> Vec<u64> {
    let interval = scenario.model().dirty_writeback_interval_ms.unwrap_or(0);
    (0..interval.div_ceil(1000).max(1)).map(|s| s * 1000).collect()
}

/// A runner for each phase after the first ([`phases`]); the phase-0 runner
/// is the oracle's own.
pub fn other_runners(machine: &RealMachine, scenario: &Scenario) -> Result<Vec<ScenarioRunner<QemuPlug>>, OracleError> {
    phases(scenario)
        .into_iter()
        .skip(1)
        .map(|ms| {
            let mut model = scenario.model().clone();
            model.flusher_phase_ms = ms;
            let s = scenario.clone().with_model(model).map_err(|e| OracleError::Usage(e.to_string()))?;
            machine.runner(&s).map_err(|e| OracleError::Usage(e.to_string()))
        })
        .collect()
}

/// One list of quantities from the quantities of each phase (the same
/// quantities in the same order; the first phase's list when not).
pub fn merge(mut per_phase: Vec<Vec<Quantity>>) -> Vec<Quantity> {
    let first = per_phase.remove(0);
    if per_phase.iter().any(|q| q.len() != first.len()) {
        return first;
    }
    first
        .into_iter()
        .enumerate()
        .map(|(i, q)| {
            let mut models: Vec<&str> = vec![q.model.as_str()];
            let mut agree = q.agree;
            for other in &per_phase {
                let o = &other[i];
                if !models.contains(&o.model.as_str()) {
                    models.push(o.model.as_str());
                }
                agree |= o.agree;
            }
            if models.len() == 1 {
                return q;
            }
            let model = format!("{} (by the flusher's phase)", models.join(" or "));
            Quantity { model, agree, ..q }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(model: &str, real: &str) -> Quantity {
        Quantity::compared("dirty pages", Some("nv1"), model.into(), real.into())
    }

    #[test]
    fn a_quantity_the_phase_decides_agrees_when_the_real_value_is_one_of_the_models() {
        let merged = merge(vec![vec![q("0", "512"), q("1", "1")], vec![q("512", "512"), q("1", "1")]]);
        assert_eq!(merged[0].model, "0 or 512 (by the flusher's phase)");
        assert!(merged[0].agree);
        assert_eq!(merged[1].model, "1", "the same at every phase: unchanged");
        // Negative control: a real value no phase gives disagrees.
        let merged = merge(vec![vec![q("0", "7")], vec![q("512", "7")]]);
        assert!(!merged[0].agree);
    }

    #[test]
    fn the_model_runs_at_each_second_of_the_flusher_interval() {
        let s = |model: &str| {
            Scenario::parse(&format!(r#"{{"version":1,"devices":[{{"id":"nv1","size":"1M"}}],"steps":[],{model}}}"#))
                .unwrap()
        };
        assert_eq!(phases(&s(r#""model":{}"#)), vec![0, 1000, 2000, 3000, 4000]);
        assert_eq!(phases(&s(r#""model":{"dirty_writeback_interval_ms":null}"#)), vec![0]);
    }
}
