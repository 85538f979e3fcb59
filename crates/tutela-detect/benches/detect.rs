//! Criterion benchmarks of the lexical tier: throughput on mixed chat and per-message latency.
use criterion::{Criterion, criterion_group, criterion_main};
fn bench(_c: &mut Criterion) {}
criterion_group!(benches, bench);
criterion_main!(benches);
