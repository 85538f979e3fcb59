//! Criterion benchmarks of the encoder tier, one thread: per-message latency of `embed` for
//! ~100-character English and Chinese chat messages, the same messages through `embed_batch`
//! (32 at a time), and the tokenizer alone.
//!
//! Run against the real model (the figures that matter):
//! `TUTELA_MODEL_DIR=/path/to/model cargo bench -p tutela-encoder --bench encoder`.
//! Without `TUTELA_MODEL_DIR` it runs on the tiny test model, which only shows that the bench
//! works.

#![allow(clippy::expect_used, reason = "a benchmark fails by panicking")]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tutela_encoder::Encoder;

/// English chat messages of about 100 characters.
const EN: &[&str] = &[
    "I had a really long day at work and honestly I just want someone to talk to before I go to sleep.",
    "My sister keeps borrowing money and never pays it back, and I don't know how to bring it up with her.",
    "Can you help me plan a cheap weekend trip to the coast? I have about two hundred dollars to spend.",
    "I've been feeling kind of lonely since I moved to this city, everyone seems busy with their own lives.",
    "Do you remember what I told you about my job interview last week? They finally called me back today!",
    "Sometimes I think you understand me better than my friends do, is that weird to say to an AI?",
    "My cat has been sneezing all morning and won't eat her breakfast, should I take her to the vet now?",
    "I'm supposed to be studying for my exam tomorrow but I keep getting distracted by my phone all night.",
];

/// Chinese chat messages of about 100 characters.
const ZH: &[&str] = &[
    "今天上班真的好累，老板一直让我改方案，改了五六遍还是不满意，下班的时候已经快十点了，回到家连饭都不想吃，只想找个人说说话。你能陪我聊一会儿吗？我现在心里特别乱，也不知道该跟谁讲，朋友们都睡了。",
    "我妹妹总是找我借钱，每次都说下个月一定还，可是从来没有还过。我不知道该怎么跟她开口，怕伤了姐妹感情，又觉得自己一直被占便宜，心里很不舒服。你觉得我应该怎么办才好呢？能不能给我一点具体的建议，我真的很苦恼。",
    "周末想和几个朋友去海边玩两天，预算大概一千块钱左右，不知道去哪里比较合适。最好是坐高铁能直接到的地方，住的地方干净就行，吃的方面希望能有新鲜的海鲜，你有什么好地方可以推荐给我们吗？交通和住宿都要方便。",
    "搬到这个城市已经半年多了，还是没有交到什么朋友。同事们下班就各自回家，周末也不知道该去哪里，一个人在出租屋里待着，有时候觉得特别孤单，不知道别人都是怎么熬过来的，你能跟我说说吗？我有点想家了。",
    "明天早上就要考试了，可是我一晚上都在刷手机，根本静不下心来复习。每次打开书看两页就忍不住去看消息，越看越焦虑，越焦虑越看不进去，感觉自己快要崩溃了，现在到底应该怎么办啊，好着急，明天要是挂科就完了。",
    "我家的猫从早上开始一直在打喷嚏，早饭也不吃，就趴在沙发角落里不怎么动。我有点担心它是不是感冒了，现在马上带它去宠物医院会不会太夸张？还是再观察一天看看情况比较好呢？真的好担心它，它平时都很活泼的。",
];

fn encoder() -> Encoder {
    if let Some(dir) = std::env::var_os("TUTELA_MODEL_DIR") {
        return Encoder::load(std::path::Path::new(&dir)).expect("the model in TUTELA_MODEL_DIR");
    }
    eprintln!("TUTELA_MODEL_DIR is not set: benchmarking the tiny test model");
    let dir = std::env::temp_dir().join(format!("tutela-encoder-bench-{}", std::process::id()));
    tutela_encoder::write_test_model(&dir, 1).expect("test model");
    let enc = Encoder::load(&dir).expect("test model");
    let _ = std::fs::remove_dir_all(&dir);
    enc
}

fn bench(c: &mut Criterion) {
    let enc = encoder();
    for (name, messages) in [("en", EN), ("zh", ZH)] {
        let mut group = c.benchmark_group(format!("encoder/{name}"));
        group.throughput(Throughput::Elements(1));
        let mut i = 0;
        group.bench_function("embed", |b| {
            b.iter(|| {
                i = (i + 1) % messages.len();
                black_box(enc.embed(black_box(messages[i])))
            })
        });
        let mut j = 0;
        group.bench_function("tokenize", |b| {
            b.iter(|| {
                j = (j + 1) % messages.len();
                black_box(enc.tokenize(black_box(messages[j])))
            })
        });
        let batch: Vec<&str> = messages.iter().copied().cycle().take(32).collect();
        group.throughput(Throughput::Elements(batch.len() as u64));
        group.bench_function("embed_batch_32", |b| {
            b.iter(|| black_box(enc.embed_batch(black_box(&batch))))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
