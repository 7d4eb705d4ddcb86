//! What goes where: results (text or one JSON document) on stdout; progress, warnings
//! and errors on stderr; human tables. Uses nothing of tfenv's.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use console::Style;
use serde::Serialize;

/// Writes one line to stderr. A stderr that cannot be written (closed, a full disk)
/// must not turn into a panic: the line is dropped.
pub fn stderr_line(text: &str) {
    // In unit tests, through the test harness's capture: shown only for a test that
    // fails, so `cargo test` stays quiet.
    #[cfg(test)]
    eprintln!("{text}");
    #[cfg(not(test))]
    {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    }
}

/// The first write to stdout that failed. Later writes are skipped, and the top
/// (`lib.rs`) decides once what it means.
static STDOUT_FAILURE: Mutex<Option<std::io::Error>> = Mutex::new(None);

/// Writes `bytes` to stdout, flushed. A failure is remembered, not returned: what the
/// command did is done whether or not its report could be written, so the command goes
/// on and the top says what happened.
pub fn stdout_write(bytes: &[u8]) {
    let mut failure = STDOUT_FAILURE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if failure.is_some() {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(err) = out.write_all(bytes).and_then(|()| out.flush()) {
        *failure = Some(err);
    }
}

/// How a write to stdout that tfenv did not make itself (clap's help) went.
pub fn stdout_written(result: std::io::Result<()>) {
    if let Err(err) = result {
        STDOUT_FAILURE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert(err);
    }
}

/// The failed write to stdout, if there was one (taken: asked once, at the top).
pub fn take_stdout_failure() -> Option<std::io::Error> {
    STDOUT_FAILURE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// One JSON document on stdout, outside any command (clap errors).
pub fn stdout_json_line(value: &serde_json::Value) {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    stdout_write(text.as_bytes());
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

pub struct Printer {
    pub format: Format,
    /// Lines are kept here instead of printed (one environment of several planned at
    /// once: its lines are printed together when it finishes).
    block: Option<Block>,
    quiet: bool,
    color_stdout: bool,
    color_stderr: bool,
    /// A JSON document was written; an error must not add a second one.
    wrote_json: AtomicBool,
    /// Where byte progress bars draw, together (several backups run at once).
    bars: indicatif::MultiProgress,
}

impl Printer {
    pub fn new(format: Format, quiet: bool, color_stdout: bool, color_stderr: bool) -> Printer {
        Printer {
            format,
            block: None,
            quiet,
            color_stdout,
            color_stderr,
            wrote_json: AtomicBool::new(false),
            bars: indicatif::MultiProgress::new(),
        }
    }

    pub fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// A printer like this one whose lines (and terraform's, through `block()`) go to
    /// `block` instead of stdout and stderr. It draws no spinner and no bar, and writes
    /// no JSON document.
    pub fn keeping_in(&self, block: Block) -> Printer {
        Printer {
            block: Some(block),
            ..Printer::new(
                self.format,
                self.quiet,
                self.color_stdout,
                self.color_stderr,
            )
        }
    }

    /// Where this printer keeps its lines, when it keeps them.
    pub fn block(&self) -> Option<&Block> {
        self.block.as_ref()
    }

    /// Writes the command's one JSON document to stdout (a failed write is decided on
    /// at the top, see `stdout_write`).
    pub fn json(&self, value: &impl Serialize) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(value)?;
        text.push('\n');
        self.wrote_json.store(true, Ordering::SeqCst);
        stdout_write(text.as_bytes());
        Ok(())
    }

    pub fn wrote_json(&self) -> bool {
        self.wrote_json.load(Ordering::SeqCst)
    }

    /// A line of the human result on stdout.
    pub fn result(&self, text: &str) {
        match &self.block {
            Some(block) => block.out(text),
            None => stdout_write(format!("{text}\n").as_bytes()),
        }
    }

    /// Progress on stderr, unless `-q`.
    pub fn progress(&self, text: &str) {
        if !self.quiet {
            self.err_line(text);
        }
    }

    /// Progress on stderr right away, unless `-q`, even from a printer that keeps a block:
    /// one line that says why an environment of several is not moving (it waits for a
    /// lock) cannot wait for the end of its block.
    pub fn progress_now(&self, text: &str) {
        if !self.quiet {
            stderr_line(text);
        }
    }

    /// A warning on stderr, always.
    pub fn warn(&self, text: &str) {
        self.err_line(&format!(
            "{} {text}",
            self.paint_err(&Style::new().yellow().bold(), "warning:")
        ));
    }

    fn err_line(&self, text: &str) {
        match &self.block {
            Some(block) => block.err(text),
            None => stderr_line(text),
        }
    }

    /// A spinner on stderr when it is a terminal and output is for people.
    pub fn spinner(&self, message: String) -> Option<indicatif::ProgressBar> {
        if self.quiet || self.is_json() || self.block.is_some() || !std::io::stderr().is_terminal()
        {
            return None;
        }
        let bar = indicatif::ProgressBar::new_spinner().with_message(message);
        bar.enable_steady_tick(Duration::from_millis(100));
        Some(bar)
    }

    /// Byte progress for a long read or write (a large state backed up, backups
    /// verified): drawn on stderr once `LARGE` bytes have gone by, and only when stderr
    /// is a terminal and output is for people. `total`: the bytes expected, when known.
    pub fn byte_progress(&self, message: String, total: Option<u64>) -> ByteProgress {
        if self.quiet || self.is_json() || self.block.is_some() || !std::io::stderr().is_terminal()
        {
            return ByteProgress(None);
        }
        let (bar, template) = match total {
            Some(total) => (
                indicatif::ProgressBar::with_draw_target(
                    Some(total),
                    indicatif::ProgressDrawTarget::hidden(),
                ),
                "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})",
            ),
            None => (
                indicatif::ProgressBar::hidden(),
                "{spinner} {msg} {bytes} ({bytes_per_sec})",
            ),
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(message);
        ByteProgress(Some(Arc::new(Bar {
            bar,
            bars: self.bars.clone(),
            shown: AtomicBool::new(false),
        })))
    }

    pub fn paint(&self, style: &Style, text: &str) -> String {
        if self.color_stdout {
            style.apply_to(text).to_string()
        } else {
            text.to_string()
        }
    }

    pub fn paint_err(&self, style: &Style, text: &str) -> String {
        if self.color_stderr {
            // console decides by stdout unless told the text is for stderr.
            style.clone().for_stderr().apply_to(text).to_string()
        } else {
            text.to_string()
        }
    }
}

/// The lines of one environment's run, kept while it runs alongside others and printed
/// together when it ends (`Block::print`): several environments' output never
/// interleaves. Each line remembers whether it was for stdout or stderr. Cheap to clone;
/// lines may come from several tasks.
#[derive(Clone, Default)]
pub struct Block(Arc<Mutex<Vec<(Stream, String)>>>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

impl Block {
    /// A line of the result (stdout).
    pub fn out(&self, text: &str) {
        self.push(Stream::Out, text);
    }

    /// A line of progress, a warning, terraform's output (stderr).
    pub fn err(&self, text: &str) {
        self.push(Stream::Err, text);
    }

    fn push(&self, stream: Stream, text: &str) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((stream, text.to_string()));
    }

    /// Prints the lines kept so far, in order, each to its stream, and forgets them.
    pub fn print(&self) {
        let lines = std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        // Runs of lines for the same stream go in one write.
        let mut run = String::new();
        let mut stream = None;
        let flush = |stream: Option<Stream>, run: &mut String| {
            match stream {
                Some(Stream::Out) => stdout_write(run.as_bytes()),
                Some(Stream::Err) => {
                    let mut err = std::io::stderr().lock();
                    let _ = err.write_all(run.as_bytes()).and_then(|()| err.flush());
                }
                None => {}
            }
            run.clear();
        };
        for (to, line) in lines {
            if stream != Some(to) {
                flush(stream, &mut run);
                stream = Some(to);
            }
            run.push_str(&line);
            run.push('\n');
        }
        flush(stream, &mut run);
    }
}

/// Bytes past which a read or write shows its progress: below, it is over in well under
/// a second and a bar would only flash.
pub const LARGE: u64 = 16 << 20;

/// Byte progress that may be drawn (see `Printer::byte_progress`); a no-op when not.
/// Cheap to clone and safe to count from several threads.
#[derive(Clone)]
pub struct ByteProgress(Option<Arc<Bar>>);

struct Bar {
    bar: indicatif::ProgressBar,
    bars: indicatif::MultiProgress,
    shown: AtomicBool,
}

impl ByteProgress {
    /// Progress that is never drawn.
    pub fn none() -> ByteProgress {
        ByteProgress(None)
    }

    /// `n` more bytes went by.
    pub fn add(&self, n: u64) {
        let Some(bar) = &self.0 else { return };
        bar.bar.inc(n);
        if bar.bar.position() >= LARGE && !bar.shown.swap(true, Ordering::SeqCst) {
            // Added to the shared bars only now: a small read never draws at all.
            bar.bars.add(bar.bar.clone());
            bar.bar.tick();
            bar.bar.enable_steady_tick(Duration::from_millis(100));
        }
    }

    /// Clears the bar, before the result is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.bar.finish_and_clear();
            if bar.shown.load(Ordering::SeqCst) {
                bar.bars.remove(&bar.bar);
            }
        }
    }

    /// `inner`, counting every byte written to it.
    pub fn writer(&self, inner: Box<dyn Write + Send>) -> Box<dyn Write + Send> {
        match self.0 {
            Some(_) => Box::new(Counting {
                inner,
                progress: self.clone(),
            }),
            None => inner,
        }
    }
}

struct Counting {
    inner: Box<dyn Write + Send>,
    progress: ByteProgress,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

use crate::lock_info::escape_controls;
pub use crate::lock_info::printable;

/// Left-aligned columns separated by two spaces; the first row is the header. Control
/// characters in cells are escaped (`printable`), colour codes kept.
pub fn table(rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|cell| escape_controls(cell, true).into_owned())
                .collect()
        })
        .collect();
    let rows = &rows[..];
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| visible_width(s))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                line.push_str(&" ".repeat(widths[c] - visible_width(cell) + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn visible_width(text: &str) -> usize {
    console::measure_text_width(text)
}

/// The line of an error message that carries its cause, for a one-line listing (the
/// `plan --all` table's `failed:` lines, the job summary): the first line, and when it
/// ends with `:` ("`terraform plan` for `dev` exited with code 1:"), the next non-empty
/// line joined to it.
pub fn headline(message: &str) -> String {
    let mut lines = message.lines().map(str::trim);
    let first = lines.next().unwrap_or_default();
    match (first.strip_suffix(':'), lines.find(|l| !l.is_empty())) {
        (Some(head), Some(detail)) => format!("{head}: {detail}"),
        _ => first.to_string(),
    }
}

/// A duration as the `seconds` of a JSON document: rounded to milliseconds, like the
/// history records' (`1.234`, never `1.2340573`).
pub fn seconds(elapsed: std::time::Duration) -> f64 {
    elapsed.as_millis() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_printer_keeping_a_block_keeps_every_line_in_order_with_its_stream() {
        let block = Block::default();
        let printer = Printer::new(Format::Human, false, false, false).keeping_in(block.clone());
        printer.progress("dev: terraform init");
        block.err("[dev] Plan: 1 to add");
        printer.result("Plan for `dev`");
        printer.warn("careful");
        assert!(printer.spinner("x".into()).is_none());
        let kept = block.0.lock().unwrap().clone();
        assert_eq!(
            kept,
            [
                (Stream::Err, "dev: terraform init".to_string()),
                (Stream::Err, "[dev] Plan: 1 to add".to_string()),
                (Stream::Out, "Plan for `dev`".to_string()),
                (Stream::Err, "warning: careful".to_string()),
            ]
        );
    }

    #[test]
    fn a_headline_joins_the_line_after_a_colon_skipping_blank_ones() {
        assert_eq!(
            headline(
                "`terraform plan` for `broken` exited with code 1:\n\n  Error: Unsupported argument\n  on main.tf"
            ),
            "`terraform plan` for `broken` exited with code 1: Error: Unsupported argument"
        );
        assert_eq!(
            headline("no such environment `x`\nhint"),
            "no such environment `x`"
        );
        assert_eq!(headline("ends with a colon:"), "ends with a colon:");
    }

    #[test]
    fn a_table_escapes_control_characters_in_cells_and_keeps_colours() {
        let rows = vec![
            vec!["WHO".to_string(), "HOST".to_string()],
            vec![
                "mallory\u{1b}[2J".to_string(),
                "evil\nhost\u{1b}]0;t\u{7}".to_string(),
            ],
            vec!["\u{1b}[32mok\u{1b}[0m".to_string(), "é".to_string()],
        ];
        let out = table(&rows);
        assert_eq!(out.lines().count(), 3, "{out}");
        assert!(out.contains("mallory\\u{1b}[2J"), "{out}");
        assert!(out.contains("evil\\nhost\\u{1b}]0;t\\u{7}"), "{out}");
        assert!(out.contains("\u{1b}[32mok\u{1b}[0m"), "{out}");
        assert_eq!(printable("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(printable("plain"), "plain");
    }

    #[test]
    fn table_aligns_columns() {
        let rows = vec![
            vec!["ENV".to_string(), "TIER".to_string()],
            vec!["production".to_string(), "production".to_string()],
        ];
        assert_eq!(table(&rows), "ENV         TIER\nproduction  production\n");
    }
}
