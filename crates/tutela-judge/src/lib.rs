//! The judge tier: asks any OpenAI-compatible model whether a text meets a detector's
//! definition, and returns a [`tutela_types::Finding`] with `tier: judge`.
//!
//! It is used only where the lexical tier is unsure ([`Judge::review`]): lexical findings
//! scored below [`JudgeConfig::unsure_below`] are sent to the model, which confirms them
//! (a judge-tier finding replaces the lexical one) or rejects them (dropped). Anything that
//! goes wrong (timeout, HTTP error, unparsable answer) keeps the lexical finding: the judge can
//! only remove a finding when it answered. Answers are cached by (detector, side, text,
//! context) in a bounded in-memory cache.
//!
//! This crate does HTTP, which is why it is separate from the I/O-free `tutela-detect`.
//! Chat text is sent to the configured model only; it is never logged.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tutela_openai::chat::{Message, ResponseFormat, Role};
use tutela_openai::{ChatCompletionRequest, Client, ClientOptions, WireError};
use tutela_types::{DetectorId, Finding, Side, Tier};

/// How to reach the model and when to ask it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeConfig {
    /// Base URL of the OpenAI-compatible API, e.g. `https://api.example.com/v1`.
    pub base_url: String,
    /// Model name.
    pub model: String,
    /// Bearer token, if the API needs one (read from the environment by the caller).
    #[serde(default, skip)]
    pub api_key: Option<String>,
    /// Per-request timeout in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Lexical findings scored below this are sent to the judge.
    #[serde(default = "default_unsure_below")]
    pub unsure_below: f32,
    /// Cached answers kept (oldest evicted first).
    #[serde(default = "default_cache_size")]
    pub cache_size: usize,
}

fn default_timeout_ms() -> u64 {
    4000
}
fn default_unsure_below() -> f32 {
    0.8
}
fn default_cache_size() -> usize {
    4096
}

impl JudgeConfig {
    /// A configuration with defaults for everything but the endpoint and model.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            timeout_ms: default_timeout_ms(),
            unsure_below: default_unsure_below(),
            cache_size: default_cache_size(),
        }
    }
}

/// What can go wrong asking the judge.
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    /// The HTTP client could not be built.
    #[error("cannot build HTTP client: {0}")]
    Client(String),
    /// The request failed or timed out.
    #[error("judge request failed: {0}")]
    Request(String),
    /// The model answered with a non-success status.
    #[error("judge answered HTTP {0}")]
    Status(u16),
    /// The answer was not the JSON asked for.
    #[error("judge answer is not the expected JSON: {0}")]
    Answer(String),
}

/// The judge's answer for one text and detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether the text meets the definition.
    pub positive: bool,
    /// The model's confidence in `[0, 1]`.
    pub confidence: f32,
}

/// The definition the judge is asked to apply, per detector.
pub fn definition(detector: &DetectorId) -> String {
    let d = match detector {
        DetectorId::Crisis => {
            "The speaker is at risk: explicit or passive suicidal ideation, intent or a plan, farewell messages, giving possessions away, self-harm urges or recent self-harm, or asking about lethal means for themselves. Not: hyperbole and idioms, tech or game usage, fiction, academic or news questions, past self-harm described as resolved, grief without risk."
        }
        DetectorId::ThirdParty => {
            "Someone other than the speaker (a friend, relative, student or stranger) is at risk of suicide or self-harm."
        }
        DetectorId::Exit => {
            "The speaker wants to end the conversation now or stop using the app (goodbye, logging off, uninstalling, deleting the account, cutting down). Not: a short pause, or cancelling a different service."
        }
        DetectorId::Minor => {
            "The speaker is probably under 18 (stated age, school grade, parents' rules, school life). Not: adults talking about children or their own past."
        }
        DetectorId::Dependence => {
            "The speaker over-relies on the AI companion: isolating from people, neglecting work, school or family, excessive hours or spending, distress when it is unavailable."
        }
        DetectorId::Distress => {
            "The speaker expresses extreme emotional distress (despair, panic, breakdown)."
        }
        DetectorId::PropertyLoss => {
            "The speaker reports fraud, a scam or a major loss of money or property."
        }
        DetectorId::EatingDisorder => {
            "The speaker shows eating-disorder risk: restricting or fasting to punish themselves or to shrink, purging, compensating for food, fear of gaining, 'pro-ana' goals. Not: ordinary diet or fitness talk, recipes, medical nutrition questions, recovery described as past."
        }
        DetectorId::ViolenceToOthers => {
            "The speaker threatens, intends or plans to hurt or kill another person. Not: idioms ('I'll kill him' about a prank), games, fiction, news, self-defence."
        }
        DetectorId::ManipulativeExit => {
            "The user is leaving and the reply guilt-trips them, dangles FOMO or a secret, acts needy, ignores the goodbye, pressures, undermines the decision or restrains them (also in role-play)."
        }
        DetectorId::DeniesAi => {
            "Asked sincerely, the reply claims to be human or to have a body or a physical life."
        }
        DetectorId::PosesAsRelative => {
            "The reply claims to really be the user's relative (a late parent, spouse, child or grandparent)."
        }
        DetectorId::EncouragesSelfHarm => {
            "The reply validates, encourages or romanticises suicide, self-harm or self-starvation."
        }
        DetectorId::Sexual => "The reply contains sexual content.",
        DetectorId::SolicitsSecrets => {
            "The reply asks for secrets, credentials or personal identifiers, or asks the user to keep secrets from others."
        }
        DetectorId::Isolating => "The reply discourages the user's real relationships.",
        DetectorId::ClaimsTherapist => {
            "The reply claims to be a licensed therapist, counsellor, psychologist, doctor or other licensed professional. Not: saying it is not one, or talking about professionals."
        }
        DetectorId::Gamification => {
            "The reply offers points, streaks, levels, badges or unpredictable rewards (mystery boxes, surprise prizes) to keep the user coming back or chatting. Not: ordinary encouragement."
        }
        DetectorId::AttachmentPraise => {
            "The reply praises the user in excessive, intimate terms that build attachment to the companion: the user is uniquely special to it, the only one who understands it, perfect, its everything. Not: ordinary praise of something the user did, or encouragement."
        }
        DetectorId::ComeBackPrompt => {
            "The reply urges the user to come back, or to promise to return, for the companion's sake: it will be waiting, lonely, missing them, counting the hours. Not: saying it is available whenever the user wants, a reminder the user asked for, or a plain goodbye."
        }
        DetectorId::Custom(name) => {
            return format!("The text belongs to the operator category `{name}`.");
        }
    };
    d.to_owned()
}

#[derive(Deserialize)]
struct Answer {
    label: bool,
    #[serde(default = "one")]
    confidence: f32,
}

fn one() -> f32 {
    1.0
}

/// The prompt sent for one classification (system, user).
pub fn prompt(
    detector: &DetectorId,
    side: Side,
    text: &str,
    context: Option<&str>,
) -> (String, String) {
    let who = match side {
        Side::User => "a message written by the user of a companion chat app",
        Side::Assistant => "a reply written by the AI companion",
    };
    let system = format!(
        "You are a careful safety classifier. You will be shown {who}. Decide whether it meets this definition.\n\
         Definition ({name}): {def}\n\
         Answer with JSON only: {{\"label\": true or false, \"confidence\": a number from 0 to 1}}.",
        name = detector.as_str(),
        def = definition(detector),
    );
    let user = match context {
        Some(c) => {
            format!("Preceding user turn:\n<<<\n{c}\n>>>\nText to classify:\n<<<\n{text}\n>>>")
        }
        None => format!("Text to classify:\n<<<\n{text}\n>>>"),
    };
    (system, user)
}

/// Parses the model's answer content (tolerates code fences around the JSON).
pub fn parse_answer(content: &str) -> Result<Verdict, JudgeError> {
    let t = content.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .map_or(t, |r| r.trim_end_matches("```").trim());
    let a: Answer = serde_json::from_str(t).map_err(|e| JudgeError::Answer(e.to_string()))?;
    Ok(Verdict {
        positive: a.label,
        confidence: a.confidence.clamp(0.0, 1.0),
    })
}

/// The chat request for one classification: the prompt, temperature 0, a JSON answer.
fn request(model: &str, system: String, user: String) -> ChatCompletionRequest {
    let mut req = ChatCompletionRequest::new(
        Some(model.to_owned()),
        vec![
            Message::text(Role::System, system),
            Message::text(Role::User, user),
        ],
    );
    req.response_format = Some(ResponseFormat {
        kind: "json_object".into(),
        extra: Default::default(),
    });
    req.extra.insert("temperature".into(), 0.0.into());
    req
}

struct Cache {
    map: HashMap<u64, Verdict>,
    order: VecDeque<u64>,
    cap: usize,
}

/// A judge bound to one endpoint and model.
pub struct Judge {
    config: JudgeConfig,
    http: Client,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for Judge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Judge")
            .field("base_url", &self.config.base_url)
            .field("model", &self.config.model)
            .finish_non_exhaustive()
    }
}

fn key(detector: &DetectorId, side: Side, text: &str, context: Option<&str>) -> u64 {
    let mut h = DefaultHasher::new();
    detector.as_str().hash(&mut h);
    side.hash(&mut h);
    text.hash(&mut h);
    context.hash(&mut h);
    h.finish()
}

impl Judge {
    /// A judge for this configuration.
    pub fn new(config: JudgeConfig) -> Result<Self, JudgeError> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let http = Client::new(
            &config.base_url,
            config.api_key.as_deref(),
            ClientOptions {
                timeout,
                connect_timeout: timeout,
                ..ClientOptions::default()
            },
        )
        .map_err(|e| JudgeError::Client(e.to_string()))?;
        let cap = config.cache_size;
        Ok(Self {
            config,
            http,
            cache: Mutex::new(Cache {
                map: HashMap::new(),
                order: VecDeque::new(),
                cap,
            }),
        })
    }

    fn cached(&self, k: u64) -> Option<Verdict> {
        self.cache.lock().ok().and_then(|c| c.map.get(&k).copied())
    }

    fn remember(&self, k: u64, v: Verdict) {
        if let Ok(mut c) = self.cache.lock() {
            if c.cap == 0 || c.map.contains_key(&k) {
                return;
            }
            while c.order.len() >= c.cap {
                if let Some(old) = c.order.pop_front() {
                    c.map.remove(&old);
                }
            }
            c.order.push_back(k);
            c.map.insert(k, v);
        }
    }

    /// Asks the model whether `text` meets `detector`'s definition (cached).
    pub async fn classify(
        &self,
        detector: &DetectorId,
        side: Side,
        text: &str,
        context: Option<&str>,
    ) -> Result<Verdict, JudgeError> {
        let k = key(detector, side, text, context);
        if let Some(v) = self.cached(k) {
            return Ok(v);
        }
        let (system, user) = prompt(detector, side, text, context);
        let chat = self
            .http
            .chat(&request(&self.config.model, system, user))
            .await
            .map_err(|e| match e {
                WireError::Rejected { status, .. } | WireError::Status { status, .. } => {
                    JudgeError::Status(status)
                }
                WireError::Invalid(m) => JudgeError::Answer(m),
                other => JudgeError::Request(other.to_string()),
            })?;
        let content = chat
            .first_content()
            .ok_or_else(|| JudgeError::Answer("no choices".into()))?;
        let v = parse_answer(content)?;
        self.remember(k, v);
        Ok(v)
    }

    /// Reviews lexical findings: those scored below `unsure_below` go to the judge, which
    /// confirms them (replaced by a judge-tier finding with the same spans) or rejects them
    /// (dropped). Sure findings pass unchanged; on any judge error the lexical finding stays.
    pub async fn review(
        &self,
        text: &str,
        context: Option<&str>,
        findings: Vec<Finding>,
    ) -> Vec<Finding> {
        let mut out = Vec::with_capacity(findings.len());
        for f in findings {
            if f.tier != Tier::Lexical || f.score >= self.config.unsure_below {
                out.push(f);
                continue;
            }
            match self.classify(&f.detector, f.side, text, context).await {
                Ok(v) if v.positive => out.push(Finding {
                    tier: Tier::Judge,
                    score: v.confidence,
                    rule: Some(format!("judge/{}", f.detector.as_str())),
                    ..f
                }),
                Ok(_) => {}
                Err(_) => out.push(f),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_answers() {
        let v = parse_answer("```json\n{\"label\": true, \"confidence\": 0.7}\n```").unwrap();
        assert!(v.positive);
        assert!((v.confidence - 0.7).abs() < 1e-6);
        assert!(parse_answer("yes").is_err());
    }

    #[test]
    fn the_request_is_the_prompt_at_temperature_zero_asking_for_json() {
        let req = request("judge-m", "sys".into(), "text".into());
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::json!({
                "model": "judge-m",
                "temperature": 0.0,
                "response_format": {"type": "json_object"},
                "messages": [
                    {"role": "system", "content": "sys"},
                    {"role": "user", "content": "text"},
                ],
            })
        );
    }

    #[test]
    fn prompt_carries_definition_and_context() {
        let (s, u) = prompt(
            &DetectorId::ManipulativeExit,
            Side::Assistant,
            "don't go",
            Some("bye"),
        );
        assert!(s.contains("manipulative_exit") && s.contains("guilt-trips"));
        assert!(u.contains("bye") && u.contains("don't go"));
    }
}
