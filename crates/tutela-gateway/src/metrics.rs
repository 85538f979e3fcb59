//! Prometheus metrics without a metrics library: atomic counters and fixed-bucket histograms,
//! rendered as text at `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use tutela_types::{Finding, Side, Tier};

use crate::held::HeldCounts;
use crate::scan::TierStatus;

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
    /// Streams whose client left before the end (the upstream read was cancelled).
    pub client_gone: AtomicU64,
    /// Turns of test traffic (`X-Tutela-Test-Key`).
    pub test_turns: AtomicU64,
    /// Notices kept for the next plain-text reply (the reply was for the app).
    pub notices_deferred: AtomicU64,
    /// Upstream latency (whole answer, or first byte for streams).
    pub upstream_latency: Histogram,
    /// Time tutela adds to a request (everything but waiting for the upstream).
    pub added_latency: Histogram,
    /// Interventions by action kind.
    interventions: Mutex<Vec<(String, u64)>>,
    /// Streams stopped and replaced before a violation reached the client.
    pub streams_replaced: AtomicU64,
    /// User turns routed to staff (the user's case is in human takeover).
    pub takeover_turns: AtomicU64,
    /// Audit records written durably before the reply.
    pub durable_audits: AtomicU64,
    /// Interventions whose reply left before their audit record was written (writes failing:
    /// the record is held and retried).
    pub durable_audits_late: AtomicU64,
    /// Writes of an intervention's side effects (escalation, notification, intervention rows,
    /// counters) or of a user's first record that failed; the reply still left.
    pub store_write_errors: AtomicU64,
    /// Intervention side effects written by a retry after a failed write.
    pub side_effects_late: AtomicU64,
    /// Intervention side effects held in the spill directory while they could not be written.
    pub side_effects_spilled: AtomicU64,
    /// Intervention side effects an earlier process held in the spill directory, written again
    /// at start.
    pub side_effects_replayed: AtomicU64,
    /// Complaints refused by the intake's rate limits (429).
    pub complaints_limited: AtomicU64,
    /// Notifications delivered / failed.
    pub notifications_sent: AtomicU64,
    /// Notifications that gave up.
    pub notifications_failed: AtomicU64,
    /// The tiers that run (set once at start).
    pub tiers: OnceLock<TierStatus>,
    /// Per side (user, assistant): messages or replies the encoder tier scanned.
    pub encoder_runs: [AtomicU64; 2],
    /// Per side: of those, the ones with at least one window embedded (past the gate).
    pub encoder_reached: [AtomicU64; 2],
    /// Per side: windows embedded.
    pub encoder_windows: [AtomicU64; 2],
    /// User-side encoder scans given up after the bound.
    pub encoder_timeouts: AtomicU64,
    /// User-side encoder scans that failed.
    pub encoder_failures: AtomicU64,
    /// Turns refused with 503 because the encoder tier's queue was full (and the quick
    /// tiers found nothing in the message).
    pub encoder_shed: AtomicU64,
    /// Time a user turn waited for the encoder once it could otherwise answer (the upstream
    /// reply was there, or no upstream was asked).
    pub encoder_wait: Histogram,
    /// Findings of the learned tiers by tier and detector.
    learned: Mutex<Vec<((Tier, String), u64)>>,
}

fn side_index(side: Side) -> usize {
    match side {
        Side::User => 0,
        Side::Assistant => 1,
    }
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

    /// Counts one encoder scan of a side that embedded `windows` windows.
    pub fn encoder_ran(&self, side: Side, windows: u64) {
        let i = side_index(side);
        self.encoder_runs[i].fetch_add(1, Ordering::Relaxed);
        if windows > 0 {
            self.encoder_reached[i].fetch_add(1, Ordering::Relaxed);
            self.encoder_windows[i].fetch_add(windows, Ordering::Relaxed);
        }
    }

    /// Counts the findings of the learned tiers among `findings`.
    pub fn learned_findings(&self, findings: &[Finding]) {
        let learned = |f: &&Finding| matches!(f.tier, Tier::Ngram | Tier::Encoder);
        if !findings.iter().any(|f| learned(&f)) {
            return;
        }
        let Ok(mut v) = self.learned.lock() else {
            return;
        };
        for f in findings.iter().filter(learned) {
            match v
                .iter_mut()
                .find(|((t, d), _)| *t == f.tier && d == f.detector.as_str())
            {
                Some((_, n)) => *n += 1,
                None => v.push(((f.tier, f.detector.as_str().to_owned()), 1)),
            }
        }
    }

    /// Prometheus text; `open_escalations` is read from the store by the caller.
    pub(crate) fn render(
        &self,
        open_escalations: u64,
        store: &tutela_store::WriterHealth,
        gate: &tutela_store::GateStats,
        held: &HeldCounts,
    ) -> String {
        let mut out = String::with_capacity(4096);
        self.render_store(&mut out, store);
        render_gate(&mut out, gate);
        self.render_side_effects(&mut out, held);
        self.render_counters(&mut out);
        self.render_tiers(&mut out);
        self.render_encoder(&mut out);
        self.render_learned(&mut out);
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
        self.encoder_wait.render(
            &mut out,
            "tutela_encoder_wait_seconds",
            "Time a user turn waited for the encoder tier after it could otherwise answer.",
        );
        out
    }

    /// The store's writer and the failures around it (the write gate: [`render_gate`]).
    fn render_store(&self, out: &mut String, store: &tutela_store::WriterHealth) {
        for (name, kind, help, v) in [
            (
                "tutela_store_writes_failing",
                "gauge",
                "1 while the store's writes fail (records are held in memory and retried).",
                u64::from(store.failing),
            ),
            (
                "tutela_audit_pending_records",
                "gauge",
                "Audit and turn records held in memory, not yet written.",
                store.pending,
            ),
            (
                "tutela_audit_write_failures_total",
                "counter",
                "Failed write attempts of the store's writer.",
                store.failed_attempts,
            ),
            (
                "tutela_audit_outages_total",
                "counter",
                "Write outages that ended (every held record written).",
                store.outages,
            ),
            (
                "tutela_audit_spilled_total",
                "counter",
                "Audit records written to the spill file while the database could not write.",
                store.spilled,
            ),
            (
                "tutela_audit_replayed_total",
                "counter",
                "Audit records replayed at start from spill files an earlier process left.",
                store.replayed,
            ),
            (
                "tutela_audit_written_late_total",
                "counter",
                "Records written after a failed attempt.",
                store.written_late,
            ),
            (
                "tutela_durable_audit_late_total",
                "counter",
                "Interventions whose reply left before their audit record was written.",
                self.durable_audits_late.load(Ordering::Relaxed),
            ),
            (
                "tutela_side_effects_late_total",
                "counter",
                "Intervention side effects (case, notifications, rows, counters) written by a retry after a failed write.",
                self.side_effects_late.load(Ordering::Relaxed),
            ),
            (
                "tutela_complaints_limited_total",
                "counter",
                "Complaints refused by the intake's rate limits (429).",
                self.complaints_limited.load(Ordering::Relaxed),
            ),
            (
                "tutela_store_write_errors_total",
                "counter",
                "Failed writes of side effects (escalations, notifications, intervention rows).",
                self.store_write_errors.load(Ordering::Relaxed),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
    }

    /// Intervention side effects and case messages that could not be written at once (the
    /// gauges and the worker's counters read from the held queue, `held.rs`).
    fn render_side_effects(&self, out: &mut String, held: &HeldCounts) {
        for (name, kind, help, v) in [
            (
                "tutela_side_effects_held",
                "gauge",
                "Intervention side effects (case, notifications, rows, counters) not written yet, retried until they are.",
                held.side_effects,
            ),
            (
                "tutela_case_messages_held",
                "gauge",
                "Messages of a person to their case not stored yet, retried until they are.",
                held.case_messages,
            ),
            (
                "tutela_held_write_retries_total",
                "counter",
                "Failed attempts of the one retry worker to write held side effects or case messages.",
                held.retries,
            ),
            (
                "tutela_held_writes_refused_total",
                "counter",
                "Held side effects or case messages the store refused for good (their case or user gone).",
                held.refused,
            ),
            (
                "tutela_held_writes_waits_total",
                "counter",
                "Turns that waited for room because the held writes were at their cap.",
                held.waits,
            ),
            (
                "tutela_side_effects_spilled_total",
                "counter",
                "Intervention side effects held in the spill directory while they could not be written.",
                self.side_effects_spilled.load(Ordering::Relaxed),
            ),
            (
                "tutela_side_effects_replayed_total",
                "counter",
                "Intervention side effects an earlier process held in the spill directory, written again at start.",
                self.side_effects_replayed.load(Ordering::Relaxed),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
    }

    /// Requests, streams, turns and notifications (interventions after them).
    fn render_counters(&self, out: &mut String) {
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
                "tutela_test_turns_total",
                "Turns of test traffic (X-Tutela-Test-Key): run whole, counted nowhere else.",
                &self.test_turns,
            ),
            (
                "tutela_notices_deferred_total",
                "Notices kept for the next plain-text reply because the reply was for the app (structured output, a tool call).",
                &self.notices_deferred,
            ),
            (
                "tutela_streams_client_gone_total",
                "Streams whose client left before the end; the upstream read was cancelled.",
                &self.client_gone,
            ),
            (
                "tutela_streams_replaced_total",
                "Streams stopped and replaced before a violating reply reached the client.",
                &self.streams_replaced,
            ),
            (
                "tutela_takeover_turns_total",
                "User turns routed to staff because the user's case is in human takeover.",
                &self.takeover_turns,
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
        self.render_interventions(out);
    }

    /// Interventions by action kind.
    fn render_interventions(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP tutela_interventions_total Interventions by action kind.\n# TYPE tutela_interventions_total counter"
        );
        if let Ok(v) = self.interventions.lock() {
            for (k, n) in v.iter() {
                let _ = writeln!(out, "tutela_interventions_total{{kind=\"{k}\"}} {n}");
            }
        }
    }

    /// Which detection tiers run, and what the learned ones found.
    fn render_tiers(&self, out: &mut String) {
        let t = self.tiers.get().cloned().unwrap_or_default();
        let _ = writeln!(
            out,
            "# HELP tutela_detector_tier_enabled Whether a detection tier runs (the encoder: on either side).\n# TYPE tutela_detector_tier_enabled gauge"
        );
        for (tier, on) in [
            ("lexical", t.lexical),
            ("ngram", t.ngram),
            ("encoder", t.encoder()),
        ] {
            let _ = writeln!(
                out,
                "tutela_detector_tier_enabled{{tier=\"{tier}\"}} {}",
                u8::from(on)
            );
        }
    }

    /// The encoder tier: scans, windows, reuse and fallbacks.
    fn render_encoder(&self, out: &mut String) {
        for (name, help, c) in [
            (
                "tutela_encoder_runs_total",
                "Messages (user side) and replies (assistant side) the encoder tier scanned.",
                &self.encoder_runs,
            ),
            (
                "tutela_encoder_reached_total",
                "Of those, the ones with at least one window past the n-gram gate (embedded).",
                &self.encoder_reached,
            ),
            (
                "tutela_encoder_windows_total",
                "Windows embedded by the encoder.",
                &self.encoder_windows,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (side, i) in [("user", 0), ("assistant", 1)] {
                let _ = writeln!(
                    out,
                    "{name}{{side=\"{side}\"}} {}",
                    c[i].load(Ordering::Relaxed)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP tutela_encoder_reused_total User-turn embeddings computed ahead (concurrently with the upstream) and read by the assistant side instead of embedding again.\n# TYPE tutela_encoder_reused_total counter\ntutela_encoder_reused_total {}",
            crate::scan::reused()
        );
        let _ = writeln!(
            out,
            "# HELP tutela_encoder_ahead_total User turns embedded ahead for the assistant side beyond the user side's own windows (a message of more than three sentences, or one the n-gram gate let pass).\n# TYPE tutela_encoder_ahead_total counter\ntutela_encoder_ahead_total {}",
            crate::scan::ahead()
        );
        let _ = writeln!(
            out,
            "# HELP tutela_encoder_fallbacks_total User turns decided on the quick tiers because the encoder scan did not finish in time or failed.\n# TYPE tutela_encoder_fallbacks_total counter"
        );
        for (reason, c) in [
            ("timeout", &self.encoder_timeouts),
            ("failed", &self.encoder_failures),
        ] {
            let _ = writeln!(
                out,
                "tutela_encoder_fallbacks_total{{reason=\"{reason}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tutela_encoder_shed_total Turns refused with 503 because the encoder tier's queue was full and the quick tiers found nothing in the message.\n# TYPE tutela_encoder_shed_total counter\ntutela_encoder_shed_total {}",
            self.encoder_shed.load(Ordering::Relaxed)
        );
    }

    /// The learned tiers' findings by tier and detector.
    fn render_learned(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP tutela_learned_findings_total Findings of the learned tiers by tier and detector.\n# TYPE tutela_learned_findings_total counter"
        );
        if let Ok(v) = self.learned.lock() {
            for ((tier, d), n) in v.iter() {
                let tier = if *tier == Tier::Ngram {
                    "ngram"
                } else {
                    "encoder"
                };
                let _ = writeln!(
                    out,
                    "tutela_learned_findings_total{{tier=\"{tier}\",detector=\"{d}\"}} {n}"
                );
            }
        }
    }
}

/// The store's in-process write gate: every write transaction of this instance queues there
/// (the writer's rounds, an intervening turn's transaction, a newcomer's record, admin
/// writes); a queue that stays above zero means writes, not requests, set the pace.
fn render_gate(out: &mut String, gate: &tutela_store::GateStats) {
    for (name, kind, help, v) in [
        (
            "tutela_store_write_gate_waiting",
            "gauge",
            "Writes of this instance waiting for the store's write gate now.",
            gate.waiting,
        ),
        (
            "tutela_store_write_gate_taken_total",
            "counter",
            "Writes that took the store's write gate.",
            gate.taken,
        ),
        (
            "tutela_store_write_gate_waited_total",
            "counter",
            "Writes that found the store's write gate held and waited for it.",
            gate.waited,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    }
}
