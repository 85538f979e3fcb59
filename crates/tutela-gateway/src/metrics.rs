//! Prometheus metrics without a metrics library: atomic counters and fixed-bucket histograms,
//! rendered as text at `/metrics`.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency buckets, in seconds: fine below a millisecond, where the
/// gateway's own cost lives, coarse above, where the model's lives.
const BUCKETS: [f64; 16] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    1.0, 5.0, 30.0,
];

/// A histogram with [`BUCKETS`].
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; 16],
    count: AtomicU64,
    /// Sum in microseconds, to stay integral.
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one observation in seconds.
    pub fn observe(&self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cum = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cum += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cum}");
        }
        let n = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {n}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {n}");
    }
}

/// All gateway metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Chat requests by outcome: ok, client, upstream, internal.
    pub requests_ok: AtomicU64,
    /// Requests that failed because of the client.
    pub requests_client_err: AtomicU64,
    /// Requests that failed because of the upstream.
    pub requests_upstream_err: AtomicU64,
    /// Requests that failed because of tutela.
    pub requests_internal_err: AtomicU64,
    /// Streaming requests.
    pub streams: AtomicU64,
    /// Malformed upstream stream events skipped.
    pub malformed_events: AtomicU64,
    /// Upstream latency (whole answer, or first byte for streams).
    pub upstream_latency: Histogram,
    /// Time tutela adds to a request (everything but waiting for the upstream).
    pub added_latency: Histogram,
    /// Interventions by action kind.
    interventions: Mutex<Vec<(String, u64)>>,
    /// Streams stopped and replaced before a violation reached the client.
    pub streams_replaced: AtomicU64,
    /// Audit records written durably before the reply.
    pub durable_audits: AtomicU64,
    /// Notifications delivered / failed.
    pub notifications_sent: AtomicU64,
    /// Notifications that gave up.
    pub notifications_failed: AtomicU64,
}

impl Metrics {
    /// Counts one intervention of this kind.
    pub fn intervention(&self, kind: &str) {
        let Ok(mut v) = self.interventions.lock() else {
            return;
        };
        match v.iter_mut().find(|(k, _)| k == kind) {
            Some((_, n)) => *n += 1,
            None => v.push((kind.to_owned(), 1)),
        }
    }

    /// Prometheus text; `open_escalations` is read from the store by the caller.
    pub fn render(&self, open_escalations: u64) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP tutela_requests_total Chat completion requests by outcome.\n# TYPE tutela_requests_total counter"
        );
        for (outcome, c) in [
            ("ok", &self.requests_ok),
            ("client_error", &self.requests_client_err),
            ("upstream_error", &self.requests_upstream_err),
            ("internal_error", &self.requests_internal_err),
        ] {
            let _ = writeln!(
                out,
                "tutela_requests_total{{outcome=\"{outcome}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        for (name, help, c) in [
            (
                "tutela_streams_total",
                "Streaming chat requests.",
                &self.streams,
            ),
            (
                "tutela_upstream_malformed_events_total",
                "Upstream stream events that were not JSON (skipped).",
                &self.malformed_events,
            ),
            (
                "tutela_streams_replaced_total",
                "Streams stopped and replaced before a violating reply reached the client.",
                &self.streams_replaced,
            ),
            (
                "tutela_durable_audit_total",
                "Intervention audit records made durable before the reply left.",
                &self.durable_audits,
            ),
            (
                "tutela_notifications_sent_total",
                "Guardian / emergency-contact notifications delivered.",
                &self.notifications_sent,
            ),
            (
                "tutela_notifications_failed_total",
                "Notifications given up after the last attempt.",
                &self.notifications_failed,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tutela_interventions_total Interventions by action kind.\n# TYPE tutela_interventions_total counter"
        );
        if let Ok(v) = self.interventions.lock() {
            for (k, n) in v.iter() {
                let _ = writeln!(out, "tutela_interventions_total{{kind=\"{k}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP tutela_open_escalations Escalation cases open or claimed.\n# TYPE tutela_open_escalations gauge\ntutela_open_escalations {open_escalations}"
        );
        self.upstream_latency.render(
            &mut out,
            "tutela_upstream_latency_seconds",
            "Upstream latency: whole answer, or time to first byte for streams.",
        );
        self.added_latency.render(
            &mut out,
            "tutela_added_latency_seconds",
            "Time tutela spends on a request outside the upstream.",
        );
        out
    }
}
