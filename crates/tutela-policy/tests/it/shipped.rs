//! The shipped profiles parse, the aliases resolve, and the documented figures are in them.

use tutela_profile::{Registry, Rule};

use crate::support::registry;

#[test]
fn shipped_profiles_parse_from_the_directory_too() {
    // The embedded copies and the files on disk are the same texts, so this also fails when a
    // profile file is broken, before any golden case runs.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles");
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let file = entry.unwrap().path().join("profile.toml");
        if file.is_file() {
            sources.push((
                file.display().to_string(),
                std::fs::read_to_string(&file).unwrap(),
            ));
        }
    }
    assert_eq!(
        sources.len(),
        Registry::builtin_sources().len(),
        "a profile directory is not embedded"
    );
    let from_disk = Registry::from_sources(sources).unwrap_or_else(|e| panic!("{e}"));
    let builtin = registry();
    for p in builtin.profiles() {
        let d = from_disk.get(p.id()).unwrap();
        assert_eq!(
            d.text_hash(),
            p.text_hash(),
            "{} embedded copy is stale",
            p.id()
        );
    }
}

#[test]
fn the_eight_required_profiles_exist() {
    let reg = registry();
    for id in [
        "cn-anthropomorphic-2026",
        "cn-anthropomorphic-draft-2025",
        "cn-genai-2023",
        "cn-labeling-2025",
        "us-ca-sb243",
        "us-ny-gbl-art47",
        "eu-ai-act-art50",
        "us-ut-hb452",
    ] {
        assert!(reg.get(id).is_some(), "missing {id}");
    }
}

#[test]
fn aliases_select_current_profiles_and_never_drafts() {
    let reg = registry();
    let cn = reg.select(&["cn"]).unwrap();
    assert_eq!(
        cn.ids(),
        [
            "cn-anthropomorphic-2026",
            "cn-genai-2023",
            "cn-labeling-2025"
        ]
    );
    for (alias, want) in [
        ("us-ca", "us-ca-sb243"),
        ("us-ny", "us-ny-gbl-art47"),
        ("eu", "eu-ai-act-art50"),
        ("us-ut", "us-ut-hb452"),
        ("us-wa", "us-wa-hb2225"),
        ("us-ct", "us-ct-pa26-15"),
        ("us-or", "us-or-sb1546"),
        ("us-ne", "us-ne-lb525"),
        ("us-id", "us-id-s1297"),
        ("us-ia", "us-ia-sf2417"),
        ("us-ga", "us-ga-sb540"),
        ("au", "au-esafety-phase2"),
        ("kr", "kr-ai-basic-act"),
    ] {
        assert_eq!(reg.select(&[alias]).unwrap().ids(), [want]);
    }
    let err = reg.select(&["mars"]).unwrap_err().to_string();
    assert!(
        err.contains("unknown profile or jurisdiction `mars`"),
        "{err}"
    );
    // Same set, same snapshot hash, whatever the order; a different set, a different hash.
    let a = reg.select(&["cn", "us-ca"]).unwrap();
    let b = reg.select(&["us-ca", "cn", "cn-genai-2023"]).unwrap();
    assert_eq!(a.snapshot_hash(), b.snapshot_hash());
    assert_ne!(a.snapshot_hash(), cn.snapshot_hash());
}

#[test]
fn figures_from_the_law_are_in_the_profiles() {
    let reg = registry();
    let interval = |profile: &str, obligation: &str| {
        reg.get(profile)
            .unwrap()
            .obligations()
            .iter()
            .find(|o| o.id == obligation)
            .unwrap()
            .rules
            .iter()
            .find_map(|r| match r {
                Rule::PeriodicNotice {
                    interval_minutes, ..
                } => Some(*interval_minutes),
                _ => None,
            })
            .unwrap()
    };
    assert_eq!(interval("cn-anthropomorphic-2026", "usage-reminder"), 120);
    assert_eq!(interval("us-ny-gbl-art47", "not-human-notice"), 180);
    assert_eq!(interval("us-ca-sb243", "minor-break-reminder"), 180);
    let t = reg.select(&["cn"]).unwrap();
    let thresholds = t.thresholds();
    assert_eq!(thresholds.len(), 1);
    let (_, o, th) = thresholds[0];
    assert_eq!(o.article, "Art. 22(3)");
    assert_eq!(th.registered_users, Some(1_000_000));
    assert_eq!(th.monthly_active_users, Some(100_000));
    assert!((th.warn_ratio - 0.9).abs() < f64::EPSILON);
}

#[test]
fn unverified_figures_are_marked_in_a_field() {
    let reg = registry();
    let cn = reg.get("cn-anthropomorphic-2026").unwrap();
    let budget = cn
        .obligations()
        .iter()
        .find(|o| o.id == "minors-mode-time")
        .unwrap();
    assert_eq!(budget.unverified, ["bands"]);
}

#[test]
fn templates_are_inherited_never_selected() {
    let reg = registry();
    assert!(!reg.aliases().contains_key("us-caisa"));
    let err = reg.select(&["us-caisa-template"]).unwrap_err().to_string();
    assert!(err.contains("unknown profile or jurisdiction"), "{err}");
    let template = reg.get("us-caisa-template").unwrap();
    for id in ["us-ne-lb525", "us-id-s1297", "us-ia-sf2417", "us-ga-sb540"] {
        let p = reg.get(id).unwrap();
        assert_eq!(p.extends(), Some("us-caisa-template"));
        // Every template duty is there (replaced or as written), dated by the state's law.
        for o in template.obligations() {
            let mine = p.obligations().iter().find(|x| x.id == o.id);
            assert!(mine.is_some(), "{id} lacks {}", o.id);
        }
        assert!(p.obligations().iter().all(|o| o.effective == p.effective()));
        // The snapshot covers the template's text as well as the state's.
        assert_ne!(p.text_hash(), template.text_hash());
    }
    // Georgia replaces the minors' cadence (hourly) and drops the persistent alternative.
    let ga = reg.get("us-ga-sb540").unwrap();
    let minors = ga
        .obligations()
        .iter()
        .find(|o| o.id == "minor-ai-disclosure")
        .unwrap();
    assert!(minors.alternatives.is_empty());
}

#[test]
fn figures_of_the_2027_wave_are_in_the_profiles() {
    let reg = registry();
    let interval = |profile: &str, obligation: &str| {
        reg.get(profile)
            .unwrap()
            .obligations()
            .iter()
            .find(|o| o.id == obligation)
            .unwrap()
            .rules
            .iter()
            .find_map(|r| match r {
                Rule::PeriodicNotice {
                    interval_minutes, ..
                } => Some(*interval_minutes),
                _ => None,
            })
            .unwrap()
    };
    assert_eq!(interval("us-wa-hb2225", "ai-disclosure"), 180);
    assert_eq!(interval("us-wa-hb2225", "minor-ai-disclosure"), 60);
    assert_eq!(interval("us-or-sb1546", "minor-break-reminder"), 60);
    assert_eq!(interval("us-ct-pa26-15", "ai-disclosure"), 180);
    assert_eq!(interval("us-ct-pa26-15", "minor-ai-disclosure"), 60);
    assert_eq!(interval("us-ne-lb525", "minor-ai-disclosure"), 180);
    assert_eq!(interval("us-ga-sb540", "minor-ai-disclosure"), 60);
}

#[test]
fn every_new_figure_says_whether_it_is_verified() {
    // A figure from a secondary or uncertain source is named in `unverified` wherever a rule
    // carries a number (interval, assurance level, threshold).
    let reg = registry();
    for id in [
        "us-wa-hb2225",
        "us-ct-pa26-15",
        "us-or-sb1546",
        "us-ga-sb540",
        "us-id-s1297",
        "au-esafety-phase2",
        "kr-ai-basic-act",
    ] {
        for o in reg.get(id).unwrap().obligations() {
            if o.verification == tutela_profile::Verification::Verified {
                continue;
            }
            for r in &o.rules {
                let param = match r {
                    Rule::PeriodicNotice { .. } => "interval_minutes",
                    Rule::AgeAssuranceGate { .. } => "min_assurance",
                    _ => continue,
                };
                assert!(
                    o.unverified.iter().any(|u| u == param),
                    "{id}/{}: `{param}` is not verified but not named in `unverified`",
                    o.id
                );
            }
            if o.deployment
                .as_ref()
                .is_some_and(|d| !d.when_any_at_least.is_empty())
            {
                assert!(o.unverified.iter().any(|u| u == "when_any_at_least"));
            }
        }
    }
}
