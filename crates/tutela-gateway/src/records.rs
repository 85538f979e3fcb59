//! Everything the gateway writes to the store, in one place. Normal turns go through a
//! batching writer task and never wait for the disk; an intervention's audit record is appended
//! durably (and awaited) before its reply leaves. All audit appends go through the one writer,
//! so the hash chain is appended in order and never forks.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tutela_store::{AuditEntry, Backend, ChainLink, Pseudonymizer, StoreError, TurnRecord};

/// How many queued items one batch writes at most.
const MAX_BATCH: usize = 512;

/// How long the writer gathers normal turns before writing them in one transaction.
const GATHER: std::time::Duration = std::time::Duration::from_millis(20);

/// Queue length of the writer; beyond it a normal turn's record is written on the awaiting
/// path instead of being dropped.
const QUEUE: usize = 16_384;

enum Job {
    Turn(Box<TurnRecord>),
    Audit(
        Box<AuditEntry>,
        Option<oneshot::Sender<Result<ChainLink, String>>>,
    ),
}

/// The store as the gateway uses it.
#[derive(Clone)]
pub struct Records {
    /// The backend, for reads and the low-volume writes (escalations, outbox, admin).
    pub backend: Arc<dyn Backend>,
    tx: mpsc::Sender<Job>,
    /// Salted hashes for subjects and content.
    pub pseudonyms: Pseudonymizer,
}

impl Records {
    /// Starts the writer task on the current runtime.
    pub fn start(backend: Arc<dyn Backend>, pseudonyms: Pseudonymizer) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(backend.clone(), pseudonyms.clone(), rx));
        Self {
            backend,
            tx,
            pseudonyms,
        }
    }

    /// Queues a normal turn: its clocks and usage, and its audit record. Never waits.
    pub fn turn(&self, turn: TurnRecord, audit: AuditEntry) {
        if self.tx.try_send(Job::Turn(Box::new(turn))).is_err() {
            tracing::warn!("record queue full; a turn record was written late");
        }
        if let Err(mpsc::error::TrySendError::Full(job)) =
            self.tx.try_send(Job::Audit(Box::new(audit), None))
        {
            // Never drop an audit record: wait for room on a background task.
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(job).await;
            });
        }
    }

    /// Queues an audit record without waiting.
    pub fn audit(&self, audit: AuditEntry) {
        if let Err(mpsc::error::TrySendError::Full(job)) =
            self.tx.try_send(Job::Audit(Box::new(audit), None))
        {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(job).await;
            });
        }
    }

    /// Queues the clocks of a turn without its audit record (which follows separately).
    pub fn turn_only(&self, turn: TurnRecord) {
        if let Err(mpsc::error::TrySendError::Full(job)) =
            self.tx.try_send(Job::Turn(Box::new(turn)))
        {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(job).await;
            });
        }
    }

    /// Appends an audit record and waits until it is committed.
    pub async fn audit_durable(&self, audit: AuditEntry) -> Result<ChainLink, String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Job::Audit(Box::new(audit), Some(ack)))
            .await
            .map_err(|_| StoreError::WriterClosed.to_string())?;
        done.await
            .map_err(|_| StoreError::WriterClosed.to_string())?
    }
}

/// A job someone waits for (a durable audit record).
fn is_urgent(job: &Job) -> bool {
    matches!(job, Job::Audit(_, Some(_)))
}

async fn writer(backend: Arc<dyn Backend>, pseudonyms: Pseudonymizer, mut rx: mpsc::Receiver<Job>) {
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    loop {
        if rx.recv_many(&mut jobs, MAX_BATCH).await == 0 {
            return;
        }
        // Group commit: unless someone waits for durability, gather for a moment so one
        // transaction carries many turns (each write costs thread hops and a WAL append).
        let mut urgent = jobs.iter().any(is_urgent);
        if !urgent && jobs.len() < MAX_BATCH {
            let deadline = tokio::time::Instant::now() + GATHER;
            while !urgent && jobs.len() < MAX_BATCH {
                let seen = jobs.len();
                let room = MAX_BATCH - seen;
                match tokio::time::timeout_at(deadline, rx.recv_many(&mut jobs, room)).await {
                    Ok(n) if n > 0 => urgent = jobs[seen..].iter().any(is_urgent),
                    _ => break,
                }
            }
        }
        let mut turns: Vec<TurnRecord> = Vec::new();
        let mut audits = Vec::new();
        let mut acks = Vec::new();
        for job in jobs.drain(..) {
            match job {
                Job::Turn(t) => turns.push(*t),
                Job::Audit(entry, ack) => match pseudonyms.prepare(&entry) {
                    Ok(rec) => {
                        audits.push(rec);
                        acks.push(ack);
                    }
                    Err(e) => {
                        tracing::error!("audit record cannot be encoded: {e}");
                        if let Some(a) = ack {
                            let _ = a.send(Err(e.to_string()));
                        }
                    }
                },
            }
        }
        if !audits.is_empty() {
            match backend.append(&audits).await {
                Ok(links) => {
                    for (ack, link) in acks.into_iter().zip(links) {
                        if let Some(a) = ack {
                            let _ = a.send(Ok(link));
                        }
                    }
                }
                Err(e) => {
                    tracing::error!("audit append failed: {e}");
                    let msg = e.to_string();
                    for a in acks.into_iter().flatten() {
                        let _ = a.send(Err(msg.clone()));
                    }
                }
            }
        }
        if !turns.is_empty()
            && let Err(e) = backend.record_turns(&turns).await
        {
            tracing::error!("turn records failed: {e}");
        }
    }
}
