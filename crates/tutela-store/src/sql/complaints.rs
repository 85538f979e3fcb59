//! Complaints and appeals.

use async_trait::async_trait;
use tutela_types::Timestamp;

use super::Store;
use super::rows::StoredComplaint;
use crate::error::{Result, StoreError};
use crate::model::{Complaint, ComplaintCount, ComplaintStatus, NewComplaint, PurgeReport};
use crate::traits::{ComplaintStore, Retention};

#[async_trait]
impl ComplaintStore for Store {
    async fn file_complaint(&self, new: &NewComplaint) -> Result<Complaint> {
        // An explicit transaction, so a failed commit is an error: in autocommit mode the
        // commit of an `INSERT ... RETURNING` happens when the statement is reset, after the
        // row (and its id) came back, and a failure there (a full disk) went unseen: the
        // caller got a receipt for a row that was rolled back, and the next complaint the
        // same id.
        let mut tx = self.begin_write().await?;
        let row: StoredComplaint = sqlx::query_as(
            "INSERT INTO complaints (user_id, category, intervention_id, body, status, \
             received_at, due_at) VALUES ($1, $2, $3, $4, 'open', $5, $6) RETURNING *",
        )
        .bind(&new.user_id)
        .bind(&new.category)
        .bind(new.intervention_id)
        .bind(&new.body)
        .bind(new.at.unix())
        .bind(new.at.plus_secs(new.handling_limit_secs).unix())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Complaint::try_from(row)
    }

    async fn get_complaint(&self, id: i64) -> Result<Option<Complaint>> {
        let row: Option<StoredComplaint> = sqlx::query_as("SELECT * FROM complaints WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Complaint::try_from).transpose()
    }

    async fn list_complaints(
        &self,
        status: Option<ComplaintStatus>,
        limit: u32,
    ) -> Result<Vec<Complaint>> {
        let limit = i64::from(limit.min(1000));
        let rows: Vec<StoredComplaint> = match status {
            Some(s) => {
                sqlx::query_as(
                    "SELECT * FROM complaints WHERE status = $1 ORDER BY due_at, id LIMIT $2",
                )
                .bind(s.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query_as("SELECT * FROM complaints ORDER BY due_at, id LIMIT $1")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.into_iter().map(Complaint::try_from).collect()
    }

    async fn resolve_complaint(&self, id: i64, outcome: &str, at: Timestamp) -> Result<Complaint> {
        let mut tx = self.begin_write().await?;
        let row: Option<StoredComplaint> = sqlx::query_as("SELECT * FROM complaints WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let current =
            Complaint::try_from(row.ok_or_else(|| StoreError::not_found("complaint", id))?)?;
        if current.status == ComplaintStatus::Resolved {
            return Err(StoreError::Conflict {
                what: "complaint",
                id: id.to_string(),
                state: "resolved".into(),
                operation: "resolve",
            });
        }
        let row: StoredComplaint = sqlx::query_as(
            "UPDATE complaints SET status = 'resolved', outcome = $1, resolved_at = $2 \
             WHERE id = $3 RETURNING *",
        )
        .bind(outcome)
        .bind(at.unix())
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Complaint::try_from(row)
    }

    async fn complaint_counts(
        &self,
        from: Timestamp,
        to: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<ComplaintCount>> {
        let rows: Vec<(String, Option<String>, i64, i64)> = sqlx::query_as(
            "SELECT category, outcome, COUNT(*), \
             CAST(SUM(CASE WHEN COALESCE(resolved_at, $3) > due_at THEN 1 ELSE 0 END) AS BIGINT) \
             FROM complaints WHERE received_at >= $1 AND received_at < $2 \
             GROUP BY category, outcome ORDER BY category, outcome",
        )
        .bind(from.unix())
        .bind(to.unix())
        .bind(now.unix())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(category, outcome, count, overdue)| ComplaintCount {
                category,
                outcome,
                count: u64::try_from(count).unwrap_or(0),
                overdue: u64::try_from(overdue).unwrap_or(0),
            })
            .collect())
    }
}

#[async_trait]
impl Retention for Store {
    async fn purge_content(&self, before: Timestamp) -> Result<PurgeReport> {
        let cutoff = before.unix();
        let mut tx = self.begin_write().await?;
        let messages = sqlx::query(
            "DELETE FROM escalation_messages WHERE escalation_id IN \
             (SELECT id FROM escalations WHERE status = 'resolved' AND resolved_at < $1)",
        )
        .bind(cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let notifications = sqlx::query(
            "DELETE FROM outbox WHERE status IN ('sent', 'failed') AND created_at < $1",
        )
        .bind(cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let complaint_texts = sqlx::query(
            "UPDATE complaints SET body = NULL \
             WHERE status = 'resolved' AND resolved_at < $1 AND body IS NOT NULL",
        )
        .bind(cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(PurgeReport {
            messages,
            notifications,
            complaint_texts,
        })
    }
}
