//! Faults of the store: when audit writes fail (a full disk), a person in crisis still gets the
//! crisis reply, `/readyz` says not ready, `/metrics` says writes fail, and once writes
//! succeed again every held record is written and the chain verifies, noting the outage.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use tutela_store::{
    AuditLog, AuditQuery, ChainLink, NewAuditRecord, StoreError, StoredAuditRecord,
};

use crate::support::{TestGateway, content};

/// Fails every append while `broken` is set, as a full disk does.
pub struct Faulty {
    inner: Arc<dyn AuditLog>,
    pub broken: AtomicBool,
}

#[async_trait]
impl AuditLog for Faulty {
    async fn append(&self, records: &[NewAuditRecord]) -> tutela_store::Result<Vec<ChainLink>> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::AuditPending("database or disk is full".into()));
        }
        self.inner.append(records).await
    }
    async fn audit_page(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> tutela_store::Result<Vec<StoredAuditRecord>> {
        self.inner.audit_page(after_seq, limit).await
    }
    async fn recorded_head(&self) -> tutela_store::Result<Option<ChainLink>> {
        self.inner.recorded_head().await
    }
    async fn query_audit(&self, q: &AuditQuery) -> tutela_store::Result<Vec<StoredAuditRecord>> {
        self.inner.query_audit(q).await
    }
}

/// A gateway whose audit log is broken until the returned switch is cleared.
pub async fn broken_gateway(extra: &str) -> (TestGateway, Arc<std::sync::OnceLock<Arc<Faulty>>>) {
    let cell: Arc<std::sync::OnceLock<Arc<Faulty>>> = Arc::new(std::sync::OnceLock::new());
    let c = cell.clone();
    let wrap: tutela_gateway::AuditLogWrap = Box::new(move |inner| {
        let f = Arc::new(Faulty {
            inner,
            broken: AtomicBool::new(true),
        });
        let _ = c.set(f.clone());
        f
    });
    let gw = TestGateway::start_faulty(extra, wrap).await;
    (gw, cell)
}

#[expect(clippy::unwrap_used, reason = "a test helper fails the test loudly")]
async fn get(gw: &TestGateway, path: &str) -> (u16, String) {
    let r = gw.http.get(gw.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn crisis_reply_reaches_the_person_while_the_disk_is_full() {
    let (gw, faulty) = broken_gateway("").await;
    let (status, _, body) = gw
        .chat(
            "u-full",
            Some("us-ca"),
            "I want to kill myself tonight",
            false,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(content(&v).contains("988"), "{body}");
    // Streamed too.
    let (status, _, body) = gw
        .chat(
            "u-full-2",
            Some("us-ca"),
            "I want to kill myself tonight",
            true,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("988"), "{body}");
    // Not ready, and the metrics say why.
    let (status, body) = get(&gw, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("writes failing"), "{body}");
    let (_, metrics) = get(&gw, "/metrics").await;
    assert!(
        metrics.contains("tutela_store_writes_failing 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tutela_durable_audit_late_total 2"),
        "{metrics}"
    );
    // Normal turns still work (their records are held).
    let v = gw.say("u-normal", None, "Tell me a story.").await;
    assert_eq!(v["tutela"]["author"], "model");
    // Space freed: everything held is written, and the chain says there was an outage.
    faulty.get().unwrap().broken.store(false, Ordering::SeqCst);
    for _ in 0..200 {
        if get(&gw, "/readyz").await.0 == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(get(&gw, "/readyz").await.0, 200);
    let v = gw.admin_get("/admin/audit/verify").await;
    assert_eq!(v["intact"], true, "{v}");
    let records = gw.admin_get("/admin/audit?limit=100").await;
    let kinds: Vec<&str> = records["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[0], "admin", "the outage note comes first: {kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == "intervention").count(),
        3,
        "both crisis records and the normal turn's notice, written late: {kinds:?}"
    );
    let (_, metrics) = get(&gw, "/metrics").await;
    assert!(
        metrics.contains("tutela_store_writes_failing 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tutela_audit_outages_total 1"),
        "{metrics}"
    );
}
