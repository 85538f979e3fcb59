//! Interventions and counters, the raw material of the transparency and SB 243 reports.

use super::Conn;
use async_trait::async_trait;
use tutela_types::{Counter, LocalDate, Timestamp};

use super::Store;
use super::rows::{StoredIntervention, enum_name};
use crate::error::Result;
use crate::model::{CounterBump, CounterTotal, Intervention, InterventionCount};
use crate::traits::{CounterStore, InterventionStore};

#[async_trait]
impl InterventionStore for Store {
    async fn record_interventions(&self, items: &[Intervention]) -> Result<Vec<i64>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let ids =
            super::batch::insert_interventions(&mut tx, &items.iter().collect::<Vec<_>>()).await?;
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
            "SELECT * FROM interventions WHERE at >= $1 AND at < $2 ORDER BY at DESC, id DESC \
             LIMIT $3",
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
             WHERE i.at >= $1 AND i.at < $2 \
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
impl CounterStore for Store {
    async fn bump(
        &self,
        counter: Counter,
        jurisdiction: &str,
        at: Timestamp,
        by: u64,
    ) -> Result<()> {
        let _gate = self.write_gate().await;
        let mut conn = self.pool.acquire().await?;
        let bump = CounterBump {
            counter,
            jurisdiction: jurisdiction.to_owned(),
            at,
            by,
        };
        bump_on(&mut conn, &bump, self.options.report_utc_offset_minutes).await
    }

    async fn counter_totals(&self, from: LocalDate, to: LocalDate) -> Result<Vec<CounterTotal>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT name, jurisdiction, CAST(SUM(value) AS BIGINT) FROM counters WHERE day BETWEEN $1 AND $2 \
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

/// One counter bump inside the caller's transaction (or on its own connection).
pub(super) async fn bump_on(
    conn: &mut Conn,
    bump: &CounterBump,
    report_utc_offset_minutes: i32,
) -> Result<()> {
    let day = bump.at.local_date(report_utc_offset_minutes);
    sqlx::query(
        "INSERT INTO counters (name, jurisdiction, day, value) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name, jurisdiction, day) DO UPDATE SET value = counters.value + excluded.value",
    )
    .bind(enum_name(&bump.counter))
    .bind(&bump.jurisdiction)
    .bind(day.0)
    .bind(i64::try_from(bump.by).unwrap_or(i64::MAX))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
