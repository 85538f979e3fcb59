//! Staff accounts of the operator console and their sessions. The store keeps what it is given:
//! a password arrives already hashed (argon2id, by the caller), a session by the hash of its
//! cookie value. Roles are data here; what each role may do is the console's business.

use async_trait::async_trait;
use serde::Serialize;
use tutela_types::Timestamp;

use crate::error::Result;

/// What a staff member is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// Trust & safety agent: takes cases, replies, resolves what they hold.
    Agent,
    /// Supervises agents: sees who holds what, assigns, resolves any case with a note.
    Supervisor,
    /// Compliance officer: usage, obligations, reports, audit, complaints, data rights;
    /// never replies to a person.
    Compliance,
    /// Everything.
    Admin,
}

impl StaffRole {
    /// Every role, in order.
    pub const ALL: [StaffRole; 4] = [
        StaffRole::Agent,
        StaffRole::Supervisor,
        StaffRole::Compliance,
        StaffRole::Admin,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Agent => "agent",
            StaffRole::Supervisor => "supervisor",
            StaffRole::Compliance => "compliance",
            StaffRole::Admin => "admin",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<Self> {
        StaffRole::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A staff account. `password_hash` never leaves the process: it is not serialised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Staff {
    /// Store-assigned id; audit records name staff by it.
    pub id: i64,
    /// Sign-in name, unique.
    pub username: String,
    /// Shown in the console.
    pub display_name: String,
    /// What they may do.
    pub role: StaffRole,
    /// argon2id PHC string.
    #[serde(skip)]
    pub password_hash: String,
    /// Created.
    pub created_at: Timestamp,
    /// Password last set.
    pub password_changed_at: Timestamp,
    /// Disabled accounts cannot sign in and their sessions end.
    pub disabled_at: Option<Timestamp>,
    /// Failed sign-ins since the last success.
    pub failed_logins: u32,
    /// No sign-in is tried before this instant (after too many failures).
    pub locked_until: Option<Timestamp>,
}

impl Staff {
    /// Not disabled.
    pub fn is_active(&self) -> bool {
        self.disabled_at.is_none()
    }
}

/// A new account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewStaff {
    /// Sign-in name.
    pub username: String,
    /// Shown name.
    pub display_name: String,
    /// Role.
    pub role: StaffRole,
    /// argon2id PHC string.
    pub password_hash: String,
    /// When.
    pub at: Timestamp,
}

/// A signed-in session, found by the hash of its cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaffSession {
    /// Whose.
    pub staff: Staff,
    /// The session's form token.
    pub csrf: String,
    /// Signed in.
    pub created_at: Timestamp,
    /// Last request.
    pub last_seen_at: Timestamp,
}

/// Staff accounts and sessions.
#[async_trait]
pub trait StaffStore: Send + Sync {
    /// Creates an account; a taken username is a conflict.
    async fn add_staff(&self, new: &NewStaff) -> Result<Staff>;
    /// An account by id.
    async fn staff_by_id(&self, id: i64) -> Result<Option<Staff>>;
    /// An account by username.
    async fn staff_by_username(&self, username: &str) -> Result<Option<Staff>>;
    /// Every account, by username.
    async fn list_staff(&self) -> Result<Vec<Staff>>;
    /// Disables (or re-enables) an account; disabling ends its sessions.
    async fn set_staff_disabled(&self, id: i64, disabled: bool, at: Timestamp) -> Result<Staff>;
    /// Sets a new password hash, clears the lock-out and ends every session of the account.
    async fn set_staff_password(
        &self,
        id: i64,
        password_hash: &str,
        at: Timestamp,
    ) -> Result<Staff>;
    /// Counts a failed sign-in; `lock_until` (if any) stops further tries until then.
    async fn record_failed_login(&self, id: i64, lock_until: Option<Timestamp>) -> Result<()>;
    /// Opens a session after a successful sign-in (clears the failure count).
    async fn open_staff_session(
        &self,
        token_hash: &str,
        staff_id: i64,
        csrf: &str,
        at: Timestamp,
    ) -> Result<()>;
    /// A live session (not ended, account not disabled), with its account.
    async fn staff_session(&self, token_hash: &str) -> Result<Option<StaffSession>>;
    /// Marks a session as used at `at`.
    async fn touch_staff_session(&self, token_hash: &str, at: Timestamp) -> Result<()>;
    /// Ends a session (sign-out, idle expiry).
    async fn end_staff_session(&self, token_hash: &str, at: Timestamp) -> Result<()>;
}
