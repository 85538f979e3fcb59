//! The tamper-evident audit log, independent of the backend: what a record holds, its canonical
//! encoding and hash, pseudonymous references, and the verifier that walks the chain.
//!
//! Each record is chained to the one before: `hash = SHA-256(canonical(seq, at, kind, subject,
//! session, jurisdiction, payload, profile_hash, content_hash, prev_hash))`, with `prev_hash` of
//! record 1 being 64 zeros. The backend also keeps the head (last seq and hash) in a separate row,
//! written in the same transaction as each append, so that removing the newest records is caught.
//!
//! What the chain proves and what it does not: editing, deleting, inserting or reordering any
//! record through the database is detected by [`verify`]. Someone who can write the database
//! *and* recomputes every later hash *and* the head row is only caught against a head saved
//! elsewhere: pass it as `expected` (`tutela audit verify --head SEQ:HASH`).
//!
//! Privacy: a record holds no chat text. Users and sessions appear as salted SHA-256 pseudonyms,
//! the message as a salted content hash; the payload holds findings (detector, score, spans,
//! rule names), actions and reasons. Deleting a user's data therefore never touches the chain.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tutela_types::{Decided, Decision, Diagnostic, Finding, Timestamp};

use crate::error::{Result, StoreError};

/// `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Domain separation for the record hash; bump with any change to the encoding.
const RECORD_HASH_DOMAIN: &[u8] = b"tutela-audit-record-v1\0";
const SUBJECT_DOMAIN: &[u8] = b"tutela-subject-v1\0";
const CONTENT_DOMAIN: &[u8] = b"tutela-content-v1\0";

/// What kind of event a record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A normal turn: the decision had no intervention (labels, counters only).
    Turn,
    /// A turn with an intervention (notice, replacement, escalation, ...).
    Intervention,
    /// An escalation case changed (claimed, replied, resolved).
    Escalation,
    /// An administrative change (user settings, contacts, age state).
    Admin,
    /// A data-export request was served.
    DataExport,
    /// A user's data was deleted.
    DataDeletion,
    /// A turn of test traffic (marked by the deployment's test key): its findings and
    /// decision, kept out of every count, queue and report figure.
    Test,
}

impl AuditKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Turn => "turn",
            AuditKind::Intervention => "intervention",
            AuditKind::Escalation => "escalation",
            AuditKind::Admin => "admin",
            AuditKind::DataExport => "data_export",
            AuditKind::DataDeletion => "data_deletion",
            AuditKind::Test => "test",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "turn" => AuditKind::Turn,
            "intervention" => AuditKind::Intervention,
            "escalation" => AuditKind::Escalation,
            "admin" => AuditKind::Admin,
            "data_export" => AuditKind::DataExport,
            "data_deletion" => AuditKind::DataDeletion,
            "test" => AuditKind::Test,
            _ => return None,
        })
    }
}

/// The body of a record: what was found and decided, never the text itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditPayload {
    /// Detector findings (names, scores, spans, rule names).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// The decided actions with their reasons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Decided>,
    /// The engine's diagnostics.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostic>,
    /// Details of administrative events (which case, which field changed, by whom). No chat text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
    /// Set by the writer on a record that went through a spill file while the database could
    /// not write (which file, which place in it); see [`crate::spill`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spill: Option<crate::spill::SpillMark>,
}

impl AuditPayload {
    /// The payload for a turn: its findings and the engine's decision.
    pub fn from_decision(findings: &[Finding], decision: &Decision) -> Self {
        Self {
            findings: findings.to_vec(),
            actions: decision.actions.clone(),
            diagnostics: decision.diagnostics.clone(),
            detail: None,
            spill: None,
        }
    }

    /// The payload for an administrative event.
    pub fn detail(detail: serde_json::Value) -> Self {
        Self {
            detail: Some(detail),
            ..Self::default()
        }
    }
}

/// A record to append, as the caller knows it (raw ids; the store pseudonymises them).
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    /// When the event happened (the caller's clock).
    pub at: Timestamp,
    /// What kind of event.
    pub kind: AuditKind,
    /// The operator's user id; stored only as a salted pseudonym.
    pub user: Option<String>,
    /// The session id; stored only as a salted pseudonym.
    pub session: Option<String>,
    /// Jurisdiction of use.
    pub jurisdiction: Option<String>,
    /// What was found and decided.
    pub payload: AuditPayload,
    /// Hash of the profile snapshot the decision was made under.
    pub profile_hash: String,
    /// [`Pseudonymizer::content_hash`] of the message the decision was about.
    pub content_hash: Option<String>,
}

/// A record ready for the backend: pseudonymised and encoded, waiting for its seq and hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditRecord {
    /// Seconds since the epoch.
    pub at: i64,
    /// [`AuditKind::as_str`].
    pub kind: String,
    /// Pseudonym of the user.
    pub subject: Option<String>,
    /// Pseudonym of the session.
    pub session: Option<String>,
    /// Jurisdiction of use.
    pub jurisdiction: Option<String>,
    /// [`AuditPayload`] as JSON; hashed as these exact bytes.
    pub payload: String,
    /// Profile snapshot hash.
    pub profile_hash: String,
    /// Content hash.
    pub content_hash: Option<String>,
}

/// An audit row exactly as stored; the verifier hashes these columns.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredAuditRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Seconds since the epoch.
    pub at: i64,
    /// Kind name.
    pub kind: String,
    /// Pseudonym of the user.
    pub subject: Option<String>,
    /// Pseudonym of the session.
    pub session: Option<String>,
    /// Jurisdiction of use.
    pub jurisdiction: Option<String>,
    /// Payload JSON.
    pub payload: String,
    /// Profile snapshot hash.
    pub profile_hash: String,
    /// Content hash.
    pub content_hash: Option<String>,
    /// Hash of the previous record.
    pub prev_hash: String,
    /// Hash of this record.
    pub hash: String,
}

impl StoredAuditRecord {
    /// Completes a new record at position `seq` after `prev_hash`.
    pub fn chain(new: &NewAuditRecord, seq: i64, prev_hash: &str) -> Self {
        let mut row = Self {
            seq,
            at: new.at,
            kind: new.kind.clone(),
            subject: new.subject.clone(),
            session: new.session.clone(),
            jurisdiction: new.jurisdiction.clone(),
            payload: new.payload.clone(),
            profile_hash: new.profile_hash.clone(),
            content_hash: new.content_hash.clone(),
            prev_hash: prev_hash.to_owned(),
            hash: String::new(),
        };
        row.hash = row.compute_hash();
        row
    }

    /// SHA-256 over the canonical encoding of every column except `hash`, as lowercase hex.
    ///
    /// Canonical encoding: a domain tag, then each field in column order; integers as 8-byte
    /// big-endian; strings as `0x01`, 8-byte big-endian length, UTF-8 bytes; an absent optional
    /// string as `0x00`. Unambiguous, so no two different rows encode alike.
    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(RECORD_HASH_DOMAIN);
        h.update(self.seq.to_be_bytes());
        h.update(self.at.to_be_bytes());
        put_str(&mut h, &self.kind);
        put_opt(&mut h, self.subject.as_deref());
        put_opt(&mut h, self.session.as_deref());
        put_opt(&mut h, self.jurisdiction.as_deref());
        put_str(&mut h, &self.payload);
        put_str(&mut h, &self.profile_hash);
        put_opt(&mut h, self.content_hash.as_deref());
        put_str(&mut h, &self.prev_hash);
        hex(&h.finalize())
    }

    /// This record's place in the chain.
    pub fn link(&self) -> ChainLink {
        ChainLink {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

fn put_str(h: &mut Sha256, s: &str) {
    h.update([1u8]);
    h.update((s.len() as u64).to_be_bytes());
    h.update(s.as_bytes());
}

fn put_opt(h: &mut Sha256, s: Option<&str>) {
    match s {
        Some(s) => put_str(h, s),
        None => h.update([0u8]),
    }
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// An audit record read back, with its payload decoded.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When.
    pub at: Timestamp,
    /// What kind of event.
    pub kind: AuditKind,
    /// Pseudonym of the user.
    pub subject: Option<String>,
    /// Pseudonym of the session.
    pub session: Option<String>,
    /// Jurisdiction of use.
    pub jurisdiction: Option<String>,
    /// What was found and decided.
    pub payload: AuditPayload,
    /// Profile snapshot hash.
    pub profile_hash: String,
    /// Content hash.
    pub content_hash: Option<String>,
    /// Hash of the previous record.
    pub prev_hash: String,
    /// Hash of this record.
    pub hash: String,
}

impl TryFrom<StoredAuditRecord> for AuditRecord {
    type Error = StoreError;

    fn try_from(row: StoredAuditRecord) -> Result<Self> {
        let kind = AuditKind::parse(&row.kind)
            .ok_or_else(|| StoreError::corrupt("audit_log", "kind", format!("`{}`", row.kind)))?;
        let payload = serde_json::from_str(&row.payload)
            .map_err(|e| StoreError::corrupt("audit_log", "payload", e.to_string()))?;
        Ok(Self {
            seq: row.seq,
            at: Timestamp::from_unix(row.at),
            kind,
            subject: row.subject,
            session: row.session,
            jurisdiction: row.jurisdiction,
            payload,
            profile_hash: row.profile_hash,
            content_hash: row.content_hash,
            prev_hash: row.prev_hash,
            hash: row.hash,
        })
    }
}

/// A position in the chain: the seq of a record and its hash.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChainLink {
    /// Position, from 1.
    pub seq: i64,
    /// Hash of the record at that position.
    pub hash: String,
}

impl fmt::Display for ChainLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for ChainLink {
    type Err = String;

    /// Parses `SEQ:HASH` as printed by `tutela audit verify`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (seq, hash) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}` is not SEQ:HASH"))?;
        let seq = seq
            .parse::<i64>()
            .map_err(|_| format!("`{seq}` is not a record number"))?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("`{hash}` is not a SHA-256 hex digest"));
        }
        Ok(Self {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

/// Filter for reading records back (admin audit query).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this pseudonymous subject (see [`Pseudonymizer::subject`]).
    pub subject: Option<String>,
    /// Only records at or after this instant.
    pub from: Option<Timestamp>,
    /// Only records before this instant.
    pub to: Option<Timestamp>,
    /// Only records after this seq (for paging).
    pub after_seq: Option<i64>,
    /// At most this many (the backend caps it at 1,000).
    pub limit: u32,
}

/// Turns user ids, session ids and message text into salted hashes. The salt is per database
/// (created by the first migration), so pseudonyms mean nothing outside it.
#[derive(Clone)]
pub struct Pseudonymizer {
    salt: Vec<u8>,
}

impl fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pseudonymizer(..)")
    }
}

impl Pseudonymizer {
    /// A pseudonymizer with this salt.
    pub fn new(salt: impl Into<Vec<u8>>) -> Self {
        Self { salt: salt.into() }
    }

    /// The pseudonymous reference for a user or session id (64 hex digits).
    pub fn subject(&self, id: &str) -> String {
        self.hash(SUBJECT_DOMAIN, id.as_bytes())
    }

    /// A short tag of this database (from its salt), for the names of its spill files.
    pub fn database_tag(&self) -> String {
        self.hash(b"tutela-spill-v1\0", b"")[..16].to_owned()
    }

    /// The content hash of a message, as stored in audit records.
    pub fn content_hash(&self, text: &str) -> String {
        self.hash(CONTENT_DOMAIN, text.as_bytes())
    }

    fn hash(&self, domain: &[u8], data: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(domain);
        h.update((self.salt.len() as u64).to_be_bytes());
        h.update(&self.salt);
        h.update(data);
        hex(&h.finalize())
    }

    /// Pseudonymises and encodes an entry for the backend.
    pub fn prepare(&self, entry: &AuditEntry) -> Result<NewAuditRecord> {
        let payload =
            serde_json::to_string(&entry.payload).map_err(|source| StoreError::Encode {
                what: "audit payload",
                source,
            })?;
        Ok(NewAuditRecord {
            at: entry.at.unix(),
            kind: entry.kind.as_str().to_owned(),
            subject: entry.user.as_deref().map(|u| self.subject(u)),
            session: entry.session.as_deref().map(|s| self.subject(s)),
            jurisdiction: entry.jurisdiction.clone(),
            payload,
            profile_hash: entry.profile_hash.clone(),
            content_hash: entry.content_hash.clone(),
        })
    }
}

/// The result of walking the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Records checked.
    pub records: u64,
    /// The last record that verified.
    pub head: Option<ChainLink>,
    /// The first problem found; `None` means the chain verifies.
    pub tamper: Option<Tamper>,
    /// Write outages the chain records (the writer's notes after writes failed and then
    /// succeeded again), and how many records they delayed: written late, not lost.
    #[serde(default)]
    pub outages: Outages,
}

/// Write outages noted in the chain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outages {
    /// Outage notes found.
    pub count: u64,
    /// Records they say were written late.
    pub records_delayed: u64,
    /// Records that went through a spill file (they carry its mark).
    pub spilled: u64,
    /// Records written from spill files an earlier process left (after a crash during an
    /// outage), as the notes say.
    pub replayed_after_restart: u64,
}

impl Verification {
    /// Whether the chain verified.
    pub fn is_intact(&self) -> bool {
        self.tamper.is_none()
    }
}

/// Where and how the chain is broken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tamper {
    /// The record at which the problem shows.
    pub seq: i64,
    /// What is wrong.
    pub problem: TamperKind,
}

/// What is wrong with the chain at a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TamperKind {
    /// The stored hash does not match the record's contents: edited, or moved to another seq.
    ContentMismatch,
    /// `prev_hash` does not match the hash of the record before.
    BrokenLink,
    /// Records are missing before this one.
    Missing {
        /// The first missing seq.
        expected: i64,
    },
    /// The chain runs past the recorded head: records were appended outside the store.
    BeyondHead {
        /// The recorded head.
        head: i64,
    },
    /// The chain ends before the recorded head: the newest records were removed.
    Truncated {
        /// The recorded head.
        head: i64,
    },
    /// The record at the recorded head has a different hash than the head row says.
    HeadMismatch,
    /// The record differs from the externally saved head given to `verify`.
    ExpectedHeadMismatch,
    /// The externally saved head is past the end of the chain.
    ExpectedHeadMissing,
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seq = self.seq;
        match &self.problem {
            TamperKind::ContentMismatch => write!(
                f,
                "record {seq}: stored hash does not match its contents (edited, inserted or moved)"
            ),
            TamperKind::BrokenLink => write!(
                f,
                "record {seq}: prev_hash does not match record {} (a record before it was replaced, removed or reordered)",
                seq - 1
            ),
            TamperKind::Missing { expected } => write!(
                f,
                "record {expected} is missing: the chain jumps from record {} to {seq} (deleted)",
                expected - 1
            ),
            TamperKind::BeyondHead { head } => write!(
                f,
                "record {seq}: the chain runs past its recorded head {head} (appended outside the store)"
            ),
            TamperKind::Truncated { head } => write!(
                f,
                "the chain ends at record {} but its recorded head is {head} (newest records deleted)",
                seq
            ),
            TamperKind::HeadMismatch => write!(
                f,
                "record {seq}: hash differs from the recorded head (edited or replaced)"
            ),
            TamperKind::ExpectedHeadMismatch => write!(
                f,
                "record {seq}: hash differs from the saved head you gave (chain rewritten)"
            ),
            TamperKind::ExpectedHeadMissing => write!(
                f,
                "record {seq}, the saved head you gave, is no longer in the chain (deleted)"
            ),
        }
    }
}

/// Walks the chain state by state; the backend feeds it rows in seq order.
#[derive(Debug)]
pub(crate) struct ChainWalker {
    expected_seq: i64,
    prev_hash: String,
    records: u64,
    head: Option<ChainLink>,
    expected: Option<ChainLink>,
    outages: Outages,
}

impl ChainWalker {
    pub(crate) fn new(expected: Option<ChainLink>) -> Self {
        Self {
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            records: 0,
            head: None,
            expected,
            outages: Outages::default(),
        }
    }

    /// Checks the next row; returns the problem if it breaks the chain.
    pub(crate) fn step(&mut self, row: &StoredAuditRecord) -> Option<Tamper> {
        let fail = |problem| {
            Some(Tamper {
                seq: row.seq,
                problem,
            })
        };
        if row.seq != self.expected_seq {
            return fail(TamperKind::Missing {
                expected: self.expected_seq,
            });
        }
        if row.compute_hash() != row.hash {
            return fail(TamperKind::ContentMismatch);
        }
        if row.prev_hash != self.prev_hash {
            return fail(TamperKind::BrokenLink);
        }
        if let Some(exp) = &self.expected
            && exp.seq == row.seq
            && exp.hash != row.hash
        {
            return fail(TamperKind::ExpectedHeadMismatch);
        }
        if row.kind == "admin" && row.payload.contains(crate::writer::OUTAGE_EVENT) {
            let note = serde_json::from_str::<serde_json::Value>(&row.payload)
                .ok()
                .filter(|p| p["detail"]["event"] == crate::writer::OUTAGE_EVENT);
            if let Some(p) = note {
                let d = &p["detail"];
                self.outages.count += 1;
                self.outages.records_delayed += d["records_delayed"].as_u64().unwrap_or(0);
                self.outages.replayed_after_restart +=
                    d["replayed_after_restart"].as_u64().unwrap_or(0);
            }
        }
        if crate::spill::mark_of(&row.payload).is_some() {
            self.outages.spilled += 1;
        }
        self.records += 1;
        self.expected_seq += 1;
        self.prev_hash.clone_from(&row.hash);
        self.head = Some(row.link());
        None
    }

    /// Compares the end of the walk with the recorded head row.
    pub(crate) fn finish(self, recorded: Option<ChainLink>) -> Verification {
        let last = self.head.as_ref().map_or(0, |h| h.seq);
        let tamper = match &recorded {
            None if last > 0 => Some(Tamper {
                seq: 1,
                problem: TamperKind::BeyondHead { head: 0 },
            }),
            None => None,
            Some(rec) if last > rec.seq => Some(Tamper {
                seq: rec.seq + 1,
                problem: TamperKind::BeyondHead { head: rec.seq },
            }),
            Some(rec) if last < rec.seq => Some(Tamper {
                seq: last,
                problem: TamperKind::Truncated { head: rec.seq },
            }),
            Some(rec) => match &self.head {
                Some(h) if h.hash != rec.hash => Some(Tamper {
                    seq: h.seq,
                    problem: TamperKind::HeadMismatch,
                }),
                _ => None,
            },
        };
        let missing = match &self.expected {
            Some(exp) if exp.seq > last => Some(Tamper {
                seq: exp.seq,
                problem: TamperKind::ExpectedHeadMissing,
            }),
            _ => None,
        };
        let tamper = tamper.or(missing);
        Verification {
            records: self.records,
            head: self.head,
            tamper,
            outages: self.outages,
        }
    }

    pub(crate) fn abort(self, tamper: Tamper) -> Verification {
        Verification {
            records: self.records,
            head: self.head,
            tamper: Some(tamper),
            outages: self.outages,
        }
    }

    pub(crate) fn last_seq(&self) -> i64 {
        self.expected_seq - 1
    }
}

/// Rows read per query while verifying; bounds memory at any chain length.
const VERIFY_PAGE: u32 = 5_000;

/// Walks the whole chain of `log` and reports the first problem, if any. `expected` is a head
/// saved elsewhere earlier (see the module docs); the chain must still contain it unchanged.
///
/// Generic so that any handle works: `&SqliteStore`, `&dyn AuditLog`, `&dyn Backend`.
pub async fn verify<L: crate::traits::AuditLog + ?Sized>(
    log: &L,
    expected: Option<ChainLink>,
) -> Result<Verification> {
    // Read the recorded head first: records appended while we walk are then past it and
    // are not mistaken for tampering (we stop at the head's seq).
    let recorded = log.recorded_head().await?;
    let stop = recorded.as_ref().map_or(0, |h| h.seq);
    let mut walker = ChainWalker::new(expected);
    loop {
        let page = log.audit_page(walker.last_seq(), VERIFY_PAGE).await?;
        if page.is_empty() {
            break;
        }
        for row in &page {
            if row.seq > stop && walker.last_seq() >= stop {
                // Past the head we read at the start: either appended meanwhile (fine, if the
                // head row now covers it) or appended outside the store.
                let now = log.recorded_head().await?;
                if now.as_ref().is_none_or(|h| h.seq < row.seq) {
                    return Ok(walker.abort(Tamper {
                        seq: row.seq,
                        problem: TamperKind::BeyondHead { head: stop },
                    }));
                }
                return Ok(walker.finish(recorded));
            }
            if let Some(t) = walker.step(row) {
                return Ok(walker.abort(t));
            }
        }
    }
    Ok(walker.finish(recorded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(at: i64) -> NewAuditRecord {
        NewAuditRecord {
            at,
            kind: "turn".into(),
            subject: Some("s".into()),
            session: None,
            jurisdiction: Some("cn".into()),
            payload: "{}".into(),
            profile_hash: "p".into(),
            content_hash: None,
        }
    }

    fn chain(n: i64) -> Vec<StoredAuditRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let r = StoredAuditRecord::chain(&new(seq * 10), seq, &prev);
                prev.clone_from(&r.hash);
                r
            })
            .collect()
    }

    fn walk(rows: &[StoredAuditRecord], head: Option<ChainLink>) -> Verification {
        let mut w = ChainWalker::new(None);
        for r in rows {
            if let Some(t) = w.step(r) {
                return w.abort(t);
            }
        }
        w.finish(head)
    }

    #[test]
    fn intact_chain_verifies() {
        let rows = chain(5);
        let v = walk(&rows, Some(rows[4].link()));
        assert!(v.is_intact(), "{v:?}");
        assert_eq!(v.records, 5);
    }

    #[test]
    fn absent_and_present_options_hash_differently() {
        let mut a = new(1);
        a.session = None;
        let mut b = new(1);
        b.session = Some(String::new());
        let ra = StoredAuditRecord::chain(&a, 1, GENESIS_HASH);
        let rb = StoredAuditRecord::chain(&b, 1, GENESIS_HASH);
        assert_ne!(ra.hash, rb.hash);
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let mut a = new(1);
        a.profile_hash = "ab".into();
        a.payload = "c".into();
        let mut b = new(1);
        b.profile_hash = "b".into();
        b.payload = "ca".into();
        assert_ne!(
            StoredAuditRecord::chain(&a, 1, GENESIS_HASH).hash,
            StoredAuditRecord::chain(&b, 1, GENESIS_HASH).hash
        );
    }

    #[test]
    fn each_kind_of_tampering_is_named() {
        let rows = chain(4);
        let head = Some(rows[3].link());

        let mut edited = rows.clone();
        edited[1].jurisdiction = Some("eu".into());
        let t = walk(&edited, head.clone()).tamper.unwrap();
        assert_eq!((t.seq, t.problem), (2, TamperKind::ContentMismatch));

        let mut deleted = rows.clone();
        deleted.remove(1);
        let t = walk(&deleted, head.clone()).tamper.unwrap();
        assert_eq!((t.seq, t.problem), (3, TamperKind::Missing { expected: 2 }));

        let truncated = &rows[..3];
        let t = walk(truncated, head.clone()).tamper.unwrap();
        assert_eq!((t.seq, t.problem), (3, TamperKind::Truncated { head: 4 }));

        let t = walk(&rows, Some(rows[2].link())).tamper.unwrap();
        assert_eq!((t.seq, t.problem), (4, TamperKind::BeyondHead { head: 3 }));
    }

    #[test]
    fn chain_link_parses_what_it_prints() {
        let rows = chain(1);
        let link = rows[0].link();
        assert_eq!(link.to_string().parse::<ChainLink>().unwrap(), link);
        assert!("x:abc".parse::<ChainLink>().is_err());
    }

    #[test]
    fn pseudonyms_depend_on_the_salt() {
        let a = Pseudonymizer::new(b"one".to_vec());
        let b = Pseudonymizer::new(b"two".to_vec());
        assert_eq!(a.subject("u1"), a.subject("u1"));
        assert_ne!(a.subject("u1"), b.subject("u1"));
        assert_ne!(a.subject("u1"), a.content_hash("u1"));
        assert_eq!(a.subject("u1").len(), 64);
    }
}
