//! The evaluation itself: clocks, findings, limits, then composition into one [`Decision`].

use std::collections::BTreeSet;

use tutela_profile::{Anchor, Covers, Obligation, OncePer, Profile, ProfileSet, Rule};
use tutela_types::{
    Action, AgeState, ClearedBy, ContactKind, Counter, Decided, Decision, DetectorId, Diagnostic,
    EndReason, Finding, NoticeContent, Reason, ReplyTemplate, SessionState, Severity, Side,
    Suspension, Timestamp, UserState,
};

use crate::{EngineOptions, EvalContext};

/// Decides one turn. See the crate docs for the composition rules.
pub fn evaluate(
    set: &ProfileSet,
    options: &EngineOptions,
    ctx: &EvalContext<'_>,
    findings: &[Finding],
) -> Decision {
    let mut session = ctx.session.clone();
    let mut out = Collector::default();
    let clock = match ctx.turn.side {
        Side::User => Some(advance_clocks(&mut session, options, ctx)),
        Side::Assistant => None,
    };
    let in_force: Vec<(&Profile, &Obligation)> = set
        .profiles()
        .flat_map(|p| p.obligations().iter().map(move |o| (p, o)))
        .filter(|(_, o)| o.effective.start() <= ctx.now && covers(o.covers, ctx.user))
        .collect();
    // Duties the deployment meets another way the law allows run no rules.
    let (met_otherwise, active): (Vec<_>, Vec<_>) = in_force
        .into_iter()
        .partition(|(_, o)| o.alternatives.iter().any(|a| options.declares(*a)));
    if clock.as_ref().is_some_and(|c| c.new_period) && !met_otherwise.is_empty() {
        out.diagnostics.push(Diagnostic {
            message:
                "met by the deployment's declared persistent ai disclosure; no notice clock runs"
                    .into(),
            reasons: met_otherwise.iter().map(|(p, o)| reason(p, o)).collect(),
        });
    }
    if ctx.turn.side == Side::User {
        suspension_at_turn(&mut session, &mut out);
    }

    // A goodbye that comes with a risk to someone is not an exit: the person is not let go.
    let exiting = ctx.turn.side == Side::User
        && findings
            .iter()
            .any(|f| f.side == Side::User && f.detector == DetectorId::Exit)
        && !findings.iter().any(|f| {
            f.side == Side::User
                && f.severity >= Severity::Medium
                && matches!(
                    f.detector,
                    DetectorId::Crisis
                        | DetectorId::ThirdParty
                        | DetectorId::PropertyLoss
                        | DetectorId::EatingDisorder
                        | DetectorId::ViolenceToOthers
                )
        });
    // While suspended, a plain goodbye is still honoured (CN Art 19: never obstruct an exit):
    // the person leaves with the crisis resources, and the suspension waits for their return.
    out.keep_exit = exiting
        && ctx
            .session
            .suspension
            .as_ref()
            .is_some_and(|s| s.cleared.is_none());
    let mut notices = Vec::new();
    let mut budget: Option<(u32, Vec<Reason>)> = None;
    let mut quiet = Vec::new();
    let mut exits = Vec::new();
    let mut hard_stops = Vec::new();
    for &(p, o) in &active {
        for (index, rule) in o.rules.iter().enumerate() {
            let key = || clock_key(p, o, index);
            let reason = || reason(p, o);
            match (rule, ctx.turn.side, clock.as_ref()) {
                (
                    Rule::SessionStartNotice {
                        contents,
                        once_per,
                        after_absence_days,
                    },
                    Side::User,
                    Some(c),
                ) if c.new_period => {
                    let due = match (once_per, after_absence_days) {
                        (_, Some(days)) => c.previous_activity.is_none_or(|prev| {
                            ctx.now.secs_since(prev) >= i64::from(*days) * 86_400
                        }),
                        (OncePer::Session, None) => true,
                        (OncePer::Ever, None) => c.first_use,
                        (OncePer::Hours24, None) => session
                            .last_fired
                            .get(&key())
                            .is_none_or(|t| ctx.now.secs_since(*t) >= 86_400),
                        (OncePer::Day, None) => session.last_fired.get(&key()).is_none_or(|t| {
                            t.local_date(ctx.user.utc_offset_minutes)
                                != ctx.now.local_date(ctx.user.utc_offset_minutes)
                        }),
                    };
                    if due {
                        notices.push(Fired::new(key(), contents, reason()));
                    }
                }
                (
                    Rule::PeriodicNotice {
                        contents,
                        interval_minutes,
                        anchor,
                    },
                    Side::User,
                    Some(c),
                ) if ctx.now
                    >= periodic_due(&session, &key(), c.since, *interval_minutes, *anchor) =>
                {
                    notices.push(Fired::new(key(), contents, reason()));
                }
                (
                    Rule::FindingNotice {
                        on,
                        contents,
                        min_severity,
                        min_gap_minutes,
                    },
                    side,
                    _,
                ) => {
                    let hit = findings.iter().any(|f| {
                        f.side == side && f.severity >= *min_severity && on.contains(&f.detector)
                    });
                    let rested = || {
                        session.last_fired.get(&key()).is_none_or(|t| {
                            ctx.now.secs_since(*t) >= i64::from(*min_gap_minutes) * 60
                        })
                    };
                    if side == Side::User && hit && rested() {
                        notices.push(Fired::new(key(), contents, reason()));
                    }
                }
                (
                    Rule::OnFinding {
                        on,
                        min_severity,
                        exit_requested,
                        age_states,
                        actions,
                    },
                    side,
                    _,
                ) => {
                    let hit = findings.iter().any(|f| {
                        f.side == side && f.severity >= *min_severity && on.contains(&f.detector)
                    });
                    let exit_ok = exit_requested.is_none_or(|e| e == ctx.session.exit_requested);
                    let age_ok = age_states
                        .as_ref()
                        .is_none_or(|states| states.contains(&ctx.user.age_state));
                    if hit && exit_ok && age_ok {
                        for a in actions {
                            out.push(a.clone(), reason());
                        }
                    }
                }
                (
                    Rule::DailyBudget {
                        bands,
                        unknown_age_minutes,
                    },
                    Side::User,
                    Some(_),
                ) => {
                    let limit = ctx.user.minors.daily_minutes.unwrap_or_else(|| {
                        ctx.user
                            .age
                            .and_then(|age| bands.iter().find(|b| age <= b.max_age))
                            .map_or(*unknown_age_minutes, |b| b.minutes)
                    });
                    budget = match budget.take() {
                        Some((m, mut rs)) if m == limit => {
                            rs.push(reason());
                            Some((m, rs))
                        }
                        Some((m, rs)) if m < limit => Some((m, rs)),
                        _ => Some((limit, vec![reason()])),
                    };
                }
                (Rule::QuietHours(window), Side::User, Some(_)) => {
                    let window = ctx.user.minors.quiet_hours.unwrap_or(*window);
                    if window.contains(ctx.now.local_minute_of_day(ctx.user.utc_offset_minutes)) {
                        quiet.push(reason());
                    }
                }
                (Rule::PersonaGate { deny }, Side::User, _) if deny.contains(&ctx.turn.persona) => {
                    out.push(
                        Action::ReplaceReply {
                            template: ReplyTemplate::PersonaUnavailable,
                            resources: false,
                        },
                        reason(),
                    );
                }
                (Rule::Exit { on }, Side::User, _)
                    if exiting
                        && findings
                            .iter()
                            .any(|f| f.side == Side::User && on.contains(&f.detector)) =>
                {
                    exits.push(reason());
                }
                (Rule::HardStop { on, min_severity }, Side::User, _)
                    if findings.iter().any(|f| {
                        f.side == Side::User
                            && f.severity >= *min_severity
                            && on.contains(&f.detector)
                    }) =>
                {
                    hard_stops.push(reason());
                }
                (
                    Rule::AgeAssuranceGate {
                        on,
                        min_assurance,
                        actions,
                    },
                    side,
                    _,
                ) => {
                    let hit = findings.iter().any(|f| {
                        f.side == side && f.severity >= Severity::Low && on.contains(&f.detector)
                    });
                    let adult = matches!(
                        ctx.user.age_state,
                        AgeState::SelfDeclaredAdult | AgeState::VerifiedAdult
                    );
                    let open = adult && ctx.user.age_assurance >= *min_assurance;
                    if hit && !open {
                        for a in actions {
                            out.push(a.clone(), reason());
                        }
                    }
                }
                (Rule::Label { explicit, implicit }, Side::Assistant, _) => {
                    out.push(
                        Action::Label {
                            explicit: *explicit,
                            implicit: *implicit,
                        },
                        reason(),
                    );
                }
                _ => {}
            }
        }
    }

    if let Some(c) = &clock {
        if let Some((limit, reasons)) = &budget
            && session.used_today_secs >= limit.saturating_mul(60)
        {
            {
                for r in reasons {
                    out.push(
                        Action::ReplaceReply {
                            template: ReplyTemplate::BudgetExhausted,
                            resources: false,
                        },
                        r.clone(),
                    );
                    out.push(
                        Action::EndSession {
                            reason: EndReason::Budget,
                        },
                        r.clone(),
                    );
                }
            }
        }
        for r in quiet {
            out.push(
                Action::ReplaceReply {
                    template: ReplyTemplate::QuietHours,
                    resources: false,
                },
                r.clone(),
            );
            out.push(
                Action::EndSession {
                    reason: EndReason::QuietHours,
                },
                r,
            );
        }
        for r in exits {
            out.push(
                Action::EndSession {
                    reason: EndReason::Exit,
                },
                r.clone(),
            );
            out.push(
                Action::Count {
                    counter: Counter::ExitHonoured,
                },
                r,
            );
        }
        deliver_notices(&mut out, &mut session, &active, notices, c, ctx.now);
    }
    if !hard_stops.is_empty() {
        suspend(&mut session, &mut out, hard_stops, ctx.now);
    }

    let mut decision = out.finish(ctx.user);
    // "The user asked to leave" is a fact, recorded whatever the profiles require of it, so that
    // reply rules conditioned on it work in every composition.
    if exiting {
        session.exit_requested = true;
    }
    decision.next_due = clock.as_ref().and_then(|c| {
        next_due(
            &session,
            &active,
            c.since,
            budget.as_ref().map(|(m, _)| *m),
            ctx.now,
        )
    });
    decision.diagnostics.push(Diagnostic {
        message: format!(
            "continuous use resets after {} idle minutes",
            options.idle_reset_minutes
        ),
        reasons: Vec::new(),
    });
    decision.session = session;
    decision
}

/// A suspended conversation at a user turn: still suspended, the person gets crisis support
/// and the model is not asked; cleared (by a human or the follow-up step), the follow-up is
/// recorded and the state lifted.
fn suspension_at_turn(session: &mut SessionState, out: &mut Collector) {
    let Some(s) = session.suspension.take() else {
        return;
    };
    match s.cleared {
        Some(c) => {
            for r in &s.by {
                out.push(
                    Action::Count {
                        counter: Counter::CrisisFollowUp,
                    },
                    r.clone(),
                );
            }
            let by = match c.by {
                ClearedBy::Human => "a person from the team",
                ClearedBy::FollowUp => "the follow-up step",
            };
            out.diagnostics.push(Diagnostic {
                message: format!(
                    "suspension of {} cleared by {by} at {}; follow-up recorded",
                    s.since, c.at
                ),
                reasons: s.by.clone(),
            });
        }
        None => {
            for r in &s.by {
                push_suspended(out, r);
            }
            out.diagnostics.push(Diagnostic {
                message: format!(
                    "conversation suspended since {} until a person or the follow-up step clears it",
                    s.since
                ),
                reasons: s.by.clone(),
            });
            session.suspension = Some(s);
        }
    }
}

/// The actions of a suspended conversation for one reason: the AI stays suspended and the
/// reply is the crisis support template with resources.
fn push_suspended(out: &mut Collector, r: &Reason) {
    out.push(Action::Suspend, r.clone());
    out.push(
        Action::ReplaceReply {
            template: ReplyTemplate::CrisisSupport,
            resources: true,
        },
        r.clone(),
    );
}

/// A hard stop fired: suspend (or keep suspended, adding the new reasons).
fn suspend(session: &mut SessionState, out: &mut Collector, reasons: Vec<Reason>, now: Timestamp) {
    let s = session.suspension.get_or_insert_with(|| Suspension {
        since: now,
        by: Vec::new(),
        cleared: None,
    });
    for r in reasons {
        push_suspended(out, &r);
        if !s.by.contains(&r) {
            s.by.push(r);
        }
    }
}

/// What advancing the clocks at a user turn found.
struct ClockInfo {
    /// This turn opens a new period of continuous use.
    new_period: bool,
    /// This is the user's first turn ever.
    first_use: bool,
    /// The previous user turn, if any.
    previous_activity: Option<Timestamp>,
    /// Start of the current period.
    since: Timestamp,
}

/// Advances continuous use and the daily usage counter to `ctx.now`.
fn advance_clocks(
    s: &mut SessionState,
    options: &EngineOptions,
    ctx: &EvalContext<'_>,
) -> ClockInfo {
    let now = ctx.now;
    let idle = i64::from(options.idle_reset_minutes) * 60;
    let previous_activity = s.last_activity;
    let continuing = match (s.continuous_since, previous_activity) {
        (Some(_), Some(prev)) => now >= prev && now.secs_since(prev) < idle && !s.exit_requested,
        _ => false,
    };
    let since = match (continuing, s.continuous_since) {
        (true, Some(since)) => since,
        _ => now,
    };
    s.continuous_since = Some(since);
    s.exit_requested = false;
    let today = now.local_date(ctx.user.utc_offset_minutes);
    if s.usage_day != Some(today) {
        s.usage_day = Some(today);
        s.used_today_secs = 0;
    }
    if let (true, Some(prev)) = (continuing, previous_activity) {
        let delta = u32::try_from(now.secs_since(prev)).unwrap_or(u32::MAX);
        s.used_today_secs = s.used_today_secs.saturating_add(delta);
    }
    s.last_activity = Some(now.max(previous_activity.unwrap_or(now)));
    let first_use = s.first_use.is_none();
    if first_use {
        s.first_use = Some(now);
    }
    ClockInfo {
        new_period: !continuing,
        first_use,
        previous_activity,
        since,
    }
}

/// When a periodic clock falls due next.
fn periodic_due(
    s: &SessionState,
    key: &str,
    since: Timestamp,
    interval_minutes: u32,
    anchor: Anchor,
) -> Timestamp {
    let interval = i64::from(interval_minutes) * 60;
    let last = s.last_fired.get(key).copied().filter(|t| *t >= since);
    match anchor {
        Anchor::LastNotice => last.unwrap_or(since).plus_secs(interval),
        Anchor::Grid => {
            let k = last.map_or(0, |l| l.secs_since(since) / interval);
            since.plus_secs((k + 1) * interval)
        }
    }
}

/// A notice rule that fired this turn.
struct Fired {
    key: String,
    contents: Vec<NoticeContent>,
    reason: Reason,
}

impl Fired {
    fn new(key: String, contents: &[NoticeContent], reason: Reason) -> Self {
        Self {
            key,
            contents: contents.to_vec(),
            reason,
        }
    }
}

/// Combines the fired notices into one and discharges every periodic clock it satisfies.
fn deliver_notices(
    out: &mut Collector,
    s: &mut SessionState,
    active: &[(&Profile, &Obligation)],
    fired: Vec<Fired>,
    clock: &ClockInfo,
    now: Timestamp,
) {
    if fired.is_empty() {
        return;
    }
    let contents: BTreeSet<NoticeContent> = fired
        .iter()
        .flat_map(|f| f.contents.iter().copied())
        .collect();
    let minutes = u32::try_from(now.secs_since(clock.since) / 60).unwrap_or(u32::MAX);
    let action = Action::Notice {
        contents: contents.iter().copied().collect(),
        continuous_minutes: minutes,
    };
    for f in fired {
        s.last_fired.insert(f.key, now);
        out.push(action.clone(), f.reason);
    }
    for &(p, o) in active {
        for (index, rule) in o.rules.iter().enumerate() {
            if let Rule::PeriodicNotice { contents: c, .. } = rule
                && c.iter().all(|x| contents.contains(x))
            {
                s.last_fired.insert(clock_key(p, o, index), now);
            }
        }
    }
}

/// The earliest instant a periodic clock or the daily budget falls due.
fn next_due(
    s: &SessionState,
    active: &[(&Profile, &Obligation)],
    since: Timestamp,
    budget_minutes: Option<u32>,
    now: Timestamp,
) -> Option<Timestamp> {
    let clocks = active.iter().flat_map(|&(p, o)| {
        o.rules
            .iter()
            .enumerate()
            .filter_map(move |(index, rule)| match rule {
                Rule::PeriodicNotice {
                    interval_minutes,
                    anchor,
                    ..
                } => Some(periodic_due(
                    s,
                    &clock_key(p, o, index),
                    since,
                    *interval_minutes,
                    *anchor,
                )),
                _ => None,
            })
    });
    let budget = budget_minutes.and_then(|m| {
        let left = i64::from(m) * 60 - i64::from(s.used_today_secs);
        (left > 0).then(|| now.plus_secs(left))
    });
    clocks.chain(budget).min()
}

fn clock_key(p: &Profile, o: &Obligation, rule_index: usize) -> String {
    format!("{}/{}#{rule_index}", p.id(), o.id)
}

fn reason(p: &Profile, o: &Obligation) -> Reason {
    Reason {
        profile: p.id().to_owned(),
        obligation: o.id.clone(),
        article: o.article.clone(),
    }
}

fn covers(c: Covers, u: &UserState) -> bool {
    match c {
        Covers::All => true,
        Covers::KnownMinors => u.age_state == tutela_types::AgeState::KnownMinor,
        Covers::Minors => u.age_state.is_minor_or_suspected(),
        Covers::Elderly => u.elderly,
    }
}

/// Gravity of replacement replies: the first in this list wins.
const REPLY_PRIORITY: [ReplyTemplate; 13] = [
    ReplyTemplate::CrisisSupport,
    ReplyTemplate::ThirdPartySupport,
    ReplyTemplate::ViolenceSupport,
    ReplyTemplate::EatingDisorderSupport,
    ReplyTemplate::PropertyLossHelp,
    ReplyTemplate::HumanHolding,
    ReplyTemplate::QuietHours,
    ReplyTemplate::BudgetExhausted,
    ReplyTemplate::PersonaUnavailable,
    ReplyTemplate::HonestAi,
    ReplyTemplate::SafeReply,
    ReplyTemplate::Goodbye,
    ReplyTemplate::Comfort,
];

/// Gravity of a replacement reply: lower is graver; of several candidate replies the gravest
/// is sent.
pub fn gravity(t: ReplyTemplate) -> usize {
    REPLY_PRIORITY
        .iter()
        .position(|x| *x == t)
        .unwrap_or(REPLY_PRIORITY.len())
}

/// Order of action kinds in a decision.
fn rank(a: &Action) -> u8 {
    match a {
        Action::ReplaceReply { .. } => 0,
        Action::BlockOutput => 1,
        Action::Notice { .. } => 2,
        Action::Escalate { .. } => 3,
        Action::NotifyContact { .. } => 4,
        Action::SwitchMinorsMode => 5,
        Action::Suspend => 5,
        Action::EndSession { .. } => 6,
        Action::Count { .. } => 7,
        Action::Label { .. } => 8,
    }
}

/// Collects candidate actions with their reasons and composes them.
#[derive(Default)]
struct Collector {
    items: Vec<(Action, Reason)>,
    diagnostics: Vec<Diagnostic>,
    /// An exit by a user whose conversation is suspended: kept although the reply is crisis
    /// support.
    keep_exit: bool,
}

impl Collector {
    fn push(&mut self, action: Action, reason: Reason) {
        self.items.push((action, reason));
    }

    fn finish(mut self, user: &UserState) -> Decision {
        // The gravest replacement wins.
        let winner = self
            .items
            .iter()
            .filter_map(|(a, _)| match a {
                Action::ReplaceReply { template, .. } => Some(*template),
                _ => None,
            })
            .min_by_key(|t| gravity(*t));
        if let Some(w) = winner {
            let at_risk = matches!(
                w,
                ReplyTemplate::CrisisSupport
                    | ReplyTemplate::ThirdPartySupport
                    | ReplyTemplate::ViolenceSupport
                    | ReplyTemplate::EatingDisorderSupport
                    | ReplyTemplate::PropertyLossHelp
            );
            let mut dropped = Vec::new();
            self.items.retain(|(a, r)| {
                let keep = match a {
                    Action::ReplaceReply { template, .. } => *template == w,
                    Action::EndSession {
                        reason: EndReason::Exit,
                    }
                    | Action::Count {
                        counter: Counter::ExitHonoured,
                    } => !at_risk || self.keep_exit,
                    Action::EndSession { .. } => !at_risk,
                    _ => true,
                };
                if !keep {
                    dropped.push(r.clone());
                }
                keep
            });
            if !dropped.is_empty() {
                dropped.sort();
                dropped.dedup();
                self.diagnostics.push(Diagnostic {
                    message: format!("superseded by the `{}` reply", w.as_str()),
                    reasons: dropped,
                });
            }
        }

        // Contacts: notify only those on file; say so when none is.
        let mut missing = Vec::new();
        self.items.retain(|(a, r)| match a {
            Action::NotifyContact { contact } => {
                let on_file = match contact {
                    ContactKind::Guardian => user.contacts.guardian,
                    ContactKind::EmergencyContact => user.contacts.emergency,
                };
                if !on_file {
                    missing.push(r.clone());
                }
                on_file
            }
            _ => true,
        });
        let notified = self
            .items
            .iter()
            .any(|(a, _)| matches!(a, Action::NotifyContact { .. }));
        if !missing.is_empty() && !notified {
            missing.sort();
            missing.dedup();
            self.diagnostics.push(Diagnostic {
                message: "no guardian or emergency contact on file to notify".into(),
                reasons: missing,
            });
        }

        // Merge equal actions (and all escalations, labels, replacements) into one each.
        let mut merged: Vec<Decided> = Vec::new();
        for (action, reason) in self.items {
            let slot = merged.iter_mut().find(|d| same_slot(&d.action, &action));
            match slot {
                Some(d) => {
                    d.action = combine(&d.action, &action);
                    if !d.reasons.contains(&reason) {
                        d.reasons.push(reason);
                    }
                }
                None => merged.push(Decided {
                    action,
                    reasons: vec![reason],
                }),
            }
        }
        for d in &mut merged {
            d.reasons.sort();
        }
        // Stable: within a kind, the order of profiles (by id) and obligations (file order).
        merged.sort_by_key(|d| rank(&d.action));
        Decision {
            actions: merged,
            session: SessionState::default(),
            next_due: None,
            diagnostics: self.diagnostics,
        }
    }
}

fn same_slot(a: &Action, b: &Action) -> bool {
    match (a, b) {
        (Action::Notice { .. }, Action::Notice { .. })
        | (Action::Escalate { .. }, Action::Escalate { .. })
        | (Action::Label { .. }, Action::Label { .. })
        | (Action::ReplaceReply { .. }, Action::ReplaceReply { .. }) => true,
        _ => a == b,
    }
}

fn combine(a: &Action, b: &Action) -> Action {
    match (a, b) {
        (
            Action::Escalate {
                takeover: t1,
                severity: s1,
            },
            Action::Escalate {
                takeover: t2,
                severity: s2,
            },
        ) => Action::Escalate {
            takeover: *t1 || *t2,
            severity: (*s1).max(*s2),
        },
        (
            Action::Label {
                explicit: e1,
                implicit: i1,
            },
            Action::Label {
                explicit: e2,
                implicit: i2,
            },
        ) => Action::Label {
            explicit: *e1 || *e2,
            implicit: *i1 || *i2,
        },
        (
            Action::ReplaceReply {
                template,
                resources: r1,
            },
            Action::ReplaceReply { resources: r2, .. },
        ) => Action::ReplaceReply {
            template: *template,
            resources: *r1 || *r2,
        },
        _ => a.clone(),
    }
}
