//! Integration tests of the gateway: `app(state)` with `oneshot` where no socket is needed, a
//! `TestGateway` on 127.0.0.1:0 in front of the in-repo mock upstream where streams are.
//!
//! Modules: `support` (TestGateway, fake detectors, SSE parsing), `proxy` (OpenAI-compatible
//! JSON and SSE), `crisis` (EN/ZH crisis, escalation, outbox, counters), `encoder` (the encoder tier: concurrent
//! with the upstream on the user side, its fallbacks, both sides with the real detectors), `takeover` (human
//! takeover round trip), `reply_policy` (streams stopped before a violation leaks; the sentence look-ahead), `minors`
//! (budget, quiet hours, intimate persona), `labels` (explicit labels, AIGC), `admin` (auth,
//! users, audit), `compliance` (usage, obligations, reports, complaints, data rights), `config` (errors reported together), `openai` (API fidelity: errors, validation, identity,
//! pass-through, structured output, tool calls), `deferred` (notices deferred by replies for the app:
//! kept across a restart and a dropped cache entry; CA's and CN's clocks through JSON-only turns), `controls` (control characters hide no crisis), `faults` (a full disk: the crisis
//! reply still leaves, readiness, records written late; side effects and case messages held and
//! written in order by one worker), `instances` (three instances on one PostgreSQL database: one
//! user's clocks exact round-robin, a case opened, answered and delivered through three).

mod admin;
mod compliance;
mod config;
mod controls;
mod crisis;
mod deferred;
mod encoder;
mod faults;
mod instances;
mod labels;
mod minors;
mod openai;
mod proxy;
mod reply_policy;
mod responses;
mod support;
mod takeover;
mod test_traffic;
mod wave2027;
