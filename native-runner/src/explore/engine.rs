//! The campaign loop, parallel. pmem-core's [`Campaign`] plans each crash
//! point, checks resume compatibility and commits verdicts; this engine
//! keeps only what is native: it checks a batch of planned images on `jobs`
//! threads, commits the results point by point in order (so the
//! [`CampaignReport`] is the one `Campaign::resume` would produce, whatever
//! the number of threads — a test compares them), and polls Ctrl-C.
//!
//! Work goes in batches of consecutive crash points; after each batch the
//! report is committed and handed to a callback (which saves the state
//! file), so an interrupted campaign resumes at the first point not
//! committed. A batch interrupted by Ctrl-C is thrown away: its checker
//! processes received the signal too, and their verdicts mean nothing.

use super::target::CheckerSet;
use pmem_core::crash::{
    shrink, Campaign, CampaignConfig, CampaignReport, CrashContext, ImageReader, PlannedImage, PointPlan,
    PointVerdicts, WriteHistory,
};
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
    /// The checker cannot run, or the saved report cannot be continued.
    Fatal(String),
}

/// The parallel campaign.
pub struct Engine<'a> {
    campaign: Campaign<'a>,
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

/// The planned images of one point, waiting for their verdicts.
struct PointWork<'a> {
    plan: PointPlan<'a>,
    duplicates: u64,
    images: Vec<PlannedImage>,
}

impl<'a> Engine<'a> {
    /// An engine over `history` with `jobs` threads and batches of about
    /// `batch` images.
    pub fn new(history: &'a WriteHistory, cfg: CampaignConfig, jobs: usize, batch: usize) -> Self {
        Engine { campaign: Campaign::new(history, &noop, cfg), jobs: jobs.max(1), batch: batch.max(1) }
    }

    /// The campaign (planning, resume checks, commits).
    pub fn campaign(&self) -> &Campaign<'a> {
        &self.campaign
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
        let history = self.campaign.history();
        let points = history.points();
        let start = match self.campaign.start_point(&report) {
            Ok(Some(s)) => s,
            Ok(None) => return (report, Stop::Complete),
            Err(e) => return (report, Stop::Fatal(e.to_string())),
        };
        report.points_total = points.len();
        report.per_point.resize(points.len(), 0);
        // Until a batch is committed, a resumed run starts here again.
        report.next_point = Some(start);
        let mut next = start;
        let mut limited = false;
        while next < points.len() && !limited {
            let batch;
            (batch, next, limited) = self.plan_batch(&report, next, observer);
            let results = self.check_batch(&batch, checkers, observer, stop);
            if let Some(why) = checkers.fatal() {
                return (report, Stop::Fatal(why));
            }
            if stop.load(Ordering::SeqCst) {
                return (report, Stop::Interrupted);
            }
            self.commit_batch(&mut report, batch, results);
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
        self.shrink_first(report, checkers, stopped)
    }

    /// Plans consecutive points from `next` until about `batch` images are
    /// planned or the state limit is reached; returns the batch, the next
    /// point and whether the limit stopped it.
    fn plan_batch(
        &self,
        report: &CampaignReport,
        mut next: usize,
        observer: &mut dyn Observer,
    ) -> (Vec<PointWork<'a>>, usize, bool) {
        let points = self.campaign.history().points();
        let max_states = self.campaign.config().max_states;
        let mut batch = Vec::new();
        let mut planned = 0u64;
        while next < points.len() && (planned as usize) < self.batch {
            if max_states.is_some_and(|m| report.checked + planned >= m) {
                return (batch, next, true);
            }
            let plan = self.campaign.plan(&points[next]);
            let mut shard = plan.shard_images();
            let images: Vec<PlannedImage> = shard.by_ref().collect();
            let duplicates = shard.duplicates;
            observer.handled(duplicates);
            planned += images.len() as u64;
            batch.push(PointWork { plan, duplicates, images });
            next += 1;
        }
        (batch, next, false)
    }

    /// Commits a checked batch in point order.
    fn commit_batch(
        &self,
        report: &mut CampaignReport,
        batch: Vec<PointWork<'a>>,
        results: Vec<Option<Result<(), String>>>,
    ) {
        let mut results = results.into_iter();
        for work in batch {
            let verdicts = work.images.into_iter().map(|i| (i, results.next().flatten().unwrap_or(Ok(())))).collect();
            self.campaign.commit(report, &work.plan, PointVerdicts { duplicates: work.duplicates, verdicts });
        }
    }

    /// Shrinks the first violation with a real checker, as
    /// `Campaign::finish` does with its own.
    fn shrink_first(
        &self,
        mut report: CampaignReport,
        checkers: &dyn CheckerSet,
        stopped: Stop,
    ) -> (CampaignReport, Stop) {
        if self.campaign.config().shrink && report.counterexample.is_none() {
            if let Some(v) = report.violations.first() {
                let checker = checkers.make();
                let cx = shrink(self.campaign.history(), checker.as_ref(), v);
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
        batch: &[PointWork<'a>],
        checkers: &dyn CheckerSet,
        observer: &dyn Observer,
        stop: &AtomicBool,
    ) -> Vec<Option<Result<(), String>>> {
        let tasks: Vec<(&PointPlan<'a>, &PlannedImage)> =
            batch.iter().flat_map(|w| w.images.iter().map(move |i| (&w.plan, i))).collect();
        let results: Vec<Mutex<Option<Result<(), String>>>> = tasks.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let work = || {
            let checker = checkers.make();
            loop {
                if stop.load(Ordering::Relaxed) || checkers.fatal().is_some() {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(plan, planned)) = tasks.get(i) else { break };
                let ctx = CrashContext { point: plan.index().point().clone() };
                let verdict = checker.check(&plan.index().view(&planned.image), &ctx);
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
            assert_eq!(engine.campaign().handled_from(0), handled, "{name}: the progress bar's length is exact");
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
