//! The spill file: where the writer puts audit records it cannot write to the database (a full
//! disk), on a second disk the deployment names (`[store] spill_dir`), so that even kill -9
//! during the outage loses none of them.
//!
//! While writes fail, every audit record the writer holds is appended to a spill file in that
//! directory, in the writer's order, and the file is fsync'd before a durable caller hears that
//! its record is held; the record also stays in memory and is retried as before. When every
//! held record is written, the writer deletes the spill files. If the process dies first, the
//! next writer over the same database finds the files at start, learns from the chain which of
//! their records were committed already, and writes the others first, in order, after a note
//! (`audit_write_outage` with `replayed_after_restart`) that `audit verify` counts.
//!
//! A spilled record carries a mark in its payload (`spill: {file, n}`: the file's id and the
//! record's place in it), written into the file and into the chain alike. The mark makes a
//! replay exact: a record whose mark is in the chain is never written twice, whatever moment
//! the process died at, and `audit verify` counts the records that went through a spill file.
//!
//! File format: JSON lines; the first is a header (`{"tutela_spill": 1, "id", "database",
//! "after_seq"}`), each further line one record. A last line cut short by a crash is ignored
//! (its record was never acknowledged: the fsync that acknowledges it had not returned).
//! Names: `audit-spill-<database tag>-<id>.jsonl`, where the tag is a hash of the database's
//! pseudonym salt, so one directory can serve several databases.
//!
//! Only audit records go through the writer's spill files. A normal turn's clocks and usage
//! (`TurnRecord`) stay in memory while writes fail, as before: kill -9 during an outage may
//! lose those.
//!
//! Held items ([`SpillDir::hold`]): other writes a caller could not make during an outage (the
//! gateway's side effects of an intervention: the crisis team's case, notifications,
//! intervention rows, counters) go to the same directory, one file each
//! (`<kind>-spill-<database tag>-<order>-<id>.json`), written under a temporary name, fsync'd,
//! renamed and the directory fsync'd, so after a crash a file is whole or absent. The caller
//! removes it once the write succeeded ([`HeldItem::release`]) and reads what an earlier
//! process left at start ([`SpillDir::held`]). The body is the caller's; the store does not
//! read it.

use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::audit::NewAuditRecord;

/// A spilled record's mark, in its payload (`AuditPayload::spill`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpillMark {
    /// The spill file's id.
    pub file: String,
    /// The record's place in it, from 0.
    pub n: u64,
}

/// Why the spill directory or a spill file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    /// The directory cannot be created, read or written.
    #[error("spill directory `{path}`: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The path exists and is not a directory.
    #[error("spill directory `{0}` is not a directory")]
    NotADirectory(PathBuf),
    /// A spill file cannot be read back (a line in the middle that is not a record).
    #[error("spill file `{path}`, line {line}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpillError + '_ {
    move |source| SpillError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The deployment's spill directory, checked: it exists (created if missing), is a directory,
/// and takes a file written, fsync'd and removed.
#[derive(Clone, Debug)]
pub struct SpillDir {
    dir: PathBuf,
}

impl SpillDir {
    /// Checks (and creates if missing) the directory. Call at start, so a directory that
    /// cannot be used stops the start instead of failing during an outage.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, SpillError> {
        let dir = dir.as_ref().to_owned();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        if !std::fs::metadata(&dir).map_err(io(&dir))?.is_dir() {
            return Err(SpillError::NotADirectory(dir));
        }
        let probe = dir.join(format!(".tutela-spill-probe-{}", std::process::id()));
        let mut f = File::create(&probe).map_err(io(&probe))?;
        f.write_all(b"probe\n").map_err(io(&probe))?;
        f.sync_all().map_err(io(&probe))?;
        drop(f);
        std::fs::remove_file(&probe).map_err(io(&probe))?;
        Ok(Self { dir })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn prefix(database: &str) -> String {
        format!("audit-spill-{database}-")
    }

    /// Spill files of this database left in the directory, oldest first (by the head they
    /// began after, then by name).
    pub(crate) fn leftovers(&self, database: &str) -> Result<Vec<SpillFile>, SpillError> {
        let prefix = Self::prefix(database);
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && name.ends_with(".jsonl") {
                files.push(SpillFile::read(&entry.path())?);
            }
        }
        files.sort_by(|a, b| {
            (a.after_seq, &a.path)
                .partial_cmp(&(b.after_seq, &b.path))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        Ok(files)
    }

    /// Starts a new spill file for `database`, after the chain's head `after_seq` (0 if
    /// unknown), header written and fsync'd.
    pub(crate) fn create(&self, database: &str, after_seq: i64) -> Result<SpillWriter, SpillError> {
        let id = fresh_id(after_seq);
        let path = self
            .dir
            .join(format!("{}{id}.jsonl", Self::prefix(database)));
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let header = Header {
            tutela_spill: 1,
            id: id.clone(),
            database: database.to_owned(),
            after_seq,
        };
        let mut line = serde_json::to_string(&header).unwrap_or_default();
        line.push('\n');
        file.write_all(line.as_bytes()).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
        // The new name must survive a crash too.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(SpillWriter {
            file,
            path,
            id,
            next: 0,
        })
    }
}

/// One held item in the spill directory (see [`SpillDir::hold`]).
#[derive(Debug)]
pub struct HeldItem {
    path: PathBuf,
}

impl HeldItem {
    /// Its file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file: what it held is written.
    pub fn release(self) -> Result<(), SpillError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&self.path)(e)),
        }
    }
}

impl SpillDir {
    fn held_prefix(kind: &str, database: &str) -> String {
        format!("{kind}-spill-{database}-")
    }

    /// Writes one held item of `kind` (letters, digits and `_`; not `audit`) for `database`:
    /// `body` under a temporary name, fsync'd, renamed, the directory fsync'd. `order` sorts
    /// the items [`SpillDir::held`] gives back (a time; equal ones in any order).
    pub fn hold(
        &self,
        kind: &str,
        database: &str,
        order: i64,
        body: &[u8],
    ) -> Result<HeldItem, SpillError> {
        debug_assert!(
            kind != "audit" && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "held item kind `{kind}`"
        );
        let id = fresh_id(order);
        let name = format!(
            "{}{:020}-{id}.json",
            Self::held_prefix(kind, database),
            order.max(0)
        );
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(body)
            .and_then(|()| f.sync_all())
            .map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        // The new name must survive a crash too.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        Ok(HeldItem { path })
    }

    /// The items of `kind` held for `database` (an earlier process's), oldest first, with
    /// their bodies. Temporary files a crash left (never acknowledged) are removed.
    pub fn held(&self, kind: &str, database: &str) -> Result<Vec<(HeldItem, Vec<u8>)>, SpillError> {
        let prefix = Self::held_prefix(kind, database);
        let mut items = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with(&format!(".{prefix}")) && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(&path);
            } else if name.starts_with(&prefix) && name.ends_with(".json") {
                let body = std::fs::read(&path).map_err(io(&path))?;
                items.push((name, HeldItem { path }, body));
            }
        }
        items.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(items.into_iter().map(|(_, i, b)| (i, b)).collect())
    }
}

/// An id no other spill file of this database has: the head it began after and a random
/// number (from the standard library's randomly seeded hasher; uniqueness, not secrecy).
fn fresh_id(after_seq: i64) -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    std::process::id().hash(&mut h);
    after_seq.hash(&mut h);
    format!("{after_seq}-{:016x}", h.finish())
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    tutela_spill: u32,
    id: String,
    database: String,
    after_seq: i64,
}

/// One spilled record, as a line of the file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    n: u64,
    at: i64,
    kind: String,
    subject: Option<String>,
    session: Option<String>,
    jurisdiction: Option<String>,
    payload: String,
    profile_hash: String,
    content_hash: Option<String>,
}

/// The spill file the writer appends to during an outage.
#[derive(Debug)]
pub(crate) struct SpillWriter {
    file: File,
    path: PathBuf,
    id: String,
    next: u64,
}

impl SpillWriter {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Marks each record (its payload gets `spill: {file, n}`), appends them all and fsyncs.
    /// On success the records in `records` carry their marks; on failure they are unchanged.
    pub(crate) fn append(&mut self, records: &mut [&mut NewAuditRecord]) -> Result<(), SpillError> {
        let mut out = String::new();
        let mut marked = Vec::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            let n = self.next + i as u64;
            let payload = with_mark(&r.payload, &self.id, n);
            let line = Line {
                n,
                at: r.at,
                kind: r.kind.clone(),
                subject: r.subject.clone(),
                session: r.session.clone(),
                jurisdiction: r.jurisdiction.clone(),
                payload: payload.clone(),
                profile_hash: r.profile_hash.clone(),
                content_hash: r.content_hash.clone(),
            };
            out.push_str(&serde_json::to_string(&line).unwrap_or_default());
            out.push('\n');
            marked.push(payload);
        }
        self.file
            .write_all(out.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(io(&self.path))?;
        for (r, payload) in records.iter_mut().zip(marked) {
            r.payload = payload;
        }
        self.next += records.len() as u64;
        Ok(())
    }
}

/// `payload` (a JSON object) with the mark as its first member. The same bytes go to the file
/// and to the chain.
pub(crate) fn with_mark(payload: &str, file: &str, n: u64) -> String {
    let mark = serde_json::json!({ "file": file, "n": n }).to_string();
    let rest = payload.trim();
    let inner = rest
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or("")
        .trim();
    if inner.is_empty() {
        format!("{{\"spill\":{mark}}}")
    } else {
        format!("{{\"spill\":{mark},{inner}}}")
    }
}

/// The mark of a stored payload, if it has one.
pub(crate) fn mark_of(payload: &str) -> Option<SpillMark> {
    if !payload.starts_with("{\"spill\":") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(payload).ok()?;
    serde_json::from_value(v.get("spill")?.clone()).ok()
}

/// A spill file read back at start.
#[derive(Debug)]
pub(crate) struct SpillFile {
    pub(crate) path: PathBuf,
    pub(crate) id: String,
    pub(crate) after_seq: i64,
    /// Its records, in order, marks included; `n` is each one's place.
    pub(crate) records: Vec<(u64, NewAuditRecord)>,
}

impl SpillFile {
    fn read(path: &Path) -> Result<Self, SpillError> {
        let f = File::open(path).map_err(io(path))?;
        let mut lines = Vec::new();
        for line in BufReader::new(f).lines() {
            lines.push(line.map_err(io(path))?);
        }
        let corrupt = |line: usize, message: String| SpillError::Corrupt {
            path: path.to_owned(),
            line,
            message,
        };
        let Some(first) = lines.first() else {
            // Created, header not yet written: nothing was acknowledged from it.
            return Ok(Self {
                path: path.to_owned(),
                id: String::new(),
                after_seq: 0,
                records: Vec::new(),
            });
        };
        let header: Header = match serde_json::from_str(first) {
            Ok(h) => h,
            Err(_) if lines.len() == 1 => {
                return Ok(Self {
                    path: path.to_owned(),
                    id: String::new(),
                    after_seq: 0,
                    records: Vec::new(),
                });
            }
            Err(e) => return Err(corrupt(1, e.to_string())),
        };
        let mut records = Vec::new();
        let last = lines.len() - 1;
        for (i, text) in lines.iter().enumerate().skip(1) {
            match serde_json::from_str::<Line>(text) {
                Ok(l) => records.push((
                    l.n,
                    NewAuditRecord {
                        at: l.at,
                        kind: l.kind,
                        subject: l.subject,
                        session: l.session,
                        jurisdiction: l.jurisdiction,
                        payload: l.payload,
                        profile_hash: l.profile_hash,
                        content_hash: l.content_hash,
                    },
                )),
                // A last line cut short by a crash: never acknowledged.
                Err(_) if i == last => {}
                Err(e) => return Err(corrupt(i + 1, e.to_string())),
            }
        }
        Ok(Self {
            path: path.to_owned(),
            id: header.id,
            after_seq: header.after_seq,
            records,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_goes_first_and_reads_back() {
        let p = with_mark(r#"{"findings":[],"detail":{"a":1}}"#, "7-ab", 3);
        assert_eq!(
            p,
            r#"{"spill":{"file":"7-ab","n":3},"findings":[],"detail":{"a":1}}"#
        );
        assert_eq!(
            mark_of(&p),
            Some(SpillMark {
                file: "7-ab".into(),
                n: 3
            })
        );
        assert_eq!(with_mark("{}", "x", 0), r#"{"spill":{"file":"x","n":0}}"#);
        assert_eq!(mark_of(r#"{"findings":[]}"#), None);
    }

    #[test]
    fn held_items_are_whole_files_read_back_in_order_and_released() {
        let base = std::env::temp_dir().join(format!("tutela-held-{}", fresh_id(0)));
        let dir = SpillDir::open(&base).unwrap();
        let b = dir.hold("effects", "db1", 20, b"second").unwrap();
        let a = dir.hold("effects", "db1", 10, b"first").unwrap();
        dir.hold("effects", "db2", 5, b"other database").unwrap();
        dir.hold("other", "db1", 5, b"other kind").unwrap();
        std::fs::write(base.join(".effects-spill-db1-x.json.tmp"), b"cut short").unwrap();
        let held = dir.held("effects", "db1").unwrap();
        let bodies: Vec<&[u8]> = held.iter().map(|(_, b)| b.as_slice()).collect();
        assert_eq!(bodies, [b"first".as_slice(), b"second".as_slice()]);
        assert!(!base.join(".effects-spill-db1-x.json.tmp").exists());
        assert_eq!(held[0].0.path(), a.path());
        a.release().unwrap();
        b.release().unwrap();
        let held = dir.held("effects", "db1").unwrap();
        assert!(held.is_empty());
        // The writer's own files are not held items, and held items are not its files.
        assert!(dir.leftovers("db1").unwrap().is_empty());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn ids_differ() {
        assert_ne!(fresh_id(5), fresh_id(5));
    }
}
