//! The gateway's shared state: configuration, upstream, detectors, the engine's composed
//! profile sets (one per distinct combination of jurisdictions, built once), the store, a
//! per-user cache of the engine's inputs, takeover waiters and metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::Notify;
use tutela_store::User;
use tutela_types::SessionState;

use crate::clock::{Clock, Ids};
use crate::config::Config;
use crate::duties::{Policy, PolicySet};
use crate::encoder::EncoderPool;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::records::Records;
use crate::scan::Scanner;
use crate::texts::Region;
use crate::upstream::Upstream;

/// A composed set of profiles with what the gateway derives from it once.
pub struct Compiled {
    /// The engine's set.
    pub set: Arc<dyn PolicySet>,
    /// The jurisdictions as asked (`cn,us-ca`), recorded with each turn.
    pub label: String,
    /// Regions whose crisis resources apply.
    pub regions: Vec<Region>,
}

/// What the gateway keeps in memory about a user between turns.
#[derive(Debug, Clone)]
pub struct Cached {
    /// The user record.
    pub user: User,
    /// The engine's clocks.
    pub session: SessionState,
    /// The current session id; renewed when a new period of continuous use starts.
    pub session_id: String,
    /// The user's active escalation case with takeover, if any.
    pub takeover_case: Option<i64>,
    /// Turns answered by this process (the demo varies its replies by it).
    pub turns: usize,
    /// A notice decided on an earlier turn whose reply was for the app (structured output, a
    /// tool call), still to be shown with the next plain-text reply.
    pub deferred_notice: Option<DeferredNotice>,
    /// Whether the store holds `deferred_notice` (it was loaded from there or written): only
    /// then does showing it clear the store, and deferring it again unchanged writes nothing.
    pub deferred_stored: bool,
    /// On a shared database: the stamp of the clocks this entry holds (loaded or written by
    /// this instance). A turn that finds another stamp in the store reloads the entry: another
    /// instance (or an admin change) wrote since. `None` on SQLite, where nobody else writes.
    pub stamp: Option<String>,
}

/// A notice the person has not seen in a reply yet. It was delivered in `tutela.notices` and
/// the `X-Tutela-Notices` header of the turn that decided it (the law's clock counts it
/// there); the text also goes before the next plain-text reply. Kept with the user in the
/// store too (`UserStore::set_deferred_notice`), so a restart or a dropped cache entry does
/// not lose it.
pub use tutela_store::DeferredNotice;

/// The shared state behind every handler.
pub struct Inner {
    /// The validated configuration.
    pub config: Config,
    /// The model behind the gateway.
    pub upstream: Upstream,
    /// The detectors.
    pub scanner: Arc<dyn Scanner>,
    /// Where the encoder tier runs, and how long the user side waits for it.
    pub encoder: EncoderPool,
    /// The duties engine.
    pub policy: Arc<dyn Policy>,
    /// Composed sets by sorted jurisdiction list.
    sets: RwLock<HashMap<String, Arc<Compiled>>>,
    /// The store.
    pub records: Records,
    /// Per-user cache; a turn holds its user's lock only while it reads and writes the clocks.
    users: Mutex<Slots>,
    /// Wakes a user's waiting takeover turn when a human replies (through this instance, or
    /// another one on a shared database: its event, `crate::shared`).
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
    /// Rung when the console's queue or a case changes (here, or on another instance of a
    /// shared database); the console's event streams then look at once.
    bell: Notify,
    /// This process among the instances on one database (its events are not handled twice).
    pub instance: String,
    /// Cases staff handed back to the AI whose person has not been told yet (user → case):
    /// their next reply says so first. On SQLite in memory only: a restart forgets them (the
    /// hand-back itself is in the audit log). On a shared database the store holds them
    /// (`user_pending`) and this map is this instance's view, read with the user's entry.
    handbacks: Mutex<HashMap<String, i64>>,
    /// Suspended conversations (OR SB 1546 hard stop) a person or the follow-up step cleared,
    /// whose person has not had a turn since: the next turn hands the clearance to the engine,
    /// which records the follow-up and lifts the suspension. In memory like the hand-backs: a
    /// restart forgets them, so the person stays suspended (the safe side) until cleared again;
    /// the clearance itself is in the audit log.
    clearances: Mutex<HashMap<String, tutela_types::Clearance>>,
    /// Metrics.
    pub metrics: Metrics,
    /// Writes held until they are made (side effects, case messages), in order; one worker.
    pub(crate) held: crate::held::Queue<AppState>,
    /// The admin bearer token.
    pub admin_token: String,
    /// The app key (the app's channel; see `auth`).
    pub app_key: String,
    /// Rate limits of the public complaint intake.
    pub complaint_limits: crate::limits::ComplaintLimits,
    /// Id source.
    pub ids: Ids,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// The shared record of anonymous requests (created once).
    pub anonymous_user: tokio::sync::OnceCell<User>,
}

/// Users kept in memory before idle ones are dropped: about 1 KB each, so at most ~100 MB.
const MAX_CACHED_USERS: usize = 100_000;

/// Once per this many new users, the cache drops the users idle past the idle reset (whose
/// next turn reloads them from the store and opens a new period of use anyway): the cache
/// holds about the users of the last idle-reset window, not every user since start.
const SWEEP_EVERY: usize = 1_024;

/// Once per this many new takeover notifiers, those nobody waits on are dropped.
const WAITER_SWEEP_EVERY: usize = 256;

type Slots = HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>;

/// Drops the entries nobody holds whose last turn is at least `idle_secs` old (or that were
/// never filled). Their clocks were written by the turn writer long before (it gathers for
/// milliseconds), so the store holds what the cache held.
fn evict_idle(users: &mut Slots, now: tutela_types::Timestamp, idle_secs: i64) {
    users.retain(|_, slot| {
        if Arc::strong_count(slot) > 1 {
            return true;
        }
        match slot.try_lock() {
            Ok(entry) => entry.as_ref().is_some_and(|c| {
                c.session
                    .last_activity
                    .is_some_and(|t| now.secs_since(t) < idle_secs)
            }),
            Err(_) => true,
        }
    });
}

/// Drops the notifiers only the map holds: nobody waits on them, and a reply to such a user
/// finds a fresh one (notifying it wakes nobody, as notifying the old one would have). Under the
/// map's lock, so nobody can take one between the check and the removal.
fn drop_unheld_waiters(waiters: &mut HashMap<String, Arc<Notify>>) {
    waiters.retain(|_, n| Arc::strong_count(n) > 1);
}

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Assembles the state. `admin_token` is the configured one or one the caller generated.
    pub fn new(
        config: Config,
        upstream: Upstream,
        scanner: Arc<dyn Scanner>,
        policy: Arc<dyn Policy>,
        records: Records,
        clock: Arc<dyn Clock>,
        admin_token: String,
    ) -> Result<AppState, ApiError> {
        let ids = Ids::new(clock.now());
        let encoder = EncoderPool::per_core(config.encoder_wait, config.encoder_queue);
        let metrics = Metrics::default();
        let _ = metrics.tiers.set(scanner.tiers());
        let complaint_limits = crate::limits::ComplaintLimits::new(&config.complaints);
        let app_key = config
            .app_key
            .clone()
            .unwrap_or_else(|| crate::keys::app_key_for(&admin_token));
        let state = AppState(Arc::new(Inner {
            config,
            upstream,
            scanner,
            encoder,
            policy,
            sets: RwLock::new(HashMap::new()),
            records,
            users: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            bell: Notify::new(),
            instance: ids.next(),
            handbacks: Mutex::new(HashMap::new()),
            clearances: Mutex::new(HashMap::new()),
            metrics,
            held: crate::held::Queue::default(),
            app_key,
            complaint_limits,
            admin_token,
            ids,
            clock,
            anonymous_user: tokio::sync::OnceCell::new(),
        }));
        // Compose the deployment default once at start, so a bad default fails early.
        let default = state.config.jurisdictions.clone();
        state.compiled(&default)?;
        Ok(state)
    }

    /// Logs and counts a failed write of a turn whose reply goes out anyway.
    pub(crate) fn write_failed(&self, what: &str, e: &dyn std::fmt::Display) {
        self.metrics
            .store_write_errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::error!(error = %e, "{what} failed; the reply goes out anyway");
    }

    /// The composed set for these jurisdictions, built on first use.
    pub fn compiled(&self, ids: &[String]) -> Result<Arc<Compiled>, ApiError> {
        let mut sorted: Vec<&str> = ids.iter().map(String::as_str).collect();
        if self.config.baseline {
            sorted.push("baseline");
        }
        sorted.sort_unstable();
        sorted.dedup();
        let key = sorted.join(",");
        if let Ok(sets) = self.sets.read()
            && let Some(c) = sets.get(&key)
        {
            return Ok(c.clone());
        }
        let owned: Vec<String> = sorted.iter().map(|s| (*s).to_owned()).collect();
        let label = ids_label(&sorted);
        let set = self
            .policy
            .select(&owned)
            .map_err(ApiError::UnknownJurisdiction)?;
        let mut regions: Vec<Region> = owned
            .iter()
            .chain(set.ids().iter())
            .filter_map(|j| Region::of_jurisdiction(j))
            .collect();
        regions.sort();
        regions.dedup();
        let c = Arc::new(Compiled {
            set,
            label,
            regions,
        });
        if let Ok(mut sets) = self.sets.write() {
            // Bounded: a client sending random combinations cannot grow this without limit.
            if sets.len() < 1024 {
                sets.insert(key, c.clone());
            }
        }
        Ok(c)
    }

    /// The lock slot of a user's cache entry. When the cache is full, users idle for longer
    /// than the idle reset are dropped first (they reload from the store on their next turn,
    /// which would open a new period of use anyway).
    pub fn user_slot(&self, id: &str) -> Arc<tokio::sync::Mutex<Option<Cached>>> {
        let Ok(mut users) = self.users.lock() else {
            return Arc::new(tokio::sync::Mutex::new(None));
        };
        if let Some(slot) = users.get(id) {
            return slot.clone();
        }
        // One pass per SWEEP_EVERY newcomers, not one per newcomer. Below the cap, not while
        // the store's writes fail (the cache then holds clocks the store does not have yet).
        let full = users.len() >= MAX_CACHED_USERS;
        if users.len() % SWEEP_EVERY == 0 && (full || !self.records.health().failing) {
            let idle = i64::from(self.config.idle_reset_minutes) * 60;
            evict_idle(&mut users, self.clock.now(), idle);
        }
        users.entry(id.to_owned()).or_default().clone()
    }

    /// Drops a user's cache entry (after an admin change), so the next turn reloads it; on a
    /// shared database every instance's entry (the clocks get a new stamp).
    pub async fn forget_user(&self, id: &str) {
        let slot = self.user_slot(id);
        *slot.lock().await = None;
        self.restamp(id).await;
    }

    /// A new stamp on the user's clocks in a shared store, so every instance's cached entry is
    /// reloaded before its next turn; returns it (`None` on SQLite, or when it failed: logged).
    pub(crate) async fn restamp(&self, id: &str) -> Option<String> {
        if !self.records.shared() {
            return None;
        }
        let stamp = self.ids.next();
        match self.records.backend.restamp(id, &stamp).await {
            Ok(()) => Some(stamp),
            Err(e) => {
                self.write_failed("restamping a user for the other instances", &e);
                None
            }
        }
    }

    /// Staff resolved `case`: the user's cache entry is dropped (the next turn reloads it and
    /// goes to the model again), a waiting takeover turn wakes, and the person's next reply
    /// tells them they are talking to the AI again ([`AppState::take_handback`]). On a shared
    /// database the hand-back and the clearance are noted in the store, for whichever
    /// instance the person's next turn reaches.
    pub async fn hand_back(&self, user: &str, case: i64) {
        let at = self.clock.now();
        // A person from the team resolved the case: that clears a hard stop too.
        let clearance = tutela_types::Clearance {
            at,
            by: tutela_types::ClearedBy::Human,
        };
        let note = tutela_store::Pending {
            handback: Some(case),
            clearance: Some(clearance),
        };
        if !self.note_shared(user, &note).await {
            if let Ok(mut h) = self.handbacks.lock() {
                h.insert(user.to_owned(), case);
            }
            if let Ok(mut c) = self.clearances.lock() {
                c.insert(user.to_owned(), clearance);
            }
        }
        let slot = self.user_slot(user);
        *slot.lock().await = None;
        self.wake(user);
    }

    /// Notes `note` in a shared store (restamping the user); false on SQLite or when that
    /// failed (logged): then the caller keeps it in memory.
    async fn note_shared(&self, user: &str, note: &tutela_store::Pending) -> bool {
        if !self.records.shared() {
            return false;
        }
        let stamp = self.ids.next();
        let at = self.clock.now();
        match self
            .records
            .backend
            .note_pending(user, note, &stamp, at)
            .await
        {
            Ok(()) => true,
            Err(e) => {
                self.write_failed(
                    "noting a hand-back or clearance for the other instances",
                    &e,
                );
                false
            }
        }
    }

    /// Notes that `user`'s suspended conversation, if any, was cleared now by `by`; their next
    /// turn passes it to the engine.
    pub async fn clear_suspension(&self, user: &str, by: tutela_types::ClearedBy) {
        let at = self.clock.now();
        let clearance = tutela_types::Clearance { at, by };
        let note = tutela_store::Pending {
            handback: None,
            clearance: Some(clearance),
        };
        if self.note_shared(user, &note).await {
            return;
        }
        if let Ok(mut c) = self.clearances.lock() {
            c.insert(user.to_owned(), clearance);
        }
    }

    /// The clearance of `user`'s suspension not yet passed to the engine; taking it removes it
    /// (on a shared database from the store too, so one turn only takes it).
    pub async fn take_clearance(&self, user: &str) -> Option<tutela_types::Clearance> {
        let local = self.clearances.lock().ok().and_then(|mut c| c.remove(user));
        if local.is_none() || !self.records.shared() {
            return local;
        }
        match self.records.backend.take_clearance(user).await {
            Ok(taken) => taken,
            Err(e) => {
                self.write_failed("taking a clearance", &e);
                local
            }
        }
    }

    /// The case handed back to the AI that `user` has not been told of yet; taking it clears it
    /// (on a shared database in the store too, so one turn only tells them).
    pub async fn take_handback(&self, user: &str) -> Option<i64> {
        let local = self.handbacks.lock().ok().and_then(|mut h| h.remove(user));
        if local.is_none() || !self.records.shared() {
            return local;
        }
        self.take_stored_handback(user).await.or(local)
    }

    /// Clears `user`'s pending hand-back wherever it is (the person was told otherwise, or is
    /// deleted); returns it.
    pub async fn drop_handback(&self, user: &str) -> Option<i64> {
        let local = self.handbacks.lock().ok().and_then(|mut h| h.remove(user));
        if !self.records.shared() {
            return local;
        }
        self.take_stored_handback(user).await.or(local)
    }

    async fn take_stored_handback(&self, user: &str) -> Option<i64> {
        match self.records.backend.take_handback(user).await {
            Ok(taken) => taken,
            Err(e) => {
                self.write_failed("taking a hand-back", &e);
                None
            }
        }
    }

    /// Sets this instance's view of `user`'s pending hand-back and clearance to the store's
    /// (a shared database, when their entry is loaded).
    pub(crate) fn set_pending(&self, user: &str, pending: tutela_store::Pending) {
        if let Ok(mut h) = self.handbacks.lock() {
            match pending.handback {
                Some(case) => h.insert(user.to_owned(), case),
                None => h.remove(user),
            };
        }
        if let Ok(mut c) = self.clearances.lock() {
            match pending.clearance {
                Some(cl) => c.insert(user.to_owned(), cl),
                None => c.remove(user),
            };
        }
    }

    /// Wakes whatever waits on `user` (their takeover turn, the app's channel), here and on
    /// every other instance of a shared database; the console's streams look again too.
    pub fn wake(&self, user: &str) {
        self.waiter(user).notify_waiters();
        self.bell.notify_waiters();
        self.records.publish(&crate::records::Event {
            from: self.instance.clone(),
            kind: crate::records::EventKind::Wake,
            user: Some(user.to_owned()),
        });
    }

    /// The console's queue or a case changed: its event streams look again, here and on every
    /// other instance of a shared database.
    pub fn queue_changed(&self) {
        self.bell.notify_waiters();
        self.records.publish(&crate::records::Event {
            from: self.instance.clone(),
            kind: crate::records::EventKind::Queue,
            user: None,
        });
    }

    /// The bell [`AppState::queue_changed`] rings (the console's event streams wait on it).
    pub fn bell(&self) -> &Notify {
        &self.bell
    }

    /// Rings the bell and wakes `user`'s waiters here only: another instance's event.
    pub(crate) fn heard(&self, user: Option<&str>) {
        if let Some(u) = user {
            self.waiter(u).notify_waiters();
        }
        self.bell.notify_waiters();
    }

    /// Wakes every waiter here (events may have been lost: they read the store again).
    pub(crate) fn wake_all_here(&self) {
        if let Ok(w) = self.waiters.lock() {
            for n in w.values() {
                n.notify_waiters();
            }
        }
        self.bell.notify_waiters();
    }

    /// The sizes of the in-memory maps, for `/metrics`.
    pub(crate) fn memory_sizes(&self) -> (u64, u64) {
        (
            self.users.lock().map_or(0, |u| u.len() as u64),
            self.waiters.lock().map_or(0, |w| w.len() as u64),
        )
    }

    /// Waits up to `wait` for the held writes (an intervention's side effects, a person's
    /// messages to their case) to be written, for a shutdown before the store closes; returns
    /// how many are still held: (side effects, case messages). Those are lost when the process
    /// ends, but side effects held in the spill directory, which the next start writes.
    pub async fn settle_held(&self, wait: std::time::Duration) -> (u64, u64) {
        let _ = tokio::time::timeout(wait, async {
            loop {
                let c = self.held.counts();
                if c.side_effects + c.case_messages == 0 {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        })
        .await;
        let c = self.held.counts();
        (c.side_effects, c.case_messages)
    }

    /// The notifier a user's takeover turn waits on.
    pub fn waiter(&self, user: &str) -> Arc<Notify> {
        let Ok(mut w) = self.waiters.lock() else {
            return Arc::new(Notify::new());
        };
        if !w.contains_key(user) && w.len() % WAITER_SWEEP_EVERY == 0 {
            drop_unheld_waiters(&mut w);
        }
        w.entry(user.to_owned()).or_default().clone()
    }
}

/// The jurisdictions as recorded: the sorted list without the baseline.
fn ids_label(sorted: &[&str]) -> String {
    let mut out = String::new();
    for s in sorted.iter().filter(|s| **s != "baseline") {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(s);
    }
    if out.is_empty() {
        "baseline".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutela_types::Timestamp;

    fn slot(last: Option<i64>) -> Arc<tokio::sync::Mutex<Option<Cached>>> {
        let session = SessionState {
            last_activity: last.map(Timestamp::from_unix),
            ..SessionState::default()
        };
        Arc::new(tokio::sync::Mutex::new(Some(Cached {
            user: User::new("u", Timestamp::from_unix(0)),
            session,
            session_id: "s".into(),
            takeover_case: None,
            turns: 1,
            deferred_notice: None,
            deferred_stored: false,
            stamp: None,
        })))
    }

    #[test]
    fn only_held_waiters_are_kept() {
        let mut w: HashMap<String, Arc<Notify>> = HashMap::new();
        let held = Arc::new(Notify::new());
        w.insert("waiting".into(), held.clone());
        w.insert("gone".into(), Arc::new(Notify::new()));
        drop_unheld_waiters(&mut w);
        assert_eq!(w.len(), 1);
        assert!(w.contains_key("waiting"));
        drop(held);
        drop_unheld_waiters(&mut w);
        assert!(w.is_empty());
    }

    #[test]
    fn only_idle_unheld_entries_are_evicted() {
        let now = Timestamp::from_unix(10_000);
        let mut users: Slots = HashMap::new();
        users.insert("recent".into(), slot(Some(9_500)));
        users.insert("idle".into(), slot(Some(1_000)));
        users.insert("never".into(), Arc::new(tokio::sync::Mutex::new(None)));
        let held = slot(Some(1_000));
        users.insert("held".into(), held.clone());
        let locked = slot(Some(1_000));
        let guard = locked.try_lock().unwrap();
        users.insert("locked".into(), locked.clone());
        evict_idle(&mut users, now, 1_800);
        drop(guard);
        let mut left: Vec<&str> = users.keys().map(String::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["held", "locked", "recent"]);
    }
}
