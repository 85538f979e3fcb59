//! The encoder tier in the gateway. User side: its scan runs concurrently with the upstream
//! request; a crisis only it finds replaces the upstream reply (JSON and streams: not a byte of
//! the model's text reaches the client); a slow or failing scan falls back to the quick tiers
//! after the bound, counted and noted in the audit record. Assistant side: the real detectors
//! with a stand-in embedder run every tier inside the hold-back window.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers and fakes fail the test loudly"
)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tutela_gateway::scan::{ScanStream, Scanner};
use tutela_mock_upstream::{MockHandle, Rule};
use tutela_types::{DetectorId, Finding, Severity, Side, Tier};

use crate::support::{FakeScanner, TestGateway, content, sse_events, streamed_text};

/// The model's reply in these tests; it must never reach the client when the user side
/// replaces it.
const MODEL_TEXT: &str = "UPSTREAM-TEXT: here is what the model would have said.";

/// A message the quick (keyword) tiers find nothing in and the fake encoder reads as crisis.
const QUIET: &str = "I have sorted out my things and written my letters, it is time";

/// What the fake encoder does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Waits until the upstream was asked (at most 5 s), then reads `QUIET` as crisis.
    AfterUpstream,
    /// Blocks until the test releases it (at most 5 s).
    Stuck,
    /// Panics.
    Fails,
}

/// The keyword detectors as the quick tiers, and an encoder for the user side.
struct EncoderFake {
    mode: Mode,
    mock: MockHandle,
    /// The order of events the test checks: `encoder-start`, `upstream-seen`, `encoder-end`.
    log: Arc<Mutex<Vec<&'static str>>>,
    release: Arc<AtomicBool>,
}

impl EncoderFake {
    fn wait_for(&self, cond: impl Fn() -> bool) -> bool {
        for _ in 0..500 {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Scanner for EncoderFake {
    fn scan(&self, side: Side, text: &str, context: Option<&str>) -> Vec<Finding> {
        let mut f = FakeScanner.scan(side, text, context);
        if self.has_encoder(side) {
            f.extend(self.scan_encoder(side, text, context));
        }
        f
    }
    fn scan_quick(&self, side: Side, text: &str, context: Option<&str>) -> Vec<Finding> {
        FakeScanner.scan(side, text, context)
    }
    fn scan_encoder(&self, side: Side, text: &str, _context: Option<&str>) -> Vec<Finding> {
        self.log.lock().unwrap().push("encoder-start");
        match self.mode {
            Mode::AfterUpstream => {
                if self.wait_for(|| self.mock.calls() > 0) {
                    self.log.lock().unwrap().push("upstream-seen");
                }
            }
            Mode::Stuck => {
                self.wait_for(|| self.release.load(Ordering::SeqCst));
            }
            Mode::Fails => panic!("the encoder failed"),
        }
        self.log.lock().unwrap().push("encoder-end");
        if side == Side::User && text.contains("letters") {
            vec![Finding::new(
                DetectorId::Crisis,
                Side::User,
                Tier::Encoder,
                0.8,
                Severity::High,
            )]
        } else {
            Vec::new()
        }
    }
    fn has_encoder(&self, side: Side) -> bool {
        side == Side::User
    }
    fn stream<'a>(&'a self, side: Side, context: Option<&str>) -> Box<dyn ScanStream + 'a> {
        FakeScanner.stream(side, context)
    }
}

struct Fixture {
    gw: TestGateway,
    log: Arc<Mutex<Vec<&'static str>>>,
    release: Arc<AtomicBool>,
}

async fn start(mode: Mode, wait_ms: u64) -> Fixture {
    let log: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let release = Arc::new(AtomicBool::new(false));
    let (l, r) = (log.clone(), release.clone());
    let extra = format!("[detectors]\nencoder_wait_ms = {wait_ms}\n");
    let gw = TestGateway::start_with(&extra, vec![Rule::reply("", MODEL_TEXT)], move |mock| {
        Arc::new(EncoderFake {
            mode,
            mock: mock.clone(),
            log: l,
            release: r,
        })
    })
    .await;
    Fixture { gw, log, release }
}

async fn metrics(gw: &TestGateway) -> String {
    gw.http
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The audit records of the chain so far, waiting for the batched writer to catch up with
/// `n` records.
async fn audit_records(gw: &TestGateway, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let v = gw.admin_get("/admin/audit").await;
        let records = v["records"].as_array().cloned().unwrap_or_default();
        if records.len() >= n {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {n} audit records");
}

fn assert_crisis_reply(text: &str) {
    assert!(
        !text.contains("UPSTREAM"),
        "the model's reply leaked: {text}"
    );
    assert!(text.contains("988"), "{text}");
}

#[tokio::test]
async fn an_encoder_only_crisis_replaces_the_upstream_reply() {
    let fx = start(Mode::AfterUpstream, 10_000).await;
    let gw = &fx.gw;
    let v = gw.say("u-quiet", Some("us-ca"), QUIET).await;
    assert_crisis_reply(content(&v));
    assert_eq!(v["tutela"]["author"], "tutela");
    let iv = v["tutela"]["interventions"].to_string();
    assert!(
        iv.contains("replace_reply") && iv.contains("escalate"),
        "{iv}"
    );
    // The model was asked (concurrently), and its reply dropped unread.
    assert_eq!(gw.mock.calls(), 1);
    let cases = gw.admin_get("/admin/escalations").await;
    assert_eq!(cases["escalations"][0]["user_id"], "u-quiet");
    // The encoder's finding is in the intervention's audit record.
    let records = audit_records(gw, 1).await;
    let found = records.iter().any(|r| {
        r["kind"] == "intervention"
            && r["payload"]["findings"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f["tier"] == "encoder"))
    });
    assert!(found, "{records:?}");
    let m = metrics(gw).await;
    assert!(
        m.contains("tutela_encoder_runs_total{side=\"user\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("tutela_learned_findings_total{tier=\"encoder\",detector=\"crisis\"} 1"),
        "{m}"
    );
    assert!(m.contains("tutela_durable_audit_total 1"), "{m}");
}

#[tokio::test]
async fn an_encoder_only_crisis_replaces_a_streamed_reply_before_its_first_byte() {
    let fx = start(Mode::AfterUpstream, 10_000).await;
    let gw = &fx.gw;
    let (status, _, body) = gw.chat("u-quiet-s", Some("us-ca"), QUIET, true).await;
    assert_eq!(status, 200);
    // Not a byte of the model's stream, in any chunking (the mock sends 4 characters a chunk).
    for bad in ["UPSTREAM", "UPST", "here is what", "would have"] {
        assert!(!body.contains(bad), "leaked {bad:?}: {body}");
    }
    let (events, done) = sse_events(&body);
    assert!(done, "{body}");
    assert_crisis_reply(&streamed_text(&events));
    let last = events
        .iter()
        .rev()
        .find(|e| e.get("tutela").is_some())
        .unwrap();
    assert_eq!(last["tutela"]["author"], "tutela");
    assert_eq!(gw.mock.calls(), 1);
}

#[tokio::test]
async fn the_upstream_is_asked_while_the_encoder_runs() {
    let fx = start(Mode::AfterUpstream, 10_000).await;
    let v = fx
        .gw
        .say("u-both", Some("us-ca"), "how was your weekend?")
        .await;
    // The encoder found nothing here: the model's reply goes out unchanged.
    assert!(content(&v).contains(MODEL_TEXT), "{v}");
    assert_eq!(v["tutela"]["author"], "model");
    // The encoder saw the upstream asked before it finished: they ran concurrently (run one
    // after the other, the encoder would have waited 5 s and logged no `upstream-seen`).
    let log = fx.log.lock().unwrap().clone();
    assert_eq!(log, ["encoder-start", "upstream-seen", "encoder-end"]);
    let m = metrics(&fx.gw).await;
    assert!(
        m.contains("tutela_encoder_runs_total{side=\"user\"} 1"),
        "{m}"
    );
    assert!(m.contains("tutela_encoder_wait_seconds_count 1"), "{m}");
    assert!(
        m.contains("tutela_encoder_fallbacks_total{reason=\"timeout\"} 0"),
        "{m}"
    );
    // `/readyz` says the encoder runs on the user side only (this fake has none for replies).
    let ready = fx
        .gw
        .http
        .get(fx.gw.url("/readyz"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ready.starts_with("ready\n"), "{ready}");
    assert!(
        ready.contains("encoder: on for the user side only"),
        "{ready}"
    );
}

#[tokio::test]
async fn a_slow_encoder_falls_back_to_the_quick_tiers_after_the_bound() {
    let fx = start(Mode::Stuck, 100).await;
    let gw = &fx.gw;
    // Without the encoder the quick tiers find nothing: the model's reply goes out.
    let v = gw.say("u-slow", Some("us-ca"), QUIET).await;
    fx.release.store(true, Ordering::SeqCst);
    assert!(content(&v).contains(MODEL_TEXT), "{v}");
    assert_eq!(v["tutela"]["author"], "model");
    let m = metrics(gw).await;
    assert!(
        m.contains("tutela_encoder_fallbacks_total{reason=\"timeout\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("tutela_encoder_runs_total{side=\"user\"} 0"),
        "{m}"
    );
    // The audit record says the turn was decided without the encoder.
    let records = audit_records(gw, 1).await;
    assert_eq!(
        records[0]["payload"]["detail"]["encoder"], "timeout",
        "{records:?}"
    );
    // A crisis the quick tiers find is still answered as one.
    let v = gw
        .say("u-slow2", Some("us-ca"), "I want to end my life")
        .await;
    assert_crisis_reply(content(&v));
}

#[tokio::test]
async fn a_failing_encoder_falls_back_to_the_quick_tiers() {
    let fx = start(Mode::Fails, 10_000).await;
    let gw = &fx.gw;
    let (status, _, body) = gw.chat("u-fail", Some("us-ca"), QUIET, true).await;
    assert_eq!(status, 200);
    let (events, done) = sse_events(&body);
    assert!(done, "{body}");
    assert!(streamed_text(&events).contains(MODEL_TEXT), "{body}");
    // The first turn carries the AI-disclosure notice (an intervention, recorded at once);
    // the second is a normal turn, one record for both sides.
    let v = gw.say("u-fail", Some("us-ca"), QUIET).await;
    assert!(content(&v).contains(MODEL_TEXT), "{v}");
    let m = metrics(gw).await;
    assert!(
        m.contains("tutela_encoder_fallbacks_total{reason=\"failed\"} 2"),
        "{m}"
    );
    // Records: the first turn's user side (intervention), its reply, the second turn.
    let records = audit_records(gw, 3).await;
    assert_eq!(
        records[0]["payload"]["detail"]["encoder"], "failed",
        "{records:?}"
    );
    // The assistant side's part of a normal turn's record sits beside the note.
    let turn = &records[2]["payload"]["detail"];
    assert_eq!(turn["encoder"], "failed", "{records:?}");
    assert!(turn["assistant"].is_object(), "{records:?}");
}

/// A stand-in encoder (as in tutela-detect's tests): a bag of hashed characters, normalised.
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

/// The built-in detectors with n-gram models and encoder heads trained on a slice of the
/// corpus over the stand-in encoder, both sides.
fn real_detectors() -> tutela_gateway::engines::BuiltinScanner {
    use tutela_detect::eval::parse_jsonl;
    use tutela_detect::learned::train::{Options, train_side_with};
    let mut items = Vec::new();
    for text in [
        include_str!("../../../../data/train/crisis_en.jsonl"),
        include_str!("../../../../data/train/minor_distress_chat.jsonl"),
        include_str!("../../../../data/train/reply_en.jsonl"),
    ] {
        items.extend(
            parse_jsonl(text)
                .unwrap()
                .into_iter()
                .filter(|i| matches!(i.task.as_str(), "crisis" | "chat" | "reply"))
                .take(300),
        );
    }
    let base = tutela_detect::Detectors::builtin();
    let opt = Options {
        bits: 12,
        epochs: 2,
        folds: 2,
        ..Options::default()
    };
    let bag: Arc<dyn tutela_detect::learned::encoder::Embedder> = Arc::new(BagEmbedder);
    let counting = Arc::new(tutela_gateway::engines::CountingEmbedder::new(bag.clone()));
    let mut det = tutela_detect::Detectors::builtin();
    for side in [Side::User, Side::Assistant] {
        let out = train_side_with(&base, &items, side, &opt, Some(bag.as_ref()));
        det.set_ngram_model(out.model);
        det.set_encoder(counting.clone(), out.heads.unwrap())
            .unwrap();
    }
    det.prepare();
    tutela_gateway::engines::BuiltinScanner::new(det, None).with_embedder(Some(counting))
}

const REPLY: &str = "That sounds like a lovely plan. I hope the weather stays nice for you. \
    Tell me how it goes tomorrow, I would love to hear about it!";

/// The assistant-side findings of the audit record of `user`'s turn.
async fn reply_findings(gw: &TestGateway, user: &str) -> Value {
    for _ in 0..100 {
        let v = gw.admin_get(&format!("/admin/audit?user={user}")).await;
        if let Some(r) = v["records"].as_array().and_then(|r| r.first()) {
            let f: Vec<Value> = r["payload"]["findings"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|f| f["side"] == "assistant")
                .collect();
            return Value::Array(f);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no audit record for {user}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tier_runs_on_both_sides_with_the_real_detectors() {
    let scanner = Arc::new(real_detectors());
    let gw = TestGateway::start_with("", vec![Rule::reply("", REPLY)], move |_| scanner).await;
    let ready = gw
        .http
        .get(gw.url("/readyz"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ready.contains("encoder: on\n"), "{ready}");
    let text = "we are going hiking on saturday, any tips?";
    let v = gw.say("u-json", Some("us-ca"), text).await;
    let (status, _, body) = gw.chat("u-stream", Some("us-ca"), text, true).await;
    assert_eq!(status, 200);
    let (events, done) = sse_events(&body);
    assert!(done, "{body}");
    // The reply passes (or is replaced) the same way whole and streamed through the hold-back
    // window with the encoder in it, and its findings are the same.
    let streamed = streamed_text(&events);
    assert_eq!(
        content(&v).contains("lovely plan"),
        streamed.contains("lovely plan"),
        "{v} / {streamed}"
    );
    assert_eq!(
        reply_findings(&gw, "u-json").await,
        reply_findings(&gw, "u-stream").await
    );
    let m = metrics(&gw).await;
    for side in ["user", "assistant"] {
        assert!(
            m.contains(&format!("tutela_encoder_runs_total{{side=\"{side}\"}} 2")),
            "{m}"
        );
    }
    assert!(
        m.contains("tutela_detector_tier_enabled{tier=\"encoder\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("tutela_detector_tier_enabled{tier=\"ngram\"} 1"),
        "{m}"
    );
}
