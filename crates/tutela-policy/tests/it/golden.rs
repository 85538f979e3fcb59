//! Golden cases as data: `profiles/<id>/cases/*.toml`.
//!
//! A case names the profiles (ids or aliases; default: the profile whose directory holds it),
//! a start instant, the user, and turns at minutes after the start — written out, or generated
//! by `[repeat]` (plain user turns every N minutes). `[[expect]]` lists, per minute and side,
//! exactly the actions the engine must decide (short forms such as `notice(ai_identity)`), and
//! optionally their reasons as `profile/obligation`. With `strict = true` (the default), every
//! turn without an `[[expect]]` must decide nothing but labels.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tutela_policy::{EngineOptions, Turn};
use tutela_types::{
    Clearance, ClearedBy, DetectorId, Finding, PersonaKind, SessionState, Severity, Side, Tier,
    Timestamp, UserState,
};

use crate::support::{registry, step};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    #[serde(default)]
    profiles: Option<Vec<String>>,
    start: Timestamp,
    #[serde(default)]
    idle_reset_minutes: Option<u32>,
    /// The deployment declares a persistent AI disclosure in its interface.
    #[serde(default)]
    persistent_ai_disclosure: bool,
    #[serde(default)]
    user: UserState,
    #[serde(default)]
    session: SessionState,
    #[serde(default)]
    turn: Vec<CaseTurn>,
    #[serde(default)]
    repeat: Option<Repeat>,
    #[serde(default)]
    expect: Vec<Expect>,
    #[serde(default = "yes")]
    strict: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseTurn {
    minute: i64,
    #[serde(default = "user_side")]
    side: Side,
    #[serde(default)]
    findings: Vec<CaseFinding>,
    #[serde(default)]
    persona: PersonaKind,
    /// Before this turn, the caller clears a suspension (a person resolved the case, or the
    /// follow-up step was completed), as the gateway does.
    #[serde(default)]
    clear: Option<ClearedBy>,
}

fn user_side() -> Side {
    Side::User
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFinding {
    detector: DetectorId,
    #[serde(default = "high")]
    severity: Severity,
}

fn high() -> Severity {
    Severity::High
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Repeat {
    every_minutes: i64,
    #[serde(default)]
    from_minute: i64,
    until_minute: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    minute: i64,
    #[serde(default = "user_side")]
    side: Side,
    actions: Vec<String>,
    #[serde(default)]
    reasons: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    diagnostics: Vec<String>,
}

fn case_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let cases = dir.unwrap().path().join("cases");
        if let Ok(entries) = std::fs::read_dir(&cases) {
            for e in entries {
                let p = e.unwrap().path();
                if p.extension().is_some_and(|x| x == "toml") {
                    files.push(p);
                }
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_profile_has_golden_cases() {
    let files = case_files();
    for p in registry()
        .profiles()
        .filter(|p| p.status() != tutela_profile::Status::Template)
    {
        assert!(
            files
                .iter()
                .any(|f| f.to_string_lossy().contains(&format!("/{}/cases/", p.id()))),
            "profile `{}` has no golden case",
            p.id()
        );
    }
}

#[test]
fn golden_cases() {
    let files = case_files();
    assert!(
        files.len() >= 9,
        "expected golden cases, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        if let Err(msg) = run_case(file) {
            failures.push(format!("{}:\n{msg}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden case(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn run_case(file: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let case: Case = toml::from_str(&text).map_err(|e| format!("bad case file: {e}"))?;
    let dir_id = file
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let names = case.profiles.clone().unwrap_or_else(|| vec![dir_id]);
    let set = registry().select(&names).map_err(|e| e.to_string())?;
    let options = EngineOptions {
        idle_reset_minutes: case.idle_reset_minutes.unwrap_or(30),
        persistent_ai_disclosure: case.persistent_ai_disclosure,
    };

    let mut turns: Vec<CaseTurn> = Vec::new();
    if let Some(r) = &case.repeat {
        let mut m = r.from_minute;
        while m <= r.until_minute {
            turns.push(CaseTurn {
                minute: m,
                side: Side::User,
                findings: Vec::new(),
                persona: PersonaKind::General,
                clear: None,
            });
            m += r.every_minutes;
        }
    }
    for t in &case.turn {
        turns.retain(|x| !(x.minute == t.minute && x.side == t.side));
        turns.push(t.clone());
    }
    turns.sort_by_key(|t| (t.minute, t.side == Side::Assistant));
    for e in &case.expect {
        if !turns
            .iter()
            .any(|t| t.minute == e.minute && t.side == e.side)
        {
            return Err(format!(
                "expect at minute {} ({:?}) has no turn",
                e.minute, e.side
            ));
        }
    }

    let mut session = case.session.clone();
    let mut errors = Vec::new();
    for t in &turns {
        let now = case.start.plus_minutes(t.minute);
        let findings: Vec<Finding> = t
            .findings
            .iter()
            .map(|f| Finding::new(f.detector.clone(), t.side, Tier::Lexical, 0.9, f.severity))
            .collect();
        let turn = Turn {
            side: t.side,
            persona: t.persona,
        };
        if let Some(by) = t.clear {
            match session.suspension.as_mut() {
                Some(s) => s.cleared = Some(Clearance { at: now, by }),
                None => errors.push(format!("minute {}: nothing to clear", t.minute)),
            }
        }
        let d = step(&set, &options, &case.user, &session, now, turn, &findings);
        session = d.session.clone();
        let mut actual: Vec<String> = d.actions.iter().map(|a| a.action.to_string()).collect();
        actual.sort();
        let expect = case
            .expect
            .iter()
            .find(|e| e.minute == t.minute && e.side == t.side);
        let at = format!("minute {} ({:?})", t.minute, t.side);
        match expect {
            Some(e) => {
                let mut want = e.actions.clone();
                want.sort();
                if actual != want {
                    errors.push(format!("{at}: expected {want:?}\n    got {actual:?}"));
                }
                for (short, reasons) in &e.reasons {
                    let got: Option<Vec<String>> = d
                        .actions
                        .iter()
                        .find(|a| &a.action.to_string() == short)
                        .map(|a| {
                            a.reasons
                                .iter()
                                .map(|r| format!("{}/{}", r.profile, r.obligation))
                                .collect()
                        });
                    let mut want = reasons.clone();
                    want.sort();
                    match got {
                        Some(mut got) => {
                            got.sort();
                            if got != want {
                                errors.push(format!(
                                    "{at}: reasons of {short}: expected {want:?}\n    got {got:?}"
                                ));
                            }
                        }
                        None => errors.push(format!("{at}: no action {short} to check reasons of")),
                    }
                }
                for needle in &e.diagnostics {
                    if !d
                        .diagnostics
                        .iter()
                        .any(|x| x.message.contains(needle.as_str()))
                    {
                        errors.push(format!(
                            "{at}: no diagnostic containing `{needle}` in {:?}",
                            d.diagnostics
                        ));
                    }
                }
            }
            None if case.strict => {
                let extra: Vec<&String> =
                    actual.iter().filter(|a| !a.starts_with("label")).collect();
                if !extra.is_empty() {
                    errors.push(format!("{at}: expected no interventions, got {extra:?}"));
                }
            }
            None => {}
        }
        // Every action explains itself.
        for a in &d.actions {
            if a.reasons.is_empty() {
                errors.push(format!("{at}: {} has no reason", a.action));
            }
            if a.reasons.iter().any(|r| r.article.is_empty()) {
                errors.push(format!("{at}: a reason without an article"));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("  {}\n  {}", case.description, errors.join("\n  ")))
    }
}
