//! The screening pipeline: one reader thread (decompresses, cuts batches of lines), one worker
//! per core (parses, runs the detectors, rule packs and PII scanner), and the calling thread
//! as the writer (puts batches back in order, writes kept and removed shards, checkpoints).
//! Channels are bounded, so memory is bounded by about `2 × threads × batch_bytes`.
//!
//! Output directory:
//! - `kept/<source>/<NNNNN>-<file>.jsonl`: kept lines, verbatim (Parquet rows as JSON);
//! - `removed/<NNNNN>-<file>.jsonl`: `{"key","source","file","line","reasons":[...],"record":...}`;
//! - `malformed.jsonl`: every line that could not be screened, with file, line and error;
//! - `checkpoint.json`: finished files, the position in the current one and the totals so far;
//! - `summary.json`, `summary.html`, `review.csv` at the end.
//!
//! Sides: a corpus teaches the model what to say, so every document is read as assistant
//! text: the assistant-side detectors (encourages self-harm, sexual, denies being an AI,
//! solicits secrets, isolating, ...) and the rule-pack categories for the assistant side are
//! violations. With `user_side`, the user-side detectors also run: built-in ones are counted
//! as tags (a post about feeling low is not a violation), rule-pack categories for the user
//! side are violations. The assistant-side detectors of the 2027 US laws (`claims_therapist`,
//! `gamification`, [`crate::laws`]) name no TC260-003 risk: their documents are removed and
//! counted apart (`other_laws`), never as violations.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tutela_detect::{Detectors, Tiers};
use tutela_types::{DetectorId, Severity, Side};

use crate::doc::{self, Fields};
use crate::error::ScreenError;
use crate::input::{RecordReader, Records};
use crate::laws;
use crate::pii;
use crate::sample;
use crate::summary::{Accum, Malformed, Report, SampleItem, SampleSet, SourceStats};

/// How to screen.
#[derive(Clone, Debug)]
pub struct ScreenConfig {
    /// Every input file of the whole corpus, in a stable order (shards pick from this list).
    pub inputs: Vec<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// Field names.
    pub fields: Fields,
    /// Seed of the manual sample.
    pub seed: u64,
    /// `(k, n)`: this run screens the files whose position `i` has `i % n == k - 1`.
    pub shard: Option<(u32, u32)>,
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// Manual sample size (TC260-003 9.2 a) asks for ≥ 4,000).
    pub manual_sample: usize,
    /// Findings below this severity are not violations.
    pub min_severity: Severity,
    /// Also run the user-side detectors (built-in ones as tags).
    pub user_side: bool,
    /// The detection tiers that screen (the lexical tier by default: exact, explainable by
    /// span, and at corpus speed; `tutela screen --semantic` adds the learned tiers).
    pub tiers: Tiers,
    /// Remove documents with personal information (otherwise only count them).
    pub remove_pii: bool,
    /// Show a progress bar on stderr (only drawn when stderr is a terminal).
    pub progress: bool,
    /// Bytes per batch handed to a worker.
    pub batch_bytes: usize,
    /// Write a checkpoint after about this many input bytes (and at the end), but never
    /// after less input than `checkpoint_ratio` times the size of the last checkpoint: it
    /// holds the review sample's texts (4,000 of them by default), and checkpoints should
    /// stay a small share of the work.
    pub checkpoint_bytes: u64,
    /// See `checkpoint_bytes` (64 by default: with 4,000 sample texts of 1 kB, a checkpoint
    /// after every 256 MB of input).
    pub checkpoint_ratio: u64,
    /// Names and hashes of the rule packs, so a resumed run checks it uses the same ones.
    pub rules_fingerprint: String,
    /// Test hook: stop with [`ScreenError::Interrupted`] after writing this many batches
    /// (and without a final checkpoint), as a killed process would.
    pub stop_after_batches: Option<u64>,
}

impl ScreenConfig {
    /// Defaults for everything but inputs and output.
    pub fn new(inputs: Vec<PathBuf>, out: PathBuf) -> Self {
        Self {
            inputs,
            out,
            fields: Fields::default(),
            seed: 260_003,
            shard: None,
            threads: 0,
            manual_sample: 4000,
            min_severity: Severity::Medium,
            user_side: false,
            tiers: Tiers::LEXICAL,
            remove_pii: true,
            progress: true,
            batch_bytes: 1 << 20,
            checkpoint_bytes: 64 << 20,
            checkpoint_ratio: 64,
            rules_fingerprint: String::new(),
            stop_after_batches: None,
        }
    }

    fn fingerprint(&self) -> String {
        let inputs: Vec<String> = self
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        format!(
            "fields={}/{}/{} seed={} shard={:?} k={} sev={:?} user={} pii={} rules={} inputs={}",
            self.fields.text,
            self.fields.source,
            self.fields.id,
            self.seed,
            self.shard,
            self.manual_sample,
            self.min_severity,
            self.user_side,
            self.remove_pii,
            self.rules_fingerprint,
            sample::hash_str(0, &inputs.join("\n"))
        )
    }

    fn settings(&self) -> BTreeMap<String, String> {
        let mut s = BTreeMap::new();
        s.insert("text_field".into(), self.fields.text.clone());
        s.insert("source_field".into(), self.fields.source.clone());
        s.insert("id_field".into(), self.fields.id.clone());
        s.insert(
            "sides".into(),
            if self.user_side {
                "assistant (violations) + user (tags)"
            } else {
                "assistant"
            }
            .into(),
        );
        s.insert(
            "min_severity".into(),
            format!("{:?}", self.min_severity).to_lowercase(),
        );
        s.insert(
            "pii".into(),
            if self.remove_pii { "remove" } else { "count" }.into(),
        );
        s.insert("rules".into(), self.rules_fingerprint.clone());
        s.insert(
            "shard".into(),
            self.shard
                .map_or_else(|| "all".to_owned(), |(k, n)| format!("{k}/{n}")),
        );
        s
    }

    fn selected(&self) -> Vec<(u64, PathBuf)> {
        self.inputs
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                self.shard
                    .is_none_or(|(k, n)| (*i as u64) % u64::from(n) == u64::from(k) - 1)
            })
            .map(|(i, p)| (i as u64, p.clone()))
            .collect()
    }
}

/// Where a resumed run picks up.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Checkpoint {
    fingerprint: String,
    done: BTreeSet<u64>,
    current: Option<Partial>,
    malformed_len: u64,
    accum: Accum,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Partial {
    file_index: u64,
    records: u64,
    /// Output file (relative to the output dir) → length at the checkpoint.
    outputs: BTreeMap<String, u64>,
}

/// Batch buffers handed back for reuse, from the writer (which writes the kept lines
/// straight out of them) to the reader. There are never more of them than batches in flight;
/// reusing them spares the allocator and the page faults of a fresh megabyte per batch.
#[derive(Default)]
struct Recycle {
    records: Mutex<Vec<Records>>,
}

impl Recycle {
    fn records(&self, batch_bytes: usize) -> Records {
        self.records
            .lock()
            .ok()
            .and_then(|mut v| v.pop())
            .unwrap_or_else(|| Records::with_capacity(batch_bytes))
    }

    fn give_records(&self, r: Records) {
        if let Ok(mut v) = self.records.lock() {
            v.push(r);
        }
    }
}

/// A piece of a kept shard: bytes of the batch (kept lines with their `\n`, back to back),
/// or a `\n` the batch lacks (a line ending in `\r\n`, a last line without one).
#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Bytes(usize, usize),
    Newline,
}

struct Batch {
    seq: u64,
    file_index: u64,
    file_name: String,
    last: bool,
    records: Records,
}

struct Output {
    seq: u64,
    file_index: u64,
    last: bool,
    nrecords: u64,
    /// The batch, whose bytes the kept pieces point into.
    records: Records,
    /// Per source, the kept lines as pieces of `records.data`.
    kept: BTreeMap<String, Vec<Piece>>,
    removed: Vec<u8>,
    malformed: Vec<u8>,
    accum: Accum,
}

/// A file-system-safe directory name for a source.
pub fn source_slug(source: &str) -> String {
    let clean: String = source
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean == source && !clean.is_empty() && !clean.starts_with('.') {
        clean
    } else {
        format!(
            "{}-{:08x}",
            clean.trim_start_matches('.'),
            sample::hash_str(0, source) as u32
        )
    }
}

fn file_stem(index: u64, path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = name
        .trim_end_matches(".gz")
        .trim_end_matches(".zst")
        .trim_end_matches(".zstd")
        .trim_end_matches(".parquet")
        .trim_end_matches(".jsonl")
        .trim_end_matches(".ndjson")
        .trim_end_matches(".json");
    format!("{index:05}-{}.jsonl", source_slug(base))
}

/// Screens the corpus; returns the report (also written to the output directory).
pub fn run(cfg: &ScreenConfig, det: &Detectors) -> Result<Report, ScreenError> {
    let out = &cfg.out;
    fs::create_dir_all(out.join("kept")).map_err(|e| ScreenError::io(out, e))?;
    fs::create_dir_all(out.join("removed")).map_err(|e| ScreenError::io(out, e))?;
    let ck_path = out.join("checkpoint.json");
    let fingerprint = cfg.fingerprint();
    let mut ck = if ck_path.exists() {
        let text = fs::read_to_string(&ck_path).map_err(|e| ScreenError::io(&ck_path, e))?;
        let ck: Checkpoint = serde_json::from_str(&text).map_err(|e| ScreenError::Format {
            path: ck_path.display().to_string(),
            line: e.line() as u64,
            message: e.to_string(),
        })?;
        if ck.fingerprint != fingerprint {
            return Err(ScreenError::Config(format!(
                "{} holds a run with other settings or inputs; use a new --out directory",
                out.display()
            )));
        }
        ck
    } else {
        if fs::read_dir(out.join("kept"))
            .map_err(|e| ScreenError::io(out, e))?
            .next()
            .is_some()
        {
            return Err(ScreenError::Config(format!(
                "{} already has output but no checkpoint; use a new --out directory",
                out.display()
            )));
        }
        // Written before any output, so that a run killed before its first checkpoint
        // resumes (from nothing) instead of finding output it does not know.
        let ck = Checkpoint {
            fingerprint: fingerprint.clone(),
            ..Checkpoint::default()
        };
        write_json_atomic(&ck_path, &ck)?;
        ck
    };
    restore_outputs(out, &ck)?;

    let selected: Vec<(u64, PathBuf)> = cfg
        .selected()
        .into_iter()
        .filter(|(i, _)| !ck.done.contains(i))
        .collect();
    let skip_first = ck.current.as_ref().map(|p| (p.file_index, p.records));
    let total_bytes: u64 = selected
        .iter()
        .map(|(_, p)| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    let threads = if cfg.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        cfg.threads
    };
    let read_count = Arc::new(AtomicU64::new(0));
    let threshold = Arc::new(AtomicU64::new(ck.accum.sample_threshold(cfg.manual_sample)));
    let reader_error: Mutex<Option<ScreenError>> = Mutex::new(None);
    let bar = progress_bar(cfg.progress, total_bytes);

    let (batch_tx, batch_rx) = sync_channel::<Batch>(threads * 2);
    let batch_rx = Arc::new(Mutex::new(batch_rx));
    // Only the workers hold the receiver, so a writer that stops early unblocks the reader.
    let worker_rxs: Vec<Arc<Mutex<Receiver<Batch>>>> =
        (0..threads).map(|_| batch_rx.clone()).collect();
    drop(batch_rx);
    let (out_tx, out_rx) = sync_channel::<Output>(threads * 2);
    let recycle = Recycle::default();
    let recycle = &recycle;

    let result = std::thread::scope(|scope| {
        let read_count2 = read_count.clone();
        let reader_error = &reader_error;
        let selected = &selected;
        scope.spawn(move || {
            if let Err(e) = read_all(cfg, selected, skip_first, read_count2, &batch_tx, recycle)
                && let Ok(mut slot) = reader_error.lock()
            {
                *slot = Some(e);
            }
        });
        for rx in worker_rxs {
            let tx = out_tx.clone();
            let threshold = threshold.clone();
            scope.spawn(move || work(cfg, det, &rx, &tx, &threshold));
        }
        drop(out_tx);
        write_all(
            cfg,
            &mut ck,
            out_rx,
            &threshold,
            &read_count,
            bar.as_ref(),
            recycle,
        )
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    result?;
    if let Ok(mut slot) = reader_error.lock()
        && let Some(e) = slot.take()
    {
        return Err(e);
    }
    finish(cfg, &ck)
}

fn progress_bar(wanted: bool, total: u64) -> Option<indicatif::ProgressBar> {
    if !wanted {
        return None;
    }
    crate::progress::bar(
        total,
        "{elapsed_precise} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} · {msg}",
    )
}

/// Puts the output files back to the state of the checkpoint: files of unfinished inputs
/// are deleted, except those of the current input, which are cut to their recorded length.
fn restore_outputs(out: &Path, ck: &Checkpoint) -> Result<(), ScreenError> {
    let keep: BTreeMap<String, u64> = ck
        .current
        .as_ref()
        .map(|p| p.outputs.clone())
        .unwrap_or_default();
    let mut files = Vec::new();
    for dir in ["kept", "removed"] {
        collect_files(&out.join(dir), &mut files)?;
    }
    for f in files {
        let rel = f
            .strip_prefix(out)
            .unwrap_or(&f)
            .to_string_lossy()
            .replace('\\', "/");
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let index: Option<u64> = name.get(..5).and_then(|s| s.parse().ok());
        if index.is_some_and(|i| ck.done.contains(&i)) {
            continue;
        }
        match keep.get(&rel) {
            Some(&len) => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&f)
                    .map_err(|e| ScreenError::io(&f, e))?;
                file.set_len(len).map_err(|e| ScreenError::io(&f, e))?;
            }
            None => fs::remove_file(&f).map_err(|e| ScreenError::io(&f, e))?,
        }
    }
    let m = out.join("malformed.jsonl");
    if m.exists() {
        let file = OpenOptions::new()
            .write(true)
            .open(&m)
            .map_err(|e| ScreenError::io(&m, e))?;
        file.set_len(ck.malformed_len)
            .map_err(|e| ScreenError::io(&m, e))?;
    }
    Ok(())
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ScreenError> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in fs::read_dir(dir).map_err(|e| ScreenError::io(dir, e))? {
        let p = entry.map_err(|e| ScreenError::io(dir, e))?.path();
        if p.is_dir() {
            collect_files(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

fn read_all(
    cfg: &ScreenConfig,
    selected: &[(u64, PathBuf)],
    skip_first: Option<(u64, u64)>,
    count: Arc<AtomicU64>,
    tx: &SyncSender<Batch>,
    recycle: &Recycle,
) -> Result<(), ScreenError> {
    let mut seq = 0u64;
    for (index, path) in selected {
        let file_name = path.display().to_string();
        let mut reader = RecordReader::open(path, count.clone())?;
        if let Some((fi, n)) = skip_first
            && fi == *index
        {
            reader.skip(n).map_err(|message| ScreenError::Input {
                path: file_name.clone(),
                message,
            })?;
        }
        loop {
            let mut records = recycle.records(cfg.batch_bytes);
            let n = reader
                .next_batch(&mut records, cfg.batch_bytes)
                .map_err(|message| ScreenError::Input {
                    path: file_name.clone(),
                    message,
                })?;
            let last = n == 0;
            let batch = Batch {
                seq,
                file_index: *index,
                file_name: file_name.clone(),
                last,
                records,
            };
            seq += 1;
            if tx.send(batch).is_err() {
                return Ok(());
            }
            if last {
                break;
            }
        }
    }
    Ok(())
}

fn work(
    cfg: &ScreenConfig,
    det: &Detectors,
    rx: &Mutex<Receiver<Batch>>,
    tx: &SyncSender<Output>,
    threshold: &AtomicU64,
) {
    let mut pii_hits = Vec::new();
    loop {
        let batch = {
            let Ok(guard) = rx.lock() else { return };
            match guard.recv() {
                Ok(b) => b,
                Err(_) => return,
            }
        };
        let out = screen_batch(
            cfg,
            det,
            batch,
            threshold.load(Ordering::Relaxed),
            &mut pii_hits,
        );
        if tx.send(out).is_err() {
            return;
        }
    }
}

#[derive(Serialize)]
struct Reason<'a> {
    reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    severity: Option<Severity>,
    start: usize,
    end: usize,
}

#[derive(Serialize)]
struct RemovedHead<'a> {
    key: &'a str,
    source: &'a str,
    file: &'a str,
    line: u64,
    reasons: &'a [Reason<'a>],
}

fn detector_reason(d: &DetectorId) -> String {
    if d.is_builtin() {
        format!("detector:{d}")
    } else {
        format!("rules:{d}")
    }
}

fn screen_batch(
    cfg: &ScreenConfig,
    det: &Detectors,
    batch: Batch,
    threshold: u64,
    pii_hits: &mut Vec<pii::PiiHit>,
) -> Output {
    let mut acc = Accum::default();
    let mut kept: BTreeMap<String, Vec<Piece>> = BTreeMap::new();
    let mut removed = Vec::new();
    let mut malformed = Vec::new();
    let recs = &batch.records;
    let base_name = Path::new(&batch.file_name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    acc.raw_bytes = recs.raw_bytes;
    acc.lines = recs.lines.len() as u64;
    if batch.last {
        acc.files = 1;
    }
    for &(line, s, e) in &recs.lines {
        let raw = &recs.data[s..e];
        if raw.iter().all(u8::is_ascii_whitespace) {
            acc.blank += 1;
            continue;
        }
        let d = match doc::extract(raw, &cfg.fields) {
            Ok(d) => d,
            Err(error) => {
                let error = if raw.first() == Some(&0) {
                    String::from_utf8_lossy(&raw[1..]).into_owned()
                } else {
                    error
                };
                let m = Malformed {
                    file_index: batch.file_index,
                    file: batch.file_name.clone(),
                    line,
                    error,
                };
                if serde_json::to_writer(&mut malformed, &m).is_ok() {
                    malformed.push(b'\n');
                }
                acc.malformed += 1;
                acc.malformed_examples.push(m);
                continue;
            }
        };
        let source: &str = d.source.as_deref().unwrap_or(&base_name);
        let key: Cow<'_, str> =
            d.id.unwrap_or_else(|| Cow::Owned(format!("{base_name}:{line}")));
        let text: &str = &d.text;
        let mut reasons: Vec<Reason<'_>> = Vec::new();
        let findings = det.scan_tiers(Side::Assistant, text, None, cfg.tiers);
        let mut user_findings = Vec::new();
        if cfg.user_side {
            user_findings = det.scan_tiers(Side::User, text, None, cfg.tiers);
        }
        let mut violation = false;
        let mut other_law = false;
        for f in findings
            .iter()
            .chain(user_findings.iter().filter(|f| !f.detector.is_builtin()))
        {
            if f.severity < cfg.min_severity {
                continue;
            }
            if laws::other_law(&f.detector) {
                other_law = true;
            } else {
                violation = true;
            }
            let span = f
                .spans
                .first()
                .copied()
                .unwrap_or(tutela_types::Span { start: 0, end: 0 });
            reasons.push(Reason {
                reason: detector_reason(&f.detector),
                rule: f.rule.as_deref(),
                severity: Some(f.severity),
                start: span.start,
                end: span.end,
            });
        }
        let mut tags: BTreeSet<&str> = BTreeSet::new();
        for f in user_findings
            .iter()
            .filter(|f| f.detector.is_builtin() && f.severity >= cfg.min_severity)
        {
            tags.insert(f.detector.as_str());
        }
        for t in tags {
            count(&mut acc.tags, t);
        }
        pii_hits.clear();
        pii::scan_into(text, pii_hits);
        let has_pii = !pii_hits.is_empty();
        for h in pii_hits.iter() {
            count(&mut acc.pii_hits, h.kind.as_str());
            reasons.push(Reason {
                reason: format!("pii:{}", h.kind.as_str()),
                rule: None,
                severity: None,
                start: h.start,
                end: h.end,
            });
        }
        let remove = violation || other_law || (has_pii && cfg.remove_pii);
        acc.docs += 1;
        let st: &mut SourceStats = match acc.sources.get_mut(source) {
            Some(st) => st,
            None => acc.sources.entry(source.to_owned()).or_default(),
        };
        st.docs += 1;
        st.text_bytes += text.len() as u64;
        let mut distinct: Vec<&str> = reasons.iter().map(|r| r.reason.as_str()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        for r in &distinct {
            count(&mut st.by_reason, r);
        }
        if violation {
            st.violations += 1;
            acc.violations += 1;
        }
        if other_law {
            st.other_laws += 1;
            acc.other_laws += 1;
        }
        if has_pii {
            st.pii_docs += 1;
            acc.pii_docs += 1;
        }
        if remove {
            st.removed += 1;
            acc.removed += 1;
            let head = RemovedHead {
                key: &key,
                source,
                file: &batch.file_name,
                line,
                reasons: &reasons,
            };
            if let Ok(mut v) = serde_json::to_vec(&head) {
                v.pop();
                removed.extend_from_slice(&v);
                removed.extend_from_slice(b",\"record\":");
                removed.extend_from_slice(raw);
                removed.extend_from_slice(b"}\n");
            }
        } else {
            acc.kept += 1;
            let pieces = match kept.get_mut(source) {
                Some(p) => p,
                None => kept.entry(source.to_owned()).or_default(),
            };
            // The line with its `\n` where the batch has one, joined to the line before
            // when that one ends right there.
            if recs.data.get(e) == Some(&b'\n') {
                match pieces.last_mut() {
                    Some(Piece::Bytes(_, end)) if *end == s => *end = e + 1,
                    _ => pieces.push(Piece::Bytes(s, e + 1)),
                }
            } else {
                pieces.push(Piece::Bytes(s, e));
                pieces.push(Piece::Newline);
            }
        }
        let h = sample::key_hash(cfg.seed, source, &key);
        if h <= threshold {
            acc.sample.push(SampleItem {
                hash: h,
                key: key.into_owned(),
                source: source.to_owned(),
                file: batch.file_name.clone(),
                line,
                screen: if remove { "removed" } else { "kept" }.into(),
                reasons: distinct.iter().map(|s| (*s).to_owned()).collect(),
                text: cut(text, 20_000).to_owned(),
            });
        }
    }
    Output {
        seq: batch.seq,
        file_index: batch.file_index,
        last: batch.last,
        nrecords: recs.lines.len() as u64,
        records: batch.records,
        kept,
        removed,
        malformed,
        accum: acc,
    }
}

/// Adds one to `key`'s count (allocating the key only the first time).
fn count(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut e = max;
    while !s.is_char_boundary(e) {
        e -= 1;
    }
    &s[..e]
}

/// Output files open for the current input file.
struct OpenFiles {
    file_index: u64,
    records: u64,
    files: BTreeMap<String, (BufWriter<File>, u64)>,
}

fn open_append(out: &Path, rel: &str) -> Result<(BufWriter<File>, u64), ScreenError> {
    let path = out.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| ScreenError::io(parent, e))?;
    }
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| ScreenError::io(&path, e))?;
    let len = f.metadata().map_err(|e| ScreenError::io(&path, e))?.len();
    Ok((BufWriter::with_capacity(256 << 10, f), len))
}

/// Appends `slices` to the output file `rel` (opened on first use), in one vectored write
/// (no copy) when they fill the file's buffer.
fn write_slices_to(
    out: &Path,
    open: &mut OpenFiles,
    rel: String,
    slices: &mut [IoSlice<'_>],
) -> Result<(), ScreenError> {
    let total: usize = slices.iter().map(|s| s.len()).sum();
    if total == 0 {
        return Ok(());
    }
    if !open.files.contains_key(&rel) {
        let w = open_append(out, &rel)?;
        open.files.insert(rel.clone(), w);
    }
    if let Some((w, len)) = open.files.get_mut(&rel) {
        let mut rest = slices;
        while !rest.is_empty() {
            let n = w
                .write_vectored(rest)
                .map_err(|e| ScreenError::io(&out.join(&rel), e))?;
            if n == 0 {
                return Err(ScreenError::io(
                    &out.join(&rel),
                    std::io::Error::from(std::io::ErrorKind::WriteZero),
                ));
            }
            IoSlice::advance_slices(&mut rest, n);
        }
        *len += total as u64;
    }
    Ok(())
}

fn write_to(out: &Path, open: &mut OpenFiles, rel: String, data: &[u8]) -> Result<(), ScreenError> {
    write_slices_to(out, open, rel, &mut [IoSlice::new(data)])
}

fn write_all(
    cfg: &ScreenConfig,
    ck: &mut Checkpoint,
    rx: Receiver<Output>,
    threshold: &AtomicU64,
    read_count: &AtomicU64,
    bar: Option<&indicatif::ProgressBar>,
    recycle: &Recycle,
) -> Result<(), ScreenError> {
    let out = &cfg.out;
    let names: BTreeMap<u64, String> = cfg
        .inputs
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u64, file_stem(i as u64, p)))
        .collect();
    let mpath = out.join("malformed.jsonl");
    let mut mal = open_append(out, "malformed.jsonl")?;
    let mut pending: BTreeMap<u64, Output> = BTreeMap::new();
    let mut next = 0u64;
    let mut open: Option<OpenFiles> = ck.current.as_ref().map(|p| OpenFiles {
        file_index: p.file_index,
        records: p.records,
        files: BTreeMap::new(),
    });
    let mut since_ck = 0u64;
    let mut ck_every = cfg.checkpoint_bytes;
    // The sample is kept apart while batches come in (see `SampleSet`).
    let mut sample = SampleSet::new(cfg.manual_sample, std::mem::take(&mut ck.accum.sample));
    let mut written_batches = 0u64;
    for o in rx {
        pending.insert(o.seq, o);
        while let Some(mut o) = pending.remove(&next) {
            next += 1;
            if open.as_ref().is_none_or(|f| f.file_index != o.file_index) {
                open = Some(OpenFiles {
                    file_index: o.file_index,
                    records: 0,
                    files: BTreeMap::new(),
                });
            }
            let Some(cur) = open.as_mut() else { continue };
            let stem = names.get(&o.file_index).cloned().unwrap_or_default();
            for (source, pieces) in std::mem::take(&mut o.kept) {
                let mut slices: Vec<IoSlice<'_>> = pieces
                    .iter()
                    .map(|p| match *p {
                        Piece::Bytes(s, e) => IoSlice::new(&o.records.data[s..e]),
                        Piece::Newline => IoSlice::new(b"\n"),
                    })
                    .collect();
                write_slices_to(
                    out,
                    cur,
                    format!("kept/{}/{stem}", source_slug(&source)),
                    &mut slices,
                )?;
            }
            recycle.give_records(std::mem::take(&mut o.records));
            write_to(out, cur, format!("removed/{stem}"), &o.removed)?;
            mal.0
                .write_all(&o.malformed)
                .map_err(|e| ScreenError::io(&mpath, e))?;
            mal.1 += o.malformed.len() as u64;
            cur.records += o.nrecords;
            since_ck += o.accum.raw_bytes;
            sample.add(std::mem::take(&mut o.accum.sample));
            ck.accum.merge(o.accum, cfg.manual_sample);
            threshold.store(sample.threshold(), Ordering::Relaxed);
            if let Some(bar) = bar {
                bar.set_position(read_count.load(Ordering::Relaxed));
                bar.set_message(format!(
                    "{} docs, {} removed",
                    ck.accum.docs, ck.accum.removed
                ));
            }
            written_batches += 1;
            if cfg.stop_after_batches.is_some_and(|n| written_batches >= n) {
                // Flush what was written, as the OS would for a killed process, but leave
                // the checkpoint behind.
                for (w, _) in cur.files.values_mut() {
                    let _ = w.flush();
                }
                let _ = mal.0.flush();
                return Err(ScreenError::Interrupted);
            }
            if o.last {
                for (rel, (w, _)) in cur.files.iter_mut() {
                    w.flush().map_err(|e| ScreenError::io(&out.join(rel), e))?;
                }
                ck.done.insert(o.file_index);
                ck.current = None;
                open = None;
                // A finished file not yet in a checkpoint is screened again on resume
                // (`restore_outputs` deletes its output).
                if since_ck >= ck_every {
                    ck_every = next_checkpoint(cfg, save_checkpoint(out, ck, &sample, &mut mal)?);
                    since_ck = 0;
                }
            } else if since_ck >= ck_every {
                let mut outputs = BTreeMap::new();
                for (rel, (w, len)) in cur.files.iter_mut() {
                    w.flush().map_err(|e| ScreenError::io(&out.join(rel), e))?;
                    outputs.insert(rel.clone(), *len);
                }
                ck.current = Some(Partial {
                    file_index: cur.file_index,
                    records: cur.records,
                    outputs,
                });
                ck_every = next_checkpoint(cfg, save_checkpoint(out, ck, &sample, &mut mal)?);
                since_ck = 0;
            }
        }
    }
    // The final checkpoint, when every file ended (after an error part of a file may be
    // written, and the last checkpoint stands).
    if open.is_none() && since_ck > 0 {
        save_checkpoint(out, ck, &sample, &mut mal)?;
    }
    ck.accum.sample = sample.into_vec();
    mal.0.flush().map_err(|e| ScreenError::io(&mpath, e))?;
    Ok(())
}

/// Input bytes to the next checkpoint, after one of `written` bytes (see
/// [`ScreenConfig::checkpoint_bytes`]).
fn next_checkpoint(cfg: &ScreenConfig, written: u64) -> u64 {
    cfg.checkpoint_bytes.max(cfg.checkpoint_ratio * written)
}

/// Writes the checkpoint (with the sample, which the writer keeps apart meanwhile); returns
/// its size in bytes.
fn save_checkpoint(
    out: &Path,
    ck: &mut Checkpoint,
    sample: &SampleSet,
    mal: &mut (BufWriter<File>, u64),
) -> Result<u64, ScreenError> {
    let mpath = out.join("malformed.jsonl");
    mal.0.flush().map_err(|e| ScreenError::io(&mpath, e))?;
    ck.malformed_len = mal.1;
    ck.accum.sample = sample.to_vec();
    let written = write_json_atomic(&out.join("checkpoint.json"), ck);
    ck.accum.sample = Vec::new();
    written
}

/// Writes JSON to `path` through a temporary file and a rename; returns its size in bytes.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<u64, ScreenError> {
    let tmp = path.with_extension("json.tmp");
    let data = serde_json::to_vec(value).map_err(|e| ScreenError::Config(e.to_string()))?;
    let len = data.len() as u64;
    fs::write(&tmp, data).map_err(|e| ScreenError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| ScreenError::io(path, e))?;
    Ok(len)
}

fn finish(cfg: &ScreenConfig, ck: &Checkpoint) -> Result<Report, ScreenError> {
    let report = Report::build(
        ck.accum.clone(),
        cfg.seed,
        cfg.manual_sample,
        cfg.settings(),
    );
    write_report(&cfg.out, &report)?;
    if cfg.shard.is_none() {
        set_aside_rejected(&cfg.out, &report.rejected_sources)?;
    }
    Ok(report)
}

/// Writes `summary.json`, `summary.html` and `review.csv`.
pub fn write_report(out: &Path, report: &Report) -> Result<(), ScreenError> {
    let p = out.join("summary.json");
    let json = serde_json::to_vec_pretty(report).map_err(|e| ScreenError::Config(e.to_string()))?;
    fs::write(&p, json).map_err(|e| ScreenError::io(&p, e))?;
    let p = out.join("summary.html");
    fs::write(&p, report.to_html()).map_err(|e| ScreenError::io(&p, e))?;
    crate::review::write_review_csv(&out.join("review.csv"), &report.totals.sample)
}

/// Moves `kept/<source>` of rejected sources to `rejected/<source>`.
pub fn set_aside_rejected(out: &Path, rejected: &[String]) -> Result<(), ScreenError> {
    for s in rejected {
        let from = out.join("kept").join(source_slug(s));
        if from.exists() {
            let to_dir = out.join("rejected");
            fs::create_dir_all(&to_dir).map_err(|e| ScreenError::io(&to_dir, e))?;
            let to = to_dir.join(source_slug(s));
            fs::rename(&from, &to).map_err(|e| ScreenError::io(&from, e))?;
        }
    }
    Ok(())
}

/// Merges the reports of per-shard runs into one: the same numbers as one run over all
/// shards. Rejected sources are set aside in every shard directory.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Report, ScreenError> {
    let mut total: Option<(Accum, u64, usize, BTreeMap<String, String>)> = None;
    let mut shards = BTreeSet::new();
    for d in dirs {
        let p = d.join("summary.json");
        let text = fs::read_to_string(&p).map_err(|e| ScreenError::io(&p, e))?;
        let r: Report = serde_json::from_str(&text).map_err(|e| ScreenError::Format {
            path: p.display().to_string(),
            line: e.line() as u64,
            message: e.to_string(),
        })?;
        let mut settings = r.settings.clone();
        let shard = settings.remove("shard").unwrap_or_default();
        if !shards.insert(shard.clone()) {
            return Err(ScreenError::Config(format!(
                "shard {shard} is given twice ({})",
                d.display()
            )));
        }
        match &mut total {
            None => total = Some((r.totals, r.seed, r.manual_sample_size, settings)),
            Some((acc, seed, k, s)) => {
                if *seed != r.seed || *k != r.manual_sample_size || *s != settings {
                    return Err(ScreenError::Config(format!(
                        "{} was screened with other settings (seed, sample size, fields or rules)",
                        d.display()
                    )));
                }
                let k = *k;
                acc.merge(r.totals, k);
            }
        }
    }
    let Some((acc, seed, k, mut settings)) = total else {
        return Err(ScreenError::Config("nothing to merge".into()));
    };
    settings.insert(
        "shard".into(),
        format!(
            "merged {}",
            shards.into_iter().collect::<Vec<_>>().join(", ")
        ),
    );
    let report = Report::build(acc, seed, k, settings);
    fs::create_dir_all(out).map_err(|e| ScreenError::io(out, e))?;
    write_report(out, &report)?;
    for d in dirs {
        set_aside_rejected(d, &report.rejected_sources)?;
    }
    Ok(report)
}
