//! Playing a scenario on a machine whose devices the caller plugs in —
//! model backends or real files.
//!
//! This is pmem-core's [`ScenarioRunner`](pmem_core::scenario::ScenarioRunner)
//! with a [`DevicePlug`]: the same ops, the same `expect_error` rules and the
//! same outcome sentences, whatever backs the devices. A test checks that
//! the model plug gives exactly [`Scenario::run`](pmem_core::scenario::Scenario::run)'s result on every example.

pub use pmem_core::scenario::{DevicePlug, ModelPlug, ScenarioRunner as ScenarioPlayer};

#[cfg(test)]
mod tests {
    use super::*;
    use pmem_core::scenario::Scenario;

    const EXAMPLES: &[&str] = &[
        include_str!("../../../examples/scenarios/why-fsync.json"),
        include_str!("../../../examples/scenarios/fsync-then-crash.json"),
        include_str!("../../../examples/scenarios/fsyncgate.json"),
        include_str!("../../../examples/scenarios/share-off.json"),
        include_str!("../../../examples/scenarios/nvdimm-emulation.json"),
        include_str!("../../../examples/scenarios/background-writeback.json"),
        include_str!("../../../examples/scenarios/hotplug.json"),
        include_str!("../../../examples/scenarios/firecracker-rate-limit.json"),
    ];

    #[test]
    fn plays_every_example_exactly_as_the_core_runner_does() {
        for text in EXAMPLES {
            let s = Scenario::parse(text).unwrap();
            for seed in [s.seed(), 99] {
                let s = s.clone().with_seed(seed);
                let core = s.run();
                let ours = ScenarioPlayer::with_plug(&s, ModelPlug).unwrap().finish();
                assert_eq!(ours, core, "{} with seed {seed}", s.name());
            }
        }
    }
}
