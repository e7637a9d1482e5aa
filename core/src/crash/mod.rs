//! Crash-state exploration.
//!
//! After any point of a run, the possible disk images are the durable image
//! plus any combination of the pages written since the durability frontier,
//! each at any of the versions written since (background writeback may have
//! caught any of them), and each possibly torn at the chosen granularity
//! between that version and the one before it. This module
//! - recovers the write history and the crash points from an event log
//!   ([`WriteHistory`]);
//! - enumerates the images of each point exhaustively when there are few,
//!   and samples them from the seed when there are many, deduplicated by
//!   content, as deltas over the durable image ([`CrashImage`]);
//! - runs a [`Checker`] on each, names the crash point and the pages that
//!   persisted for every violation, and shrinks the first violation to a
//!   minimal counterexample;
//! - is resumable (by crash point) and shardable (shard `i` of `n` takes
//!   every `n`-th image), so a large campaign can be split across machines.

mod explore;
mod history;
mod image;

pub use explore::{
    image_fingerprint, persisted, shrink, Campaign, CampaignConfig, CampaignReport, Checker, Counterexample,
    CrashContext, PersistedPage, Violation,
};
pub use history::{CrashPoint, PageVersion, WriteHistory};
pub use image::{CrashImage, ImageReader, ImageView, PageChoice};

#[cfg(test)]
mod tests;
