//! Users, contacts, export and deletion.

use super::Conn;
use async_trait::async_trait;
use tutela_types::{AgeState, SessionState, Timestamp};

use super::Store;
use super::rows::{
    StoredComplaint, StoredContact, StoredDailyUsage, StoredEscalation, StoredEscalationMessage,
    StoredIntervention, StoredSession, StoredUser, enum_name, parse_json, to_json,
};
use crate::error::{Result, StoreError};
use crate::model::{
    Complaint, DailyUsage, DeferredNotice, DeletionReport, Escalation, EscalationMessage,
    Intervention, Session, User, UserExport, UserUpdate,
};
use crate::traits::UserStore;

const USER_COLUMNS: &str = "id, first_seen, registered_at, age_state, age, elderly, \
     guardian_consent, jurisdiction, utc_offset_minutes, minors_daily_minutes, quiet_start, \
     quiet_end, updated_at, deleted_at, age_assurance";

/// The id a deleted user's rows carry in statistics.
pub(crate) fn tombstone_id(pseudonym: &str) -> String {
    format!("deleted:{pseudonym}")
}

async fn load_user(conn: &mut Conn, id: &str) -> Result<Option<User>> {
    let row: Option<StoredUser> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND deleted_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let contacts: Vec<StoredContact> = sqlx::query_as(
        "SELECT kind, channel, address FROM contacts WHERE user_id = $1 \
         ORDER BY kind, channel, address",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    row.into_domain(contacts).map(Some)
}

/// The user's deferred notice (`users.deferred_notice`, JSON), if any.
async fn load_deferred_notice(conn: &mut Conn, id: &str) -> Result<Option<DeferredNotice>> {
    let text: Option<Option<String>> = sqlx::query_scalar(
        "SELECT deferred_notice FROM users WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    text.flatten()
        .map(|t| parse_json("users", "deferred_notice", &t))
        .transpose()
}

async fn write_user(conn: &mut Conn, user: &User) -> Result<()> {
    let r = StoredUser::from_domain(user);
    sqlx::query(
        "UPDATE users SET registered_at = $1, age_state = $2, age = $3, elderly = $4, \
         guardian_consent = $5, jurisdiction = $6, utc_offset_minutes = $7, \
         minors_daily_minutes = $8, quiet_start = $9, quiet_end = $10, updated_at = $11, \
         age_assurance = $12 WHERE id = $13",
    )
    .bind(r.registered_at)
    .bind(r.age_state)
    .bind(r.age)
    .bind(r.elderly)
    .bind(r.guardian_consent)
    .bind(r.jurisdiction)
    .bind(r.utc_offset_minutes)
    .bind(r.minors_daily_minutes)
    .bind(r.quiet_start)
    .bind(r.quiet_end)
    .bind(r.updated_at)
    .bind(r.age_assurance)
    .bind(&r.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// [`UserStore::update_user`] inside the caller's transaction.
pub(super) async fn update_on(
    conn: &mut Conn,
    id: &str,
    update: &UserUpdate,
    at: Timestamp,
) -> Result<User> {
    insert_if_missing(&mut *conn, id, at).await?;
    let mut user = load_user(&mut *conn, id)
        .await?
        .ok_or_else(|| StoreError::not_found("user", id))?;
    if let Some(r) = update.registered_at {
        user.registered_at.get_or_insert(r);
    }
    if let Some(v) = update.age_state {
        user.age_state = v;
    }
    if let Some(v) = update.age {
        user.age = v;
    }
    if let Some(v) = update.age_assurance {
        user.age_assurance = v;
    }
    if let Some(v) = update.elderly {
        user.elderly = v;
    }
    if let Some(v) = update.guardian_consent {
        user.guardian_consent = v;
    }
    if let Some(v) = &update.jurisdiction {
        user.jurisdiction.clone_from(v);
    }
    if let Some(v) = update.utc_offset_minutes {
        user.utc_offset_minutes = v;
    }
    if let Some(v) = &update.minors {
        user.minors = v.clone();
    }
    user.updated_at = at;
    write_user(&mut *conn, &user).await?;
    if let Some(contacts) = &update.contacts {
        sqlx::query("DELETE FROM contacts WHERE user_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        for c in contacts {
            sqlx::query(
                "INSERT INTO contacts (user_id, kind, channel, address, added_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(enum_name(&c.kind))
            .bind(&c.channel)
            .bind(&c.address)
            .bind(at.unix())
            .execute(&mut *conn)
            .await?;
        }
    }
    let user = load_user(&mut *conn, id)
        .await?
        .ok_or_else(|| StoreError::not_found("user", id))?;
    Ok(user)
}

async fn insert_if_missing(conn: &mut Conn, id: &str, at: Timestamp) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (id, first_seen, updated_at) VALUES ($1, $2, $2) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(at.unix())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[async_trait]
impl UserStore for Store {
    async fn touch_user(&self, id: &str, at: Timestamp) -> Result<User> {
        // The common case is a known user: read first, write only for a newcomer.
        if let Some(user) = self.get_user(id).await? {
            return Ok(user);
        }
        // The read's connection is back in the pool before the gate is taken (see `mod.rs`).
        // Only this user's row: beside other users' writes on PostgreSQL.
        let mut tx = self.begin_write_for(id).await?;
        insert_if_missing(&mut tx, id, at).await?;
        let user = load_user(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::not_found("user", id))?;
        tx.commit().await?;
        Ok(user)
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>> {
        let mut conn = self.pool.acquire().await?;
        load_user(&mut conn, id).await
    }

    async fn update_user(&self, id: &str, update: &UserUpdate, at: Timestamp) -> Result<User> {
        let mut tx = self.begin_write().await?;
        let user = update_on(&mut tx, id, update, at).await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn list_users(&self, after: Option<&str>, limit: u32) -> Result<Vec<User>> {
        let mut conn = self.pool.acquire().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM users WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit.min(1000)))
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(u) = load_user(&mut conn, &id).await? {
                out.push(u);
            }
        }
        Ok(out)
    }

    async fn export_user(&self, id: &str, at: Timestamp) -> Result<Option<UserExport>> {
        let mut tx = self.begin_write().await?;
        let Some(user) = load_user(&mut tx, id).await? else {
            return Ok(None);
        };
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM session_state WHERE user_id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let session_state = state
            .map(|s| parse_json::<SessionState>("session_state", "state", &s))
            .transpose()?;
        let deferred_notice = load_deferred_notice(&mut tx, id).await?;
        let deferred_notice_at: Option<i64> = sqlx::query_scalar(
            "SELECT deferred_notice_at FROM users WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let sessions: Vec<StoredSession> =
            sqlx::query_as("SELECT * FROM sessions WHERE user_id = $1 ORDER BY started_at")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        let usage: Vec<StoredDailyUsage> = sqlx::query_as(
            "SELECT user_id, day, jurisdiction, seconds, turns FROM usage_daily \
             WHERE user_id = $1 ORDER BY day, jurisdiction",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let interventions: Vec<StoredIntervention> =
            sqlx::query_as("SELECT * FROM interventions WHERE user_id = $1 ORDER BY at, id")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        let escalations: Vec<StoredEscalation> =
            sqlx::query_as("SELECT * FROM escalations WHERE user_id = $1 ORDER BY id")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        let messages: Vec<StoredEscalationMessage> = sqlx::query_as(
            "SELECT m.* FROM escalation_messages m JOIN escalations e ON e.id = m.escalation_id \
             WHERE e.user_id = $1 ORDER BY m.id",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let complaints: Vec<StoredComplaint> =
            sqlx::query_as("SELECT * FROM complaints WHERE user_id = $1 ORDER BY id")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        sqlx::query(
            "INSERT INTO data_requests (subject, kind, requested_at, completed_at) \
             VALUES ($1, 'export', $2, $2)",
        )
        .bind(self.pseudonyms.subject(id))
        .bind(at.unix())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(UserExport {
            user,
            session_state,
            sessions: sessions
                .into_iter()
                .map(Session::try_from)
                .collect::<Result<_>>()?,
            usage: usage
                .into_iter()
                .map(DailyUsage::try_from)
                .collect::<Result<_>>()?,
            interventions: interventions
                .into_iter()
                .map(Intervention::try_from)
                .collect::<Result<_>>()?,
            escalations: escalations
                .into_iter()
                .map(Escalation::try_from)
                .collect::<Result<_>>()?,
            messages: messages
                .into_iter()
                .map(EscalationMessage::try_from)
                .collect::<Result<_>>()?,
            complaints: complaints
                .into_iter()
                .map(Complaint::try_from)
                .collect::<Result<_>>()?,
            deferred_notice,
            deferred_notice_at: deferred_notice_at.map(Timestamp::from_unix),
        }))
    }

    async fn delete_user(&self, id: &str, at: Timestamp) -> Result<DeletionReport> {
        let pseudonym = &self.pseudonyms.subject(id);
        let tomb = tombstone_id(pseudonym);
        let mut tx = self.begin_write().await?;
        let user = load_user(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::not_found("user", id))?;

        // Content and contact data: removed (the turns kept with cases too).
        let case_turns = sqlx::query(
            "DELETE FROM case_turns WHERE escalation_id IN \
             (SELECT id FROM escalations WHERE user_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let messages = case_turns
            + sqlx::query(
                "DELETE FROM escalation_messages WHERE escalation_id IN \
             (SELECT id FROM escalations WHERE user_id = $1)",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let contacts = sqlx::query("DELETE FROM contacts WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let notifications = sqlx::query("DELETE FROM outbox WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let complaint_texts = sqlx::query(
            "UPDATE complaints SET body = NULL, user_id = $1 WHERE user_id = $2 AND body IS NOT NULL",
        )
        .bind(&tomb)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("UPDATE complaints SET user_id = $1 WHERE user_id = $2")
            .bind(&tomb)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM session_state WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM user_pending WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;

        // Statistics: kept, keyed by the pseudonym instead of the user id; session ids (which
        // the gateway may derive from the user id) become `<pseudonym>/<rowid>` (PostgreSQL has no
        // rowid: `<pseudonym>/<n>`, numbered after the tombstone's sessions of earlier deletions).
        let rename = if super::PG {
            "UPDATE sessions s SET id = $1 || '/' || (n.rn + \
             (SELECT COUNT(*) FROM sessions WHERE user_id = $1)), user_id = $1 \
             FROM (SELECT id, row_number() OVER (ORDER BY started_at, id) AS rn \
             FROM sessions WHERE user_id = $2) n WHERE s.id = n.id"
        } else {
            "UPDATE sessions SET id = $1 || '/' || rowid, user_id = $1 WHERE user_id = $2"
        };
        sqlx::query(rename)
            .bind(&tomb)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO usage_daily (user_id, day, jurisdiction, seconds, turns) \
             SELECT $1, day, jurisdiction, seconds, turns FROM usage_daily WHERE user_id = $2 \
             ON CONFLICT (user_id, day, jurisdiction) DO UPDATE SET \
             seconds = usage_daily.seconds + excluded.seconds, \
             turns = usage_daily.turns + excluded.turns",
        )
        .bind(&tomb)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM usage_daily WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO activity_monthly (month, jurisdiction, user_id) \
             SELECT month, jurisdiction, $1 FROM activity_monthly WHERE user_id = $2 \
             ON CONFLICT DO NOTHING",
        )
        .bind(&tomb)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM activity_monthly WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE interventions SET user_id = $1, session_id = NULL WHERE user_id = $2")
            .bind(&tomb)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE escalations SET user_id = $1, session_id = NULL, resolution = NULL \
             WHERE user_id = $2",
        )
        .bind(&tomb)
        .bind(id)
        .execute(&mut *tx)
        .await?;

        // The user row becomes a tombstone (for "deleted users" counts); a second deletion of
        // a returning user keeps the one tombstone.
        sqlx::query(
            "INSERT INTO users (id, first_seen, registered_at, age_state, updated_at, deleted_at) \
             VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (id) DO UPDATE SET deleted_at = excluded.deleted_at, \
             updated_at = excluded.updated_at",
        )
        .bind(&tomb)
        .bind(user.first_seen.unix())
        .bind(user.registered_at.map(Timestamp::unix))
        .bind(enum_name(&AgeState::Unknown))
        .bind(at.unix())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO data_requests (subject, kind, requested_at, completed_at) \
             VALUES ($1, 'deletion', $2, $2)",
        )
        .bind(pseudonym)
        .bind(at.unix())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(DeletionReport {
            pseudonym: pseudonym.to_owned(),
            contacts,
            messages,
            notifications,
            complaint_texts,
        })
    }

    async fn registered_users(&self, at: Timestamp) -> Result<(u64, Vec<(String, u64)>)> {
        // Grouped by the bare column so the (jurisdiction, registered_at) index gives the order.
        let rows: Vec<(Option<String>, i64)> = sqlx::query_as(
            "SELECT jurisdiction, COUNT(*) FROM users \
             WHERE deleted_at IS NULL AND registered_at <= $1 \
             GROUP BY jurisdiction ORDER BY jurisdiction",
        )
        .bind(at.unix())
        .fetch_all(&self.pool)
        .await?;
        let per: Vec<(String, u64)> = rows
            .into_iter()
            .map(|(j, n)| (j.unwrap_or_default(), u64::try_from(n).unwrap_or(0)))
            .collect();
        Ok((per.iter().map(|(_, n)| n).sum(), per))
    }

    async fn deferred_notice(&self, id: &str) -> Result<Option<DeferredNotice>> {
        let mut conn = self.pool.acquire().await?;
        load_deferred_notice(&mut conn, id).await
    }

    async fn set_deferred_notice(
        &self,
        id: &str,
        notice: Option<&DeferredNotice>,
        at: Timestamp,
    ) -> Result<()> {
        let json = notice.map(|n| to_json("deferred notice", n)).transpose()?;
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "UPDATE users SET deferred_notice = $1, deferred_notice_at = $2 \
             WHERE id = $3 AND deleted_at IS NULL",
        )
        .bind(json)
        .bind(notice.map(|_| at.unix()))
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("user", id));
        }
        Ok(())
    }
}
