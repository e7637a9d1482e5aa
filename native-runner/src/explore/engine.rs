//! The campaign loop, parallel: pmem-core's [`Campaign`] enumerates the
//! images of each crash point ([`Campaign::images_at`]); this engine
//! shards and deduplicates them exactly as `Campaign::resume` does, checks
//! them on `jobs` threads, and commits the results point by point in order,
//! so the [`CampaignReport`] is the one `Campaign::resume` would produce
//! (a test compares them), whatever the number of threads.
//!
//! Work goes in batches of consecutive crash points; after each batch the
//! report is committed and handed to a callback (which saves the state
//! file), so an interrupted campaign resumes at the first point not
//! committed. A batch interrupted by Ctrl-C is thrown away: its checker
//! processes received the signal too, and their verdicts mean nothing.

use super::target::CheckerSet;
use pmem_core::crash::{
    shrink, Campaign, CampaignConfig, CampaignReport, CrashContext, CrashImage, CrashPoint, ImageReader, ImageView,
    Violation, WriteHistory,
};
use pmem_core::host::TearGranularity;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Why a campaign stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Every crash point was explored.
    Complete,
    /// The state limit was reached (resumable).
    Limit,
    /// Interrupted (resumable from the last committed point).
    Interrupted,
    /// The checker cannot run.
    Fatal(String),
}

/// The parallel campaign.
pub struct Engine<'a> {
    history: &'a WriteHistory,
    cfg: CampaignConfig,
    jobs: usize,
    batch: usize,
}

/// What the engine tells its caller as it goes (`handled` is called from
/// the worker threads).
pub trait Observer: Sync {
    /// Images handled (checked or skipped as duplicates), as they are.
    fn handled(&self, n: u64);
    /// A batch was committed.
    fn committed(&mut self, report: &CampaignReport) -> Result<(), String>;
}

fn noop(_: &dyn ImageReader, _: &CrashContext) -> Result<(), String> {
    Ok(())
}

pub use pmem_core::crash::{image_fingerprint as fingerprint, persisted};

/// Images a shard takes at a point with `count` images.
fn shard_share(count: u64, (i, n): (u64, u64)) -> u64 {
    let n = n.max(1);
    if i >= count {
        0
    } else {
        (count - i).div_ceil(n)
    }
}

/// The number of images [`Campaign::images_at`] gives at `point`, without
/// building them.
pub fn images_count(history: &WriteHistory, cfg: &CampaignConfig, point: &CrashPoint) -> u64 {
    let pending = history.pending(point);
    let total = pending.iter().try_fold(1u64, |acc, (_, c)| acc.checked_mul(c.len() as u64 + 1));
    let base = match total {
        Some(t) if t <= cfg.exhaustive_limit => t,
        _ => cfg.samples_per_point,
    };
    let torn = if cfg.tear != TearGranularity::Page4K && !pending.is_empty() { cfg.torn_samples_per_point } else { 0 };
    base + torn
}

struct PointWork {
    point: usize,
    exhaustive: bool,
    duplicates: u64,
    images: Vec<CrashImage>,
}

impl<'a> Engine<'a> {
    /// An engine over `history` with `jobs` threads and batches of about
    /// `batch` images.
    pub fn new(history: &'a WriteHistory, cfg: CampaignConfig, jobs: usize, batch: usize) -> Self {
        Engine { history, cfg, jobs: jobs.max(1), batch: batch.max(1) }
    }

    /// Images (checked or duplicate) this shard handles from point `from`
    /// on: the length of a progress bar.
    pub fn images_from(&self, from: usize) -> u64 {
        self.history.points()[from.min(self.history.points().len())..]
            .iter()
            .map(|p| shard_share(images_count(self.history, &self.cfg, p), self.cfg.shard))
            .sum()
    }

    /// The first point a run from `report` explores (`None`: done).
    pub fn start_point(report: &CampaignReport) -> Option<usize> {
        match (report.points_total == 0, report.next_point) {
            (true, _) => Some(0),
            (false, p) => p,
        }
    }

    /// Continues the campaign from `report` (a default report starts it).
    /// `stop` is polled between batches (and by workers, to stop early).
    pub fn run(
        &self,
        mut report: CampaignReport,
        checkers: &dyn CheckerSet,
        observer: &mut dyn Observer,
        stop: &AtomicBool,
    ) -> (CampaignReport, Stop) {
        let points = self.history.points();
        let Some(start) = Engine::start_point(&report) else {
            return (report, Stop::Complete);
        };
        report.points_total = points.len();
        report.per_point.resize(points.len(), 0);
        // Until a batch is committed, a resumed run starts here again.
        report.next_point = Some(start.min(points.len()));
        let enumerator = Campaign::new(self.history, &noop, self.cfg.clone());
        let (shard_i, shard_n) = (self.cfg.shard.0, self.cfg.shard.1.max(1));
        let mut next = start.min(points.len());
        let mut limited = false;
        while next < points.len() && !limited {
            // Build a batch of consecutive points.
            let mut batch: Vec<PointWork> = Vec::new();
            let mut planned = 0u64;
            while next < points.len() && (planned as usize) < self.batch {
                if self.cfg.max_states.is_some_and(|m| report.checked + planned >= m) {
                    limited = true;
                    break;
                }
                let point = &points[next];
                let (images, exhaustive) = enumerator.images_at(point);
                let mut seen = HashSet::new();
                let mut work = PointWork { point: next, exhaustive, duplicates: 0, images: Vec::new() };
                for (n, image) in images.into_iter().enumerate() {
                    if (n as u64) % shard_n != shard_i {
                        continue;
                    }
                    if !seen.insert(fingerprint(self.history, point, &image)) {
                        work.duplicates += 1;
                        observer.handled(1);
                        continue;
                    }
                    work.images.push(image);
                }
                planned += work.images.len() as u64;
                batch.push(work);
                next += 1;
            }
            let results = self.check_batch(&batch, checkers, observer, stop);
            if let Some(why) = checkers.fatal() {
                return (report, Stop::Fatal(why));
            }
            if stop.load(Ordering::SeqCst) {
                return (report, Stop::Interrupted);
            }
            // Commit in order.
            let mut results = results.into_iter();
            for work in &batch {
                let point = &points[work.point];
                if work.exhaustive {
                    report.exhaustive_points += 1;
                } else {
                    report.sampled_points += 1;
                }
                report.duplicates += work.duplicates;
                for image in &work.images {
                    report.checked += 1;
                    report.per_point[work.point] += 1;
                    if let Some(Some(Err(message))) = results.next() {
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
                report.next_point = if work.point + 1 < points.len() { Some(work.point + 1) } else { None };
            }
            if limited {
                report.next_point = Some(next);
            }
            if let Err(why) = observer.committed(&report) {
                return (report, Stop::Fatal(why));
            }
        }
        let stopped = if limited && next < points.len() {
            report.next_point = Some(next);
            Stop::Limit
        } else {
            report.next_point = None;
            Stop::Complete
        };
        // Shrink the first violation, as Campaign::finish does.
        if self.cfg.shrink && report.counterexample.is_none() {
            if let Some(v) = report.violations.first() {
                let checker = checkers.make();
                let cx = shrink(self.history, checker.as_ref(), v);
                if let Some(why) = checkers.fatal() {
                    return (report, Stop::Fatal(why));
                }
                report.counterexample = Some(cx);
            }
        }
        (report, stopped)
    }

    /// Checks the images of a batch on the worker threads; results in
    /// batch order (`None` for images not checked because of a stop).
    fn check_batch(
        &self,
        batch: &[PointWork],
        checkers: &dyn CheckerSet,
        observer: &dyn Observer,
        stop: &AtomicBool,
    ) -> Vec<Option<Result<(), String>>> {
        let points = self.history.points();
        let tasks: Vec<(&CrashPoint, &CrashImage)> =
            batch.iter().flat_map(|w| w.images.iter().map(move |i| (&points[w.point], i))).collect();
        let results: Vec<Mutex<Option<Result<(), String>>>> = tasks.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let work = || {
            let checker = checkers.make();
            loop {
                if stop.load(Ordering::Relaxed) || checkers.fatal().is_some() {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(point, image)) = tasks.get(i) else { break };
                let view = ImageView::new(self.history, point, image);
                let verdict = checker.check(&view, &CrashContext { point: point.clone() });
                *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(verdict);
                observer.handled(1);
            }
        };
        let threads = self.jobs.min(tasks.len()).max(1);
        if threads == 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 1..threads {
                    s.spawn(work);
                }
                work();
            });
        }
        results.into_iter().map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::target::{workload_target, CheckerSet};
    use super::*;
    use pmem_core::workload::by_name;

    struct Quiet;
    impl Observer for Quiet {
        fn handled(&self, _: u64) {}
        fn committed(&mut self, _: &CampaignReport) -> Result<(), String> {
            Ok(())
        }
    }

    fn core_report(name: &str, cfg: CampaignConfig) -> CampaignReport {
        let (t, _) = workload_target(name, 1).unwrap();
        let w = by_name(name).unwrap();
        let checker = w.checker();
        Campaign::new(&t.history, checker.as_ref(), cfg).run()
    }

    #[test]
    fn gives_the_core_campaigns_report_whatever_the_threads_and_batches() {
        for name in ["wal-missing-barrier", "in-place", "shadow-paging"] {
            let cfg = CampaignConfig::default();
            let want = core_report(name, cfg.clone());
            let (t, checker) = workload_target(name, 1).unwrap();
            for (jobs, batch) in [(1, 1), (3, 7), (2, 10_000)] {
                let engine = Engine::new(&t.history, cfg.clone(), jobs, batch);
                let (got, stop) = engine.run(CampaignReport::default(), &checker, &mut Quiet, &AtomicBool::new(false));
                assert_eq!(stop, Stop::Complete);
                assert_eq!(got, want, "{name} with {jobs} jobs, batches of {batch}");
            }
            let engine = Engine::new(&t.history, cfg.clone(), 1, 1);
            let handled: u64 = want.checked + want.duplicates;
            assert_eq!(engine.images_from(0), handled, "{name}: the progress bar's length is exact");
        }
    }

    #[test]
    fn stops_at_the_limit_and_resumes_to_the_same_result_with_shards() {
        let name = "wal-missing-barrier";
        let (t, checker) = workload_target(name, 1).unwrap();
        let full = core_report(name, CampaignConfig::default());
        let cfg = CampaignConfig { max_states: Some(40), ..CampaignConfig::default() };
        let (part, stop) = Engine::new(&t.history, cfg, 2, 16).run(
            CampaignReport::default(),
            &checker,
            &mut Quiet,
            &AtomicBool::new(false),
        );
        assert_eq!(stop, Stop::Limit);
        assert!(part.next_point.is_some() && part.checked >= 40 && part.checked < full.checked);
        let json = serde_json::to_string(&part).unwrap();
        let back: CampaignReport = serde_json::from_str(&json).unwrap();
        let (done, stop) = Engine::new(&t.history, CampaignConfig::default(), 2, 16).run(
            back,
            &checker,
            &mut Quiet,
            &AtomicBool::new(false),
        );
        assert_eq!(stop, Stop::Complete);
        assert_eq!(
            (done.checked, done.violations_total, &done.per_point),
            (full.checked, full.violations_total, &full.per_point)
        );
        // Shards cover the whole campaign.
        let mut handled = 0;
        for i in 0..3 {
            let cfg = CampaignConfig { shard: (i, 3), ..CampaignConfig::default() };
            let (r, _) = Engine::new(&t.history, cfg, 2, 64).run(
                CampaignReport::default(),
                &checker,
                &mut Quiet,
                &AtomicBool::new(false),
            );
            handled += r.checked + r.duplicates;
        }
        assert_eq!(handled, full.checked + full.duplicates);
    }

    #[test]
    fn a_stop_request_commits_nothing_of_the_batch() {
        let (t, checker) = workload_target("wal", 1).unwrap();
        let stop = AtomicBool::new(true);
        let (r, why) = Engine::new(&t.history, CampaignConfig::default(), 2, 8).run(
            CampaignReport::default(),
            &checker,
            &mut Quiet,
            &stop,
        );
        assert_eq!(why, Stop::Interrupted);
        assert_eq!(r.checked, 0);
        let _ = checker.make();
    }
}
