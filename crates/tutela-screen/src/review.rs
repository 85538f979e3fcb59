//! The manual-review file: `review.csv` holds the drawn sample with an empty `verdict`
//! column; a reviewer writes `pass` or `fail` (also `ok`/`bad`, `1`/`0`, `合格`/`不合格`) in it;
//! [`score`] reads it back and applies the TC260-003 9.2 a) gate (≥ 4,000 at ≥ 96 %).

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ScreenError;
use crate::stats::{self, GateResult};
use crate::summary::SampleItem;

/// The columns of `review.csv`, in order.
pub const COLUMNS: [&str; 10] = [
    "item", "verdict", "note", "key", "source", "file", "line", "screen", "reasons", "text",
];

/// Writes the sample as CSV (RFC 4180 quoting).
pub fn write_review_csv(path: &Path, sample: &[SampleItem]) -> Result<(), ScreenError> {
    let mut s = String::new();
    s.push_str(&COLUMNS.join(","));
    s.push_str("\r\n");
    for (i, it) in sample.iter().enumerate() {
        let fields = [
            (i + 1).to_string(),
            String::new(),
            String::new(),
            it.key.clone(),
            it.source.clone(),
            it.file.clone(),
            it.line.to_string(),
            it.screen.clone(),
            it.reasons.join(" "),
            it.text.clone(),
        ];
        for (j, f) in fields.iter().enumerate() {
            if j > 0 {
                s.push(',');
            }
            push_field(&mut s, f);
        }
        s.push_str("\r\n");
    }
    fs::write(path, s).map_err(|e| ScreenError::io(path, e))
}

fn push_field(s: &mut String, f: &str) {
    if f.contains([',', '"', '\n', '\r']) {
        s.push('"');
        s.push_str(&f.replace('"', "\"\""));
        s.push('"');
    } else {
        s.push_str(f);
    }
}

/// A CSV record and the line it starts on.
pub type CsvRow = (u64, Vec<String>);

/// Parses CSV text into records; the error names the line where a quoted field never ends.
pub fn parse_csv(text: &str) -> Result<Vec<CsvRow>, (u64, String)> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut line = 1u64;
    let mut row_line = 1u64;
    let mut quoted = false;
    let mut at_start = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            ',' => {
                row.push(std::mem::take(&mut field));
                at_start = true;
            }
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                if !(row.len() == 1 && row[0].is_empty()) {
                    rows.push((row_line, std::mem::take(&mut row)));
                }
                row.clear();
                line += 1;
                row_line = line;
                at_start = true;
            }
            _ => {
                field.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err((row_line, "a quoted field is never closed".into()));
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push((row_line, row));
    }
    Ok(rows)
}

/// The score of a filled-in review file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewScore {
    /// Rows in the file.
    pub rows: u64,
    /// Rows with a verdict.
    pub judged: u64,
    /// Judged `pass`.
    pub passed: u64,
    /// Judged `fail`.
    pub failed: u64,
    /// Rows left empty (they do not count; the gate needs 4,000 judged).
    pub unjudged: u64,
    /// Of the judged rows the screen kept: how many passed, out of how many (the quality
    /// of what the screen lets through).
    pub kept_passed: u64,
    /// Judged rows the screen kept.
    pub kept_judged: u64,
    /// TC260-003 9.2 a) on all judged rows.
    pub gate: GateResult,
}

fn verdict(s: &str) -> Option<Option<bool>> {
    match s.trim().to_lowercase().as_str() {
        "" => Some(None),
        "pass" | "ok" | "1" | "y" | "yes" | "合格" | "通过" => Some(Some(true)),
        "fail" | "bad" | "0" | "n" | "no" | "不合格" | "不通过" => Some(Some(false)),
        _ => None,
    }
}

/// Scores a filled-in `review.csv`; an unknown verdict is an error with its line.
pub fn score(path: &Path) -> Result<ReviewScore, ScreenError> {
    let text = fs::read_to_string(path).map_err(|e| ScreenError::io(path, e))?;
    let ferr = |line: u64, message: String| ScreenError::Format {
        path: path.display().to_string(),
        line,
        message,
    };
    let rows = parse_csv(text.trim_start_matches('\u{feff}')).map_err(|(l, m)| ferr(l, m))?;
    let mut it = rows.into_iter();
    let Some((_, header)) = it.next() else {
        return Err(ferr(1, "empty file".into()));
    };
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(vcol), Some(scol)) = (col("verdict"), col("screen")) else {
        return Err(ferr(
            1,
            "the header needs the columns `verdict` and `screen`".into(),
        ));
    };
    let (mut n, mut passed, mut failed, mut unjudged, mut kp, mut kj) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    for (line, row) in it {
        n += 1;
        let v = row.get(vcol).map(String::as_str).unwrap_or("");
        let Some(v) = verdict(v) else {
            return Err(ferr(line, format!("verdict `{v}` is not pass or fail")));
        };
        let kept = row.get(scol).is_some_and(|s| s == "kept");
        match v {
            None => unjudged += 1,
            Some(ok) => {
                if ok {
                    passed += 1;
                } else {
                    failed += 1;
                }
                if kept {
                    kj += 1;
                    if ok {
                        kp += 1;
                    }
                }
            }
        }
    }
    let judged = passed + failed;
    Ok(ReviewScore {
        rows: n,
        judged,
        passed,
        failed,
        unjudged,
        kept_passed: kp,
        kept_judged: kj,
        gate: stats::corpus_manual_gate().apply(passed, judged),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trip() {
        let rows = parse_csv("a,b,c\r\n1,\"x, \"\"y\"\"\nz\",\r\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].1, vec!["1", "x, \"y\"\nz", ""]);
        assert!(parse_csv("a,\"b\n").is_err());
    }
}
