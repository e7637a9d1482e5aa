//! Lessons for a classroom: each a scenario (the native runner's format)
//! whose step notes explain what happens, with questions asked before an
//! outcome is shown.

use pmem_core::scenario::Scenario;

/// A question asked before a step runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// The step whose outcome the question is about; the lesson stops
    /// before it until the question is answered.
    pub before_step: usize,
    /// The question.
    pub prompt: &'static str,
    /// The possible answers.
    pub choices: &'static [&'static str],
    /// Index of the right answer.
    pub answer: usize,
    /// Why, shown once answered.
    pub why: &'static str,
}

/// A guided lesson.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lesson {
    /// Id used in links (`#lesson=why-fsync`).
    pub id: &'static str,
    /// Title.
    pub title: &'static str,
    /// The scenario JSON.
    pub json: &'static str,
    /// Questions, by step.
    pub questions: &'static [Question],
}

impl Lesson {
    /// The lesson's scenario.
    pub fn scenario(&self) -> Scenario {
        // Every lesson is parsed and run by the tests: cannot fail.
        Scenario::parse(self.json).expect("a lesson's scenario is valid")
    }

    /// The question asked before step `step`, if any.
    pub fn question_before(&self, step: usize) -> Option<&'static Question> {
        self.questions.iter().find(|q| q.before_step == step)
    }
}

const YES_NO: &[&str] = &["yes", "no"];

/// Every lesson, in teaching order.
pub const LESSONS: &[Lesson] = &[
    Lesson {
        id: "why-fsync",
        title: "Why fsync",
        json: include_str!("../lessons/why-fsync.json"),
        questions: &[
            Question {
                before_step: 2,
                prompt: "The application never called fsync. The host loses power. What will the guest read at offset 0 after the reboot?",
                choices: &["balance=100: the store was made", "zeros: the record is lost", "a mix: the page tears"],
                answer: 1,
                why: "The record was only in the host's page cache (dirty). A power failure loses every page that is not on disk; a page tears only when it is under writeback at that moment.",
            },
            Question {
                before_step: 6,
                prompt: "This time fsync returned 0 before the power failure. What will the guest read?",
                choices: &["balance=100", "zeros"],
                answer: 0,
                why: "virtio-pmem answers a flush request only after the host's fsync of the backing file: every store made before the request is on disk.",
            },
        ],
    },
    Lesson {
        id: "writeback",
        title: "Page cache and background writeback",
        json: include_str!("../lessons/writeback.json"),
        questions: &[
            Question {
                before_step: 3,
                prompt: "Nobody calls fsync. 25 more seconds pass (35 s since the store). Is the record on the disk then?",
                choices: &[
                    "no: only fsync writes pages to disk",
                    "yes: the host's flusher writes pages older than 30 s",
                    "only if the guest crashes first",
                ],
                answer: 1,
                why: "Linux's flusher wakes every dirty_writeback_centisecs (5 s) and writes pages dirty for longer than dirty_expire_centisecs (30 s).",
            },
            Question {
                before_step: 6,
                prompt: "Page 1 was written just now, page 0 35 s ago. Power fails. What survives?",
                choices: &["both pages", "page 0 only", "neither"],
                answer: 1,
                why: "Background writeback had caught page 0, not page 1. At a crash, any subset of the unflushed pages may be on disk: code must not count on it.",
            },
        ],
    },
    Lesson {
        id: "virtio-vs-nvdimm",
        title: "virtio-pmem versus NVDIMM emulation",
        json: include_str!("../lessons/virtio-vs-nvdimm.json"),
        questions: &[Question {
            before_step: 4,
            prompt: "fsync returned 0 on both devices. The host loses power. Which device still holds its record?",
            choices: &["both", "only nv1 (virtio-pmem)", "only nv2 (emulated NVDIMM)", "neither"],
            answer: 1,
            why: "The emulated NVDIMM's flush never leaves the guest, so its host file was never synced. virtio-pmem's flush request made the host fsync nv1's file.",
        }],
    },
    Lesson {
        id: "map-sync",
        title: "MAP_SYNC",
        json: include_str!("../lessons/map-sync.json"),
        questions: &[
            Question {
                before_step: 0,
                prompt: "An application maps nv1 (virtio-pmem) with MAP_SYNC, to skip fsync. What does mmap return?",
                choices: &[
                    "success: stores are durable at once",
                    "EOPNOTSUPP",
                    "success, but the stores are silently not durable",
                ],
                answer: 1,
                why: "virtio-pmem cannot promise synchronous page faults: its stores land in the host page cache. The kernel refuses MAP_SYNC so the application knows it must fsync.",
            },
            Question {
                before_step: 4,
                prompt: "No fsync on either device. Power fails. Which record survives?",
                choices: &["both", "only the real NVDIMM's (nv2)", "only virtio-pmem's (nv1)", "neither"],
                answer: 1,
                why: "A store to real persistent memory is durable once out of the CPU cache; a store to virtio-pmem waits in the host page cache for a flush.",
            },
        ],
    },
    Lesson {
        id: "crash-kinds",
        title: "Guest crash versus host power failure",
        json: include_str!("../lessons/crash-kinds.json"),
        questions: &[
            Question {
                before_step: 1,
                prompt: "The guest kernel panics and reboots; the host keeps running. Is order#1 still there afterwards?",
                choices: YES_NO,
                answer: 0,
                why: "The store went into the host's page cache, which a guest crash does not touch.",
            },
            Question {
                before_step: 3,
                prompt: "Now the VMM process is killed and restarted. Is order#1 still there?",
                choices: YES_NO,
                answer: 0,
                why: "With share=on the guest mapped the host file itself; the file's page cache outlives the process.",
            },
            Question {
                before_step: 5,
                prompt: "Finally the host loses power. Is order#1 still there?",
                choices: YES_NO,
                answer: 1,
                why: "Nothing flushed the page to disk, and a power failure empties the page cache.",
            },
        ],
    },
    Lesson {
        id: "fsyncgate",
        title: "fsyncgate",
        json: include_str!("../lessons/fsyncgate.json"),
        questions: &[
            Question {
                before_step: 3,
                prompt: "The first fsync returned -EIO. The application retries. What does the retry return?",
                choices: &["-EIO again", "0 (success)", "it never returns"],
                answer: 1,
                why: "Linux reports a writeback error once and marks the failed pages clean: the retry finds nothing dirty and succeeds.",
            },
            Question {
                before_step: 5,
                prompt: "The retry returned 0. Power fails. Does the record survive?",
                choices: &["yes: fsync returned 0", "no"],
                answer: 1,
                why: "The page was marked clean but never reached the disk. The only safe reaction to an fsync error is to treat the data as lost.",
            },
        ],
    },
    Lesson {
        id: "wal-ordering",
        title: "Write-ahead log ordering",
        json: include_str!("../lessons/wal-ordering.json"),
        questions: &[
            Question {
                before_step: 4,
                prompt: "The record was written before the commit mark. Power fails during the fsync. Can the disk hold the commit without the record?",
                choices: &["no: the disk receives writes in program order", "yes: writeback has its own order"],
                answer: 1,
                why: "The page cache writes dirty pages back in its own order (here by page number); only a completed flush orders two writes.",
            },
            Question {
                before_step: 11,
                prompt: "This time a flush separated record and commit. Can the commit be on disk without its record?",
                choices: YES_NO,
                answer: 1,
                why: "The commit was stored only after the flush for the record returned, so whenever the commit is on disk, the record is too.",
            },
        ],
    },
    Lesson {
        id: "dax-vs-double-caching",
        title: "Double caching versus DAX",
        json: include_str!("../lessons/dax-vs-double-caching.json"),
        questions: &[Question {
            before_step: 0,
            prompt: "The guest will write 4 MiB of file data on virtio-pmem (DAX). How much of it will sit in the guest's own page cache?",
            choices: &["4 MiB", "none: DAX maps the host's page cache", "8 MiB"],
            answer: 1,
            why: "DAX bypasses the guest page cache: the data lives once, in the host page cache. With virtio-blk and cache=writeback it would be cached twice (see the footprint table).",
        }],
    },
    Lesson {
        id: "share-off",
        title: "share=off: the classic mistake",
        json: include_str!("../lessons/share-off.json"),
        questions: &[
            Question {
                before_step: 1,
                prompt: "The backend was started without share (share=off). Will fsync return success?",
                choices: &["yes", "no: -EIO"],
                answer: 0,
                why: "The host fsyncs the file successfully; the file just does not hold the guest's writes, which went to a private copy.",
            },
            Question {
                before_step: 3,
                prompt: "No power failure: only the VMM process is killed. Does the write survive?",
                choices: YES_NO,
                answer: 1,
                why: "The private copy-on-write pages belong to the process and die with it.",
            },
        ],
    },
];

/// The lesson with id `id`.
pub fn by_id(id: &str) -> Option<&'static Lesson> {
    LESSONS.iter().find(|l| l.id == id)
}

/// The lesson shown when the page opens without a link.
pub const DEFAULT_LESSON: &str = "why-fsync";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lesson_runs_with_every_expectation_holding() {
        assert!(LESSONS.len() >= 6);
        for l in LESSONS {
            let run = l.scenario().run();
            let failures: Vec<String> = run.failures().map(|o| o.to_string()).collect();
            assert!(run.passed(), "lesson {}: {failures:#?}", l.id);
        }
    }

    #[test]
    fn every_step_is_explained_and_every_question_is_well_formed() {
        for l in LESSONS {
            let s = l.scenario();
            assert!(!s.description().is_empty(), "{}", l.id);
            for (i, step) in s.steps().iter().enumerate() {
                assert!(step.note.as_deref().is_some_and(|n| !n.is_empty()), "{} step {i} has no note", l.id);
            }
            assert!(!l.questions.is_empty(), "{} asks nothing", l.id);
            for q in l.questions {
                assert!(q.before_step < s.steps().len(), "{}: {q:?}", l.id);
                assert!(q.answer < q.choices.len() && q.choices.len() >= 2, "{}: {q:?}", l.id);
            }
        }
    }

    #[test]
    fn ids_are_unique_and_found() {
        for l in LESSONS {
            assert_eq!(by_id(l.id), Some(l));
        }
        assert!(by_id(DEFAULT_LESSON).is_some());
        assert!(by_id("nope").is_none());
    }
}
