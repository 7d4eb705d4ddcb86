//! What goes where: results (text or one JSON document) on stdout; progress, warnings
//! and errors on stderr. Human tables and byte/age formatting live here too.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use console::Style;
use serde::Serialize;

use crate::exit::Exit;

/// Writes one line to stderr. A stderr that cannot be written (closed, a full disk)
/// must not turn into a panic: the line is dropped.
pub fn stderr_line(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

/// The first write to stdout that failed. Later writes are skipped, and the top of
/// `lib.rs` decides once what it means (`stdout_verdict`).
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

/// The exit code once stdout's fate is known. A reader that went away (`tfenv envs |
/// head -1`) is no error: quiet, like other command-line tools. Any other failed write
/// (a full disk, `/dev/full`) is said on stderr, and a run that would have exited 0
/// exits 1: its result was lost.
pub fn stdout_verdict(exit: Exit) -> Exit {
    let failure = STDOUT_FAILURE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    match failure {
        None => exit,
        Some(err) if err.kind() == std::io::ErrorKind::BrokenPipe => exit,
        Some(err) => {
            stderr_line(&format!("error: cannot write to standard output: {err}"));
            stderr_line(
                "  the command itself ran; only what it printed was lost: send stdout somewhere that can take it",
            );
            if exit == Exit::Success {
                Exit::Failure
            } else {
                exit
            }
        }
    }
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
    quiet: bool,
    color_stdout: bool,
    color_stderr: bool,
    /// A JSON document was written; an error must not add a second one.
    wrote_json: AtomicBool,
}

impl Printer {
    pub fn new(format: Format, quiet: bool, color_stdout: bool, color_stderr: bool) -> Printer {
        Printer {
            format,
            quiet,
            color_stdout,
            color_stderr,
            wrote_json: AtomicBool::new(false),
        }
    }

    pub fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// Writes the command's one JSON document to stdout (a failed write is decided on
    /// at the top: `stdout_verdict`).
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
        stdout_write(format!("{text}\n").as_bytes());
    }

    /// Progress on stderr, unless `-q`.
    pub fn progress(&self, text: &str) {
        if !self.quiet {
            stderr_line(text);
        }
    }

    /// A warning on stderr, always.
    pub fn warn(&self, text: &str) {
        stderr_line(&format!(
            "{} {text}",
            self.paint_err(&Style::new().yellow().bold(), "warning:")
        ));
    }

    /// A spinner on stderr when it is a terminal and output is for people.
    pub fn spinner(&self, message: String) -> Option<indicatif::ProgressBar> {
        if self.quiet || self.is_json() || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = indicatif::ProgressBar::new_spinner().with_message(message);
        bar.enable_steady_tick(Duration::from_millis(100));
        Some(bar)
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

/// Left-aligned columns separated by two spaces; the first row is the header.
pub fn table(rows: &[Vec<String>]) -> String {
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

/// `1.2 KiB`, `340 B`, `15.0 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `45s`, `12m`, `3h`, `5d` — an age at a glance.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let rows = vec![
            vec!["ENV".to_string(), "TIER".to_string()],
            vec!["production".to_string(), "production".to_string()],
        ];
        assert_eq!(table(&rows), "ENV         TIER\nproduction  production\n");
    }

    #[test]
    fn sizes_and_ages_read_well() {
        assert_eq!(bytes(340), "340 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(15 * 1024 * 1024), "15.0 MiB");
        assert_eq!(age(45), "45s");
        assert_eq!(age(3 * 3600 + 5), "3h");
        assert_eq!(age(-5), "0s");
    }
}
