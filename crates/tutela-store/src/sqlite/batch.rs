//! The SQLite backend's statements for a writer's batch (the PostgreSQL backend has its own,
//! `postgres/batch.rs`, with the same effect): multi-row statements of bounded size, since
//! each statement is one round trip to sqlx's connection thread and parameters are limited.

use sqlx::QueryBuilder;

use super::Conn;
use super::rows::StoredIntervention;
use super::sessions::Fold;
use crate::error::Result;
use crate::model::{CounterBump, Intervention, TurnRecord};

/// Turns per multi-row statement: each statement is one round trip to sqlx's connection
/// thread, which costs more than the row itself; 100 keeps parameters (5 per row) far below
/// SQLite's limit.
const TURNS_PER_STATEMENT: usize = 100;

/// A writer's batch inside the caller's transaction: the turns' clocks, session rows, usage
/// and activity, then the intervention rows, then the counter bumps.
pub(super) async fn write_batch(
    conn: &mut Conn,
    turns: &[TurnRecord],
    interventions: &[&Intervention],
    bumps: &[&CounterBump],
    report_utc_offset_minutes: i32,
) -> Result<()> {
    for chunk in turns.chunks(TURNS_PER_STATEMENT) {
        write_turns(conn, chunk, report_utc_offset_minutes).await?;
    }
    insert_interventions(conn, interventions).await?;
    for bump in bumps {
        super::reports::bump_on(conn, bump, report_utc_offset_minutes).await?;
    }
    Ok(())
}

/// The four writes of a run of turns, inside the caller's transaction, as four multi-row
/// upserts. The run is folded first ([`Fold`]: one row per key in order of first appearance,
/// the later clocks win, two turns of a user add up), as on PostgreSQL, which refuses a
/// statement that updates a row twice; SQLite gives the same rows either way.
async fn write_turns(
    conn: &mut Conn,
    turns: &[TurnRecord],
    report_utc_offset_minutes: i32,
) -> Result<()> {
    let fold = Fold::of(turns, report_utc_offset_minutes)?;

    let mut q = QueryBuilder::new(
        "INSERT INTO session_state (user_id, state, updated_at, stamp, session_id) ",
    );
    q.push_values(&fold.states, |mut b, s| {
        b.push_bind(s.user)
            .push_bind(&s.state)
            .push_bind(s.at)
            .push_bind(s.stamp)
            .push_bind(s.session);
    });
    q.push(
        " ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, \
         updated_at = excluded.updated_at, stamp = excluded.stamp, \
         session_id = excluded.session_id",
    );
    q.build().execute(&mut *conn).await?;

    let mut q = QueryBuilder::new(
        "INSERT INTO sessions (id, user_id, jurisdiction, started_at, last_seen_at, turns) ",
    );
    q.push_values(&fold.sessions, |mut b, s| {
        b.push_bind(s.id)
            .push_bind(s.user_id)
            .push_bind(s.jurisdiction)
            .push_bind(s.first)
            .push_bind(s.last)
            .push_bind(s.turns);
    });
    q.push(
        " ON CONFLICT (id) DO UPDATE SET turns = sessions.turns + excluded.turns, \
         last_seen_at = CASE WHEN sessions.last_seen_at > excluded.last_seen_at \
         THEN sessions.last_seen_at ELSE excluded.last_seen_at END",
    );
    q.build().execute(&mut *conn).await?;

    let mut q =
        QueryBuilder::new("INSERT INTO usage_daily (user_id, day, jurisdiction, seconds, turns) ");
    q.push_values(
        &fold.usage,
        |mut b, ((user, day, jurisdiction), (secs, n))| {
            b.push_bind(*user)
                .push_bind(*day)
                .push_bind(*jurisdiction)
                .push_bind(*secs)
                .push_bind(*n);
        },
    );
    q.push(
        " ON CONFLICT (user_id, day, jurisdiction) DO UPDATE SET \
         seconds = usage_daily.seconds + excluded.seconds, \
         turns = usage_daily.turns + excluded.turns",
    );
    q.build().execute(&mut *conn).await?;

    let mut q = QueryBuilder::new("INSERT INTO activity_monthly (month, jurisdiction, user_id) ");
    q.push_values(&fold.active, |mut b, (month, jurisdiction, user)| {
        b.push_bind(*month)
            .push_bind(*jurisdiction)
            .push_bind(*user);
    });
    q.push(" ON CONFLICT DO NOTHING");
    q.build().execute(&mut *conn).await?;
    Ok(())
}

/// Inserts intervention rows and their reasons inside the caller's transaction; returns their
/// ids in order. One statement per intervention (its id comes back) and one for all reasons.
pub(super) async fn insert_interventions(
    conn: &mut Conn,
    items: &[&Intervention],
) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(items.len());
    let mut reasons = Vec::new();
    for item in items {
        let r = StoredIntervention::from_domain(item)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO interventions (at, user_id, session_id, jurisdiction, kind, \
             detector, side, action, reasons, audit_seq) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
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
        .fetch_one(&mut *conn)
        .await?;
        reasons.extend(item.reasons.iter().map(|reason| (id, reason)));
        ids.push(id);
    }
    // 4 parameters a row: 200 rows stay far below SQLite's limit.
    for chunk in reasons.chunks(200) {
        let mut q = QueryBuilder::new(
            "INSERT INTO intervention_reasons (intervention_id, profile, obligation, article) ",
        );
        q.push_values(chunk, |mut b, (id, reason)| {
            b.push_bind(*id)
                .push_bind(&reason.profile)
                .push_bind(&reason.obligation)
                .push_bind(&reason.article);
        });
        q.push(" ON CONFLICT DO NOTHING");
        q.build().execute(&mut *conn).await?;
    }
    Ok(ids)
}
