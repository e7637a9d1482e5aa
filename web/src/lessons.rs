//! Lessons for a classroom: each a scenario (the native runner's format)
//! whose step notes explain what happens, with questions asked before an
//! outcome is shown.

use crate::diagram::Place;
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
    /// Why, shown once answered right.
    pub why: &'static str,
    /// What to look at again, shown after a wrong answer (it must not
    /// give the answer away: the student tries again).
    pub hint: &'static str,
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
                hint: "Where was the record when the power failed: in the page cache, or on the disk? Look at page 0's colour and at the two byte columns.",
            },
            Question {
                before_step: 6,
                prompt: "This time fsync returned 0 before the power failure. What will the guest read?",
                choices: &["balance=100", "zeros"],
                answer: 0,
                why: "virtio-pmem answers a flush request only after the host's fsync of the backing file: every store made before the request is on disk.",
                hint: "What did the device wait for before it answered the flush request? Step through the fsync event by event and watch the disk.",
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
                hint: "Nobody flushes, but the host runs a flusher thread. How old is the page by then, and what is dirty_expire?",
            },
            Question {
                before_step: 6,
                prompt: "Page 1 was written just now, page 0 35 s ago. Power fails. What survives?",
                choices: &["both pages", "page 0 only", "neither"],
                answer: 1,
                why: "Background writeback had caught page 0, not page 1. At a crash, any subset of the unflushed pages may be on disk: code must not count on it.",
                hint: "Which of the two pages had the flusher already written? Look at their colours before the power fails.",
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
            hint: "Follow the two fsyncs in the diagram: which of them reached the host page cache and the disk?",
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
                hint: "Where does a store to virtio-pmem land: in persistent memory, or in the host's page cache? Can a CPU cache flush make the host page cache durable?",
            },
            Question {
                before_step: 4,
                prompt: "No fsync on either device. Power fails. Which record survives?",
                choices: &["both", "only the real NVDIMM's (nv2)", "only virtio-pmem's (nv1)", "neither"],
                answer: 1,
                why: "A store to real persistent memory is durable once out of the CPU cache; a store to virtio-pmem waits in the host page cache for a flush.",
                hint: "Look at the colours of the two stored pages: which one is already on its device, which one waits in a page cache?",
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
                hint: "Where is the order stored: in the guest's memory, or in the host's page cache? Which of the two does a guest crash wipe?",
            },
            Question {
                before_step: 3,
                prompt: "Now the VMM process is killed and restarted. Is order#1 still there?",
                choices: YES_NO,
                answer: 0,
                why: "With share=on the guest mapped the host file itself; the file's page cache outlives the process.",
                hint: "Killing QEMU ends a process. Does the host's page cache of the file belong to that process?",
            },
            Question {
                before_step: 5,
                prompt: "Finally the host loses power. Is order#1 still there?",
                choices: YES_NO,
                answer: 1,
                why: "Nothing flushed the page to disk, and a power failure empties the page cache.",
                hint: "Is page 0 on the disk yet? What survives a power failure?",
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
                hint: "After the failed writeback, what state did the host leave the page in? Look at its colour: is anything dirty left to write?",
            },
            Question {
                before_step: 5,
                prompt: "The retry returned 0. Power fails. Does the record survive?",
                choices: &["yes: fsync returned 0", "no"],
                answer: 1,
                why: "The page was marked clean but never reached the disk. The only safe reaction to an fsync error is to treat the data as lost.",
                hint: "fsync returned 0, but what does the disk column of the bytes view hold?",
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
                hint: "Does the host's writeback keep the order of the stores? Look at which page reached the disk first.",
            },
            Question {
                before_step: 11,
                prompt: "This time a flush separated record and commit. Can the commit be on disk without its record?",
                choices: YES_NO,
                answer: 1,
                why: "The commit was stored only after the flush for the record returned, so whenever the commit is on disk, the record is too.",
                hint: "When the commit mark was stored, had the flush for the record already returned?",
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
            hint: "DAX means the guest maps the device's memory directly. Is there a guest page cache copy in between?",
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
                hint: "share=off changes where the writes go, not whether the host can fsync its file. Does the fsync of an unchanged file fail?",
            },
            Question {
                before_step: 3,
                prompt: "No power failure: only the VMM process is killed. Does the write survive?",
                choices: YES_NO,
                answer: 1,
                why: "The private copy-on-write pages belong to the process and die with it.",
                hint: "With share=off the guest's writes live in pages private to the VMM process. What happens to a process's private memory when it is killed?",
            },
        ],
    },
    Lesson {
        id: "host-folios",
        title: "Host folios: the unit the host writes",
        json: include_str!("../lessons/host-folios.json"),
        questions: &[
            Question {
                before_step: 0,
                prompt: "The host's page cache holds this file in 2 MiB folios. The guest stores 5 bytes at offset 0. How many 4 KiB pages of the file does the host then count as dirty?",
                choices: &["1", "512", "none: DAX bypasses the host page cache"],
                answer: 1,
                why: "The page cache dirties whole folios: a store to one page of a 2 MiB folio makes all 512 of its pages dirty (the kernel's cachestat counts them; measured with real QEMU on this host). DAX bypasses the guest's page cache, not the host's: the guest's stores land in the host's pages of the file.",
                hint: "In what unit does the host's page cache track this file, and how many 4 KiB pages make one such unit? The description names it.",
            },
            Question {
                before_step: 3,
                prompt: "Three stores of 5 bytes each, two folios dirty. How much does the fsync write to the host's disk?",
                choices: &["15 bytes", "12 KiB: the three pages stored to", "4 MiB: the two folios"],
                answer: 2,
                why: "Writeback writes whole folios: 1,024 pages for 15 bytes. That is the price of huge folios on a file-backed guest memory: fewer, larger writes, and a write amplification that grows the fewer bytes each folio holds.",
                hint: "What is the unit of writeback? Step through the fsync and read the writeback events.",
            },
            Question {
                before_step: 8,
                prompt: "Power failed with the first folio dirty again. What does the guest read at offset 1 MiB after the reboot?",
                choices: &["later", "zeros"],
                answer: 1,
                why: "The store at 1 MiB was made after the fsync and never written back: it was only in the host's page cache, and a power failure loses every dirty folio's new content.",
                hint: "Was the store at 1 MiB followed by an fsync, or written back by the flusher before the power failed?",
            },
        ],
    },
    Lesson {
        id: "two-vmms",
        title: "Two VMMs side by side: QEMU and Firecracker",
        json: include_str!("../lessons/two-vmms.json"),
        questions: &[
            Question {
                before_step: 3,
                prompt: "QEMU's device ran inside the notification. When does Firecracker's device take nv2's flush request off the ring?",
                choices: &[
                    "inside the notification too: every VMM must",
                    "later, when its event loop reads the notification",
                    "never: Firecracker does not support flushes",
                ],
                answer: 1,
                why: "The spec only says the device processes available buffers after a notification, not when. QEMU's virtio-pmem-pci has no ioeventfd, so its handler runs on the notifying vCPU's thread; Firecracker's device is served by its event loop, which reads the notification's eventfd, so the request waits on the ring for a while (watch the time of the pop).",
                hint: "A notification is a write the VMM has to notice. Does every VMM handle it on the vCPU thread? Watch when nv2's request leaves the available ring.",
            },
            Question {
                before_step: 10,
                prompt: "Both host syncs will fail. QEMU answers with status 1, Firecracker with -1. What does the application's fsync return on each device?",
                choices: &["-EIO on both", "-EIO on nv1 only: the driver checks for 1", "0 on both: the status is only advisory"],
                answer: 0,
                why: "Linux's virtio_pmem_flush turns any non-zero status into -EIO, so the two VMMs' different failure values make no difference to the application. The spec says -1; QEMU, cloud-hypervisor and crosvm write 1. A driver written from the spec that tested for -1 alone would miss QEMU's failures.",
                hint: "How does the guest's driver read the status word: does it compare it with one value, or only with 0?",
            },
        ],
    },
    Lesson {
        id: "real-program",
        title: "A real program's crash: a commit without its data",
        json: include_str!("../lessons/real-program.json"),
        questions: &[
            Question {
                before_step: 4,
                prompt: "Page 0 holds COMMIT 2, dirty; page 1 holds DATA 1, on the disk. The program is paused for 35 s. What does the host do with page 0 meanwhile?",
                choices: &["nothing: only msync writes a page", "writes it back: it has been dirty for over 30 s", "evicts it without writing it"],
                answer: 1,
                why: "The host's flusher writes back pages dirty for longer than dirty_expire (30 s), whatever the program intended: a program cannot keep a store off the disk, only make sure of what is on it with a flush.",
                hint: "The host runs a flusher thread. How long has page 0 been dirty when the pause ends?",
            },
            Question {
                before_step: 7,
                prompt: "The power failed after the payload store of update 2, before its msync. What can the recovery read after the reboot?",
                choices: &["COMMIT 2 with DATA 2", "COMMIT 2 with DATA 1: a commit without its data", "COMMIT 1 with DATA 1"],
                answer: 1,
                why: "Page 0 (COMMIT 2) reached the disk by writeback; page 1's DATA 2 was only in the page cache. Storing the commit word before the data, with nothing that orders them, is the bug: the fix is to store and flush the payload first, then the commit word, then flush again.",
                hint: "Which of the two pages were on the disk when the power failed? Look at their colours.",
            },
        ],
    },
];

/// The component of the diagram a note talks about, by the words it
/// uses (the first match in this order wins): the diagram outlines it next
/// to the note.
pub fn points_at(note: &str) -> Option<Place> {
    const WORDS: [(&str, Place); 10] = [
        ("available ring", Place::AvailRing),
        ("used ring", Place::UsedRing),
        ("virtqueue", Place::AvailRing),
        ("flush request", Place::Device),
        ("dax", Place::Dax),
        ("page cache", Place::PageCache),
        ("writeback", Place::PageCache),
        ("disk", Place::Disk),
        ("fsync", Place::Device),
        ("the grid", Place::PageCache),
    ];
    let n = note.to_lowercase();
    WORDS.iter().find(|(w, _)| n.contains(w)).map(|(_, p)| *p)
}

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
                assert!(!q.hint.is_empty() && q.hint != q.why, "{}: {q:?}", l.id);
            }
        }
    }

    #[test]
    fn notes_point_at_what_they_explain() {
        assert_eq!(points_at("The store goes into the host page cache"), Some(Place::PageCache));
        assert_eq!(points_at("Watch the available ring"), Some(Place::AvailRing));
        assert_eq!(points_at("The host loses power."), None);
        let pointed = LESSONS
            .iter()
            .flat_map(|l| l.scenario().steps().to_vec())
            .filter(|s| s.note.as_deref().and_then(points_at).is_some())
            .count();
        assert!(pointed >= 20, "only {pointed} notes point at a component");
    }

    #[test]
    fn ids_are_unique_and_found() {
        for l in LESSONS {
            assert_eq!(by_id(l.id), Some(l));
        }
        assert!(by_id(DEFAULT_LESSON).is_some());
        assert!(by_id("nope").is_none());
    }

    /// What a student has read when a question comes: the description and
    /// the notes of the steps before it, and the hint. None of them may
    /// state the right choice (when it is more than a yes or a no). The
    /// review behind the wording of the notes is in docs/web.md.
    #[test]
    fn no_text_before_a_question_states_its_answer() {
        for l in LESSONS {
            let s = l.scenario();
            for q in l.questions {
                let right = q.choices[q.answer].to_lowercase();
                let key = right.split(':').next().unwrap_or(&right).trim().to_string();
                if key.len() <= 3 {
                    continue;
                }
                let mut read = vec![s.description().to_lowercase(), q.hint.to_lowercase()];
                read.extend(
                    s.steps()[..q.before_step].iter().filter_map(|st| st.note.as_deref()).map(str::to_lowercase),
                );
                for text in read {
                    assert!(
                        !text.contains(&key),
                        "{}: the answer \"{key}\" is given before the question: {text}",
                        l.id
                    );
                }
            }
        }
        // The check can fail: a note that states the answer is caught.
        let q = &LESSONS[0].questions[0];
        let key = q.choices[q.answer].split(':').next().unwrap().trim().to_lowercase();
        assert!("after the reboot the guest reads zeros".contains(&key));
    }
}
