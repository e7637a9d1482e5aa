//! Output files the runner writes for the user (reports, state files, crash
//! images): never half-written, never replacing a file silently.
//!
//! An [`OutputFile`] is written to a temporary file next to its final path
//! (same directory, so the same file system) and renamed into place by
//! [`OutputFile::commit`]; dropping it uncommitted removes the temporary
//! file. So a run that fails half-way, or is killed, leaves no partial
//! report behind. An existing file at the final path is refused unless the
//! caller passes `replace` (the command-line `--force`); without it the
//! rename itself refuses to replace a file that appeared meanwhile.
//!
//! Text the user wrote (step notes, names, paths, a checker's message) is
//! printed through [`escape`]: a control character in it is shown as an
//! escape (`\x1b`, `\n`), never sent to the terminal, so a note can neither
//! clear the screen nor fake an `ok` line. [`TextStream`] does the same
//! to a whole stream, keeping its line breaks (the readable log of every
//! command goes through it).

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why an output file could not be written: one sentence naming it.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The file exists and replacing it was not asked for.
    #[error("{}: the file exists; pmemlab does not replace it (pass --force to replace it, or choose another path)", path.display())]
    Exists {
        /// The path.
        path: PathBuf,
    },
    /// The path is a directory.
    #[error("{}: is a directory; give the path of a file", path.display())]
    IsDirectory {
        /// The path.
        path: PathBuf,
    },
    /// The directory the file should go to does not exist.
    #[error("{}: directory {} does not exist", path.display(), dir.display())]
    MissingDirectory {
        /// The path.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
    },
    /// Any other I/O failure.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What was attempted.
        action: &'static str,
        /// The kernel's answer.
        source: io::Error,
    },
}

impl OutputError {
    fn io(path: &Path, action: &'static str, source: io::Error) -> OutputError {
        OutputError::Io { path: path.to_path_buf(), action, source }
    }
}

/// Checks that `path` may be written: its directory exists, and it is not
/// a directory, nor an existing file unless `replace`. Commands call this
/// for every output path before doing any work, so a bad path is reported
/// at once rather than after a long campaign.
pub fn check_writable(path: &Path, replace: bool) -> Result<(), OutputError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => return Err(OutputError::IsDirectory { path: path.to_path_buf() }),
        Ok(_) if !replace => return Err(OutputError::Exists { path: path.to_path_buf() }),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(OutputError::io(path, "look it up", e)),
    }
    let dir = parent_dir(path);
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(OutputError::MissingDirectory { path: path.to_path_buf(), dir }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(OutputError::MissingDirectory { path: path.to_path_buf(), dir })
        }
        Err(e) => Err(OutputError::io(path, "look up its directory", e)),
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A file being written; it appears at its final path only on
/// [`OutputFile::commit`].
#[derive(Debug)]
pub struct OutputFile {
    path: PathBuf,
    replace: bool,
    temp: tempfile::NamedTempFile,
}

impl OutputFile {
    /// Starts writing `path` (see the module docs).
    pub fn create(path: &Path, replace: bool) -> Result<OutputFile, OutputError> {
        check_writable(path, replace)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(parent_dir(path))
            .map_err(|e| OutputError::io(path, "create a temporary file next to it", e))?;
        Ok(OutputFile { path: path.to_path_buf(), replace, temp })
    }

    /// The file to write to.
    pub fn file(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes all of `bytes`.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), OutputError> {
        let path = self.path.clone();
        self.temp.write_all(bytes).map_err(|e| OutputError::io(&path, "write", e))
    }

    /// Moves the finished file to its final path.
    pub fn commit(self) -> Result<(), OutputError> {
        let OutputFile { path, replace, temp } = self;
        temp.as_file().flush().map_err(|e| OutputError::io(&path, "write", e))?;
        let result = if replace { temp.persist(&path) } else { temp.persist_noclobber(&path) };
        result.map(|_| ()).map_err(|e| {
            if e.error.kind() == io::ErrorKind::AlreadyExists {
                OutputError::Exists { path: path.clone() }
            } else {
                OutputError::io(&path, "move the finished file into place", e.error)
            }
        })
    }
}

/// Writes `bytes` to `path` through an [`OutputFile`].
pub fn write_file(path: &Path, bytes: &[u8], replace: bool) -> Result<(), OutputError> {
    let mut out = OutputFile::create(path, replace)?;
    out.write_all(bytes)?;
    out.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pmemlab-output-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn refuses_an_existing_file_unless_asked_and_leaves_it_untouched() {
        let dir = scratch("exists");
        let p = dir.join("report.json");
        std::fs::write(&p, b"mine").unwrap();
        let e = write_file(&p, b"theirs", false).unwrap_err();
        assert!(matches!(e, OutputError::Exists { .. }), "{e}");
        assert!(e.to_string().contains("--force"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"mine");
        write_file(&p, b"theirs", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"theirs");
        assert_eq!(entries(&dir), vec!["report.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_uncommitted_file_leaves_nothing_behind() {
        let dir = scratch("drop");
        let p = dir.join("r.html");
        let mut out = OutputFile::create(&p, false).unwrap();
        out.write_all(b"<html>").unwrap();
        assert_eq!(entries(&dir).len(), 1, "the temporary file exists while writing");
        drop(out);
        assert!(entries(&dir).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_a_missing_directory_and_a_directory_path() {
        let dir = scratch("dirs");
        let e = check_writable(&dir.join("no/such/r.json"), false).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        let e = check_writable(&dir, true).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// `text` with every control character escaped: C0 controls (newline,
/// carriage return and tab included), DEL, the C1 controls U+0080–U+009F
/// and the bidirectional overrides U+202A–U+202E, U+2066–U+2069 (which can
/// make a line read differently from what it holds). Everything else is
/// kept; text without such characters is returned as it is.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if needs_escape(c) && (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if needs_escape(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
        c => out.push(c),
    }
}

/// A stream of text lines whose control characters other than the line
/// break are escaped as [`escape`] does (for the readable log, where a
/// user's text sits inside pmemlab's own lines). Bytes that are not UTF-8
/// are shown as `\xNN`.
pub struct TextStream<W: Write> {
    inner: W,
    /// The start of a UTF-8 sequence split between two writes.
    pending: Vec<u8>,
}

impl<W: Write> TextStream<W> {
    /// Escapes what is written before passing it to `inner`.
    pub fn new(inner: W) -> Self {
        TextStream { inner, pending: Vec::new() }
    }

    fn emit(&mut self, bytes: &[u8], last: bool) -> io::Result<()> {
        let mut text = String::with_capacity(bytes.len());
        let mut rest = bytes;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    push_line_text(&mut text, s);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    // Valid by construction.
                    push_line_text(&mut text, std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            for b in &bad[..n] {
                                text.push_str(&format!("\\x{b:02x}"));
                            }
                            rest = &bad[n..];
                        }
                        // An incomplete sequence at the end: wait for the rest.
                        None if !last => {
                            self.pending = bad.to_vec();
                            break;
                        }
                        None => {
                            for b in bad {
                                text.push_str(&format!("\\x{b:02x}"));
                            }
                            break;
                        }
                    }
                }
            }
        }
        self.inner.write_all(text.as_bytes())
    }
}

fn push_line_text(out: &mut String, s: &str) {
    for c in s.chars() {
        if c == '\n' {
            out.push(c);
        } else {
            push_escaped(out, c);
        }
    }
}

impl<W: Write> Write for TextStream<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut bytes = std::mem::take(&mut self.pending);
        bytes.extend_from_slice(buf);
        self.emit(&bytes, false)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        if !pending.is_empty() {
            self.emit(&pending, true)?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for TextStream<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod escape_tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_sent() {
        assert_eq!(escape("plain text, ünïcode"), "plain text, ünïcode");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(escape("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(escape("x\nstep 3 ok\r"), "x\\nstep 3 ok\\r");
        assert_eq!(escape("\u{9b}31m \u{202e}txt"), "\\x9b31m \\u{202e}txt");
        assert_eq!(escape("\x7f"), "\\x7f");
    }

    #[test]
    fn a_stream_keeps_line_breaks_and_escapes_the_rest_even_split_mid_character() {
        let mut out = Vec::new();
        {
            let mut s = TextStream::new(&mut out);
            s.write_all(b"ok line\n\x1b[2J note\r\n").unwrap();
            let e_acute = "é".as_bytes();
            s.write_all(&e_acute[..1]).unwrap();
            s.write_all(&e_acute[1..]).unwrap();
            s.write_all(b" \xff\n").unwrap();
        }
        assert_eq!(String::from_utf8(out).unwrap(), "ok line\n\\x1b[2J note\\r\né \\xff\n");
    }
}
