//! Logical simulated time.
//!
//! Simulated time is a count of nanoseconds since the start of a run. It only
//! moves when the simulation says so; the wall clock is never read.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A point in simulated time, in nanoseconds since the run started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SimTime(pub u64);

impl SimTime {
    /// The start of every run.
    pub const ZERO: SimTime = SimTime(0);

    /// `self + nanos`, saturating at the end of time.
    pub fn plus_nanos(self, nanos: u64) -> SimTime {
        SimTime(self.0.saturating_add(nanos))
    }

    /// Builds a time from whole milliseconds.
    pub fn from_millis(ms: u64) -> SimTime {
        SimTime(ms.saturating_mul(1_000_000))
    }

    /// Builds a time from whole seconds.
    pub fn from_secs(s: u64) -> SimTime {
        SimTime(s.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the start of the run.
    pub fn as_nanos(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        if ns >= 1_000_000_000 {
            write!(f, "{}.{:06}s", ns / 1_000_000_000, (ns % 1_000_000_000) / 1000)
        } else if ns >= 1_000_000 {
            write!(f, "{}.{:03}ms", ns / 1_000_000, (ns % 1_000_000) / 1000)
        } else if ns >= 1000 {
            write!(f, "{}.{:03}us", ns / 1000, ns % 1000)
        } else {
            write!(f, "{ns}ns")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_picks_a_readable_unit() {
        assert_eq!(SimTime(5).to_string(), "5ns");
        assert_eq!(SimTime(1_500).to_string(), "1.500us");
        assert_eq!(SimTime::from_millis(2).to_string(), "2.000ms");
        assert_eq!(SimTime::from_secs(30).to_string(), "30.000000s");
        assert_eq!(SimTime(u64::MAX).plus_nanos(1), SimTime(u64::MAX));
    }
}
