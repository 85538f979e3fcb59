//! SQLite: interventions and counters, the raw material of the transparency and SB 243 reports.

use async_trait::async_trait;
use tutela_types::{Counter, LocalDate, Timestamp};

use super::SqliteStore;
use super::rows::{StoredIntervention, enum_name};
use super::users::BEGIN_WRITE;
use crate::error::Result;
use crate::model::{CounterTotal, Intervention, InterventionCount};
use crate::traits::{CounterStore, InterventionStore};

#[async_trait]
impl InterventionStore for SqliteStore {
    async fn record_interventions(&self, items: &[Intervention]) -> Result<Vec<i64>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let mut ids = Vec::with_capacity(items.len());
        for item in items {
            let r = StoredIntervention::from_domain(item)?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO interventions (at, user_id, session_id, jurisdiction, kind, \
                 detector, side, action, reasons, audit_seq) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(r.at)
            .bind(&r.user_id)
            .bind(&r.session_id)
            .bind(&r.jurisdiction)
            .bind(&r.kind)
            .bind(&r.detector)
            .bind(&r.side)
            .bind(&r.action)
            .bind(&r.reasons)
            .bind(r.audit_seq)
            .fetch_one(&mut *tx)
            .await?;
            for reason in &item.reasons {
                sqlx::query(
                    "INSERT INTO intervention_reasons (intervention_id, profile, obligation, \
                     article) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(&reason.profile)
                .bind(&reason.obligation)
                .bind(&reason.article)
                .execute(&mut *tx)
                .await?;
            }
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn interventions_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<Intervention>> {
        sqlx::query_as::<_, StoredIntervention>(
            "SELECT * FROM interventions WHERE at >= ? AND at < ? ORDER BY at DESC, id DESC \
             LIMIT ?",
        )
        .bind(from.unix())
        .bind(to.unix())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(Intervention::try_from)
        .collect()
    }

    async fn intervention_counts(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<InterventionCount>> {
        let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT i.jurisdiction, i.kind, r.profile, r.obligation, COUNT(*) \
             FROM interventions i JOIN intervention_reasons r ON r.intervention_id = i.id \
             WHERE i.at >= ? AND i.at < ? \
             GROUP BY i.jurisdiction, i.kind, r.profile, r.obligation ORDER BY 1, 2, 3, 4",
        )
        .bind(from.unix())
        .bind(to.unix())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(jurisdiction, kind, profile, obligation, n)| InterventionCount {
                    jurisdiction,
                    kind,
                    profile,
                    obligation,
                    count: u64::try_from(n).unwrap_or(0),
                },
            )
            .collect())
    }
}

#[async_trait]
impl CounterStore for SqliteStore {
    async fn bump(
        &self,
        counter: Counter,
        jurisdiction: &str,
        at: Timestamp,
        by: u64,
    ) -> Result<()> {
        let day = at.local_date(self.options.report_utc_offset_minutes);
        sqlx::query(
            "INSERT INTO counters (name, jurisdiction, day, value) VALUES (?, ?, ?, ?) \
             ON CONFLICT (name, jurisdiction, day) DO UPDATE SET value = value + excluded.value",
        )
        .bind(enum_name(&counter))
        .bind(jurisdiction)
        .bind(day.0)
        .bind(i64::try_from(by).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn counter_totals(&self, from: LocalDate, to: LocalDate) -> Result<Vec<CounterTotal>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT name, jurisdiction, SUM(value) FROM counters WHERE day BETWEEN ? AND ? \
             GROUP BY name, jurisdiction ORDER BY name, jurisdiction",
        )
        .bind(from.0)
        .bind(to.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, jurisdiction, value)| CounterTotal {
                name,
                jurisdiction,
                value: u64::try_from(value).unwrap_or(0),
            })
            .collect())
    }
}
