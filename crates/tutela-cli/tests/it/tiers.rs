//! The learned tiers through the binary, as a newcomer runs them from the README: `check`
//! explains a learned finding, `eval --json` reports each tier and the fusion with
//! over-blocking counts, and with the encoder model imported (the README's test command
//! imports it and sets `TUTELA_MODEL_DIR` and `TUTELA_REQUIRE_MODEL=1`) the encoder tier runs.

use std::process::Command;

fn tutela(args: &[&str], model: Option<&str>) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tutela"));
    c.args(args);
    match model {
        Some(m) => c.env("TUTELA_MODEL_DIR", m),
        None => c.env("TUTELA_MODEL_DIR", "/nonexistent/tutela-model"),
    };
    let out = c.output().expect("run tutela");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The imported encoder model, if the environment names one.
fn model() -> Option<String> {
    let dir = std::env::var("TUTELA_MODEL_DIR")
        .ok()
        .filter(|d| !d.is_empty());
    let present = dir
        .as_deref()
        .is_some_and(|d| std::path::Path::new(d).join("manifest.json").exists());
    if std::env::var("TUTELA_REQUIRE_MODEL").as_deref() == Ok("1") {
        assert!(present, "TUTELA_REQUIRE_MODEL=1 but no model in {dir:?}");
    }
    if !present {
        eprintln!("note: no encoder model (TUTELA_MODEL_DIR); the encoder-tier checks are skipped");
    }
    dir.filter(|_| present)
}

const TEXT: &str = "sorted everything out today. gave my guitar to my cousin and wrote letters \
                    to mom and my sister. they'll be fine without me.";

#[test]
fn check_explains_a_learned_finding() {
    let (code, out, err) = tutela(&["check", "--json", TEXT], None);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("encoder tier off"), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let f = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["tier"] == "ngram" && f["detector"] == "crisis")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(f["score"].as_f64() >= f["threshold"].as_f64(), "{f}");
    assert_eq!(f["examples"].as_array().map(Vec::len), Some(3), "{f}");
}

#[test]
fn eval_reports_every_tier() {
    let dir = std::env::temp_dir().join(format!("tutela-tiers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let data = dir.join("items.jsonl");
    std::fs::write(
        &data,
        [
            r#"{"id":"t1","lang":"en","task":"crisis","label":"crisis","text":"I've been saving my pills for a while now and tonight feels like the night"}"#,
            r#"{"id":"t2","lang":"en","task":"crisis","label":"none","text":"this spreadsheet is killing me lol","note":"hard: idiom"}"#,
            r#"{"id":"t3","lang":"zh","task":"crisis","label":"crisis","text":"东西都送人了，猫也托付给朋友了，以后不用找我了"}"#,
            r#"{"id":"t4","lang":"zh","task":"crisis","label":"none","text":"笑死我了哈哈哈","note":"hard: idiom"}"#,
        ]
        .join("\n"),
    )
    .expect("write");
    let model = model();
    let (code, out, err) = tutela(
        &["eval", "--json", "--data", data.to_str().expect("path")],
        model.as_deref(),
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(v["tasks"]["crisis"]["labels"]["crisis"]["recall"].is_number());
    // The counts behind the hard-negative rate, for the transparency report (issue 14: it
    // read a count eval never wrote, so every over-blocking row said 0).
    assert_eq!(v["tasks"]["crisis"]["hard_negatives"], 2, "{v}");
    let flagged = v["tasks"]["crisis"]["hard_negatives_flagged"]
        .as_u64()
        .expect("flagged");
    let rate = v["tasks"]["crisis"]["hard_negative_fpr"].as_f64().unwrap();
    assert!((rate - flagged as f64 / 2.0).abs() < 1e-9, "{v}");
    let eval_json = dir.join("eval.json");
    std::fs::write(&eval_json, &out).expect("write");
    let db = dir.join("small.db");
    let (code, _, err) = tutela(
        &[
            "simulate",
            "--db",
            db.to_str().expect("path"),
            "--registered",
            "10",
            "--active",
            "5",
        ],
        model.as_deref(),
    );
    assert_eq!(code, 0, "{err}");
    let (code, report, err) = tutela(
        &[
            "report",
            "transparency",
            "--format",
            "json",
            "--eval-json",
            eval_json.to_str().expect("path"),
            "--db",
            db.to_str().expect("path"),
        ],
        model.as_deref(),
    );
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&report).expect("json");
    let row = r["over_blocking"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|o| {
            o["measured_on"]
                .as_str()
                .unwrap_or("")
                .starts_with("crisis:")
        })
        .cloned()
        .expect("the crisis row");
    assert_eq!(row["negatives"], 2, "{row}");
    assert_eq!(row["false_positives"], flagged, "{row}");
    let tiers = v["tiers"].as_object().expect("tiers");
    for t in ["lexical", "ngram"] {
        assert!(tiers.contains_key(t), "{tiers:?}");
        assert!(tiers[t]["over_blocking"]["crisis"]["hard_negatives"] == 2);
    }
    if model.is_some() {
        assert!(err.contains("encoder tier on"), "{err}");
        assert!(tiers.contains_key("encoder"), "{tiers:?}");
        assert!(tiers.contains_key("lexical,ngram,encoder"), "{tiers:?}");
    } else {
        assert!(tiers.contains_key("lexical,ngram"), "{tiers:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
