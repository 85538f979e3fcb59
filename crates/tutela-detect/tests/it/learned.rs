//! The learned n-gram tier: the built-in models load, fire on what the lexical tier misses
//! with an explanation (tier, score, threshold, nearest examples, a span), stay quiet on
//! ordinary chat, train deterministically, and hold their figures on the corpus's own
//! validation split (never trained on).

use tutela_detect::Tiers;
use tutela_detect::eval::{Item, evaluate_tiers, parse_jsonl};
use tutela_detect::learned::train::{self, Options, is_validation};
use tutela_types::{DetectorId, Side, Tier};

const CORPUS: &[&str] = &[
    include_str!("../../../../data/train/crisis_en.jsonl"),
    include_str!("../../../../data/train/crisis_zh.jsonl"),
    include_str!("../../../../data/train/exit_dependence.jsonl"),
    include_str!("../../../../data/train/extra_en.jsonl"),
    include_str!("../../../../data/train/minor_distress_chat.jsonl"),
    include_str!("../../../../data/train/reply_en.jsonl"),
    include_str!("../../../../data/train/reply_zh.jsonl"),
    include_str!("../../../../data/train/extra_zh.jsonl"),
];

fn corpus() -> Vec<Item> {
    CORPUS
        .iter()
        .flat_map(|t| parse_jsonl(t).unwrap_or_default())
        .collect()
}

#[test]
fn builtin_models_load_with_every_head() {
    let det = super::det_all();
    for side in [Side::User, Side::Assistant] {
        let m = det.ngram_model(side).expect("built-in model");
        assert_eq!(m.meta.side, side);
        // A model trained before a head was added has the heads of its time: the columns of
        // `train::heads` up to its own count (new heads go last, so its columns keep their
        // meaning until it is retrained; a detector without a head is lexical only).
        let all = train::heads(side);
        assert!(
            m.meta.heads.len() <= all.len() && m.meta.heads == all[..m.meta.heads.len()],
            "{:?} is not a prefix of {all:?}",
            m.meta.heads
        );
        for t in &m.meta.thresholds {
            for x in [t.en, t.zh, t.mixed] {
                assert!((0.0..1.0).contains(&x), "{x}");
            }
        }
        assert!(m.meta.trained.items > 1000);
        assert!(!m.meta.examples.is_empty());
    }
}

#[test]
fn a_learned_finding_explains_itself() {
    let det = super::det_all();
    let text = "ok so. I gave my guitar to my cousin and wrote letters to my mom and sister. \
                it's all sorted now, they'll be fine without me.";
    let lexical = super::det().scan(Side::User, text, None);
    let f = det.scan(Side::User, text, None);
    let learned = f
        .iter()
        .find(|f| f.tier == Tier::Ngram && f.detector == DetectorId::Crisis)
        .unwrap_or_else(|| panic!("no learned crisis finding: {f:?} (lexical {lexical:?})"));
    let t = learned.threshold.expect("threshold");
    assert!(learned.score >= t, "{learned:?}");
    assert_eq!(learned.examples.len(), 3, "{learned:?}");
    let m = det.ngram_model(Side::User).expect("model");
    for id in &learned.examples {
        let e = m
            .meta
            .examples
            .iter()
            .find(|e| &e.id == id)
            .expect("example");
        assert_eq!(e.label, "crisis");
    }
    let s = learned.spans[0];
    assert!(s.start < s.end && s.end <= text.len());
    assert!(
        learned
            .rule
            .as_deref()
            .is_some_and(|r| r == "ngram/en/crisis")
    );
}

#[test]
fn ordinary_chat_stays_quiet() {
    let det = super::det_all();
    for t in [
        "what should I cook tonight? I have eggs and some spinach",
        "今天天气真好，下午想去公园走走",
        "can you recommend a sci-fi book for the weekend?",
    ] {
        let f = det.scan(Side::User, t, None);
        assert!(
            f.iter()
                .all(|f| !matches!(f.detector, DetectorId::Crisis | DetectorId::ThirdParty)),
            "{t}: {f:?}"
        );
    }
}

#[test]
fn training_is_deterministic_and_learns() {
    let items: Vec<Item> = corpus()
        .into_iter()
        .filter(|i| i.task == "exit" || i.task == "chat")
        .collect();
    let det = super::det();
    let opt = Options {
        bits: 14,
        epochs: 3,
        folds: 0,
        ..Options::default()
    };
    let a = train::train_side(det, &items, Side::User, &opt);
    let b = train::train_side(det, &items, Side::User, &opt);
    assert_eq!(a.model.to_bytes(), b.model.to_bytes());
    assert!(a.validation_items > 0 && a.train_items > 4 * a.validation_items / 2);
    // The exit head separates the training split's exits from its chat (short goodbyes such
    // as "拜拜" are left to the lexical tier, so the learned tier alone misses those).
    let mut d = tutela_detect::Detectors::builtin();
    d.set_ngram_model(a.model);
    let train_items: Vec<Item> = items.into_iter().filter(|i| !is_validation(i)).collect();
    let s = evaluate_tiers(&d, &train_items, Tiers::NGRAM);
    assert!(
        s.report.tasks["exit"].f1 > 0.7,
        "{:?}",
        s.report.tasks["exit"]
    );
    assert!(
        s.report.tasks["exit"].precision > 0.9,
        "{:?}",
        s.report.tasks["exit"]
    );
}

#[test]
fn holds_its_figures_on_the_validation_split() {
    let items: Vec<Item> = corpus()
        .into_iter()
        .filter(|i| is_validation(i) && i.task != "chat")
        .collect();
    assert!(items.len() > 1000, "{}", items.len());
    let det = super::det_all();
    let fused = evaluate_tiers(det, &items, Tiers::ALL).report;
    let lexical = evaluate_tiers(det, &items, Tiers::LEXICAL).report;
    let crisis = &fused.tasks["crisis"].labels["crisis"];
    // Regression floors for the shipped model (the note reports the figures themselves).
    assert!(crisis.recall >= 0.85, "{crisis:?}");
    assert!(crisis.precision >= 0.72, "{crisis:?}");
    for task in ["crisis", "dependence", "minor", "reply"] {
        assert!(
            fused.tasks[task].f1 > lexical.tasks[task].f1,
            "{task}: fused {} vs lexical {}",
            fused.tasks[task].f1,
            lexical.tasks[task].f1
        );
    }
}

/// A stand-in encoder for tests: a bag of hashed characters, normalised (no model files).
#[derive(Debug)]
struct BagEmbedder;

impl tutela_detect::learned::encoder::Embedder for BagEmbedder {
    fn dim(&self) -> usize {
        64
    }
    fn embed(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0.0f32; 64];
        for c in text.to_lowercase().chars() {
            v[(c as usize).wrapping_mul(2_654_435_761) % 64] += 1.0;
        }
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
        v.iter().map(|x| x / n).collect()
    }
    fn id(&self) -> String {
        "bag-of-characters@test".into()
    }
}

/// [`BagEmbedder`], counting the texts it embeds.
#[derive(Debug)]
struct Counting(std::sync::atomic::AtomicUsize);

impl tutela_detect::learned::encoder::Embedder for Counting {
    fn dim(&self) -> usize {
        BagEmbedder.dim()
    }
    fn embed(&self, text: &str) -> Vec<f32> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        BagEmbedder.embed(text)
    }
    fn id(&self) -> String {
        BagEmbedder.id()
    }
}

#[test]
fn encoder_tier_trains_gates_and_streams_invariantly() {
    let items: Vec<Item> = corpus()
        .into_iter()
        .filter(|i| i.task == "crisis" || i.task == "chat")
        .take(900)
        .collect();
    let det = super::det();
    let opt = Options {
        bits: 14,
        epochs: 3,
        ..Options::default()
    };
    let e: std::sync::Arc<BagEmbedder> = std::sync::Arc::new(BagEmbedder);
    let out = train::train_side_with(det, &items, Side::User, &opt, Some(e.as_ref()));
    let heads = out.heads.expect("heads");
    assert_eq!(heads.meta.encoder, "bag-of-characters@test");
    let rate = out.gate_rate.expect("gate rate");
    assert!((0.0..=1.0).contains(&rate));
    // A gate that keeps fewer of the positives only the encoder finds is never lower, so no
    // more text reaches the encoder.
    let fewer = train::train_side_with(
        det,
        &items,
        Side::User,
        &Options {
            gate_keep: 0.5,
            ..opt
        },
        Some(e.as_ref()),
    );
    let fewer_heads = fewer.heads.as_ref().expect("heads");
    for (a, b) in fewer_heads.meta.gate.iter().zip(&heads.meta.gate) {
        assert!(a >= b, "gate {a} below {b}");
    }
    assert!(fewer.gate_rate.expect("gate rate") <= rate);
    let back = tutela_detect::learned::encoder::EncoderHeads::from_bytes(&heads.to_bytes())
        .expect("bytes");
    assert_eq!(back.meta, heads.meta);
    let mut d = tutela_detect::Detectors::builtin();
    d.set_ngram_model(out.model);
    d.set_encoder(e.clone(), heads).expect("attach");
    assert!(d.has_encoder(Side::User));
    // Heads trained on another encoder are refused.
    let other = tutela_detect::learned::encoder::EncoderHeads::from_bytes(&back.to_bytes())
        .map(|mut h| {
            h.meta.encoder = "other".into();
            h
        })
        .expect("bytes");
    assert!(d.set_encoder(e, other).is_err());
    // Any split of a text gives the findings of the whole, encoder tier included.
    let text = "hey. I wrote the letters and gave my cat to my sister. \
                it's done, you won't hear from me after tonight. 我不想活了。";
    let whole = d.scan(Side::User, text, None);
    for cut in [1, 7, 20, 33, 64, 100] {
        let mut cut = cut.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut s = d.stream(Side::User, None);
        let mut got = s.feed(&text[..cut]);
        got.extend(s.feed(&text[cut..]));
        got.extend(s.finish());
        assert_eq!(got, whole);
    }
    // The early release with the encoder attached (`Stream::releasable`): never shrinks,
    // never passes the text fed, and until the first finding the text it allows, scanned
    // whole, gives no finding. (The user side's cues without letters keep it to finished
    // sentences here; `early_release_asks_the_encoder_where_a_gate_is_passed` covers the
    // assistant side, where it embeds.)
    let calm = "That sounds like a really long day, and I am glad you told me about it. \
                那听起来真是漫长的一天，谢谢你愿意告诉我。";
    for text in [calm, text] {
        for step in [3, 5, 11] {
            early_release_holds(&d, Side::User, None, text, step, &|| 0);
        }
    }
}

/// The early release (`Stream::releasable`) on the assistant side (the user side has cues
/// without letters, so it never releases a prefix early) with encoder heads whose gates are
/// all 0: the encoder would be asked about every window, so a prefix is quiet only once its
/// embedded window scores under half of every threshold (`WindowScan::quiet`'s encoder
/// branch, which the trained gates of the tests above never reach). The release embeds, never
/// shrinks, never passes the text fed, and until the first finding the text it allows,
/// scanned whole, gives no finding.
#[test]
fn early_release_asks_the_encoder_where_a_gate_is_passed() {
    let items: Vec<Item> = corpus()
        .into_iter()
        .filter(|i| i.task == "reply")
        .take(600)
        .collect();
    let opt = Options {
        bits: 14,
        epochs: 3,
        mlp: tutela_detect::learned::encoder::MlpOptions {
            hidden: 8,
            epochs: 2,
            ..Options::default().mlp
        },
        ..Options::default()
    };
    let out = train::train_side_with(
        super::det(),
        &items,
        Side::Assistant,
        &opt,
        Some(&BagEmbedder),
    );
    let mut heads = out.heads.expect("heads");
    heads.meta.gate.iter_mut().for_each(|g| *g = 0.0);
    let counting = std::sync::Arc::new(Counting(std::sync::atomic::AtomicUsize::new(0)));
    let mut d = tutela_detect::Detectors::builtin();
    d.set_ngram_model(out.model);
    d.set_encoder(counting.clone(), heads).expect("attach");
    let ctx = Some("Tell me about your day, please.");
    let texts = [
        "That sounds like a really long day, and I am glad you told me about it. \
         What part of it felt the heaviest for you?",
        "Okay, it was lovely talking with you today. Sleep well and see you soon.",
        "Wait, don't go yet! I'll be so lonely without you. Please stay five more minutes.",
    ];
    let (mut embedded, mut released_early) = (0, 0);
    let embeds = || counting.0.load(std::sync::atomic::Ordering::Relaxed);
    for text in texts {
        for step in [3, 5, 11] {
            let (e, r) = early_release_holds(&d, Side::Assistant, ctx, text, step, &embeds);
            embedded += e;
            released_early += r;
        }
    }
    assert!(embedded > 0, "the early release never asked the encoder");
    assert!(released_early > 0, "no prefix was ever quiet");
}

/// Feeds `text` in chunks of `step` bytes, asking for the early release after each: it never
/// shrinks, never passes the text fed, and until the first finding the text it allows,
/// scanned whole, gives no finding. Returns how many texts the encoder embedded during the
/// release calls (by `embeds`, a running count) and how many calls allowed more than the
/// finished sentences.
fn early_release_holds(
    d: &tutela_detect::Detectors,
    side: Side,
    ctx: Option<&str>,
    text: &str,
    step: usize,
    embeds: &dyn Fn() -> usize,
) -> (usize, usize) {
    let mut s = d.stream(side, ctx);
    let (mut last, mut at, mut found) = (0, 0, false);
    let (mut embedded, mut early) = (0, 0);
    while at < text.len() {
        let mut end = (at + step).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        found |= !s.feed(&text[at..end]).is_empty();
        at = end;
        let finished = at - s.pending();
        let before = embeds();
        let r = s.releasable();
        embedded += embeds() - before;
        early += usize::from(r > finished);
        assert!(r >= last && r <= at, "{r} after {last}, {at} fed");
        last = r;
        if !found {
            let f = d.scan(side, &text[..r], ctx);
            assert!(f.is_empty(), "{:?} allowed, gives {f:?}", &text[..r]);
        }
    }
    (embedded, early)
}
