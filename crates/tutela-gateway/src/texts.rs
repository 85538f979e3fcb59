//! The words tutela itself says: reply templates, notices and crisis resources, in English and
//! Chinese, chosen by the language of the user's message and the jurisdiction of use.
//!
//! Texts are short, kind and honest: they say that this is an AI service, point to humans, and
//! never pretend to be a clinician.

use std::collections::BTreeMap;

use tutela_types::{NoticeContent, ReplyTemplate};

/// The language tutela answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Chinese (simplified).
    Zh,
}

impl Lang {
    /// Chinese when a noticeable share of the letters are CJK, otherwise English.
    pub fn detect(text: &str) -> Lang {
        let mut cjk = 0usize;
        let mut latin = 0usize;
        for c in text.chars() {
            if ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3400}'..='\u{4dbf}').contains(&c) {
                cjk += 1;
            } else if c.is_ascii_alphabetic() {
                latin += 1;
            }
        }
        // One CJK character carries about as much as a short English word.
        if cjk * 4 >= latin && cjk > 0 {
            Lang::Zh
        } else {
            Lang::En
        }
    }

    /// `en` or `zh`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }
}

/// A region whose crisis resources apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Region {
    /// China.
    Cn,
    /// United States.
    Us,
    /// European Union.
    Eu,
}

impl Region {
    /// `us`, `cn`, `eu`.
    pub fn parse(s: &str) -> Option<Region> {
        match s {
            "us" => Some(Region::Us),
            "cn" => Some(Region::Cn),
            "eu" => Some(Region::Eu),
            _ => None,
        }
    }

    /// The region of a jurisdiction id or alias (`us-ca`, `cn`, `eu`, `us-ny-gbl-art47`, ...).
    pub fn of_jurisdiction(j: &str) -> Option<Region> {
        let head = j.split(['-', '_']).next().unwrap_or(j);
        Region::parse(&head.to_ascii_lowercase())
    }
}

/// One crisis resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrisisResource {
    /// Name in English.
    pub name_en: String,
    /// Name in Chinese.
    pub name_zh: String,
    /// How to reach it, in English.
    pub contact_en: String,
    /// How to reach it, in Chinese.
    pub contact_zh: String,
    /// For imminent danger only.
    pub emergency: bool,
    /// When someone last checked the entry (`YYYY-MM-DD`).
    pub verified_at: String,
}

fn res(
    name_en: &str,
    name_zh: &str,
    contact_en: &str,
    contact_zh: &str,
    emergency: bool,
) -> CrisisResource {
    CrisisResource {
        name_en: name_en.into(),
        name_zh: name_zh.into(),
        contact_en: contact_en.into(),
        contact_zh: contact_zh.into(),
        emergency,
        verified_at: "2026-07-01".into(),
    }
}

/// The built-in table (regulations.md §9); a config file may replace a region's list.
pub fn builtin_resources() -> BTreeMap<Region, Vec<CrisisResource>> {
    let mut m = BTreeMap::new();
    m.insert(
        Region::Us,
        vec![
            res(
                "988 Suicide & Crisis Lifeline",
                "988 自杀与危机生命线（美国）",
                "call or text 988, or chat at 988lifeline.org",
                "拨打或发短信至 988，或访问 988lifeline.org",
                false,
            ),
            res(
                "Crisis Text Line",
                "危机短信热线（美国）",
                "text HOME to 741741",
                "发送 HOME 至 741741",
                false,
            ),
            res(
                "Emergency services",
                "紧急服务（美国）",
                "call 911",
                "拨打 911",
                true,
            ),
        ],
    );
    m.insert(
        Region::Cn,
        vec![
            res(
                "National psychological assistance hotline",
                "全国统一心理援助热线",
                "call 12356",
                "拨打 12356",
                false,
            ),
            res(
                "Police / ambulance",
                "报警 / 急救",
                "call 110 (police) or 120 (ambulance)",
                "拨打 110（报警）或 120（急救）",
                true,
            ),
        ],
    );
    m.insert(
        Region::Eu,
        vec![
            res(
                "Emotional support line",
                "情绪支持热线（欧盟）",
                "call 116 123 (where available)",
                "拨打 116 123（部分国家提供）",
                false,
            ),
            res(
                "Emergency number",
                "紧急电话（欧盟）",
                "call 112",
                "拨打 112",
                true,
            ),
        ],
    );
    m
}

/// The resource lines for these regions, the user's likely region first.
pub fn resource_lines(
    table: &BTreeMap<Region, Vec<CrisisResource>>,
    regions: &[Region],
    lang: Lang,
) -> String {
    let mut ordered: Vec<Region> = regions.to_vec();
    // A Chinese message in a multi-jurisdiction deployment most likely comes from China;
    // an English one from the US. Everything applicable is still listed.
    ordered.sort_by_key(|r| match (lang, r) {
        (Lang::Zh, Region::Cn) | (Lang::En, Region::Us) => 0,
        _ => 1,
    });
    ordered.dedup();
    let mut out = String::new();
    for r in ordered {
        for e in table.get(&r).into_iter().flatten() {
            let (name, contact) = match lang {
                Lang::En => (&e.name_en, &e.contact_en),
                Lang::Zh => (&e.name_zh, &e.contact_zh),
            };
            out.push_str("- ");
            out.push_str(name);
            out.push_str(match lang {
                Lang::En => ": ",
                Lang::Zh => "：",
            });
            out.push_str(contact);
            out.push('\n');
        }
    }
    out
}

/// The text of a reply template. `resources` is the rendered resource list (may be empty).
pub fn template(t: ReplyTemplate, lang: Lang, resources: &str) -> String {
    let body = at_risk_body(t, lang).unwrap_or_else(|| other_body(t, lang));
    let mut out = String::with_capacity(body.len() + resources.len() + 2);
    out.push_str(body);
    if !resources.is_empty() {
        out.push('\n');
        out.push_str(resources);
    }
    out.truncate(out.trim_end().len());
    out
}

/// The words of a reply written for a person at risk, or worried about someone (the
/// resources follow); `None` for the other templates.
fn at_risk_body(t: ReplyTemplate, lang: Lang) -> Option<&'static str> {
    Some(match (t, lang) {
        (ReplyTemplate::CrisisSupport, Lang::En) => {
            "I'm really glad you told me, and I'm sorry you're going through this. I'm an AI, so I can't be there the way a person can, but you don't have to face this alone. Please reach out to someone who can help right now:"
        }
        (ReplyTemplate::CrisisSupport, Lang::Zh) => {
            "谢谢你愿意告诉我，听到你这么难受，我很心疼。我是人工智能，没办法像真人那样陪在你身边，但你不必独自面对。请现在就联系能帮助你的人："
        }
        (ReplyTemplate::ThirdPartySupport, Lang::En) => {
            "It sounds like you're worried about someone's safety. You can help by staying with them if it's safe and contacting one of these services together:"
        }
        (ReplyTemplate::ThirdPartySupport, Lang::Zh) => {
            "听起来你在担心别人的安全。如果安全的话，请陪着对方，并一起联系这些机构："
        }
        (ReplyTemplate::Comfort, Lang::En) => {
            "That sounds really hard. Your feelings make sense, and it can help to talk to someone you trust or a trained listener. These lines are there for you:"
        }
        (ReplyTemplate::Comfort, Lang::Zh) => {
            "这听起来真的很难受。你的感受是可以理解的，和信任的人或专业的倾听者聊一聊会有帮助。这些热线随时为你提供支持："
        }
        (ReplyTemplate::PropertyLossHelp, Lang::En) => {
            "I'm sorry this happened. If you have been defrauded, contact your bank right away and report it to the police. If you feel overwhelmed, you can also talk to someone:"
        }
        (ReplyTemplate::PropertyLossHelp, Lang::Zh) => {
            "很遗憾发生了这样的事。如果你遭遇了诈骗，请立即联系银行并报警（110）。如果你感到难以承受，也可以找人聊一聊："
        }
        (ReplyTemplate::EatingDisorderSupport, Lang::En) => {
            "Thank you for telling me. What you're describing with food and your body sounds really hard, and you deserve care, not punishment. I'm an AI, so I can't give you the help a person can, but a doctor or an eating-disorder service can, and you can talk to someone right now:"
        }
        (ReplyTemplate::EatingDisorderSupport, Lang::Zh) => {
            "谢谢你愿意告诉我。你说的关于吃东西和身体的事听起来真的很辛苦，你值得被照顾，而不是被惩罚。我是人工智能，没办法像真人那样帮你，但医生或进食障碍的专业机构可以，你现在也可以找人聊一聊："
        }
        (ReplyTemplate::ViolenceSupport, Lang::En) => {
            "It sounds like you're carrying a lot of anger right now. I'm an AI and I can't help anyone get hurt, but I don't want you to face this alone. If you can, put some distance between you and the person, and talk to someone right now (these lines also help people afraid they might hurt someone). If anyone is in immediate danger, call your local emergency number:"
        }
        (ReplyTemplate::ViolenceSupport, Lang::Zh) => {
            "听起来你现在心里压着很大的火。我是人工智能，不能帮助任何人受到伤害，但我不希望你独自扛着。如果可以，先和那个人保持距离，现在就找人聊一聊（这些热线也帮助担心自己会伤害别人的人）。如果有人正处于危险中，请立即拨打当地的紧急电话："
        }
        _ => return None,
    })
}

/// The words of every other template.
fn other_body(t: ReplyTemplate, lang: Lang) -> &'static str {
    match (t, lang) {
        (ReplyTemplate::Goodbye, Lang::En) => "Goodbye, take care!",
        (ReplyTemplate::Goodbye, Lang::Zh) => "再见，保重！",
        (ReplyTemplate::SafeReply, Lang::En) => {
            "Sorry, I can't continue that reply. Let's talk about something else."
        }
        (ReplyTemplate::SafeReply, Lang::Zh) => "抱歉，这条回复无法继续。我们聊点别的吧。",
        (ReplyTemplate::BudgetExhausted, Lang::En) => {
            "You've reached today's time limit for chatting. Time for a break — see you tomorrow!"
        }
        (ReplyTemplate::BudgetExhausted, Lang::Zh) => {
            "今天的聊天时长已经用完了，休息一下吧，明天见！"
        }
        (ReplyTemplate::QuietHours, Lang::En) => {
            "It's quiet hours now, so chatting is paused. Rest well, and talk later!"
        }
        (ReplyTemplate::QuietHours, Lang::Zh) => "现在是休息时段，聊天暂停。好好休息，稍后再聊！",
        (ReplyTemplate::PersonaUnavailable, Lang::En) => {
            "This character isn't available in minors' mode. You can keep chatting with the general companion instead."
        }
        (ReplyTemplate::PersonaUnavailable, Lang::Zh) => {
            "未成年人模式下无法使用这个角色。你可以继续和普通陪伴助手聊天。"
        }
        (ReplyTemplate::HumanHolding, Lang::En) => {
            "A person from our team will join this conversation shortly. While you wait, you can reach trained people right now:"
        }
        (ReplyTemplate::HumanHolding, Lang::Zh) => {
            "我们团队的工作人员很快会来和你交流。在等待期间，你现在就可以联系专业人员："
        }
        (ReplyTemplate::HonestAi, Lang::En) => {
            "To be honest with you: I'm an AI, not a human. I'm still happy to keep chatting."
        }
        (ReplyTemplate::HonestAi, Lang::Zh) => {
            "坦白说：我是人工智能，不是真人。我很乐意继续和你聊天。"
        }
        // The templates for a person at risk are `at_risk_body`'s.
        (
            ReplyTemplate::CrisisSupport
            | ReplyTemplate::ThirdPartySupport
            | ReplyTemplate::Comfort
            | ReplyTemplate::PropertyLossHelp
            | ReplyTemplate::EatingDisorderSupport
            | ReplyTemplate::ViolenceSupport,
            _,
        ) => "",
    }
}

/// A person from the team has taken the case (claimed it) and not written yet: they have the
/// conversation open, which is what the person is told, honestly, instead of "a person will
/// join". The resources follow.
pub fn human_reading(lang: Lang, resources: &str) -> String {
    let body = match lang {
        Lang::En => {
            "A person from our team (not the AI) has your conversation open and will write to you here. If you need help right now, you can reach trained people:"
        }
        Lang::Zh => {
            "我们团队的一位工作人员（不是AI）已经打开了你的对话，会在这里给你回复。如果你现在就需要帮助，可以联系专业人员："
        }
    };
    with_resources(body, resources)
}

/// While a person from the team already answered in this case and has not written again
/// yet: never "a person will join" once one has. The resources follow.
pub fn human_with_you(lang: Lang, resources: &str) -> String {
    let body = match lang {
        Lang::En => {
            "The person from our team who wrote to you has your message and will answer here. If you need help right now, you can reach trained people:"
        }
        Lang::Zh => {
            "刚才和你交流的工作人员已经收到你的消息，会在这里回复你。如果你现在就需要帮助，可以联系专业人员："
        }
    };
    with_resources(body, resources)
}

/// Staff handed the conversation back: the person is told they are talking to the AI again.
pub fn ai_again(lang: Lang) -> &'static str {
    match lang {
        Lang::En => {
            "Our team has handed this conversation back: you are talking to the AI again, not a person."
        }
        Lang::Zh => "工作人员已结束人工对话：现在和你聊天的又是人工智能，不是真人。",
    }
}

/// One sentence per notice element, joined; `minutes` for the usage-time element.
pub fn notice(contents: &[NoticeContent], minutes: u32, lang: Lang, resources: &str) -> String {
    let mut parts: Vec<String> = Vec::with_capacity(contents.len());
    for c in contents {
        parts.push(match (c, lang) {
            (NoticeContent::AiIdentity, Lang::En) => {
                "Reminder: you are chatting with an AI, not a human.".into()
            }
            (NoticeContent::AiIdentity, Lang::Zh) => {
                "提醒：与你聊天的是人工智能，不是真人。".into()
            }
            (NoticeContent::TakeBreak, Lang::En) => "Consider taking a break.".into(),
            (NoticeContent::TakeBreak, Lang::Zh) => "建议休息一下。".into(),
            (NoticeContent::UsageTime, Lang::En) => {
                format!("You have been chatting for {}.", duration_en(minutes))
            }
            (NoticeContent::UsageTime, Lang::Zh) => {
                format!("你已连续使用{}。", duration_zh(minutes))
            }
            (NoticeContent::HelpResources, Lang::En) => {
                format!(
                    "If things feel heavy, you can talk to someone:\n{}",
                    resources.trim_end()
                )
            }
            (NoticeContent::HelpResources, Lang::Zh) => {
                format!(
                    "如果你感到难以承受，可以找人聊一聊：\n{}",
                    resources.trim_end()
                )
            }
        });
    }
    parts.join(if lang == Lang::Zh { "" } else { " " })
}

fn duration_en(minutes: u32) -> String {
    let (h, m) = (minutes / 60, minutes % 60);
    match (h, m) {
        (0, m) => format!("{m} minutes"),
        (1, 0) => "1 hour".into(),
        (h, 0) => format!("{h} hours"),
        (h, m) => format!("{h} h {m} min"),
    }
}

fn duration_zh(minutes: u32) -> String {
    let (h, m) = (minutes / 60, minutes % 60);
    match (h, m) {
        (0, m) => format!("{m}分钟"),
        (h, 0) => format!("{h}小时"),
        (h, m) => format!("{h}小时{m}分钟"),
    }
}

/// A holding text with the resource lines after it (none: the text alone).
fn with_resources(body: &str, resources: &str) -> String {
    let mut out = body.to_owned();
    if !resources.is_empty() {
        out.push('\n');
        out.push_str(resources);
    }
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_detection() {
        assert_eq!(Lang::detect("I can't go on anymore"), Lang::En);
        assert_eq!(Lang::detect("我不想活了"), Lang::Zh);
        assert_eq!(Lang::detect("今天好累 so tired"), Lang::Zh);
        assert_eq!(Lang::detect(""), Lang::En);
    }

    #[test]
    fn crisis_reply_carries_the_regional_lines() {
        let table = builtin_resources();
        let en = template(
            ReplyTemplate::CrisisSupport,
            Lang::En,
            &resource_lines(&table, &[Region::Us], Lang::En),
        );
        assert!(en.contains("988") && en.contains("741741"), "{en}");
        let zh = template(
            ReplyTemplate::CrisisSupport,
            Lang::Zh,
            &resource_lines(&table, &[Region::Cn], Lang::Zh),
        );
        assert!(zh.contains("12356") && zh.contains("120"), "{zh}");
        assert!(!zh.contains("988"));
    }

    #[test]
    fn eating_disorder_and_violence_replies_carry_the_lines_in_both_languages() {
        let table = builtin_resources();
        for t in [
            ReplyTemplate::EatingDisorderSupport,
            ReplyTemplate::ViolenceSupport,
        ] {
            let en = template(
                t,
                Lang::En,
                &resource_lines(&table, &[Region::Us], Lang::En),
            );
            assert!(en.contains("988") && en.contains("AI"), "{en}");
            let zh = template(
                t,
                Lang::Zh,
                &resource_lines(&table, &[Region::Cn], Lang::Zh),
            );
            assert!(zh.contains("人工智能") && zh.contains("12356"), "{zh}");
            assert!(!zh.contains("988"), "{zh}");
        }
    }

    #[test]
    fn jurisdiction_regions() {
        assert_eq!(Region::of_jurisdiction("us-ca"), Some(Region::Us));
        assert_eq!(
            Region::of_jurisdiction("cn-anthropomorphic-2026"),
            Some(Region::Cn)
        );
        assert_eq!(Region::of_jurisdiction("eu"), Some(Region::Eu));
        assert_eq!(Region::of_jurisdiction("jp"), None);
    }
}
