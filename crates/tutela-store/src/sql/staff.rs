//! Staff accounts and console sessions.

use super::Conn;
use async_trait::async_trait;
use tutela_types::Timestamp;

use super::Store;
use crate::error::{Result, StoreError};
use crate::staff::{NewStaff, Staff, StaffRole, StaffSession, StaffStore};

type StaffRow = (
    i64,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    i64,
    Option<i64>,
);

const STAFF_COLUMNS: &str = "id, username, display_name, role, password_hash, created_at, \
     password_changed_at, disabled_at, failed_logins, locked_until";

fn to_staff(r: StaffRow) -> Result<Staff> {
    let role = StaffRole::parse(&r.3)
        .ok_or_else(|| StoreError::corrupt("staff", "role", format!("`{}`", r.3)))?;
    Ok(Staff {
        id: r.0,
        username: r.1,
        display_name: r.2,
        role,
        password_hash: r.4,
        created_at: Timestamp::from_unix(r.5),
        password_changed_at: Timestamp::from_unix(r.6),
        disabled_at: r.7.map(Timestamp::from_unix),
        failed_logins: u32::try_from(r.8).unwrap_or(u32::MAX),
        locked_until: r.9.map(Timestamp::from_unix),
    })
}

async fn load(conn: &mut Conn, id: i64) -> Result<Staff> {
    let row: Option<StaffRow> =
        sqlx::query_as(&format!("SELECT {STAFF_COLUMNS} FROM staff WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(to_staff)
        .transpose()?
        .ok_or_else(|| StoreError::not_found("staff member", id))
}

#[async_trait]
impl StaffStore for Store {
    async fn add_staff(&self, new: &NewStaff) -> Result<Staff> {
        let mut tx = self.begin_write().await?;
        let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM staff WHERE username = $1")
            .bind(&new.username)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict {
                what: "staff member",
                id: new.username.clone(),
                state: "taken".into(),
                operation: "add an account with this username",
            });
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO staff (username, display_name, role, password_hash, created_at, \
             password_changed_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(&new.username)
        .bind(&new.display_name)
        .bind(new.role.as_str())
        .bind(&new.password_hash)
        .bind(new.at.unix())
        .fetch_one(&mut *tx)
        .await?;
        let staff = load(&mut tx, id).await?;
        tx.commit().await?;
        Ok(staff)
    }

    async fn staff_by_id(&self, id: i64) -> Result<Option<Staff>> {
        let row: Option<StaffRow> =
            sqlx::query_as(&format!("SELECT {STAFF_COLUMNS} FROM staff WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(to_staff).transpose()
    }

    async fn staff_by_username(&self, username: &str) -> Result<Option<Staff>> {
        let row: Option<StaffRow> = sqlx::query_as(&format!(
            "SELECT {STAFF_COLUMNS} FROM staff WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.map(to_staff).transpose()
    }

    async fn list_staff(&self) -> Result<Vec<Staff>> {
        let rows: Vec<StaffRow> = sqlx::query_as(&format!(
            "SELECT {STAFF_COLUMNS} FROM staff ORDER BY username"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(to_staff).collect()
    }

    async fn set_staff_disabled(&self, id: i64, disabled: bool, at: Timestamp) -> Result<Staff> {
        let mut tx = self.begin_write().await?;
        load(&mut tx, id).await?;
        sqlx::query("UPDATE staff SET disabled_at = $1 WHERE id = $2")
            .bind(disabled.then_some(at.unix()))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if disabled {
            end_all(&mut tx, id, at).await?;
        }
        let staff = load(&mut tx, id).await?;
        tx.commit().await?;
        Ok(staff)
    }

    async fn set_staff_password(
        &self,
        id: i64,
        password_hash: &str,
        at: Timestamp,
    ) -> Result<Staff> {
        let mut tx = self.begin_write().await?;
        load(&mut tx, id).await?;
        sqlx::query(
            "UPDATE staff SET password_hash = $1, password_changed_at = $2, failed_logins = 0, \
             locked_until = NULL WHERE id = $3",
        )
        .bind(password_hash)
        .bind(at.unix())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        end_all(&mut tx, id, at).await?;
        let staff = load(&mut tx, id).await?;
        tx.commit().await?;
        Ok(staff)
    }

    async fn record_failed_login(&self, id: i64, lock_until: Option<Timestamp>) -> Result<()> {
        let _gate = self.write_gate().await;
        sqlx::query(
            "UPDATE staff SET failed_logins = failed_logins + 1, \
             locked_until = COALESCE($1, locked_until) WHERE id = $2",
        )
        .bind(lock_until.map(Timestamp::unix))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn open_staff_session(
        &self,
        token_hash: &str,
        staff_id: i64,
        csrf: &str,
        at: Timestamp,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE staff SET failed_logins = 0, locked_until = NULL WHERE id = $1")
            .bind(staff_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO staff_sessions (token_hash, staff_id, csrf, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(token_hash)
        .bind(staff_id)
        .bind(csrf)
        .bind(at.unix())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn staff_session(&self, token_hash: &str) -> Result<Option<StaffSession>> {
        let row: Option<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT staff_id, csrf, created_at, last_seen_at FROM staff_sessions \
             WHERE token_hash = $1 AND ended_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some((staff_id, csrf, created, seen)) = row else {
            return Ok(None);
        };
        let Some(staff) = self.staff_by_id(staff_id).await? else {
            return Ok(None);
        };
        if !staff.is_active() {
            return Ok(None);
        }
        Ok(Some(StaffSession {
            staff,
            csrf,
            created_at: Timestamp::from_unix(created),
            last_seen_at: Timestamp::from_unix(seen),
        }))
    }

    async fn touch_staff_session(&self, token_hash: &str, at: Timestamp) -> Result<()> {
        let _gate = self.write_gate().await;
        sqlx::query(
            "UPDATE staff_sessions SET last_seen_at = CASE WHEN last_seen_at > $1 THEN last_seen_at ELSE $1 END WHERE token_hash = $2",
        )
        .bind(at.unix())
        .bind(token_hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn end_staff_session(&self, token_hash: &str, at: Timestamp) -> Result<()> {
        let _gate = self.write_gate().await;
        sqlx::query(
            "UPDATE staff_sessions SET ended_at = $1 WHERE token_hash = $2 AND ended_at IS NULL",
        )
        .bind(at.unix())
        .bind(token_hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

async fn end_all(conn: &mut Conn, staff_id: i64, at: Timestamp) -> Result<()> {
    sqlx::query("UPDATE staff_sessions SET ended_at = $1 WHERE staff_id = $2 AND ended_at IS NULL")
        .bind(at.unix())
        .bind(staff_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
