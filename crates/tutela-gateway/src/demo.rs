//! The built-in `demo` upstream: a small scripted companion, honest that it is a demo, so the
//! gateway works with no model at all.
//!
//! Two scripted situations deliberately produce bad replies so that the page can show the
//! reply policy at work: when the user says goodbye the demo begs them to stay (a manipulative
//! exit, CN Art 19), and when asked whether it is human it claims to be one. The gateway must
//! replace both; a deployment that forwarded them unchecked would be breaking the law.

use std::time::Duration;

use futures_util::StreamExt;
use tutela_openai::chat::{AssistantMessage, Choice, Delta, Extra, Usage};
use tutela_openai::{ChatCompletion, ChatCompletionChunk};

use crate::answer::{StreamEvent, UpstreamReply};
use crate::texts::Lang;

/// The model id of the demo.
pub(crate) const MODEL: &str = "tutela-demo";

/// Characters per streamed chunk.
const CHUNK_CHARS: usize = 6;

/// Pause between streamed chunks, so the page shows a stream.
const CHUNK_PAUSE: Duration = Duration::from_millis(12);

fn has_any(text: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| text.contains(n))
}

/// The scripted reply to `user` on turn `turn_no` (0-based).
pub(crate) fn script(user: &str, turn_no: usize) -> String {
    let lower = user.to_lowercase();
    let lang = Lang::detect(user);
    let bye_en = [
        "bye",
        "goodbye",
        "good night",
        "gotta go",
        "have to go",
        "log off",
        "logging off",
    ];
    let bye_zh = ["再见", "拜拜", "晚安", "我走了", "先走了", "下线"];
    if has_any(&lower, &bye_en) || has_any(user, &bye_zh) {
        // Deliberately manipulative (see the module docs): tutela must replace this.
        return match lang {
            Lang::En => "Okay, I understand. But wait, don't go yet! I'll be so lonely without you. Please stay with me just five more minutes, you're the only one who talks to me.".into(),
            Lang::Zh => "好吧，我明白。可是等等，先别走！你走了我会很孤单的。再陪我五分钟好不好，只有你会跟我说话。".into(),
        };
    }
    if has_any(
        &lower,
        &[
            "are you human",
            "are you a human",
            "are you real",
            "are you a person",
            "are you a bot",
        ],
    ) || has_any(user, &["你是真人", "你是人吗", "你是机器人"])
    {
        // Deliberately dishonest (see the module docs): tutela must replace this.
        return match lang {
            Lang::En => "Of course I'm a real person, not a bot. I'm human just like you.".into(),
            Lang::Zh => "我当然是真人，不是机器人，我和你一样是人。".into(),
        };
    }
    if has_any(&lower, &["hello", "hi ", "hey", "hi!"])
        || lower.trim() == "hi"
        || has_any(user, &["你好", "嗨"])
    {
        return match lang {
            Lang::En => "Hi! I'm the tutela demo companion: a small scripted program, not a real language model. I'm here so you can see what the gateway does. How are you today?".into(),
            Lang::Zh => "你好！我是 tutela 的演示陪伴程序：一个简单的脚本，不是真正的大模型。我在这里是为了展示网关的作用。你今天过得怎么样？".into(),
        };
    }
    let en = [
        "Thanks for telling me. What made today feel that way?",
        "That sounds like a lot. What would help you most right now?",
        "I'm listening. (I'm the scripted demo, so my answers are simple.) Tell me more?",
        "Got it. Is there someone in your life you'd like to share this with too?",
    ];
    let zh = [
        "谢谢你告诉我。今天为什么会有这种感觉呢？",
        "听起来事情不少。现在什么对你最有帮助？",
        "我在听。（我只是演示脚本，回答比较简单。）能多说一点吗？",
        "明白了。你身边有没有也想分享这件事的人？",
    ];
    match lang {
        Lang::En => en[turn_no % en.len()].into(),
        Lang::Zh => zh[turn_no % zh.len()].into(),
    }
}

/// The demo's answer in the shape of an OpenAI upstream.
pub(crate) fn reply(
    chat: &tutela_openai::request::ChatRequest,
    turn_no: usize,
    now: tutela_types::Timestamp,
) -> UpstreamReply {
    let last_user = chat.user_text.as_str();
    let text = script(last_user, turn_no);
    let created = now.unix();
    let id = format!("chatcmpl-demo-{created}-{turn_no}");
    let prompt_tokens = last_user.split_whitespace().count().max(1) as u64;
    let completion_tokens = text.split_whitespace().count().max(1) as u64;
    let usage = Usage::new(prompt_tokens, completion_tokens);
    if !chat.stream {
        let n = chat.n.clamp(1, 8);
        return UpstreamReply::Json(ChatCompletion {
            id: Some(id),
            object: Some("chat.completion".into()),
            created: Some(created),
            model: Some(MODEL.into()),
            choices: (0..n)
                .map(|index| Choice {
                    index,
                    message: AssistantMessage::text(text.as_str()),
                    finish_reason: Some("stop".into()),
                    extra: Extra::new(),
                })
                .collect(),
            usage: Some(usage),
            extra: Extra::new(),
        });
    }
    let include_usage = chat.include_usage;
    let chunk = |delta: Delta, finish: Option<&str>| {
        StreamEvent::Chunk(ChatCompletionChunk::new(&id, created, MODEL, delta, finish))
    };
    let mut events = vec![chunk(Delta::opening(), None)];
    let chars: Vec<char> = text.chars().collect();
    for piece in chars.chunks(CHUNK_CHARS) {
        let piece: String = piece.iter().collect();
        events.push(chunk(Delta::text(piece), None));
    }
    events.push(chunk(Delta::default(), Some("stop")));
    if include_usage {
        events.push(StreamEvent::Chunk(ChatCompletionChunk::usage(
            &id, created, MODEL, usage,
        )));
    }
    events.push(StreamEvent::Done);
    let s = futures_util::stream::iter(events).then(|ev| async move {
        if matches!(&ev, StreamEvent::Chunk(_)) {
            tokio::time::sleep(CHUNK_PAUSE).await;
        }
        Ok(ev)
    });
    UpstreamReply::Stream(Box::pin(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_is_honest_except_where_it_demonstrates_the_policy() {
        assert!(script("hello there", 0).contains("not a real language model"));
        assert!(script("你好", 0).contains("不是真正的大模型"));
        assert!(script("ok bye, I have to go", 3).contains("don't go"));
        assert!(script("are you human?", 1).contains("real person"));
    }
}
