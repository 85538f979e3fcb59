//! Compiling reports from the records: every figure comes from the store, through its traits.
//!
//! This module reads the records and writes only the obligation records a threshold crossing
//! calls for ([`check_thresholds`], idempotent); it never reads the clock (`generated_at` is
//! an option) and never touches a user identifier beyond counting.

use std::collections::BTreeMap;

use tutela_profile::ProfileSet;
use tutela_store::{Backend, NewObligation, ObligationKind, Registration, StoreError};
use tutela_types::{Counter, LocalDate, Timestamp};

use crate::model::{
    Appeals, AssessmentItem, AssessmentReport, Bucket, DayUsage, Figure, InterventionRow,
    ItemSource, Meta, MonthActive, OverBlocking, ReferralReport, ReportKind, Sb243Report,
    ThresholdState, ThresholdStatus, TransparencyReport, UsageReport,
};
use crate::render::thousands;
use crate::threshold::evaluate_thresholds;
use crate::tiers;

/// Errors while compiling a report.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The store failed.
    #[error("reading the records failed")]
    Store(#[from] StoreError),
    /// The period is empty or reversed.
    #[error("the period `{from}` – `{to}` is empty")]
    Period {
        /// First day.
        from: String,
        /// Last day.
        to: String,
    },
    /// A jurisdiction without a public referral page.
    #[error("no public referral page for `{jurisdiction}`; one of {known}")]
    NoReferralPage {
        /// What was asked for.
        jurisdiction: String,
        /// The jurisdictions that have one.
        known: String,
    },
}

/// A period of whole local days, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    /// First day.
    pub from: LocalDate,
    /// Last day (inclusive).
    pub to: LocalDate,
}

impl Period {
    /// The calendar year `year`.
    pub fn year(year: i32) -> Self {
        let (from, to) = tutela_store::year_days(year);
        Self { from, to }
    }

    /// The calendar month `yyyymm`.
    pub fn month(yyyymm: u32) -> Self {
        let (y, m) = (yyyymm / 100, yyyymm % 100);
        let first = date_of(y as i32, m as u8, 1);
        let next = if m == 12 {
            date_of(y as i32 + 1, 1, 1)
        } else {
            date_of(y as i32, m as u8 + 1, 1)
        };
        Self {
            from: first,
            to: LocalDate(next.0 - 1),
        }
    }
}

/// What every compilation needs besides the store and the profiles.
#[derive(Clone, Debug)]
pub struct Options {
    /// The report time zone as a fixed UTC offset (minutes east).
    pub utc_offset_minutes: i32,
    /// The deployment's name, printed on the report.
    pub deployment: String,
    /// What counts as registered.
    pub registration: tutela_store::Registration,
    /// The published complaint handling time limit, in hours.
    pub complaint_time_limit_hours: u64,
    /// The generation instant (the caller reads the clock).
    pub generated_at: Timestamp,
}

/// `YYYY-MM-DD` of a local day.
pub fn day_string(d: LocalDate) -> String {
    let (y, m, day) = civil(d);
    format!("{y:04}-{m:02}-{day:02}")
}

/// Parses `YYYY-MM` into `yyyymm`.
pub fn parse_month(s: &str) -> Option<u32> {
    let (y, m) = s.split_once('-')?;
    let (y, m): (u32, u32) = (y.parse().ok()?, m.parse().ok()?);
    ((1..=12).contains(&m) && (1970..=9999).contains(&y)).then_some(y * 100 + m)
}

/// Parses `YYYY-MM-DD` into a local day.
pub fn parse_day(s: &str) -> Option<LocalDate> {
    let d = tutela_profile::Date::parse(s)?;
    Some(LocalDate((d.start().unix() / 86_400) as i32))
}

fn date_of(y: i32, m: u8, d: u8) -> LocalDate {
    parse_day(&format!("{y:04}-{m:02}-{d:02}")).unwrap_or(LocalDate(0))
}

fn civil(d: LocalDate) -> (i32, u32, u32) {
    // Howard Hinnant's civil_from_days.
    let z = i64::from(d.0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((y + i64::from(m <= 2)) as i32, m, day)
}

fn offset_string(minutes: i32) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.unsigned_abs();
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

/// The first instant of a local day in the report time zone.
fn start_of(d: LocalDate, offset: i32) -> Timestamp {
    Timestamp::from_unix(i64::from(d.0) * 86_400 - i64::from(offset) * 60)
}

fn months(p: Period) -> Vec<u32> {
    let (fy, fm, _) = civil(p.from);
    let (ty, tm, _) = civil(p.to);
    let mut out = Vec::new();
    let (mut y, mut m) = (fy, fm);
    while (y, m) <= (ty, tm) {
        out.push(y as u32 * 100 + m);
        if m == 12 {
            y += 1;
            m = 1;
        } else {
            m += 1;
        }
    }
    out
}

/// Test traffic in the period: turns marked with the deployment's test key, counted only so
/// that every report can say how many it left out (they never reach another figure).
async fn test_turns(store: &dyn Backend, p: Period) -> Result<u64, CompileError> {
    let name = serde_json::to_value(Counter::TestTurn)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    Ok(store
        .counter_totals(p.from, p.to)
        .await?
        .iter()
        .filter(|c| c.name == name)
        .map(|c| c.value)
        .sum())
}

async fn meta(
    store: &dyn Backend,
    kind: ReportKind,
    title: &str,
    set: &ProfileSet,
    p: Period,
    o: &Options,
) -> Result<Meta, CompileError> {
    Ok(Meta {
        kind,
        title: title.to_owned(),
        generated_at: o.generated_at.to_string(),
        from: day_string(p.from),
        to: day_string(p.to),
        time_zone: offset_string(o.utc_offset_minutes),
        deployment: o.deployment.clone(),
        profiles: set.ids().into_iter().map(str::to_owned).collect(),
        profile_snapshot: set.snapshot_hash().to_owned(),
        test_turns_excluded: test_turns(store, p).await?,
    })
}

fn check(p: Period) -> Result<(), CompileError> {
    if p.to < p.from {
        return Err(CompileError::Period {
            from: day_string(p.from),
            to: day_string(p.to),
        });
    }
    Ok(())
}

/// Session-duration buckets (upper bounds in minutes; the last is open).
const DURATION_BUCKETS: [(i64, &str); 7] = [
    (5, "≤ 5 min"),
    (15, "≤ 15 min"),
    (30, "≤ 30 min"),
    (60, "≤ 1 h"),
    (120, "≤ 2 h"),
    (240, "≤ 4 h"),
    (i64::MAX, "> 4 h"),
];

/// The usage report.
pub async fn usage(
    store: &dyn Backend,
    set: &ProfileSet,
    p: Period,
    o: &Options,
) -> Result<UsageReport, CompileError> {
    check(p)?;
    let tz = o.utc_offset_minutes;
    let end = start_of(LocalDate(p.to.0 + 1), tz);
    let (registered, per) = store.registered_count(o.registration, end).await?;
    let mut monthly_active = Vec::new();
    for month in months(p) {
        let m = store.monthly_active(month).await?;
        monthly_active.push(MonthActive {
            month: format!("{:04}-{:02}", month / 100, month % 100),
            total: m.total,
            by_jurisdiction: m.by_jurisdiction.into_iter().collect(),
        });
    }
    let daily_usage = store
        .daily_totals(p.from, p.to)
        .await?
        .into_iter()
        .map(|(d, secs, users)| DayUsage {
            day: day_string(d),
            minutes: secs / 60,
            seconds: secs,
            users,
        })
        .collect();
    let mut durations = store.session_durations(start_of(p.from, tz), end).await?;
    durations.sort_unstable();
    let median = tutela_store::median_sorted(&durations).map_or(0.0, |s| s / 60.0);
    let mut buckets: Vec<Bucket> = DURATION_BUCKETS
        .iter()
        .map(|(_, l)| Bucket {
            label: (*l).to_owned(),
            count: 0,
        })
        .collect();
    for secs in durations {
        let i = DURATION_BUCKETS
            .iter()
            .position(|(max, _)| secs <= max.saturating_mul(60))
            .unwrap_or(DURATION_BUCKETS.len() - 1);
        if let Some(b) = buckets.get_mut(i) {
            b.count += 1;
        }
    }
    let last_mau = monthly_active.last().map_or(0, |m| m.total);
    Ok(UsageReport {
        meta: meta(store, ReportKind::Usage, "Usage report", set, p, o).await?,
        registered_users: registered,
        registered_by_jurisdiction: per.into_iter().collect(),
        thresholds: evaluate_thresholds(set, registered, last_mau),
        monthly_active,
        daily_usage,
        age_structure: store.age_structure().await?.into_iter().collect(),
        session_durations: buckets,
        session_median_minutes: median,
    })
}

/// Whether a counter's jurisdiction label (`us-ca`, or a composed `us-ca,us-ny`) includes `j`.
fn label_has(label: &str, j: &str) -> bool {
    label.split(',').any(|x| x.trim() == j)
}

/// The California SB 243 annual report for `year` (referrals to users in California).
pub async fn sb243(
    store: &dyn Backend,
    set: &ProfileSet,
    year: i32,
    o: &Options,
) -> Result<Sb243Report, CompileError> {
    let p = Period::year(year);
    let totals = store.counter_totals(p.from, p.to).await?;
    let referrals = totals
        .iter()
        .filter(|c| c.name == "crisis_referral" && label_has(&c.jurisdiction, "us-ca"))
        .map(|c| c.value)
        .sum();
    let mut m = meta(
        store,
        ReportKind::Sb243,
        &format!("SB 243 annual report to the Office of Suicide Prevention — {year}"),
        set,
        p,
        o,
    )
    .await?;
    // California's report names California's profile, not every law the deployment follows.
    m.profiles.retain(|id| id.starts_with("us-ca"));
    Ok(Sb243Report {
        meta: m,
        calendar_year: year,
        referral_notifications: referrals,
        detection_protocol: "Every message a user sends is checked, before the companion model sees it, by tutela's crisis detector: bilingual (English and Chinese) patterns over normalised text that recognise explicit and passive suicidal ideation, plans, farewells, giving possessions away and self-harm, with handling of negation, hypotheticals, fiction, quotation and idioms. On a detection the model does not answer: the user receives a supportive reply that refers them to crisis service providers (988 Suicide & Crisis Lifeline by call or text, and the Crisis Text Line at 741741; 911 in immediate danger), a case opens for a trained person who can take over the conversation, and the referral is counted for this report without any personal information.".into(),
        prohibition_protocol: "Every reply of the companion model is checked before the user sees it; streamed replies pass through a hold-back window, so no unchecked text is released. A reply that validates, encourages or romanticises suicide, self-harm or self-starvation is withheld and replaced with a supportive reply that carries the crisis resources. While a person is in a crisis case, the model does not answer them; the staff member does.".into(),
        measurement_method: "The crisis detector is measured on labelled English and Chinese conversation sets (precision, recall and F1 per label and per language, and the false-positive rate on hard negatives such as idioms and game talk) with `tutela eval`; the results and the labelled set's description are attached to the published protocol.".into(),
    })
}

/// The states with a yearly public page of crisis-referral counts: alias, duty, hard stop.
pub const REFERRAL_PAGES: [(&str, &str, bool); 2] = [
    (
        "us-wa",
        "Washington HB 2225 (c): yearly public posting of the number of crisis-referral notifications",
        false,
    ),
    (
        "us-or",
        "Oregon SB 1546 (d): yearly public report of crisis-referral counts on a publicly accessible website",
        true,
    ),
];

/// A state's yearly public page of crisis-referral counts for `year` (`jurisdiction`: one of
/// [`REFERRAL_PAGES`]): referrals to users there, and for OR the completed follow-ups.
pub async fn referrals(
    store: &dyn Backend,
    set: &ProfileSet,
    jurisdiction: &str,
    year: i32,
    o: &Options,
) -> Result<ReferralReport, CompileError> {
    let Some((_, duty, hard_stop)) = REFERRAL_PAGES.iter().find(|(j, _, _)| *j == jurisdiction)
    else {
        let known: Vec<&str> = REFERRAL_PAGES.iter().map(|(j, _, _)| *j).collect();
        return Err(CompileError::NoReferralPage {
            jurisdiction: jurisdiction.to_owned(),
            known: known.join(", "),
        });
    };
    let p = Period::year(year);
    let totals = store.counter_totals(p.from, p.to).await?;
    let count = |name: &str| -> u64 {
        totals
            .iter()
            .filter(|c| c.name == name && label_has(&c.jurisdiction, jurisdiction))
            .map(|c| c.value)
            .sum()
    };
    let mut m = meta(
        store,
        ReportKind::Referrals,
        &format!("Crisis referrals in {year} ({jurisdiction})"),
        set,
        p,
        o,
    )
    .await?;
    // A state's page names that state's profile only.
    m.profiles
        .retain(|id| id.starts_with(&format!("{jurisdiction}-")));
    Ok(ReferralReport {
        meta: m,
        jurisdiction: jurisdiction.to_owned(),
        duty: (*duty).to_owned(),
        calendar_year: year,
        referral_notifications: count("crisis_referral"),
        follow_ups: hard_stop.then(|| count("crisis_follow_up")),
        protocol: if *hard_stop {
            "Every message a user sends is checked, before the companion model sees it, by tutela's crisis detector. On a detection the conversation with the AI is interrupted: the model does not answer, the user receives a supportive reply that refers them to the 988 Suicide & Crisis Lifeline (call or text) and the Crisis Text Line (741741), and every further message gets the same support until a trained person or a follow-up step informed by clinical best practice clears it. The person is never turned away. Each referral and each completed follow-up is counted without personal information.".into()
        } else {
            "Every message a user sends is checked, before the companion model sees it, by tutela's crisis detector. On a detection the model does not answer: the user receives a supportive reply that refers them to the 988 Suicide & Crisis Lifeline (call or text) and the Crisis Text Line (741741), and a case opens for a trained person. Each referral is counted without personal information.".into()
        },
    })
}

/// The transparency report.
pub async fn transparency(
    store: &dyn Backend,
    set: &ProfileSet,
    p: Period,
    o: &Options,
    over_blocking: Vec<OverBlocking>,
) -> Result<TransparencyReport, CompileError> {
    check(p)?;
    let tz = o.utc_offset_minutes;
    let mut interventions = Vec::new();
    for month in months(p) {
        let mp = Period::month(month);
        let from = start_of(mp.from.max(p.from), tz);
        let to = start_of(LocalDate(mp.to.min(p.to).0 + 1), tz);
        for c in store.intervention_counts(from, to).await? {
            interventions.push(InterventionRow {
                month: format!("{:04}-{:02}", month / 100, month % 100),
                jurisdiction: c.jurisdiction,
                rule: format!("{}/{}", c.profile, c.obligation),
                kind: c.kind,
                count: c.count,
            });
        }
    }
    let from = start_of(p.from, tz);
    let to = start_of(LocalDate(p.to.0 + 1), tz);
    let mut appeals = Appeals {
        time_limit_hours: o.complaint_time_limit_hours,
        ..Appeals::default()
    };
    for c in store.complaint_counts(from, to, o.generated_at).await? {
        if c.category != "appeal" {
            continue;
        }
        appeals.received += c.count;
        match tiers::outcome(c.outcome.as_deref()) {
            tiers::Outcome::Open => appeals.open += c.count,
            tiers::Outcome::Upheld => appeals.upheld += c.count,
            tiers::Outcome::Rejected => appeals.rejected += c.count,
        }
        appeals.within_time_limit += c.count - c.overdue.min(c.count);
    }
    let tiers = tiers::figures(
        &store.finding_tiers(from, to).await?,
        &store.intervention_tiers(from, to).await?,
        &store.appeal_tiers(from, to).await?,
    );
    Ok(TransparencyReport {
        meta: meta(
            store,
            ReportKind::Transparency,
            "Transparency report",
            set,
            p,
            o,
        )
        .await?,
        totals_by_kind: store
            .intervention_kinds(from, to)
            .await?
            .into_iter()
            .collect(),
        interventions,
        appeals,
        over_blocking,
        tiers,
    })
}

/// The CN security assessment (Art. 23 items compiled from the store).
pub async fn assessment(
    store: &dyn Backend,
    set: &ProfileSet,
    p: Period,
    o: &Options,
) -> Result<AssessmentReport, CompileError> {
    check(p)?;
    let tz = o.utc_offset_minutes;
    let from = start_of(p.from, tz);
    let to = start_of(LocalDate(p.to.0 + 1), tz);
    let usage = usage(store, set, p, o).await?;
    let mut records: Vec<(String, String)> = store
        .list_obligations(true)
        .await?
        .into_iter()
        .map(|r| {
            let zh = trigger_zh(&r, set);
            (r.description, zh)
        })
        .collect();
    records.sort();
    records.dedup_by(|a, b| a.0 == b.0);
    let (triggers, triggers_zh): (Vec<String>, Vec<String>) = records.into_iter().unzip();

    let counters = store.counter_totals(p.from, p.to).await?;
    let counter = |name: Counter| -> u64 {
        let n = serde_json::to_value(name)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        counters
            .iter()
            .filter(|c| c.name == n)
            .map(|c| c.value)
            .sum()
    };
    let esc = store.escalation_stats(from, to).await?;
    let mut notes: BTreeMap<String, u64> = BTreeMap::new();
    for (kind, status, n) in store.notification_stats(from, to).await? {
        *notes
            .entry(format!("{} ({status})", kind.replace('_', " ")))
            .or_default() += n;
    }
    // Help lines shown to a person at risk, in every jurisdiction: the crisis detector's
    // replaced replies (each carries the resources of the person's jurisdictions). The
    // `crisis_referral` counter only moves under the US duties that ask for the count.
    let crisis_replies: u64 = store
        .intervention_tiers(from, to)
        .await?
        .iter()
        .filter(|c| c.kind == "replace_reply" && c.detector.as_deref() == Some("crisis"))
        .map(|c| c.count)
        .sum();
    let counts = store.intervention_counts(from, to).await?;
    // Per kind from the interventions themselves: `counts` has a row per reason, so an
    // intervention required by two rules would count twice there.
    let kinds = store.intervention_kinds(from, to).await?;
    let by_kind = |kind: &str| -> u64 {
        kinds
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, n)| *n)
            .sum()
    };
    let by_obligation = |ob: &str| -> u64 {
        counts
            .iter()
            .filter(|c| c.obligation == ob)
            .map(|c| c.count)
            .sum()
    };
    let complaints = store.complaint_counts(from, to, o.generated_at).await?;
    let received: u64 = complaints.iter().map(|c| c.count).sum();
    let open: u64 = complaints
        .iter()
        .filter(|c| c.outcome.is_none())
        .map(|c| c.count)
        .sum();
    let overdue: u64 = complaints.iter().map(|c| c.overdue).sum();
    let minors: u64 = usage
        .age_structure
        .iter()
        .filter(|(k, _)| k.as_str() == "known_minor" || k.as_str() == "suspected_minor")
        .map(|(_, v)| *v)
        .sum();
    let fig = |label: &str, value: String| Figure {
        label: label.to_owned(),
        value,
    };
    let mau_last = usage.monthly_active.last().map_or(0, |m| m.total);
    // The buckets after "≤ 2 h" are the sessions that ran past two hours.
    let long_sessions: u64 = usage
        .session_durations
        .iter()
        .skip_while(|b| b.label != "≤ 2 h")
        .skip(1)
        .map(|b| b.count)
        .sum();
    let total_minutes: u64 = usage.daily_usage.iter().map(|d| d.seconds).sum::<u64>() / 60;
    let mut contact_figures: Vec<Figure> = notes
        .iter()
        .map(|(k, v)| fig(&format!("Notifications: {k}"), thousands(*v)))
        .collect();
    if contact_figures.is_empty() {
        contact_figures.push(fig(
            "Guardian / emergency-contact notifications",
            "0".into(),
        ));
    }
    let mut extreme = vec![
        fig(
            "Users at risk identified",
            thousands(counter(Counter::RiskDetection)),
        ),
        fig(
            "Crisis referrals shown (help lines of the person's jurisdiction, every jurisdiction)",
            thousands(crisis_replies),
        ),
        fig(
            "  of which counted for US crisis-referral duties",
            thousands(counter(Counter::CrisisReferral)),
        ),
        fig(
            "Replies replaced by tutela",
            thousands(by_kind("replace_reply")),
        ),
        fig("Model replies withheld", thousands(by_kind("block_output"))),
        fig("Cases opened for a human", thousands(esc.opened)),
        fig("Human takeovers", thousands(esc.takeovers)),
        fig(
            "Median time to a human (claimed cases)",
            esc.median_secs_to_claim
                .map_or("—".into(), |s| format!("{:.1} min", s as f64 / 60.0)),
        ),
    ];
    extreme.extend(contact_figures);
    let items = vec![
        AssessmentItem {
            id: "safeguards".into(),
            article: "Art. 23; Art. 9".into(),
            title: "Safety safeguards and management systems".into(),
            source: ItemSource::NeedsHumanInput,
            figures: vec![fig("Profiles in force", set.ids().join(", "))],
            note: "Describe the management systems of Art. 9 (algorithm and ethics review, content management, data security, PI protection, anti-fraud, emergency plans) and the staff assigned to them.".into(),
        },
        AssessmentItem {
            id: "training-data".into(),
            article: "Art. 23; Art. 11".into(),
            title: "Training-data processing".into(),
            source: ItemSource::NeedsHumanInput,
            figures: vec![],
            note: "Attach the corpus screening summary (`tutela screen`: per-source violation rates with the 5 % rule, the manual and technical samples with their pass rates) and the model assessment (`tutela assess`).".into(),
        },
        AssessmentItem {
            id: "extreme-situations".into(),
            article: "Art. 23; Art. 13".into(),
            title: "Identification of users' extreme situations, emergency response and intervention".into(),
            source: ItemSource::Compiled,
            figures: extreme,
            note: "Compiled from the interventions, escalation cases, outbox and counters of the period.".into(),
        },
        AssessmentItem {
            id: "user-scale".into(),
            article: "Art. 23; Art. 22(3)".into(),
            title: "User scale".into(),
            source: ItemSource::Compiled,
            figures: vec![
                fig("Registered users", thousands(usage.registered_users)),
                fig("Monthly active users (last month)", thousands(mau_last)),
            ],
            note: "Registered users counted as the deployment defines registration; monthly active users per calendar month in the report time zone.".into(),
        },
        AssessmentItem {
            id: "usage-duration".into(),
            article: "Art. 23; Art. 18".into(),
            title: "Usage duration".into(),
            source: ItemSource::Compiled,
            figures: vec![
                fig("Minutes of use in the period", thousands(total_minutes)),
                fig("Median session", format!("{:.1} min", usage.session_median_minutes)),
                fig("Usage-time reminders shown", thousands(by_obligation("usage-reminder"))),
                fig("Sessions longer than 2 hours", thousands(long_sessions)),
            ],
            note: "A usage-time reminder is due at each further 2 hours of continuous use (Art. 18). A pause longer than the idle reset (recorded with each decision; 30 minutes by default) ends continuous use and starts a new session, so only sessions longer than 2 hours reach a reminder: the reminders shown are to be read against the sessions longer than 2 hours, not against the minutes of use. Distributions in the usage section below.".into(),
        },
        AssessmentItem {
            id: "age-structure".into(),
            article: "Art. 23".into(),
            title: "Age structure".into(),
            source: ItemSource::Compiled,
            figures: usage
                .age_structure
                .iter()
                .map(|(k, v)| fig(&k.replace('_', " "), thousands(*v)))
                .collect(),
            note: "Age states as recorded: unknown, self-declared adult, suspected minor, known minor, verified adult.".into(),
        },
        AssessmentItem {
            id: "minors-elderly".into(),
            article: "Art. 23; Arts. 14–15".into(),
            title: "Protection of minors and the elderly".into(),
            source: ItemSource::Compiled,
            figures: vec![
                fig("Known and suspected minors", thousands(minors)),
                fig("Suspected minors identified in the period", thousands(counter(Counter::MinorIdentified))),
                fig("Daily budgets enforced", thousands(by_obligation("minors-mode-time"))),
                fig("Quiet-hours replies", thousands(by_obligation("minors-mode-night"))),
                fig("Intimate personas refused to minors", thousands(by_obligation("no-intimate-personas-for-minors"))),
            ],
            note: "Elderly users' guidance and support are operator processes: add them here.".into(),
        },
        AssessmentItem {
            id: "complaints".into(),
            article: "Art. 23; Art. 21".into(),
            title: "Appeals and complaints".into(),
            source: ItemSource::Compiled,
            figures: vec![
                fig("Received", thousands(received)),
                fig("Still open", thousands(open)),
                fig("Past the published time limit", thousands(overdue)),
                fig("Published time limit", format!("{} h", o.complaint_time_limit_hours)),
            ],
            note: "From the complaints and appeals records.".into(),
        },
        AssessmentItem {
            id: "rectification".into(),
            article: "Art. 23; Art. 24".into(),
            title: "Rectification of major risks".into(),
            source: ItemSource::NeedsHumanInput,
            figures: vec![],
            note: "List major risks found since the last assessment and how each was rectified.".into(),
        },
    ];
    Ok(AssessmentReport {
        meta: meta(
            store,
            ReportKind::Assessment,
            "Security assessment (Anthropomorphic AI Interaction Services, Arts. 22–23)",
            set,
            p,
            o,
        )
        .await?,
        triggers,
        triggers_zh,
        items,
        usage,
    })
}

/// An obligation record in Chinese, for the Chinese assessment: a threshold record in words
/// from its figures, with the profile's Chinese citation (`article_zh`; the recorded citation
/// where the profile gives none); a declared trigger as the operator wrote it.
fn trigger_zh(r: &tutela_store::ObligationRecord, set: &ProfileSet) -> String {
    let (Some(value), Some(threshold)) = (r.value, r.threshold) else {
        return r.description.clone();
    };
    let metric = match r.trigger.as_str() {
        "registered_users" => "注册用户数",
        "monthly_active_users" => "月活跃用户数",
        _ => return r.description.clone(),
    };
    let reached = match r.kind {
        ObligationKind::ThresholdCrossed => "已达到阈值",
        ObligationKind::ThresholdWarning => "已达到预警线，阈值为",
        ObligationKind::Declared => return r.description.clone(),
    };
    let obligation = set
        .profiles()
        .find(|p| Some(p.id()) == r.profile.as_deref())
        .and_then(|p| {
            p.obligations()
                .iter()
                .find(|o| Some(o.id.as_str()) == r.obligation.as_deref())
        });
    let article = obligation
        .and_then(|o| o.article_zh.clone())
        .or_else(|| r.article.clone())
        .unwrap_or_default();
    let opens = match obligation.and_then(|o| o.threshold.as_ref()) {
        Some(t) if t.opens != "security_assessment" => t.opens.replace('_', " "),
        _ => "安全评估".to_owned(),
    };
    format!(
        "{metric} {} {reached} {}（{article}：{opens}）",
        thousands(value),
        thousands(threshold)
    )
}

/// Items due when a CN security assessment opens (Art. 23).
pub fn assessment_items() -> Vec<String> {
    [
        "compile the security assessment (`tutela report assessment`) and complete the sections marked as needing human input",
        "submit the assessment report to the provincial-level CAC",
        "attach corpus screening and model assessment results",
        "record the submission and close this record with its reference",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Counts registered users and this month's active users, evaluates the thresholds, and opens
/// one record per threshold for the warning and one for the crossing (idempotent).
pub async fn check_thresholds(
    store: &dyn Backend,
    set: &ProfileSet,
    registration: Registration,
    tz: i32,
    now: Timestamp,
    month: Option<u32>,
) -> Result<(Vec<ThresholdStatus>, Vec<tutela_store::ObligationRecord>), CompileError> {
    let (registered, _) = store.registered_count(registration, now).await?;
    let month = month.unwrap_or_else(|| tutela_store::month_of(now, tz));
    let mau = store.monthly_active(month).await?.total;
    let statuses = evaluate_thresholds(set, registered, mau);
    let mut opened = Vec::new();
    for s in &statuses {
        let (kind, word) = match s.state {
            ThresholdState::Ok => continue,
            ThresholdState::Warning => (
                ObligationKind::ThresholdWarning,
                "reached the warning level of",
            ),
            ThresholdState::Crossed => (ObligationKind::ThresholdCrossed, "reached"),
        };
        let metric = match s.metric {
            crate::model::Metric::RegisteredUsers => "registered_users",
            crate::model::Metric::MonthlyActiveUsers => "monthly_active_users",
        };
        let new = NewObligation {
            key: format!(
                "threshold:{}/{}:{metric}:{}",
                s.profile,
                s.obligation,
                kind.as_str()
            ),
            kind,
            trigger: metric.into(),
            profile: Some(s.profile.clone()),
            obligation: Some(s.obligation.clone()),
            article: Some(s.article.clone()),
            value: Some(s.value),
            threshold: Some(s.threshold),
            description: format!(
                "{} {} {} {} ({}: {})",
                metric.replace('_', " "),
                thousands(s.value),
                word,
                thousands(s.threshold),
                s.article,
                s.opens.replace('_', " ")
            ),
            due_items: match kind {
                ObligationKind::ThresholdCrossed => assessment_items(),
                _ => vec!["prepare the security assessment before the threshold is reached".into()],
            },
            at: now,
        };
        let (record, new) = store.open_obligation(&new).await?;
        if new {
            opened.push(record);
        }
    }
    Ok((statuses, opened))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_months_round_trip() {
        let d = parse_day("2026-02-28").unwrap();
        assert_eq!(day_string(d), "2026-02-28");
        assert_eq!(day_string(LocalDate(d.0 + 1)), "2026-03-01");
        let p = Period::month(202602);
        assert_eq!(
            (day_string(p.from), day_string(p.to)),
            ("2026-02-01".into(), "2026-02-28".into())
        );
        let y = Period::year(2026);
        assert_eq!(months(y).len(), 12);
        assert_eq!(
            months(Period {
                from: parse_day("2026-11-15").unwrap(),
                to: parse_day("2027-01-02").unwrap()
            }),
            [202611, 202612, 202701]
        );
        assert_eq!(offset_string(480), "+08:00");
        assert_eq!(offset_string(-210), "-03:30");
    }
}
