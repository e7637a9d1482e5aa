//! Crash-state exploration.
//!
//! After any point of a run, the possible disk images are the durable image
//! plus any combination of the pages written since the durability frontier,
//! each at any of the versions written since (background writeback may have
//! caught any of them), and each possibly torn at the chosen granularity
//! between that version and the one before it. The facts come from the
//! [`crate::durability`] model; this module
//! - recovers the write history and the crash points from an event log
//!   ([`WriteHistory`]);
//! - indexes a crash point for reading images at memory speed
//!   ([`PointIndex`], [`DenseImage`]);
//! - plans the images of each point — exhaustively when there are few,
//!   sampled from the seed when there are many, deduplicated by content,
//!   lazily, one image at a time ([`PointPlan`]);
//! - runs campaigns: plan a point, check its images with a [`Checker`],
//!   commit the verdicts, name the crash point and the pages that persisted
//!   for every violation, shrink the first violation to a minimal
//!   counterexample ([`Campaign`]);
//! - is resumable (by crash point, with every saved field checked) and
//!   shardable (shard `i` of `n` takes every `n`-th image), so a large
//!   campaign can be split across machines.

mod campaign;
mod history;
mod image;
mod index;
mod plan;

pub use crate::durability::PageVersion;
pub use campaign::{
    image_fingerprint, persisted, shrink, Campaign, CampaignConfig, CampaignReport, Checker, ConfigMismatch,
    ConfigRequest, Counterexample, CrashContext, PersistedPage, PointVerdicts, ResumeError, Violation,
};
pub use history::{CrashPoint, WriteHistory};
pub use image::{CrashImage, ImageReader, ImageView, PageChoice};
pub use index::{DenseImage, DenseView, PointIndex};
pub use plan::{shard_share, PlanConfig, PlannedImage, PointPlan, ShardImages};

#[cfg(test)]
mod tests;
