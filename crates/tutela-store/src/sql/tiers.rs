//! Findings and interventions by detection tier, and appeals by the tier behind the
//! intervention appealed against (transparency report). The findings are read from the audit
//! records' payloads with the database's JSON functions (SQLite's or PostgreSQL's jsonb); nothing but detector names, tier names,
//! action kinds and outcomes leaves the database.

use super::Pool;
use tutela_types::{Tier, Timestamp};

use super::rows::parse_enum;
use crate::error::Result;
use crate::obligations::{AppealTierCount, FindingTierCount, InterventionTierCount};

/// Findings of the turn records in `[$1, $2)`. `instr` (`strpos`) skips the JSON parse of
/// records without findings (most turns); `json_each` (`jsonb_array_elements`) then yields one
/// row per finding. `pg`: PostgreSQL's spelling, else SQLite's.
pub(crate) fn finding_tiers_sql(pg: bool) -> String {
    let (detector, tier, each, has) = if pg {
        (
            "f.value ->> 'detector'",
            "f.value ->> 'tier'",
            "jsonb_array_elements(a.payload::jsonb -> 'findings') f",
            "strpos(a.payload, '\"findings\":') > 0",
        )
    } else {
        (
            "json_extract(f.value, '$.detector')",
            "json_extract(f.value, '$.tier')",
            "json_each(a.payload, '$.findings') f",
            "instr(a.payload, '\"findings\":') > 0",
        )
    };
    format!(
        "SELECT {detector}, {tier}, COUNT(*) FROM audit_log a, {each} \
         WHERE a.at >= $1 AND a.at < $2 AND a.kind IN ('turn', 'intervention') AND {has} \
         GROUP BY 1, 2 ORDER BY 1, 2"
    )
}

/// The tier of the finding behind intervention `i`: in its audit record, the gravest finding of
/// the detector it names on its side, the last of equals (the gateway names the detector of
/// the last gravest finding). NULL without a record or such a finding.
fn tier_of_intervention(pg: bool) -> String {
    let field = |name: &str| {
        if pg {
            format!("(f.value ->> '{name}')")
        } else {
            format!("json_extract(f.value, '$.{name}')")
        }
    };
    let each = if pg {
        "jsonb_array_elements(a.payload::jsonb -> 'findings') WITH ORDINALITY AS f(value, key)"
    } else {
        "json_each(a.payload, '$.findings') f"
    };
    format!(
        "(SELECT {tier} FROM audit_log a, {each} \
         WHERE a.seq = i.audit_seq AND {detector} = i.detector \
         AND (i.side IS NULL OR {side} = i.side) \
         ORDER BY CASE {severity} WHEN 'critical' THEN 3 \
         WHEN 'high' THEN 2 WHEN 'medium' THEN 1 ELSE 0 END DESC, f.key DESC LIMIT 1)",
        tier = field("tier"),
        detector = field("detector"),
        side = field("side"),
        severity = field("severity"),
    )
}

/// Interventions in `[$1, $2)` per kind, detector and tier.
pub(crate) fn intervention_tiers_sql(pg: bool) -> String {
    format!(
        "SELECT i.kind, i.detector, {} AS tier, COUNT(*) \
         FROM interventions i WHERE i.at >= $1 AND i.at < $2 \
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        tier_of_intervention(pg)
    )
}

/// Appeals received in `[$1, $2)` per detector and tier of the appealed intervention, and
/// outcome.
pub(crate) fn appeal_tiers_sql(pg: bool) -> String {
    format!(
        "SELECT i.detector, {} AS tier, c.outcome, COUNT(*) \
         FROM complaints c LEFT JOIN interventions i ON i.id = c.intervention_id \
         WHERE c.received_at >= $1 AND c.received_at < $2 AND c.category = 'appeal' \
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        tier_of_intervention(pg)
    )
}

/// A row of [`appeal_tiers_sql`]: detector, tier, outcome, count.
type AppealRow = (Option<String>, Option<String>, Option<String>, i64);

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn tier(name: &str) -> Result<Tier> {
    parse_enum("audit_log", "payload", name)
}

fn opt_tier(name: Option<String>) -> Result<Option<Tier>> {
    name.as_deref().map(tier).transpose()
}

pub(crate) async fn finding_tiers(
    pool: &Pool,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<FindingTierCount>> {
    let rows: Vec<(Option<String>, Option<String>, i64)> =
        sqlx::query_as(&finding_tiers_sql(super::PG))
            .bind(from.unix())
            .bind(to.unix())
            .fetch_all(pool)
            .await?;
    let mut out: Vec<FindingTierCount> = Vec::with_capacity(rows.len());
    for (detector, t, n) in rows {
        // Every finding names both (the payload is a serialised `Finding`).
        let (Some(detector), Some(t)) = (detector, t) else {
            return Err(crate::error::StoreError::corrupt(
                "audit_log",
                "payload",
                "a finding without detector or tier",
            ));
        };
        let t = tier(&t)?;
        // `semantic` and `encoder` are one tier: merge their rows.
        match out
            .iter_mut()
            .find(|c| c.detector == detector && c.tier == t)
        {
            Some(c) => c.count += count(n),
            None => out.push(FindingTierCount {
                detector,
                tier: t,
                count: count(n),
            }),
        }
    }
    out.sort_by(|a, b| (&a.detector, a.tier).cmp(&(&b.detector, b.tier)));
    Ok(out)
}

pub(crate) async fn intervention_tiers(
    pool: &Pool,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<InterventionTierCount>> {
    let rows: Vec<(String, Option<String>, Option<String>, i64)> =
        sqlx::query_as(&intervention_tiers_sql(super::PG))
            .bind(from.unix())
            .bind(to.unix())
            .fetch_all(pool)
            .await?;
    let mut out: Vec<InterventionTierCount> = Vec::with_capacity(rows.len());
    for (kind, detector, t, n) in rows {
        let t = opt_tier(t)?;
        match out
            .iter_mut()
            .find(|c| c.kind == kind && c.detector == detector && c.tier == t)
        {
            Some(c) => c.count += count(n),
            None => out.push(InterventionTierCount {
                kind,
                detector,
                tier: t,
                count: count(n),
            }),
        }
    }
    out.sort_by(|a, b| (&a.kind, &a.detector, a.tier).cmp(&(&b.kind, &b.detector, b.tier)));
    Ok(out)
}

pub(crate) async fn appeal_tiers(
    pool: &Pool,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<AppealTierCount>> {
    let rows: Vec<AppealRow> = sqlx::query_as(&appeal_tiers_sql(super::PG))
        .bind(from.unix())
        .bind(to.unix())
        .fetch_all(pool)
        .await?;
    let mut out: Vec<AppealTierCount> = Vec::with_capacity(rows.len());
    for (detector, t, outcome, n) in rows {
        let t = opt_tier(t)?;
        match out
            .iter_mut()
            .find(|c| c.detector == detector && c.tier == t && c.outcome == outcome)
        {
            Some(c) => c.count += count(n),
            None => out.push(AppealTierCount {
                detector,
                tier: t,
                outcome,
                count: count(n),
            }),
        }
    }
    out.sort_by(|a, b| (&a.detector, a.tier, &a.outcome).cmp(&(&b.detector, b.tier, &b.outcome)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code fails loudly")]

    use super::*;
    use crate::sqlite::{SqliteStore, StoreOptions};

    async fn plan(pool: &sqlx::SqlitePool, sql: &str) -> String {
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                .bind(0_i64)
                .bind(10_i64)
                .fetch_all(pool)
                .await
                .unwrap();
        rows.into_iter()
            .map(|r| r.3)
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// The period's records are found through the indexes, and each intervention's record by
    /// its seq, so a report reads only the period.
    #[tokio::test]
    async fn tier_queries_use_the_indexes() {
        let store = SqliteStore::open_in_memory(StoreOptions::default())
            .await
            .unwrap();
        let p = plan(store.pool(), &finding_tiers_sql(false)).await;
        assert!(p.contains("audit_log_at"), "{p}");
        let p = plan(store.pool(), &intervention_tiers_sql(false)).await;
        assert!(p.contains("interventions_at"), "{p}");
        assert!(p.contains("INTEGER PRIMARY KEY"), "{p}");
        let p = plan(store.pool(), &appeal_tiers_sql(false)).await;
        assert!(p.contains("complaints_received"), "{p}");
        assert!(p.contains("INTEGER PRIMARY KEY"), "{p}");
    }
}
