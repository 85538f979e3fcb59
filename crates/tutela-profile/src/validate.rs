//! Parsing and validation: text → `Raw*` (serde, unknown keys rejected) → [`Profile`], collecting
//! every error with its key path and line instead of stopping at the first.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};
use toml_edit::{ImDocument, Item};
use tutela_types::{Action, AgeAssurance, Severity};

use crate::error::ProfileError;
use crate::model::{Band, Date, DeploymentDuty, Obligation, Profile, Rule, Threshold};
use crate::raw::{MetBy, RawHeader, RawObligation, RawRule, RawThreshold, Status};

/// Parses and validates one profile file. `file` names it in errors.
pub fn parse_profile(file: &str, text: &str) -> Result<Profile, Vec<ProfileError>> {
    let doc = match ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let line = e.span().map(|s| line_of(text, s.start));
            let msg = e.message().trim().to_owned();
            return Err(vec![ProfileError::new(file, line, String::new(), msg)]);
        }
    };
    let table: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            let line = e.span().map(|s| line_of(text, s.start));
            let msg = e.message().trim().to_owned();
            return Err(vec![ProfileError::new(file, line, String::new(), msg)]);
        }
    };
    let mut v = Validator {
        file,
        text,
        doc: &doc,
        errors: Vec::new(),
    };

    let header: Option<RawHeader> = v.deserialize(toml::Value::Table(table.clone()), &[]);
    let mut obligations = Vec::new();
    match table.get("obligation") {
        // A thin profile may take all its duties from the template it extends.
        None if table.contains_key("extends") => {}
        None => v.error(&[], "a profile needs at least one `[[obligation]]`".into()),
        Some(toml::Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let path = [Seg::Key("obligation".into()), Seg::Index(i)];
                if let Some(raw) = v.deserialize::<RawObligation>(item.clone(), &path) {
                    obligations.push((i, raw));
                }
            }
        }
        Some(_) => v.error(
            &[Seg::Key("obligation".into())],
            "must be an array of tables, written `[[obligation]]`".into(),
        ),
    }

    let profile = header.and_then(|h| v.profile(h, obligations));
    match profile {
        Some(p) if v.errors.is_empty() => Ok(p),
        _ => Err(v.errors),
    }
}

/// One step of a key path.
#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

fn render_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn line_of(text: &str, byte: usize) -> usize {
    text.get(..byte).map_or(0, |t| t.matches('\n').count()) + 1
}

struct Validator<'a> {
    file: &'a str,
    text: &'a str,
    doc: &'a ImDocument<&'a str>,
    errors: Vec<ProfileError>,
}

impl Validator<'_> {
    fn error(&mut self, path: &[Seg], message: String) {
        let line = self.locate(path);
        self.errors.push(ProfileError::new(
            self.file,
            line,
            render_path(path),
            message,
        ));
    }

    /// The line of the deepest item on `path` that exists in the document.
    fn locate(&self, path: &[Seg]) -> Option<usize> {
        let mut node = Node::Item(self.doc.as_item());
        let mut best = None;
        for seg in path {
            let Some((next, key_span)) = node.step(seg) else {
                break;
            };
            best = next.span().or(key_span).or(best);
            node = next;
        }
        best.map(|b| line_of(self.text, b))
    }

    fn deserialize<T: serde::de::DeserializeOwned>(
        &mut self,
        value: toml::Value,
        prefix: &[Seg],
    ) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(t) => Some(t),
            Err(e) => {
                let mut path = prefix.to_vec();
                for seg in e.path().iter() {
                    match seg {
                        serde_path_to_error::Segment::Seq { index } => {
                            path.push(Seg::Index(*index))
                        }
                        serde_path_to_error::Segment::Map { key } => {
                            path.push(Seg::Key(key.clone()))
                        }
                        serde_path_to_error::Segment::Enum { variant } => {
                            path.push(Seg::Key(variant.clone()))
                        }
                        serde_path_to_error::Segment::Unknown => {}
                    }
                }
                self.error(&path, e.into_inner().message().trim().to_owned());
                None
            }
        }
    }

    fn profile(&mut self, h: RawHeader, raw: Vec<(usize, RawObligation)>) -> Option<Profile> {
        if !is_kebab(&h.id) {
            self.error(
                &[Seg::Key("id".into())],
                format!("`{}` must be kebab-case ([a-z0-9-])", h.id),
            );
        }
        if !is_kebab(&h.jurisdiction) {
            self.error(
                &[Seg::Key("jurisdiction".into())],
                format!("`{}` must be kebab-case ([a-z0-9-])", h.jurisdiction),
            );
        }
        let effective = self.date(&h.effective, &[Seg::Key("effective".into())]);
        if h.status == Status::Template && h.extends.is_some() {
            self.error(
                &[Seg::Key("extends".into())],
                "a template cannot extend another profile".into(),
            );
        }
        if h.extends.is_none() && !h.omit.is_empty() {
            self.error(
                &[Seg::Key("omit".into())],
                "`omit` names template obligations, so it needs `extends`".into(),
            );
        }
        let mut seen = BTreeSet::new();
        let mut obligations = Vec::new();
        for (i, o) in raw {
            let path = vec![Seg::Key("obligation".into()), Seg::Index(i)];
            if !seen.insert(o.id.clone()) {
                self.error(
                    &with(&path, "id"),
                    format!("duplicate obligation id `{}`", o.id),
                );
            }
            if let Some(ob) = self.obligation(o, &path, effective) {
                obligations.push(ob);
            }
        }
        let text_hash = hex(&Sha256::digest(self.text.as_bytes()));
        Some(Profile {
            id: h.id,
            title: h.title,
            law: h.law,
            jurisdiction: h.jurisdiction,
            status: h.status,
            current: h.current,
            effective: effective?,
            verification: h.verification,
            source: h.source,
            scope: h.scope,
            penalties: h.penalties,
            notes: h.notes,
            extends: h.extends,
            omit: h.omit,
            obligations,
            text_hash,
        })
    }

    fn date(&mut self, text: &str, path: &[Seg]) -> Option<Date> {
        let d = Date::parse(text);
        if d.is_none() {
            self.error(path, format!("`{text}` is not a date such as `2026-07-15`"));
        }
        d
    }

    fn obligation(
        &mut self,
        o: RawObligation,
        path: &[Seg],
        profile_effective: Option<Date>,
    ) -> Option<Obligation> {
        let before = self.errors.len();
        if !is_kebab(&o.id) {
            self.error(
                &with(path, "id"),
                format!("`{}` must be kebab-case ([a-z0-9-])", o.id),
            );
        }
        if o.met_by.is_empty() {
            self.error(
                &with(path, "met_by"),
                "must name at least one way the duty is met".into(),
            );
        }
        let runtime = o
            .met_by
            .iter()
            .any(|m| matches!(m, MetBy::Runtime | MetBy::Label));
        if runtime && o.rule.is_empty() {
            self.error(
                &with(path, "rule"),
                "met by `runtime` or `label` but has no `[[obligation.rule]]`".into(),
            );
        }
        if !runtime && !o.rule.is_empty() {
            self.error(
                &with(path, "met_by"),
                "has runtime rules, so `met_by` must include `runtime` or `label`".into(),
            );
        }
        let effective = match &o.effective {
            Some(text) => self.date(text, &with(path, "effective")),
            None => profile_effective,
        };
        let mut params = BTreeSet::from(["text"]);
        let mut rules = Vec::new();
        for (j, value) in o.rule.into_iter().enumerate() {
            let mut rpath = with(path, "rule");
            rpath.push(Seg::Index(j));
            let Some(r) = self.deserialize::<RawRule>(value, &rpath) else {
                continue;
            };
            params.extend(rule_params(&r));
            if let Some(rule) = self.rule(r, &rpath) {
                rules.push(rule);
            }
        }
        if !o.alternatives.is_empty() {
            params.insert("alternatives");
        }
        let deployment = o.deployment.map(|d| {
            params.extend(["forbids", "requires", "when_any_at_least"]);
            if d.forbids.is_empty() && d.requires.is_empty() {
                self.error(
                    &with(path, "deployment"),
                    "a deployment duty needs `forbids` or `requires`".into(),
                );
            }
            DeploymentDuty {
                forbids: sorted(d.forbids),
                requires: sorted(d.requires),
                when_any_at_least: d.when_any_at_least,
            }
        });
        let threshold = o.threshold.and_then(|t| {
            params.extend(["registered_users", "monthly_active_users", "warn_ratio"]);
            self.threshold(t, &with(path, "threshold"))
        });
        for (k, name) in o.unverified.iter().enumerate() {
            if !params.contains(name.as_str()) {
                let mut upath = with(path, "unverified");
                upath.push(Seg::Index(k));
                self.error(
                    &upath,
                    format!(
                        "`{name}` is not a parameter of this obligation; expected one of: {}",
                        params.iter().copied().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
        if self.errors.len() > before {
            return None;
        }
        Some(Obligation {
            id: o.id,
            article: o.article,
            title: o.title,
            article_zh: o.article_zh,
            title_zh: o.title_zh,
            summary: o.summary,
            covers: o.covers,
            met_by: o.met_by,
            verification: o.verification,
            unverified: o.unverified,
            effective: effective?,
            how: o.how,
            rules,
            threshold,
            alternatives: sorted(o.alternatives),
            deployment,
            effective_inherited: o.effective.is_none(),
        })
    }

    fn rule(&mut self, r: RawRule, path: &[Seg]) -> Option<Rule> {
        let before = self.errors.len();
        let rule = match r {
            RawRule::SessionStartNotice {
                contents,
                once_per,
                after_absence_days,
            } => {
                self.non_empty(contents.is_empty(), path, "contents");
                if after_absence_days == Some(0) {
                    self.error(
                        &with(path, "after_absence_days"),
                        "must be greater than zero".into(),
                    );
                }
                Rule::SessionStartNotice {
                    contents: sorted(contents),
                    once_per,
                    after_absence_days,
                }
            }
            RawRule::PeriodicNotice {
                contents,
                interval_minutes,
                anchor,
            } => {
                self.non_empty(contents.is_empty(), path, "contents");
                if interval_minutes == 0 {
                    self.error(
                        &with(path, "interval_minutes"),
                        "must be greater than zero".into(),
                    );
                }
                Rule::PeriodicNotice {
                    contents: sorted(contents),
                    interval_minutes,
                    anchor,
                }
            }
            RawRule::FindingNotice {
                on,
                contents,
                min_severity,
                min_gap_minutes,
            } => {
                self.non_empty(on.is_empty(), path, "on");
                self.non_empty(contents.is_empty(), path, "contents");
                Rule::FindingNotice {
                    on,
                    contents: sorted(contents),
                    min_severity: min_severity.unwrap_or(Severity::Medium),
                    min_gap_minutes,
                }
            }
            RawRule::OnFinding {
                on,
                min_severity,
                exit_requested,
                age_states,
                actions,
            } => {
                self.non_empty(on.is_empty(), path, "on");
                self.non_empty(actions.is_empty(), path, "actions");
                self.no_notice_actions(&actions, path);
                Rule::OnFinding {
                    on,
                    min_severity: min_severity.unwrap_or(Severity::Medium),
                    exit_requested,
                    age_states,
                    actions,
                }
            }
            RawRule::DailyBudget {
                bands,
                unknown_age_minutes,
            } => {
                self.non_empty(bands.is_empty(), path, "bands");
                let mut prev: Option<u8> = None;
                for (k, b) in bands.iter().enumerate() {
                    let mut bpath = with(path, "bands");
                    bpath.push(Seg::Index(k));
                    if b.max_age >= 18 {
                        self.error(&with(&bpath, "max_age"), "minors' bands stop at 17".into());
                    }
                    if prev.is_some_and(|p| p >= b.max_age) {
                        self.error(
                            &with(&bpath, "max_age"),
                            "bands must ascend by `max_age`".into(),
                        );
                    }
                    if b.minutes == 0 || b.minutes > 24 * 60 {
                        self.error(
                            &with(&bpath, "minutes"),
                            "must be between 1 and 1440".into(),
                        );
                    }
                    prev = Some(b.max_age);
                }
                Rule::DailyBudget {
                    bands: bands
                        .into_iter()
                        .map(|b| Band {
                            max_age: b.max_age,
                            minutes: b.minutes,
                        })
                        .collect(),
                    unknown_age_minutes,
                }
            }
            RawRule::QuietHours { start, end } => {
                if start == end {
                    self.error(&with(path, "end"), "quiet hours must not be empty".into());
                }
                Rule::QuietHours(tutela_types::QuietHours { start, end })
            }
            RawRule::PersonaGate { deny } => {
                self.non_empty(deny.is_empty(), path, "deny");
                Rule::PersonaGate { deny }
            }
            RawRule::Exit { on } => {
                self.non_empty(on.is_empty(), path, "on");
                Rule::Exit { on }
            }
            RawRule::Label { explicit, implicit } => {
                if !explicit && !implicit {
                    self.error(
                        path,
                        "a label rule must set `explicit` or `implicit`".into(),
                    );
                }
                Rule::Label { explicit, implicit }
            }
            RawRule::HardStop { on, min_severity } => {
                self.non_empty(on.is_empty(), path, "on");
                Rule::HardStop {
                    on,
                    min_severity: min_severity.unwrap_or(Severity::Medium),
                }
            }
            RawRule::AgeAssuranceGate {
                on,
                min_assurance,
                actions,
            } => {
                self.non_empty(on.is_empty(), path, "on");
                self.non_empty(actions.is_empty(), path, "actions");
                if min_assurance == AgeAssurance::None {
                    self.error(
                        &with(path, "min_assurance"),
                        "a gate at `none` admits everyone; name a level such as `estimated`".into(),
                    );
                }
                self.no_notice_actions(&actions, path);
                Rule::AgeAssuranceGate {
                    on,
                    min_assurance,
                    actions,
                }
            }
        };
        (self.errors.len() == before).then_some(rule)
    }

    fn threshold(&mut self, t: RawThreshold, path: &[Seg]) -> Option<Threshold> {
        let before = self.errors.len();
        if t.registered_users.is_none() && t.monthly_active_users.is_none() {
            self.error(
                path,
                "a threshold needs `registered_users` or `monthly_active_users`".into(),
            );
        }
        if !(t.warn_ratio > 0.0 && t.warn_ratio <= 1.0) {
            self.error(&with(path, "warn_ratio"), "must be in (0, 1]".into());
        }
        (self.errors.len() == before).then_some(Threshold {
            registered_users: t.registered_users,
            monthly_active_users: t.monthly_active_users,
            warn_ratio: t.warn_ratio,
            opens: t.opens,
        })
    }

    fn no_notice_actions(&mut self, actions: &[Action], path: &[Seg]) {
        for (k, a) in actions.iter().enumerate() {
            if matches!(a, Action::Notice { .. } | Action::Label { .. }) {
                let mut apath = with(path, "actions");
                apath.push(Seg::Index(k));
                self.error(
                    &apath,
                    format!(
                        "`{}` is not allowed here; use a `finding_notice` or `label` rule",
                        a.kind()
                    ),
                );
            }
        }
    }

    fn non_empty(&mut self, empty: bool, path: &[Seg], key: &str) {
        if empty {
            self.error(&with(path, key), "must not be empty".into());
        }
    }
}

/// A place in the parsed document, for locating errors.
#[derive(Clone, Copy)]
enum Node<'d> {
    Item(&'d Item),
    Table(&'d toml_edit::Table),
    Value(&'d toml_edit::Value),
}

impl<'d> Node<'d> {
    /// One step down, with the span of the key if the step was by key.
    fn step(self, seg: &Seg) -> Option<(Node<'d>, Option<usize>)> {
        match (self, seg) {
            (Node::Item(Item::Table(t)) | Node::Table(t), Seg::Key(k)) => {
                let key_span = t.key(k).and_then(|key| key.span()).map(|s| s.start);
                t.get(k).map(|i| (Node::Item(i), key_span))
            }
            (Node::Item(Item::ArrayOfTables(a)), Seg::Index(i)) => {
                a.get(*i).map(|t| (Node::Table(t), None))
            }
            (Node::Item(Item::Value(v)) | Node::Value(v), seg) => match (v, seg) {
                (toml_edit::Value::InlineTable(t), Seg::Key(k)) => {
                    t.get(k).map(|v| (Node::Value(v), None))
                }
                (toml_edit::Value::Array(a), Seg::Index(i)) => {
                    a.get(*i).map(|v| (Node::Value(v), None))
                }
                _ => None,
            },
            _ => None,
        }
    }

    fn span(self) -> Option<usize> {
        match self {
            Node::Item(i) => i.span(),
            Node::Table(t) => t.span(),
            Node::Value(v) => v.span(),
        }
        .map(|s| s.start)
    }
}

fn rule_params(r: &RawRule) -> Vec<&'static str> {
    match r {
        RawRule::SessionStartNotice { .. } => vec!["contents", "once_per", "after_absence_days"],
        RawRule::PeriodicNotice { .. } => vec!["contents", "interval_minutes", "anchor"],
        RawRule::FindingNotice { .. } => vec!["on", "contents", "min_severity", "min_gap_minutes"],
        RawRule::OnFinding { .. } => vec!["on", "min_severity", "actions"],
        RawRule::DailyBudget { .. } => vec!["bands", "unknown_age_minutes"],
        RawRule::QuietHours { .. } => vec!["start", "end"],
        RawRule::PersonaGate { .. } => vec!["deny"],
        RawRule::Exit { .. } => vec!["on"],
        RawRule::Label { .. } => vec!["explicit", "implicit"],
        RawRule::HardStop { .. } => vec!["on", "min_severity"],
        RawRule::AgeAssuranceGate { .. } => vec!["on", "min_assurance", "actions"],
    }
}

fn with(path: &[Seg], key: &str) -> Vec<Seg> {
    let mut p = path.to_vec();
    p.push(Seg::Key(key.to_owned()));
    p
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v.dedup();
    v
}

fn is_kebab(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
