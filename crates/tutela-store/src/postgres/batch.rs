//! The PostgreSQL backend's statements for a writer's batch: one statement, whatever the
//! batch carries. Each table's rows are bound as arrays (`UNNEST($1::text[], ...)`), so the
//! statement's text never changes (sqlx prepares it once per connection and keeps it) and a
//! batch of 500 turns costs the same round trips as a batch of one: the clocks, session rows,
//! daily usage, monthly activity, counter bumps, intervention rows and their reasons are
//! data-modifying `WITH` parts of one `INSERT`. (Before: four multi-row statements whose text
//! changed with the number of rows, so each was parsed and described anew, plus one statement
//! per intervention row and one per counter bump.)
//!
//! The rows are the SQLite backend's (`sqlite/batch.rs`): the turns are folded the same way
//! ([`Fold`]: one row per key, the later clocks win, turns add up), and so are the counter
//! bumps (one row per counter, jurisdiction and day, summed), since PostgreSQL refuses a
//! statement that updates one row twice. Intervention ids are taken from the table's identity
//! sequence in the order of the rows, so ids still ascend in the order the rows came.
//!
//! The statement runs without the advisory write lock (`PgStore::begin_batch`), beside the
//! batches of other instances and other writes, so the rows it updates are taken in one order
//! by every transaction that runs it: each table's rows sorted by their key (the tables come
//! in the statement's fixed order). Two transactions then never hold what the other waits
//! for, and a hot row (a counter of the day) is only waited for, never a deadlock.

use std::collections::HashMap;

use super::Conn;
use super::rows::{StoredIntervention, enum_name};
use super::sessions::Fold;
use crate::error::Result;
use crate::model::{CounterBump, Intervention, TurnRecord};

/// Turns per statement: arrays have no parameter limit; this only bounds one statement's size
/// (`tutela simulate` records hundreds of thousands of turns).
const TURNS_PER_STATEMENT: usize = 10_000;

/// The whole batch in one statement; returns the intervention rows' ids in the rows' order.
const WRITE_BATCH: &str = "\
WITH st AS (
    INSERT INTO session_state (user_id, state, updated_at, stamp, session_id)
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[])
    ON CONFLICT (user_id) DO UPDATE SET state = excluded.state,
        updated_at = excluded.updated_at, stamp = excluded.stamp,
        session_id = excluded.session_id
), se AS (
    INSERT INTO sessions (id, user_id, jurisdiction, started_at, last_seen_at, turns)
    SELECT * FROM UNNEST($6::text[], $7::text[], $8::text[], $9::int8[], $10::int8[], $11::int8[])
    ON CONFLICT (id) DO UPDATE SET turns = sessions.turns + excluded.turns,
        last_seen_at = CASE WHEN sessions.last_seen_at > excluded.last_seen_at
        THEN sessions.last_seen_at ELSE excluded.last_seen_at END
), ud AS (
    INSERT INTO usage_daily (user_id, day, jurisdiction, seconds, turns)
    SELECT * FROM UNNEST($12::text[], $13::int8[], $14::text[], $15::int8[], $16::int8[])
    ON CONFLICT (user_id, day, jurisdiction) DO UPDATE SET
        seconds = usage_daily.seconds + excluded.seconds,
        turns = usage_daily.turns + excluded.turns
), am AS (
    INSERT INTO activity_monthly (month, jurisdiction, user_id)
    SELECT * FROM UNNEST($17::int8[], $18::text[], $19::text[])
    ON CONFLICT DO NOTHING
), co AS (
    INSERT INTO counters (name, jurisdiction, day, value)
    SELECT * FROM UNNEST($20::text[], $21::text[], $22::int8[], $23::int8[])
    ON CONFLICT (name, jurisdiction, day) DO UPDATE SET value = counters.value + excluded.value
), iv AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('interventions', 'id')) AS id, r.*
    FROM UNNEST($24::int8[], $25::text[], $26::text[], $27::text[], $28::text[], $29::text[],
                $30::text[], $31::text[], $32::text[], $33::int8[])
        WITH ORDINALITY AS r(at, user_id, session_id, jurisdiction, kind, detector, side,
                             action, reasons, audit_seq, ord)
), ins AS (
    INSERT INTO interventions (id, at, user_id, session_id, jurisdiction, kind, detector, side,
                               action, reasons, audit_seq)
    SELECT id, at, user_id, session_id, jurisdiction, kind, detector, side, action, reasons,
           audit_seq
    FROM iv ORDER BY ord
), why AS (
    INSERT INTO intervention_reasons (intervention_id, profile, obligation, article)
    SELECT iv.id, w.profile, w.obligation, w.article
    FROM UNNEST($34::int8[], $35::text[], $36::text[], $37::text[])
        AS w(ord, profile, obligation, article)
    JOIN iv ON iv.ord = w.ord
    ON CONFLICT DO NOTHING
)
SELECT id FROM iv ORDER BY ord";

/// A writer's batch inside the caller's transaction (see the module docs).
pub(super) async fn write_batch(
    conn: &mut Conn,
    turns: &[TurnRecord],
    interventions: &[&Intervention],
    bumps: &[&CounterBump],
    report_utc_offset_minutes: i32,
) -> Result<()> {
    let mut chunks = turns.chunks(TURNS_PER_STATEMENT);
    // The tallies go with the first statement (the only one but for very large imports).
    let first = chunks.next().unwrap_or(&[]);
    let fold = sorted(Fold::of(first, report_utc_offset_minutes)?);
    run(conn, &fold, interventions, bumps, report_utc_offset_minutes).await?;
    for chunk in chunks {
        let fold = sorted(Fold::of(chunk, report_utc_offset_minutes)?);
        run(conn, &fold, &[], &[], report_utc_offset_minutes).await?;
    }
    Ok(())
}

/// A fold's rows in the order of their keys: the order every transaction takes their row
/// locks in (see the module docs). Each key is once in a fold, so the order is total.
fn sorted(mut fold: Fold<'_>) -> Fold<'_> {
    fold.states.sort_unstable_by(|a, b| a.user.cmp(b.user));
    fold.sessions.sort_unstable_by(|a, b| a.id.cmp(b.id));
    fold.usage.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    fold.active.sort_unstable();
    fold
}

/// Inserts intervention rows and their reasons inside the caller's transaction; returns their
/// ids in order. The batch's one statement with nothing else in it.
pub(super) async fn insert_interventions(
    conn: &mut Conn,
    items: &[&Intervention],
) -> Result<Vec<i64>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let fold = Fold::of(&[], 0)?;
    run(conn, &fold, items, &[], 0).await
}

/// Binds a folded run of turns, the intervention rows and the counter bumps to
/// [`WRITE_BATCH`] and runs it.
async fn run(
    conn: &mut Conn,
    fold: &Fold<'_>,
    interventions: &[&Intervention],
    bumps: &[&CounterBump],
    report_utc_offset_minutes: i32,
) -> Result<Vec<i64>> {
    let states = &fold.states;
    let sessions = &fold.sessions;
    let usage = &fold.usage;
    let active = &fold.active;

    // Counter bumps, one row per (counter, jurisdiction, day), in the order of that key.
    let mut counter_rows: Vec<(String, &str, i64, i64)> = Vec::new();
    let mut counter_of: HashMap<(String, &str, i64), usize> = HashMap::new();
    for bump in bumps {
        let day = i64::from(bump.at.local_date(report_utc_offset_minutes).0);
        let name = enum_name(&bump.counter);
        let by = i64::try_from(bump.by).unwrap_or(i64::MAX);
        let key = (name, bump.jurisdiction.as_str(), day);
        match counter_of.get(&key) {
            Some(&i) => counter_rows[i].3 = counter_rows[i].3.saturating_add(by),
            None => {
                counter_rows.push((key.0.clone(), key.1, key.2, by));
                counter_of.insert(key, counter_rows.len() - 1);
            }
        }
    }

    counter_rows.sort_unstable_by(|a, b| (&a.0, a.1, a.2).cmp(&(&b.0, b.1, b.2)));

    let rows = interventions
        .iter()
        .map(|i| StoredIntervention::from_domain(i))
        .collect::<Result<Vec<_>>>()?;
    let mut reason_rows: Vec<(i64, &str, &str, &str)> = Vec::new();
    for (ord, item) in (1_i64..).zip(interventions) {
        for r in &item.reasons {
            reason_rows.push((ord, &r.profile, &r.obligation, &r.article));
        }
    }

    let ids: Vec<i64> = sqlx::query_scalar(WRITE_BATCH)
        .bind(states.iter().map(|s| s.user).collect::<Vec<_>>())
        .bind(states.iter().map(|s| s.state.as_str()).collect::<Vec<_>>())
        .bind(states.iter().map(|s| s.at).collect::<Vec<_>>())
        .bind(states.iter().map(|s| s.stamp).collect::<Vec<_>>())
        .bind(states.iter().map(|s| s.session).collect::<Vec<_>>())
        .bind(sessions.iter().map(|s| s.id).collect::<Vec<_>>())
        .bind(sessions.iter().map(|s| s.user_id).collect::<Vec<_>>())
        .bind(sessions.iter().map(|s| s.jurisdiction).collect::<Vec<_>>())
        .bind(sessions.iter().map(|s| s.first).collect::<Vec<_>>())
        .bind(sessions.iter().map(|s| s.last).collect::<Vec<_>>())
        .bind(sessions.iter().map(|s| s.turns).collect::<Vec<_>>())
        .bind(usage.iter().map(|u| u.0.0).collect::<Vec<_>>())
        .bind(usage.iter().map(|u| u.0.1).collect::<Vec<_>>())
        .bind(usage.iter().map(|u| u.0.2).collect::<Vec<_>>())
        .bind(usage.iter().map(|u| u.1.0).collect::<Vec<_>>())
        .bind(usage.iter().map(|u| u.1.1).collect::<Vec<_>>())
        .bind(active.iter().map(|a| a.0).collect::<Vec<_>>())
        .bind(active.iter().map(|a| a.1).collect::<Vec<_>>())
        .bind(active.iter().map(|a| a.2).collect::<Vec<_>>())
        .bind(
            counter_rows
                .iter()
                .map(|c| c.0.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(counter_rows.iter().map(|c| c.1).collect::<Vec<_>>())
        .bind(counter_rows.iter().map(|c| c.2).collect::<Vec<_>>())
        .bind(counter_rows.iter().map(|c| c.3).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.at).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| r.user_id.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|r| r.session_id.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|r| r.jurisdiction.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| r.detector.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.side.as_deref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.action.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.reasons.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.audit_seq).collect::<Vec<_>>())
        .bind(reason_rows.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(reason_rows.iter().map(|r| r.1).collect::<Vec<_>>())
        .bind(reason_rows.iter().map(|r| r.2).collect::<Vec<_>>())
        .bind(reason_rows.iter().map(|r| r.3).collect::<Vec<_>>())
        .fetch_all(&mut *conn)
        .await?;
    Ok(ids)
}
