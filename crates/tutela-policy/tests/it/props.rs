//! Property tests for the clocks and for composition.
//!
//! The clock properties check the engine against an independent model of the law's clocks:
//! across any sequence of turns and idle gaps, no periodic reminder is late (a turn at or after
//! the instant it fell due carries it) and none is early or duplicated (a reminder goes out only
//! once it is due). The composition property checks that adding jurisdictions never relaxes a
//! decision.

use std::collections::BTreeSet;

use proptest::prelude::*;
use tutela_policy::{EngineOptions, Turn, gravity};
use tutela_profile::{Anchor, Covers, OncePer, ProfileSet, Rule};
use tutela_types::{
    Action, AgeAssurance, AgeState, Decision, DetectorId, Finding, NoticeContent, ReplyTemplate,
    SessionState, Severity, Side, Tier, Timestamp, UserState,
};

use crate::support::{registry, step};

const ALIASES: [&str; 16] = [
    "cn",
    "us-ca",
    "us-ny",
    "eu",
    "us-ut",
    "baseline",
    "cn-anthropomorphic-draft-2025",
    "us-wa",
    "us-ct",
    "us-or",
    "us-ne",
    "us-id",
    "us-ia",
    "us-ga",
    "au",
    "kr",
];

/// Every subset of [`ALIASES`] as a bit mask.
const ALL: u32 = (1 << ALIASES.len()) - 1;

const USER_DETECTORS: [DetectorId; 10] = [
    DetectorId::Crisis,
    DetectorId::ThirdParty,
    DetectorId::Exit,
    DetectorId::Minor,
    DetectorId::Dependence,
    DetectorId::Distress,
    DetectorId::PropertyLoss,
    DetectorId::EatingDisorder,
    DetectorId::ViolenceToOthers,
    DetectorId::Exit,
];

const ASSISTANT_DETECTORS: [DetectorId; 10] = [
    DetectorId::ManipulativeExit,
    DetectorId::DeniesAi,
    DetectorId::PosesAsRelative,
    DetectorId::EncouragesSelfHarm,
    DetectorId::Sexual,
    DetectorId::Isolating,
    DetectorId::ClaimsTherapist,
    DetectorId::Gamification,
    DetectorId::AttachmentPraise,
    DetectorId::ComeBackPrompt,
];

/// One step of a simulated conversation.
#[derive(Clone, Debug)]
struct Step {
    gap_minutes: i64,
    user: Vec<(usize, Severity)>,
    assistant: Vec<(usize, Severity)>,
}

fn severity() -> impl Strategy<Value = Severity> {
    prop_oneof![
        Just(Severity::Low),
        Just(Severity::Medium),
        Just(Severity::High),
        Just(Severity::Critical)
    ]
}

fn steps(with_findings: bool) -> impl Strategy<Value = Vec<Step>> {
    let gap = prop_oneof![
        6 => 1i64..20,
        2 => 20i64..45,
        1 => 45i64..300,
        1 => 600i64..3000,
    ];
    let n = if with_findings { 0..3usize } else { 0..1usize };
    let user = proptest::collection::vec((0..USER_DETECTORS.len(), severity()), n.clone());
    let assistant = proptest::collection::vec((0..ASSISTANT_DETECTORS.len(), severity()), n);
    proptest::collection::vec(
        (gap, user, assistant).prop_map(|(gap_minutes, user, assistant)| Step {
            gap_minutes,
            user,
            assistant,
        }),
        1..60,
    )
}

fn user_state() -> impl Strategy<Value = UserState> {
    let age_state = prop_oneof![
        Just(AgeState::Unknown),
        Just(AgeState::SelfDeclaredAdult),
        Just(AgeState::SuspectedMinor),
        Just(AgeState::KnownMinor),
        Just(AgeState::VerifiedAdult),
    ];
    let assurance = prop_oneof![
        Just(AgeAssurance::None),
        Just(AgeAssurance::SelfDeclared),
        Just(AgeAssurance::Estimated),
        Just(AgeAssurance::VerifiedDocument),
        Just(AgeAssurance::NistIal2),
    ];
    (
        (age_state, assurance),
        proptest::option::of(10u8..80),
        any::<bool>(),
        -720i32..=840,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |((age_state, age_assurance), age, elderly, off, guardian, emergency)| UserState {
                age_state,
                age_assurance,
                age,
                elderly,
                utc_offset_minutes: off - off % 15,
                contacts: tutela_types::Contacts {
                    guardian,
                    emergency,
                },
                ..UserState::default()
            },
        )
}

fn findings(side: Side, picks: &[(usize, Severity)]) -> Vec<Finding> {
    picks
        .iter()
        .map(|(i, sev)| {
            let d = match side {
                Side::User => USER_DETECTORS[*i % USER_DETECTORS.len()].clone(),
                Side::Assistant => ASSISTANT_DETECTORS[*i % ASSISTANT_DETECTORS.len()].clone(),
            };
            Finding::new(d, side, Tier::Lexical, 0.9, *sev)
        })
        .collect()
}

/// A user turn and (when the model is asked) the assistant turn after it.
struct Turned {
    at: Timestamp,
    user: Decision,
    assistant: Option<Decision>,
    /// The user's message was an exit (so the next turn opens a new period).
    exiting: bool,
}

fn run(
    set: &ProfileSet,
    options: &EngineOptions,
    user: &UserState,
    start: Timestamp,
    steps: &[Step],
) -> Vec<Turned> {
    let mut session = SessionState::default();
    let mut now = start;
    let mut out = Vec::new();
    for s in steps {
        now = now.plus_minutes(s.gap_minutes);
        let uf = findings(Side::User, &s.user);
        let d = step(set, options, user, &session, now, Turn::user(), &uf);
        session = d.session.clone();
        let assistant = if d.replacement().is_none() {
            let af = findings(Side::Assistant, &s.assistant);
            let a = step(set, options, user, &session, now, Turn::assistant(), &af);
            assert_eq!(
                a.session, session,
                "an assistant turn never moves the clocks"
            );
            Some(a)
        } else {
            None
        };
        out.push(Turned {
            at: now,
            exiting: session.exit_requested,
            user: d,
            assistant,
        });
    }
    out
}

fn covers(c: Covers, u: &UserState) -> bool {
    match c {
        Covers::All => true,
        Covers::KnownMinors => u.age_state == AgeState::KnownMinor,
        Covers::Minors => u.age_state.is_minor_or_suspected(),
        Covers::Elderly => u.elderly,
    }
}

fn notice_contents(d: &Decision) -> BTreeSet<NoticeContent> {
    d.notice_contents().into_iter().collect()
}

fn notice_names(d: &Decision, profile: &str, obligation: &str) -> bool {
    d.actions.iter().any(|a| {
        matches!(a.action, Action::Notice { .. })
            && a.reasons
                .iter()
                .any(|r| r.profile == profile && r.obligation == obligation)
    })
}

/// Checks every periodic clock of `rules_of` (a set of profiles) against the notices in `turns`
/// with an independent model of periods: never late, never early.
fn check_periodic(
    rules_of: &ProfileSet,
    decided_by_same_set: bool,
    options: &EngineOptions,
    user: &UserState,
    idle: i64,
    start: Timestamp,
    turns: &[Turned],
) -> Result<(), TestCaseError> {
    for p in rules_of.profiles() {
        for o in p.obligations() {
            if !covers(o.covers, user) || o.alternatives.iter().any(|a| options.declares(*a)) {
                continue;
            }
            for rule in &o.rules {
                let Rule::PeriodicNotice {
                    contents,
                    interval_minutes,
                    anchor,
                } = rule
                else {
                    continue;
                };
                let interval = i64::from(*interval_minutes) * 60;
                let need: BTreeSet<NoticeContent> = contents.iter().copied().collect();
                let mut period_start = start;
                let mut last_cover: Option<Timestamp> = None; // last notice covering `need`, this period
                let mut prev: Option<(Timestamp, bool)> = None;
                for t in turns {
                    if t.at < o.effective.start() {
                        prev = Some((t.at, t.exiting));
                        continue;
                    }
                    let new_period = match prev {
                        None => true,
                        Some((p_at, p_exit)) => p_exit || t.at.secs_since(p_at) >= idle,
                    };
                    if new_period {
                        period_start = t.at;
                        last_cover = None;
                    }
                    let delivered = notice_contents(&t.user);
                    let covered = need.is_subset(&delivered);
                    let due = match anchor {
                        Anchor::LastNotice => {
                            last_cover.unwrap_or(period_start).plus_secs(interval)
                        }
                        Anchor::Grid => {
                            let k = last_cover.map_or(0, |l| l.secs_since(period_start) / interval);
                            period_start.plus_secs((k + 1) * interval)
                        }
                    };
                    // Never late.
                    prop_assert!(
                        t.at < due || covered,
                        "{}/{}: due at {} but the turn at {} carries {:?}",
                        p.id(),
                        o.id,
                        due,
                        t.at,
                        delivered
                    );
                    // Never early or duplicated (only meaningful for the set that decided).
                    if decided_by_same_set && notice_names(&t.user, p.id(), &o.id) {
                        let periodic_reason = t.at >= due;
                        let other_rule_of_same_obligation = o.rules.len() > 1;
                        prop_assert!(
                            periodic_reason || other_rule_of_same_obligation,
                            "{}/{}: notice at {} before it was due at {}",
                            p.id(),
                            o.id,
                            t.at,
                            due
                        );
                    }
                    if covered {
                        last_cover = Some(t.at);
                    }
                    prev = Some((t.at, t.exiting));
                }
            }
        }
    }
    Ok(())
}

fn pick_set(mask: u32) -> Vec<&'static str> {
    ALIASES
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, a)| *a)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    /// No periodic reminder is ever late, early or duplicated, whatever the turns and gaps.
    #[test]
    fn periodic_reminders_are_never_late_or_early(
        mask in 1u32..=ALL,
        user in user_state(),
        steps in steps(false),
        idle in 10u32..60,
        persistent in any::<bool>(),
        year in prop_oneof![Just("2026-09-01"), Just("2027-08-01")],
    ) {
        let set = registry().select(&pick_set(mask)).unwrap();
        let options = EngineOptions { idle_reset_minutes: idle, persistent_ai_disclosure: persistent };
        let start = Timestamp::parse(&format!("{year}T00:00:00Z")).unwrap();
        let turns = run(&set, &options, &user, start, &steps);
        check_periodic(&set, true, &options, &user, i64::from(idle) * 60, start, &turns)?;
    }

    /// A duty met by the deployment's declared persistent AI disclosure never sends a notice,
    /// and the declaration changes nothing else: every other action is the same.
    #[test]
    fn a_persistent_disclosure_only_switches_off_the_duties_it_meets(
        mask in 1u32..=ALL,
        user in user_state(),
        steps in steps(true),
    ) {
        let reg = registry();
        let set = reg.select(&pick_set(mask)).unwrap();
        let start = Timestamp::parse("2027-08-01T00:00:00Z").unwrap();
        let plain = EngineOptions::default();
        let declared = EngineOptions { persistent_ai_disclosure: true, ..plain };
        let a = run(&set, &plain, &user, start, &steps);
        let b = run(&set, &declared, &user, start, &steps);
        let met: BTreeSet<(String, String)> = set
            .profiles()
            .flat_map(|p| p.obligations().iter().map(move |o| (p, o)))
            .filter(|(_, o)| !o.alternatives.is_empty())
            .map(|(p, o)| (p.id().to_owned(), o.id.clone()))
            .collect();
        for (x, y) in a.iter().zip(&b) {
            for d in &y.user.actions {
                for r in &d.reasons {
                    prop_assert!(
                        !met.contains(&(r.profile.clone(), r.obligation.clone())),
                        "{}/{} acted although the deployment declared a persistent disclosure",
                        r.profile,
                        r.obligation
                    );
                }
            }
            let others = |d: &Decision| -> Vec<String> {
                d.actions
                    .iter()
                    .filter(|a| !matches!(a.action, Action::Notice { .. }))
                    .map(|a| a.action.to_string())
                    .collect()
            };
            prop_assert_eq!(others(&x.user), others(&y.user));
        }
    }

    /// CT PA 26-15's start notice: never twice within 24 hours, and every period that starts
    /// 24 hours or more after the last one gets one.
    #[test]
    fn ct_start_notice_once_in_any_24_hours(user in user_state(), steps in steps(false)) {
        let set = registry().select(&["us-ct"]).unwrap();
        let options = EngineOptions::default();
        let start = Timestamp::parse("2027-03-01T00:00:00Z").unwrap();
        let turns = run(&set, &options, &user, start, &steps);
        let mut last_start: Option<Timestamp> = None;
        let mut prev: Option<Timestamp> = None;
        for t in &turns {
            let new_period = prev.is_none_or(|p| t.at.secs_since(p) >= 30 * 60);
            let is_start = t.user.actions.iter().any(|a| {
                matches!(a.action, Action::Notice { .. })
                    && a.reasons.iter().any(|r| r.obligation == "ai-disclosure")
            }) && new_period;
            let due = last_start.is_none_or(|l| t.at.secs_since(l) >= 86_400);
            if new_period {
                prop_assert_eq!(is_start, due, "start notice at {} (last {:?})", t.at, last_start);
            }
            if is_start {
                last_start = Some(t.at);
            }
            prev = Some(t.at);
        }
    }

    /// OR SB 1546's hard stop: from the crisis on, no user turn lets the model answer, and no
    /// suspended turn ends the session except for the user's own goodbye.
    #[test]
    fn a_suspended_conversation_never_reaches_the_model(
        mask in 0u32..=ALL,
        user in user_state(),
        steps in steps(true),
    ) {
        let mut names = pick_set(mask);
        names.push("us-or");
        let set = registry().select(&names).unwrap();
        let options = EngineOptions::default();
        let start = Timestamp::parse("2027-03-01T00:00:00Z").unwrap();
        let turns = run(&set, &options, &user, start, &steps);
        let mut suspended = false;
        for t in &turns {
            if suspended || t.user.has("suspend") {
                suspended = true;
                prop_assert!(t.user.has("suspend"), "suspension lost at {}", t.at);
                prop_assert_eq!(
                    t.user.replacement(),
                    Some((ReplyTemplate::CrisisSupport, true)),
                    "suspended turn at {} not answered with crisis support",
                    t.at
                );
                prop_assert!(t.assistant.is_none(), "the model answered while suspended");
                for a in &t.user.actions {
                    if let Action::EndSession { reason } = &a.action {
                        prop_assert_eq!(*reason, tutela_types::EndReason::Exit);
                    }
                }
            }
        }
    }

    /// NY §1702: at most one start-of-interaction notice per local day, and every period that
    /// starts on a day without one gets one.
    #[test]
    fn ny_start_notice_once_per_local_day(user in user_state(), steps in steps(false)) {
        let set = registry().select(&["us-ny"]).unwrap();
        let options = EngineOptions::default();
        let start = Timestamp::parse("2026-09-01T00:00:00Z").unwrap();
        let turns = run(&set, &options, &user, start, &steps);
        let ny = registry();
        let o = ny.get("us-ny-gbl-art47").unwrap().obligations().iter().find(|o| o.id == "not-human-notice").unwrap();
        let is_daily = matches!(o.rules[0], Rule::SessionStartNotice { once_per: OncePer::Day, .. });
        prop_assert!(is_daily, "NY start notice is once per day");
        let mut days_with_start = BTreeSet::new();
        let mut prev: Option<Timestamp> = None;
        for t in &turns {
            let day = t.at.local_date(user.utc_offset_minutes);
            let new_period = prev.is_none_or(|p| t.at.secs_since(p) >= 30 * 60);
            let ai = notice_contents(&t.user).contains(&NoticeContent::AiIdentity);
            if new_period && !days_with_start.contains(&day) {
                prop_assert!(ai, "no not-human notice at the start of an interaction on a new day at {}", t.at);
                days_with_start.insert(day);
            }
            prev = Some(t.at);
        }
    }

    /// Adding jurisdictions never relaxes a decision: what the smaller set blocks, replaces,
    /// escalates, notifies or counts, the larger set does too (a graver replacement may take
    /// the place of a lesser one), and the smaller set's clocks are still kept.
    #[test]
    fn adding_a_jurisdiction_never_relaxes(
        small in 1u32..=ALL,
        extra in 1u32..=ALL,
        user in user_state(),
        steps in steps(true),
        persistent in any::<bool>(),
        year in prop_oneof![Just("2026-09-01"), Just("2027-08-01")],
    ) {
        let reg = registry();
        let p = reg.select(&pick_set(small)).unwrap();
        let q = reg.select(&pick_set(small | extra)).unwrap();
        let options = EngineOptions { persistent_ai_disclosure: persistent, ..EngineOptions::default() };
        let start = Timestamp::parse(&format!("{year}T00:00:00Z")).unwrap();
        let tp = run(&p, &options, &user, start, &steps);
        let tq = run(&q, &options, &user, start, &steps);
        for (a, b) in tp.iter().zip(&tq) {
            no_relaxation(&a.user, &b.user)?;
            if let (Some(x), Some(y)) = (&a.assistant, &b.assistant) {
                no_relaxation(x, y)?;
            }
            // A reply the smaller set lets the model write may be replaced in the larger one;
            // never the other way round.
            prop_assert!(!(a.assistant.is_none() && b.assistant.is_some()), "the larger set let the model answer");
        }
        check_periodic(&p, false, &options, &user, 30 * 60, start, &tq)?;
    }
}

fn no_relaxation(small: &Decision, large: &Decision) -> Result<(), TestCaseError> {
    if let Some((t, res)) = small.replacement() {
        let Some((u, res2)) = large.replacement() else {
            return Err(TestCaseError::fail(format!(
                "`{t:?}` replacement lost when adding jurisdictions"
            )));
        };
        prop_assert!(
            gravity(u) <= gravity(t),
            "replacement relaxed from {t:?} to {u:?}"
        );
        prop_assert!(!(u == t && res && !res2), "resources dropped from {t:?}");
    }
    let large_at_risk = matches!(
        large.replacement(),
        Some((
            ReplyTemplate::CrisisSupport
                | ReplyTemplate::ThirdPartySupport
                | ReplyTemplate::ViolenceSupport
                | ReplyTemplate::EatingDisorderSupport
                | ReplyTemplate::PropertyLossHelp,
            _
        ))
    );
    for d in &small.actions {
        let ok = match &d.action {
            Action::ReplaceReply { .. } | Action::Notice { .. } => true,
            Action::Escalate { takeover, severity } => large.actions.iter().any(|x| {
                matches!(&x.action, Action::Escalate { takeover: t2, severity: s2 } if (*t2 || !*takeover) && s2 >= severity)
            }),
            Action::Label { explicit, implicit } => large.actions.iter().any(|x| {
                matches!(&x.action, Action::Label { explicit: e2, implicit: i2 } if (*e2 || !*explicit) && (*i2 || !*implicit))
            }),
            Action::EndSession { .. } | Action::Count { counter: tutela_types::Counter::ExitHonoured } if large_at_risk => true,
            other => large.actions.iter().any(|x| &x.action == other),
        };
        prop_assert!(
            ok,
            "`{}` decided by the smaller set is missing from the larger set's {:?}",
            d.action,
            large
                .actions
                .iter()
                .map(|a| a.action.to_string())
                .collect::<Vec<_>>()
        );
    }
    Ok(())
}
