//! Reading tfenv's JSONL files (MANIFEST.jsonl, history.jsonl). A line that is not UTF-8
//! or not a record is skipped with a warning naming the file and the line, so one
//! damaged line never hides the others or stops a command.

use std::path::Path;

use serde::de::DeserializeOwned;

/// The readable records of a JSONL file, oldest first, and one warning per skipped line.
#[derive(Debug)]
pub struct Jsonl<T> {
    pub records: Vec<T>,
    /// The line number (from 1) of each record, in step with `records`.
    pub lines: Vec<usize>,
    /// The line numbers of the skipped lines (blank lines are not skipped, just empty).
    pub skipped: Vec<usize>,
    pub warnings: Vec<String>,
}

impl<T> Default for Jsonl<T> {
    fn default() -> Self {
        Jsonl {
            records: Vec::new(),
            lines: Vec::new(),
            skipped: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// Reads `path` (a missing file has no records). `what` names a record in warnings
/// ("backup record"); `check` rejects a record that parses but must not be trusted,
/// saying why.
pub fn read<T: DeserializeOwned>(
    path: &Path,
    what: &str,
    check: impl Fn(&T) -> Result<(), String>,
) -> anyhow::Result<Jsonl<T>> {
    let Some(bytes) = crate::files::read_regular(path)? else {
        return Ok(Jsonl::default());
    };
    Ok(parse(path, &bytes, what, check))
}

pub fn parse<T: DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
    what: &str,
    check: impl Fn(&T) -> Result<(), String>,
) -> Jsonl<T> {
    let mut out = Jsonl::default();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        match parse_line(line, what, &check) {
            Ok(record) => {
                out.records.push(record);
                out.lines.push(i + 1);
            }
            Err(why) => {
                out.skipped.push(i + 1);
                out.warnings.push(format!(
                    "`{}` line {}: {why}; skipped it",
                    path.display(),
                    i + 1
                ));
            }
        }
    }
    out
}

/// One line of a JSONL file as a record, or why it is skipped: the one rule for every
/// reader of the file, whether it reads it whole ([`parse`]) or from the end ([`find_last`]).
pub fn parse_line<T: DeserializeOwned>(
    line: &[u8],
    what: &str,
    check: impl Fn(&T) -> Result<(), String>,
) -> Result<T, String> {
    let text = std::str::from_utf8(line)
        .map_err(|err| format!("not valid UTF-8 (byte {})", err.valid_up_to() + 1))?;
    let record = serde_json::from_str::<T>(text)
        .map_err(|err| format!("not a {what} ({})", json_error(&err)))?;
    check(&record)?;
    Ok(record)
}

/// Rewrites the lines of `path` that `change` returns a new line for (under the file's
/// lock, atomically); every other line stays byte for byte, including lines appended
/// since the caller read the file. Returns how many lines changed.
pub fn rewrite(
    path: &Path,
    mut change: impl FnMut(&[u8]) -> Option<String>,
) -> anyhow::Result<usize> {
    let _lock = crate::files::lock_file(path)?;
    let Some(bytes) = crate::files::read_regular(path)? else {
        return Ok(0);
    };
    let mut out = Vec::with_capacity(bytes.len() + 256);
    let mut changed = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        match change(line.trim_ascii()) {
            Some(new) => {
                changed += 1;
                out.extend_from_slice(new.as_bytes());
                out.push(b'\n');
            }
            None => {
                out.extend_from_slice(line);
                if !line.ends_with(b"\n") {
                    out.push(b'\n');
                }
            }
        }
    }
    if changed > 0 {
        crate::files::write_atomic(path, &out, crate::files::PRIVATE_FILE)?;
    }
    Ok(changed)
}

/// serde_json's message without its "at line 1 column N" (always line 1 here).
fn json_error(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let text = text.split(" at line ").next().unwrap_or(&text);
    format!("{text}, column {}", err.column())
}

/// The newest line of `path` that `pick` accepts, read backwards from the end in blocks,
/// so the cost depends on how far back the line is, not on the file's size. Lines are
/// handed over as bytes: one that is not UTF-8, or a tail that begins inside a
/// multibyte character, never hides the others.
pub fn find_last<T>(
    path: &Path,
    mut pick: impl FnMut(&[u8]) -> Option<T>,
) -> anyhow::Result<Option<T>> {
    use std::os::unix::fs::FileExt;
    const BLOCK: u64 = 64 * 1024;
    let Some(file) = crate::files::open_regular(path)? else {
        return Ok(None);
    };
    let len = file.metadata()?.len();
    let mut pos = len;
    // The bytes from `pos` up to the end of the lines not yet handed to `pick`; a line
    // in it is complete once a newline before it has been read (or `pos` reached 0).
    let mut pending: Vec<u8> = Vec::new();
    loop {
        if pos > 0 {
            let start = pos.saturating_sub(BLOCK);
            let mut block = vec![0; (pos - start) as usize];
            file.read_exact_at(&mut block, start)
                .map_err(|e| anyhow::anyhow!("reading `{}`: {e}", path.display()))?;
            block.extend_from_slice(&pending);
            pending = block;
            pos = start;
        }
        while let Some(i) = pending.iter().rposition(|&b| b == b'\n') {
            let line = pending.split_off(i + 1);
            pending.pop();
            let line = line.trim_ascii();
            if !line.is_empty()
                && let Some(found) = pick(line)
            {
                return Ok(Some(found));
            }
        }
        if pos == 0 {
            let line = pending.trim_ascii();
            return Ok(if line.is_empty() { None } else { pick(line) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn no_check(_: &Value) -> Result<(), String> {
        Ok(())
    }

    #[test]
    fn unreadable_lines_are_skipped_with_their_line_number() {
        let path = Path::new("/p/MANIFEST.jsonl");
        let bytes = b"{\"a\":1}\n{\"b\":\xff\xfe}\n\n[torn\n{\"c\":3}";
        let read = parse::<Value>(path, bytes, "backup record", no_check);
        assert_eq!(read.records.len(), 2);
        assert_eq!(read.records[1]["c"], 3);
        assert_eq!(read.warnings.len(), 2, "{:?}", read.warnings);
        assert!(
            read.warnings[0].starts_with("`/p/MANIFEST.jsonl` line 2: not valid UTF-8"),
            "{}",
            read.warnings[0]
        );
        assert!(
            read.warnings[1].starts_with("`/p/MANIFEST.jsonl` line 4: not a backup record ("),
            "{}",
            read.warnings[1]
        );
        assert!(
            !read.warnings[1].contains("at line 1"),
            "{}",
            read.warnings[1]
        );
    }

    #[test]
    fn a_record_the_check_rejects_is_skipped_with_why() {
        let read = parse::<Value>(Path::new("m"), b"{\"file\":\"../x\"}\n", "r", |v| {
            Err(format!("names `{}`", v["file"].as_str().unwrap()))
        });
        assert!(read.records.is_empty());
        assert_eq!(read.warnings, ["`m` line 1: names `../x`; skipped it"]);
    }

    #[test]
    fn find_last_reads_backwards_across_blocks_and_multibyte_characters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        // A first record long enough that the 64 KiB block boundary falls inside one of
        // its three-byte characters (the padding of line 2 moves it there).
        let head = "{\"n\":1,\"e\":\"";
        let long = "€".repeat(40_000);
        let tail = b"\n{\"n\":3,\"x\":\"\xff\"}\n{\"n\":4}\n{\"n\":";
        let bytes = (0..3)
            .map(|pad| {
                let mut bytes = format!("{head}{long}\"}}\n{{\"n\":2}}{}\n\u{ff}", " ".repeat(pad))
                    .into_bytes();
                bytes.extend_from_slice(tail);
                bytes
            })
            .find(|bytes| !(bytes.len() - 65536 - head.len()).is_multiple_of(3))
            .unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let n = |wanted: u64| {
            find_last(&path, |line| {
                let v: Value = serde_json::from_slice(line).ok()?;
                (v["n"].as_u64()? <= wanted).then_some(v["n"].as_u64()?)
            })
            .unwrap()
        };
        assert_eq!(n(9), Some(4), "the torn last line is skipped");
        assert_eq!(n(3), Some(2), "the non-UTF-8 line is skipped");
        assert_eq!(n(1), Some(1), "the first line, across the block boundary");
        assert_eq!(n(0), None);
        assert_eq!(
            find_last(&dir.path().join("none"), |_| Some(1)).unwrap(),
            None
        );
    }
}
