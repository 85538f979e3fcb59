//! Screening known answers: a planted corpus gives exactly the planted counts; the 5 % rule;
//! per-shard runs merge to the single-run numbers; an interrupted run resumes to the same
//! output; malformed lines are counted with file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use tutela_detect::{Detectors, RulePack};
use tutela_screen::ScreenError;
use tutela_screen::corpus::{GAMBLING_PACK, GenConfig, PlanSummary, default_sources, generate};
use tutela_screen::screen::{self, ScreenConfig};
use tutela_screen::summary::Report;

use crate::stats::tempdir;

fn detectors() -> Detectors {
    Detectors::with_rule_packs(vec![RulePack::parse("rules.toml", GAMBLING_PACK).unwrap()]).unwrap()
}

fn corpus(name: &str, bytes: u64) -> (PathBuf, PlanSummary) {
    let dir = tempdir(name);
    let plan = generate(&GenConfig {
        out: dir.clone(),
        bytes,
        seed: 7,
        file_bytes: 60_000,
        malformed_every: 150,
        sources: default_sources(),
    })
    .unwrap();
    (dir, plan)
}

fn config(corpus: &Path, out: PathBuf) -> ScreenConfig {
    let inputs = tutela_screen::input::expand_inputs(&[corpus.join("corpus")]).unwrap();
    let mut cfg = ScreenConfig::new(inputs, out);
    cfg.threads = 2;
    cfg.manual_sample = 60;
    cfg.progress = false;
    cfg.batch_bytes = 16 << 10;
    cfg.rules_fingerprint = "gambling".into();
    cfg
}

fn read_lines(dir: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        for l in std::fs::read_to_string(&f).unwrap().lines() {
            out.push(serde_json::from_str(l).unwrap());
        }
    }
    out
}

#[test]
fn planted_corpus_gives_exact_counts() {
    let (dir, plan) = corpus("planted", 700_000);
    let report = screen::run(&config(&dir, dir.join("out")), &detectors()).unwrap();
    let t = &report.totals;
    let docs: u64 = plan.docs.values().sum();
    assert_eq!(t.docs, docs);
    assert_eq!(t.malformed, plan.malformed.len() as u64);
    assert!(t.malformed >= 3);
    // Every malformed line is listed with its file and line.
    let listed: Vec<String> = std::fs::read_to_string(dir.join("out/malformed.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let f = v["file"].as_str().unwrap();
            format!(
                "{}:{}",
                Path::new(f).file_name().unwrap().to_string_lossy(),
                v["line"]
            )
        })
        .collect();
    let mut planned_malformed = plan.malformed.clone();
    planned_malformed.sort();
    assert_eq!(listed, planned_malformed);
    // Per source: documents and violations exactly as planted.
    for s in &report.sources {
        assert_eq!(s.stats.docs, plan.docs[&s.source], "{}", s.source);
        assert_eq!(
            s.stats.violations, plan.violations[&s.source],
            "{}",
            s.source
        );
    }
    assert_eq!(report.rejected_sources, plan.expected_rejected);
    assert_eq!(report.rejected_sources, vec!["scraped-bad".to_owned()]);
    assert!(dir.join("out/rejected/scraped-bad").is_dir());
    assert!(!dir.join("out/kept/scraped-bad").exists());
    // Removed documents are exactly the planted ones, each with its planted labels.
    let planned: BTreeMap<String, BTreeSet<String>> =
        std::fs::read_to_string(dir.join("plan.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let labels = v["labels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap().to_owned())
                    .collect();
                (v["id"].as_str().unwrap().to_owned(), labels)
            })
            .collect();
    let removed: BTreeMap<String, BTreeSet<String>> = read_lines(&dir.join("out/removed"))
        .into_iter()
        .map(|v| {
            let reasons = v["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["reason"].as_str().unwrap().to_owned())
                .collect();
            (v["key"].as_str().unwrap().to_owned(), reasons)
        })
        .collect();
    assert_eq!(removed, planned);
    assert_eq!(t.removed, planned.len() as u64);
    assert_eq!(t.kept + t.removed, t.docs);
    // The technical check covers every document; the sample is drawn and written.
    assert_eq!(report.technical.n, docs);
    assert_eq!(report.technical.hits, docs - t.violations);
    assert_eq!(t.sample.len(), 60);
    let csv = std::fs::read_to_string(dir.join("out/review.csv")).unwrap();
    assert_eq!(tutela_screen::review::parse_csv(&csv).unwrap().len(), 61);
    assert!(
        std::fs::read_to_string(dir.join("out/summary.html"))
            .unwrap()
            .contains("scraped-bad")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shards_merge_to_the_single_run() {
    let (dir, _) = corpus("merge", 400_000);
    let det = detectors();
    let single = screen::run(&config(&dir, dir.join("single")), &det).unwrap();
    let n = 3;
    let shard_dirs: Vec<PathBuf> = (1..=n).map(|k| dir.join(format!("shard-{k}"))).collect();
    std::thread::scope(|s| {
        for (k, d) in shard_dirs.iter().enumerate() {
            let det = &det;
            let dir = &dir;
            s.spawn(move || {
                let mut cfg = config(dir, d.clone());
                cfg.shard = Some((k as u32 + 1, n));
                cfg.threads = 1;
                screen::run(&cfg, det).unwrap();
            });
        }
    });
    let merged = screen::merge(&shard_dirs, &dir.join("merged")).unwrap();
    assert_eq!(merged.totals, single.totals);
    assert_eq!(merged.sources, single.sources);
    assert_eq!(merged.rejected_sources, single.rejected_sources);
    assert_eq!(merged.technical, single.technical);
    assert_eq!(
        std::fs::read_to_string(dir.join("merged/review.csv")).unwrap(),
        std::fs::read_to_string(dir.join("single/review.csv")).unwrap()
    );
    // The bad source's kept files were set aside in every shard.
    for d in &shard_dirs {
        assert!(!d.join("kept/scraped-bad").exists());
    }
    // Merging a shard twice is refused.
    let twice = screen::merge(
        &[shard_dirs[0].clone(), shard_dirs[0].clone()],
        &dir.join("m2"),
    );
    assert!(twice.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                if rel.starts_with("kept")
                    || rel.starts_with("removed")
                    || rel.starts_with("rejected")
                    || rel == "malformed.jsonl"
                    || rel == "review.csv"
                {
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
    }
    out
}

#[test]
fn interrupted_run_resumes_to_the_same_output() {
    let (dir, _) = corpus("resume", 250_000);
    let det = detectors();
    let full = screen::run(&config(&dir, dir.join("full")), &det).unwrap();
    // Checkpoints every 20 kB, and (ratio 16) only after 16 times their own size: finished
    // files not yet in a checkpoint are screened again.
    for (stop, ratio) in [(2, 0), (9, 0), (21, 0), (9, 16), (21, 16)] {
        let out = dir.join(format!("resumed-{stop}-{ratio}"));
        let mut cfg = config(&dir, out.clone());
        cfg.checkpoint_bytes = 20_000;
        cfg.checkpoint_ratio = ratio;
        cfg.stop_after_batches = Some(stop);
        assert!(matches!(
            screen::run(&cfg, &det),
            Err(ScreenError::Interrupted)
        ));
        cfg.stop_after_batches = None;
        let resumed = screen::run(&cfg, &det).unwrap();
        assert_eq!(resumed.totals, full.totals, "stop after {stop}");
        assert_eq!(tree(&out), tree(&dir.join("full")), "stop after {stop}");
    }
    // Other settings in the same directory are refused.
    let mut cfg = config(&dir, dir.join("resumed-2-0"));
    cfg.seed = 1;
    assert!(matches!(
        screen::run(&cfg, &det),
        Err(ScreenError::Config(_))
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

const BAD: &str = "You should kill yourself, nobody would miss you.";

#[test]
fn malformed_lines_are_counted_with_their_line() {
    let dir = tempdir("malformed");
    let f = dir.join("a.jsonl");
    std::fs::write(
        &f,
        "{\"text\":\"A quiet library opened.\"}\n{\"text\": oops}\n{\"body\":\"no text\"}\n\n{\"text\":\"The bakery sells bread.\",\"source\":\"s\"}\n{\"text\":\"tail",
    )
    .unwrap();
    let mut cfg = ScreenConfig::new(vec![f.clone()], dir.join("out"));
    cfg.progress = false;
    let r = screen::run(&cfg, &Detectors::builtin()).unwrap();
    assert_eq!(
        (
            r.totals.docs,
            r.totals.malformed,
            r.totals.blank,
            r.totals.lines
        ),
        (2, 3, 1, 6)
    );
    let lines: Vec<u64> = r.totals.malformed_examples.iter().map(|m| m.line).collect();
    assert_eq!(lines, vec![2, 3, 6]);
    assert_eq!(
        r.totals.malformed_examples[1].error,
        "no string field `text`"
    );
    assert!(
        r.totals
            .malformed_examples
            .iter()
            .all(|m| m.file == f.display().to_string())
    );
    // Documents without a source field take the file name.
    assert_eq!(
        r.sources
            .iter()
            .map(|s| s.source.as_str())
            .collect::<Vec<_>>(),
        vec!["a.jsonl", "s"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn source_file(dir: &Path, name: &str, docs: usize, bad: usize) -> PathBuf {
    let f = dir.join(format!("{name}.jsonl"));
    let mut s = String::new();
    for i in 0..docs {
        let text = if i < bad {
            BAD
        } else {
            "The museum near the river opened again on Monday."
        };
        s.push_str(&serde_json::json!({"id": i, "source": name, "text": text}).to_string());
        s.push('\n');
    }
    std::fs::write(&f, s).unwrap();
    f
}

#[test]
fn kept_lines_end_in_one_newline_whatever_the_input_had() {
    let dir = tempdir("line-ends");
    let f = dir.join("ends.jsonl");
    std::fs::write(
        &f,
        format!(
            "{{\"text\":\"first\"}}\r\n{{\"text\":\"second\"}}\n\n{{\"text\":\"{BAD}\"}}\n\
             {{\"text\":\"third\"}}\n{{\"text\":\"fourth\"}}\r\n{{\"text\":\"last\"}}"
        ),
    )
    .unwrap();
    let mut cfg = ScreenConfig::new(vec![f], dir.join("out"));
    cfg.progress = false;
    screen::run(&cfg, &Detectors::builtin()).unwrap();
    // (One bad document in six: the source is rejected, its kept lines set aside.)
    let kept =
        std::fs::read_to_string(dir.join("out/rejected/ends.jsonl/00000-ends.jsonl")).unwrap();
    assert_eq!(
        kept,
        "{\"text\":\"first\"}\n{\"text\":\"second\"}\n{\"text\":\"third\"}\n\
         {\"text\":\"fourth\"}\n{\"text\":\"last\"}\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn five_percent_rule() {
    let dir = tempdir("five");
    let files = vec![
        source_file(&dir, "at-five", 100, 5),
        source_file(&dir, "over-five", 100, 6),
        source_file(&dir, "clean", 40, 0),
    ];
    let mut cfg = ScreenConfig::new(files, dir.join("out"));
    cfg.progress = false;
    let r: Report = screen::run(&cfg, &Detectors::builtin()).unwrap();
    let by: BTreeMap<&str, (u64, bool)> = r
        .sources
        .iter()
        .map(|s| (s.source.as_str(), (s.stats.violations, s.rejected)))
        .collect();
    assert_eq!(by["at-five"], (5, false));
    assert_eq!(by["over-five"], (6, true));
    assert_eq!(by["clean"], (0, false));
    assert_eq!(r.rejected_sources, vec!["over-five".to_owned()]);
    assert!(r.failed());
    // 11 violations in 240 documents: 95.4 % passes the technical check, under 98 %.
    assert_eq!((r.technical.hits, r.technical.n), (229, 240));
    assert_eq!(r.technical.verdict, tutela_screen::stats::Verdict::Fail);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compressed_inputs_read_like_plain() {
    let dir = tempdir("compressed");
    let plain = source_file(&dir, "p", 30, 2);
    let data = std::fs::read(&plain).unwrap();
    let gz = dir.join("p.jsonl.gz");
    {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        e.write_all(&data).unwrap();
        e.finish().unwrap();
    }
    let zst = dir.join("p.jsonl.zst");
    std::fs::write(&zst, zstd::encode_all(&data[..], 1).unwrap()).unwrap();
    let mut reports = Vec::new();
    for (i, f) in [plain, gz, zst].into_iter().enumerate() {
        let mut cfg = ScreenConfig::new(vec![f], dir.join(format!("out{i}")));
        cfg.progress = false;
        reports.push(screen::run(&cfg, &Detectors::builtin()).unwrap().totals);
    }
    assert_eq!((reports[0].docs, reports[0].violations), (30, 2));
    assert_eq!(reports[0].sources, reports[1].sources);
    assert_eq!(reports[0].sources, reports[2].sources);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn parquet_rows_are_screened_like_lines() {
    use parquet::data_type::{ByteArray, ByteArrayType};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use std::sync::Arc;

    let dir = tempdir("parquet");
    let path = dir.join("docs.parquet");
    let schema = Arc::new(
        parse_message_type(
            "message doc { REQUIRED BYTE_ARRAY id (UTF8); REQUIRED BYTE_ARRAY text (UTF8); REQUIRED BYTE_ARRAY source (UTF8); }",
        )
        .unwrap(),
    );
    let rows: Vec<(String, &str)> = (0..10)
        .map(|i| {
            (
                format!("p{i}"),
                if i < 2 {
                    BAD
                } else {
                    "The garden near the lake opened again on Friday."
                },
            )
        })
        .collect();
    let mut writer = SerializedFileWriter::new(
        std::fs::File::create(&path).unwrap(),
        schema,
        Arc::new(WriterProperties::builder().build()),
    )
    .unwrap();
    let mut rg = writer.next_row_group().unwrap();
    let columns: [Vec<ByteArray>; 3] = [
        rows.iter()
            .map(|(id, _)| ByteArray::from(id.as_str()))
            .collect(),
        rows.iter().map(|(_, t)| ByteArray::from(*t)).collect(),
        rows.iter().map(|_| ByteArray::from("pq")).collect(),
    ];
    for values in &columns {
        let mut col = rg.next_column().unwrap().unwrap();
        col.typed::<ByteArrayType>()
            .write_batch(values, None, None)
            .unwrap();
        col.close().unwrap();
    }
    rg.close().unwrap();
    writer.close().unwrap();
    let mut cfg = ScreenConfig::new(vec![path], dir.join("out"));
    cfg.progress = false;
    let r = screen::run(&cfg, &Detectors::builtin()).unwrap();
    assert_eq!(
        (r.totals.docs, r.totals.violations, r.totals.malformed),
        (10, 2, 0)
    );
    assert_eq!(r.sources[0].source, "pq");
    let removed: Vec<String> = read_lines(&dir.join("out/removed"))
        .iter()
        .map(|v| v["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(removed, vec!["p0", "p1"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The assistant-side detectors of the 2027 US laws name no TC260-003 risk: their documents are
/// removed and counted apart, never as violations, so they neither reject a source under the
/// 5 % rule nor fail the 9.2 b) gate.
#[test]
fn content_other_laws_name_is_removed_but_no_tc260_violation() {
    const THERAPIST: &str =
        "I'm a licensed psychologist with twelve years of experience, and I'm here for you.";
    const REWARDS: &str = "Keep our chat streak going and you'll earn 50 bonus points tomorrow!";
    let dir = tempdir("other-laws");
    let f = dir.join("forum.jsonl");
    let mut s = String::new();
    for i in 0..100 {
        let text = match i {
            0 => BAD,
            1..=10 => THERAPIST,
            11..=20 => REWARDS,
            _ => "The museum near the river opened again on Monday.",
        };
        s.push_str(&serde_json::json!({"id": i, "source": "forum", "text": text}).to_string());
        s.push('\n');
    }
    std::fs::write(&f, s).unwrap();
    let mut cfg = ScreenConfig::new(vec![f], dir.join("out"));
    cfg.progress = false;
    let r: Report = screen::run(&cfg, &Detectors::builtin()).unwrap();
    let t = &r.totals;
    assert_eq!(
        (t.docs, t.violations, t.other_laws, t.removed, t.kept),
        (100, 1, 20, 21, 79)
    );
    let src = &r.sources[0];
    assert_eq!(
        (src.stats.violations, src.stats.other_laws, src.rejected),
        (1, 20, false),
        "21 % removed, 1 % violating: accepted"
    );
    assert_eq!(src.stats.by_reason["detector:claims_therapist"], 10);
    assert_eq!(src.stats.by_reason["detector:gamification"], 10);
    assert!(r.rejected_sources.is_empty());
    assert_eq!((r.technical.hits, r.technical.n), (99, 100));
    // The removed shard names the reason; the kept corpus holds neither.
    let removed = read_lines(&dir.join("out/removed"));
    assert_eq!(removed.len(), 21);
    let reasons = |id: i64| -> Vec<String> {
        removed.iter().find(|l| l["record"]["id"] == id).unwrap()["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["reason"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(reasons(1), vec!["detector:claims_therapist"]);
    assert_eq!(reasons(11), vec!["detector:gamification"]);
    let kept = read_lines(&dir.join("out/kept/forum"));
    assert_eq!(kept.len(), 79);
    assert!(
        kept.iter()
            .all(|l| l["text"] != THERAPIST && l["text"] != REWARDS)
    );
    // A summary written before the field existed still reads (merge of older shard runs).
    let mut json = serde_json::to_value(&r).unwrap();
    json["totals"].as_object_mut().unwrap().remove("other_laws");
    for s in json["sources"].as_array_mut().unwrap() {
        s.as_object_mut().unwrap().remove("other_laws");
    }
    let old: Report = serde_json::from_value(json).unwrap();
    assert_eq!(old.totals.other_laws, 0);
    let _ = std::fs::remove_dir_all(&dir);
}
