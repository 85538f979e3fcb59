//! Corpus readers: JSONL (plain, gzip, zstd) and Parquet, each yielding records as JSON text
//! lines with their 1-based line (or row) number, in batches of bounded size.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
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
    /// The records' bytes (JSON text, without the newline).
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
        /// The decompressed stream.
        reader: Box<dyn BufRead + Send>,
        /// The last line number read.
        line: u64,
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
        let reader: Box<dyn BufRead + Send> = match Format::of(path) {
            Format::Jsonl => Box::new(BufReader::with_capacity(BUF, counted)),
            Format::JsonlGz => Box::new(BufReader::with_capacity(
                BUF,
                flate2::read::MultiGzDecoder::new(BufReader::with_capacity(BUF, counted)),
            )),
            Format::JsonlZst => Box::new(BufReader::with_capacity(
                BUF,
                zstd::stream::read::Decoder::new(counted).map_err(|e| ScreenError::io(path, e))?,
            )),
            Format::Parquet => return open_parquet(path, counted),
        };
        Ok(RecordReader::Lines { reader, line: 0 })
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
            RecordReader::Lines { reader, line } => {
                while out.data.len() < max_bytes && n < max_records {
                    let start = out.data.len();
                    let read = reader
                        .read_until(b'\n', &mut out.data)
                        .map_err(|e| format!("read error after line {line}: {e}"))?;
                    if read == 0 {
                        break;
                    }
                    *line += 1;
                    n += 1;
                    out.raw_bytes += read as u64;
                    let mut end = out.data.len();
                    if end > start && out.data[end - 1] == b'\n' {
                        end -= 1;
                        if end > start && out.data[end - 1] == b'\r' {
                            end -= 1;
                        }
                    }
                    out.data.truncate(end);
                    out.lines.push((*line, start, end));
                }
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
