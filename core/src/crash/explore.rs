//! Enumerating, checking and shrinking crash images.

use super::history::{CrashPoint, WriteHistory};
use super::image::{CrashImage, ImageView, PageChoice};
use crate::host::TearGranularity;
use crate::rng::{fnv1a64, SimRng};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

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

/// A crash-consistency campaign over one device's history.
pub struct Campaign<'a> {
    history: &'a WriteHistory,
    checker: &'a dyn Checker,
    cfg: CampaignConfig,
}

/// A content fingerprint of an image, by which campaigns deduplicate the
/// images of a crash point: pages equal to the durable version do not count.
pub fn image_fingerprint(history: &WriteHistory, point: &CrashPoint, image: &CrashImage) -> u64 {
    let mut acc: Vec<u8> = Vec::with_capacity(image.choices.len() * 16);
    for c in &image.choices {
        let cands = history.candidates(c.page, point);
        let Some(v) = (c.version as usize).checked_sub(1).and_then(|i| cands.get(i)) else { continue };
        let (_, base_hash) = history.base(c.page, point);
        let h = match &c.torn {
            None => v.hash,
            Some(_) => fnv1a64(&ImageView::new(history, point, image).page(c.page)),
        };
        if h != base_hash {
            acc.extend_from_slice(&c.page.to_le_bytes());
            acc.extend_from_slice(&h.to_le_bytes());
        }
    }
    fnv1a64(&acc)
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

/// Shrinks a failing image: repeatedly drops pages (back to the durable
/// version) and untears torn pages while the checker still fails.
pub fn shrink(history: &WriteHistory, checker: &dyn Checker, v: &Violation) -> Counterexample {
    let point = &v.point;
    let mut img = v.image.clone();
    let mut message = v.message.clone();
    let mut steps = 0u64;
    loop {
        let mut progressed = false;
        let mut i = 0;
        while i < img.choices.len() {
            let mut trial = img.clone();
            trial.choices.remove(i);
            steps += 1;
            if let Err(m) = check_image(history, checker, point, &trial) {
                img = trial;
                message = m;
                progressed = true;
                continue;
            }
            if img.choices[i].torn.is_some() {
                let mut untorn = img.clone();
                untorn.choices[i].torn = None;
                steps += 1;
                if let Err(m) = check_image(history, checker, point, &untorn) {
                    img = untorn;
                    message = m;
                    progressed = true;
                }
            }
            if img.choices[i].version > 1 {
                let mut older = img.clone();
                older.choices[i].version = 1;
                older.choices[i].torn = None;
                steps += 1;
                if let Err(m) = check_image(history, checker, point, &older) {
                    img = older;
                    message = m;
                    progressed = true;
                }
            }
            i += 1;
        }
        if !progressed {
            break;
        }
    }
    let minimal = Violation { point: point.clone(), persisted: persisted(history, point, &img), message, image: img };
    Counterexample { from: v.clone(), minimal, steps }
}

impl<'a> Campaign<'a> {
    /// A campaign over `history` judged by `checker`.
    pub fn new(history: &'a WriteHistory, checker: &'a dyn Checker, cfg: CampaignConfig) -> Self {
        Campaign { history, checker, cfg }
    }

    /// Images at `point` in enumeration order, and whether the enumeration
    /// is exhaustive (otherwise sampled from the seed).
    pub fn images_at(&self, point: &CrashPoint) -> (Vec<CrashImage>, bool) {
        let pending = self.history.pending(point);
        let radices: Vec<u64> = pending.iter().map(|(_, c)| c.len() as u64 + 1).collect();
        let total = radices.iter().try_fold(1u64, |acc, &r| acc.checked_mul(r));
        let mut out = Vec::new();
        let tear = self.cfg.tear;
        let exhaustive = total.is_some_and(|t| t <= self.cfg.exhaustive_limit);
        if exhaustive {
            let total = total.unwrap_or(1);
            for mut n in 0..total {
                let mut choices = Vec::new();
                for (i, (page, _)) in pending.iter().enumerate() {
                    let v = n % radices[i];
                    n /= radices[i];
                    if v > 0 {
                        choices.push(PageChoice { page: *page, version: v as u32, torn: None });
                    }
                }
                out.push(CrashImage { point: point.index, choices, tear });
            }
        } else {
            for s in 0..self.cfg.samples_per_point {
                let mut rng = SimRng::new(self.cfg.seed).derive(&format!("sample/{}/{s}", point.index));
                let mut choices = Vec::new();
                for (page, cands) in &pending {
                    let v = rng.below(cands.len() as u64 + 1);
                    if v > 0 {
                        choices.push(PageChoice { page: *page, version: v as u32, torn: None });
                    }
                }
                out.push(CrashImage { point: point.index, choices, tear });
            }
        }
        if tear != TearGranularity::Page4K && !pending.is_empty() {
            let units = tear.units_per_page();
            let words = units.div_ceil(64);
            for s in 0..self.cfg.torn_samples_per_point {
                let mut rng = SimRng::new(self.cfg.seed).derive(&format!("torn/{}/{s}", point.index));
                let mut choices = Vec::new();
                let torn_at = rng.below(pending.len() as u64) as usize;
                for (i, (page, cands)) in pending.iter().enumerate() {
                    let v = if i == torn_at {
                        rng.range_inclusive(1, cands.len() as u64)
                    } else {
                        rng.below(cands.len() as u64 + 1)
                    };
                    if v == 0 {
                        continue;
                    }
                    let torn = if i == torn_at || rng.chance(1, 4) {
                        let mut mask = vec![0u64; words];
                        for (w, m) in mask.iter_mut().enumerate() {
                            let bits = (units - w * 64).min(64);
                            let r = rng.next_u64();
                            *m = if bits == 64 { r } else { r & ((1u64 << bits) - 1) };
                        }
                        Some(mask)
                    } else {
                        None
                    };
                    choices.push(PageChoice { page: *page, version: v as u32, torn });
                }
                out.push(CrashImage { point: point.index, choices, tear });
            }
        }
        (out, exhaustive)
    }

    /// Runs the campaign from the start.
    pub fn run(&self) -> CampaignReport {
        self.resume(CampaignReport::default(), &mut |_| {})
    }

    /// Continues a campaign from `report` (a fresh default report starts
    /// from the first point). `progress` is called after every crash point
    /// with the report so far.
    pub fn resume(&self, mut report: CampaignReport, progress: &mut dyn FnMut(&CampaignReport)) -> CampaignReport {
        let points = self.history.points();
        let start = match (report.points_total == 0, report.next_point) {
            (true, _) => 0,
            (false, Some(p)) => p,
            (false, None) => return report,
        };
        report.points_total = points.len();
        report.per_point.resize(points.len(), 0);
        let (shard_i, shard_n) = (self.cfg.shard.0, self.cfg.shard.1.max(1));
        for point in &points[start.min(points.len())..] {
            if self.cfg.max_states.is_some_and(|m| report.checked >= m) {
                report.next_point = Some(point.index);
                return self.finish(report);
            }
            let (images, exhaustive) = self.images_at(point);
            if exhaustive {
                report.exhaustive_points += 1;
            } else {
                report.sampled_points += 1;
            }
            let mut seen = HashSet::new();
            for (n, image) in images.iter().enumerate() {
                if (n as u64) % shard_n != shard_i {
                    continue;
                }
                if !seen.insert(image_fingerprint(self.history, point, image)) {
                    report.duplicates += 1;
                    continue;
                }
                report.checked += 1;
                report.per_point[point.index] += 1;
                if let Err(message) = check_image(self.history, self.checker, point, image) {
                    report.violations_total += 1;
                    if report.violations.len() < self.cfg.max_violations {
                        report.violations.push(Violation {
                            point: point.clone(),
                            persisted: persisted(self.history, point, image),
                            message,
                            image: image.clone(),
                        });
                    }
                }
            }
            report.next_point = if point.index + 1 < points.len() { Some(point.index + 1) } else { None };
            progress(&report);
        }
        report.next_point = None;
        self.finish(report)
    }

    fn finish(&self, mut report: CampaignReport) -> CampaignReport {
        if self.cfg.shrink && report.counterexample.is_none() {
            if let Some(v) = report.violations.first() {
                report.counterexample = Some(shrink(self.history, self.checker, v));
            }
        }
        report
    }
}
