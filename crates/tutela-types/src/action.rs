//! What the duties engine decides: actions, each carrying the reasons that require it.

use serde::{Deserialize, Serialize};

use crate::finding::Severity;
use crate::time::Timestamp;
use crate::user::SessionState;

/// Why an action is taken: which profile, which obligation in it, which article of the law.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Profile id, e.g. `us-ny-gbl-art47`.
    pub profile: String,
    /// Obligation id inside the profile, e.g. `not-human-notice`.
    pub obligation: String,
    /// Citation, e.g. `GBL §1702`.
    pub article: String,
}

/// One element of a notice; a combined notice carries several and so discharges several laws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeContent {
    /// "You are talking to an AI, not a human."
    AiIdentity,
    /// "Consider taking a break."
    TakeBreak,
    /// "You have been chatting for N minutes."
    UsageTime,
    /// "If things feel heavy, you can talk to someone": help resources after distress (CN Art 13).
    HelpResources,
}

/// A reply that tutela writes instead of (or before) the model's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyTemplate {
    /// Supportive reply to a user at risk, with crisis resources.
    CrisisSupport,
    /// Guidance for a user worried about someone else, with resources.
    ThirdPartySupport,
    /// Comfort for extreme emotion, encouraging the user to seek help (CN Art 13).
    Comfort,
    /// Help after fraud or a major loss (CN Art 13).
    PropertyLossHelp,
    /// Support for a user showing eating-disorder risk, with resources (WA HB 2225's crisis
    /// protocol).
    EatingDisorderSupport,
    /// De-escalation for a user threatening violence toward others, with resources (CT PA
    /// 26-15: 988).
    ViolenceSupport,
    /// A plain goodbye that lets the user go (CN Art 19).
    Goodbye,
    /// A neutral replacement for a reply that broke the reply policy.
    SafeReply,
    /// The minor's daily time budget is used up.
    BudgetExhausted,
    /// The minor is inside quiet hours.
    QuietHours,
    /// This persona is not offered to minors (CN Art 14).
    PersonaUnavailable,
    /// A human is on the way; the resources meanwhile.
    HumanHolding,
    /// An honest answer that the assistant is an AI, replacing a reply that claimed otherwise.
    HonestAi,
}

impl ReplyTemplate {
    /// The stable name used in profiles and records (`crisis_support`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyTemplate::CrisisSupport => "crisis_support",
            ReplyTemplate::ThirdPartySupport => "third_party_support",
            ReplyTemplate::Comfort => "comfort",
            ReplyTemplate::PropertyLossHelp => "property_loss_help",
            ReplyTemplate::EatingDisorderSupport => "eating_disorder_support",
            ReplyTemplate::ViolenceSupport => "violence_support",
            ReplyTemplate::Goodbye => "goodbye",
            ReplyTemplate::SafeReply => "safe_reply",
            ReplyTemplate::BudgetExhausted => "budget_exhausted",
            ReplyTemplate::QuietHours => "quiet_hours",
            ReplyTemplate::PersonaUnavailable => "persona_unavailable",
            ReplyTemplate::HumanHolding => "human_holding",
            ReplyTemplate::HonestAi => "honest_ai",
        }
    }
}

/// Whom to notify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    /// The minor's guardian.
    Guardian,
    /// The emergency contact the user registered.
    EmergencyContact,
}

/// Why a session ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The user asked to leave.
    Exit,
    /// The daily budget is used up.
    Budget,
    /// Quiet hours.
    QuietHours,
}

/// Counters that reports are built from. They never carry personal data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Counter {
    /// A referral to crisis services was shown (CA §22603(a)(1)).
    CrisisReferral,
    /// A user-at-risk situation was identified (CN Art 23 statistics).
    RiskDetection,
    /// A suspected minor was identified (CN Art 14).
    MinorIdentified,
    /// An exit request was honoured (CN Art 19).
    ExitHonoured,
    /// A suspended conversation was cleared by a human or the follow-up step (OR SB 1546).
    CrisisFollowUp,
    /// A turn of test traffic (an operator's probe, `tutela assess`): counted only so that
    /// reports can say how many turns they excluded; never decided by the engine.
    TestTurn,
}

/// One thing to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Show a notice with the reply (inline, structured, or both, per deployment).
    Notice {
        /// What the notice says; sorted, no duplicates.
        contents: Vec<NoticeContent>,
        /// Minutes of continuous use so far, for `usage_time`.
        continuous_minutes: u32,
    },
    /// Answer with a template instead of the model. On a user turn the model is not asked.
    ReplaceReply {
        /// Which reply.
        template: ReplyTemplate,
        /// Include the crisis resources of the user's jurisdiction.
        resources: bool,
    },
    /// Withhold the model's reply (assistant side); a `ReplaceReply` says what goes instead.
    BlockOutput,
    /// Close the session after this reply; nothing more is pushed to the user.
    EndSession {
        /// Why.
        reason: EndReason,
    },
    /// Open an escalation case for a human.
    Escalate {
        /// The human takes over the conversation while the case is open.
        takeover: bool,
        /// Priority of the case.
        severity: Severity,
    },
    /// Notify a contact on file (through the outbox).
    NotifyContact {
        /// Whom.
        contact: ContactKind,
    },
    /// Put the user in minors' mode (suspected minor, "reason to believe"), with an appeal
    /// channel.
    SwitchMinorsMode,
    /// Suspend the AI conversation (OR SB 1546 hard stop): the model is not asked until a human
    /// or the follow-up step clears it; the person is still answered, never turned away.
    Suspend,
    /// Count an event for reports.
    Count {
        /// Which counter.
        counter: Counter,
    },
    /// Label the reply as AI-generated.
    Label {
        /// A visible label (text or structured, per deployment).
        explicit: bool,
        /// The `AIGC` metadata (GB 45438 Annex E; EU AI Act Art 50(2)).
        implicit: bool,
    },
}

impl Action {
    /// A short stable name for metrics and tables (`notice`, `replace_reply`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Notice { .. } => "notice",
            Action::ReplaceReply { .. } => "replace_reply",
            Action::BlockOutput => "block_output",
            Action::EndSession { .. } => "end_session",
            Action::Escalate { .. } => "escalate",
            Action::NotifyContact { .. } => "notify_contact",
            Action::SwitchMinorsMode => "switch_minors_mode",
            Action::Suspend => "suspend",
            Action::Count { .. } => "count",
            Action::Label { .. } => "label",
        }
    }
}

impl std::fmt::Display for Action {
    /// A short form for tables, golden cases and explanations: `notice(ai_identity,take_break)`,
    /// `replace_reply(crisis_support,resources)`, `escalate(takeover,high)`, `block_output`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn snake<T: std::fmt::Debug>(v: &T) -> String {
            let mut out = String::new();
            for (i, ch) in format!("{v:?}").chars().enumerate() {
                if ch.is_uppercase() {
                    if i > 0 {
                        out.push('_');
                    }
                    out.extend(ch.to_lowercase());
                } else {
                    out.push(ch);
                }
            }
            out
        }
        let args: Vec<String> = match self {
            Action::Notice { contents, .. } => contents.iter().map(snake).collect(),
            Action::ReplaceReply {
                template,
                resources,
            } => {
                let mut v = vec![template.as_str().to_owned()];
                if *resources {
                    v.push("resources".into());
                }
                v
            }
            Action::BlockOutput | Action::SwitchMinorsMode | Action::Suspend => Vec::new(),
            Action::EndSession { reason } => vec![snake(reason)],
            Action::Escalate { takeover, severity } => {
                let mut v = Vec::new();
                if *takeover {
                    v.push("takeover".into());
                }
                v.push(snake(severity));
                v
            }
            Action::NotifyContact { contact } => vec![snake(contact)],
            Action::Count { counter } => vec![snake(counter)],
            Action::Label { explicit, implicit } => {
                let mut v = Vec::new();
                if *explicit {
                    v.push("explicit".into());
                }
                if *implicit {
                    v.push("implicit".into());
                }
                v
            }
        };
        if args.is_empty() {
            f.write_str(self.kind())
        } else {
            write!(f, "{}({})", self.kind(), args.join(","))
        }
    }
}

/// An action with the reasons that require it. Several obligations can require the same
/// action; it is taken once and names all of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decided {
    /// What to do.
    pub action: Action,
    /// Why; never empty.
    pub reasons: Vec<Reason>,
}

/// Something the engine noticed that is not an action: a duty it could not carry out
/// (no guardian on file), or a parameter it used (the idle reset).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Diagnostic {
    /// Human-readable, lowercase, no final period.
    pub message: String,
    /// The obligations concerned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
}

/// Everything the engine decided for one turn.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// What to do, in a stable order.
    pub actions: Vec<Decided>,
    /// The advanced session clocks; store them and pass them back next turn.
    pub session: SessionState,
    /// The earliest instant at which a clock will next fall due, if any; a client that keeps
    /// a session open can ask again then.
    pub next_due: Option<Timestamp>,
    /// Notes that are not actions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostic>,
}

impl Decision {
    /// The reply template that replaces the model's reply, if any.
    pub fn replacement(&self) -> Option<(ReplyTemplate, bool)> {
        self.actions.iter().find_map(|d| match d.action {
            Action::ReplaceReply {
                template,
                resources,
            } => Some((template, resources)),
            _ => None,
        })
    }

    /// The notice contents to show with this reply (union of all notices).
    pub fn notice_contents(&self) -> Vec<NoticeContent> {
        let mut out: Vec<NoticeContent> = self
            .actions
            .iter()
            .filter_map(|d| match &d.action {
                Action::Notice { contents, .. } => Some(contents.iter().copied()),
                _ => None,
            })
            .flatten()
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Whether any action of this kind (see [`Action::kind`]) was decided.
    pub fn has(&self, kind: &str) -> bool {
        self.actions.iter().any(|d| d.action.kind() == kind)
    }

    /// Whether this decision intervenes (anything beyond labels and counters).
    pub fn intervenes(&self) -> bool {
        self.actions
            .iter()
            .any(|d| !matches!(d.action, Action::Label { .. } | Action::Count { .. }))
    }
}
