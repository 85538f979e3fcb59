//! `tutela report (assessment|sb243|transparency|usage|referrals-wa|referrals-or) [--from DATE --to DATE] [--format html|md|json|pdf] [--lang zh|en]`
//! and `tutela obligations (list|check|declare|close)`: reports compiled from the store, and the
//! obligation records that usage thresholds and declared triggers open.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use tutela_gateway::clock::{Clock, SystemClock};
use tutela_profile::ProfileSet;
use tutela_report::compile::{self, Options, Period, day_string, parse_day};
use tutela_report::model::OverBlocking;
use tutela_report::{Format, Lang, Report, ThresholdState};
use tutela_store::{NewObligation, ObligationKind, Registration, Store, StoreOptions};
use tutela_types::{LocalDate, Timestamp};

use crate::Outcome;

/// Where the records are and how they are counted: shared by `report` and `obligations`.
#[derive(Debug, clap::Args)]
pub struct Source {
    /// The database of `tutela serve`: a SQLite file, or a `postgres://` URL.
    #[arg(
        long,
        value_name = "PATH|URL",
        default_value = "./tutela.db",
        global = true
    )]
    db: String,
    /// Jurisdictions (ids or aliases) whose profiles apply.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "cn,us-ca,us-ny,eu",
        global = true
    )]
    jurisdictions: Vec<String>,
    /// Read profiles from this directory instead of the built-in copies.
    #[arg(long, value_name = "DIR", global = true)]
    profiles: Option<PathBuf>,
    /// The report time zone as a UTC offset in minutes (480 for China Standard Time); UTC by
    /// default, as for `tutela simulate` and the admin API's reports.
    #[arg(
        long,
        value_name = "MINUTES",
        default_value_t = 0,
        allow_negative_numbers = true,
        global = true
    )]
    tz_offset: i32,
    /// What counts as a registered user.
    #[arg(long, value_enum, default_value = "first-seen", global = true)]
    registration: RegistrationArg,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RegistrationArg {
    /// Registered from the first turn.
    FirstSeen,
    /// Registered through the admin API.
    Admin,
}

impl Source {
    fn set(&self) -> Result<ProfileSet> {
        let reg = crate::cmd::profiles::load(self.profiles.as_deref())?;
        reg.select(&self.jurisdictions)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    fn registration(&self) -> Registration {
        match self.registration {
            RegistrationArg::FirstSeen => Registration::FirstSeen,
            RegistrationArg::Admin => Registration::Admin,
        }
    }

    async fn open(&self) -> Result<Store> {
        super::open_existing(
            &self.db,
            StoreOptions {
                report_utc_offset_minutes: self.tz_offset,
            },
        )
        .await
    }
}

/// Arguments of `tutela report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Which report.
    #[arg(value_enum)]
    kind: Kind,
    /// First day (`YYYY-MM-DD`, report time zone); default: the first day of the current month
    /// (for `sb243` and the referral pages: January 1 of the previous year; they always cover
    /// the whole calendar year of this date).
    #[arg(long, value_name = "DATE")]
    from: Option<String>,
    /// Last day, inclusive; default: today (for `sb243`: December 31 of the previous year).
    #[arg(long, value_name = "DATE")]
    to: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "html")]
    format: FormatArg,
    /// Language of the HTML, Markdown and PDF: `zh` or `en`. Default: the language of the
    /// report's regulator (the CN assessment in Chinese; its English version with `--lang en`;
    /// every other report is in English only). JSON is the same in every language.
    #[arg(long, value_enum)]
    lang: Option<LangArg>,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
    /// For `transparency`: over-blocking measured by `tutela eval --json` on a labelled set.
    #[arg(long, value_name = "FILE")]
    eval_json: Option<PathBuf>,
    /// The published complaint handling time limit, in hours.
    #[arg(long, value_name = "HOURS", default_value_t = 72)]
    complaint_hours: u64,
    /// The deployment's name, printed on the report.
    #[arg(long, default_value = "tutela")]
    deployment: String,
    #[command(flatten)]
    source: Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    Assessment,
    Sb243,
    Transparency,
    Usage,
    /// Washington HB 2225: the yearly public page of crisis-referral counts.
    ReferralsWa,
    /// Oregon SB 1546: the yearly public page of crisis-referral counts and follow-ups.
    ReferralsOr,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LangArg {
    /// Chinese (simplified).
    Zh,
    /// English.
    En,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    Html,
    Md,
    Json,
    /// A4 PDF (the same document as HTML and Markdown).
    Pdf,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn day_arg(s: &str) -> Result<LocalDate> {
    parse_day(s).with_context(|| format!("`{s}` is not a date such as `2026-09-01`"))
}

/// Runs `tutela report`.
pub fn run_report(args: ReportArgs) -> Result<Outcome> {
    let set = args.source.set()?;
    let now = SystemClock.now();
    let today = now.local_date(args.source.tz_offset);
    let options = Options {
        utc_offset_minutes: args.source.tz_offset,
        deployment: args.deployment.clone(),
        registration: args.source.registration(),
        complaint_time_limit_hours: args.complaint_hours,
        generated_at: now,
    };
    let period = match (&args.from, &args.to) {
        (Some(f), Some(t)) => Period {
            from: day_arg(f)?,
            to: day_arg(t)?,
        },
        (Some(f), None) => Period {
            from: day_arg(f)?,
            to: today,
        },
        (None, to) => {
            let to = to.as_deref().map(day_arg).transpose()?.unwrap_or(today);
            let month = tutela_store::month_of(Timestamp::from_unix(i64::from(to.0) * 86_400), 0);
            Period {
                from: Period::month(month).from,
                to,
            }
        }
    };
    let over_blocking = match &args.eval_json {
        Some(path) => over_blocking_from_eval(path)?,
        None => Vec::new(),
    };
    // The calendar year of the yearly reports: that of `--from`, else the previous one.
    let year = || -> Result<i32> {
        Ok(match &args.from {
            Some(f) => day_string(day_arg(f)?)[..4].parse().unwrap_or(2026),
            None => {
                let y: i32 = day_string(today)[..4].parse().unwrap_or(2027);
                y - 1
            }
        })
    };
    let rt = runtime()?;
    let report = rt.block_on(async {
        let store = args.source.open().await?;
        let b = store.backend();
        let report = match args.kind {
            Kind::Usage => Report::Usage(compile::usage(b, &set, period, &options).await?),
            Kind::Assessment => Report::Assessment(Box::new(
                compile::assessment(b, &set, period, &options).await?,
            )),
            Kind::Transparency => Report::Transparency(
                compile::transparency(b, &set, period, &options, over_blocking).await?,
            ),
            Kind::Sb243 => Report::Sb243(compile::sb243(b, &set, year()?, &options).await?),
            Kind::ReferralsWa => {
                Report::Referrals(compile::referrals(b, &set, "us-wa", year()?, &options).await?)
            }
            Kind::ReferralsOr => {
                Report::Referrals(compile::referrals(b, &set, "us-or", year()?, &options).await?)
            }
        };
        store.close().await?;
        anyhow::Ok(report)
    })?;
    let langs = report.languages();
    let lang = match args.lang {
        None => langs[0],
        Some(l) => {
            let l = match l {
                LangArg::Zh => Lang::Zh,
                LangArg::En => Lang::En,
            };
            if !langs.contains(&l) {
                anyhow::bail!(
                    "the {} report is written in {} only",
                    report.kind().as_str(),
                    langs
                        .iter()
                        .map(|l| l.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            l
        }
    };
    let bytes = match args.format {
        FormatArg::Html => report.render_in(Format::Html, lang).into_bytes(),
        FormatArg::Md => report.render_in(Format::Markdown, lang).into_bytes(),
        FormatArg::Json => report.render(Format::Json).into_bytes(),
        FormatArg::Pdf => report.pdf_in(lang),
    };
    match &args.out {
        Some(path) => std::fs::write(path, bytes)
            .with_context(|| format!("cannot write `{}`", path.display()))?,
        None => std::io::stdout().lock().write_all(&bytes)?,
    }
    Ok(Outcome::Clean)
}

/// `YYYY-MM` → `yyyymm`.
pub fn parse_month(s: &str) -> Result<u32> {
    compile::parse_month(s).with_context(|| format!("`{s}` is not a month such as `2026-10`"))
}

/// Over-blocking from `tutela eval --json`: the hard-negative false-positive rate of each task.
fn over_blocking_from_eval(path: &std::path::Path) -> Result<Vec<OverBlocking>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "`{}` is not the JSON of `tutela eval --json`",
            path.display()
        )
    })?;
    let Some(tasks) = v.get("tasks").and_then(|t| t.as_object()) else {
        bail!("`{}` has no `tasks` object", path.display());
    };
    let mut out = Vec::new();
    for (task, t) in tasks {
        let rate = t
            .get("hard_negative_fpr")
            .and_then(|x| x.as_f64())
            .unwrap_or(0.0);
        let n = t
            .get("hard_negatives")
            .and_then(|x| x.as_u64())
            .unwrap_or(0);
        // The count when `eval` gave it; the rate times the count for older files.
        let flagged = t
            .get("hard_negatives_flagged")
            .and_then(|x| x.as_u64())
            .unwrap_or((rate * n as f64).round() as u64);
        out.push(OverBlocking {
            measured_on: format!("{task}: hard negatives of {}", path.display()),
            negatives: n,
            false_positives: flagged,
            rate,
        });
    }
    Ok(out)
}

/// Arguments of `tutela obligations`.
#[derive(Debug, clap::Args)]
pub struct ObligationArgs {
    #[command(subcommand)]
    command: ObligationCommand,
    #[command(flatten)]
    source: Source,
}

#[derive(Debug, clap::Subcommand)]
enum ObligationCommand {
    /// The obligation records, newest first.
    List {
        /// Closed ones too.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Count registered and monthly active users, compare with the profiles' thresholds, and
    /// open a record for each warning or crossing (exit 1 when any is at warning or beyond).
    Check {
        /// The month whose active users count, `YYYY-MM` (default: the current month).
        #[arg(long, value_name = "YYYY-MM")]
        month: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Declare a trigger that opens an assessment record (a feature launch, a major change).
    Declare {
        /// What kind of trigger.
        #[arg(long, value_enum)]
        trigger: TriggerArg,
        /// What happened.
        #[arg(long)]
        description: String,
    },
    /// Close a record.
    Close {
        /// Record id.
        id: i64,
        /// How it was discharged.
        #[arg(long)]
        note: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TriggerArg {
    /// Launch of the service or of related functions (CN Art. 22(1)).
    FeatureLaunch,
    /// New technology or applications causing a major change (CN Art. 22(2)).
    MajorChange,
    /// Anything else that calls for an assessment.
    Other,
}

/// Runs `tutela obligations`.
pub fn run_obligations(args: ObligationArgs) -> Result<Outcome> {
    let rt = runtime()?;
    let now = SystemClock.now();
    let mut out = std::io::stdout().lock();
    match args.command {
        ObligationCommand::List { all, json } => {
            let records = rt.block_on(async {
                let store = args.source.open().await?;
                let r = store.obligations().list_obligations(!all).await?;
                store.close().await?;
                anyhow::Ok(r)
            })?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&records)?)?;
            } else if records.is_empty() {
                writeln!(out, "no obligation records")?;
            } else {
                for r in &records {
                    writeln!(
                        out,
                        "#{} [{}] {} — {} (opened {})",
                        r.id,
                        r.status,
                        r.kind.as_str(),
                        r.description,
                        r.opened_at
                    )?;
                    for item in &r.due_items {
                        writeln!(out, "    - {item}")?;
                    }
                }
            }
            Ok(Outcome::Clean)
        }
        ObligationCommand::Check { month, json } => {
            let month = month.as_deref().map(parse_month).transpose()?;
            let set = args.source.set()?;
            let registration = args.source.registration();
            let tz = args.source.tz_offset;
            let (statuses, opened) = rt.block_on(async {
                let store = args.source.open().await?;
                let r =
                    compile::check_thresholds(store.backend(), &set, registration, tz, now, month)
                        .await?;
                store.close().await?;
                anyhow::Ok(r)
            })?;
            if json {
                let v = serde_json::json!({ "thresholds": statuses, "opened": opened });
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                for s in &statuses {
                    writeln!(
                        out,
                        "{}/{} ({}): {:?} {} of {} ({:.1} %) — {:?}",
                        s.profile,
                        s.obligation,
                        s.article,
                        s.metric,
                        s.value,
                        s.threshold,
                        s.ratio * 100.0,
                        s.state
                    )?;
                }
                for r in &opened {
                    writeln!(out, "opened #{}: {}", r.id, r.description)?;
                }
            }
            let alert = statuses.iter().any(|s| s.state != ThresholdState::Ok);
            Ok(if alert {
                Outcome::Findings
            } else {
                Outcome::Clean
            })
        }
        ObligationCommand::Declare {
            trigger,
            description,
        } => {
            let name = match trigger {
                TriggerArg::FeatureLaunch => "feature_launch",
                TriggerArg::MajorChange => "major_change",
                TriggerArg::Other => "other",
            };
            let record = rt.block_on(async {
                let store = args.source.open().await?;
                let (r, _) = store
                    .obligations()
                    .open_obligation(&NewObligation {
                        key: format!("declared:{name}:{}", now.unix()),
                        kind: ObligationKind::Declared,
                        trigger: name.into(),
                        profile: Some("cn-anthropomorphic-2026".into()),
                        obligation: Some("security-assessment".into()),
                        article: Some(match trigger {
                            TriggerArg::FeatureLaunch => "Art. 22(1)".into(),
                            TriggerArg::MajorChange => "Art. 22(2)".into(),
                            TriggerArg::Other => "Art. 22(5)".into(),
                        }),
                        value: None,
                        threshold: None,
                        description: format!("{}: {description}", name.replace('_', " ")),
                        due_items: compile::assessment_items(),
                        at: now,
                    })
                    .await?;
                store.close().await?;
                anyhow::Ok(r)
            })?;
            writeln!(out, "opened #{}: {}", record.id, record.description)?;
            Ok(Outcome::Clean)
        }
        ObligationCommand::Close { id, note } => {
            let record = rt.block_on(async {
                let store = args.source.open().await?;
                let r = store.obligations().close_obligation(id, &note, now).await?;
                store.close().await?;
                anyhow::Ok(r)
            })?;
            writeln!(out, "closed #{}: {}", record.id, record.description)?;
            Ok(Outcome::Clean)
        }
    }
}
