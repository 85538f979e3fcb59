//! Case context (kept turns, findings) and hand-over between staff.

use super::Conn;
use async_trait::async_trait;
use tutela_types::{Finding, Timestamp};

use super::Store;
use super::escalations::{conflict, load};
use super::rows::{StoredNotification, marks, to_json};
use crate::cases::{CaseStore, CaseSummary, CaseTurn, NewCaseTurn};
use crate::error::{Result, StoreError};
use crate::model::{Escalation, EscalationStatus, Notification};

fn findings(s: &str) -> Result<Vec<Finding>> {
    serde_json::from_str(s)
        .map_err(|e| StoreError::corrupt("case_turns", "findings", e.to_string()))
}

/// [`CaseStore::keep_case_turns`] inside the caller's write transaction.
pub(super) async fn keep_on(
    conn: &mut Conn,
    case_id: i64,
    prior: &[NewCaseTurn],
    trigger: &NewCaseTurn,
    at: Timestamp,
) -> Result<()> {
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM case_turns WHERE escalation_id = $1")
        .bind(case_id)
        .fetch_one(&mut *conn)
        .await?;
    let turns = if kept == 0 { prior } else { &[] };
    for t in turns.iter().chain(std::iter::once(trigger)) {
        sqlx::query(
            "INSERT INTO case_turns (escalation_id, role, body, at, trigger, findings) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(case_id)
        .bind(&t.role)
        .bind(&t.body)
        .bind(at.unix())
        .bind(t.trigger)
        .bind(to_json("case findings", &t.findings)?)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[async_trait]
impl CaseStore for Store {
    async fn keep_case_turns(
        &self,
        case_id: i64,
        prior: &[NewCaseTurn],
        trigger: &NewCaseTurn,
        at: Timestamp,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        keep_on(&mut tx, case_id, prior, trigger, at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn case_turns(&self, case_id: i64) -> Result<Vec<CaseTurn>> {
        let rows: Vec<(i64, i64, String, String, i64, bool, String)> = sqlx::query_as(
            "SELECT id, escalation_id, role, body, at, trigger, findings FROM case_turns \
             WHERE escalation_id = $1 ORDER BY id",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(CaseTurn {
                    id: r.0,
                    escalation_id: r.1,
                    role: r.2,
                    body: r.3,
                    at: Timestamp::from_unix(r.4),
                    trigger: r.5,
                    findings: findings(&r.6)?,
                })
            })
            .collect()
    }

    async fn case_summaries(&self, case_ids: &[i64]) -> Result<Vec<CaseSummary>> {
        let mut out = Vec::with_capacity(case_ids.len());
        for chunk in case_ids.chunks(500) {
            let marks = marks(1, chunk.len());
            let sql = format!(
                "SELECT e.id, e.outcome, \
                 (SELECT {group_array}(t.findings){as_text} FROM case_turns t \
                  WHERE t.escalation_id = e.id AND t.trigger), \
                 {greatest}(COALESCE((SELECT MAX(t.at) FROM case_turns t \
                  WHERE t.escalation_id = e.id AND t.trigger), 0), \
                 COALESCE((SELECT MAX(m.at) FROM escalation_messages m \
                  WHERE m.escalation_id = e.id AND m.direction = 'from_user'), 0)) \
                 FROM escalations e WHERE e.id IN ({marks})",
                group_array = super::JSON_GROUP_ARRAY,
                as_text = if super::PG { "::text" } else { "" },
                greatest = super::GREATEST,
            );
            let mut q = sqlx::query_as::<_, (i64, Option<String>, Option<String>, i64)>(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            for (id, outcome, lists, last) in q.fetch_all(&self.pool).await? {
                let mut all = Vec::new();
                if let Some(lists) = lists {
                    let texts: Vec<String> = serde_json::from_str(&lists).map_err(|e| {
                        StoreError::corrupt("case_turns", "findings", e.to_string())
                    })?;
                    for t in texts {
                        all.extend(findings(&t)?);
                    }
                }
                out.push(CaseSummary {
                    id,
                    findings: all,
                    last_user_at: (last > 0).then(|| Timestamp::from_unix(last)),
                    outcome,
                });
            }
        }
        Ok(out)
    }

    async fn assign_escalation(&self, id: i64, staff: &str, at: Timestamp) -> Result<Escalation> {
        let mut tx = self.begin_write().await?;
        let case = load(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::not_found("escalation", id))?;
        if !case.status.is_active() {
            return Err(conflict(&case, "assign"));
        }
        sqlx::query(
            "UPDATE escalations SET status = 'claimed', claimed_by = $1, \
             claimed_at = COALESCE(claimed_at, $2) WHERE id = $3",
        )
        .bind(staff)
        .bind(at.unix())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let case = load(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::not_found("escalation", id))?;
        tx.commit().await?;
        Ok(case)
    }

    async fn release_escalation(&self, id: i64) -> Result<Escalation> {
        let mut tx = self.begin_write().await?;
        let case = load(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::not_found("escalation", id))?;
        if case.status != EscalationStatus::Claimed {
            return Err(conflict(&case, "put back in the queue"));
        }
        sqlx::query("UPDATE escalations SET status = 'open', claimed_by = NULL WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let case = load(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::not_found("escalation", id))?;
        tx.commit().await?;
        Ok(case)
    }

    async fn resolve_case(
        &self,
        id: i64,
        staff: &str,
        note: &str,
        outcome: &str,
        at: Timestamp,
    ) -> Result<Escalation> {
        let mut tx = self.begin_write().await?;
        let case = load(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::not_found("escalation", id))?;
        if !case.status.is_active() {
            return Err(conflict(&case, "resolve"));
        }
        sqlx::query(
            "UPDATE escalations SET status = 'resolved', resolved_at = $1, resolution = $2, \
             outcome = $3, claimed_by = COALESCE(claimed_by, $4), \
             claimed_at = COALESCE(claimed_at, $1) WHERE id = $5",
        )
        .bind(at.unix())
        .bind(note)
        .bind(outcome)
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

    async fn case_notifications(&self, case_id: i64) -> Result<Vec<Notification>> {
        sqlx::query_as::<_, StoredNotification>(
            "SELECT * FROM outbox WHERE escalation_id = $1 ORDER BY id",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(Notification::try_from)
        .collect()
    }

    async fn purge_case_turns(&self, before: Timestamp) -> Result<u64> {
        let _gate = self.write_gate().await;
        Ok(sqlx::query(
            "DELETE FROM case_turns WHERE escalation_id IN \
             (SELECT id FROM escalations WHERE status = 'resolved' AND resolved_at < $1)",
        )
        .bind(before.unix())
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
