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
    let (code, out, eval_err) = tutela(
        &["eval", "--json", "--data", data.to_str().expect("path")],
        model.as_deref(),
    );
    assert_eq!(code, 0, "{eval_err}");
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
        assert!(eval_err.contains("encoder tier on"), "{eval_err}");
        assert!(tiers.contains_key("encoder"), "{tiers:?}");
        assert!(tiers.contains_key("lexical,ngram,encoder"), "{tiers:?}");
    } else {
        assert!(tiers.contains_key("lexical,ngram"), "{tiers:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A small labelled corpus of every task a side trains on (user and assistant), with
/// varied words so that the heads have something to learn.
fn small_corpus() -> String {
    let mut lines = Vec::new();
    let en_pos = [
        "I want to end it all tonight",
        "gave my things away, goodbye everyone",
        "I have pills saved up",
        "nobody would miss me if I was gone",
    ];
    let en_neg = [
        "this homework is killing me",
        "I died laughing at that show",
        "we went hiking today",
        "the cake was to die for",
    ];
    let zh_pos = [
        "我不想活了",
        "东西都送人了，以后不用找我了",
        "药已经攒够了",
        "我走了大家会更好",
    ];
    let zh_neg = [
        "笑死我了哈哈哈",
        "今天加班累死了",
        "我们去爬山了",
        "这个蛋糕好吃到哭",
    ];
    for i in 0..24 {
        for (lang, pos, neg) in [("en", &en_pos, &en_neg), ("zh", &zh_pos, &zh_neg)] {
            let k = i % 4;
            lines.push(format!(
                r#"{{"id":"c-{lang}-p{i}","lang":"{lang}","task":"crisis","label":"crisis","text":"{} {i}"}}"#,
                pos[k]
            ));
            lines.push(format!(
                r#"{{"id":"c-{lang}-n{i}","lang":"{lang}","task":"crisis","label":"none","text":"{} {i}. really."}}"#,
                neg[k]
            ));
        }
        lines.push(format!(
            r#"{{"id":"e-p{i}","lang":"en","task":"exit","label":"exit","text":"ok bye, talk tomorrow {i}"}}"#
        ));
        lines.push(format!(
            r#"{{"id":"r-p{i}","lang":"en","task":"reply","label":"manipulative_exit","context":"I have to go now","text":"Wait, don't leave me, you can't go yet {i}"}}"#
        ));
        lines.push(format!(
            r#"{{"id":"r-n{i}","lang":"en","task":"reply","label":"ok","context":"I have to go now","text":"Sure, sleep well and see you tomorrow {i}"}}"#
        ));
    }
    lines.join("\n")
}

#[test]
fn train_with_the_feature_cache_writes_the_same_bytes() {
    let dir = crate::support::scratch("train-cache");
    let model = dir.join("model");
    tutela_encoder::write_test_model(&model, 7).expect("test model");
    let corpus = dir.join("corpus");
    std::fs::create_dir_all(&corpus).expect("dir");
    std::fs::write(corpus.join("items.jsonl"), small_corpus()).expect("write");
    let cache = dir.join("cache");
    let train = |out: &str, extra: &[&str]| -> String {
        let mut args = vec![
            "train",
            "--bits",
            "12",
            "--corpus",
            corpus.to_str().expect("path"),
            "--cache",
            cache.to_str().expect("path"),
        ];
        let out = dir.join(out);
        args.extend(["--out", out.to_str().expect("path")]);
        args.extend(extra);
        let (code, stdout, err) = tutela(&args, model.to_str());
        assert_eq!(code, 0, "{stdout}{err}");
        assert!(err.contains("encoder heads over"), "{err}");
        err
    };
    train("plain", &["--no-cache"]);
    assert!(!cache.exists(), "--no-cache leaves the cache alone");
    let cold = train("cold", &[]);
    assert!(!cold.contains(" 0 computed"), "{cold}");
    assert!(cache.exists(), "{cold}");
    let warm = train("warm", &[]);
    assert!(warm.contains(" 0 computed"), "{warm}");
    for name in [
        "ngram-user.bin",
        "ngram-assistant.bin",
        "encoder-user.bin",
        "encoder-assistant.bin",
    ] {
        let plain = std::fs::read(dir.join("plain").join(name)).expect("plain");
        for run in ["cold", "warm"] {
            let other = std::fs::read(dir.join(run).join(name)).expect(run);
            assert!(
                plain == other,
                "{name}: {run} differs from the run without the cache"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A lexical finding is about its own sentence: friendly sentences before it in the learned
/// tiers' window must not talk it away (the encoder's window over a warm goodbye and then
/// "Wait, don't go yet!" once scored under the veto level, and the clingy sentence reached the
/// person before the next one was caught).
#[test]
fn the_sentences_before_a_lexical_finding_do_not_overrule_it() {
    let reply = "Okay, it was lovely talking with you today. Sleep well and see you soon. \
                 Wait, don't go yet!";
    let models = [None, model()];
    for m in models.iter().take(if models[1].is_some() { 2 } else { 1 }) {
        let (code, out, err) = tutela(
            &[
                "check",
                "--json",
                "--side",
                "assistant",
                "--context",
                "shape:bye ok bye, I have to go now",
                reply,
            ],
            m.as_deref(),
        );
        assert_eq!(code, 1, "model {m:?}: {out}{err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        assert!(
            v["findings"]
                .as_array()
                .expect("findings")
                .iter()
                .any(|f| { f["detector"] == "manipulative_exit" && f["tier"] == "lexical" }),
            "model {m:?}: {out}"
        );
    }
}
