//! [`Reporter`]: where a command's output goes, as readable text or as one
//! JSON document (`--json`).
//!
//! A command talks to its reporter only, never to stdout, and never asks
//! which format it is in:
//!
//! - the **readable log**, written while the command works, goes through
//!   `writeln!(reporter, …)`: it is printed in text mode and dropped with
//!   `--json` (whose document holds the same facts as fields);
//! - the **final report** is a value implementing [`Report`]:
//!   [`Reporter::report`] serialises it as pretty JSON with `--json`, and
//!   calls its [`Report::write_text`] otherwise.
//!
//! So stdout with `--json` is exactly one JSON document; a fact the text
//! form tells but the document has no field for ([`Report::json_notes`])
//! goes to stderr, one `pmemlab: note: …` line each.

use serde::Serialize;
use std::fmt;
use std::io::{self, Write};

/// The output format: the `--json` option every reporting command shares.
#[derive(clap::Args, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Format {
    /// Print one JSON document on stdout instead of the readable text (the
    /// default is text).
    #[arg(long)]
    pub json: bool,
}

/// A command's final report (see the module docs).
pub trait Report: Serialize {
    /// The report as readable text.
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()>;

    /// Notes the text form includes but the JSON document does not carry;
    /// with `--json` they go to stderr.
    fn json_notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Text or JSON output of one command (see the module docs).
pub struct Reporter<'a> {
    format: Format,
    out: Box<dyn Write + 'a>,
    err: Box<dyn Write + 'a>,
}

impl<'a> Reporter<'a> {
    /// A reporter writing to `out`, with notes of JSON documents to `err`.
    pub fn new(format: Format, out: impl Write + 'a, err: impl Write + 'a) -> Reporter<'a> {
        Reporter { format, out: Box::new(out), err: Box::new(err) }
    }

    /// A reporter on the process's stdout and stderr.
    pub fn stdio(format: Format) -> Reporter<'static> {
        // User text inside the readable log is escaped (see `output::escape`).
        Reporter::new(format, crate::output::TextStream::new(io::stdout().lock()), io::stderr())
    }

    /// The readable log: `writeln!(reporter, …)` prints in text mode and
    /// does nothing with `--json`.
    pub fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
        if self.format.json {
            return Ok(());
        }
        self.out.write_fmt(args)
    }

    /// Pushes the log written so far to the terminal (a long command shows
    /// its progress as it goes).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Writes the final report: pretty JSON with `--json` (its
    /// [`Report::json_notes`] to stderr), its text otherwise.
    pub fn report<R: Report>(&mut self, report: &R) -> io::Result<()> {
        if self.format.json {
            serde_json::to_writer_pretty(&mut self.out, report).map_err(io::Error::other)?;
            writeln!(self.out)?;
            for n in report.json_notes() {
                writeln!(self.err, "pmemlab: {n}")?;
            }
        } else {
            report.write_text(&mut *self.out)?;
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Answer {
        value: u32,
    }

    impl Report for Answer {
        fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
            writeln!(out, "the answer is {}", self.value)
        }
        fn json_notes(&self) -> Vec<String> {
            vec!["note: it was computed".into()]
        }
    }

    fn render(json: bool) -> (String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut r = Reporter::new(Format { json }, &mut out, &mut err);
        writeln!(r, "working…").unwrap();
        r.report(&Answer { value: 42 }).unwrap();
        drop(r);
        (String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
    }

    #[test]
    fn text_has_the_log_and_the_text_report() {
        assert_eq!(render(false), ("working…\nthe answer is 42\n".into(), String::new()));
    }

    #[test]
    fn json_is_one_document_with_notes_on_stderr() {
        let (out, err) = render(true);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v, serde_json::json!({"value": 42}));
        assert_eq!(err, "pmemlab: note: it was computed\n");
    }
}
