//! Obligation records and report statistics.

use async_trait::async_trait;
use tutela_types::Timestamp;

use super::Store;
use super::rows::{enum_name, marks};
use crate::error::{Result, StoreError};
use crate::obligations::{
    AppealTierCount, EscalationStats, FindingTierCount, ImportUser, InterventionTierCount,
    NewObligation, ObligationRecord, ObligationStore, Registration, parse_kind,
};

/// Rows per multi-row `INSERT` in a bulk import: 7 columns × 150 rows stays far below SQLite's
/// default limit of 32,766 bound parameters; on PostgreSQL (65,535 parameters, a network
/// round trip per statement) 1,000 rows.
const IMPORT_CHUNK: usize = if super::PG { 1_000 } else { 150 };

type ObligationRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
);

const OBLIGATION_COLUMNS: &str = "id, key, kind, trigger, profile, obligation, article, value, \
     threshold, description, due_items, status, opened_at, closed_at, note";

fn to_record(r: ObligationRow) -> Result<ObligationRecord> {
    let due_items: Vec<String> = serde_json::from_str(&r.10)
        .map_err(|e| StoreError::corrupt("obligations", "due_items", e.to_string()))?;
    Ok(ObligationRecord {
        id: r.0,
        key: r.1,
        kind: parse_kind(&r.2),
        trigger: r.3,
        profile: r.4,
        obligation: r.5,
        article: r.6,
        value: r.7.and_then(|v| u64::try_from(v).ok()),
        threshold: r.8.and_then(|v| u64::try_from(v).ok()),
        description: r.9,
        due_items,
        status: r.11,
        opened_at: Timestamp::from_unix(r.12),
        closed_at: r.13.map(Timestamp::from_unix),
        note: r.14,
    })
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[async_trait]
impl ObligationStore for Store {
    async fn open_obligation(&self, new: &NewObligation) -> Result<(ObligationRecord, bool)> {
        let mut tx = self.begin_write().await?;
        let due = serde_json::to_string(&new.due_items)
            .map_err(|e| StoreError::corrupt("obligations", "due_items", e.to_string()))?;
        let inserted = sqlx::query(
            "INSERT INTO obligations (key, kind, trigger, profile, obligation, article, value, \
             threshold, description, due_items, status, opened_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'open', $11) ON CONFLICT (key) DO NOTHING",
        )
        .bind(&new.key)
        .bind(new.kind.as_str())
        .bind(&new.trigger)
        .bind(&new.profile)
        .bind(&new.obligation)
        .bind(&new.article)
        .bind(new.value.and_then(|v| i64::try_from(v).ok()))
        .bind(new.threshold.and_then(|v| i64::try_from(v).ok()))
        .bind(&new.description)
        .bind(&due)
        .bind(new.at.unix())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let row: ObligationRow = sqlx::query_as(&format!(
            "SELECT {OBLIGATION_COLUMNS} FROM obligations WHERE key = $1"
        ))
        .bind(&new.key)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((to_record(row)?, inserted))
    }

    async fn list_obligations(&self, open_only: bool) -> Result<Vec<ObligationRecord>> {
        let sql = format!(
            "SELECT {OBLIGATION_COLUMNS} FROM obligations {} ORDER BY opened_at DESC, id DESC",
            if open_only {
                "WHERE status = 'open'"
            } else {
                ""
            }
        );
        let rows: Vec<ObligationRow> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
        rows.into_iter().map(to_record).collect()
    }

    async fn close_obligation(
        &self,
        id: i64,
        note: &str,
        at: Timestamp,
    ) -> Result<ObligationRecord> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE obligations SET status = 'closed', closed_at = $1, note = $2 WHERE id = $3",
        )
        .bind(at.unix())
        .bind(note)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let row: Option<ObligationRow> = sqlx::query_as(&format!(
            "SELECT {OBLIGATION_COLUMNS} FROM obligations WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        to_record(row.ok_or_else(|| StoreError::not_found("obligation", id))?)
    }

    async fn registered_count(
        &self,
        definition: Registration,
        at: Timestamp,
    ) -> Result<(u64, Vec<(String, u64)>)> {
        let column = match definition {
            Registration::FirstSeen => "first_seen",
            Registration::Admin => "registered_at",
        };
        let rows: Vec<(Option<String>, i64)> = sqlx::query_as(&format!(
            "SELECT jurisdiction, COUNT(*) FROM users \
             WHERE deleted_at IS NULL AND {column} <= $1 \
             GROUP BY jurisdiction ORDER BY jurisdiction"
        ))
        .bind(at.unix())
        .fetch_all(&self.pool)
        .await?;
        let per: Vec<(String, u64)> = rows
            .into_iter()
            .map(|(j, n)| (j.unwrap_or_else(|| "unknown".into()), count(n)))
            .collect();
        Ok((per.iter().map(|(_, n)| n).sum(), per))
    }

    async fn age_structure(&self) -> Result<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT age_state, COUNT(*) FROM users WHERE deleted_at IS NULL \
             GROUP BY age_state ORDER BY age_state",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(s, n)| (s, count(n))).collect())
    }

    async fn escalation_stats(&self, from: Timestamp, to: Timestamp) -> Result<EscalationStats> {
        let (opened, takeovers, claimed, resolved): (i64, Option<i64>, Option<i64>, Option<i64>) =
            sqlx::query_as(
                "SELECT COUNT(*), CAST(SUM(CASE WHEN takeover THEN 1 ELSE 0 END) AS BIGINT), \
                 CAST(SUM(CASE WHEN claimed_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT), \
                 CAST(SUM(CASE WHEN resolved_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) \
                 FROM escalations \
                 WHERE created_at >= $1 AND created_at < $2",
            )
            .bind(from.unix())
            .bind(to.unix())
            .fetch_one(&self.pool)
            .await?;
        let mut waits: Vec<i64> = sqlx::query_scalar(
            "SELECT claimed_at - created_at FROM escalations \
             WHERE created_at >= $1 AND created_at < $2 AND claimed_at IS NOT NULL",
        )
        .bind(from.unix())
        .bind(to.unix())
        .fetch_all(&self.pool)
        .await?;
        waits.sort_unstable();
        Ok(EscalationStats {
            opened: count(opened),
            takeovers: count(takeovers.unwrap_or(0)),
            claimed: count(claimed.unwrap_or(0)),
            resolved: count(resolved.unwrap_or(0)),
            median_secs_to_claim: crate::obligations::median_sorted(&waits)
                .map(|m| m.round() as i64),
        })
    }

    async fn notification_stats(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(String, String, u64)>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT contact_kind, status, COUNT(*) FROM outbox \
             WHERE created_at >= $1 AND created_at < $2 \
             GROUP BY contact_kind, status ORDER BY contact_kind, status",
        )
        .bind(from.unix())
        .bind(to.unix())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(k, s, n)| (k, s, count(n))).collect())
    }

    async fn intervention_kinds(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT kind, COUNT(*) FROM interventions WHERE at >= $1 AND at < $2 \
             GROUP BY kind ORDER BY kind",
        )
        .bind(from.unix())
        .bind(to.unix())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(k, n)| (k, count(n))).collect())
    }

    async fn daily_totals(
        &self,
        from: tutela_types::LocalDate,
        to: tutela_types::LocalDate,
    ) -> Result<Vec<(tutela_types::LocalDate, u64, u64)>> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT day, CAST(SUM(seconds) AS BIGINT), COUNT(DISTINCT user_id) FROM usage_daily \
             WHERE day BETWEEN $1 AND $2 GROUP BY day ORDER BY day",
        )
        .bind(from.0)
        .bind(to.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(d, s, u)| {
                (
                    tutela_types::LocalDate(i32::try_from(d).unwrap_or(0)),
                    count(s),
                    count(u),
                )
            })
            .collect())
    }

    async fn finding_tiers(&self, from: Timestamp, to: Timestamp) -> Result<Vec<FindingTierCount>> {
        super::tiers::finding_tiers(&self.pool, from, to).await
    }

    async fn intervention_tiers(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<InterventionTierCount>> {
        super::tiers::intervention_tiers(&self.pool, from, to).await
    }

    async fn appeal_tiers(&self, from: Timestamp, to: Timestamp) -> Result<Vec<AppealTierCount>> {
        super::tiers::appeal_tiers(&self.pool, from, to).await
    }

    async fn import_users(&self, users: &[ImportUser]) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let mut added = 0;
        for chunk in users.chunks(IMPORT_CHUNK) {
            let mut sql = String::from(
                "INSERT INTO users (id, first_seen, registered_at, age_state, jurisdiction, \
                 utc_offset_minutes, updated_at) VALUES ",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("({})", marks(i * 7 + 1, 7)));
            }
            sql.push_str(" ON CONFLICT (id) DO NOTHING");
            let mut q = sqlx::query(&sql);
            for u in chunk {
                q = q
                    .bind(&u.id)
                    .bind(u.first_seen.unix())
                    .bind(u.registered_at.map(Timestamp::unix))
                    .bind(enum_name(&u.age_state))
                    .bind(&u.jurisdiction)
                    .bind(u.utc_offset_minutes)
                    .bind(u.first_seen.unix());
            }
            added += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    async fn foreign_data(&self, prefix: &str) -> Result<Vec<(&'static str, u64)>> {
        // `substr` rather than LIKE: an id may hold `%` or `_`.
        let users: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE substr(id, 1, length($1)) <> $1")
                .bind(prefix)
                .fetch_one(&self.pool)
                .await?;
        let mut out = vec![("users with other ids", count(users))];
        for (what, sql) in [
            ("audit records", "SELECT COUNT(*) FROM audit_log"),
            ("complaints", "SELECT COUNT(*) FROM complaints"),
            ("staff accounts", "SELECT COUNT(*) FROM staff"),
        ] {
            let n: i64 = sqlx::query_scalar(sql).fetch_one(&self.pool).await?;
            out.push((what, count(n)));
        }
        out.retain(|(_, n)| *n > 0);
        Ok(out)
    }
}
