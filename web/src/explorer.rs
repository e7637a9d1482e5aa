//! The crash explorer: run a built-in workload, enumerate the disk images a
//! crash could leave at every crash point, check each, and show the
//! violations and the minimal counterexample.

use pmem_core::crash::{
    Campaign, CampaignConfig, CampaignReport, Checker, CrashContext, CrashImage, ImageView, WriteHistory,
};
use pmem_core::event::Event;
use pmem_core::host::TearGranularity;
use pmem_core::sim::SimConfig;
use pmem_core::workload::{builtin, by_name};

/// A built-in workload, for the picker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadInfo {
    /// Its name.
    pub name: &'static str,
    /// What it does.
    pub description: &'static str,
}

/// The built-in workloads.
pub fn workloads() -> Vec<WorkloadInfo> {
    builtin().iter().map(|w| WorkloadInfo { name: w.name(), description: w.description() }).collect()
}

/// One crash point, for the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PointRow {
    /// Its index.
    pub index: usize,
    /// The event the crash follows, as text (`"start"` before the first).
    pub after: String,
    /// Writes issued so far.
    pub writes_done: usize,
    /// Writes guaranteed durable.
    pub durable_upto: usize,
    /// Pages that may or may not have reached the disk.
    pub pending_pages: usize,
    /// Images checked there.
    pub images: u64,
    /// Violations found there (among those kept).
    pub violations: usize,
}

/// One possible disk image at a crash point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRow {
    /// Its number among the point's distinct images (from 1).
    pub number: usize,
    /// The pages beyond the durable image that persisted: `page 3 ← write 5
    /// (torn)`; empty = exactly the durable image.
    pub persisted: Vec<String>,
    /// Every page that could differ from the durable image at this point,
    /// and what this image holds there (the strip drawn for it).
    pub cells: Vec<ImageCell>,
    /// `None` when acceptable, else what the checker said.
    pub violation: Option<String>,
}

/// One page of an image's strip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageCell {
    /// The page.
    pub page: u64,
    /// The write (its index in the workload's writes) whose content the
    /// page holds; `None`: the durable content.
    pub write: Option<usize>,
    /// For a torn page: per tear unit (sector, cache line, …; at most 16
    /// drawn, each standing for the units it covers), true where the unit
    /// holds the new write, false where it holds what was there before.
    pub torn: Option<Vec<bool>>,
}

/// The images of one crash point, as the campaign counted them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PointImages {
    /// The first distinct images, checked.
    pub rows: Vec<ImageRow>,
    /// Distinct images at the point: the number the campaign checked
    /// (the table's count).
    pub distinct: u64,
    /// Images skipped as duplicates of one already listed (same bytes).
    pub duplicates: u64,
    /// Every image was enumerated (not sampled).
    pub exhaustive: bool,
}

/// A finished campaign.
pub struct ExplorerRun {
    /// The workload.
    pub workload: WorkloadInfo,
    /// The seed.
    pub seed: u64,
    /// The tear granularity.
    pub tear: TearGranularity,
    /// The report.
    pub report: CampaignReport,
    /// The crash points, for the list.
    pub points: Vec<PointRow>,
    history: WriteHistory,
    checker: Box<dyn Checker>,
    cfg: CampaignConfig,
}

impl std::fmt::Debug for ExplorerRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExplorerRun").field("workload", &self.workload).field("report", &self.report).finish()
    }
}

fn persisted_text(history: &WriteHistory, image: &CrashImage) -> Vec<String> {
    let point = &history.points()[image.point];
    image
        .choices
        .iter()
        .map(|c| {
            let write = history.candidates(c.page, point).get((c.version as usize).saturating_sub(1)).map(|v| v.write);
            let torn = if c.torn.is_some() { " (torn)" } else { "" };
            match write {
                Some(w) => format!("page {} ← write {w}{torn}", c.page),
                None => format!("page {} ← version {}{torn}", c.page, c.version),
            }
        })
        .collect()
}

/// Units drawn per torn page at most.
const TORN_SEGMENTS: usize = 16;

fn torn_segments(mask: &[u64], units: usize) -> Vec<bool> {
    let bit = |i: usize| mask.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1);
    let segs = units.clamp(1, TORN_SEGMENTS);
    let per = units.div_ceil(segs);
    // A segment counts as new when most of its units are.
    (0..segs).map(|s| (s * per..((s + 1) * per).min(units)).filter(|&i| bit(i)).count() * 2 > per).collect()
}

fn cells_of(history: &WriteHistory, image: &CrashImage) -> Vec<ImageCell> {
    let point = &history.points()[image.point];
    let units = image.tear.units_per_page();
    history
        .pending(point)
        .iter()
        .map(|p| {
            let choice = image.choices.iter().find(|c| c.page == p.page);
            let write = choice.and_then(|c| p.candidates.get((c.version as usize).saturating_sub(1)).map(|v| v.write));
            let torn = choice.and_then(|c| c.torn.as_deref()).map(|m| torn_segments(m, units));
            ImageCell { page: p.page, write, torn }
        })
        .collect()
}

impl ExplorerRun {
    /// Records workload `name` from `seed` and runs a campaign over its
    /// history at tear granularity `tear`.
    pub fn run(name: &str, seed: u64, tear: TearGranularity) -> Result<ExplorerRun, String> {
        let w = by_name(name).ok_or_else(|| {
            let names: Vec<_> = workloads().iter().map(|w| w.name).collect();
            format!("no workload \"{name}\"; the built-in ones are {}", names.join(", "))
        })?;
        let (machine, history) = pmem_core::workload::record(w.as_ref(), SimConfig { seed, ..SimConfig::default() })
            .map_err(|e| e.to_string())?;
        let checker = w.checker();
        let cfg = CampaignConfig { seed, tear, ..CampaignConfig::default() };
        let report = Campaign::new(&history, checker.as_ref(), cfg.clone()).run();
        let events: &[Event] = machine.log().events();
        let points = history
            .points()
            .iter()
            .map(|p| PointRow {
                index: p.index,
                after: match p.after_event {
                    None => "start".to_string(),
                    Some(seq) => {
                        events.get(seq as usize).map_or(format!("event {seq}"), |e| format!("#{seq} {}", e.kind))
                    }
                },
                writes_done: p.writes_done,
                durable_upto: p.durable_upto,
                pending_pages: history.pending(p).len(),
                images: report.per_point.get(p.index).copied().unwrap_or(0),
                violations: report.violations.iter().filter(|v| v.point.index == p.index).count(),
            })
            .collect();
        Ok(ExplorerRun {
            workload: WorkloadInfo { name: w.name(), description: w.description() },
            seed,
            tear,
            report,
            points,
            history,
            checker,
            cfg,
        })
    }

    /// Up to `limit` distinct images of crash point `index`, each
    /// checked, deduplicated exactly as the campaign does, so that their
    /// count is the table's.
    pub fn images(&self, index: usize, limit: usize) -> PointImages {
        let Some(point) = self.history.points().get(index) else {
            return PointImages { rows: Vec::new(), distinct: 0, duplicates: 0, exhaustive: true };
        };
        let campaign = Campaign::new(&self.history, self.checker.as_ref(), self.cfg.clone());
        let plan = campaign.plan(point);
        let mut images = plan.shard_images();
        let mut rows = Vec::new();
        let mut distinct = 0u64;
        for planned in images.by_ref() {
            distinct += 1;
            if rows.len() >= limit {
                continue;
            }
            let img = plan.index().sparsify(&planned.image);
            let view = ImageView::new(&self.history, point, &img);
            let verdict = self.checker.check(&view, &CrashContext { point: point.clone() });
            rows.push(ImageRow {
                number: rows.len() + 1,
                persisted: persisted_text(&self.history, &img),
                cells: cells_of(&self.history, &img),
                violation: verdict.err(),
            });
        }
        PointImages { rows, distinct, duplicates: images.duplicates, exhaustive: plan.exhaustive() }
    }

    /// The minimal counterexample as text lines: where, which pages, what
    /// the checker said.
    pub fn counterexample(&self) -> Option<(usize, Vec<String>, String)> {
        let cx = self.report.counterexample.as_ref()?;
        let m = &cx.minimal;
        let pages = m
            .persisted
            .iter()
            .map(|p| format!("page {} ← write {}{}", p.page, p.write, if p.torn { " (torn)" } else { "" }))
            .collect();
        Some((m.point.index, pages, m.message.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_barrier_is_caught_and_shrunk() {
        let r = ExplorerRun::run("wal-missing-barrier", 1, TearGranularity::Sector512).unwrap();
        assert!(r.report.violations_total > 0);
        let (point, pages, message) = r.counterexample().unwrap();
        assert!(!pages.is_empty() && pages.len() <= 2, "{pages:?}");
        assert!(message.contains("committed"), "{message}");
        assert!(r.points[point].violations > 0 || r.report.violations.len() == r.report.violations_total as usize);
        let images = r.images(point, 10_000);
        assert!(images.rows.iter().any(|i| i.violation.is_some()));
        assert!(images.rows.iter().any(|i| i.violation.is_none()), "the durable image itself is fine");
        // The list counts what the table counts, at every point.
        for p in &r.points {
            let imgs = r.images(p.index, 0);
            assert_eq!(imgs.distinct, p.images, "point {}", p.index);
            assert!(imgs.rows.is_empty());
        }
        // Every torn page is drawn with its units, some new and some old
        // where the mask says so.
        let torn: Vec<&ImageCell> =
            images.rows.iter().flat_map(|i| i.cells.iter()).filter(|c| c.torn.is_some()).collect();
        for c in &torn {
            assert!(c.write.is_some(), "{c:?}");
        }
        assert_eq!(torn_segments(&[0b0000_1111], 8), [true, true, true, true, false, false, false, false]);
        assert_eq!(torn_segments(&[u64::MAX; 8], 512).len(), 16);
    }

    #[test]
    fn the_correct_wal_has_no_violation() {
        let r = ExplorerRun::run("wal", 1, TearGranularity::Sector512).unwrap();
        assert_eq!(r.report.violations_total, 0);
        assert!(r.counterexample().is_none());
        assert!(r.points.len() > 2);
        assert_eq!(r.points[0].after, "start");
    }

    #[test]
    fn an_unknown_workload_lists_the_known_ones() {
        let e = ExplorerRun::run("nope", 1, TearGranularity::Sector512).unwrap_err();
        assert!(e.contains("wal"), "{e}");
        assert_eq!(workloads().len(), 4);
    }
}
