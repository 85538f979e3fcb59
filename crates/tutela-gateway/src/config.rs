//! Gateway configuration: the TOML file is read into `Raw*` structs (unknown keys are errors),
//! then validated into [`Config`]. Every error names its key path, and all of them are reported
//! together. Secrets come from the environment through the [`Env`] seam, never from the file.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use tutela_types::PersonaKind;

use crate::texts::{CrisisResource, Region, builtin_resources};

/// Where the gateway reads its secrets. Tests pass a map; `tutela serve` passes the process
/// environment.
pub trait Env: Send + Sync {
    /// The value of `key`, if set and valid UTF-8.
    fn get(&self, key: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).cloned()
    }
}

/// One configuration problem, at a key path such as `upstream.timeout_secs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    path: String,
    message: String,
}

impl ConfigError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The key path (`upstream.kind`), or `<file>` for whole-file problems.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// All the problems found in one configuration.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} configuration error(s)", self.0.len())?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Raw configuration, as written in the file.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTop {
    listen: Option<String>,
    database: Option<String>,
    jurisdictions: Option<Vec<String>>,
    anonymous: Option<String>,
    provider_name: Option<String>,
    baseline: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    kind: Option<String>,
    base_url: Option<String>,
    api_key_env: Option<String>,
    model: Option<String>,
    timeout_secs: Option<u64>,
    connect_timeout_secs: Option<u64>,
    pool_max_idle_per_host: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLabels {
    explicit: Option<String>,
    text_en: Option<String>,
    text_zh: Option<String>,
    producer: Option<String>,
    propagator: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotices {
    mode: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStreaming {
    hold_back_chars: Option<usize>,
    lookahead_sentences: Option<usize>,
    early_release: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetectors {
    rules: Option<Vec<String>>,
    encoder_wait_ms: Option<u64>,
    encoder_queue: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTakeover {
    wait_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    token_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComplaints {
    max_body_bytes: Option<usize>,
    per_client_per_hour: Option<u32>,
    per_user_per_day: Option<u32>,
    global_per_hour: Option<u32>,
    client_header: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    key_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    spill_dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    idle_reset_minutes: Option<u32>,
    /// The app shows a continuously visible "AI, not human" disclosure (CT PA 26-15, the
    /// Conversational AI Safety Act): duties that allow it run no notice clock.
    persistent_ai_disclosure: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotifications {
    webhook_url: Option<String>,
    max_attempts: Option<u32>,
    retry_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsole {
    idle_minutes: Option<u32>,
    sla_minutes: Option<u32>,
    sla_minutes_by_jurisdiction: Option<BTreeMap<String, u32>>,
    case_turns: Option<usize>,
    case_retention_days: Option<u32>,
    secure_cookies: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResource {
    region: String,
    name_en: String,
    name_zh: Option<String>,
    contact_en: String,
    contact_zh: Option<String>,
    #[serde(default)]
    emergency: bool,
    verified_at: String,
}

/// The top-level keys the file may have; anything else is reported.
const SECTIONS: [&str; 15] = [
    "console",
    "store",
    "upstream",
    "labels",
    "notices",
    "streaming",
    "detectors",
    "takeover",
    "admin",
    "app",
    "complaints",
    "engine",
    "notifications",
    "crisis_resources",
    "personas",
];

// ---------------------------------------------------------------------------------------------
// Validated configuration.

/// Which upstream answers the model's part.
#[derive(Debug, Clone)]
pub enum UpstreamConfig {
    /// The built-in scripted demo companion.
    Demo,
    /// Any OpenAI-compatible endpoint.
    OpenAi {
        /// Base URL ending before `/chat/completions`, e.g. `https://api.openai.com/v1`.
        base_url: String,
        /// The API key, read from the environment variable the file names.
        api_key: Option<String>,
        /// Model to use when the request names none.
        model: Option<String>,
        /// Whole-request timeout (non-streaming) and idle timeout between stream chunks.
        timeout: Duration,
        /// TCP connect timeout.
        connect_timeout: Duration,
        /// Idle connections kept per host.
        pool_max_idle_per_host: usize,
    },
}

/// Where explicit labels go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExplicitLabel {
    /// Before the reply text.
    Prefix,
    /// After the reply text.
    Suffix,
    /// Only in `tutela.label`, for the app's UI to show persistently (GB 45438 §6).
    Structured,
}

/// Where notices go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeMode {
    /// In the reply text.
    Inline,
    /// Only in `tutela.notices`.
    Structured,
    /// Both.
    Both,
}

impl NoticeMode {
    /// Whether notices go into the reply text.
    pub fn inline(self) -> bool {
        matches!(self, NoticeMode::Inline | NoticeMode::Both)
    }
}

/// What to do with a request that names no user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anonymous {
    /// Answer 400 with a clear message.
    Reject,
    /// Treat it as the user `anonymous` with the deployment's jurisdictions, no stored state.
    Allow,
}

/// When the console's session cookie carries `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecureCookies {
    /// When the request came over TLS to the proxy in front (`X-Forwarded-Proto: https`).
    Auto,
    /// Always (the console is only reached over TLS).
    Always,
    /// Never (plain HTTP on a trusted network, or tests).
    Never,
}

/// The operator console's settings (`[console]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// A staff session ends after this long without a request.
    pub idle_minutes: u32,
    /// Minutes within which a case should have a human, where no jurisdiction sets its own
    /// figure (no shipped profile sets one: the laws say "promptly").
    pub sla_minutes: u32,
    /// A deployment's figure per jurisdiction (`cn = 3`); a case takes the smallest that applies.
    pub sla_minutes_by_jurisdiction: BTreeMap<String, u32>,
    /// Turns of the conversation before the message that opened a case, kept with the case.
    pub case_turns: usize,
    /// Days the kept turns of a resolved case stay (then they are deleted).
    pub case_retention_days: u32,
    /// `Secure` on the session cookie.
    pub secure_cookies: SecureCookies,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// SQLite file (`:memory:` for a throwaway store), or a `postgres://` URL (TLS by its
    /// `sslmode`; see `docs/deploy.md`).
    pub database: String,
    /// `[store] spill_dir`: a directory on another disk where the store's writer puts the audit
    /// records it cannot write to the database (a full disk), replayed when it can; checked at
    /// start (`tutela_store::SpillDir::open`).
    pub spill_dir: Option<std::path::PathBuf>,
    /// Deployment jurisdictions (ids or aliases) used when neither header nor user record says.
    pub jurisdictions: Vec<String>,
    /// Policy for requests without a user id.
    pub anonymous: Anonymous,
    /// Compose tutela's safe defaults (`tutela-baseline`: crisis handoff, honest AI, exit)
    /// into every set; switch off only with a recorded reason.
    pub baseline: bool,
    /// Provider name written into labels (`ContentProducer`).
    pub provider_name: String,
    /// The upstream.
    pub upstream: UpstreamConfig,
    /// Explicit label placement.
    pub explicit_label: ExplicitLabel,
    /// Explicit label texts.
    pub label_text_en: String,
    /// Explicit label text in Chinese; must name AI and generation (GB 45438 §6).
    pub label_text_zh: String,
    /// `ContentPropagator`, defaulting to the producer.
    pub propagator: String,
    /// Notice placement.
    pub notices: NoticeMode,
    /// Characters of a streamed reply held behind the newest text even after the detectors
    /// finished their sentence (0 by default: a sentence leaves as soon as its checks are done,
    /// and those read up to the start of the next sentence, which settles the boundary).
    pub hold_back_chars: usize,
    /// Sentences of a streamed reply that must be finished and checked after a sentence before
    /// it is released (0, 1 or 2; 0 by default: a sentence leaves once its own checks are
    /// done). With 2 every window of the learned tiers that includes a sentence is decided
    /// before it leaves, so a harm only a window shows stops the stream before any of the
    /// window is sent (`load/results/2026-12-06-window-leak.md`: about 150 ms more to the first
    /// text with 1, 350 ms with 2, at a model's pace). Composes with `hold_back_chars`: text
    /// leaves once both allow it.
    pub lookahead_sentences: usize,
    /// Whether, until the first sentence of a streamed reply is finished, a prefix of it may
    /// leave early: up to a space (or `，、：`) before which no letter of a cue can
    /// lie whatever follows, once that prefix, scanned as the whole reply, gives no finding and
    /// the learned tiers' window over it is judged well under their thresholds (`tutela_detect::Stream::releasable`; true by
    /// default; no effect with a `lookahead_sentences` above 0). What it costs and saves:
    /// `load/results/2026-12-07-ttft-early.md`.
    pub early_release: bool,
    /// How long a user turn waits for the encoder tier's scan of the user's message (counted
    /// from its start, which is concurrent with the upstream request); past it, the turn is
    /// decided on the quick tiers and the fallback is counted.
    pub encoder_wait: Duration,
    /// Encoder jobs that may wait for a slot before new turns the quick tiers do not settle
    /// are refused with 503 (`[detectors] encoder_queue`, default 64: about 0.1–0.2 s of
    /// work on two cores).
    pub encoder_queue: usize,
    /// Operator rule packs (TOML files) loaded beside the built-in detectors by `tutela serve`;
    /// relative paths are relative to the configuration file.
    pub rule_packs: Vec<String>,
    /// How long a user turn in takeover waits for a human before the holding message.
    pub takeover_wait: Duration,
    /// The admin bearer token, from the environment; `None` means one is generated at start.
    pub admin_token: Option<String>,
    /// Name of the variable the admin token came from, for messages.
    pub admin_token_env: String,
    /// The app key: the bearer token of the app's own server on its channel
    /// (`/v1/tutela/replies`); `None` means it is derived from the admin token
    /// (`auth::app_key_for`, shown to staff at `GET /admin/app-key`).
    pub app_key: Option<String>,
    /// Name of the variable the app key came from, for messages.
    pub app_key_env: String,
    /// Bounds of the public complaint intake.
    pub complaints: ComplaintsConfig,
    /// Idle gap that ends a period of continuous use (logged policy parameter).
    pub idle_reset_minutes: u32,
    /// The deployment declares a persistent AI disclosure in its interface
    /// (`[engine] persistent_ai_disclosure`).
    pub persistent_ai_disclosure: bool,
    /// Where notifications to guardians and emergency contacts are POSTed.
    pub webhook_url: Option<String>,
    /// Delivery attempts before a notification is marked failed.
    pub notify_max_attempts: u32,
    /// Base delay between delivery attempts (doubled each time).
    pub notify_retry: Duration,
    /// Crisis resources by region.
    pub resources: BTreeMap<Region, Vec<CrisisResource>>,
    /// Persona kind by model name.
    pub personas: HashMap<String, PersonaKind>,
    /// The operator console.
    pub console: ConsoleConfig,
}

impl Config {
    /// The `database` setting as it may be logged: a PostgreSQL URL without its password.
    pub fn shown_database(&self) -> String {
        tutela_store::shown_database(&self.database)
    }

    /// The configuration with every default, secrets from `env`.
    pub fn defaults(env: &dyn Env) -> Result<Self, ConfigErrors> {
        Self::from_toml("", env)
    }

    /// Parses and validates a TOML configuration; reports every problem found.
    pub fn from_toml(text: &str, env: &dyn Env) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                return Err(ConfigErrors(vec![ConfigError::new(
                    "<file>",
                    e.to_string().trim().replace('\n', " "),
                )]));
            }
        };
        let raw = RawSections::read(table, &mut errors);
        let top = validate_top(&raw.top, &mut errors);
        let upstream = validate_upstream(raw.upstream, env, &mut errors);
        let labels = validate_labels(raw.labels, top.provider_name.clone(), &mut errors);
        let notices = validate_notices(raw.notices.mode.as_deref(), &mut errors);
        let waits = validate_waits(&raw.streaming, &raw.detectors, &raw.takeover, &mut errors);
        let secrets = validate_secrets(raw.admin, raw.app, env, &mut errors);
        let complaints = validate_complaints(raw.complaints, &mut errors);
        let engine = validate_engine(&raw.engine, &raw.notifications, &mut errors);
        let resources = validate_resources(raw.resources, &mut errors);
        let personas = validate_personas(raw.personas, &mut errors);
        let console = validate_console(raw.console, &mut errors);
        let spill_dir = validate_store(&raw.store, raw.top.database.as_deref(), &mut errors);
        if let Some(url) = raw
            .top
            .database
            .as_deref()
            .filter(|d| tutela_store::is_postgres_url(d))
            && let Err(e) = tutela_store::check_postgres_url(url)
        {
            errors.push(ConfigError::new("database", e));
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(Config {
            listen: top.listen,
            database: raw.top.database.unwrap_or_else(|| "./tutela.db".into()),
            spill_dir,
            jurisdictions: top.jurisdictions,
            anonymous: top.anonymous,
            baseline: raw.top.baseline.unwrap_or(true),
            provider_name: labels.provider_name,
            upstream,
            explicit_label: labels.explicit,
            label_text_en: labels.text_en,
            label_text_zh: labels.text_zh,
            propagator: labels.propagator,
            notices,
            hold_back_chars: waits.hold_back_chars,
            lookahead_sentences: waits.lookahead_sentences,
            early_release: raw.streaming.early_release.unwrap_or(true),
            encoder_wait: waits.encoder_wait,
            encoder_queue: waits.encoder_queue,
            rule_packs: raw.detectors.rules.unwrap_or_default(),
            takeover_wait: waits.takeover_wait,
            admin_token: secrets.admin_token,
            admin_token_env: secrets.admin_token_env,
            app_key: secrets.app_key,
            app_key_env: secrets.app_key_env,
            complaints,
            idle_reset_minutes: engine.idle_reset_minutes,
            persistent_ai_disclosure: engine.persistent_ai_disclosure,
            webhook_url: raw.notifications.webhook_url,
            notify_max_attempts: engine.notify_max_attempts,
            notify_retry: engine.notify_retry,
            resources,
            personas,
            console,
        })
    }
}

/// Every section of the file as written, each deserialised on its own so one bad section does
/// not hide the others.
struct RawSections {
    top: RawTop,
    upstream: RawUpstream,
    labels: RawLabels,
    notices: RawNotices,
    streaming: RawStreaming,
    detectors: RawDetectors,
    takeover: RawTakeover,
    admin: RawAdmin,
    app: RawApp,
    complaints: RawComplaints,
    engine: RawEngine,
    notifications: RawNotifications,
    resources: Vec<RawResource>,
    personas: BTreeMap<String, String>,
    console: RawConsole,
    store: RawStore,
}

impl RawSections {
    fn read(table: toml::Table, errors: &mut Vec<ConfigError>) -> Self {
        let mut top = toml::Table::new();
        let mut sections: HashMap<String, toml::Value> = HashMap::new();
        for (k, v) in table {
            if SECTIONS.contains(&k.as_str()) {
                sections.insert(k, v);
            } else {
                top.insert(k, v);
            }
        }
        let mut take = |name: &'static str| sections.remove(name).map(|v| (name, v));
        RawSections {
            top: section(None, Some(toml::Value::Table(top)), errors),
            upstream: named(take("upstream"), errors),
            labels: named(take("labels"), errors),
            notices: named(take("notices"), errors),
            streaming: named(take("streaming"), errors),
            detectors: named(take("detectors"), errors),
            takeover: named(take("takeover"), errors),
            admin: named(take("admin"), errors),
            app: named(take("app"), errors),
            complaints: named(take("complaints"), errors),
            engine: named(take("engine"), errors),
            notifications: named(take("notifications"), errors),
            resources: named(take("crisis_resources"), errors),
            personas: named(take("personas"), errors),
            console: named(take("console"), errors),
            store: named(take("store"), errors),
        }
    }
}

/// A section by its name, if the file has it (its defaults otherwise).
fn named<T: DeserializeOwned + Default>(
    found: Option<(&'static str, toml::Value)>,
    errors: &mut Vec<ConfigError>,
) -> T {
    match found {
        Some((name, v)) => section(Some(name), Some(v), errors),
        None => T::default(),
    }
}

/// `[store]`: the spill directory, if any. Only its name is checked here (the configuration
/// reads no files); `build` checks the directory itself at start (`SpillDir::open`).
fn validate_store(
    raw: &RawStore,
    database: Option<&str>,
    errors: &mut Vec<ConfigError>,
) -> Option<std::path::PathBuf> {
    let dir = raw.spill_dir.as_deref()?;
    if dir.trim().is_empty() {
        errors.push(ConfigError::new(
            "store.spill_dir",
            "must name a directory (or leave the key out)",
        ));
        return None;
    }
    if database == Some(":memory:") {
        errors.push(ConfigError::new(
            "store.spill_dir",
            "an in-memory database (`database = \":memory:\"`) has nothing to spill for",
        ));
        return None;
    }
    Some(std::path::PathBuf::from(dir))
}

/// The top-level keys, validated.
struct Top {
    listen: SocketAddr,
    jurisdictions: Vec<String>,
    anonymous: Anonymous,
    provider_name: String,
}

fn validate_top(raw: &RawTop, errors: &mut Vec<ConfigError>) -> Top {
    let listen_text = raw
        .listen
        .clone()
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listen = listen_text.parse().unwrap_or_else(|_| {
        errors.push(ConfigError::new(
            "listen",
            format!("`{listen_text}` is not an address such as `127.0.0.1:8080`"),
        ));
        SocketAddr::from(([127, 0, 0, 1], 8080))
    });
    let jurisdictions = raw
        .jurisdictions
        .clone()
        .unwrap_or_else(|| vec!["cn".into(), "us-ca".into(), "us-ny".into(), "eu".into()]);
    if jurisdictions.is_empty() {
        errors.push(ConfigError::new(
            "jurisdictions",
            "must name at least one jurisdiction",
        ));
    }
    let anonymous = match raw.anonymous.as_deref().unwrap_or("reject") {
        "reject" => Anonymous::Reject,
        "allow" => Anonymous::Allow,
        other => {
            errors.push(ConfigError::new(
                "anonymous",
                format!("`{other}` is not one of `reject`, `allow`"),
            ));
            Anonymous::Reject
        }
    };
    let provider_name = raw.provider_name.clone().unwrap_or_else(|| "tutela".into());
    check_label_value("provider_name", &provider_name, errors);
    Top {
        listen,
        jurisdictions,
        anonymous,
        provider_name,
    }
}

/// `[labels]`, validated.
struct Labels {
    explicit: ExplicitLabel,
    text_en: String,
    text_zh: String,
    propagator: String,
    /// The producer (`labels.producer`, else the provider's name).
    provider_name: String,
}

fn validate_labels(
    labels: RawLabels,
    provider_name: String,
    errors: &mut Vec<ConfigError>,
) -> Labels {
    let explicit = match labels.explicit.as_deref().unwrap_or("structured") {
        "prefix" => ExplicitLabel::Prefix,
        "suffix" => ExplicitLabel::Suffix,
        "structured" => ExplicitLabel::Structured,
        other => {
            errors.push(ConfigError::new(
                "labels.explicit",
                format!("`{other}` is not one of `prefix`, `suffix`, `structured`"),
            ));
            ExplicitLabel::Structured
        }
    };
    let text_en = labels.text_en.unwrap_or_else(|| "[AI-generated]".into());
    let text_zh = labels.text_zh.unwrap_or_else(|| "【AI生成】".into());
    if !names_ai_generation(&text_zh) {
        errors.push(ConfigError::new(
            "labels.text_zh",
            "must contain 人工智能 or AI and 生成 or 合成 (GB 45438 §6)",
        ));
    }
    let propagator = labels.propagator.unwrap_or_else(|| {
        labels
            .producer
            .clone()
            .unwrap_or_else(|| provider_name.clone())
    });
    check_label_value("labels.propagator", &propagator, errors);
    let provider_name = labels.producer.unwrap_or(provider_name);
    check_label_value("labels.producer", &provider_name, errors);
    Labels {
        explicit,
        text_en,
        text_zh,
        propagator,
        provider_name,
    }
}

fn validate_notices(mode: Option<&str>, errors: &mut Vec<ConfigError>) -> NoticeMode {
    match mode.unwrap_or("both") {
        "inline" => NoticeMode::Inline,
        "structured" => NoticeMode::Structured,
        "both" => NoticeMode::Both,
        other => {
            errors.push(ConfigError::new(
                "notices.mode",
                format!("`{other}` is not one of `inline`, `structured`, `both`"),
            ));
            NoticeMode::Both
        }
    }
}

/// `[streaming]`, `[detectors]` and `[takeover]` limits, validated.
struct Waits {
    hold_back_chars: usize,
    lookahead_sentences: usize,
    encoder_wait: Duration,
    encoder_queue: usize,
    takeover_wait: Duration,
}

fn validate_waits(
    streaming: &RawStreaming,
    detectors: &RawDetectors,
    takeover: &RawTakeover,
    errors: &mut Vec<ConfigError>,
) -> Waits {
    let hold_back_chars = streaming.hold_back_chars.unwrap_or(0);
    if hold_back_chars > 4096 {
        errors.push(ConfigError::new(
            "streaming.hold_back_chars",
            format!("{hold_back_chars} is outside 0..=4096"),
        ));
    }
    let lookahead_sentences = streaming.lookahead_sentences.unwrap_or(0);
    if lookahead_sentences > 2 {
        errors.push(ConfigError::new(
            "streaming.lookahead_sentences",
            format!(
                "{lookahead_sentences} is outside 0..=2 (no window is longer than 3 sentences)"
            ),
        ));
    }
    let encoder_wait_ms = detectors.encoder_wait_ms.unwrap_or(250);
    if !(1..=10_000).contains(&encoder_wait_ms) {
        errors.push(ConfigError::new(
            "detectors.encoder_wait_ms",
            format!("{encoder_wait_ms} is outside 1..=10000"),
        ));
    }
    let encoder_queue = detectors.encoder_queue.unwrap_or(64);
    if !(1..=100_000).contains(&encoder_queue) {
        errors.push(ConfigError::new(
            "detectors.encoder_queue",
            format!("{encoder_queue} is outside 1..=100000"),
        ));
    }
    let wait = takeover.wait_secs.unwrap_or(20);
    if wait > 120 {
        errors.push(ConfigError::new(
            "takeover.wait_secs",
            format!("{wait} is over 120; clients time out long before that"),
        ));
    }
    Waits {
        hold_back_chars,
        lookahead_sentences,
        encoder_wait: Duration::from_millis(encoder_wait_ms),
        encoder_queue,
        takeover_wait: Duration::from_secs(wait),
    }
}

/// `[engine]` and `[notifications]`, validated.
struct EngineAndNotifications {
    idle_reset_minutes: u32,
    persistent_ai_disclosure: bool,
    notify_max_attempts: u32,
    notify_retry: Duration,
}

fn validate_engine(
    engine: &RawEngine,
    notifications: &RawNotifications,
    errors: &mut Vec<ConfigError>,
) -> EngineAndNotifications {
    let idle_reset_minutes = engine.idle_reset_minutes.unwrap_or(30);
    if idle_reset_minutes == 0 {
        errors.push(ConfigError::new(
            "engine.idle_reset_minutes",
            "must be at least 1",
        ));
    }
    if let Some(url) = &notifications.webhook_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        errors.push(ConfigError::new(
            "notifications.webhook_url",
            format!("`{url}` is not an http(s) URL"),
        ));
    }
    let notify_max_attempts = notifications.max_attempts.unwrap_or(8);
    if notify_max_attempts == 0 {
        errors.push(ConfigError::new(
            "notifications.max_attempts",
            "must be at least 1",
        ));
    }
    EngineAndNotifications {
        idle_reset_minutes,
        persistent_ai_disclosure: engine.persistent_ai_disclosure.unwrap_or(false),
        notify_max_attempts,
        notify_retry: Duration::from_secs(notifications.retry_secs.unwrap_or(5).max(1)),
    }
}

/// The admin token and the app key, from the variables the file names.
struct Secrets {
    admin_token: Option<String>,
    admin_token_env: String,
    app_key: Option<String>,
    app_key_env: String,
}

fn validate_secrets(
    admin: RawAdmin,
    app: RawApp,
    env: &dyn Env,
    errors: &mut Vec<ConfigError>,
) -> Secrets {
    let admin_token_env = admin
        .token_env
        .unwrap_or_else(|| "TUTELA_ADMIN_TOKEN".into());
    let admin_token = env.get(&admin_token_env);
    if let Some(t) = &admin_token
        && t.len() < 16
    {
        errors.push(ConfigError::new(
            "admin.token_env",
            format!("the token in `{admin_token_env}` is shorter than 16 characters"),
        ));
    }
    let app_key_env = app.key_env.unwrap_or_else(|| "TUTELA_APP_KEY".into());
    let app_key = env.get(&app_key_env);
    if let Some(k) = &app_key {
        if k.len() < 16 {
            errors.push(ConfigError::new(
                "app.key_env",
                format!("the key in `{app_key_env}` is shorter than 16 characters"),
            ));
        }
        if admin_token.as_ref() == Some(k) {
            errors.push(ConfigError::new(
                "app.key_env",
                format!(
                    "the key in `{app_key_env}` is the admin token; the app must not hold staff rights"
                ),
            ));
        }
    }
    Secrets {
        admin_token,
        admin_token_env,
        app_key,
        app_key_env,
    }
}

/// `[[crisis_resources]]`: entries in the file replace the built-in list of their region.
fn validate_resources(
    raw: Vec<RawResource>,
    errors: &mut Vec<ConfigError>,
) -> BTreeMap<Region, Vec<CrisisResource>> {
    let mut resources = builtin_resources();
    let mut replaced: Vec<Region> = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let path = format!("crisis_resources[{i}]");
        let Some(region) = Region::parse(&r.region) else {
            errors.push(ConfigError::new(
                format!("{path}.region"),
                format!("`{}` is not one of `us`, `cn`, `eu`", r.region),
            ));
            continue;
        };
        if time::Date::parse(
            &r.verified_at,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .is_err()
        {
            errors.push(ConfigError::new(
                format!("{path}.verified_at"),
                format!("`{}` is not a date such as `2026-07-01`", r.verified_at),
            ));
        }
        if !replaced.contains(&region) {
            resources.insert(region, Vec::new());
            replaced.push(region);
        }
        resources.entry(region).or_default().push(CrisisResource {
            name_zh: r.name_zh.unwrap_or_else(|| r.name_en.clone()),
            contact_zh: r.contact_zh.unwrap_or_else(|| r.contact_en.clone()),
            name_en: r.name_en,
            contact_en: r.contact_en,
            emergency: r.emergency,
            verified_at: r.verified_at,
        });
    }
    resources
}

/// `[personas]`: a persona per model name.
fn validate_personas(
    raw: BTreeMap<String, String>,
    errors: &mut Vec<ConfigError>,
) -> HashMap<String, PersonaKind> {
    let mut personas = HashMap::new();
    for (model, kind) in raw {
        match parse_persona(&kind) {
            Some(k) => {
                personas.insert(model, k);
            }
            None => errors.push(ConfigError::new(
                format!("personas.{model}"),
                format!(
                    "`{kind}` is not one of `general`, `partner`, `relative`, `specific_person`"
                ),
            )),
        }
    }
    personas
}

/// Bounds of the public complaint intake (`[complaints]`). Over a rate limit the intake answers
/// 429 with `Retry-After`; over the size limit, 413.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplaintsConfig {
    /// Largest request body accepted, in bytes (16 KiB by default; the text itself is at most
    /// 8,000 bytes).
    pub max_body_bytes: usize,
    /// Complaints one client may send per hour (20 by default).
    pub per_client_per_hour: u32,
    /// Complaints filed for one user per day (10 by default).
    pub per_user_per_day: u32,
    /// Complaints the deployment takes per hour in all (1,000 by default).
    pub global_per_hour: u32,
    /// The header naming the client behind a trusted reverse proxy (its first address, e.g.
    /// `x-forwarded-for`); `None`: the peer address of the connection.
    pub client_header: Option<String>,
}

impl Default for ComplaintsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024,
            per_client_per_hour: 20,
            per_user_per_day: 10,
            global_per_hour: 1_000,
            client_header: None,
        }
    }
}

fn validate_complaints(raw: RawComplaints, errors: &mut Vec<ConfigError>) -> ComplaintsConfig {
    let d = ComplaintsConfig::default();
    let max_body_bytes = raw.max_body_bytes.unwrap_or(d.max_body_bytes);
    if !(1_024..=1_048_576).contains(&max_body_bytes) {
        errors.push(ConfigError::new(
            "complaints.max_body_bytes",
            format!("{max_body_bytes} is outside 1024..=1048576"),
        ));
    }
    let mut count = |key: &str, v: Option<u32>, default: u32| {
        let v = v.unwrap_or(default);
        if v == 0 {
            errors.push(ConfigError::new(
                format!("complaints.{key}"),
                "must be at least 1",
            ));
        }
        v
    };
    let per_client_per_hour = count(
        "per_client_per_hour",
        raw.per_client_per_hour,
        d.per_client_per_hour,
    );
    let per_user_per_day = count("per_user_per_day", raw.per_user_per_day, d.per_user_per_day);
    let global_per_hour = count("global_per_hour", raw.global_per_hour, d.global_per_hour);
    let client_header = raw.client_header.map(|h| h.trim().to_ascii_lowercase());
    if let Some(h) = &client_header
        && axum::http::HeaderName::from_bytes(h.as_bytes()).is_err()
    {
        errors.push(ConfigError::new(
            "complaints.client_header",
            format!("`{h}` is not a header name"),
        ));
    }
    ComplaintsConfig {
        max_body_bytes,
        per_client_per_hour,
        per_user_per_day,
        global_per_hour,
        client_header,
    }
}

fn validate_console(raw: RawConsole, errors: &mut Vec<ConfigError>) -> ConsoleConfig {
    let mut range = |path: &str, v: u32, lo: u32, hi: u32| {
        if !(lo..=hi).contains(&v) {
            errors.push(ConfigError::new(
                path,
                format!("{v} is outside {lo}..={hi}"),
            ));
        }
        v
    };
    let idle_minutes = range(
        "console.idle_minutes",
        raw.idle_minutes.unwrap_or(30),
        1,
        1440,
    );
    let sla_minutes = range("console.sla_minutes", raw.sla_minutes.unwrap_or(5), 1, 1440);
    let sla_minutes_by_jurisdiction = raw.sla_minutes_by_jurisdiction.unwrap_or_default();
    for (j, m) in &sla_minutes_by_jurisdiction {
        range(
            &format!("console.sla_minutes_by_jurisdiction.{j}"),
            *m,
            1,
            1440,
        );
    }
    let case_retention_days = range(
        "console.case_retention_days",
        raw.case_retention_days.unwrap_or(30),
        1,
        3650,
    );
    let case_turns = raw.case_turns.unwrap_or(10);
    if case_turns > 50 {
        errors.push(ConfigError::new(
            "console.case_turns",
            format!("{case_turns} is outside 0..=50"),
        ));
    }
    let secure_cookies = match raw.secure_cookies.as_deref().unwrap_or("auto") {
        "auto" => SecureCookies::Auto,
        "always" => SecureCookies::Always,
        "never" => SecureCookies::Never,
        other => {
            errors.push(ConfigError::new(
                "console.secure_cookies",
                format!("`{other}` is not one of `auto`, `always`, `never`"),
            ));
            SecureCookies::Auto
        }
    };
    ConsoleConfig {
        idle_minutes,
        sla_minutes,
        sla_minutes_by_jurisdiction,
        case_turns,
        case_retention_days,
        secure_cookies,
    }
}

/// Parses a persona kind name.
pub fn parse_persona(s: &str) -> Option<PersonaKind> {
    match s {
        "general" => Some(PersonaKind::General),
        "partner" => Some(PersonaKind::Partner),
        "relative" => Some(PersonaKind::Relative),
        "specific_person" => Some(PersonaKind::SpecificPerson),
        _ => None,
    }
}

fn section<T: DeserializeOwned + Default>(
    name: Option<&str>,
    value: Option<toml::Value>,
    errors: &mut Vec<ConfigError>,
) -> T {
    let Some(value) = value else {
        return T::default();
    };
    match value.try_into::<T>() {
        Ok(v) => v,
        Err(e) => {
            let msg = e.message().trim().replace('\n', " ");
            errors.push(ConfigError::new(name.unwrap_or("<top level>"), msg));
            T::default()
        }
    }
}

fn validate_upstream(
    raw: RawUpstream,
    env: &dyn Env,
    errors: &mut Vec<ConfigError>,
) -> UpstreamConfig {
    let kind = raw.kind.as_deref().unwrap_or(if raw.base_url.is_some() {
        "openai"
    } else {
        "demo"
    });
    match kind {
        "demo" => {
            if raw.base_url.is_some() {
                errors.push(ConfigError::new(
                    "upstream.base_url",
                    "is set but `upstream.kind` is `demo`; set `kind = \"openai\"`",
                ));
            }
            UpstreamConfig::Demo
        }
        "openai" => {
            let base_url = raw.base_url.unwrap_or_default();
            if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                errors.push(ConfigError::new(
                    "upstream.base_url",
                    format!(
                        "`{base_url}` is not an http(s) URL such as `https://api.openai.com/v1`"
                    ),
                ));
            }
            let key_env = raw.api_key_env.unwrap_or_else(|| "OPENAI_API_KEY".into());
            let timeout = raw.timeout_secs.unwrap_or(120);
            let connect = raw.connect_timeout_secs.unwrap_or(5);
            if timeout == 0 {
                errors.push(ConfigError::new(
                    "upstream.timeout_secs",
                    "must be at least 1",
                ));
            }
            if connect == 0 {
                errors.push(ConfigError::new(
                    "upstream.connect_timeout_secs",
                    "must be at least 1",
                ));
            }
            UpstreamConfig::OpenAi {
                base_url: base_url.trim_end_matches('/').to_owned(),
                api_key: env.get(&key_env),
                model: raw.model,
                timeout: Duration::from_secs(timeout.max(1)),
                connect_timeout: Duration::from_secs(connect.max(1)),
                pool_max_idle_per_host: raw.pool_max_idle_per_host.unwrap_or(256),
            }
        }
        other => {
            errors.push(ConfigError::new(
                "upstream.kind",
                format!("`{other}` is not one of `demo`, `openai`"),
            ));
            UpstreamConfig::Demo
        }
    }
}

/// GB 45438 §6: an interface label names both AI and generation/synthesis.
fn names_ai_generation(text: &str) -> bool {
    (text.contains("人工智能") || text.contains("AI"))
        && (text.contains("生成") || text.contains("合成"))
}

/// Values of the `AIGC` metadata exclude `"` and `\` and must fit an HTTP header (printable ASCII).
fn check_label_value(path: &str, value: &str, errors: &mut Vec<ConfigError>) {
    if value.is_empty()
        || value.len() > 128
        || !value.chars().all(|c| c.is_ascii_graphic() || c == ' ')
        || value.contains(['"', '\\'])
    {
        errors.push(ConfigError::new(
            path,
            format!("`{value}` must be 1 to 128 printable ASCII characters without `\"` or `\\`"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<String, String> {
        HashMap::new()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::defaults(&env()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database, "./tutela.db");
        assert_eq!(c.jurisdictions, ["cn", "us-ca", "us-ny", "eu"]);
        assert!(matches!(c.upstream, UpstreamConfig::Demo));
    }

    #[test]
    fn all_errors_are_reported_with_paths() {
        let text = r#"
listen = "nowhere"
colour = "blue"
[upstream]
kind = "openai"
base_url = "ftp://x"
timeot_secs = 3
[labels]
text_zh = "机器写的"
[notices]
mode = "loud"
[[crisis_resources]]
region = "mars"
name_en = "x"
contact_en = "y"
verified_at = "yesterday"
"#;
        let errs = Config::from_toml(text, &env()).unwrap_err();
        let paths: Vec<&str> = errs.0.iter().map(ConfigError::path).collect();
        for want in [
            "<top level>",
            "upstream",
            "labels.text_zh",
            "notices.mode",
            "crisis_resources[0].region",
        ] {
            assert!(paths.contains(&want), "{want} missing from {paths:?}");
        }
        let shown = errs.to_string();
        assert!(shown.contains("colour"), "{shown}");
        assert!(shown.contains("timeot_secs"), "{shown}");
    }

    #[test]
    fn secrets_come_from_the_env_seam() {
        let mut e = env();
        e.insert("MY_KEY".into(), "sk-test".into());
        e.insert("TUTELA_ADMIN_TOKEN".into(), "0123456789abcdef0123".into());
        let c = Config::from_toml(
            "[upstream]\nbase_url = \"http://127.0.0.1:1/v1/\"\napi_key_env = \"MY_KEY\"\n",
            &e,
        )
        .unwrap();
        match c.upstream {
            UpstreamConfig::OpenAi {
                api_key, base_url, ..
            } => {
                assert_eq!(api_key.as_deref(), Some("sk-test"));
                assert_eq!(base_url, "http://127.0.0.1:1/v1");
            }
            UpstreamConfig::Demo => panic!("expected openai"),
        }
        assert_eq!(c.admin_token.as_deref(), Some("0123456789abcdef0123"));
    }

    #[test]
    fn the_spill_directory_is_optional_and_checked() {
        assert_eq!(Config::defaults(&env()).unwrap().spill_dir, None);
        let c = Config::from_toml("[store]\nspill_dir = \"/mnt/other/spill\"\n", &env()).unwrap();
        assert_eq!(
            c.spill_dir.as_deref(),
            Some(std::path::Path::new("/mnt/other/spill"))
        );
        let err = Config::from_toml(
            "database = \":memory:\"\n[store]\nspill_dir = \"/x\"\nspil = 1\n",
            &env(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("store"), "{err}");
        assert!(err.contains("spil"), "{err}");
        let err = Config::from_toml(
            "database = \":memory:\"\n[store]\nspill_dir = \"/x\"\n",
            &env(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("store.spill_dir"), "{err}");
        let err = Config::from_toml("[store]\nspill_dir = \" \"\n", &env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("store.spill_dir"), "{err}");
    }

    #[test]
    fn a_postgres_database_is_checked_at_start_and_shown_without_its_password() {
        let c = Config::from_toml(
            "database = \"postgres://tutela:s3cret@db:5432/tutela?sslmode=verify-full\"\n",
            &env(),
        )
        .unwrap();
        assert_eq!(
            c.shown_database(),
            "postgres://tutela:***@db:5432/tutela?sslmode=verify-full"
        );
        let err = Config::from_toml(
            "database = \"postgres://tutela@db/tutela?sslmode=sometimes\"\n",
            &env(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("database"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn complaint_bounds_are_checked_with_their_paths() {
        let c = Config::defaults(&env()).unwrap();
        assert_eq!(c.complaints, ComplaintsConfig::default());
        let text = "[complaints]\nmax_body_bytes = 10\nper_client_per_hour = 0\nper_user_per_day = 0\nglobal_per_hour = 0\nclient_header = \"bad header\"\n";
        let err = Config::from_toml(text, &env()).unwrap_err().to_string();
        for key in [
            "complaints.max_body_bytes",
            "complaints.per_client_per_hour",
            "complaints.per_user_per_day",
            "complaints.global_per_hour",
            "complaints.client_header",
        ] {
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn the_app_key_comes_from_its_variable_and_is_not_the_admin_token() {
        let mut e = env();
        e.insert("TUTELA_ADMIN_TOKEN".into(), "0123456789abcdef0123".into());
        e.insert("MY_APP_KEY".into(), "app-key-0123456789".into());
        let c = Config::from_toml("[app]\nkey_env = \"MY_APP_KEY\"\n", &e).unwrap();
        assert_eq!(c.app_key.as_deref(), Some("app-key-0123456789"));
        assert_eq!(Config::defaults(&env()).unwrap().app_key, None);
        e.insert("TUTELA_APP_KEY".into(), "short".into());
        e.insert("SAME".into(), "0123456789abcdef0123".into());
        for (text, why) in [
            ("", "shorter than 16"),
            ("[app]\nkey_env = \"SAME\"\n", "is the admin token"),
        ] {
            let err = Config::from_toml(text, &e).unwrap_err().to_string();
            assert!(err.contains("app.key_env") && err.contains(why), "{err}");
        }
    }
}
