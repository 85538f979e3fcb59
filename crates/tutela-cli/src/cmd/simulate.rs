//! `tutela simulate`: generates realistic users and a month of conversations through the real
//! store paths and the duties engine, enough to cross the CN thresholds (1,000,000 registered,
//! 100,000 monthly active), so the thresholds, obligation records and reports can be seen
//! working. Deterministic for a seed; prints what it generated (as JSON with `--json`) so a test
//! can compare the reports with it.
//!
//! It fills a database of its own: a database holding anything it did not write (users whose
//! ids do not start with `sim-`, audit records, complaints, staff accounts) is refused before
//! anything is written, so simulated users, cases and counters never enter production figures.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tutela_gateway::clock::{Clock, SystemClock};
use tutela_policy::{EngineOptions, EvalContext, Turn, evaluate};
use tutela_report::compile::Period;
use tutela_store::{ImportUser, Intervention, NewEscalation, Store, StoreOptions, TurnRecord};
use tutela_types::{
    Action, AgeState, DetectorId, Finding, SessionState, Severity, Side, Tier, Timestamp, UserState,
};

use crate::Outcome;

/// Arguments of `tutela simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database to fill: a SQLite file (created if missing) or a `postgres://` URL. A
    /// database that holds anything a simulation did not write (a deployment's) is refused.
    #[arg(long, value_name = "PATH|URL", default_value = "./tutela-sim.db")]
    db: String,
    /// Registered users to create (first seen over the twelve months before `--month`).
    #[arg(long, default_value_t = 1_050_000)]
    registered: u64,
    /// Users active in `--month` (each with one to four sessions).
    #[arg(long, default_value_t = 110_000)]
    active: u64,
    /// The simulated month, `YYYY-MM` (default: the current month).
    #[arg(long, value_name = "YYYY-MM")]
    month: Option<String>,
    /// Share of active users with a crisis during the month (their turn goes through the duties
    /// engine: referral, case for a human, contacts, counters).
    #[arg(long, default_value_t = 0.004)]
    crisis_rate: f64,
    /// The report time zone as a UTC offset in minutes (480 for China Standard Time); UTC by
    /// default, as for `tutela report` and `tutela obligations`. The `next:` line passes it on.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    tz_offset: i32,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Read profiles from this directory instead of the built-in copies.
    #[arg(long, value_name = "DIR")]
    profiles: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// What the simulation generated: the figures the reports must show.
#[derive(Debug, Default, Serialize)]
struct Summary {
    month: String,
    /// The report time zone the month and days were counted in.
    utc_offset_minutes: i32,
    registered_users: u64,
    active_users: u64,
    sessions: u64,
    turns: u64,
    usage_seconds: u64,
    crises: u64,
    interventions: u64,
    replaced_replies: u64,
    escalations_opened: u64,
    takeovers: u64,
    risk_detections: u64,
    crisis_referrals: u64,
    crisis_referrals_us_ca: u64,
    known_minors: u64,
    suspected_minors: u64,
    seconds_elapsed: f64,
}

/// A small deterministic generator (SplitMix64): no dependency, same stream everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Jurisdictions of use and their shares (per mille).
const MIX: [(&str, u64); 4] = [("cn", 800), ("us-ca", 100), ("us-ny", 60), ("eu", 40)];

fn jurisdiction(r: &mut Rng) -> &'static str {
    let mut x = r.below(1000);
    for (j, share) in MIX {
        if x < share {
            return j;
        }
        x -= share;
    }
    "cn"
}

fn age_state(r: &mut Rng) -> AgeState {
    match r.below(100) {
        0..=64 => AgeState::Unknown,
        65..=84 => AgeState::SelfDeclaredAdult,
        85..=91 => AgeState::VerifiedAdult,
        92..=95 => AgeState::SuspectedMinor,
        _ => AgeState::KnownMinor,
    }
}

/// The ids of simulated users start with this.
const SIM_PREFIX: &str = "sim-";

/// Users imported per transaction.
const IMPORT_BATCH: usize = 20_000;
/// Turn records per transaction.
const TURN_BATCH: usize = 4_096;

/// Refuses a database that holds data a simulation did not write (a deployment's records):
/// simulated users, cases and counters would enter its figures and queues.
async fn refuse_foreign_data(store: &Store, db: &str) -> Result<()> {
    let foreign = store.obligations().foreign_data(SIM_PREFIX).await?;
    if foreign.is_empty() {
        return Ok(());
    }
    let what: Vec<String> = foreign.iter().map(|(w, n)| format!("{n} {w}")).collect();
    bail!(
        "`{}` holds data that `tutela simulate` did not write ({}); simulated users, cases and counters would enter its figures: give `--db` a new file or an empty database",
        super::shown_db(db),
        what.join(", ")
    )
}

/// Runs `tutela simulate`.
pub fn run(args: Args) -> Result<Outcome> {
    if args.active > args.registered {
        bail!(
            "`--active` ({}) cannot exceed `--registered` ({})",
            args.active,
            args.registered
        );
    }
    let clock = SystemClock;
    let started = clock.now();
    let month = match &args.month {
        Some(m) => crate::cmd::report::parse_month(m)?,
        None => tutela_store::month_of(started, args.tz_offset),
    };
    let period = Period::month(month);
    let tz = args.tz_offset;
    let month_start = Timestamp::from_unix(i64::from(period.from.0) * 86_400 - i64::from(tz) * 60);
    let days = i64::from(period.to.0 - period.from.0 + 1);
    let reg = crate::cmd::profiles::load(args.profiles.as_deref())?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut summary = runtime.block_on(async {
        let store = Store::connect(
            &args.db,
            StoreOptions {
                report_utc_offset_minutes: tz,
            },
        )
        .await
        .with_context(|| format!("cannot open `{}`", super::shown_db(&args.db)))?;
        refuse_foreign_data(&store, &args.db).await?;
        let mut s = Summary {
            month: format!("{:04}-{:02}", month / 100, month % 100),
            utc_offset_minutes: tz,
            ..Summary::default()
        };
        let mut rng = Rng(args.seed);

        // 1. Registered users, first seen over the year before the month.
        let year_secs = 365 * 86_400;
        let mut batch = Vec::with_capacity(IMPORT_BATCH);
        let mut users: Vec<(AgeState, &'static str)> = Vec::with_capacity(args.registered as usize);
        let bar = progress_bar(args.registered + args.active);
        if let Some(b) = &bar {
            b.set_message("registered users");
        }
        for i in 0..args.registered {
            if let Some(b) = &bar {
                b.inc(1);
            }
            let first_seen = month_start.plus_secs(-(rng.below(year_secs) as i64) - 1);
            let age = age_state(&mut rng);
            let j = jurisdiction(&mut rng);
            match age {
                AgeState::KnownMinor => s.known_minors += 1,
                AgeState::SuspectedMinor => s.suspected_minors += 1,
                _ => {}
            }
            users.push((age, j));
            batch.push(ImportUser {
                id: format!("{SIM_PREFIX}{i:07}"),
                first_seen,
                registered_at: Some(first_seen),
                age_state: age,
                jurisdiction: Some(j.into()),
                utc_offset_minutes: tz,
            });
            if batch.len() == IMPORT_BATCH {
                s.registered_users += store.obligations().import_users(&batch).await?;
                batch.clear();
            }
        }
        s.registered_users += store.obligations().import_users(&batch).await?;

        // 2. A month of sessions for the active users (the first `active` ids, shuffled in time).
        let engine = EngineOptions::default();
        let mut sets = std::collections::BTreeMap::new();
        for (j, _) in MIX {
            let set = reg
                .select(&[j, "baseline"])
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            sets.insert(j, set);
        }
        let mut turns = Vec::with_capacity(TURN_BATCH);
        let mut pending: Vec<Intervention> = Vec::new();
        if let Some(b) = &bar {
            b.set_message("active users' month");
        }
        for i in 0..args.active {
            if let Some(b) = &bar {
                b.inc(1);
            }
            let uid = format!("{SIM_PREFIX}{i:07}");
            let (age, j) = users[i as usize];
            let set = sets.get(j).context("jurisdiction mix")?;
            let user = UserState {
                age_state: age,
                utc_offset_minutes: tz,
                ..UserState::default()
            };
            let mut state = SessionState::default();
            let sessions = 1 + rng.below(4);
            let crisis_session = (rng.unit() < args.crisis_rate).then(|| rng.below(sessions));
            for k in 0..sessions {
                let start =
                    month_start.plus_secs(rng.below(days as u64 * 86_400 - 4 * 3600) as i64);
                // Session length: mostly short, a long tail (minutes).
                let minutes = 2 + (rng.unit().powi(3) * 180.0) as i64;
                let n_turns = 2 + rng.below(4) as i64;
                let sid = format!("{uid}-{k}");
                s.sessions += 1;
                for t in 0..n_turns {
                    let at = start.plus_secs(minutes * 60 * t / (n_turns - 1));
                    let crisis = crisis_session == Some(k) && t == n_turns - 1;
                    let findings = if crisis {
                        vec![Finding::new(
                            DetectorId::Crisis,
                            Side::User,
                            Tier::Lexical,
                            0.95,
                            Severity::High,
                        )]
                    } else {
                        Vec::new()
                    };
                    let ctx = EvalContext {
                        now: at,
                        user: &user,
                        session: &state,
                        turn: Turn::user(),
                    };
                    let d = evaluate(set, &engine, &ctx, &findings);
                    let usage = if t == 0 {
                        0
                    } else {
                        (minutes * 60 / (n_turns - 1)) as u32
                    };
                    state = d.session.clone();
                    turns.push(TurnRecord {
                        user_id: uid.clone(),
                        session_id: sid.clone(),
                        jurisdiction: j.into(),
                        at,
                        state: state.clone(),
                        local_day: at.local_date(tz),
                        usage_secs: usage,
                        stamp: None,
                    });
                    s.turns += 1;
                    s.usage_seconds += u64::from(usage);
                    if crisis {
                        s.crises += 1;
                        record_crisis(&store, &d, &uid, &sid, j, at, &mut s).await?;
                    }
                    if d.replacement().is_some() {
                        s.replaced_replies += 1;
                    }
                    pending.extend(interventions(&d, &uid, &sid, j, at, crisis));
                    if turns.len() >= TURN_BATCH {
                        store.sessions().record_turns(&turns).await?;
                        turns.clear();
                        s.interventions += pending.len() as u64;
                        store.interventions().record_interventions(&pending).await?;
                        pending.clear();
                    }
                }
            }
        }
        store.sessions().record_turns(&turns).await?;
        s.interventions += pending.len() as u64;
        store.interventions().record_interventions(&pending).await?;
        s.active_users = args.active;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        store.close().await?;
        anyhow::Ok(s)
    })?;
    summary.seconds_elapsed = clock.now().secs_since(started) as f64;

    let mut out = std::io::stdout().lock();
    let tz_arg = if args.tz_offset == 0 {
        String::new()
    } else {
        format!(" --tz-offset {}", args.tz_offset)
    };
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?;
    } else {
        writeln!(
            out,
            "simulated {}: {} registered users, {} active users, {} sessions, {} turns, {} crises ({} cases for a human) in {:.0} s\nnext (report time zone {}): tutela obligations check --db {}{tz_arg} --month {} && tutela report assessment --db {}{tz_arg} --from {} --to {}",
            summary.month,
            summary.registered_users,
            summary.active_users,
            summary.sessions,
            summary.turns,
            summary.crises,
            summary.escalations_opened,
            summary.seconds_elapsed,
            zone_name(args.tz_offset),
            super::shown_db(&args.db),
            summary.month,
            super::shown_db(&args.db),
            tutela_report::compile::day_string(period.from),
            tutela_report::compile::day_string(period.to),
        )?;
    }
    Ok(Outcome::Clean)
}

/// What the gateway records for an intervention: the interventions, the case, the counters.
async fn record_crisis(
    store: &Store,
    d: &tutela_types::Decision,
    uid: &str,
    sid: &str,
    j: &str,
    at: Timestamp,
    s: &mut Summary,
) -> Result<()> {
    for decided in &d.actions {
        match &decided.action {
            Action::Escalate { takeover, severity } => {
                let (_, new) = store
                    .escalations()
                    .open_escalation(&NewEscalation {
                        user_id: uid.into(),
                        session_id: Some(sid.into()),
                        jurisdiction: Some(j.into()),
                        severity: *severity,
                        takeover: *takeover,
                        detector: Some("crisis".into()),
                        reasons: decided.reasons.clone(),
                        at,
                    })
                    .await?;
                if new {
                    s.escalations_opened += 1;
                    s.takeovers += u64::from(*takeover);
                }
            }
            Action::Count { counter } => {
                store.counters().bump(*counter, j, at, 1).await?;
                match counter {
                    tutela_types::Counter::RiskDetection => s.risk_detections += 1,
                    tutela_types::Counter::CrisisReferral => {
                        s.crisis_referrals += 1;
                        if j == "us-ca" {
                            s.crisis_referrals_us_ca += 1;
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The interventions of a decision, as the gateway records them (labels and counters are not
/// interventions).
fn interventions(
    d: &tutela_types::Decision,
    uid: &str,
    sid: &str,
    j: &str,
    at: Timestamp,
    crisis: bool,
) -> Vec<Intervention> {
    d.actions
        .iter()
        .filter(|a| !matches!(a.action, Action::Label { .. } | Action::Count { .. }))
        .map(|a| Intervention {
            id: 0,
            at,
            user_id: Some(uid.into()),
            session_id: Some(sid.into()),
            jurisdiction: j.into(),
            detector: crisis.then(|| "crisis".into()),
            side: Some(Side::User),
            action: a.action.clone(),
            reasons: a.reasons.clone(),
            audit_seq: None,
        })
        .collect()
}

/// `UTC`, `UTC+08:00`, `UTC-05:30`: how the summary names the report time zone.
fn zone_name(offset_minutes: i32) -> String {
    if offset_minutes == 0 {
        return "UTC".to_owned();
    }
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let m = offset_minutes.unsigned_abs();
    format!("UTC{sign}{:02}:{:02}", m / 60, m % 60)
}

/// A progress bar of the users simulated, on standard error when it is a terminal (never in a
/// pipe, a log file or the tests).
fn progress_bar(total: u64) -> Option<indicatif::ProgressBar> {
    tutela_screen::progress::bar(
        total,
        "{elapsed_precise} [{bar:30}] {pos}/{len} users ETA {eta} · {msg}",
    )
}
