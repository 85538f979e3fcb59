//! The report queries use indexes: each is checked with EXPLAIN QUERY PLAN, so none of them
//! scans a whole table of 1,000,000 users. Measured once on 1,000,000 users, 3,000,000 usage
//! rows and 1,000,000 sessions (see migration 0003): every query below 150 ms.

use crate::support::both;

/// The query plan as one string.
async fn plan(pool: &sqlx::SqlitePool, sql: &str) -> String {
    let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
        .fetch_all(pool)
        .await
        .unwrap();
    rows.into_iter()
        .map(|r| r.3)
        .collect::<Vec<_>>()
        .join(" | ")
}

#[tokio::test]
async fn report_queries_search_indexes_instead_of_scanning() {
    let stores = both().await;
    let pool = stores[1].store.sqlite().unwrap().pool();
    let cases = [
        // Monthly active users (total and per jurisdiction).
        (
            "SELECT COUNT(DISTINCT user_id) FROM activity_monthly WHERE month = 202609",
            "activity_monthly",
        ),
        (
            "SELECT jurisdiction, COUNT(*) FROM activity_monthly WHERE month = 202609 GROUP BY jurisdiction",
            "activity_monthly",
        ),
        // Registered users as of a date.
        (
            "SELECT COUNT(*) FROM users WHERE deleted_at IS NULL AND registered_at <= 1",
            "users_registered",
        ),
        // Daily usage over a period.
        (
            "SELECT SUM(seconds) FROM usage_daily WHERE day BETWEEN 1 AND 30",
            "usage_daily_day",
        ),
        // Session-duration distribution.
        (
            "SELECT COALESCE(ended_at, last_seen_at) - started_at FROM sessions WHERE started_at >= 0 AND started_at < 10",
            "sessions_started",
        ),
        // Interventions in a period.
        (
            "SELECT jurisdiction, kind, COUNT(*) FROM interventions WHERE at >= 0 AND at < 10 GROUP BY 1, 2",
            "interventions_at",
        ),
        // The escalation queue and a user's active case.
        (
            "SELECT * FROM escalations WHERE status IN ('open', 'claimed') ORDER BY created_at",
            "escalations_status",
        ),
        (
            "SELECT * FROM escalations WHERE user_id = 'u' AND status IN ('open', 'claimed')",
            "escalations_user",
        ),
        // The outbox worker.
        (
            "SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= 5 ORDER BY next_attempt_at",
            "outbox_due",
        ),
        // Audit by user.
        (
            "SELECT * FROM audit_log WHERE seq > 0 AND subject = 'x' ORDER BY seq",
            "audit_log_subject",
        ),
        // Complaints per period, and the overdue queue.
        (
            "SELECT category, outcome, COUNT(*) FROM complaints WHERE received_at >= 0 AND received_at < 9 GROUP BY 1, 2",
            "complaints_received",
        ),
        (
            "SELECT COUNT(*) FROM complaints WHERE status = 'open' AND due_at < 5",
            "complaints_open",
        ),
        // Data-rights requests.
        (
            "SELECT kind, COUNT(*) FROM data_requests WHERE requested_at >= 0 GROUP BY kind",
            "data_requests_at",
        ),
    ];
    for (sql, index) in cases {
        let p = plan(pool, sql).await;
        assert!(
            p.contains(index),
            "{sql}\n  plan: {p}\n  expected index {index}"
        );
        assert!(
            !p.contains(&format!("SCAN {index} ")) || p.contains("USING"),
            "{sql}: {p}"
        );
    }
    // These read only an index, never the table.
    for (sql, index) in [
        (
            "SELECT COUNT(DISTINCT user_id) FROM activity_monthly WHERE month = 202609",
            "COVERING INDEX activity_monthly_users",
        ),
        (
            "SELECT day, jurisdiction, SUM(seconds), COUNT(*) FROM usage_daily WHERE day BETWEEN 1 AND 30 GROUP BY day, jurisdiction",
            "COVERING INDEX usage_daily_day",
        ),
        (
            "SELECT COALESCE(ended_at, last_seen_at) - started_at FROM sessions WHERE started_at >= 0 AND started_at < 10",
            "COVERING INDEX sessions_started",
        ),
    ] {
        let p = plan(pool, sql).await;
        assert!(p.contains(index), "{sql}\n  plan: {p}");
        assert!(!p.contains("TEMP B-TREE"), "{sql}\n  plan: {p}");
    }
    // Age structure reads the covering index, not the table.
    let p = plan(
        pool,
        "SELECT age_state, age, COUNT(*) FROM users WHERE deleted_at IS NULL GROUP BY age_state, age",
    )
    .await;
    assert!(p.contains("COVERING INDEX users_age"), "{p}");
}
