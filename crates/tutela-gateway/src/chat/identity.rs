//! Phase 2 of a turn, identity and jurisdiction: the user's entry (their record, clocks and
//! case, loaded once and kept in the per-user cache; a fresh one for anonymous and test
//! requests, which share no state), held under the user's lock, and the composed profiles
//! of the jurisdictions that apply (the header, the user's own, or the deployment's).

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};
use tutela_store::User;
use tutela_types::{SessionState, Timestamp};

use crate::error::ApiError;
use crate::state::{AppState, Cached, Compiled};

use super::request::Request;

/// A user's cache entry and its lock.
pub(crate) type Slot = Arc<Mutex<Option<Cached>>>;

/// Who the turn is for, under their lock, and the profiles that apply.
pub(crate) struct Who {
    /// The user's cache entry (a private one for anonymous and test requests).
    pub(crate) slot: Slot,
    /// The lock on it, held while the clocks are read and written; always filled.
    pub(crate) guard: OwnedMutexGuard<Option<Cached>>,
    /// The composed profiles of the turn's jurisdictions.
    pub(crate) compiled: Arc<Compiled>,
    /// The store could not be read for a user this instance does not hold (PostgreSQL away):
    /// the entry is a fresh one of this turn only, and the turn goes on only to give crisis
    /// help (`chat::turn`); any other turn answers this error.
    pub(crate) unread: Option<ApiError>,
}

impl Who {
    /// The user's entry.
    pub(crate) fn cached(&mut self) -> Result<&mut Cached, ApiError> {
        self.guard.as_mut().ok_or_else(empty_slot)
    }
}

/// The error of an entry that is empty after it was loaded (a bug).
pub(crate) fn empty_slot() -> ApiError {
    ApiError::Internal("user cache slot empty after load".into())
}

/// Finds the user (loading them on their first turn), locks their entry and composes the
/// profiles of their jurisdictions.
pub(crate) async fn resolve(st: &AppState, req: &Request, now: Timestamp) -> Result<Who, ApiError> {
    // Anonymous requests share no state: each gets fresh clocks and never enters takeover
    // (there is no one to hand a human's reply back to). Test traffic is the same: a user
    // that is never stored (see `test_traffic`).
    let mut slot = if req.anonymous || req.test {
        private_slot(st, req, now).await
    } else {
        st.user_slot(&req.user_id)
    };
    let mut guard = slot.clone().lock_owned().await;
    if !(req.anonymous || req.test) && stale(st, &req.user_id, guard.as_ref()).await {
        *guard = None;
    }
    let mut unread = None;
    if guard.is_none() {
        match load_user(st, &req.user_id, now).await {
            Ok(entry) => *guard = Some(entry),
            Err(e @ ApiError::Store(_)) => {
                // Nothing cached for them: a fresh entry of this turn only, for the help lines.
                slot = fresh_slot(st, User::new(&req.user_id, now));
                guard = slot.clone().lock_owned().await;
                unread = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    let cached = guard.as_ref().ok_or_else(empty_slot)?;
    let jurisdictions: Vec<String> = match (&req.jurisdiction, &cached.user.jurisdiction) {
        (Some(h), _) | (None, Some(h)) => split_list(h),
        (None, None) => st.config.jurisdictions.clone(),
    };
    if jurisdictions.is_empty() {
        return Err(ApiError::BadRequest(
            "`X-Tutela-Jurisdiction` names no jurisdiction".into(),
        ));
    }
    let compiled = st.compiled(&jurisdictions)?;
    Ok(Who {
        slot,
        guard,
        compiled,
        unread,
    })
}

/// The entry of an anonymous or a test request: fresh clocks, no takeover, never cached.
async fn private_slot(st: &AppState, req: &Request, now: Timestamp) -> Slot {
    let user = if req.test {
        User::new(req.user_id.clone(), now)
    } else {
        match st
            .anonymous_user
            .get_or_try_init(|| st.records.backend.touch_user(&req.user_id, now))
            .await
        {
            Ok(u) => u.clone(),
            Err(e) => {
                st.write_failed("recording the anonymous user", &e);
                User::new(&req.user_id, now)
            }
        }
    };
    fresh_slot(st, user)
}

/// An entry of fresh clocks for `user`, in no cache.
fn fresh_slot(st: &AppState, user: User) -> Slot {
    Arc::new(Mutex::new(Some(Cached {
        user,
        session: SessionState::default(),
        session_id: st.ids.next(),
        takeover_case: None,
        turns: 0,
        deferred_notice: None,
        deferred_stored: false,
        stamp: None,
    })))
}

/// On a shared database: whether the cached entry is older than the store's clocks (another
/// instance, or an admin change, wrote since): one primary-key read. A notification from the
/// other instance could not be sure to arrive before this request (the person's app may send
/// it the moment the other instance's reply reaches it), so the stamp is read, never assumed.
/// While this instance's writes fail, its entry is ahead of the store and is kept.
async fn stale(st: &AppState, user: &str, cached: Option<&Cached>) -> bool {
    let Some(cached) = cached else {
        return false;
    };
    if !st.records.shared() || st.records.health().failing {
        return false;
    }
    match st.records.backend.state_stamp(user).await {
        Ok(stamp) => stamp != cached.stamp,
        Err(e) => {
            // The cached entry is the best this instance knows; the turn goes on with it.
            tracing::warn!(error = %e, "cannot compare a user's clocks with the store's");
            false
        }
    }
}

/// The user's record, clocks, case and the notice they have not seen yet. A store that cannot
/// write (a full disk) must not keep a person from the crisis reply: a newcomer who cannot be
/// written is served as a fresh user (logged, counted); only a store that cannot be read fails
/// the turn. While the store's writes fail, the write is not tried (on PostgreSQL away, each
/// try waits out the pool's acquire timeout), nor the read after a write that found the
/// database unreachable.
pub(crate) async fn load_user(st: &AppState, id: &str, now: Timestamp) -> Result<Cached, ApiError> {
    let b = &st.records.backend;
    let touched = if st.records.health().failing {
        None
    } else {
        match b.touch_user(id, now).await {
            Ok(u) => Some(u),
            Err(e) => {
                st.write_failed("recording a user", &e);
                if e.is_unreachable() {
                    return Err(e.into());
                }
                None
            }
        }
    };
    let user = match touched {
        Some(u) => u,
        None => b.get_user(id).await?.unwrap_or_else(|| User::new(id, now)),
    };
    let (session, stamp, session_id) = if st.records.shared() {
        // Another instance may have started the session: continue it.
        st.set_pending(id, b.pending(id).await?);
        match b.stamped_state(id).await? {
            Some(s) => (s.state, s.stamp, s.session_id),
            None => (SessionState::default(), None, None),
        }
    } else {
        let session = b.session_state(id).await?.unwrap_or_default();
        (session, None, None)
    };
    let case = b.active_escalation(id).await?;
    // A notice deferred before a restart or before this entry was dropped (idle, the cap).
    let deferred_notice = b.deferred_notice(id).await?;
    Ok(Cached {
        user,
        session,
        session_id: session_id.unwrap_or_else(|| st.ids.next()),
        takeover_case: case.filter(|c| c.takeover).map(|c| c.id),
        turns: 0,
        deferred_stored: deferred_notice.is_some(),
        deferred_notice,
        stamp,
    })
}

/// The case a human has taken over for this user, if it is still active (staff may have
/// resolved it since the user's last turn: then the entry forgets it), as the store has it now.
pub(crate) async fn takeover_case(
    st: &AppState,
    who: &mut Who,
) -> Result<Option<tutela_store::Escalation>, ApiError> {
    let cached = who.cached()?;
    let Some(case) = cached.takeover_case else {
        return Ok(None);
    };
    let active = st
        .records
        .backend
        .active_escalation(&cached.user.id)
        .await?;
    match active {
        Some(c) if c.id == case && c.takeover => Ok(Some(c)),
        _ => {
            cached.takeover_case = None;
            Ok(None)
        }
    }
}

/// `cn, US-CA` → `["cn", "us-ca"]`.
fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .collect()
}
