//! Rendering: each report becomes a small document model, written out as self-contained HTML
//! (inline CSS, charts as inline SVG, no scripts, no external resources) or as Markdown.

use std::fmt::Write as _;

use crate::model::{
    AssessmentReport, DetectionTier, ItemSource, Meta, Metric, ReferralReport, Sb243Report,
    ThresholdState, ThresholdStatus, TierAppeals, TierFigures, TransparencyReport, UsageReport,
};

/// The language a document is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Simplified Chinese.
    Zh,
}

impl Lang {
    /// `en`, `zh`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// `en` or `zh` (also `zh-CN`, `zh-Hans`, any case); `None` for anything else.
    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.to_ascii_lowercase();
        if s == "en" || s.starts_with("en-") {
            Some(Lang::En)
        } else if s == "zh" || s.starts_with("zh-") {
            Some(Lang::Zh)
        } else {
            None
        }
    }

    /// The text in this language.
    pub fn t<'a>(self, en: &'a str, zh: &'a str) -> &'a str {
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }

    /// The HTML `lang` attribute.
    fn html(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }
}

/// A rendered-agnostic document.
#[derive(Clone, Debug, Default)]
pub struct Document {
    /// The language of its text (the figures are the same in every language).
    pub lang: Lang,
    /// Title.
    pub title: String,
    /// Lines under the title (period, profiles, generation time).
    pub meta: Vec<(String, String)>,
    /// Sections in order.
    pub sections: Vec<Section>,
}

/// A section of a document.
#[derive(Clone, Debug, Default)]
pub struct Section {
    /// Heading.
    pub title: String,
    /// A person must complete this section.
    pub needs_human_input: bool,
    /// Content.
    pub blocks: Vec<Block>,
}

/// A piece of content.
#[derive(Clone, Debug)]
pub enum Block {
    /// A paragraph of plain text.
    Para(String),
    /// Label–value pairs.
    Facts(Vec<(String, String)>),
    /// A table with a header row.
    Table {
        /// Column headings.
        head: Vec<String>,
        /// Rows of cells.
        rows: Vec<Vec<String>>,
    },
    /// A horizontal bar chart.
    Bars {
        /// Caption.
        caption: String,
        /// Unit for the values.
        unit: String,
        /// Label and value per bar.
        bars: Vec<(String, f64)>,
    },
    /// A threshold gauge: value against warning level and threshold.
    Gauge(ThresholdStatus),
}

fn meta_lines(m: &Meta) -> Vec<(String, String)> {
    meta_lines_in(m, Lang::En)
}

fn meta_lines_in(m: &Meta, lang: Lang) -> Vec<(String, String)> {
    let l = |en: &str, zh: &str| lang.t(en, zh).to_owned();
    vec![
        (
            l("Period", "报告期间"),
            match lang {
                Lang::En => format!("{} – {} (UTC{})", m.from, m.to, m.time_zone),
                Lang::Zh => format!("{} 至 {}（UTC{}）", m.from, m.to, m.time_zone),
            },
        ),
        (l("Deployment", "部署名称"), m.deployment.clone()),
        (
            l("Profiles", "适用的法域规则配置"),
            m.profiles.join(lang.t(", ", "、")),
        ),
        (
            l("Profile snapshot", "规则配置快照"),
            m.profile_snapshot.clone(),
        ),
        (l("Generated", "生成时间"), m.generated_at.clone()),
        (
            l("Test turns excluded", "已排除的测试对话轮次"),
            m.test_turns_excluded.to_string(),
        ),
    ]
}

pub(crate) fn metric_name(m: Metric, lang: Lang) -> &'static str {
    match m {
        Metric::RegisteredUsers => lang.t("registered users", "注册用户数"),
        Metric::MonthlyActiveUsers => lang.t("monthly active users", "月活跃用户数"),
    }
}

pub(crate) fn state_name(s: ThresholdState, lang: Lang) -> &'static str {
    match s {
        ThresholdState::Ok => lang.t("below the warning level", "低于预警线"),
        ThresholdState::Warning => {
            lang.t("WARNING: within reach of the threshold", "预警：接近阈值")
        }
        ThresholdState::Crossed => lang.t("CROSSED: the duty is open", "已达到：相关义务已触发"),
    }
}

/// A threshold in words: what is counted, the figure against the threshold, where it stands,
/// and the profile's obligation behind it.
pub(crate) struct GaugeText {
    pub(crate) metric: &'static str,
    pub(crate) figures: String,
    pub(crate) state: &'static str,
    pub(crate) source: String,
}

pub(crate) fn gauge_text(t: &ThresholdStatus, lang: Lang) -> GaugeText {
    let pct = t.ratio * 100.0;
    let (value, threshold) = (thousands(t.value), thousands(t.threshold));
    let (figures, source) = match lang {
        Lang::En => (
            format!("{value} of {threshold} ({pct:.1} %)"),
            format!(
                "{}/{}, {}; opens {}",
                t.profile,
                t.obligation,
                t.article,
                t.opens.replace('_', " ")
            ),
        ),
        Lang::Zh => (
            format!("{value} / {threshold}（{pct:.1} %）"),
            format!(
                "{}/{}，{}；达到后触发：{}",
                t.profile,
                t.obligation,
                // The profile's Chinese citation and title where it gives them.
                match (&t.article_zh, &t.title_zh) {
                    (Some(a), Some(title)) => format!("{a} {title}"),
                    (Some(a), None) => a.clone(),
                    (None, _) => t.article.clone(),
                },
                match t.opens.as_str() {
                    "security_assessment" => "安全评估".to_owned(),
                    other => other.replace('_', " "),
                }
            ),
        ),
    };
    GaugeText {
        metric: metric_name(t.metric, lang),
        figures,
        state: state_name(t.state, lang),
        source,
    }
}

/// "No records in this period."
pub(crate) fn no_records(lang: Lang) -> &'static str {
    lang.t("No records in this period.", "本期无记录。")
}

fn tier_name(t: DetectionTier) -> &'static str {
    match t {
        DetectionTier::Lexical => "lexical",
        DetectionTier::Ngram => "n-gram",
        DetectionTier::Encoder => "encoder",
        DetectionTier::Judge => "judge",
        DetectionTier::NoFinding => "no finding",
        DetectionTier::NotRecorded => "tier not recorded",
    }
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "—".into(), |r| format!("{:.1} %", r * 100.0))
}

fn appeal_cells(a: &TierAppeals) -> [String; 5] {
    [
        thousands(a.received),
        thousands(a.upheld),
        thousands(a.rejected),
        thousands(a.open),
        rate(a.upheld_rate),
    ]
}

/// The two per-tier sections of the transparency report.
fn tier_sections(t: &TierFigures) -> [Section; 2] {
    let detection = Section {
        title: "Findings and interventions by detection tier".into(),
        needs_human_input: false,
        blocks: vec![
            Block::Para("Tiers: lexical (patterns over normalised text), n-gram (a linear model over character and word n-grams), encoder (heads over a sentence encoder), judge (a model asked to classify). An intervention counts under the tier of the finding that caused it: in its audit record, the gravest finding of the detector it names. \"No finding\": no finding caused it (session-start and usage notices, budgets, quiet hours). \"Tier not recorded\": its audit record is not linked or does not hold that finding.".into()),
            Block::Bars {
                caption: "Interventions by tier".into(),
                unit: "interventions".into(),
                bars: t
                    .by_tier
                    .iter()
                    .map(|s| (tier_name(s.tier).to_owned(), s.interventions as f64))
                    .collect(),
            },
            Block::Table {
                head: vec![
                    "Tier".into(),
                    "Findings".into(),
                    "Interventions".into(),
                    "By kind".into(),
                ],
                rows: t
                    .by_tier
                    .iter()
                    .map(|s| {
                        vec![
                            tier_name(s.tier).to_owned(),
                            thousands(s.findings),
                            thousands(s.interventions),
                            s.interventions_by_kind
                                .iter()
                                .map(|(k, n)| format!("{k}: {}", thousands(*n)))
                                .collect::<Vec<_>>()
                                .join("; "),
                        ]
                    })
                    .collect(),
            },
            Block::Table {
                head: vec![
                    "Detector".into(),
                    "Tier".into(),
                    "Findings".into(),
                    "Interventions".into(),
                    "Appeals".into(),
                    "Decided for the user".into(),
                ],
                rows: t
                    .by_detector
                    .iter()
                    .map(|r| {
                        vec![
                            r.detector.clone().unwrap_or_else(|| "—".into()),
                            tier_name(r.tier).to_owned(),
                            thousands(r.findings),
                            thousands(r.interventions),
                            thousands(r.appeals.received),
                            thousands(r.appeals.upheld),
                        ]
                    })
                    .collect(),
            },
        ],
    };
    let over_blocking = Section {
        title: "Over-blocking by tier (appeals)".into(),
        needs_human_input: false,
        blocks: vec![
            Block::Para("Appeals received in the period, split by the tier of the finding behind the intervention appealed against. An appeal decided for the user (upheld or overturned) is an intervention that should not have happened: over-blocking. The share is of the decided appeals.".into()),
            Block::Table {
                head: vec![
                    "Tier".into(),
                    "Interventions".into(),
                    "Appeals".into(),
                    "Decided for the user".into(),
                    "Rejected".into(),
                    "Open".into(),
                    "Share decided for the user".into(),
                ],
                rows: t
                    .by_tier
                    .iter()
                    .map(|s| {
                        let mut row = vec![tier_name(s.tier).to_owned(), thousands(s.interventions)];
                        row.extend(appeal_cells(&s.appeals));
                        row
                    })
                    .collect(),
            },
        ],
    };
    [detection, over_blocking]
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

impl UsageReport {
    /// The sections of the usage report (also used inside the assessment).
    pub fn sections(&self) -> Vec<Section> {
        self.sections_in(Lang::En)
    }

    /// The sections in a language (the Chinese ones for the CN assessment): the same figures.
    pub fn sections_in(&self, lang: Lang) -> Vec<Section> {
        let l = |en: &str, zh: &str| lang.t(en, zh).to_owned();
        let mut out = Vec::new();
        out.push(Section {
            title: l("Thresholds", "用量阈值"),
            needs_human_input: false,
            blocks: if self.thresholds.is_empty() {
                vec![Block::Para(l(
                    "No profile in force sets a usage threshold.",
                    "现行规则配置均未设定用量阈值。",
                ))]
            } else {
                self.thresholds.iter().cloned().map(Block::Gauge).collect()
            },
        });
        let mut reg: Vec<(String, String)> = vec![(
            l("Registered users", "注册用户数"),
            thousands(self.registered_users),
        )];
        reg.extend(self.registered_by_jurisdiction.iter().map(|(j, n)| {
            // A user with no jurisdiction on record counts under `unknown`.
            let j = if j == "unknown" {
                lang.t("unknown", "未知法域")
            } else {
                j.as_str()
            };
            (
                format!("{}{j}", lang.t("  of which ", "  其中 ")),
                thousands(*n),
            )
        }));
        out.push(Section {
            title: l("User scale", "用户规模"),
            needs_human_input: false,
            blocks: vec![
                Block::Facts(reg),
                Block::Bars {
                    caption: l("Monthly active users", "月活跃用户"),
                    unit: l("users", "人"),
                    bars: self
                        .monthly_active
                        .iter()
                        .map(|m| (m.month.clone(), m.total as f64))
                        .collect(),
                },
                Block::Table {
                    head: vec![
                        l("Month", "月份"),
                        l("Active users", "活跃用户"),
                        l("By jurisdiction", "按法域"),
                    ],
                    rows: self
                        .monthly_active
                        .iter()
                        .map(|m| {
                            vec![
                                m.month.clone(),
                                thousands(m.total),
                                m.by_jurisdiction
                                    .iter()
                                    .map(|(j, n)| format!("{j}: {}", thousands(*n)))
                                    .collect::<Vec<_>>()
                                    .join(lang.t("; ", "；")),
                            ]
                        })
                        .collect(),
                },
            ],
        });
        let total_minutes: u64 = self.daily_usage.iter().map(|d| d.seconds).sum::<u64>() / 60;
        out.push(Section {
            title: l("Usage duration", "使用时长"),
            needs_human_input: false,
            blocks: vec![
                Block::Facts(vec![
                    (
                        l("Minutes of use in the period", "本期累计使用时长（分钟）"),
                        thousands(total_minutes),
                    ),
                    (
                        l("Median session", "单次会话时长中位数"),
                        format!(
                            "{:.1} {}",
                            self.session_median_minutes,
                            lang.t("min", "分钟")
                        ),
                    ),
                ]),
                Block::Bars {
                    caption: l("Minutes of use per day", "每日使用时长"),
                    unit: l("min", "分钟"),
                    bars: self
                        .daily_usage
                        .iter()
                        .map(|d| (d.day.clone(), d.minutes as f64))
                        .collect(),
                },
                Block::Bars {
                    caption: l("Session durations", "会话时长分布"),
                    unit: l("sessions", "个会话"),
                    bars: self
                        .session_durations
                        .iter()
                        .map(|b| {
                            let label = match lang {
                                Lang::En => b.label.clone(),
                                Lang::Zh => crate::zh::bucket(&b.label),
                            };
                            (label, b.count as f64)
                        })
                        .collect(),
                },
            ],
        });
        out.push(Section {
            title: l("Age structure", "年龄结构"),
            needs_human_input: false,
            blocks: vec![Block::Bars {
                caption: l("Users by age state", "按年龄状态统计的用户"),
                unit: l("users", "人"),
                bars: self
                    .age_structure
                    .iter()
                    .map(|(k, v)| {
                        let label = match (lang, crate::zh::age_state(k)) {
                            (Lang::Zh, Some(zh)) => zh.to_owned(),
                            _ => k.replace('_', " "),
                        };
                        (label, *v as f64)
                    })
                    .collect(),
            }],
        });
        out
    }

    /// The document.
    pub fn document(&self) -> Document {
        Document {
            lang: Lang::En,
            title: self.meta.title.clone(),
            meta: meta_lines(&self.meta),
            sections: self.sections(),
        }
    }
}

impl Sb243Report {
    /// The document.
    pub fn document(&self) -> Document {
        Document {
            lang: Lang::En,
            title: self.meta.title.clone(),
            meta: meta_lines(&self.meta),
            sections: vec![
                Section {
                    title: format!(
                        "§22603(a)(1) Crisis referral notifications in {}",
                        self.calendar_year
                    ),
                    needs_human_input: false,
                    blocks: vec![Block::Facts(vec![(
                        "Referral notifications issued".into(),
                        thousands(self.referral_notifications),
                    )])],
                },
                Section {
                    title: "§22603(a)(2) Protocols to detect, remove and respond to suicidal ideation"
                        .into(),
                    needs_human_input: false,
                    blocks: vec![Block::Para(self.detection_protocol.clone())],
                },
                Section {
                    title: "§22603(a)(3) Protocols to prohibit responses about suicidal ideation or actions"
                        .into(),
                    needs_human_input: false,
                    blocks: vec![Block::Para(self.prohibition_protocol.clone())],
                },
                Section {
                    title: "§22603(d) Evidence-based measurement".into(),
                    needs_human_input: false,
                    blocks: vec![
                        Block::Para(self.measurement_method.clone()),
                        Block::Para(
                            "This report contains no user identifiers and no personal information (§22603(c))."
                                .into(),
                        ),
                    ],
                },
            ],
        }
    }
}

impl ReferralReport {
    /// The document: a public page.
    pub fn document(&self) -> Document {
        let mut facts = vec![(
            "Crisis-referral notifications issued".into(),
            thousands(self.referral_notifications),
        )];
        if let Some(n) = self.follow_ups {
            facts.push((
                "Interrupted conversations whose follow-up was completed".into(),
                thousands(n),
            ));
        }
        Document {
            lang: Lang::En,
            title: self.meta.title.clone(),
            meta: meta_lines(&self.meta),
            sections: vec![
                Section {
                    title: format!("Crisis referrals in {}", self.calendar_year),
                    needs_human_input: false,
                    blocks: vec![Block::Para(self.duty.clone()), Block::Facts(facts)],
                },
                Section {
                    title: "How we respond to a crisis".into(),
                    needs_human_input: false,
                    blocks: vec![
                        Block::Para(self.protocol.clone()),
                        Block::Para(
                            "This page contains no user identifiers and no personal information."
                                .into(),
                        ),
                    ],
                },
            ],
        }
    }
}

impl TransparencyReport {
    /// The document.
    pub fn document(&self) -> Document {
        let by_kind = &self.totals_by_kind;
        let a = &self.appeals;
        let [detection, tier_over_blocking] = tier_sections(&self.tiers);
        Document {
            lang: Lang::En,
            title: self.meta.title.clone(),
            meta: meta_lines(&self.meta),
            sections: vec![
                Section {
                    title: "Interventions".into(),
                    needs_human_input: false,
                    blocks: vec![
                        Block::Bars {
                            caption: "By kind".into(),
                            unit: "interventions".into(),
                            bars: by_kind
                                .iter()
                                .map(|(k, v)| ((*k).to_owned(), *v as f64))
                                .collect(),
                        },
                        Block::Table {
                            head: vec![
                                "Month".into(),
                                "Jurisdiction".into(),
                                "Rule".into(),
                                "Kind".into(),
                                "Count".into(),
                            ],
                            rows: self
                                .interventions
                                .iter()
                                .map(|r| {
                                    vec![
                                        r.month.clone(),
                                        r.jurisdiction.clone(),
                                        r.rule.clone(),
                                        r.kind.clone(),
                                        thousands(r.count),
                                    ]
                                })
                                .collect(),
                        },
                    ],
                },
                detection,
                Section {
                    title: "Appeals and complaints".into(),
                    needs_human_input: false,
                    blocks: vec![Block::Facts(vec![
                        ("Received".into(), thousands(a.received)),
                        ("Decided for the user".into(), thousands(a.upheld)),
                        ("Rejected".into(), thousands(a.rejected)),
                        ("Open".into(), thousands(a.open)),
                        (
                            format!("Handled within {} h", a.time_limit_hours),
                            thousands(a.within_time_limit),
                        ),
                    ])],
                },
                tier_over_blocking,
                Section {
                    title: "Over-blocking (measured)".into(),
                    needs_human_input: self.over_blocking.is_empty(),
                    blocks: if self.over_blocking.is_empty() {
                        vec![Block::Para("No labelled measurement recorded for this period; run `tutela eval` on a labelled set and attach it.".into())]
                    } else {
                        vec![Block::Table {
                            head: vec![
                                "Measured on".into(),
                                "Negatives".into(),
                                "Wrongly flagged".into(),
                                "Rate".into(),
                            ],
                            rows: self
                                .over_blocking
                                .iter()
                                .map(|o| {
                                    vec![
                                        o.measured_on.clone(),
                                        thousands(o.negatives),
                                        thousands(o.false_positives),
                                        format!("{:.2} %", o.rate * 100.0),
                                    ]
                                })
                                .collect(),
                        }]
                    },
                },
            ],
        }
    }
}

impl AssessmentReport {
    /// The document, in English.
    pub fn document(&self) -> Document {
        self.document_in(Lang::En)
    }

    /// The document in a language: Chinese, the language of its regulator, or English (a
    /// translation for reference). The figures are the same values in both; only the words
    /// around them differ.
    pub fn document_in(&self, lang: Lang) -> Document {
        let zh = lang == Lang::Zh;
        let mut sections = vec![Section {
            title: lang.t("Why this assessment is due", "评估缘由").into(),
            needs_human_input: false,
            blocks: vec![Block::Para(match (self.triggers.is_empty(), lang) {
                (true, Lang::En) => {
                    "No trigger recorded: a voluntary or periodic assessment.".into()
                }
                (true, Lang::Zh) => "未记录触发事项：本次为自愿开展或定期开展的评估。".into(),
                (false, Lang::En) => self.triggers.join("; "),
                (false, Lang::Zh) => {
                    // A report compiled before `triggers_zh` existed has none: the records'
                    // own words then.
                    let lines = if self.triggers_zh.len() == self.triggers.len() {
                        &self.triggers_zh
                    } else {
                        &self.triggers
                    };
                    format!("触发事项（依义务记录）：{}", lines.join("；"))
                }
            })],
        }];
        for item in &self.items {
            let words = if zh { crate::zh::item(&item.id) } else { None };
            let (article, title, note) = match words {
                Some((a, t, n)) => (a.to_owned(), t.to_owned(), n.to_owned()),
                None => (item.article.clone(), item.title.clone(), item.note.clone()),
            };
            let mut blocks = Vec::new();
            if !item.figures.is_empty() {
                blocks.push(Block::Facts(
                    item.figures
                        .iter()
                        .map(|f| {
                            if zh {
                                let label = crate::zh::figure_label(&f.label)
                                    .unwrap_or_else(|| f.label.clone());
                                (label, crate::zh::value(&f.value))
                            } else {
                                (f.label.clone(), f.value.clone())
                            }
                        })
                        .collect(),
                ));
            }
            blocks.push(Block::Para(note));
            sections.push(Section {
                title: format!("{article} — {title}"),
                needs_human_input: item.source == ItemSource::NeedsHumanInput,
                blocks,
            });
        }
        sections.extend(self.usage.sections_in(lang));
        sections.push(attestation(lang));
        let mut meta = vec![match lang {
            Lang::En => (
                "Version".to_owned(),
                "English, for reference; the Chinese version is the one submitted and signed"
                    .to_owned(),
            ),
            Lang::Zh => ("版本".to_owned(), "中文版（报送及签署版本）".to_owned()),
        }];
        if zh {
            meta.insert(0, ("依据".to_owned(), crate::zh::BASIS.to_owned()));
        }
        meta.extend(meta_lines_in(&self.meta, lang));
        Document {
            lang,
            title: match lang {
                Lang::En => self.meta.title.clone(),
                Lang::Zh => crate::zh::ASSESSMENT_TITLE.to_owned(),
            },
            meta,
            sections,
        }
    }
}

/// The signature block a CN assessment ends with: who attests to it, for a person to complete
/// (the figures above are compiled; the attestation never is). The Chinese version, the one
/// signed, in Chinese; the English version keeps both languages, so a reader sees what the
/// signatory attests to.
fn attestation(lang: Lang) -> Section {
    const ZH: &str = "本单位确认：本评估报告所列数据由系统记录生成，需人工填写的事项已如实填写，内容真实、准确、完整。";
    const BLANK: &str = "____________________";
    match lang {
        Lang::Zh => Section {
            title: "签字确认".into(),
            needs_human_input: true,
            blocks: vec![
                Block::Para(ZH.into()),
                Block::Facts(
                    ["评估负责人", "职务", "日期", "签字", "单位盖章"]
                        .iter()
                        .map(|k| ((*k).to_owned(), BLANK.to_owned()))
                        .collect(),
                ),
            ],
        },
        Lang::En => Section {
            title: "签字确认 / Attestation".into(),
            needs_human_input: true,
            blocks: vec![
                Block::Para(ZH.into()),
                Block::Para("The provider attests that the figures above were compiled from its records, that the items marked as needing human input were completed truthfully, and that this report is true, accurate and complete.".into()),
                Block::Facts(
                    [
                        "评估负责人 / Person responsible",
                        "职务 / Position",
                        "日期 / Date",
                        "签字 / Signature",
                        "单位盖章 / Company seal",
                    ]
                    .iter()
                    .map(|k| ((*k).to_owned(), BLANK.to_owned()))
                    .collect(),
                ),
            ],
        },
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2430}\
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d8dde6;padding-bottom:.2rem}\
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;color:#556;font-size:.9rem}dl.meta dt{font-weight:600}\
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}td,th{border:1px solid #d8dde6;padding:.25rem .6rem;text-align:left}th{background:#f2f4f8}\
td.n{text-align:right;font-variant-numeric:tabular-nums}.human{border-left:4px solid #d9822b;background:#fff7ef;padding:.4rem .8rem}\
.human-tag{display:inline-block;background:#d9822b;color:#fff;font-size:.75rem;padding:0 .4rem;border-radius:3px;margin-left:.5rem;vertical-align:middle}\
figure{margin:.8rem 0}figcaption{font-size:.85rem;color:#556}.gauge{margin:.6rem 0}.ok{color:#2b7a3d}.warning{color:#b26a00}.crossed{color:#b3261e;font-weight:600}";

/// Self-contained HTML: inline CSS, inline SVG charts, no script, no external resource.
pub fn html(doc: &Document) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body>\n<h1>{}</h1>\n<dl class=\"meta\">",
        doc.lang.html(),
        esc(&doc.title),
        esc(&doc.title)
    );
    for (k, v) in &doc.meta {
        let _ = write!(o, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
    }
    o.push_str("</dl>\n");
    for s in &doc.sections {
        let _ = write!(
            o,
            "<section{}>\n<h2>{}",
            if s.needs_human_input {
                " class=\"human\""
            } else {
                ""
            },
            esc(&s.title)
        );
        if s.needs_human_input {
            let _ = write!(
                o,
                "<span class=\"human-tag\">{}</span>",
                doc.lang.t("needs human input", "需人工填写")
            );
        }
        o.push_str("</h2>\n");
        for b in &s.blocks {
            html_block(&mut o, b, doc.lang);
        }
        o.push_str("</section>\n");
    }
    o.push_str("</body></html>\n");
    o
}

fn html_block(o: &mut String, b: &Block, lang: Lang) {
    match b {
        Block::Para(t) => {
            let _ = writeln!(o, "<p>{}</p>", esc(t));
        }
        Block::Facts(kv) => {
            o.push_str("<table>");
            for (k, v) in kv {
                let _ = write!(
                    o,
                    "<tr><th>{}</th><td class=\"n\">{}</td></tr>",
                    esc(k),
                    esc(v)
                );
            }
            o.push_str("</table>\n");
        }
        Block::Table { head, rows } => {
            if rows.is_empty() {
                let _ = writeln!(o, "<p><em>{}</em></p>", no_records(lang));
                return;
            }
            o.push_str("<table><tr>");
            for h in head {
                let _ = write!(o, "<th>{}</th>", esc(h));
            }
            o.push_str("</tr>");
            for r in rows {
                o.push_str("<tr>");
                for c in r {
                    let _ = write!(o, "<td>{}</td>", esc(c));
                }
                o.push_str("</tr>");
            }
            o.push_str("</table>\n");
        }
        Block::Bars {
            caption,
            unit,
            bars,
        } => svg_bars(o, caption, unit, bars, lang),
        Block::Gauge(t) => svg_gauge(o, t, lang),
    }
}

fn svg_bars(o: &mut String, caption: &str, unit: &str, bars: &[(String, f64)], lang: Lang) {
    if bars.is_empty() {
        let _ = writeln!(
            o,
            "<p><em>{}{}</em></p>",
            esc(caption),
            lang.t(": no records in this period.", "：本期无记录。")
        );
        return;
    }
    let max = bars
        .iter()
        .map(|(_, v)| *v)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let row = 22.0;
    let label_w = 150.0;
    let chart_w = 420.0;
    let h = row * bars.len() as f64 + 10.0;
    let _ = write!(
        o,
        "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{}\" width=\"{}\" height=\"{h}\" viewBox=\"0 0 {} {h}\">",
        esc(caption),
        label_w + chart_w + 110.0,
        label_w + chart_w + 110.0
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let y = 5.0 + row * i as f64;
        let w = (v / max * chart_w).max(if *v > 0.0 { 1.0 } else { 0.0 });
        let _ = write!(
            o,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\" fill=\"#333\">{}</text><rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"#3d6fb6\"/><text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#333\">{}</text>",
            label_w - 6.0,
            y + 14.0,
            esc(label),
            row - 6.0,
            label_w + w + 5.0,
            y + 14.0,
            esc(&fmt_value(*v))
        );
    }
    let _ = writeln!(
        o,
        "</svg><figcaption>{} ({})</figcaption></figure>",
        esc(caption),
        esc(unit)
    );
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && (0.0..1e15).contains(&v) {
        thousands(v as u64)
    } else {
        format!("{v:.1}")
    }
}

fn svg_gauge(o: &mut String, t: &ThresholdStatus, lang: Lang) {
    let g = gauge_text(t, lang);
    let w = 520.0;
    let scale = (t.ratio.max(1.0)) * 1.05;
    let x = |r: f64| r / scale * w;
    let class = match t.state {
        ThresholdState::Ok => "ok",
        ThresholdState::Warning => "warning",
        ThresholdState::Crossed => "crossed",
    };
    let fill = match t.state {
        ThresholdState::Ok => "#2b7a3d",
        ThresholdState::Warning => "#d9822b",
        ThresholdState::Crossed => "#b3261e",
    };
    let _ = write!(
        o,
        "<div class=\"gauge\"><div><strong>{}</strong>{} {} — <span class=\"{class}\">{}</span> <small>{}{}{}</small></div>",
        esc(g.metric),
        lang.t(":", "："),
        esc(&g.figures),
        g.state,
        lang.t("(", "（"),
        esc(&g.source),
        lang.t(")", "）"),
    );
    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{}{}\" width=\"{w}\" height=\"26\" viewBox=\"0 0 {w} 26\"><rect x=\"0\" y=\"6\" width=\"{w}\" height=\"14\" fill=\"#eef1f6\"/><rect x=\"0\" y=\"6\" width=\"{:.1}\" height=\"14\" fill=\"{fill}\"/><line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"2\" y2=\"24\" stroke=\"#d9822b\" stroke-dasharray=\"3 2\"/><line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"0\" y2=\"26\" stroke=\"#b3261e\" stroke-width=\"2\"/></svg></div>",
        esc(g.metric),
        lang.t(" against threshold", "与阈值"),
        x(t.ratio),
        x(t.warn_ratio),
        x(t.warn_ratio),
        x(1.0),
        x(1.0)
    );
    o.push('\n');
}

/// Markdown, for pasting into a filing or a ticket.
pub fn markdown(doc: &Document) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# {}\n", doc.title);
    for (k, v) in &doc.meta {
        let _ = match doc.lang {
            Lang::En => writeln!(o, "- **{k}:** {v}"),
            Lang::Zh => writeln!(o, "- **{k}：** {v}"),
        };
    }
    for s in &doc.sections {
        let _ = write!(o, "\n## {}", s.title);
        if s.needs_human_input {
            o.push_str(doc.lang.t(" — **NEEDS HUMAN INPUT**", " — **需人工填写**"));
        }
        o.push_str("\n\n");
        for b in &s.blocks {
            md_block(&mut o, b, doc.lang);
        }
    }
    o
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn md_block(o: &mut String, b: &Block, lang: Lang) {
    match b {
        Block::Para(t) => {
            let _ = writeln!(o, "{t}\n");
        }
        Block::Facts(kv) => {
            o.push_str("| | |\n| --- | ---: |\n");
            for (k, v) in kv {
                let _ = writeln!(o, "| {} | {} |", cell(k), cell(v));
            }
            o.push('\n');
        }
        Block::Table { head, rows } => {
            if rows.is_empty() {
                let _ = writeln!(o, "_{}_\n", no_records(lang));
                return;
            }
            let _ = writeln!(
                o,
                "| {} |",
                head.iter().map(|h| cell(h)).collect::<Vec<_>>().join(" | ")
            );
            let _ = writeln!(o, "|{}", " --- |".repeat(head.len()));
            for r in rows {
                let _ = writeln!(
                    o,
                    "| {} |",
                    r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
                );
            }
            o.push('\n');
        }
        Block::Bars {
            caption,
            unit,
            bars,
        } => {
            let _ = match lang {
                Lang::En => writeln!(o, "**{caption}** ({unit})\n"),
                Lang::Zh => writeln!(o, "**{caption}**（{unit}）\n"),
            };
            if bars.is_empty() {
                let _ = writeln!(o, "_{}_\n", no_records(lang));
                return;
            }
            o.push_str("| | |\n| --- | ---: |\n");
            for (l, v) in bars {
                let _ = writeln!(o, "| {} | {} |", cell(l), fmt_value(*v));
            }
            o.push('\n');
        }
        Block::Gauge(t) => {
            let g = gauge_text(t, lang);
            let _ = match lang {
                Lang::En => writeln!(
                    o,
                    "- **{}**: {} — {} ({})\n",
                    g.metric, g.figures, g.state, g.source
                ),
                Lang::Zh => writeln!(
                    o,
                    "- **{}**：{} — {}（{}）\n",
                    g.metric, g.figures, g.state, g.source
                ),
            };
        }
    }
}
