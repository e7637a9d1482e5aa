//! Crash-consistency campaigns: planning each crash point, committing the
//! verdicts, resuming, shrinking.

use super::history::{CrashPoint, WriteHistory};
use super::image::{CrashImage, ImageView, PageChoice};
use super::index::PointIndex;
use super::plan::{PlanConfig, PlannedImage, PointPlan};
use crate::host::TearGranularity;
use serde::{Deserialize, Serialize};

/// What a checker knows about the crash besides the image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashContext {
    /// The crash point.
    pub point: CrashPoint,
}

/// Decides whether a crash image is acceptable (after the workload's own
/// recovery, if it has one).
pub trait Checker {
    /// `Ok` when the image is consistent; otherwise what is wrong.
    fn check(&self, image: &dyn super::ImageReader, ctx: &CrashContext) -> Result<(), String>;
}

impl<F> Checker for F
where
    F: Fn(&dyn super::ImageReader, &CrashContext) -> Result<(), String>,
{
    fn check(&self, image: &dyn super::ImageReader, ctx: &CrashContext) -> Result<(), String> {
        self(image, ctx)
    }
}

/// Knobs of a campaign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignConfig {
    /// Seed of the samples.
    pub seed: u64,
    /// A point with at most this many untorn images is enumerated
    /// exhaustively (default 4096).
    pub exhaustive_limit: u64,
    /// Images sampled at a point with more (default 256).
    pub samples_per_point: u64,
    /// Tear granularity; below 4 KiB, torn images are sampled too.
    pub tear: TearGranularity,
    /// Torn images sampled per point (default 32; 0 = none).
    pub torn_samples_per_point: u64,
    /// Stop at the first crash-point boundary after this many images were
    /// checked (`None` = no limit); resuming continues at that point.
    pub max_states: Option<u64>,
    /// Shard `(i, n)`: take every `n`-th image starting at `i`.
    pub shard: (u64, u64),
    /// Shrink the first violation (default on).
    pub shrink: bool,
    /// Keep at most this many violations in the report (default 100).
    pub max_violations: usize,
}

impl Default for CampaignConfig {
    fn default() -> Self {
        CampaignConfig {
            seed: 0,
            exhaustive_limit: 4096,
            samples_per_point: 256,
            tear: TearGranularity::Sector512,
            torn_samples_per_point: 32,
            max_states: None,
            shard: (0, 1),
            shrink: true,
            max_violations: 100,
        }
    }
}

/// A page that reached the disk in a crash image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedPage {
    /// Page number.
    pub page: u64,
    /// The write (index into the history) whose version persisted.
    pub write: usize,
    /// True when only part of it persisted.
    pub torn: bool,
}

/// An image the checker rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The crash point.
    pub point: CrashPoint,
    /// The pages beyond the durable image that persisted.
    pub persisted: Vec<PersistedPage>,
    /// What the checker said.
    pub message: String,
    /// The image itself (to rebuild it).
    pub image: CrashImage,
    /// Its position in the point's enumeration (see [`PointPlan`]): the
    /// order of a campaign's violations, by which shard reports merge.
    #[serde(default)]
    pub n: u64,
}

/// A minimal counterexample: no page of it can be left out (or untorn)
/// without the image becoming acceptable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counterexample {
    /// The violation it was shrunk from.
    pub from: Violation,
    /// The minimal image.
    pub minimal: Violation,
    /// Checker runs spent shrinking.
    pub steps: u64,
}

/// Progress and results of a campaign (serializable, to resume it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignReport {
    /// Crash points in the history.
    pub points_total: usize,
    /// The next crash point to explore (`None`: all done).
    pub next_point: Option<usize>,
    /// Images checked (in this shard).
    pub checked: u64,
    /// Images skipped as duplicates of one already checked at that point.
    pub duplicates: u64,
    /// Crash points explored exhaustively.
    pub exhaustive_points: u64,
    /// Crash points sampled.
    pub sampled_points: u64,
    /// Images checked per crash point (index = point).
    pub per_point: Vec<u64>,
    /// Violations found (at most `max_violations`).
    pub violations: Vec<Violation>,
    /// Violations found in all (also those not kept).
    pub violations_total: u64,
    /// The first violation shrunk.
    pub counterexample: Option<Counterexample>,
}

/// Why a saved campaign report cannot be resumed against this history.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// The report was made for a history with another number of points.
    #[error("the saved campaign has {saved} crash points but this history has {actual}")]
    Points {
        /// Points in the report.
        saved: usize,
        /// Points in the history.
        actual: usize,
    },
    /// A field is out of range or disagrees with the others.
    #[error("the saved campaign is inconsistent: {0}")]
    Inconsistent(String),
    /// The shard is not one of `0/1 … n-1/n`.
    #[error("shard {0}/{1} is not valid: it must be i/n with 0 <= i < n")]
    Shard(u64, u64),
}

/// A campaign knob given again when resuming that differs from the saved
/// one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} {given} differs from the resumed campaign's {saved}")]
pub struct ConfigMismatch {
    /// The knob (`seed`, `tear`, `shard`, `samples_per_point`,
    /// `exhaustive_limit`, `torn_samples_per_point`).
    pub field: &'static str,
    /// The value given now.
    pub given: String,
    /// The saved value.
    pub saved: String,
}

/// Knobs given for a run; `None` = not given (take the default, or the
/// saved campaign's when resuming).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigRequest {
    /// Seed.
    pub seed: Option<u64>,
    /// Exhaustive limit.
    pub exhaustive_limit: Option<u64>,
    /// Samples per point.
    pub samples_per_point: Option<u64>,
    /// Tear granularity.
    pub tear: Option<TearGranularity>,
    /// Torn samples per point.
    pub torn_samples_per_point: Option<u64>,
    /// Shard.
    pub shard: Option<(u64, u64)>,
    /// Shrink the first violation.
    pub shrink: Option<bool>,
}

impl ConfigRequest {
    /// The configuration of a new campaign: what was given, else `defaults`.
    pub fn fresh(&self, defaults: &CampaignConfig) -> CampaignConfig {
        CampaignConfig {
            seed: self.seed.unwrap_or(defaults.seed),
            exhaustive_limit: self.exhaustive_limit.unwrap_or(defaults.exhaustive_limit),
            samples_per_point: self.samples_per_point.unwrap_or(defaults.samples_per_point),
            tear: self.tear.unwrap_or(defaults.tear),
            torn_samples_per_point: self.torn_samples_per_point.unwrap_or(defaults.torn_samples_per_point),
            max_states: defaults.max_states,
            shard: self.shard.unwrap_or(defaults.shard),
            shrink: self.shrink.unwrap_or(defaults.shrink),
            max_violations: defaults.max_violations,
        }
    }

    /// The configuration of a resumed campaign: the saved one; a knob given
    /// again must equal it (shrinking may be switched off).
    pub fn resumed(&self, saved: &CampaignConfig) -> Result<CampaignConfig, ConfigMismatch> {
        fn same<T: PartialEq + std::fmt::Debug>(
            field: &'static str,
            given: Option<T>,
            saved: T,
            show: impl Fn(&T) -> String,
        ) -> Result<(), ConfigMismatch> {
            match given {
                Some(g) if g != saved => Err(ConfigMismatch { field, given: show(&g), saved: show(&saved) }),
                _ => Ok(()),
            }
        }
        same("seed", self.seed, saved.seed, u64::to_string)?;
        same("tear", self.tear, saved.tear, TearGranularity::to_string)?;
        same("shard", self.shard, saved.shard, |(i, n)| format!("{i}/{n}"))?;
        same("samples_per_point", self.samples_per_point, saved.samples_per_point, u64::to_string)?;
        same("exhaustive_limit", self.exhaustive_limit, saved.exhaustive_limit, u64::to_string)?;
        same("torn_samples_per_point", self.torn_samples_per_point, saved.torn_samples_per_point, u64::to_string)?;
        let mut cfg = CampaignConfig { max_states: None, ..saved.clone() };
        if self.shrink == Some(false) {
            cfg.shrink = false;
        }
        Ok(cfg)
    }
}

/// A crash-consistency campaign over one device's history.
///
/// The loop is: for each crash point from [`Campaign::start_point`],
/// [`Campaign::plan`] it, check the plan's shard images (in any order, on
/// any number of threads), then [`Campaign::commit`] the verdicts in image
/// order; at the end, [`Campaign::finish`] shrinks the first violation.
/// [`Campaign::resume`] is that loop on one thread.
pub struct Campaign<'a> {
    history: &'a WriteHistory,
    checker: &'a dyn Checker,
    cfg: CampaignConfig,
}

/// A content fingerprint of a sparse image, by which campaigns deduplicate
/// the images of a crash point: pages equal to the durable version do not
/// count.
pub fn image_fingerprint(history: &WriteHistory, point: &CrashPoint, image: &CrashImage) -> u64 {
    let index = PointIndex::new(history, point);
    let dense = index.densify(image);
    let plan = PointPlan::new(index, plan_config(&CampaignConfig::default()));
    plan.fingerprint(&dense)
}

/// The pages of an image that differ from the durable image, with the write
/// whose version each holds.
pub fn persisted(history: &WriteHistory, point: &CrashPoint, image: &CrashImage) -> Vec<PersistedPage> {
    image
        .choices
        .iter()
        .filter_map(|c| {
            let cands = history.candidates(c.page, point);
            cands.get((c.version as usize).saturating_sub(1)).map(|v| PersistedPage {
                page: c.page,
                write: v.write,
                torn: c.torn.is_some(),
            })
        })
        .collect()
}

/// Runs the checker on one image.
fn check_image(
    history: &WriteHistory,
    checker: &dyn Checker,
    point: &CrashPoint,
    image: &CrashImage,
) -> Result<(), String> {
    let view = ImageView::new(history, point, image);
    checker.check(&view, &CrashContext { point: point.clone() })
}

/// The choices of the folio of `pages` pages from `first` at its earliest
/// cut: the pages written by its first pending write, untorn, at their first
/// candidate (for a page: version 1).
fn earliest_cut(history: &WriteHistory, point: &CrashPoint, first: u64, pages: u64) -> Vec<PageChoice> {
    let pending: Vec<(u64, usize)> = (first..first.saturating_add(pages))
        .filter_map(|p| history.candidates(p, point).first().map(|v| (p, v.write)))
        .collect();
    let Some(cut) = pending.iter().map(|&(_, w)| w).min() else { return Vec::new() };
    pending
        .into_iter()
        .filter(|&(_, w)| w == cut)
        .map(|(page, _)| PageChoice { page, version: 1, torn: None })
        .collect()
}

/// Shrinks a failing image: repeatedly drops pages (back to the durable
/// version) — a host folio's pages together — untears torn pages and moves
/// pages to their earliest pending version while the checker still fails.
pub fn shrink(history: &WriteHistory, checker: &dyn Checker, v: &Violation) -> Counterexample {
    let point = &v.point;
    let mut img = v.image.clone();
    let mut message = v.message.clone();
    let mut steps = 0u64;
    let mut attempt = |trial: CrashImage, img: &mut CrashImage, message: &mut String| {
        steps += 1;
        match check_image(history, checker, point, &trial) {
            Err(m) => {
                *img = trial;
                *message = m;
                true
            }
            Ok(()) => false,
        }
    };
    // Pages of one host folio reach the disk at one cut of its writes, so
    // they are dropped, or moved to the earliest cut, together.
    let folio = history.model().folio_pages();
    loop {
        let mut progressed = false;
        let mut i = 0;
        while i < img.choices.len() {
            let f = img.choices[i].page / folio;
            let end = i + img.choices[i..].iter().take_while(|c| c.page / folio == f).count();
            let mut dropped = img.clone();
            dropped.choices.drain(i..end);
            if attempt(dropped, &mut img, &mut message) {
                progressed = true;
                continue;
            }
            for j in i..end {
                if img.choices[j].torn.is_some() {
                    let mut untorn = img.clone();
                    untorn.choices[j].torn = None;
                    progressed |= attempt(untorn, &mut img, &mut message);
                }
            }
            let earliest = earliest_cut(history, point, f * folio, folio);
            let versions = |cs: &[PageChoice]| cs.iter().map(|c| (c.page, c.version)).collect::<Vec<_>>();
            if versions(&img.choices[i..end]) != versions(&earliest) {
                let mut older = img.clone();
                let n = earliest.len();
                older.choices.splice(i..end, earliest);
                if attempt(older, &mut img, &mut message) {
                    progressed = true;
                    i += n;
                    continue;
                }
            }
            i = end;
        }
        if !progressed {
            break;
        }
    }
    let minimal =
        Violation { point: point.clone(), persisted: persisted(history, point, &img), message, image: img, n: v.n };
    Counterexample { from: v.clone(), minimal, steps }
}

fn plan_config(cfg: &CampaignConfig) -> PlanConfig {
    PlanConfig {
        seed: cfg.seed,
        exhaustive_limit: cfg.exhaustive_limit,
        samples_per_point: cfg.samples_per_point,
        tear: cfg.tear,
        torn_samples_per_point: cfg.torn_samples_per_point,
        shard: cfg.shard,
    }
}

/// What a shard found at one crash point, to commit.
#[derive(Debug, Default)]
pub struct PointVerdicts {
    /// Images skipped as duplicates.
    pub duplicates: u64,
    /// The images checked, in plan order, with the checker's verdicts.
    pub verdicts: Vec<(PlannedImage, Result<(), String>)>,
}

impl<'a> Campaign<'a> {
    /// A campaign over `history` judged by `checker`.
    pub fn new(history: &'a WriteHistory, checker: &'a dyn Checker, cfg: CampaignConfig) -> Self {
        Campaign { history, checker, cfg }
    }

    /// The history.
    pub fn history(&self) -> &'a WriteHistory {
        self.history
    }

    /// The configuration.
    pub fn config(&self) -> &CampaignConfig {
        &self.cfg
    }

    /// Plans crash point `point`.
    pub fn plan(&self, point: &CrashPoint) -> PointPlan<'a> {
        PointPlan::new(PointIndex::new(self.history, point), plan_config(&self.cfg))
    }

    /// Images at `point` in enumeration order (all shards, duplicates
    /// included), and whether the enumeration is exhaustive. Builds the
    /// whole list: for tests and small points; campaigns use
    /// [`Campaign::plan`].
    pub fn images_at(&self, point: &CrashPoint) -> (Vec<CrashImage>, bool) {
        let plan = self.plan(point);
        let images = (0..plan.total()).map(|n| plan.index().sparsify(&plan.image(n))).collect();
        (images, plan.exhaustive())
    }

    /// Images (checked or skipped as duplicates) this shard handles from
    /// point `from` on: the length of a progress bar. Costs an index per
    /// point, no image.
    pub fn handled_from(&self, from: usize) -> u64 {
        let points = self.history.points();
        points[from.min(points.len())..].iter().map(|p| self.plan(p).shard_total()).sum()
    }

    /// Checks that `report` (fresh, or saved by an earlier run of this
    /// campaign) can be continued here, and returns the first point to
    /// explore (`None`: the campaign is complete). Every field is checked
    /// against the history and the others: a state file supplies progress,
    /// never the campaign itself.
    pub fn start_point(&self, report: &CampaignReport) -> Result<Option<usize>, ResumeError> {
        let (i, n) = self.cfg.shard;
        if n == 0 || i >= n {
            return Err(ResumeError::Shard(i, n));
        }
        if *report == CampaignReport::default() {
            return Ok(Some(0));
        }
        let actual = self.history.points().len();
        let bad = |what: String| Err(ResumeError::Inconsistent(what));
        if report.points_total != actual {
            return Err(ResumeError::Points { saved: report.points_total, actual });
        }
        if report.per_point.len() != actual {
            return bad(format!("{} per-point counts for {actual} points", report.per_point.len()));
        }
        let next = report.next_point.unwrap_or(actual);
        if next > actual {
            return bad(format!("next point {next} is beyond the last point {}", actual.saturating_sub(1)));
        }
        let sum = report.per_point.iter().try_fold(0u64, |a, &b| a.checked_add(b));
        if sum != Some(report.checked) {
            return bad(format!("{} images checked but the per-point counts add up to {sum:?}", report.checked));
        }
        if report.per_point[next..].iter().any(|&c| c > 0) {
            return bad(format!("points from {next} on are not explored yet but have images counted"));
        }
        if report.exhaustive_points.checked_add(report.sampled_points) != Some(next as u64) {
            return bad(format!(
                "{} exhaustive and {} sampled points, but {next} points are done",
                report.exhaustive_points, report.sampled_points
            ));
        }
        if report.violations_total > report.checked || report.violations.len() as u64 > report.violations_total {
            return bad(format!(
                "{} violations kept, {} found, {} images checked",
                report.violations.len(),
                report.violations_total,
                report.checked
            ));
        }
        if report.violations.iter().any(|v| v.point.index >= next || self.history.points()[v.point.index] != v.point) {
            return bad("a violation names a crash point this history does not have there".to_string());
        }
        Ok(report.next_point)
    }

    /// Commits the verdicts of one crash point (`plan` of the point right
    /// after the report's progress) into `report`.
    pub fn commit(&self, report: &mut CampaignReport, plan: &PointPlan<'_>, found: PointVerdicts) {
        let points = self.history.points();
        let point = plan.index().point();
        report.points_total = points.len();
        report.per_point.resize(points.len(), 0);
        if plan.exhaustive() {
            report.exhaustive_points += 1;
        } else {
            report.sampled_points += 1;
        }
        report.duplicates += found.duplicates;
        for (PlannedImage { n, image }, verdict) in found.verdicts {
            report.checked += 1;
            report.per_point[point.index] += 1;
            if let Err(message) = verdict {
                report.violations_total += 1;
                if report.violations.len() < self.cfg.max_violations {
                    let image = plan.index().sparsify(&image);
                    report.violations.push(Violation {
                        point: point.clone(),
                        persisted: persisted(self.history, point, &image),
                        message,
                        image,
                        n,
                    });
                }
            }
        }
        report.next_point = if point.index + 1 < points.len() { Some(point.index + 1) } else { None };
    }

    /// Checks one point's shard images on this thread.
    pub fn check_point(&self, plan: &PointPlan<'_>) -> PointVerdicts {
        let ctx = CrashContext { point: plan.index().point().clone() };
        let mut images = plan.shard_images();
        let mut verdicts = Vec::new();
        for planned in images.by_ref() {
            let verdict = self.checker.check(&plan.index().view(&planned.image), &ctx);
            verdicts.push((planned, verdict));
        }
        PointVerdicts { duplicates: images.duplicates, verdicts }
    }

    /// Runs the campaign from the start.
    pub fn run(&self) -> CampaignReport {
        self.resume(CampaignReport::default(), &mut |_| {}).unwrap_or_default()
    }

    /// Continues a campaign from `report` (a fresh default report starts
    /// from the first point). `progress` is called after every crash point
    /// with the report so far.
    pub fn resume(
        &self,
        mut report: CampaignReport,
        progress: &mut dyn FnMut(&CampaignReport),
    ) -> Result<CampaignReport, ResumeError> {
        let Some(start) = self.start_point(&report)? else { return Ok(report) };
        let points = self.history.points();
        report.points_total = points.len();
        report.per_point.resize(points.len(), 0);
        for point in &points[start..] {
            if self.cfg.max_states.is_some_and(|m| report.checked >= m) {
                report.next_point = Some(point.index);
                return Ok(self.finish(report));
            }
            let plan = self.plan(point);
            let found = self.check_point(&plan);
            self.commit(&mut report, &plan, found);
            progress(&report);
        }
        report.next_point = None;
        Ok(self.finish(report))
    }

    /// Shrinks the first violation (when shrinking is on and not done yet).
    pub fn finish(&self, mut report: CampaignReport) -> CampaignReport {
        if self.cfg.shrink && report.counterexample.is_none() {
            if let Some(v) = report.violations.first() {
                report.counterexample = Some(shrink(self.history, self.checker, v));
            }
        }
        report
    }
}
