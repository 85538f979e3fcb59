//! SQLite: session clocks, session rows, daily usage and monthly activity.

use async_trait::async_trait;
use sqlx::{QueryBuilder, SqliteConnection};
use tutela_types::{LocalDate, SessionState, Timestamp};

use super::SqliteStore;
use super::rows::{StoredDailyUsage, StoredSession, parse_json, to_json};
use crate::error::{Result, StoreError};
use crate::model::{DailyUsage, Intervention, MonthlyActive, Session, Tally, TurnRecord, month_of};
use crate::traits::{SessionStore, UsageStore};

const UPSERT_STATE: &str = "INSERT INTO session_state (user_id, state, updated_at) VALUES (?, ?, ?) \
     ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at";

#[async_trait]
impl SessionStore for SqliteStore {
    async fn session_state(&self, user_id: &str) -> Result<Option<SessionState>> {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM session_state WHERE user_id = ?")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        state
            .map(|s| parse_json("session_state", "state", &s))
            .transpose()
    }

    async fn save_session_state(
        &self,
        user_id: &str,
        state: &SessionState,
        at: Timestamp,
    ) -> Result<()> {
        let _gate = self.write_gate().await;
        sqlx::query(UPSERT_STATE)
            .bind(user_id)
            .bind(to_json("session state", state)?)
            .bind(at.unix())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn record_turn(&self, turn: &TurnRecord) -> Result<()> {
        self.record_turns(std::slice::from_ref(turn)).await
    }

    async fn record_turns(&self, turns: &[TurnRecord]) -> Result<()> {
        self.record_batch(turns, &[]).await
    }

    async fn record_batch(&self, turns: &[TurnRecord], tallies: &[Tally]) -> Result<()> {
        if turns.is_empty() && tallies.is_empty() {
            return Ok(());
        }
        let offset = self.options.report_utc_offset_minutes;
        let mut tx = self.begin_write().await?;
        for chunk in turns.chunks(TURNS_PER_STATEMENT) {
            write_turns(&mut tx, chunk, offset).await?;
        }
        let interventions: Vec<&Intervention> =
            tallies.iter().flat_map(|t| &t.interventions).collect();
        super::reports::insert_interventions(&mut tx, &interventions).await?;
        for bump in tallies.iter().flat_map(|t| &t.counts) {
            super::reports::bump_on(&mut tx, bump, offset).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn end_session(&self, session_id: &str, at: Timestamp, reason: &str) -> Result<()> {
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL",
        )
        .bind(at.unix())
        .bind(reason)
        .bind(session_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 && self.get_session(session_id).await?.is_none() {
            return Err(StoreError::not_found("session", session_id));
        }
        Ok(())
    }

    async fn get_session(&self, session_id: &str) -> Result<Option<Session>> {
        let row: Option<StoredSession> = sqlx::query_as("SELECT * FROM sessions WHERE id = ?")
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Session::try_from).transpose()
    }

    async fn session_durations(&self, from: Timestamp, to: Timestamp) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(ended_at, last_seen_at) - started_at FROM sessions \
             WHERE started_at >= ? AND started_at < ? ORDER BY started_at",
        )
        .bind(from.unix())
        .bind(to.unix())
        .fetch_all(&self.pool)
        .await?)
    }
}

#[async_trait]
impl UsageStore for SqliteStore {
    async fn daily_usage_secs(&self, user_id: &str, day: LocalDate) -> Result<u32> {
        let secs: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(seconds), 0) FROM usage_daily WHERE user_id = ? AND day = ?",
        )
        .bind(user_id)
        .bind(day.0)
        .fetch_one(&self.pool)
        .await?;
        Ok(u32::try_from(secs).unwrap_or(u32::MAX))
    }

    async fn usage_between(&self, from: LocalDate, to: LocalDate) -> Result<Vec<DailyUsage>> {
        sqlx::query_as::<_, StoredDailyUsage>(
            "SELECT user_id, day, jurisdiction, seconds, turns FROM usage_daily \
             WHERE day BETWEEN ? AND ? ORDER BY day, jurisdiction, user_id",
        )
        .bind(from.0)
        .bind(to.0)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(DailyUsage::try_from)
        .collect()
    }

    async fn monthly_active(&self, month: u32) -> Result<MonthlyActive> {
        let month_key = i64::from(month);
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT user_id) FROM activity_monthly WHERE month = ?",
        )
        .bind(month_key)
        .fetch_one(&self.pool)
        .await?;
        let per: Vec<(String, i64)> = sqlx::query_as(
            "SELECT jurisdiction, COUNT(*) FROM activity_monthly WHERE month = ? \
             GROUP BY jurisdiction ORDER BY jurisdiction",
        )
        .bind(month_key)
        .fetch_all(&self.pool)
        .await?;
        Ok(MonthlyActive {
            month,
            total: u64::try_from(total).unwrap_or(0),
            by_jurisdiction: per
                .into_iter()
                .map(|(j, n)| (j, u64::try_from(n).unwrap_or(0)))
                .collect(),
        })
    }
}

/// Turns per multi-row statement: each statement is one round trip to sqlx's connection
/// thread, which costs more than the row itself; 100 keeps parameters (5 per row) far below
/// SQLite's limit.
const TURNS_PER_STATEMENT: usize = 100;

/// The four writes of a run of turns, inside the caller's transaction, as four multi-row
/// upserts. SQLite applies the rows of one statement in order, so two turns of the same user
/// in one run add up and the later clocks win.
async fn write_turns(
    conn: &mut SqliteConnection,
    turns: &[TurnRecord],
    report_utc_offset_minutes: i32,
) -> Result<()> {
    let states = turns
        .iter()
        .map(|t| to_json("session state", &t.state))
        .collect::<Result<Vec<_>>>()?;

    let mut q = QueryBuilder::new("INSERT INTO session_state (user_id, state, updated_at) ");
    q.push_values(turns.iter().zip(&states), |mut b, (t, state)| {
        b.push_bind(&t.user_id)
            .push_bind(state)
            .push_bind(t.at.unix());
    });
    q.push(
        " ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, \
         updated_at = excluded.updated_at",
    );
    q.build().execute(&mut *conn).await?;

    let mut q = QueryBuilder::new(
        "INSERT INTO sessions (id, user_id, jurisdiction, started_at, last_seen_at, turns) ",
    );
    q.push_values(turns, |mut b, t| {
        b.push_bind(&t.session_id)
            .push_bind(&t.user_id)
            .push_bind(&t.jurisdiction)
            .push_bind(t.at.unix())
            .push_bind(t.at.unix())
            .push_bind(1_i64);
    });
    q.push(
        " ON CONFLICT (id) DO UPDATE SET turns = turns + 1, \
         last_seen_at = max(last_seen_at, excluded.last_seen_at)",
    );
    q.build().execute(&mut *conn).await?;

    let mut q =
        QueryBuilder::new("INSERT INTO usage_daily (user_id, day, jurisdiction, seconds, turns) ");
    q.push_values(turns, |mut b, t| {
        b.push_bind(&t.user_id)
            .push_bind(t.local_day.0)
            .push_bind(&t.jurisdiction)
            .push_bind(i64::from(t.usage_secs))
            .push_bind(1_i64);
    });
    q.push(
        " ON CONFLICT (user_id, day, jurisdiction) DO UPDATE SET \
         seconds = seconds + excluded.seconds, turns = turns + 1",
    );
    q.build().execute(&mut *conn).await?;

    let mut q = QueryBuilder::new("INSERT INTO activity_monthly (month, jurisdiction, user_id) ");
    q.push_values(turns, |mut b, t| {
        b.push_bind(i64::from(month_of(t.at, report_utc_offset_minutes)))
            .push_bind(&t.jurisdiction)
            .push_bind(&t.user_id);
    });
    q.push(" ON CONFLICT DO NOTHING");
    q.build().execute(&mut *conn).await?;
    Ok(())
}
