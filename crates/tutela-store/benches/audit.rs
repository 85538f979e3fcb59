//! Audit append throughput on a SQLite file: one durable append at a time, durable appends from
//! 16 concurrent callers (group commit), and queued records flushed in bulk.
//!
//! Run: `cargo bench -p tutela-store --bench audit`.

#![expect(clippy::unwrap_used, reason = "a benchmark aborts on any failure")]

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tutela_store::{AuditEntry, AuditKind, AuditPayload, Store};
use tutela_types::{Action, Decided, Reason, Severity, Timestamp};

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

    rt.block_on(async {
        let v = store.verify(None).await.unwrap();
        assert!(v.is_intact());
        eprintln!("verified {} records", v.records);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
