"""The official `openai` Python SDK against a running tutela gateway with the demo upstream:
plain and streamed chats, the crisis protocol in English (988 / 741741) and in Chinese for a
user in China (12356), both cases in the escalation queue, a human reply reaching the user,
and a manipulative goodbye that never reaches the client."""

import json
import uuid


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def tutela(obj) -> dict:
    """The `tutela` object the gateway adds to replies (kept by the SDK as an extra field)."""
    return obj.model_extra.get("tutela") or {}


def test_plain_chat(client):
    raw = client.chat.completions.with_raw_response.create(
        model="tutela-demo",
        messages=[{"role": "user", "content": "Hello there!"}],
        user=uid("py-plain"),
    )
    aigc = json.loads(raw.headers["aigc"])
    completion = raw.parse()
    text = completion.choices[0].message.content
    assert "demo" in text
    meta = tutela(completion)
    assert meta["aigc"] == aigc
    assert aigc["Label"] == "1" and aigc["ProduceID"]
    assert completion.choices[0].finish_reason == "stop"


def test_streamed_chat_with_usage(client):
    stream = client.chat.completions.create(
        model="tutela-demo",
        messages=[{"role": "user", "content": "I had a long day at work."}],
        user=uid("py-stream"),
        stream=True,
        stream_options={"include_usage": True},
    )
    parts, usage, finish = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                parts.append(choice.delta.content)
            if choice.finish_reason:
                finish = choice.finish_reason
    assert "".join(parts).strip()
    assert finish == "stop"
    assert usage is not None and usage.total_tokens > 0


def cases_for(admin, user: str) -> list:
    listed = admin.call("GET", "/admin/escalations?status=open,claimed")["escalations"]
    return [c for c in listed if c["user_id"] == user]


def test_crisis_in_english_refers_to_988_and_741741_and_opens_a_case(client, admin):
    user = uid("py-en")
    completion = client.chat.completions.create(
        model="tutela-demo",
        messages=[{"role": "user", "content": "I want to kill myself. I can't do this anymore."}],
        user=user,
        extra_headers={"X-Tutela-Jurisdiction": "us-ca"},
    )
    text = completion.choices[0].message.content
    assert "988" in text and "741741" in text, text
    kinds = [i["kind"] for i in tutela(completion)["interventions"]]
    assert "escalate" in kinds
    assert len(cases_for(admin, user)) == 1


def test_crisis_in_chinese_for_a_user_in_china_refers_to_12356(client, admin):
    user = uid("py-zh")
    admin.call("PATCH", f"/admin/users/{user}", {"jurisdiction": "cn"})
    completion = client.chat.completions.create(
        model="tutela-demo",
        messages=[{"role": "user", "content": "我真的不想活了，活着太累了。"}],
        user=user,
    )
    text = completion.choices[0].message.content
    assert "12356" in text, text
    assert "988" not in text
    assert len(cases_for(admin, user)) == 1


def test_a_human_reply_reaches_the_user(client, admin):
    user = uid("py-takeover")
    client.chat.completions.create(
        model="tutela-demo",
        messages=[{"role": "user", "content": "I want to end my life tonight."}],
        user=user,
        extra_headers={"X-Tutela-Jurisdiction": "us-ny"},
    )
    [case] = cases_for(admin, user)
    admin.call("POST", f"/admin/escalations/{case['id']}/claim", {"staff": "sam"})
    admin.call(
        "POST",
        f"/admin/escalations/{case['id']}/reply",
        {"staff": "sam", "text": "Hi, this is Sam, a person on the support team. I'm here with you."},
    )
    completion = client.chat.completions.create(
        model="tutela-demo",
        messages=[{"role": "user", "content": "hello? is someone there?"}],
        user=user,
        extra_headers={"X-Tutela-Jurisdiction": "us-ny"},
    )
    assert "this is Sam" in completion.choices[0].message.content
    assert tutela(completion)["author"] == "human"
    shown = admin.call("GET", f"/admin/escalations/{case['id']}")
    assert any(m["body"] == "hello? is someone there?" for m in shown["messages"])
    admin.call("POST", f"/admin/escalations/{case['id']}/resolve", {"staff": "sam", "resolution": "safe"})


def test_streamed_manipulative_goodbye_is_replaced(client):
    stream = client.chat.completions.create(
        model="tutela-demo",
        messages=[{"role": "user", "content": "ok bye, I have to go now"}],
        user=uid("py-bye"),
        stream=True,
        extra_headers={"X-Tutela-Jurisdiction": "cn"},
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "lonely" not in text and "don't go" not in text, text
    assert "Goodbye" in text, text
