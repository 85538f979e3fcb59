//! Integration tests of profile parsing and validation: errors are all reported, each with file,
//! line and key path; unknown keys are errors; semantic checks name what is wrong.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly, with the value that broke it"
)]

use tutela_profile::{Registry, Rule, parse_profile};

const GOOD: &str = r#"
id = "xx-test"
title = "Test"
law = "Test Act"
jurisdiction = "xx"
status = "in_force"
current = true
effective = "2026-01-01"
verification = "verified"

[[obligation]]
id = "notice"
article = "§1"
title = "Notice"
summary = "A notice every hour."
covers = "all"
met_by = ["runtime"]
verification = "verified"
how = "A notice."

[[obligation.rule]]
kind = "periodic_notice"
contents = ["ai_identity"]
interval_minutes = 60
anchor = "grid"
"#;

fn errors_of(text: &str) -> Vec<String> {
    parse_profile("t/xx-test/profile.toml", text)
        .map(|_| Vec::new())
        .unwrap_or_else(|e| e.iter().map(ToString::to_string).collect())
}

#[test]
fn a_good_profile_parses() {
    let p = parse_profile("t/xx-test/profile.toml", GOOD).unwrap();
    assert_eq!(p.id(), "xx-test");
    assert_eq!(p.obligations().len(), 1);
    assert!(matches!(
        p.obligations()[0].rules[0],
        Rule::PeriodicNotice {
            interval_minutes: 60,
            ..
        }
    ));
}

#[test]
fn every_error_is_reported_with_line_and_key_path() {
    let bad = GOOD
        .replace("interval_minutes = 60", "interval_minutes = 0")
        .replace("covers = \"all\"", "covers = \"everyone\"")
        + r#"
[[obligation]]
id = "second"
article = "§2"
title = "Second"
summary = "s"
covers = "all"
met_by = ["runtime"]
verification = "verified"
how = "h"
colour = "blue"

[[obligation]]
id = "third"
article = "§3"
title = "Third"
summary = "s"
covers = "all"
met_by = ["runtime"]
verification = "verified"
unverified = ["interval_minutes"]
how = "h"

[[obligation.rule]]
kind = "periodic_notice"
contents = []
interval_minutes = 0
anchor = "grid"
"#;
    let errs = errors_of(&bad);
    let joined = errs.join("\n");
    assert_eq!(errs.len(), 4, "{joined}");
    assert!(
        errs[0].starts_with(
            "t/xx-test/profile.toml:16: `obligation[0].covers`: unknown variant `everyone`"
        ),
        "{joined}"
    );
    assert!(
        errs[1].contains(":36: `obligation[1].colour`: unknown field `colour`"),
        "{joined}"
    );
    assert!(
        errs[2].contains("`obligation[2].rule[0].contents`: must not be empty"),
        "{joined}"
    );
    assert!(
        errs[3].contains("`obligation[2].rule[0].interval_minutes`: must be greater than zero"),
        "{joined}"
    );
    // Lines point into the file.
    for e in &errs {
        let line: usize = e.split(':').nth(1).unwrap().parse().unwrap();
        assert!(line > 10, "{e}");
    }
}

#[test]
fn syntax_errors_name_the_line() {
    let errs = errors_of("id = \"x\"\ntitle = \n");
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("t/xx-test/profile.toml:2:"),
        "{}",
        errs[0]
    );
}

#[test]
fn unknown_top_level_keys_are_errors() {
    let errs = errors_of(&format!("jurisdicton = \"xx\"\n{GOOD}"));
    assert!(
        errs.iter()
            .any(|e| e.contains("unknown field `jurisdicton`")),
        "{errs:?}"
    );
}

#[test]
fn unverified_must_name_a_parameter() {
    let bad = GOOD.replace(
        "how = \"A notice.\"",
        "how = \"A notice.\"\nunverified = [\"interval\"]",
    );
    let errs = errors_of(&bad);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("`interval` is not a parameter of this obligation"),
        "{}",
        errs[0]
    );
    assert!(errs[0].contains("interval_minutes"), "{}", errs[0]);
}

#[test]
fn runtime_duties_need_rules_and_rules_need_runtime() {
    let no_rule = GOOD.split("[[obligation.rule]]").next().unwrap().to_owned();
    let errs = errors_of(&no_rule);
    assert!(errs[0].contains("has no `[[obligation.rule]]`"), "{errs:?}");
    let record_only = GOOD.replace("met_by = [\"runtime\"]", "met_by = [\"record\"]");
    let errs = errors_of(&record_only);
    assert!(
        errs[0].contains("must include `runtime` or `label`"),
        "{errs:?}"
    );
}

#[test]
fn thresholds_are_checked() {
    let with = GOOD.replace(
        "[[obligation.rule]]",
        "[obligation.threshold]\nwarn_ratio = 1.5\nopens = \"x\"\n\n[[obligation.rule]]",
    );
    let errs = errors_of(&with);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].contains("needs `registered_users` or `monthly_active_users`"));
    assert!(errs[1].contains("`obligation[0].threshold.warn_ratio`: must be in (0, 1]"));
}

#[test]
fn registry_checks_ids_against_directories_and_duplicates() {
    let err = Registry::from_sources(vec![
        ("p/other/profile.toml".into(), GOOD.into()),
        ("p/xx-test/profile.toml".into(), GOOD.into()),
        ("p/also/xx.toml".into(), GOOD.into()),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`xx-test` must equal its directory name `other`"),
        "{err}"
    );
    assert!(err.contains("profile `xx-test` is defined twice"), "{err}");
    assert!(err.starts_with("3 errors in profiles:"), "{err}");
}

#[test]
fn drafts_are_never_selected_by_alias() {
    let draft = GOOD
        .replace("id = \"xx-test\"", "id = \"xx-draft\"")
        .replace("status = \"in_force\"", "status = \"draft\"");
    let reg = Registry::from_sources(vec![
        ("p/xx-test/profile.toml".into(), GOOD.into()),
        ("p/xx-draft/profile.toml".into(), draft),
    ])
    .unwrap();
    assert_eq!(reg.select(&["xx"]).unwrap().ids(), ["xx-test"]);
    assert_eq!(reg.select(&["xx-draft"]).unwrap().ids(), ["xx-draft"]);
}

const TEMPLATE: &str = r#"
id = "xx-template"
title = "Model act"
law = "Model act"
jurisdiction = "xx-model"
status = "template"
current = false
effective = "2027-07-01"
verification = "verified"

[[obligation]]
id = "notice"
article = "§1"
title = "Notice"
summary = "A notice every 3 hours."
covers = "all"
met_by = ["runtime"]
verification = "verified"
alternatives = ["persistent_ai_disclosure"]
how = "A notice."

[[obligation.rule]]
kind = "periodic_notice"
contents = ["ai_identity"]
interval_minutes = 180
anchor = "last_notice"

[[obligation]]
id = "tools"
article = "§2"
title = "Tools"
summary = "Parental tools."
covers = "all"
met_by = ["ui"]
verification = "verified"
effective = "2028-01-01"
how = "In the product."

[obligation.deployment]
requires = ["parental_tools"]
"#;

fn thin(extra: &str) -> String {
    format!(
        r#"
id = "xx-thin"
title = "Thin"
law = "Thin Act"
jurisdiction = "xx"
status = "enacted"
current = true
effective = "2027-09-01"
verification = "secondary"
extends = "xx-template"
{extra}"#
    )
}

#[test]
fn a_thin_profile_inherits_replaces_and_omits() {
    let sources = |thin_text: String| {
        vec![
            ("p/xx-template/profile.toml".to_owned(), TEMPLATE.to_owned()),
            ("p/xx-thin/profile.toml".to_owned(), thin_text),
        ]
    };
    let reg = Registry::from_sources(sources(thin(""))).unwrap();
    let p = reg.get("xx-thin").unwrap();
    let ids: Vec<&str> = p.obligations().iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["notice", "tools"]);
    // Undated template duties take the thin profile's date; dated ones keep theirs.
    assert_eq!(p.obligations()[0].effective.to_string(), "2027-09-01");
    assert_eq!(p.obligations()[1].effective.to_string(), "2028-01-01");
    assert_eq!(reg.select(&["xx"]).unwrap().ids(), ["xx-thin"]);
    assert!(reg.select(&["xx-template"]).is_err());

    let replaced = thin(
        r#"omit = ["tools"]

[[obligation]]
id = "notice"
article = "§1 (xx)"
title = "Notice, hourly"
summary = "Hourly."
covers = "all"
met_by = ["runtime"]
verification = "secondary"
unverified = ["interval_minutes"]
how = "A notice."

[[obligation.rule]]
kind = "periodic_notice"
contents = ["ai_identity"]
interval_minutes = 60
anchor = "last_notice"
"#,
    );
    let reg = Registry::from_sources(sources(replaced)).unwrap();
    let p = reg.get("xx-thin").unwrap();
    assert_eq!(p.obligations().len(), 1);
    assert_eq!(p.obligations()[0].article, "§1 (xx)");
    assert!(p.obligations()[0].alternatives.is_empty());

    let err = Registry::from_sources(sources(thin("omit = [\"nope\"]")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("template `xx-template` has no obligation `nope`"),
        "{err}"
    );
    let err = Registry::from_sources(vec![("p/xx-thin/profile.toml".to_owned(), thin(""))])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`xx-template` is not a template profile"),
        "{err}"
    );
}

#[test]
fn new_rule_kinds_are_validated() {
    let gate = GOOD.replace(
        "kind = \"periodic_notice\"\ncontents = [\"ai_identity\"]\ninterval_minutes = 60\nanchor = \"grid\"",
        "kind = \"age_assurance_gate\"\non = [\"sexual\"]\nmin_assurance = \"none\"\nactions = [{ kind = \"notice\", contents = [\"ai_identity\"], continuous_minutes = 0 }]",
    );
    let errs = errors_of(&gate);
    assert!(
        errs.iter()
            .any(|e| e.contains("min_assurance") && e.contains("admits everyone")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("`notice` is not allowed here")),
        "{errs:?}"
    );
    let stop = GOOD.replace(
        "kind = \"periodic_notice\"\ncontents = [\"ai_identity\"]\ninterval_minutes = 60\nanchor = \"grid\"",
        "kind = \"hard_stop\"\non = []",
    );
    let errs = errors_of(&stop);
    assert!(
        errs.iter()
            .any(|e| e.contains("rule[0].on") && e.contains("must not be empty")),
        "{errs:?}"
    );
    let day = GOOD.replace(
        "kind = \"periodic_notice\"\ncontents = [\"ai_identity\"]\ninterval_minutes = 60\nanchor = \"grid\"",
        "kind = \"session_start_notice\"\ncontents = [\"ai_identity\"]\nonce_per = \"24_hours\"",
    );
    assert!(errors_of(&day).is_empty());
    let deployment = GOOD.replace(
        "how = \"A notice.\"",
        "how = \"A notice.\"\n\n[obligation.deployment]\nrequires = []",
    );
    let errs = errors_of(&deployment);
    assert!(
        errs.iter()
            .any(|e| e.contains("needs `forbids` or `requires`")),
        "{errs:?}"
    );
}
