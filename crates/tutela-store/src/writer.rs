//! The audit writer: one background task that owns all appends to the audit log, so the chain
//! never forks, and that batches records into one transaction whenever several are waiting.
//!
//! Two ways in:
//! - [`AuditWriter::append_durable`] awaits the commit; use it for interventions, whose record
//!   must exist before the reply leaves.
//! - [`AuditWriter::record`] only queues (it waits only when the queue is full, which is
//!   backpressure, never loss); use it for normal turns. [`AuditWriter::flush`] waits until
//!   everything queued before it is committed.
//!
//! The task never reads the clock: records carry the caller's timestamps, and batches form by
//! themselves while the previous commit is running (group commit), with no timer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::audit::{AuditEntry, ChainLink, NewAuditRecord, Pseudonymizer};
use crate::error::{Result, StoreError};
use crate::traits::AuditLog;

/// Records queued before `record` waits: about 1 MB of pending records; beyond that the
/// database is not keeping up and callers should feel it.
pub const QUEUE_CAPACITY: usize = 4_096;

/// Most records written in one transaction: bounds the latency of a durable append that
/// arrives behind a burst.
pub const MAX_BATCH: usize = 512;

enum Msg {
    Append {
        record: NewAuditRecord,
        done: Option<oneshot::Sender<Result<ChainLink>>>,
    },
    Flush(oneshot::Sender<Result<()>>),
}

/// Handle to the audit writer task; cheap to clone.
#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Msg>,
    pseudonyms: Pseudonymizer,
    failed: Arc<AtomicU64>,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter")
            .field("queued", &(QUEUE_CAPACITY - self.tx.capacity()))
            .finish()
    }
}

impl AuditWriter {
    /// Starts the writer task on the current tokio runtime. The task ends when every handle is
    /// dropped, after writing what is queued.
    pub fn spawn(log: Arc<dyn AuditLog>, pseudonyms: Pseudonymizer) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let failed = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(log, rx, Arc::clone(&failed)));
        Self {
            tx,
            pseudonyms,
            failed,
        }
    }

    /// Appends a record and waits until it is committed; returns its place in the chain.
    pub async fn append_durable(&self, entry: &AuditEntry) -> Result<ChainLink> {
        let record = self.pseudonyms.prepare(entry)?;
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Msg::Append {
                record,
                done: Some(done),
            })
            .await
            .map_err(|_| StoreError::WriterClosed)?;
        wait.await.map_err(|_| StoreError::WriterClosed)?
    }

    /// Queues a record for the next batch. Returns at once unless the queue is full.
    pub async fn record(&self, entry: &AuditEntry) -> Result<()> {
        let record = self.pseudonyms.prepare(entry)?;
        self.tx
            .send(Msg::Append { record, done: None })
            .await
            .map_err(|_| StoreError::WriterClosed)
    }

    /// Queues a record without waiting; fails with [`StoreError::QueueFull`] when the queue is
    /// full (the caller then uses [`AuditWriter::record`]).
    pub fn try_record(&self, entry: &AuditEntry) -> Result<()> {
        let record = self.pseudonyms.prepare(entry)?;
        self.tx
            .try_send(Msg::Append { record, done: None })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => StoreError::WriterClosed,
            })
    }

    /// Waits until every record queued before this call is committed. Fails if any queued
    /// record could not be written since the last flush.
    pub async fn flush(&self) -> Result<()> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Msg::Flush(done))
            .await
            .map_err(|_| StoreError::WriterClosed)?;
        wait.await.map_err(|_| StoreError::WriterClosed)??;
        match self.failed.swap(0, Ordering::AcqRel) {
            0 => Ok(()),
            n => Err(StoreError::AuditWrite(format!(
                "{n} queued records were lost; see the error log"
            ))),
        }
    }

    /// The pseudonymizer used for subjects and content hashes.
    pub fn pseudonyms(&self) -> &Pseudonymizer {
        &self.pseudonyms
    }
}

async fn run(log: Arc<dyn AuditLog>, mut rx: mpsc::Receiver<Msg>, failed: Arc<AtomicU64>) {
    let mut records = Vec::with_capacity(MAX_BATCH);
    let mut waiters = Vec::with_capacity(MAX_BATCH);
    let mut flushes = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Append { record, done } => {
                    records.push(record);
                    waiters.push(done);
                }
                Msg::Flush(done) => flushes.push(done),
            }
            if records.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !records.is_empty() {
            // One retry: a transient failure (the write lock held past the busy timeout by a
            // checkpoint or another process) should not lose queued records.
            let mut result = log.append(&records).await;
            if let Err(err) = &result {
                tracing::warn!(records = records.len(), error = %err, "audit batch failed; retrying once");
                result = log.append(&records).await;
            }
            match result {
                Ok(links) => {
                    for (done, link) in waiters.drain(..).zip(links) {
                        if let Some(done) = done {
                            // The caller may have given up waiting; the record is written anyway.
                            let _ = done.send(Ok(link));
                        }
                    }
                }
                Err(err) => {
                    let message = err.to_string();
                    let lost = waiters.iter().filter(|w| w.is_none()).count();
                    tracing::error!(records = records.len(), error = %message, "audit batch failed");
                    failed.fetch_add(lost as u64, Ordering::AcqRel);
                    for done in waiters.drain(..).flatten() {
                        let _ = done.send(Err(StoreError::AuditWrite(message.clone())));
                    }
                }
            }
            records.clear();
            waiters.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(Ok(()));
        }
    }
}
