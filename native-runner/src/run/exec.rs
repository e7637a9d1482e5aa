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

    /// Every example scenario, read from `examples/scenarios/`.
    fn examples() -> Vec<String> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/scenarios");
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let texts: Vec<String> = paths.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
        assert!(texts.len() >= 9, "{} examples in {dir}", texts.len());
        texts
    }

    #[test]
    fn plays_every_example_exactly_as_the_core_runner_does() {
        for text in examples() {
            let s = Scenario::parse(&text).unwrap();
            for seed in [s.seed(), 99] {
                let s = s.clone().with_seed(seed);
                let core = s.run();
                let ours = ScenarioPlayer::with_plug(&s, ModelPlug).unwrap().finish();
                assert_eq!(ours, core, "{} with seed {seed}", s.name());
            }
        }
    }
}
