//! The reports regulators ask for, built from records rather than typed by hand.
//!
//! - `assessment`: the CN security assessment (Anthropomorphic Measures Arts. 22–23), with the
//!   items that need a person clearly marked;
//! - `sb243`: the California SB 243 annual report (§22603), with no personal data;
//! - `transparency`: interventions by rule, jurisdiction and month, appeals, over-blocking;
//!   findings, interventions and over-blocking (appeals decided for the user) by detection tier
//!   (lexical, n-gram, encoder, judge) and detector;
//! - `usage`: registered users, monthly active users, thresholds, minutes, age structure;
//! - `referrals`: a state's yearly public page of crisis-referral counts (WA HB 2225, OR SB 1546,
//!   with OR's completed follow-ups), with no personal data.
//!
//! Each report is typed data ([`model`]); JSON is its serialisation and validates against the
//! schema in `docs/schemas/` ([`schema`]); HTML (self-contained, charts as inline SVG) and
//! Markdown are rendered from the same value ([`render`]), and so is PDF ([`pdf`]: written by
//! hand, no PDF crate). Thresholds from the profiles are
//! evaluated by [`evaluate_thresholds`].
//!
//! [`compile`] builds each report from the records, reading only through the `tutela-store`
//! traits.
//!
//! Invariant: no I/O of its own (the store is read through its traits), no clock (the
//! generation time is an input), no async runtime of its own; no user identifier or chat text
//! ever enters a report.

#![deny(missing_docs)]

pub mod compile;
pub mod model;
pub mod pdf;
pub mod render;
mod threshold;
mod tiers;
mod zh;

pub use crate::model::{
    AssessmentReport, ReferralReport, ReportKind, Sb243Report, ThresholdState, ThresholdStatus,
    TransparencyReport, UsageReport,
};
pub use crate::render::Lang;
pub use crate::threshold::evaluate_thresholds;

/// Any report.
#[derive(Clone, Debug, PartialEq)]
pub enum Report {
    /// CN security assessment.
    Assessment(Box<AssessmentReport>),
    /// CA SB 243 annual report.
    Sb243(Sb243Report),
    /// Transparency report.
    Transparency(TransparencyReport),
    /// Usage report.
    Usage(UsageReport),
    /// A state's yearly public referral page.
    Referrals(ReferralReport),
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Self-contained HTML.
    Html,
    /// Markdown.
    Markdown,
    /// JSON (pretty), valid against the kind's schema.
    Json,
}

impl Report {
    /// Which report this is.
    pub fn kind(&self) -> ReportKind {
        match self {
            Report::Assessment(_) => ReportKind::Assessment,
            Report::Sb243(_) => ReportKind::Sb243,
            Report::Transparency(_) => ReportKind::Transparency,
            Report::Usage(_) => ReportKind::Usage,
            Report::Referrals(_) => ReportKind::Referrals,
        }
    }

    /// The report as JSON.
    pub fn json(&self) -> serde_json::Value {
        let v = match self {
            Report::Assessment(r) => serde_json::to_value(r),
            Report::Sb243(r) => serde_json::to_value(r),
            Report::Transparency(r) => serde_json::to_value(r),
            Report::Usage(r) => serde_json::to_value(r),
            Report::Referrals(r) => serde_json::to_value(r),
        };
        // Serialising plain data structs with string keys cannot fail.
        v.unwrap_or(serde_json::Value::Null)
    }

    /// The document model behind HTML and Markdown, in English.
    pub fn document(&self) -> render::Document {
        match self {
            Report::Assessment(r) => r.document(),
            Report::Sb243(r) => r.document(),
            Report::Transparency(r) => r.document(),
            Report::Usage(r) => r.document(),
            Report::Referrals(r) => r.document(),
        }
    }

    /// The languages the report is written in, the language of its regulator first: the CN
    /// assessment in Chinese and in English, every other report in English.
    pub fn languages(&self) -> &'static [Lang] {
        match self {
            Report::Assessment(_) => &[Lang::Zh, Lang::En],
            _ => &[Lang::En],
        }
    }

    /// The document in a language; a language the report is not written in
    /// ([`Report::languages`]) gives the first of them.
    pub fn document_in(&self, lang: Lang) -> render::Document {
        match self {
            Report::Assessment(r) => {
                let lang = if self.languages().contains(&lang) {
                    lang
                } else {
                    Lang::Zh
                };
                r.document_in(lang)
            }
            _ => self.document(),
        }
    }

    /// The report as a PDF file (A4, from the same document as HTML and Markdown), in English.
    pub fn pdf(&self) -> Vec<u8> {
        pdf::pdf(&self.document())
    }

    /// The report as a PDF file in a language (see [`Report::document_in`]).
    pub fn pdf_in(&self, lang: Lang) -> Vec<u8> {
        pdf::pdf(&self.document_in(lang))
    }

    /// Renders the report, in English.
    pub fn render(&self, format: Format) -> String {
        self.render_in(format, Lang::En)
    }

    /// Renders the report in a language (see [`Report::document_in`]; JSON is the data and the
    /// same in every language).
    pub fn render_in(&self, format: Format, lang: Lang) -> String {
        match format {
            Format::Html => render::html(&self.document_in(lang)),
            Format::Markdown => render::markdown(&self.document_in(lang)),
            Format::Json => {
                let mut s = serde_json::to_string_pretty(&self.json()).unwrap_or_default();
                s.push('\n');
                s
            }
        }
    }
}

/// The JSON Schema of a report kind (draft 2020-12), as committed in
/// `docs/schemas/report-<kind>.schema.json`.
pub fn schema(kind: ReportKind) -> serde_json::Value {
    let s = match kind {
        ReportKind::Assessment => schemars::schema_for!(AssessmentReport),
        ReportKind::Sb243 => schemars::schema_for!(Sb243Report),
        ReportKind::Transparency => schemars::schema_for!(TransparencyReport),
        ReportKind::Usage => schemars::schema_for!(UsageReport),
        ReportKind::Referrals => schemars::schema_for!(ReferralReport),
    };
    s.to_value()
}
