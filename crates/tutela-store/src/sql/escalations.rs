//! Escalation cases and takeover messages.

use super::Conn;
use async_trait::async_trait;
use tutela_types::Timestamp;

use super::Store;
use super::rows::{StoredEscalation, StoredEscalationMessage, enum_name, marks, to_json};
use crate::error::{Result, StoreError};
use crate::model::{Direction, Escalation, EscalationMessage, EscalationStatus, NewEscalation};
use crate::traits::EscalationStore;

pub(super) async fn load(conn: &mut Conn, id: i64) -> Result<Option<Escalation>> {
    let row: Option<StoredEscalation> = sqlx::query_as("SELECT * FROM escalations WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(Escalation::try_from).transpose()
}

async fn active_for(conn: &mut Conn, user_id: &str) -> Result<Option<Escalation>> {
    let row: Option<StoredEscalation> = sqlx::query_as(
        "SELECT * FROM escalations WHERE user_id = $1 AND status IN ('open', 'claimed') \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(Escalation::try_from).transpose()
}

/// [`EscalationStore::open_escalation`] inside the caller's write transaction.
pub(super) async fn open_on(conn: &mut Conn, new: &NewEscalation) -> Result<(Escalation, bool)> {
    if let Some(mut active) = active_for(&mut *conn, &new.user_id).await? {
        // One active case per user: a second crisis turn raises the case, not the queue.
        active.severity = active.severity.max(new.severity);
        active.takeover |= new.takeover;
        sqlx::query("UPDATE escalations SET severity = $1, takeover = $2 WHERE id = $3")
            .bind(enum_name(&active.severity))
            .bind(active.takeover)
            .bind(active.id)
            .execute(&mut *conn)
            .await?;
        return Ok((active, false));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO escalations (user_id, session_id, jurisdiction, status, severity, \
         takeover, detector, reasons, created_at) \
         VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(&new.user_id)
    .bind(&new.session_id)
    .bind(&new.jurisdiction)
    .bind(enum_name(&new.severity))
    .bind(new.takeover)
    .bind(&new.detector)
    .bind(to_json("escalation reasons", &new.reasons)?)
    .bind(new.at.unix())
    .fetch_one(&mut *conn)
    .await?;
    let created = load(&mut *conn, id)
        .await?
        .ok_or_else(|| StoreError::not_found("escalation", id))?;
    Ok((created, true))
}

pub(super) fn conflict(e: &Escalation, operation: &'static str) -> StoreError {
    StoreError::Conflict {
        what: "escalation",
        id: e.id.to_string(),
        state: match &e.claimed_by {
            Some(by) if e.status == EscalationStatus::Claimed => format!("claimed by `{by}`"),
            _ => e.status.as_str().to_owned(),
        },
        operation,
    }
}

#[async_trait]
impl EscalationStore for Store {
    async fn open_escalation(&self, new: &NewEscalation) -> Result<(Escalation, bool)> {
        let mut tx = self.begin_write().await?;
        let opened = open_on(&mut tx, new).await?;
        tx.commit().await?;
        Ok(opened)
    }

    async fn get_escalation(&self, id: i64) -> Result<Option<Escalation>> {
        let mut conn = self.pool.acquire().await?;
        load(&mut conn, id).await
    }

    async fn active_escalation(&self, user_id: &str) -> Result<Option<Escalation>> {
        let mut conn = self.pool.acquire().await?;
        active_for(&mut conn, user_id).await
    }

    async fn list_escalations(
        &self,
        statuses: &[EscalationStatus],
        limit: u32,
    ) -> Result<Vec<Escalation>> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        let marks = marks(1, statuses.len());
        let last = statuses.len() + 1;
        let sql = format!(
            "SELECT * FROM escalations WHERE status IN ({marks}) ORDER BY created_at, id \
             LIMIT ${last}"
        );
        let mut q = sqlx::query_as::<_, StoredEscalation>(&sql);
        for s in statuses {
            q = q.bind(s.as_str());
        }
        q.bind(i64::from(limit.min(1000)))
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(Escalation::try_from)
            .collect()
    }

    async fn claim_escalation(&self, id: i64, staff: &str, at: Timestamp) -> Result<Escalation> {
        let mut tx = self.begin_write().await?;
        let case = load(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::not_found("escalation", id))?;
        match case.status {
            EscalationStatus::Open => {
                sqlx::query(
                    "UPDATE escalations SET status = 'claimed', claimed_by = $1, claimed_at = $2 \
                     WHERE id = $3",
                )
                .bind(staff)
                .bind(at.unix())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            EscalationStatus::Claimed if case.claimed_by.as_deref() == Some(staff) => {}
            _ => return Err(conflict(&case, "claim")),
        }
        let case = load(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::not_found("escalation", id))?;
        tx.commit().await?;
        Ok(case)
    }

    async fn resolve_escalation(
        &self,
        id: i64,
        staff: &str,
        resolution: Option<&str>,
        at: Timestamp,
    ) -> Result<Escalation> {
        let mut tx = self.begin_write().await?;
        let case = load(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::not_found("escalation", id))?;
        if case.status == EscalationStatus::Resolved {
            return Err(conflict(&case, "resolve"));
        }
        sqlx::query(
            "UPDATE escalations SET status = 'resolved', resolved_at = $1, resolution = $2, \
             claimed_by = COALESCE(claimed_by, $3), claimed_at = COALESCE(claimed_at, $1) \
             WHERE id = $4",
        )
        .bind(at.unix())
        .bind(resolution)
        .bind(staff)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let case = load(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::not_found("escalation", id))?;
        tx.commit().await?;
        Ok(case)
    }

    async fn add_escalation_message(
        &self,
        escalation_id: i64,
        direction: Direction,
        author: Option<&str>,
        body: &str,
        at: Timestamp,
    ) -> Result<EscalationMessage> {
        if super::PG {
            // One statement, no advisory lock: the case's row is locked (`FOR SHARE`) while
            // the message goes in, so a claim or resolution updating it waits for this commit,
            // or this statement for theirs, and then reads the case as they left it. A
            // person's message to their case is a fifth of the chat mix's turns; this is one
            // round trip where the transaction took five.
            let row: Option<StoredEscalationMessage> = sqlx::query_as(
                "INSERT INTO escalation_messages (escalation_id, direction, author, body, at) \
                 SELECT id, $2, $3, $4, $5 FROM escalations \
                 WHERE id = $1 AND status IN ('open', 'claimed') FOR SHARE \
                 RETURNING *",
            )
            .bind(escalation_id)
            .bind(direction.as_str())
            .bind(author)
            .bind(body)
            .bind(at.unix())
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row {
                return EscalationMessage::try_from(row);
            }
            let mut conn = self.pool.acquire().await?;
            let case = load(&mut conn, escalation_id)
                .await?
                .ok_or_else(|| StoreError::not_found("escalation", escalation_id))?;
            return Err(conflict(&case, "add a message"));
        }
        // SQLite: a write transaction, which sees no claim or resolution running.
        let mut tx = self.begin_write().await?;
        let case = load(&mut tx, escalation_id)
            .await?
            .ok_or_else(|| StoreError::not_found("escalation", escalation_id))?;
        if !case.status.is_active() {
            return Err(conflict(&case, "add a message"));
        }
        let row: StoredEscalationMessage = sqlx::query_as(
            "INSERT INTO escalation_messages (escalation_id, direction, author, body, at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING *",
        )
        .bind(escalation_id)
        .bind(direction.as_str())
        .bind(author)
        .bind(body)
        .bind(at.unix())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        EscalationMessage::try_from(row)
    }

    async fn escalation_messages(&self, escalation_id: i64) -> Result<Vec<EscalationMessage>> {
        sqlx::query_as::<_, StoredEscalationMessage>(
            "SELECT * FROM escalation_messages WHERE escalation_id = $1 ORDER BY id",
        )
        .bind(escalation_id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(EscalationMessage::try_from)
        .collect()
    }

    async fn undelivered_replies(&self, user_id: &str) -> Result<Vec<EscalationMessage>> {
        sqlx::query_as::<_, StoredEscalationMessage>(
            "SELECT m.* FROM escalation_messages m JOIN escalations e ON e.id = m.escalation_id \
             WHERE e.user_id = $1 AND m.direction = 'to_user' AND m.delivered_at IS NULL \
             ORDER BY m.id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(EscalationMessage::try_from)
        .collect()
    }

    async fn mark_delivered(&self, message_ids: &[i64], at: Timestamp) -> Result<()> {
        let _gate = self.write_gate().await;
        if message_ids.is_empty() {
            return Ok(());
        }
        let marks = marks(2, message_ids.len());
        let sql = format!(
            "UPDATE escalation_messages SET delivered_at = $1 \
             WHERE delivered_at IS NULL AND id IN ({marks})"
        );
        let mut q = sqlx::query(&sql).bind(at.unix());
        for id in message_ids {
            q = q.bind(id);
        }
        q.execute(&self.pool).await?;
        Ok(())
    }

    async fn active_escalation_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM escalations WHERE status IN ('open', 'claimed')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
