//! Corpus readers: JSONL (plain, gzip, zstd) and Parquet, each yielding records as JSON text
//! lines with their 1-based line (or row) number, in batches of bounded size.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ScreenError;

/// How a file is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// JSONL, gzip-compressed (`.gz`).
    JsonlGz,
    /// JSONL, zstd-compressed (`.zst`, `.zstd`).
    JsonlZst,
    /// Apache Parquet (`.parquet`), each row turned into a JSON object.
    Parquet,
}

impl Format {
    /// The format a path's name says.
    pub fn of(path: &Path) -> Format {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if name.ends_with(".gz") {
            Format::JsonlGz
        } else if name.ends_with(".zst") || name.ends_with(".zstd") {
            Format::JsonlZst
        } else if name.ends_with(".parquet") {
            Format::Parquet
        } else {
            Format::Jsonl
        }
    }
}

/// Expands directories (recursively, sorted by path) into the corpus files they hold;
/// files given by name are kept in the order given.
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, ScreenError> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found)?;
            found.sort();
            out.extend(found);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(ScreenError::Input {
                path: p.display().to_string(),
                message: "no such file or directory".into(),
            });
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ScreenError> {
    let rd = std::fs::read_dir(dir).map_err(|e| ScreenError::io(dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| ScreenError::io(dir, e))?;
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            let known = [
                ".jsonl", ".json", ".ndjson", ".gz", ".zst", ".zstd", ".parquet",
            ];
            if known.iter().any(|k| name.ends_with(k)) {
                out.push(path);
            }
        }
    }
    Ok(())
}

/// A reader that counts the bytes it passes on (compressed bytes, for the progress bar).
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A batch of records from one file: their text back to back, and per record its line
/// number and byte range in `data`.
#[derive(Debug, Default)]
pub struct Records {
    /// The records' bytes (JSON text), each followed by its line ending, which is outside
    /// the record's range.
    pub data: Vec<u8>,
    /// `(line, start, end)` per record.
    pub lines: Vec<(u64, usize, usize)>,
    /// Raw bytes read from the (decompressed) file for these records, newlines included.
    pub raw_bytes: u64,
}

impl Records {
    /// Empty, with room for a batch of about `bytes` bytes (so that filling it does not
    /// copy it over and over as it grows).
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            data: Vec::with_capacity(bytes + (64 << 10)),
            lines: Vec::with_capacity(bytes / 256 + 16),
            raw_bytes: 0,
        }
    }

    fn clear(&mut self) {
        self.data.clear();
        self.lines.clear();
        self.raw_bytes = 0;
    }
}

/// A source of records from one file.
pub enum RecordReader {
    /// JSONL in any compression.
    Lines {
        /// The decompressed stream (read straight into the batches, in large reads).
        reader: Box<dyn Read + Send>,
        /// The last line number read.
        line: u64,
        /// Bytes read past the last line handed out (the start of the next line).
        pending: Vec<u8>,
        /// The stream has ended.
        eof: bool,
    },
    /// Parquet rows.
    #[cfg(feature = "parquet")]
    Parquet {
        /// Rows as JSON values, or the error reading them.
        rows: Box<dyn Iterator<Item = Result<String, String>> + Send>,
        /// The last row number read.
        line: u64,
    },
}

impl RecordReader {
    /// Opens `path`; `count` receives the number of stored bytes read.
    pub fn open(path: &Path, count: Arc<AtomicU64>) -> Result<Self, ScreenError> {
        let file = File::open(path).map_err(|e| ScreenError::io(path, e))?;
        let counted = Counting { inner: file, count };
        const BUF: usize = 1 << 20;
        let reader: Box<dyn Read + Send> = match Format::of(path) {
            Format::Jsonl => Box::new(counted),
            Format::JsonlGz => Box::new(flate2::read::MultiGzDecoder::new(
                BufReader::with_capacity(BUF, counted),
            )),
            Format::JsonlZst => Box::new(
                zstd::stream::read::Decoder::new(counted).map_err(|e| ScreenError::io(path, e))?,
            ),
            Format::Parquet => return open_parquet(path, counted),
        };
        Ok(RecordReader::Lines {
            reader,
            line: 0,
            pending: Vec::new(),
            eof: false,
        })
    }

    /// Skips `n` records (resumption).
    pub fn skip(&mut self, n: u64) -> Result<(), String> {
        let mut batch = Records::default();
        let mut left = n;
        while left > 0 {
            batch.clear();
            let got = self.next_batch_limited(&mut batch, 1 << 22, left)?;
            if got == 0 {
                break;
            }
            left -= got;
        }
        Ok(())
    }

    /// Reads records into `out` (cleared first) until about `max_bytes`; returns how many
    /// records were read (0 at the end).
    pub fn next_batch(&mut self, out: &mut Records, max_bytes: usize) -> Result<u64, String> {
        out.clear();
        self.next_batch_limited(out, max_bytes, u64::MAX)
    }

    fn next_batch_limited(
        &mut self,
        out: &mut Records,
        max_bytes: usize,
        max_records: u64,
    ) -> Result<u64, String> {
        let mut n = 0u64;
        match self {
            RecordReader::Lines {
                reader,
                line,
                pending,
                eof,
            } => {
                // Lines are cut in place in `out.data` (newlines stay in it, outside the
                // records' ranges); what follows the last line handed out waits in `pending`.
                let base = out.data.len();
                out.data.append(pending);
                let mut cut = base;
                loop {
                    while n < max_records && cut - base < max_bytes {
                        let Some(nl) = memchr::memchr(b'\n', &out.data[cut..]) else {
                            break;
                        };
                        let start = cut;
                        let mut end = cut + nl;
                        cut = end + 1;
                        if end > start && out.data[end - 1] == b'\r' {
                            end -= 1;
                        }
                        *line += 1;
                        n += 1;
                        out.raw_bytes += (cut - start) as u64;
                        out.lines.push((*line, start, end));
                    }
                    if n >= max_records || cut - base >= max_bytes {
                        break;
                    }
                    if *eof {
                        // A last line without a newline.
                        if cut < out.data.len() {
                            let start = cut;
                            let end = out.data.len();
                            cut = end;
                            *line += 1;
                            n += 1;
                            out.raw_bytes += (cut - start) as u64;
                            out.lines.push((*line, start, end));
                        }
                        break;
                    }
                    // Up to the batch size (a little more, for the line that crosses it).
                    let want = (base + max_bytes)
                        .saturating_sub(out.data.len())
                        .max(64 << 10);
                    let got = reader
                        .by_ref()
                        .take(want as u64)
                        .read_to_end(&mut out.data)
                        .map_err(|e| format!("read error after line {line}: {e}"))?;
                    if got == 0 {
                        *eof = true;
                    }
                }
                pending.extend_from_slice(&out.data[cut..]);
                out.data.truncate(cut);
            }
            #[cfg(feature = "parquet")]
            RecordReader::Parquet { rows, line } => {
                while out.data.len() < max_bytes && n < max_records {
                    let Some(row) = rows.next() else { break };
                    *line += 1;
                    n += 1;
                    let start = out.data.len();
                    match row {
                        Ok(json) => out.data.extend_from_slice(json.as_bytes()),
                        // A row that cannot be read becomes a line that is not JSON, so it
                        // is reported as malformed with its row number.
                        Err(e) => out
                            .data
                            .extend_from_slice(format!("\u{0}parquet row error: {e}").as_bytes()),
                    }
                    out.raw_bytes += (out.data.len() - start) as u64 + 1;
                    out.lines.push((*line, start, out.data.len()));
                }
            }
        }
        Ok(n)
    }
}

#[cfg(feature = "parquet")]
fn open_parquet(path: &Path, counted: Counting<File>) -> Result<RecordReader, ScreenError> {
    use parquet::file::reader::SerializedFileReader;
    // The Parquet footer needs random access, so the file is reopened; the count is
    // advanced by the file size up front.
    let file = counted.inner;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    counted.count.fetch_add(len, Ordering::Relaxed);
    let reader = SerializedFileReader::new(file).map_err(|e| ScreenError::Input {
        path: path.display().to_string(),
        message: format!("not a readable Parquet file: {e}"),
    })?;
    let rows = reader.into_iter().map(|r| {
        r.map(|row| row.to_json_value().to_string())
            .map_err(|e| e.to_string())
    });
    Ok(RecordReader::Parquet {
        rows: Box::new(rows),
        line: 0,
    })
}

#[cfg(not(feature = "parquet"))]
fn open_parquet(path: &Path, _counted: Counting<File>) -> Result<RecordReader, ScreenError> {
    Err(ScreenError::Input {
        path: path.display().to_string(),
        message: "this build has no Parquet support (feature `parquet`)".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reader(data: Vec<u8>) -> RecordReader {
        RecordReader::Lines {
            reader: Box::new(std::io::Cursor::new(data)),
            line: 0,
            pending: Vec::new(),
            eof: false,
        }
    }

    /// Lines as `BufRead::read_until` cuts them: without `\n` and a `\r` before it.
    fn reference(data: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut rest = data;
        let mut n = 0;
        while !rest.is_empty() {
            n += 1;
            let (mut l, r) = match rest.iter().position(|&c| c == b'\n') {
                Some(i) => (&rest[..=i], &rest[i + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            if let Some(x) = l.strip_suffix(b"\n") {
                l = x.strip_suffix(b"\r").unwrap_or(x);
            }
            out.push((n, l.to_vec()));
            rest = r;
        }
        out
    }

    proptest! {
        #[test]
        fn batches_cut_lines_like_read_until(
            lines in proptest::collection::vec("[a-z\r]{0,40}", 0..60),
            newline_at_end in any::<bool>(),
            batch in 1usize..200,
            skip in 0u64..10,
        ) {
            let mut data = lines.join("\n").into_bytes();
            if newline_at_end && !data.is_empty() {
                data.push(b'\n');
            }
            let want = reference(&data);
            let mut r = reader(data.clone());
            r.skip(skip).unwrap();
            let mut got = Vec::new();
            let mut raw = 0;
            let mut recs = Records::default();
            while r.next_batch(&mut recs, batch).unwrap() > 0 {
                raw += recs.raw_bytes;
                for &(n, s, e) in &recs.lines {
                    got.push((n, recs.data[s..e].to_vec()));
                }
            }
            let skipped = want.iter().take(skip as usize).map(|(_, l)| l.len()).sum::<usize>();
            prop_assert_eq!(&got[..], &want[want.len().min(skip as usize)..]);
            prop_assert!(raw as usize <= data.len() - skipped.min(data.len()));
            if skip == 0 {
                prop_assert_eq!(raw as usize, data.len());
            }
        }
    }
}
