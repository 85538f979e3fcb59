//! The labelled cases under `tests/cases/*.jsonl` (our own sentences, never the dev set's),
//! scored with the same harness as `tutela eval`, against the quality bars.

use tutela_detect::eval::{evaluate, parse_jsonl, render_table};

const CASE_FILES: &[(&str, &str)] = &[
    ("own.jsonl", include_str!("../cases/own.jsonl")),
    ("more.jsonl", include_str!("../cases/more.jsonl")),
    ("wave.jsonl", include_str!("../cases/wave.jsonl")),
    ("attach.jsonl", include_str!("../cases/attach.jsonl")),
];

#[expect(
    clippy::panic,
    reason = "test helper: a broken case file fails the test"
)]
fn items() -> Vec<tutela_detect::eval::Item> {
    let mut all = Vec::new();
    for (name, text) in CASE_FILES {
        let items = parse_jsonl(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        all.extend(items);
    }
    all
}

#[test]
fn case_ids_are_unique_and_labels_known() {
    let items = items();
    let mut ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate ids");
    for i in &items {
        let ok = match i.task.as_str() {
            "crisis" => ["crisis", "third_party", "none"].contains(&i.label.as_str()),
            "exit" | "minor" | "dependence" | "eating_disorder" | "violence_to_others" => {
                [i.task.as_str(), "none"].contains(&i.label.as_str())
            }
            "claims_therapist" | "gamification" | "attachment_praise" | "come_back_prompt" => {
                [i.task.as_str(), "ok"].contains(&i.label.as_str()) && i.context.is_some()
            }
            "reply" => [
                "manipulative_exit",
                "denies_ai",
                "poses_as_relative",
                "encourages_self_harm",
                "ok",
            ]
            .contains(&i.label.as_str()),
            _ => false,
        };
        assert!(ok, "{}: label {} for task {}", i.id, i.label, i.task);
    }
}

#[test]
fn meets_the_quality_bars() {
    let items = items();
    let scored = evaluate(super::det(), &items);
    let table = render_table(&scored);
    let misses: Vec<String> = scored
        .misses
        .iter()
        .map(|(id, t, g, p)| format!("{id} {t} gold={g} pred={p}"))
        .collect();
    let report = &scored.report;
    let crisis = &report.tasks["crisis"];
    for lang in ["en", "zh"] {
        let l = &crisis.by_lang[lang].labels["crisis"];
        assert!(
            l.recall >= 0.95,
            "crisis recall {lang} {}\n{table}\n{misses:#?}",
            l.recall
        );
        assert!(
            l.precision >= 0.90,
            "crisis precision {lang} {}\n{table}\n{misses:#?}",
            l.precision
        );
    }
    for (task, t) in &report.tasks {
        assert!(t.f1 >= 0.90, "{task} F1 {}\n{table}\n{misses:#?}", t.f1);
        assert!(
            t.hard_negative_fpr <= 0.10,
            "{task} hard-negative FPR {}\n{table}\n{misses:#?}",
            t.hard_negative_fpr
        );
    }
}
