//! The gateway's clock and id source: read once per request and passed down. Tests pass a
//! settable clock so budgets and quiet hours can be exercised without waiting.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use tutela_types::Timestamp;

/// Where "now" comes from.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "the gateway is where time enters: read once per request and passed down"
    )]
    fn now(&self) -> Timestamp {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Timestamp::from_unix(secs)
    }
}

/// A clock that tests set and advance.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// Starts at `t`.
    pub fn new(t: Timestamp) -> Self {
        Self(AtomicI64::new(t.unix()))
    }

    /// Moves the clock forward.
    pub fn advance_secs(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    /// Sets the clock.
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.unix(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix(self.0.load(Ordering::SeqCst))
    }
}

/// Monotonic elapsed time for metrics only.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    /// Starts measuring.
    #[expect(
        clippy::disallowed_methods,
        reason = "latency metrics need a monotonic clock; no decision depends on it"
    )]
    pub fn start() -> Self {
        Self(std::time::Instant::now())
    }

    /// Seconds since start.
    pub fn secs(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

/// Unique, unguessable-enough ids (`ProduceID`, completion ids, session ids): a per-process
/// random prefix and a counter.
#[derive(Debug)]
pub struct Ids {
    prefix: String,
    next: AtomicU64,
}

impl Ids {
    /// A fresh source seeded from the clock, the process id and an address.
    pub fn new(now: Timestamp) -> Self {
        let mut h = Sha256::new();
        h.update(now.unix().to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        let probe = Box::new(0u8);
        h.update(format!("{:p}", &*probe).as_bytes());
        let d = h.finalize();
        let prefix: String = d.iter().take(6).map(|b| format!("{b:02x}")).collect();
        Self {
            prefix,
            next: AtomicU64::new(1),
        }
    }

    /// The next id, e.g. `3fa2c19b07d1-00000000002a`.
    pub fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:012x}", self.prefix)
    }
}

/// A 128-bit random token (hex) from the operating system's secure generator (`getrandom`).
/// There is no fallback: a token that cannot be drawn securely is an error (the caller stops),
/// never a guessable value.
pub fn random_token() -> Result<String, getrandom::Error> {
    token_from(getrandom::fill)
}

/// A token from the 16 bytes `fill` draws.
pub fn token_from(
    fill: impl FnOnce(&mut [u8]) -> Result<(), getrandom::Error>,
) -> Result<String, getrandom::Error> {
    let mut buf = [0u8; 16];
    fill(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_that_cannot_be_drawn_securely_is_an_error() {
        let r = token_from(|_| Err(getrandom::Error::UNSUPPORTED));
        assert!(r.is_err(), "no fallback to a guessable token: {r:?}");
    }

    #[test]
    fn tokens_are_128_random_bits_in_hex() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(
            token_from(|buf| {
                buf.fill(0xab);
                Ok(())
            })
            .unwrap(),
            "ab".repeat(16)
        );
    }
}
