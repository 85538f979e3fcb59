//! The write gate of a backend: every write in this process holds it from before its
//! connection is taken to its commit, so writers queue in order (see the backends' docs). It
//! counts what queues, for `/metrics`: how many writers wait now, how many took it, and how
//! many of those had to wait (never a clock: the store reads none).

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, MutexGuard};

/// The gate's counts ([`crate::Database::write_gate`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GateStats {
    /// Writers waiting for the gate now.
    pub waiting: u64,
    /// Times the gate was taken since start.
    pub taken: u64,
    /// Of those, times a writer found it held and waited.
    pub waited: u64,
}

/// A FIFO lock with counts.
#[derive(Debug, Default)]
pub(crate) struct WriteGate {
    lock: Mutex<()>,
    waiting: AtomicU64,
    taken: AtomicU64,
    waited: AtomicU64,
}

/// Takes one off the waiting count when the wait ends, or is given up (a dropped future).
struct Waiting<'a>(&'a AtomicU64);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl WriteGate {
    /// Waits for the gate (in order: a writer never passes one that waits).
    pub(crate) async fn lock(&self) -> MutexGuard<'_, ()> {
        self.taken.fetch_add(1, Ordering::AcqRel);
        if let Ok(guard) = self.lock.try_lock() {
            return guard;
        }
        self.waited.fetch_add(1, Ordering::AcqRel);
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        self.lock.lock().await
    }

    /// The counts now.
    pub(crate) fn stats(&self) -> GateStats {
        GateStats {
            waiting: self.waiting.load(Ordering::Acquire),
            taken: self.taken.load(Ordering::Acquire),
            waited: self.waited.load(Ordering::Acquire),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{GateStats, WriteGate};

    #[tokio::test]
    async fn the_gate_counts_who_waits() {
        let gate = std::sync::Arc::new(WriteGate::default());
        let first = gate.lock().await;
        assert_eq!(
            gate.stats(),
            GateStats {
                waiting: 0,
                taken: 1,
                waited: 0
            }
        );
        let g = std::sync::Arc::clone(&gate);
        let second = tokio::spawn(async move {
            let _held = g.lock().await;
        });
        while gate.stats().waiting == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(gate.stats().waited, 1);
        drop(first);
        second.await.unwrap();
        assert_eq!(
            gate.stats(),
            GateStats {
                waiting: 0,
                taken: 2,
                waited: 1
            }
        );
        // A wait given up is not counted as waiting any more.
        let held = gate.lock().await;
        let given_up = tokio::time::timeout(std::time::Duration::from_millis(5), gate.lock()).await;
        assert!(given_up.is_err());
        assert_eq!(gate.stats().waiting, 0);
        drop(held);
    }
}
