//! The notification outbox with leases and exponential backoff.

use super::Conn;
use async_trait::async_trait;
use tutela_types::Timestamp;

use super::Store;
use super::rows::{StoredNotification, enum_name, to_json};
use crate::error::{Result, StoreError};
use crate::model::{NewNotification, Notification, OutboxStatus, RetryPolicy};
use crate::traits::Outbox;

/// [`Outbox::enqueue`] inside the caller's write transaction.
pub(super) async fn enqueue_on(conn: &mut Conn, n: &NewNotification) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO outbox (created_at, user_id, escalation_id, contact_kind, channel, \
         target, payload, status, attempts, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $1) RETURNING id",
    )
    .bind(n.at.unix())
    .bind(&n.user_id)
    .bind(n.escalation_id)
    .bind(enum_name(&n.contact.kind))
    .bind(&n.contact.channel)
    .bind(&n.contact.address)
    .bind(to_json("notification payload", &n.payload)?)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

#[async_trait]
impl Outbox for Store {
    async fn enqueue(&self, n: &NewNotification) -> Result<i64> {
        // An explicit transaction, so a failed commit is an error (see `file_complaint`).
        let mut tx = self.begin_write().await?;
        let id = enqueue_on(&mut tx, n).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        limit: u32,
        policy: &RetryPolicy,
    ) -> Result<Vec<Notification>> {
        // One statement: select the due rows and lease them, so two workers never claim the
        // same row. The lease is the new `next_attempt_at`.
        let rows: Vec<StoredNotification> = sqlx::query_as(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2 \
             WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' \
             AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $3) \
             RETURNING *",
        )
        .bind(now.unix())
        .bind(now.plus_secs(policy.lease_secs).unix())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .into_iter()
            .map(Notification::try_from)
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|n| n.id);
        Ok(out)
    }

    async fn mark_sent(&self, id: i64, at: Timestamp) -> Result<()> {
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "UPDATE outbox SET status = 'sent', sent_at = $1, last_error = NULL WHERE id = $2",
        )
        .bind(at.unix())
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("notification", id));
        }
        Ok(())
    }

    async fn mark_failed(
        &self,
        id: i64,
        at: Timestamp,
        error: &str,
        policy: &RetryPolicy,
    ) -> Result<Notification> {
        let mut tx = self.begin_write().await?;
        let row: Option<StoredNotification> = sqlx::query_as("SELECT * FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let n =
            Notification::try_from(row.ok_or_else(|| StoreError::not_found("notification", id))?)?;
        // `attempts` already counts this attempt (claims count).
        let attempts = n.attempts.max(1);
        let (status, next) = if attempts >= policy.max_attempts {
            (OutboxStatus::Failed, at)
        } else {
            (
                OutboxStatus::Pending,
                at.plus_secs(policy.delay_after(attempts)),
            )
        };
        let row: StoredNotification = sqlx::query_as(
            "UPDATE outbox SET status = $1, next_attempt_at = $2, last_error = $3 WHERE id = $4 \
             RETURNING *",
        )
        .bind(status.as_str())
        .bind(next.unix())
        .bind(error)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Notification::try_from(row)
    }

    async fn get_notification(&self, id: i64) -> Result<Option<Notification>> {
        let row: Option<StoredNotification> = sqlx::query_as("SELECT * FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Notification::try_from).transpose()
    }
}
