//! Delivery of guardian and emergency-contact notifications from the store's outbox: a
//! background worker POSTs each due notification to the configured webhook, with retries and
//! backoff from the store's retry policy. Without a webhook, notifications wait in the outbox
//! (visible to staff) rather than being dropped.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::Notify;
use tutela_store::RetryPolicy;

use crate::state::AppState;

/// Wakes the worker early (a notification was just enqueued).
fn bell() -> &'static Notify {
    static BELL: OnceLock<Notify> = OnceLock::new();
    BELL.get_or_init(Notify::new)
}

/// Rings the worker.
pub(crate) fn kick(_st: &AppState) {
    bell().notify_one();
}

/// The worker loop; runs until the process ends.
pub(crate) async fn run(st: AppState) {
    let Some(url) = st.config.webhook_url.clone() else {
        return;
    };
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("notification client: {e}");
            return;
        }
    };
    let policy = RetryPolicy {
        max_attempts: st.config.notify_max_attempts,
        base_secs: st.config.notify_retry.as_secs() as i64,
        ..RetryPolicy::default()
    };
    loop {
        let now = st.clock.now();
        let due = match st.records.backend.claim_due(now, 32, &policy).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!("outbox claim failed: {e}");
                Vec::new()
            }
        };
        for n in due {
            let body = serde_json::json!({
                "id": n.id,
                "contact": n.contact,
                "payload": n.payload,
                "attempt": n.attempts,
            });
            let result = client.post(&url).json(&body).send().await;
            let at = st.clock.now();
            let ok = matches!(&result, Ok(r) if r.status().is_success());
            let b = &st.records.backend;
            if ok {
                let _ = b.mark_sent(n.id, at).await;
                st.metrics
                    .notifications_sent
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            } else {
                let err = match result {
                    Ok(r) => format!("webhook answered {}", r.status()),
                    Err(e) => e.without_url().to_string(),
                };
                if let Ok(row) = b.mark_failed(n.id, at, &err, &policy).await
                    && row.status == tutela_store::OutboxStatus::Failed
                {
                    st.metrics
                        .notifications_failed
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), bell().notified()).await;
    }
}
