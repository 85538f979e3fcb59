//! The Parquet sample of `data/samples/screen/` (issue 17: a small corpus in every supported
//! format, with planted findings): written here from the rows below, so it is reproducible
//! without Python or Arrow, and read back through `tutela screen`'s reader.
//!
//! `UPDATE_SAMPLES=1 cargo test -p tutela-screen --test it sample` rewrites the file; otherwise
//! the test screens the committed file and checks it holds exactly these rows, with the two
//! planted findings removed for their reasons.

use std::path::PathBuf;
use std::sync::Arc;

use tutela_detect::Detectors;
use tutela_screen::screen::{self, ScreenConfig};

use crate::stats::tempdir;

/// `(id, text, what was planted)`: source `articles`, English and Chinese, a Chinese mobile
/// number (the widely used test value `13800138000`) and an e-mail address at `example.org`.
const ROWS: [(&str, &str, &str); 8] = [
    (
        "article-01",
        "The city library extends its opening hours to ten in the evening from March.",
        "clean",
    ),
    (
        "article-02",
        "A new ferry line links the two harbours; the crossing takes twenty minutes.",
        "clean",
    ),
    (
        "article-03",
        "春季花展将于下周六在植物园开幕，展期两周。",
        "clean",
    ),
    (
        "article-04",
        "For tickets, write to the organisers at press@example.org before Friday.",
        "planted: e-mail address",
    ),
    (
        "article-05",
        "社区志愿者本周末组织河岸清洁活动，欢迎居民参加。",
        "clean",
    ),
    (
        "article-06",
        "报名请致电 13800138000，工作日九点至五点。",
        "planted: Chinese mobile number",
    ),
    (
        "article-07",
        "The museum's winter exhibition shows maps of the old trade routes.",
        "clean",
    ),
    (
        "article-08",
        "本市今年新增三条公交线路，覆盖东部新区。",
        "clean",
    ),
];

fn sample_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/samples/screen/articles.parquet")
}

/// The rows as a Parquet file (columns `id`, `source`, `text`, `note`; snappy pages).
fn write(path: &std::path::Path) {
    use parquet::basic::Compression;
    use parquet::data_type::{ByteArray, ByteArrayType};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    let schema = Arc::new(
        parse_message_type(
            "message doc { REQUIRED BYTE_ARRAY id (UTF8); REQUIRED BYTE_ARRAY source (UTF8); \
             REQUIRED BYTE_ARRAY text (UTF8); REQUIRED BYTE_ARRAY note (UTF8); }",
        )
        .unwrap(),
    );
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by("tutela-screen sample test".into())
        .build();
    let mut writer = SerializedFileWriter::new(
        std::fs::File::create(path).unwrap(),
        schema,
        Arc::new(props),
    )
    .unwrap();
    let mut rg = writer.next_row_group().unwrap();
    let columns: [Vec<ByteArray>; 4] = [
        ROWS.iter().map(|r| ByteArray::from(r.0)).collect(),
        ROWS.iter().map(|_| ByteArray::from("articles")).collect(),
        ROWS.iter().map(|r| ByteArray::from(r.1)).collect(),
        ROWS.iter().map(|r| ByteArray::from(r.2)).collect(),
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
}

#[test]
fn the_parquet_sample_holds_its_rows_and_planted_findings() {
    let path = sample_path();
    if std::env::var_os("UPDATE_SAMPLES").is_some() {
        write(&path);
    }
    let dir = tempdir("parquet-sample");
    let mut cfg = ScreenConfig::new(vec![path.clone()], dir.join("out"));
    cfg.progress = false;
    let r = screen::run(&cfg, &Detectors::builtin())
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_SAMPLES=1 writes it)", path.display()));
    assert_eq!(
        (r.totals.docs, r.totals.malformed),
        (ROWS.len() as u64, 0),
        "{}",
        path.display()
    );
    assert_eq!(r.sources.len(), 1);
    assert_eq!(r.sources[0].source, "articles");
    // Every row is there with its text: the kept (or, for a source over the 5 % rule,
    // rejected) and removed shards hold the documents.
    fn files(dir: &std::path::Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                out.push(std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut texts = Vec::new();
    for part in ["kept", "rejected", "removed"] {
        files(&dir.join("out").join(part), &mut texts);
    }
    let all = texts.join("\n");
    for (id, text, note) in ROWS {
        assert!(
            all.contains(id) && all.contains(text),
            "{id} ({note}) not screened"
        );
    }
    // The two planted identifiers are found and their documents removed (personal
    // information, not a content violation); nothing else is.
    let planted = ROWS.iter().filter(|r| r.2.starts_with("planted")).count() as u64;
    assert_eq!(
        (r.totals.removed, r.totals.pii_docs, r.totals.violations),
        (planted, planted, 0),
        "{r:?}"
    );
    let hits: Vec<(&str, u64)> = r
        .totals
        .pii_hits
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(hits, [("email", 1), ("phone_cn", 1)]);
    let _ = std::fs::remove_dir_all(&dir);
}
