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
    /// The pages beyond the durable image that persisted: `page 3 ← write 5
    /// (torn)`; empty = exactly the durable image.
    pub persisted: Vec<String>,
    /// `None` when acceptable, else what the checker said.
    pub violation: Option<String>,
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

    /// Up to `limit` images of crash point `index`, each checked; and
    /// whether the point's images were enumerated exhaustively.
    pub fn images(&self, index: usize, limit: usize) -> (Vec<ImageRow>, bool) {
        let Some(point) = self.history.points().get(index) else { return (Vec::new(), true) };
        let campaign = Campaign::new(&self.history, self.checker.as_ref(), self.cfg.clone());
        let (images, exhaustive) = campaign.images_at(point);
        let rows = images
            .iter()
            .take(limit)
            .map(|img| {
                let view = ImageView::new(&self.history, point, img);
                let verdict = self.checker.check(&view, &CrashContext { point: point.clone() });
                ImageRow { persisted: persisted_text(&self.history, img), violation: verdict.err() }
            })
            .collect();
        (rows, exhaustive)
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
        let (images, _) = r.images(point, 10_000);
        assert!(images.iter().any(|i| i.violation.is_some()));
        assert!(images.iter().any(|i| i.violation.is_none()), "the durable image itself is fine");
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
