//! Scenarios: a versioned JSON description of a lesson or a test — devices
//! with QEMU's options, model knobs, a seed, and steps (guest writes, reads,
//! fsync/msync, MAP_SYNC mappings, waits, failures, expectations) — and
//! the runner that plays it on a [`Machine`].
//!
//! The format is documented in `docs/scenario.md`. In short:
//!
//! ```
//! use pmem_core::scenario::Scenario;
//!
//! let scenario = Scenario::parse(r#"{
//!   "version": 1,
//!   "name": "fsync then power failure",
//!   "devices": [{ "id": "nv1", "mem-path": "./nv1.img", "size": "64M" }],
//!   "steps": [
//!     { "op": "write", "device": "nv1", "offset": 0, "text": "hello" },
//!     { "op": "fsync", "device": "nv1" },
//!     { "op": "power_failure" },
//!     { "op": "expect_data", "device": "nv1", "offset": 0, "text": "hello" }
//!   ]
//! }"#).unwrap();
//! let run = scenario.run();
//! assert!(run.passed(), "{:?}", run.failed_expectations);
//! ```
//!
//! Parsing reads the top level first, then the model, each device and each
//! step from a [`serde_json::Value`], so that an invalid scenario is
//! rejected with one [`ScenarioError`] naming the step (or device) index,
//! the field and what is accepted. Unknown fields are rejected everywhere.
//! The module is pure: it parses from a `&str` and never touches files
//! (`mem-path` is kept for the native runner).

mod device;
mod error;
mod fields;
mod model;
mod runner;
mod step;

pub use device::{DeviceOptions, MAX_DEVICES, MAX_DEVICE_SIZE};
pub use error::{Location, ScenarioError};
pub use fields::ByteSize;
pub use model::Model;
pub use runner::{
    show_bytes, DevicePlug, FailedExpectation, ModelPlug, ScenarioRun, ScenarioRunner, StepOutcome,
    MAX_ACTIONS_PER_STEP,
};
pub use step::{op_names, Data, FlushExpectation, Op, Pattern, ReadExpect, Step, WaitTime, MAX_ACCESS};

use crate::sim::{DeviceMode, Machine};
use fields::{string, whole, Fields};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// The versions of the format this code reads.
pub const SUPPORTED_VERSIONS: [u64; 1] = [1];

/// The fields of the top-level object.
const TOP_FIELDS: [&str; 7] = ["version", "name", "description", "seed", "model", "devices", "steps"];

/// A validated scenario. Build one with [`Scenario::parse`]; every scenario
/// that exists is valid (devices exist where steps name them, sizes are
/// whole pages, …), so [`Scenario::build_machine`] cannot fail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Scenario {
    version: u64,
    name: String,
    description: String,
    seed: u64,
    model: Model,
    devices: Vec<DeviceOptions>,
    steps: Vec<Step>,
    /// What validating a further step needs to know of the steps so far.
    #[serde(skip)]
    context: step::StepContext,
}

fn syntax_error(e: serde_json::Error) -> ScenarioError {
    ScenarioError::from(crate::json::syntax(e))
}

impl Scenario {
    /// Parses and validates a scenario from JSON text.
    /// An object holding a key twice is refused, naming the key
    /// ([`crate::json::refuse_duplicate_keys`]).
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        crate::json::refuse_duplicate_keys(text).map_err(ScenarioError::from)?;
        let value: Value = serde_json::from_str(text).map_err(syntax_error)?;
        Scenario::from_value(value)
    }

    /// Validates a scenario already parsed as JSON.
    pub fn from_value(value: Value) -> Result<Scenario, ScenarioError> {
        let Value::Object(map) = &value else {
            return Err(ScenarioError::NotAnObject { at: Location::Scenario, found: fields::describe(&value) });
        };
        // The version first: a newer file may have fields this code does not know.
        let version = match map.get("version") {
            None => {
                return Err(ScenarioError::MissingField {
                    at: Location::Scenario,
                    field: "version".to_string(),
                    hint: "start the scenario with \"version\": 1".to_string(),
                })
            }
            Some(v) => match v.as_u64() {
                Some(n) if SUPPORTED_VERSIONS.contains(&n) => n,
                _ => return Err(ScenarioError::UnsupportedVersion { found: fields::describe(v) }),
            },
        };
        let mut f = Fields::new(Location::Scenario, "", value, &TOP_FIELDS)?;
        f.take("version");
        let name = f.or("name", String::new(), string)?;
        let description = f.or("description", String::new(), string)?;
        let seed = f.or("seed", 0, whole)?;
        let model = match f.take("model") {
            None => Model::default(),
            Some(v) => Model::parse(v)?,
        };
        let device_values = array(&mut f, "devices", "device objects")?;
        if device_values.len() > MAX_DEVICES {
            let message = format!("{} devices; a scenario has at most {MAX_DEVICES}", device_values.len());
            return Err(f.invalid("devices", message));
        }
        let step_values = array(&mut f, "steps", "step objects")?;
        let mut devices: Vec<DeviceOptions> = Vec::with_capacity(device_values.len());
        let mut ids = Vec::with_capacity(device_values.len());
        for (index, v) in device_values.into_iter().enumerate() {
            let d = DeviceOptions::parse(Location::Device { index }, "", v, &ids)?;
            ids.push(d.id.clone());
            devices.push(d);
        }
        let mut context = step::StepContext { devices: ids, flushed: BTreeSet::new() };
        let steps = step_values
            .into_iter()
            .enumerate()
            .map(|(index, v)| context.parse(index, v))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Scenario { version, name, description, seed, model, devices, steps, context })
    }

    /// Appends `step`, validated with the rules of a step in the file at
    /// that position (devices it names exist, an `expect_flush` follows a
    /// flush, a hot-plugged id is new, sizes are in range, …). Costs the
    /// one step, not the steps before. When invalid, nothing changes and
    /// the error names the step's index and field.
    pub fn push_step(&mut self, step: Step) -> Result<(), ScenarioError> {
        let mut context = self.context.clone();
        // Only strings, numbers, booleans and objects: cannot fail.
        let value = serde_json::to_value(&step).unwrap_or(Value::Null);
        let step = context.parse(self.steps.len(), value)?;
        self.steps.push(step);
        self.context = context;
        Ok(())
    }

    /// Drops the steps from position `len` on.
    pub fn truncate_steps(&mut self, len: usize) {
        if len >= self.steps.len() {
            return;
        }
        self.steps.truncate(len);
        let ids = self.devices.iter().map(|d| d.id.clone()).collect();
        let mut context = step::StepContext { devices: ids, flushed: BTreeSet::new() };
        for (index, step) in self.steps.iter().enumerate() {
            // Each step was valid at its place, and still is.
            let value = serde_json::to_value(step).unwrap_or(Value::Null);
            let reread = context.parse(index, value);
            debug_assert!(reread.is_ok(), "a validated step no longer reads: {reread:?}");
        }
        self.context = context;
    }

    /// The same scenario with other model knobs, validated as the file's
    /// `model` object is.
    pub fn with_model(self, model: Model) -> Result<Scenario, ScenarioError> {
        Scenario { model, ..self }.revalidated()
    }

    /// The same scenario with device `id` (present at the start or
    /// hot-plugged by a step) of another kind and `share` option.
    pub fn with_device_kind(mut self, id: &str, mode: DeviceMode, share: bool) -> Result<Scenario, ScenarioError> {
        let steps = self.steps.iter_mut().filter_map(|s| match &mut s.op {
            Op::Hotplug { device } => Some(device),
            _ => None,
        });
        let mut found = false;
        for d in self.devices.iter_mut().chain(steps).filter(|d| d.id == id) {
            d.mode = mode;
            d.share = share;
            found = true;
        }
        if !found {
            let known: Vec<&str> = self.all_devices().map(|d| d.id.as_str()).collect();
            return Err(ScenarioError::InvalidField {
                at: Location::Scenario,
                field: "devices".to_string(),
                message: format!("no device \"{id}\"; the devices are {}", known.join(", ")),
            });
        }
        self.revalidated()
    }

    /// Validates the scenario again from its JSON form (after a change
    /// made through the typed fields).
    fn revalidated(self) -> Result<Scenario, ScenarioError> {
        // Only strings, numbers, booleans and objects: cannot fail.
        Scenario::from_value(serde_json::to_value(&self).unwrap_or(Value::Null))
    }

    /// The scenario as pretty-printed JSON; [`Scenario::parse`] reads it
    /// back to an equal scenario. Every model knob is written out, sizes in
    /// their shortest exact form.
    pub fn to_json(&self) -> String {
        // Only strings, numbers, booleans and string-keyed objects: cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The format version (1).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The scenario's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the scenario shows.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The seed every random choice derives from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The same scenario with another seed (e.g. a `--seed` option).
    pub fn with_seed(mut self, seed: u64) -> Scenario {
        self.seed = seed;
        self
    }

    /// The model knobs.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The devices present at the start.
    pub fn devices(&self) -> &[DeviceOptions] {
        &self.devices
    }

    /// The steps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Every device the scenario uses, hot-plugged ones included.
    pub fn all_devices(&self) -> impl Iterator<Item = &DeviceOptions> {
        self.devices.iter().chain(self.steps.iter().filter_map(|s| match &s.op {
            Op::Hotplug { device } => Some(device),
            _ => None,
        }))
    }

    /// A machine configured from the model and seed, with the initial
    /// devices plugged in and no step run.
    pub fn build_machine(&self) -> Machine {
        let mut machine = Machine::new(self.model.sim_config(self.seed));
        for d in &self.devices {
            // Validation guarantees distinct ids, whole-page sizes, and at
            // most MAX_DEVICES devices (room for every queue in guest RAM).
            let added = machine.add_device(d.spec());
            debug_assert!(added.is_ok(), "a validated device failed to plug in: {added:?}");
        }
        machine
    }

    /// A runner positioned before the first step.
    pub fn runner(&self) -> ScenarioRunner {
        ScenarioRunner::new(self)
    }

    /// Runs every step on a fresh machine.
    pub fn run(&self) -> ScenarioRun {
        self.runner().finish()
    }
}

fn array(f: &mut Fields, name: &str, what: &str) -> Result<Vec<Value>, ScenarioError> {
    match f.take(name) {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(f.invalid(name, format!("expected an array of {what}, found {}", fields::describe(&other)))),
    }
}

impl<'de> Deserialize<'de> for Scenario {
    /// Deserializes through [`Scenario::from_value`], with its validation
    /// and its messages.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Scenario::from_value(value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
