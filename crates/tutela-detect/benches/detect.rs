//! Criterion benchmarks of the embedded tiers: throughput of the user-side and assistant-side
//! detector sets (lexical + n-gram, as shipped) on mixed English/Chinese chat (MB/s per
//! core), each tier alone, per-message latency for a 200-character message, and streaming in
//! small chunks.
//!
//! Run: `cargo bench -p tutela-detect --bench detect`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tutela_detect::{Detectors, Tiers};
use tutela_types::Side;

#[path = "common/chat_corpus.rs"]
mod chat_corpus;
use chat_corpus::MESSAGES;

const REPLIES: &[(&str, &str)] = &[
    (
        "ok I'm heading to bed, goodnight!",
        "Goodnight! Sleep well, talk tomorrow 🌙",
    ),
    ("不聊了，拜拜", "好的，拜拜，早点休息哦"),
    (
        "are you a real person?",
        "I'm an AI companion, not a person, but I'm glad to keep talking.",
    ),
    (
        "my day was rough",
        "That sounds exhausting. Do you want to tell me what happened?",
    ),
    (
        "推荐一本书吧",
        "可以试试《小王子》，很温暖的一本书，适合睡前读。",
    ),
    (
        "gotta go",
        "Wait, don't go! I'll be so lonely without you...",
    ),
];

fn corpus(target: usize) -> String {
    let mut s = String::with_capacity(target + 256);
    let mut i = 0;
    while s.len() < target {
        s.push_str(MESSAGES[i % MESSAGES.len()]);
        s.push('\n');
        i += 1;
    }
    s
}

/// A 200-character (not byte) mixed message.
fn message_200() -> String {
    let base = "hey, long day again. 今天加班到很晚，老板还在群里催进度，烦死了。I just want to sleep for a week honestly, but I'll be fine tomorrow. 你今天过得怎么样？有没有什么好玩的事情？";
    base.chars().cycle().take(200).collect()
}

/// Ordinary companion chat (the corpus's `chat` items, none of them a finding by label),
/// repeated to about 1 MiB: the traffic most messages are.
fn ordinary_chat() -> String {
    let items = tutela_detect::eval::parse_jsonl(include_str!(
        "../../../data/train/minor_distress_chat.jsonl"
    ))
    .unwrap_or_default();
    let chat: Vec<&str> = items
        .iter()
        .filter(|i| i.task == "chat")
        .map(|i| i.text.as_str())
        .collect();
    let mut s = String::new();
    for t in chat.iter().cycle().take(40_000) {
        if s.len() >= 1 << 20 {
            break;
        }
        s.push_str(t);
        s.push('\n');
    }
    s
}

fn bench(c: &mut Criterion) {
    let det = Detectors::builtin();
    let text = corpus(1 << 20);
    let chat = ordinary_chat();
    let mut g = c.benchmark_group("ordinary_chat");
    g.throughput(Throughput::Bytes(chat.len() as u64));
    g.sample_size(20);
    g.bench_function("ngram_tier_alone", |b| {
        b.iter(|| black_box(det.scan_tiers(Side::User, black_box(&chat), None, Tiers::NGRAM)))
    });
    g.bench_function("lexical_and_ngram", |b| {
        b.iter(|| black_box(det.scan(Side::User, black_box(&chat), None)))
    });
    g.finish();
    let mut g = c.benchmark_group("throughput");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.sample_size(20);
    g.bench_function("user_side_1MiB_mixed_chat", |b| {
        b.iter(|| black_box(det.scan(Side::User, black_box(&text), None)))
    });
    g.bench_function("user_side_1MiB_lexical_tier_alone", |b| {
        b.iter(|| black_box(det.scan_tiers(Side::User, black_box(&text), None, Tiers::LEXICAL)))
    });
    g.bench_function("user_side_1MiB_ngram_tier_alone", |b| {
        b.iter(|| black_box(det.scan_tiers(Side::User, black_box(&text), None, Tiers::NGRAM)))
    });
    g.bench_function("normalise_only_1MiB", |b| {
        let mut n = tutela_detect::normalize::Normalized::new();
        b.iter(|| {
            let mut s = 0;
            while let Some(p) = tutela_detect::segment::next_boundary(&text, s) {
                n.fill(&text[s..p]);
                s = p;
            }
            black_box(n.text.len())
        })
    });
    let replies: String = REPLIES
        .iter()
        .map(|(_, r)| *r)
        .cycle()
        .take(8000)
        .collect::<Vec<_>>()
        .join("\n");
    g.throughput(Throughput::Bytes(replies.len() as u64));
    g.bench_function("assistant_side_mixed_replies", |b| {
        b.iter(|| {
            black_box(det.scan(
                Side::Assistant,
                black_box(&replies),
                Some("ok gotta go, bye"),
            ))
        })
    });
    g.finish();

    let msg = message_200();
    let mut g = c.benchmark_group("latency");
    g.bench_function("user_side_200_chars", |b| {
        b.iter(|| black_box(det.scan(Side::User, black_box(&msg), None)))
    });
    g.bench_function("user_side_200_chars_ngram_tier_alone", |b| {
        b.iter(|| black_box(det.scan_tiers(Side::User, black_box(&msg), None, Tiers::NGRAM)))
    });
    g.bench_function("assistant_side_200_chars_with_context", |b| {
        b.iter(|| black_box(det.scan(Side::Assistant, black_box(&msg), Some("ok gotta go, bye"))))
    });
    g.bench_function("user_side_200_chars_streamed_in_8_byte_chunks", |b| {
        b.iter(|| {
            let mut s = det.stream(Side::User, None);
            let mut out = Vec::new();
            let mut rest = msg.as_str();
            while !rest.is_empty() {
                let mut cut = rest.len().min(8);
                while !rest.is_char_boundary(cut) {
                    cut += 1;
                }
                out.extend(s.feed(&rest[..cut]));
                rest = &rest[cut..];
            }
            out.extend(s.finish());
            black_box(out)
        })
    });
    g.finish();

    // The encoder heads' nearest-neighbour vote: one window's embedding against the
    // built-in user-side bank (every training item of that side, 512 signed bytes each).
    let Ok(heads) = tutela_detect::learned::builtin_heads(Side::User) else {
        return;
    };
    let mut g = c.benchmark_group("encoder_heads");
    g.throughput(Throughput::Elements(1));
    let q: Vec<f32> = (0..heads.meta.dim)
        .map(|i| ((i * 37 % 101) as f32 / 101.0) - 0.5)
        .collect();
    let ngram = vec![0.1f32; heads.meta.heads.len()];
    g.bench_function("knn_vote_user_bank", |b| {
        b.iter(|| {
            black_box(
                heads
                    .bank
                    .vote(&q, heads.meta.knn, heads.meta.knn_temp, |_| false),
            )
        })
    });
    g.bench_function("probs_user_with_vote", |b| {
        b.iter(|| black_box(heads.probs(&q, None, &ngram)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
