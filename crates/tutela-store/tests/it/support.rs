//! Test support: stores over in-memory and file databases, temporary directories, sample data.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use tutela_store::{AuditEntry, AuditKind, AuditPayload, Store};
use tutela_types::{Action, Decided, Reason, Timestamp};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("tutela-store-it-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A store and what keeps it alive.
pub struct TestStore {
    pub store: Store,
    pub name: &'static str,
    _dir: Option<TempDir>,
}

/// One in-memory and one file-backed store, so every test runs against both.
pub async fn both() -> Vec<TestStore> {
    let dir = TempDir::new("db");
    let path = dir.path().join("tutela.db");
    vec![
        TestStore {
            store: Store::open_in_memory().await.unwrap(),
            name: "memory",
            _dir: None,
        },
        TestStore {
            store: Store::open(&path).await.unwrap(),
            name: "file",
            _dir: Some(dir),
        },
    ]
}

/// A file-backed store in a fresh directory.
pub async fn file_store() -> (Store, PathBuf, TempDir) {
    let dir = TempDir::new("file");
    let path = dir.path().join("tutela.db");
    let store = Store::open(&path).await.unwrap();
    (store, path, dir)
}

pub fn t(secs: i64) -> Timestamp {
    Timestamp::from_unix(1_790_000_000 + secs)
}

pub fn reason(obligation: &str) -> Reason {
    Reason {
        profile: "cn-anthropomorphic-2026".into(),
        obligation: obligation.into(),
        article: "Art 12".into(),
    }
}

/// An intervention entry for user `user` at `t(secs)`.
pub fn entry(user: &str, secs: i64) -> AuditEntry {
    AuditEntry {
        at: t(secs),
        kind: AuditKind::Intervention,
        user: Some(user.into()),
        session: Some(format!("{user}-s1")),
        jurisdiction: Some("cn".into()),
        payload: AuditPayload {
            actions: vec![Decided {
                action: Action::Escalate {
                    takeover: true,
                    severity: tutela_types::Severity::High,
                },
                reasons: vec![reason("crisis-escalation")],
            }],
            ..AuditPayload::default()
        },
        profile_hash: "profile-snapshot-1".into(),
        content_hash: Some("c0ffee".into()),
    }
}
