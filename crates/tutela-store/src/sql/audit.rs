//! Appending to and reading the audit chain.

use async_trait::async_trait;

use super::Store;
use crate::audit::{AuditQuery, ChainLink, GENESIS_HASH, NewAuditRecord, StoredAuditRecord};
use crate::error::Result;
use crate::traits::AuditLog;

/// Rows per INSERT statement: 11 parameters each, well under SQLite's 32,766 limit.
const ROWS_PER_INSERT: usize = 128;

/// Largest page the admin query returns.
const MAX_QUERY: u32 = 1_000;

#[async_trait]
impl AuditLog for Store {
    async fn append(&self, records: &[NewAuditRecord]) -> Result<Vec<ChainLink>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        // INVARIANT (single chain): the head is read and advanced inside one write
        // transaction, under a process-wide lock; `BEGIN IMMEDIATE` extends that to other
        // processes writing the same file.
        let mut tx = self.begin_write_on(&self.audit_pool).await?;
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await?;
        let (mut seq, mut prev) = head.unwrap_or((0, GENESIS_HASH.to_owned()));
        let mut rows = Vec::with_capacity(records.len());
        for new in records {
            seq += 1;
            let row = StoredAuditRecord::chain(new, seq, &prev);
            prev.clone_from(&row.hash);
            rows.push(row);
        }
        // Multi-row inserts: each statement is a round trip to sqlx's connection thread, so
        // one per row would cost more than the insert itself.
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO audit_log (seq, at, kind, subject, session, jurisdiction, payload, \
                 profile_hash, content_hash, prev_hash, hash) ",
            );
            insert.push_values(chunk, |mut b, row| {
                b.push_bind(row.seq)
                    .push_bind(row.at)
                    .push_bind(&row.kind)
                    .push_bind(&row.subject)
                    .push_bind(&row.session)
                    .push_bind(&row.jurisdiction)
                    .push_bind(&row.payload)
                    .push_bind(&row.profile_hash)
                    .push_bind(&row.content_hash)
                    .push_bind(&row.prev_hash)
                    .push_bind(&row.hash);
            });
            insert.build().execute(&mut *tx).await?;
        }
        let links: Vec<ChainLink> = rows.iter().map(StoredAuditRecord::link).collect();
        sqlx::query(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        )
        .bind(seq)
        .bind(&prev)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(links)
    }

    async fn audit_page(&self, after_seq: i64, limit: u32) -> Result<Vec<StoredAuditRecord>> {
        Ok(
            sqlx::query_as("SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after_seq)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn recorded_head(&self) -> Result<Option<ChainLink>> {
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?;
        Ok(head.map(|(seq, hash)| ChainLink { seq, hash }))
    }

    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<StoredAuditRecord>> {
        let limit = if q.limit == 0 {
            MAX_QUERY
        } else {
            q.limit.min(MAX_QUERY)
        };
        // Only the conditions asked for, so SQLite picks the subject index for per-user
        // queries and the primary key for paging.
        let mut sql = String::from("SELECT * FROM audit_log WHERE seq > $1");
        let mut n = 1;
        let mut next = || {
            n += 1;
            n
        };
        if q.subject.is_some() {
            sql.push_str(&format!(" AND subject = ${}", next()));
        }
        if q.from.is_some() {
            sql.push_str(&format!(" AND at >= ${}", next()));
        }
        if q.to.is_some() {
            sql.push_str(&format!(" AND at < ${}", next()));
        }
        sql.push_str(&format!(" ORDER BY seq LIMIT ${}", next()));
        let mut query = sqlx::query_as(&sql).bind(q.after_seq.unwrap_or(0));
        if let Some(s) = &q.subject {
            query = query.bind(s);
        }
        if let Some(t) = q.from {
            query = query.bind(t.unix());
        }
        if let Some(t) = q.to {
            query = query.bind(t.unix());
        }
        Ok(query.bind(i64::from(limit)).fetch_all(&self.pool).await?)
    }
}
