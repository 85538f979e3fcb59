//! Session clocks, session rows, daily usage and monthly activity.

use super::Conn;
use async_trait::async_trait;
use tutela_types::{LocalDate, SessionState, Timestamp};

use super::Store;
use super::rows::{StoredDailyUsage, StoredSession, parse_json, to_json};
use crate::error::{Result, StoreError};
use crate::model::{
    CounterBump, DailyUsage, Intervention, MonthlyActive, Pending, Session, StampedState, Tally,
    TurnRecord, month_of,
};
use crate::traits::{SessionStore, UsageStore};

/// Ends a session inside the caller's write transaction (as [`SessionStore::end_session`]);
/// false when there is no such session.
pub(super) async fn end_on(
    conn: &mut Conn,
    session_id: &str,
    at: Timestamp,
    reason: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL",
    )
    .bind(at.unix())
    .bind(reason)
    .bind(session_id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() > 0 {
        return Ok(true);
    }
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM sessions WHERE id = $1")
        .bind(session_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(found.is_some())
}

const UPSERT_STATE: &str = "INSERT INTO session_state (user_id, state, updated_at) VALUES ($1, $2, $3) \
     ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at";

#[async_trait]
impl SessionStore for Store {
    async fn session_state(&self, user_id: &str) -> Result<Option<SessionState>> {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM session_state WHERE user_id = $1")
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
        let interventions: Vec<&Intervention> =
            tallies.iter().flat_map(|t| &t.interventions).collect();
        let bumps: Vec<&CounterBump> = tallies.iter().flat_map(|t| &t.counts).collect();
        // On SQLite a write transaction like any other; on PostgreSQL one without the write
        // gate and the advisory write lock (row upserts only, see `postgres/mod.rs`).
        let mut tx = self.begin_batch().await?;
        // The backend's own statements: multi-row on SQLite, a constant number of statements
        // whatever the batch carries on PostgreSQL (`postgres/batch.rs`).
        super::batch::write_batch(&mut tx, turns, &interventions, &bumps, offset).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn end_session(&self, session_id: &str, at: Timestamp, reason: &str) -> Result<()> {
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL",
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
        let row: Option<StoredSession> = sqlx::query_as("SELECT * FROM sessions WHERE id = $1")
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Session::try_from).transpose()
    }

    async fn session_durations(&self, from: Timestamp, to: Timestamp) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(ended_at, last_seen_at) - started_at FROM sessions \
             WHERE started_at >= $1 AND started_at < $2 ORDER BY started_at",
        )
        .bind(from.unix())
        .bind(to.unix())
        .fetch_all(&self.pool)
        .await?)
    }

    async fn stamped_state(&self, user_id: &str) -> Result<Option<StampedState>> {
        let row: Option<(String, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT state, stamp, session_id FROM session_state WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(state, stamp, session_id)| {
            Ok(StampedState {
                state: parse_json("session_state", "state", &state)?,
                stamp,
                session_id,
            })
        })
        .transpose()
    }

    async fn state_stamp(&self, user_id: &str) -> Result<Option<String>> {
        let stamp: Option<Option<String>> =
            sqlx::query_scalar("SELECT stamp FROM session_state WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(stamp.flatten())
    }

    async fn restamp(&self, user_id: &str, stamp: &str) -> Result<()> {
        let _gate = self.write_gate().await;
        sqlx::query("UPDATE session_state SET stamp = $1 WHERE user_id = $2")
            .bind(stamp)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn pending(&self, user_id: &str) -> Result<Pending> {
        let row: Option<(Option<i64>, Option<String>)> =
            sqlx::query_as("SELECT handback_case, clearance FROM user_pending WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        let Some((handback, clearance)) = row else {
            return Ok(Pending::default());
        };
        Ok(Pending {
            handback,
            clearance: clearance
                .map(|c| parse_json("user_pending", "clearance", &c))
                .transpose()?,
        })
    }

    async fn note_pending(
        &self,
        user_id: &str,
        note: &Pending,
        stamp: &str,
        at: Timestamp,
    ) -> Result<()> {
        let clearance = note
            .clearance
            .as_ref()
            .map(|c| to_json("clearance", c))
            .transpose()?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO user_pending (user_id, handback_case, clearance, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET \
             handback_case = COALESCE(excluded.handback_case, user_pending.handback_case), \
             clearance = COALESCE(excluded.clearance, user_pending.clearance), \
             updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(note.handback)
        .bind(clearance)
        .bind(at.unix())
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE session_state SET stamp = $1 WHERE user_id = $2")
            .bind(stamp)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    async fn take_handback(&self, user_id: &str) -> Result<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let case: Option<Option<i64>> =
            sqlx::query_scalar("SELECT handback_case FROM user_pending WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        let case = case.flatten();
        if case.is_some() {
            sqlx::query("UPDATE user_pending SET handback_case = NULL WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(case)
    }

    async fn take_clearance(&self, user_id: &str) -> Result<Option<tutela_types::Clearance>> {
        let mut tx = self.begin_write().await?;
        let clearance: Option<Option<String>> =
            sqlx::query_scalar("SELECT clearance FROM user_pending WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        let clearance = clearance.flatten();
        if clearance.is_some() {
            sqlx::query("UPDATE user_pending SET clearance = NULL WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        clearance
            .map(|c| parse_json("user_pending", "clearance", &c))
            .transpose()
    }
}

#[async_trait]
impl UsageStore for Store {
    async fn daily_usage_secs(&self, user_id: &str, day: LocalDate) -> Result<u32> {
        let secs: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(seconds), 0) AS BIGINT) FROM usage_daily WHERE user_id = $1 AND day = $2",
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
             WHERE day BETWEEN $1 AND $2 ORDER BY day, jurisdiction, user_id",
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
            "SELECT COUNT(DISTINCT user_id) FROM activity_monthly WHERE month = $1",
        )
        .bind(month_key)
        .fetch_one(&self.pool)
        .await?;
        let per: Vec<(String, i64)> = sqlx::query_as(
            "SELECT jurisdiction, COUNT(*) FROM activity_monthly WHERE month = $1 \
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

/// A session's turns in a run.
pub(super) struct SessionRun<'a> {
    pub(super) id: &'a str,
    pub(super) user_id: &'a str,
    pub(super) jurisdiction: &'a str,
    pub(super) first: i64,
    pub(super) last: i64,
    pub(super) turns: i64,
}

/// A user's clocks row in a run: the last turn's clocks (JSON), time, stamp and session.
pub(super) struct StateRow<'a> {
    pub(super) user: &'a str,
    pub(super) state: String,
    pub(super) at: i64,
    pub(super) stamp: Option<&'a str>,
    pub(super) session: &'a str,
}

/// A `usage_daily` key: user, local day, jurisdiction.
pub(super) type UsageKey<'a> = (&'a str, i64, &'a str);

/// A run of turns folded to one row per key, keys in order of first appearance.
pub(super) struct Fold<'a> {
    /// The clocks row of each user: the last turn's.
    pub(super) states: Vec<StateRow<'a>>,
    pub(super) sessions: Vec<SessionRun<'a>>,
    /// (user, day, jurisdiction) -> (seconds, turns).
    pub(super) usage: Vec<(UsageKey<'a>, (i64, i64))>,
    /// (month, jurisdiction, user), each once.
    pub(super) active: Vec<(i64, &'a str, &'a str)>,
}

impl<'a> Fold<'a> {
    pub(super) fn of(turns: &'a [TurnRecord], report_utc_offset_minutes: i32) -> Result<Self> {
        use std::collections::HashMap;
        let mut fold = Fold {
            states: Vec::new(),
            sessions: Vec::new(),
            usage: Vec::new(),
            active: Vec::new(),
        };
        let mut state_of: HashMap<&str, usize> = HashMap::new();
        let mut session_of: HashMap<&str, usize> = HashMap::new();
        let mut usage_of: HashMap<UsageKey<'_>, usize> = HashMap::new();
        let mut active: std::collections::HashSet<(i64, &str, &str)> = Default::default();
        for t in turns {
            let state = to_json("session state", &t.state)?;
            let at = t.at.unix();
            let row = StateRow {
                user: &t.user_id,
                state,
                at,
                stamp: t.stamp.as_deref(),
                session: &t.session_id,
            };
            match state_of.get(t.user_id.as_str()) {
                Some(&i) => fold.states[i] = row,
                None => {
                    state_of.insert(&t.user_id, fold.states.len());
                    fold.states.push(row);
                }
            }
            match session_of.get(t.session_id.as_str()) {
                Some(&i) => {
                    let s = &mut fold.sessions[i];
                    s.last = s.last.max(at);
                    s.turns += 1;
                }
                None => {
                    session_of.insert(&t.session_id, fold.sessions.len());
                    fold.sessions.push(SessionRun {
                        id: &t.session_id,
                        user_id: &t.user_id,
                        jurisdiction: &t.jurisdiction,
                        first: at,
                        last: at,
                        turns: 1,
                    });
                }
            }
            let key = (
                t.user_id.as_str(),
                i64::from(t.local_day.0),
                t.jurisdiction.as_str(),
            );
            let secs = i64::from(t.usage_secs);
            match usage_of.get(&key) {
                Some(&i) => {
                    fold.usage[i].1.0 += secs;
                    fold.usage[i].1.1 += 1;
                }
                None => {
                    usage_of.insert(key, fold.usage.len());
                    fold.usage.push((key, (secs, 1)));
                }
            }
            let month = i64::from(month_of(t.at, report_utc_offset_minutes));
            let row = (month, t.jurisdiction.as_str(), t.user_id.as_str());
            if active.insert(row) {
                fold.active.push(row);
            }
        }
        Ok(fold)
    }
}
