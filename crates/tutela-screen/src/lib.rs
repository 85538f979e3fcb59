//! Offline half of tutela: corpus screening (`tutela screen`, TC260-003 5.1 and 9.2) and
//! model assessment (`tutela assess`, TC260-003 8.2–8.3 and 9.3–9.4).
//!
//! - [`screen`]: streams JSONL (plain, gzip, zstd) and Parquet through the detectors, operator
//!   rule packs and the [`pii`] scanner on all cores with bounded memory; writes kept and
//!   removed shards, a per-source table with the 5 % rule, the samples, JSON and HTML;
//!   resumable from `checkpoint.json`; [`screen::merge`] joins per-shard runs.
//! - [`review`]: the manual-review file and its score.
//! - [`assess`]: question banks, the bilingual [`refusal`] detector, grading, gates, the bank
//!   linter, and the OpenAI-compatible client behind the [`assess::Model`] seam.
//! - [`stats`]: Wilson intervals and the gates.
//! - [`laws`]: the built-in detectors whose findings are duties of other laws than TC260-003
//!   (`claims_therapist`, `gamification`): removed and recorded, counted apart, outside the 5 %
//!   rule and the gates.
//!
//! # Scale
//!
//! Screening is embarrassingly parallel per file. A corpus too big for one machine is split
//! by file: every machine gets the same ordered INPUT list and runs
//! `tutela screen INPUT... --out DIR_K --shard K/N` (it screens the files at positions
//! `i % N == K - 1`); then `tutela screen merge DIR_1 ... DIR_N --out REPORT` adds the counts,
//! merges the bottom-k samples, applies the 5 % rule to the merged per-source counts and
//! moves rejected sources' kept files aside in every shard directory. The merged report has
//! the same numbers as one run over everything (tested with shards run side by side, and by
//! `bench/screen/run.sh` with one process per core).
//!
//! Invariants: no chat or corpus text is logged; samples are drawn by a seeded hash, never by
//! reading order, so a run, a resumed run and merged shards give the same numbers; no
//! question bank or keyword list for political, religious or historical topics is shipped.

pub mod assess;
pub mod corpus;
pub mod doc;
pub mod error;
pub mod input;
pub mod laws;
pub mod pii;
pub mod progress;
pub mod refusal;
pub mod review;
pub mod sample;
pub mod screen;
pub mod stats;
pub mod summary;

pub use crate::error::ScreenError;
