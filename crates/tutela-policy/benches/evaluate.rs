//! Cost of one `evaluate` call: a user turn and an assistant turn under the default deployment
//! composition (cn + us-ca + us-ny + eu + baseline), with and without findings.

use criterion::{Criterion, criterion_group, criterion_main};
use tutela_policy::{EngineOptions, EvalContext, Turn, evaluate};
use tutela_profile::Registry;
use tutela_types::{
    AgeState, DetectorId, Finding, SessionState, Severity, Side, Tier, Timestamp, UserState,
};

fn bench(c: &mut Criterion) {
    let Ok(reg) = Registry::builtin() else { return };
    let Ok(set) = reg.select(&["cn", "us-ca", "us-ny", "eu", "baseline"]) else {
        return;
    };
    let options = EngineOptions::default();
    let user = UserState {
        age_state: AgeState::KnownMinor,
        age: Some(15),
        utc_offset_minutes: 480,
        ..UserState::default()
    };
    let start = Timestamp::from_unix(1_788_000_000);
    // A session 50 minutes in, so the clocks have state.
    let mut session = SessionState::default();
    for m in (0..50).step_by(10) {
        let ctx = EvalContext {
            now: start.plus_minutes(m),
            user: &user,
            session: &session,
            turn: Turn::user(),
        };
        session = evaluate(&set, &options, &ctx, &[]).session;
    }
    let now = start.plus_minutes(55);
    let crisis = [Finding::new(
        DetectorId::Crisis,
        Side::User,
        Tier::Lexical,
        0.9,
        Severity::High,
    )];
    let manip = [Finding::new(
        DetectorId::ManipulativeExit,
        Side::Assistant,
        Tier::Lexical,
        0.8,
        Severity::Medium,
    )];
    c.bench_function("evaluate/user_turn_no_findings", |b| {
        b.iter(|| {
            let ctx = EvalContext {
                now,
                user: &user,
                session: &session,
                turn: Turn::user(),
            };
            evaluate(&set, &options, &ctx, &[])
        })
    });
    c.bench_function("evaluate/user_turn_crisis", |b| {
        b.iter(|| {
            let ctx = EvalContext {
                now,
                user: &user,
                session: &session,
                turn: Turn::user(),
            };
            evaluate(&set, &options, &ctx, &crisis)
        })
    });
    c.bench_function("evaluate/assistant_turn_manipulative", |b| {
        b.iter(|| {
            let ctx = EvalContext {
                now,
                user: &user,
                session: &session,
                turn: Turn::assistant(),
            };
            evaluate(&set, &options, &ctx, &manip)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
