//! [`CreatedFiles`]: the files and directories a command created, removed
//! again when the command fails.
//!
//! A command registers every file it creates (a backing file, a crash
//! image, a report, a state file) as soon as it exists. When the command
//! succeeds it calls [`CreatedFiles::keep`]; on every other way out — an
//! error returned with `?`, an early return, a panic unwinding — the guard
//! is dropped and removes what was registered, newest first. A directory is
//! removed only when it is empty by then, and nothing that existed before
//! the command ran is ever registered: [`CreatedFiles::add_if_new`] looks
//! first, and the path is then only taken when nothing was there.
//!
//! So a failed command leaves the user's directories as it found them,
//! apart from files it was asked to replace (`--force`), which it never
//! removes.

use std::path::{Path, PathBuf};

/// Files and directories a command created (see the module docs).
#[derive(Debug, Default)]
#[must_use = "dropping the guard removes the files it holds; call keep() on success"]
pub struct CreatedFiles {
    entries: Vec<Entry>,
}

#[derive(Debug)]
enum Entry {
    File(PathBuf),
    Dir(PathBuf),
}

impl CreatedFiles {
    /// An empty guard.
    pub fn new() -> CreatedFiles {
        CreatedFiles::default()
    }

    /// Registers `path`, a file the command has just created.
    pub fn add(&mut self, path: impl Into<PathBuf>) {
        self.entries.push(Entry::File(path.into()));
    }

    /// Registers `path`, a directory the command has just created (removed
    /// on failure only if empty by then).
    pub fn add_dir(&mut self, path: impl Into<PathBuf>) {
        self.entries.push(Entry::Dir(path.into()));
    }

    /// Registers `path` when nothing exists there now: for a file the
    /// command is about to create (or replace, with `--force`). An existing
    /// file is the user's and stays, whatever happens. Returns whether it
    /// was registered.
    pub fn add_if_new(&mut self, path: &Path) -> bool {
        if std::fs::symlink_metadata(path).is_ok() || self.holds(path) {
            return false;
        }
        self.add(path);
        true
    }

    /// Whether `path` is registered.
    pub fn holds(&self, path: &Path) -> bool {
        self.entries.iter().any(|e| e.path() == path)
    }

    /// The command succeeded: every registered file stays.
    pub fn keep(mut self) {
        self.entries.clear();
    }
}

impl Entry {
    fn path(&self) -> &Path {
        match self {
            Entry::File(p) | Entry::Dir(p) => p,
        }
    }
}

impl Drop for CreatedFiles {
    fn drop(&mut self) {
        for e in self.entries.drain(..).rev() {
            // Best effort: a file already gone (or a directory the user
            // filled meanwhile) is left as it is.
            let _ = match e {
                Entry::File(p) => std::fs::remove_file(p),
                Entry::Dir(p) => std::fs::remove_dir(p),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pmemlab-created-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_dropped_guard_removes_what_it_holds_and_only_that() {
        let dir = scratch("drop");
        let mine = dir.join("mine.txt");
        std::fs::write(&mine, b"user data").unwrap();
        let sub = dir.join("images");
        {
            let mut created = CreatedFiles::new();
            assert!(!created.add_if_new(&mine), "an existing file is never taken");
            std::fs::create_dir(&sub).unwrap();
            created.add_dir(&sub);
            let img = sub.join("a.img");
            assert!(created.add_if_new(&img));
            std::fs::write(&img, b"image").unwrap();
            assert!(!created.add_if_new(&img), "registered once");
            std::fs::write(&mine, b"user data, still").unwrap();
        }
        assert!(!sub.exists(), "the file, then the emptied directory, are gone");
        assert_eq!(std::fs::read(&mine).unwrap(), b"user data, still");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_kept_guard_removes_nothing_and_a_filled_directory_stays() {
        let dir = scratch("keep");
        let a = dir.join("a.json");
        let mut created = CreatedFiles::new();
        assert!(created.add_if_new(&a));
        std::fs::write(&a, b"{}").unwrap();
        created.keep();
        assert!(a.exists());

        let sub = dir.join("out");
        std::fs::create_dir(&sub).unwrap();
        let theirs = sub.join("theirs.txt");
        let mut created = CreatedFiles::new();
        created.add_dir(&sub);
        std::fs::write(&theirs, b"not the command's").unwrap();
        drop(created);
        assert!(theirs.exists(), "a directory holding a file it did not register stays");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_panic_removes_the_files() {
        let dir = scratch("panic");
        let f = dir.join("half.img");
        let g = f.clone();
        let r = std::panic::catch_unwind(move || {
            let mut created = CreatedFiles::new();
            std::fs::write(&g, b"x").unwrap();
            created.add(&g);
            panic!("the command broke");
        });
        assert!(r.is_err());
        assert!(!f.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
