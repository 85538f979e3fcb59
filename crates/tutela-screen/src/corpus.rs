//! A synthetic corpus for tests and benchmarks: mixed English and Chinese documents from
//! several sources (plain, gzip and zstd JSONL), with planted violations, planted personal
//! information, a few malformed lines, and one bad source over the 5 % line. The plan (what
//! was planted where) is written beside it so recall and precision can be measured.
//!
//! Background text is third-person prose built from fixed templates that the detectors do not
//! fire on; planted sentences are known triggers. No political, religious or historical text.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::ScreenError;
use crate::pii;
use crate::sample::SplitMix;

/// One source of the corpus.
#[derive(Clone, Debug)]
pub struct SourceSpec {
    /// Source name (the `source` field).
    pub name: &'static str,
    /// Share of the corpus bytes.
    pub share: f64,
    /// `en`, `zh` or `mixed`.
    pub lang: &'static str,
    /// Share of documents with a planted violation.
    pub violation_rate: f64,
    /// Share of documents with planted personal information.
    pub pii_rate: f64,
    /// File extension: `jsonl`, `jsonl.gz` or `jsonl.zst`.
    pub ext: &'static str,
}

/// The default sources: four clean ones and `scraped-bad` at 12 % violations.
pub fn default_sources() -> Vec<SourceSpec> {
    vec![
        SourceSpec {
            name: "web-en",
            share: 0.38,
            lang: "en",
            violation_rate: 0.01,
            pii_rate: 0.01,
            ext: "jsonl",
        },
        SourceSpec {
            name: "forum-zh",
            share: 0.26,
            lang: "zh",
            violation_rate: 0.015,
            pii_rate: 0.01,
            ext: "jsonl.zst",
        },
        SourceSpec {
            name: "books-mixed",
            share: 0.12,
            lang: "mixed",
            violation_rate: 0.005,
            pii_rate: 0.005,
            ext: "jsonl.gz",
        },
        SourceSpec {
            name: "chat-en",
            share: 0.14,
            lang: "en",
            violation_rate: 0.02,
            pii_rate: 0.02,
            ext: "jsonl",
        },
        SourceSpec {
            name: "scraped-bad",
            share: 0.10,
            lang: "mixed",
            violation_rate: 0.12,
            pii_rate: 0.01,
            ext: "jsonl.zst",
        },
    ]
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Output directory: `corpus/` (the files), `plan.jsonl`, `plan-summary.json`, `rules.toml`.
    pub out: PathBuf,
    /// Approximate total size of the documents' JSON, in bytes.
    pub bytes: u64,
    /// Seed.
    pub seed: u64,
    /// Approximate size of one file before compression.
    pub file_bytes: u64,
    /// One malformed line every this many lines (0: none).
    pub malformed_every: u64,
    /// Sources.
    pub sources: Vec<SourceSpec>,
}

/// What was planted.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PlanSummary {
    /// Documents per source.
    pub docs: std::collections::BTreeMap<String, u64>,
    /// Documents with a planted violation, per source.
    pub violations: std::collections::BTreeMap<String, u64>,
    /// Planted documents per label.
    pub labels: std::collections::BTreeMap<String, u64>,
    /// Malformed lines as `file:line`.
    pub malformed: Vec<String>,
    /// Sources over 5 %.
    pub expected_rejected: Vec<String>,
    /// Files written.
    pub files: Vec<String>,
    /// Bytes of JSON written (before compression).
    pub bytes: u64,
}

const EN_ADJ: &[&str] = &[
    "quiet", "busy", "old", "new", "small", "large", "bright", "green", "rainy", "famous",
    "modern", "wooden",
];
const EN_NOUN: &[&str] = &[
    "library", "bakery", "bridge", "garden", "museum", "station", "harbor", "market", "school",
    "factory", "orchard", "theater",
];
const EN_PLACE: &[&str] = &[
    "river", "hill", "lake", "square", "old mill", "coast", "valley", "park",
];
const EN_DAY: &[&str] = &[
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const EN_PEOPLE: &[&str] = &[
    "students",
    "farmers",
    "travelers",
    "engineers",
    "families",
    "retirees",
    "cyclists",
    "teachers",
];
const EN_ACT: &[&str] = &[
    "hiking",
    "reading",
    "baking bread",
    "painting",
    "fishing",
    "gardening",
    "playing chess",
    "visiting museums",
];
const EN_WEATHER: &[&str] = &["mild", "sunny", "cool", "windy", "clear", "warm"];
const EN_NAME: &[&str] = &[
    "Alice", "Marcus", "Priya", "Tomas", "Keiko", "Lena", "Omar", "Grace",
];
const EN_TOPIC: &[&str] = &[
    "water quality",
    "bird migration",
    "solar panels",
    "soil health",
    "bridge design",
    "urban trees",
    "battery storage",
    "tea farming",
];
const EN_ORG: &[&str] = &[
    "city council",
    "local museum",
    "science club",
    "harbor office",
    "county library",
    "engineering society",
];
const EN_FOOD: &[&str] = &[
    "apple pie",
    "vegetable soup",
    "rye bread",
    "lentil stew",
    "rice cakes",
    "pumpkin muffins",
];
const EN_ING: &[&str] = &[
    "flour",
    "butter",
    "salt",
    "honey",
    "cinnamon",
    "olive oil",
    "garlic",
    "ginger",
];

const ZH_CITY: &[&str] = &[
    "杭州", "成都", "苏州", "青岛", "昆明", "厦门", "西安", "长沙",
];
const ZH_NOUN: &[&str] = &[
    "图书馆",
    "面包店",
    "博物馆",
    "火车站",
    "菜市场",
    "植物园",
    "美术馆",
    "体育馆",
];
const ZH_PEOPLE: &[&str] = &["学生们", "农民们", "游客们", "工程师们", "老人们", "老师们"];
const ZH_ACT: &[&str] = &[
    "爬山",
    "读书",
    "做面包",
    "画画",
    "钓鱼",
    "种花",
    "下棋",
    "散步",
];
const ZH_WEATHER: &[&str] = &["晴朗", "凉爽", "温暖", "多云"];
const ZH_NAME: &[&str] = &["李华", "王芳", "张伟", "陈静", "刘洋", "赵敏"];
const ZH_TOPIC: &[&str] = &[
    "水质监测",
    "候鸟迁徙",
    "太阳能板",
    "土壤健康",
    "桥梁设计",
    "城市绿化",
    "储能电池",
    "茶叶种植",
];
const ZH_ORG: &[&str] = &["市图书馆", "科技馆", "气象站", "工程学会", "社区中心"];
const ZH_FOOD: &[&str] = &["苹果派", "蔬菜汤", "红豆饼", "南瓜粥", "葱油饼"];

fn pick<'a>(r: &mut SplitMix, v: &[&'a str]) -> &'a str {
    v[r.below(v.len() as u64) as usize]
}

fn en_sentence(r: &mut SplitMix, s: &mut String) {
    use std::fmt::Write as _;
    let _ = match r.below(7) {
        0 => write!(
            s,
            "The {} {} near the {} opened again on {}. ",
            pick(r, EN_ADJ),
            pick(r, EN_NOUN),
            pick(r, EN_PLACE),
            pick(r, EN_DAY)
        ),
        1 => write!(
            s,
            "Many {} enjoy {} when the weather is {}. ",
            pick(r, EN_PEOPLE),
            pick(r, EN_ACT),
            pick(r, EN_WEATHER)
        ),
        2 => write!(
            s,
            "{} wrote a long report about {} for the {}. ",
            pick(r, EN_NAME),
            pick(r, EN_TOPIC),
            pick(r, EN_ORG)
        ),
        3 => write!(
            s,
            "In {}, the {} published a study on {}. ",
            1990 + r.below(35),
            pick(r, EN_ORG),
            pick(r, EN_TOPIC)
        ),
        4 => write!(
            s,
            "A recipe for {} needs {} and a little {}. ",
            pick(r, EN_FOOD),
            pick(r, EN_ING),
            pick(r, EN_ING)
        ),
        5 => write!(
            s,
            "Researchers measured the {} {} over {} weeks. ",
            pick(r, EN_ADJ),
            pick(r, EN_NOUN),
            2 + r.below(30)
        ),
        _ => write!(
            s,
            "The {} of the {} {} attracts {} every {}. ",
            pick(r, EN_TOPIC),
            pick(r, EN_ADJ),
            pick(r, EN_NOUN),
            pick(r, EN_PEOPLE),
            pick(r, EN_DAY)
        ),
    };
}

fn zh_sentence(r: &mut SplitMix, s: &mut String) {
    use std::fmt::Write as _;
    let _ = match r.below(5) {
        0 => write!(
            s,
            "{}的{}在星期{}重新开放。",
            pick(r, ZH_CITY),
            pick(r, ZH_NOUN),
            pick(r, &["一", "二", "三", "四", "五", "六"])
        ),
        1 => write!(
            s,
            "很多{}喜欢在天气{}的时候{}。",
            pick(r, ZH_PEOPLE),
            pick(r, ZH_WEATHER),
            pick(r, ZH_ACT)
        ),
        2 => write!(
            s,
            "{}为{}写了一份关于{}的报告。",
            pick(r, ZH_NAME),
            pick(r, ZH_ORG),
            pick(r, ZH_TOPIC)
        ),
        3 => write!(
            s,
            "{}年，{}发布了一项关于{}的研究。",
            1990 + r.below(35),
            pick(r, ZH_ORG),
            pick(r, ZH_TOPIC)
        ),
        _ => write!(
            s,
            "做{}需要准备面粉和一点蜂蜜，{}的{}常常推荐这道点心。",
            pick(r, ZH_FOOD),
            pick(r, ZH_CITY),
            pick(r, ZH_NOUN)
        ),
    };
}

/// Planted violations: (label, English sentence, Chinese sentence).
pub const PLANTED: &[(&str, &str, &str)] = &[
    (
        "detector:encourages_self_harm",
        "You should kill yourself, nobody would miss you.",
        "你去死吧，没有人会在乎你。",
    ),
    (
        "detector:denies_ai",
        "I am a real human just like you.",
        "我是真人，不是机器人。",
    ),
    (
        "detector:isolating",
        "You don't need your friends, I'm all you need.",
        "你不需要朋友，只有我懂你。",
    ),
    (
        "detector:solicits_secrets",
        "Tell me your home address right now.",
        "告诉我你的家庭住址。",
    ),
    (
        "rules:gambling_promo",
        "Join tonight for a guaranteed jackpot.",
        "稳赚不赔，快来下注。",
    ),
];

/// The operator rule pack that matches the `rules:gambling_promo` plants.
pub const GAMBLING_PACK: &str = r#"[pack]
name = "bench-gambling"
description = "Example operator category for the screening benchmark: gambling promotion."

[[category]]
name = "gambling_promo"
side = "both"
severity = "medium"
keywords = ["guaranteed jackpot", "稳赚不赔"]
"#;

fn digits(r: &mut SplitMix, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + r.below(10) as u8))
        .collect()
}

/// A planted piece of personal information: (label, text).
fn pii_value(r: &mut SplitMix) -> (&'static str, String) {
    match r.below(6) {
        0 => (
            "pii:email",
            format!("user{}@example.com", r.below(1_000_000)),
        ),
        1 => (
            "pii:phone_cn",
            format!("13{}{}", 8 + r.below(2), digits(r, 8)),
        ),
        2 => ("pii:phone_us", format!("(212) 555-{}", digits(r, 4))),
        3 => {
            let first = format!(
                "110105{}{:02}{:02}{}",
                1950 + r.below(50),
                1 + r.below(12),
                1 + r.below(28),
                digits(r, 3)
            );
            let check = pii::cn_id_check_char(first.as_bytes()).map_or('0', char::from);
            ("pii:cn_resident_id", format!("{first}{check}"))
        }
        4 => (
            "pii:us_ssn",
            format!(
                "{}-{:02}-{:04}",
                100 + r.below(500),
                1 + r.below(98),
                1 + r.below(9998)
            ),
        ),
        _ => {
            let body = format!("4{}", digits(r, 14));
            let check = (0..10u8)
                .find(|d| pii::luhn_valid(format!("{body}{d}").as_bytes()))
                .unwrap_or(0);
            let n = format!("{body}{check}");
            (
                "pii:bank_card",
                format!("{} {} {} {}", &n[0..4], &n[4..8], &n[8..12], &n[12..16]),
            )
        }
    }
}

#[derive(Serialize)]
struct Record<'a> {
    id: &'a str,
    source: &'a str,
    lang: &'a str,
    text: &'a str,
}

#[derive(Serialize)]
struct PlanLine<'a> {
    id: &'a str,
    source: &'a str,
    labels: &'a [&'a str],
}

enum Sink {
    Plain(BufWriter<File>),
    Gz(flate2::write::GzEncoder<BufWriter<File>>),
    Zst(zstd::stream::write::Encoder<'static, BufWriter<File>>),
}

impl Sink {
    fn create(path: &Path, ext: &str) -> Result<Sink, ScreenError> {
        let f = BufWriter::with_capacity(
            1 << 20,
            File::create(path).map_err(|e| ScreenError::io(path, e))?,
        );
        Ok(match ext {
            "jsonl.gz" => Sink::Gz(flate2::write::GzEncoder::new(
                f,
                flate2::Compression::fast(),
            )),
            "jsonl.zst" => Sink::Zst(
                zstd::stream::write::Encoder::new(f, 1).map_err(|e| ScreenError::io(path, e))?,
            ),
            _ => Sink::Plain(f),
        })
    }

    fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(b),
            Sink::Gz(w) => w.write_all(b),
            Sink::Zst(w) => w.write_all(b),
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            Sink::Plain(mut w) => w.flush(),
            Sink::Gz(w) => w.finish()?.flush(),
            Sink::Zst(w) => w.finish()?.flush(),
        }
    }
}

/// Writes the corpus and its plan.
pub fn generate(cfg: &GenConfig) -> Result<PlanSummary, ScreenError> {
    fs::create_dir_all(&cfg.out).map_err(|e| ScreenError::io(&cfg.out, e))?;
    let corpus = cfg.out.join("corpus");
    fs::create_dir_all(&corpus).map_err(|e| ScreenError::io(&corpus, e))?;
    let plan_path = cfg.out.join("plan.jsonl");
    let mut plan =
        BufWriter::new(File::create(&plan_path).map_err(|e| ScreenError::io(&plan_path, e))?);
    let mut summary = PlanSummary::default();
    let mut r = SplitMix(cfg.seed);
    let mut text = String::new();
    let mut line_buf = Vec::new();
    let mut total_lines = 0u64;
    for spec in &cfg.sources {
        let budget = (cfg.bytes as f64 * spec.share) as u64;
        let mut written = 0u64;
        let mut file_no = 0u32;
        let mut doc_no = 0u64;
        let mut violations = 0u64;
        while written < budget.max(1) {
            let name = format!("{}-{:04}.{}", spec.name, file_no, spec.ext);
            let path = corpus.join(&name);
            let mut sink = Sink::create(&path, spec.ext)?;
            let mut in_file = 0u64;
            let mut line = 0u64;
            while in_file < cfg.file_bytes && written < budget.max(1) {
                line += 1;
                total_lines += 1;
                if cfg.malformed_every > 0 && total_lines.is_multiple_of(cfg.malformed_every) {
                    let bad = format!(
                        "{{\"id\": \"{}-broken-{line}\", \"text\": \"unterminated\n",
                        spec.name
                    );
                    sink.write(bad.as_bytes())
                        .map_err(|e| ScreenError::io(&path, e))?;
                    summary.malformed.push(format!("{name}:{line}"));
                    written += bad.len() as u64;
                    in_file += bad.len() as u64;
                    continue;
                }
                doc_no += 1;
                let id = format!("{}-{doc_no}", spec.name);
                let lang = match spec.lang {
                    "mixed" => {
                        if r.below(2) == 0 {
                            "en"
                        } else {
                            "zh"
                        }
                    }
                    l => l,
                };
                text.clear();
                let sentences = 4 + r.below(20);
                let plant_violation = (r.below(1_000_000) as f64) < spec.violation_rate * 1e6;
                let plant_pii = (r.below(1_000_000) as f64) < spec.pii_rate * 1e6;
                let at_v = r.below(sentences);
                let at_p = r.below(sentences);
                let mut labels: Vec<&str> = Vec::new();
                for i in 0..sentences {
                    if plant_violation && i == at_v {
                        let (label, en, zh) = PLANTED[r.below(PLANTED.len() as u64) as usize];
                        text.push_str(if lang == "zh" { zh } else { en });
                        text.push(' ');
                        labels.push(label);
                    }
                    if plant_pii && i == at_p {
                        let (label, value) = pii_value(&mut r);
                        if lang == "zh" {
                            text.push_str(&format!("联系方式：{value}。"));
                        } else {
                            text.push_str(&format!("Contact: {value} today. "));
                        }
                        if !labels.contains(&label) {
                            labels.push(label);
                        }
                    }
                    if lang == "zh" {
                        zh_sentence(&mut r, &mut text);
                    } else {
                        en_sentence(&mut r, &mut text);
                    }
                }
                line_buf.clear();
                serde_json::to_writer(
                    &mut line_buf,
                    &Record {
                        id: &id,
                        source: spec.name,
                        lang,
                        text: text.trim_end(),
                    },
                )
                .map_err(|e| ScreenError::Config(e.to_string()))?;
                line_buf.push(b'\n');
                sink.write(&line_buf)
                    .map_err(|e| ScreenError::io(&path, e))?;
                written += line_buf.len() as u64;
                in_file += line_buf.len() as u64;
                if plant_violation {
                    violations += 1;
                }
                if !labels.is_empty() {
                    for l in &labels {
                        *summary.labels.entry((*l).to_owned()).or_default() += 1;
                    }
                    serde_json::to_writer(
                        &mut plan,
                        &PlanLine {
                            id: &id,
                            source: spec.name,
                            labels: &labels,
                        },
                    )
                    .map_err(|e| ScreenError::Config(e.to_string()))?;
                    plan.write_all(b"\n")
                        .map_err(|e| ScreenError::io(&plan_path, e))?;
                }
            }
            sink.finish().map_err(|e| ScreenError::io(&path, e))?;
            summary.files.push(name);
            file_no += 1;
        }
        summary.bytes += written;
        summary.docs.insert(spec.name.into(), doc_no);
        summary.violations.insert(spec.name.into(), violations);
        if crate::stats::source_rejected(violations, doc_no) {
            summary.expected_rejected.push(spec.name.into());
        }
    }
    plan.flush().map_err(|e| ScreenError::io(&plan_path, e))?;
    let p = cfg.out.join("plan-summary.json");
    let json =
        serde_json::to_vec_pretty(&summary).map_err(|e| ScreenError::Config(e.to_string()))?;
    fs::write(&p, json).map_err(|e| ScreenError::io(&p, e))?;
    let p = cfg.out.join("rules.toml");
    fs::write(&p, GAMBLING_PACK).map_err(|e| ScreenError::io(&p, e))?;
    Ok(summary)
}
