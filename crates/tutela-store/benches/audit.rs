//! Write throughput on a SQLite file: audit appends (one durable append at a time, durable
//! appends from 16 concurrent callers (group commit), queued records flushed in bulk, the
//! enqueue alone), and turn records committed in batches.
//!
//! Run: `cargo bench -p tutela-store --bench audit`.

#![expect(clippy::unwrap_used, reason = "a benchmark aborts on any failure")]

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tutela_store::{AuditEntry, AuditKind, AuditPayload, Store, TurnRecord};
use tutela_types::{Action, Decided, Reason, SessionState, Severity, Timestamp};

fn entry(i: u64) -> AuditEntry {
    AuditEntry {
        at: Timestamp::from_unix(1_790_000_000 + i as i64),
        kind: AuditKind::Intervention,
        user: Some(format!("user-{}", i % 1000)),
        session: Some(format!("session-{}", i % 5000)),
        jurisdiction: Some("cn".into()),
        payload: AuditPayload {
            actions: vec![Decided {
                action: Action::Escalate {
                    takeover: true,
                    severity: Severity::High,
                },
                reasons: vec![Reason {
                    profile: "cn-anthropomorphic-2026".into(),
                    obligation: "crisis-escalation".into(),
                    article: "Art 12".into(),
                }],
            }],
            ..AuditPayload::default()
        },
        profile_hash: "4f2a9c0d7e1b3a5c4f2a9c0d7e1b3a5c4f2a9c0d7e1b3a5c4f2a9c0d7e1b3a5c".into(),
        content_hash: Some(
            "9b1c2d3e4f5a6b7c9b1c2d3e4f5a6b7c9b1c2d3e4f5a6b7c9b1c2d3e4f5a6b7c".into(),
        ),
    }
}

fn turn(i: u64) -> TurnRecord {
    let at = Timestamp::from_unix(1_790_000_000 + i as i64);
    TurnRecord {
        user_id: format!("user-{}", i % 100_000),
        session_id: format!("session-{}", i % 200_000),
        jurisdiction: "cn".into(),
        at,
        state: SessionState {
            first_use: Some(at),
            continuous_since: Some(at),
            last_activity: Some(at),
            used_today_secs: 600,
            ..SessionState::default()
        },
        local_day: at.local_date(480),
        usage_secs: 30,
        stamp: None,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("tutela-store-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = rt.block_on(Store::open(dir.join("bench.db"))).unwrap();

    let mut g = c.benchmark_group("audit_append");
    g.sample_size(10).measurement_time(Duration::from_secs(5));

    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("durable_one_at_a_time", |b| {
        b.to_async(&rt).iter(|| {
            i += 1;
            let e = entry(i);
            let s = store.clone();
            async move { s.audit().append_durable(&e).await.unwrap() }
        })
    });

    const CONCURRENT: u64 = 16;
    g.throughput(Throughput::Elements(CONCURRENT));
    g.bench_function("durable_16_concurrent", |b| {
        b.to_async(&rt).iter(|| {
            i += CONCURRENT;
            let base = i;
            let s = store.clone();
            async move {
                let mut tasks = Vec::new();
                for k in 0..CONCURRENT {
                    let s = s.clone();
                    tasks.push(tokio::spawn(async move {
                        s.audit().append_durable(&entry(base + k)).await.unwrap()
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
            }
        })
    });

    const QUEUED: u64 = 1_000;
    g.throughput(Throughput::Elements(QUEUED));
    g.bench_function("queued_1000_then_flush", |b| {
        b.to_async(&rt).iter(|| {
            i += QUEUED;
            let base = i;
            let s = store.clone();
            async move {
                for k in 0..QUEUED {
                    s.audit().record(&entry(base + k)).await.unwrap();
                }
                s.audit().flush().await.unwrap();
            }
        })
    });

    g.throughput(Throughput::Elements(1));
    g.bench_function("enqueue_only", |b| {
        b.to_async(&rt).iter(|| {
            i += 1;
            let e = entry(i);
            let s = store.clone();
            async move { s.audit().record(&e).await.unwrap() }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("turn_records");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    const TURNS: u64 = 512;
    g.throughput(Throughput::Elements(TURNS));
    g.bench_function("record_turns_batch_512", |b| {
        b.to_async(&rt).iter(|| {
            i += TURNS;
            let base = i;
            let s = store.clone();
            async move {
                let batch: Vec<TurnRecord> = (0..TURNS).map(|k| turn(base + k)).collect();
                s.sessions().record_turns(&batch).await.unwrap();
            }
        })
    });
    g.finish();

    rt.block_on(async {
        let v = store.verify(None).await.unwrap();
        assert!(v.is_intact());
        eprintln!("verified {} records", v.records);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
