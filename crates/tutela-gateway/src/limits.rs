//! Rate limits of the public complaint intake (`POST /v1/tutela/complaints`): per client (the
//! peer address, or the first address of a configured header behind a trusted proxy), per user
//! and one global cap, each a fixed window counted in memory. Over a limit the intake answers
//! 429 in OpenAI's shape with `Retry-After` (see `ApiError::RateLimited`).
//!
//! Time comes in as a value (the gateway's clock seam); the memory is bounded: each window keeps
//! at most [`MAX_KEYS`] keys, and past that a new key is refused until old windows end (a flood
//! from many addresses meets the global cap, not an unbounded map).

use std::collections::HashMap;
use std::sync::Mutex;

use tutela_types::Timestamp;

/// Keys (clients, users) one window keeps before it refuses new ones.
pub(crate) const MAX_KEYS: usize = 65_536;

/// A fixed-window counter per key: at most `limit` hits per key in each window of
/// `window_secs` seconds (windows aligned to multiples of their length since the epoch).
#[derive(Debug)]
pub struct FixedWindow {
    window_secs: i64,
    limit: u32,
    max_keys: usize,
    /// Key → (start of its window, hits in it).
    hits: Mutex<HashMap<String, (i64, u32)>>,
}

impl FixedWindow {
    /// `limit` hits per `window_secs` (both at least 1) for each key.
    pub fn new(limit: u32, window_secs: i64) -> Self {
        Self::with_max_keys(limit, window_secs, MAX_KEYS)
    }

    /// The same with another bound on the keys kept.
    pub fn with_max_keys(limit: u32, window_secs: i64, max_keys: usize) -> Self {
        Self {
            window_secs: window_secs.max(1),
            limit: limit.max(1),
            max_keys: max_keys.max(1),
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a hit for `key` at `now`; `Err(secs)` (until the window ends) when the key is over
    /// its limit or the window keeps too many keys to take a new one. A refused hit is not
    /// counted.
    pub fn hit(&self, key: &str, now: Timestamp) -> Result<(), u64> {
        let now = now.unix();
        let start = now - now.rem_euclid(self.window_secs);
        let retry = u64::try_from(start + self.window_secs - now).unwrap_or(1);
        let Ok(mut hits) = self.hits.lock() else {
            return Err(retry);
        };
        if !hits.contains_key(key) && hits.len() >= self.max_keys {
            hits.retain(|_, (s, _)| *s == start);
            if hits.len() >= self.max_keys {
                return Err(retry);
            }
        }
        let entry = hits.entry(key.to_owned()).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        if entry.1 >= self.limit {
            return Err(retry);
        }
        entry.1 += 1;
        Ok(())
    }
}

/// The complaint intake's limits, from `[complaints]`.
#[derive(Debug)]
pub struct ComplaintLimits {
    /// Per client, per hour.
    pub per_client: FixedWindow,
    /// Per user, per day.
    pub per_user: FixedWindow,
    /// All complaints, per hour.
    pub global: FixedWindow,
}

impl ComplaintLimits {
    /// The limits of a validated configuration.
    pub fn new(c: &crate::config::ComplaintsConfig) -> Self {
        Self {
            per_client: FixedWindow::new(c.per_client_per_hour, 3_600),
            per_user: FixedWindow::new(c.per_user_per_day, 86_400),
            global: FixedWindow::new(c.global_per_hour, 3_600),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        // 1_800_000_000 is a multiple of 3,600: windows start at `at(0)`.
        Timestamp::from_unix(1_800_000_000 + secs)
    }

    #[test]
    fn a_key_gets_its_limit_per_window_and_then_the_time_to_wait() {
        let w = FixedWindow::new(3, 3_600);
        for _ in 0..3 {
            assert_eq!(w.hit("a", at(10)), Ok(()));
        }
        assert_eq!(w.hit("a", at(100)), Err(3_500));
        assert_eq!(w.hit("a", at(3_599)), Err(1));
        // Other keys are counted apart.
        assert_eq!(w.hit("b", at(100)), Ok(()));
        // The next window starts afresh.
        assert_eq!(w.hit("a", at(3_600)), Ok(()));
    }

    #[test]
    fn refused_hits_are_not_counted() {
        let w = FixedWindow::new(1, 60);
        assert_eq!(w.hit("a", at(0)), Ok(()));
        for _ in 0..100 {
            assert!(w.hit("a", at(1)).is_err());
        }
        assert_eq!(w.hit("a", at(60)), Ok(()));
        assert!(w.hit("a", at(61)).is_err());
    }

    #[test]
    fn the_keys_kept_are_bounded() {
        let w = FixedWindow::with_max_keys(5, 60, 3);
        for k in ["a", "b", "c"] {
            assert_eq!(w.hit(k, at(0)), Ok(()));
        }
        // Full: a fourth key waits for the window to end; known keys still count.
        assert_eq!(w.hit("d", at(10)), Err(50));
        assert_eq!(w.hit("a", at(10)), Ok(()));
        // Old windows are dropped to make room.
        assert_eq!(w.hit("d", at(60)), Ok(()));
        assert_eq!(w.hits.lock().unwrap().len(), 1);
    }
}
