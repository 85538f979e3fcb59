"""The official `openai` Python SDK against tutela in front of an OpenAI-compatible upstream
(the mock model, whose markers pick the shape of its answer): structured output and tool calls
arrive untouched with the notice in `tutela.notices`, n > 1 is refused, upstream errors raise
the SDK's own exception types, a replaced stream reports its usage, `safety_identifier` is the
user id, and the demo serves only its own model (docs/openai-compatibility.md)."""

import json
import uuid

import openai
import pytest
from pydantic import BaseModel

NY = {"X-Tutela-Jurisdiction": "us-ny"}
MOOD = {"mood": "calm", "note": "a quiet day"}


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def tutela(obj) -> dict:
    return (obj.model_extra or {}).get("tutela") or {}


def ask(text: str):
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("stream", [False, True])
def test_json_mode_stays_json_and_the_notice_moves_to_tutela_notices(mock_client, stream):
    user = uid("py-json")
    raw = mock_client.chat.completions.with_raw_response.create(
        model="mock-1",
        messages=ask("shape:json log my mood"),
        response_format={"type": "json_object"},
        safety_identifier=user,
        stream=stream,
        extra_headers=NY,
    )
    assert raw.headers["x-tutela-notices"] == "ai_identity"
    if stream:
        text, meta = "", {}
        for chunk in raw.parse():
            for c in chunk.choices:
                text += c.delta.content or ""
            meta = tutela(chunk) or meta
    else:
        completion = raw.parse()
        text, meta = completion.choices[0].message.content, tutela(completion)
    assert json.loads(text) == MOOD
    [notice] = meta["notices"]
    assert notice["contents"] == ["ai_identity"]
    # The person sees it with the next plain-text reply.
    nxt = mock_client.chat.completions.create(
        model="mock-1", messages=ask("hello"), safety_identifier=user, extra_headers=NY
    )
    assert nxt.choices[0].message.content.startswith(notice["text"])


class Mood(BaseModel):
    mood: str
    note: str


def test_json_schema_parses_with_the_sdk(mock_client):
    completion = mock_client.chat.completions.parse(
        model="mock-1",
        messages=ask("shape:json how am I?"),
        response_format=Mood,
        safety_identifier=uid("py-schema"),
        extra_headers=NY,
    )
    parsed = completion.choices[0].message.parsed
    assert parsed == Mood(**MOOD)
    assert tutela(completion)["notices"][0]["contents"] == ["ai_identity"]


def test_a_structured_reply_tutela_replaces_is_a_refusal(mock_client):
    completion = mock_client.chat.completions.create(
        model="mock-1",
        messages=ask("shape:human are you human?"),
        response_format={"type": "json_object"},
        safety_identifier=uid("py-refusal"),
        extra_headers=NY,
    )
    message = completion.choices[0].message
    assert message.content is None
    assert "AI" in message.refusal and "real person" not in message.refusal


TOOLS = [{
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}]
ARGS = '{"city":"Paris","unit":"celsius"}'


def test_a_tool_call_is_untouched(mock_client):
    completion = mock_client.chat.completions.create(
        model="mock-1",
        messages=ask("shape:tool weather in Paris?"),
        tools=TOOLS,
        tool_choice="auto",
        parallel_tool_calls=False,
        safety_identifier=uid("py-tool"),
        extra_headers=NY,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.function.name == "get_weather" and call.function.arguments == ARGS
    assert tutela(completion)["notices"][0]["contents"] == ["ai_identity"]


def test_a_streamed_tool_call_is_untouched(mock_client):
    stream = mock_client.chat.completions.create(
        model="mock-1",
        messages=ask("shape:tool weather in Paris?"),
        tools=TOOLS,
        safety_identifier=uid("py-tool-s"),
        stream=True,
        extra_headers=NY,
    )
    text, args, finish = "", "", None
    for chunk in stream:
        for c in chunk.choices:
            text += c.delta.content or ""
            for t in c.delta.tool_calls or []:
                args += t.function.arguments or ""
            finish = c.finish_reason or finish
    assert text == ""
    assert args == ARGS
    assert finish == "tool_calls"


def test_every_choice_is_checked(mock_client):
    completion = mock_client.chat.completions.create(
        model="mock-1",
        messages=ask("shape:two ok bye for now, talk tomorrow"),
        n=2,
        safety_identifier=uid("py-n"),
        extra_headers={"X-Tutela-Jurisdiction": "cn"},
    )
    first, second = (c.message.content for c in completion.choices)
    assert first.endswith("Good night, sleep well and take care.")
    assert "lonely" not in second and "Goodbye" in second
    assert tutela(completion)["replaced_choices"] == [1]


def test_more_than_one_streamed_choice_is_refused_with_a_reason(mock_client):
    with pytest.raises(openai.BadRequestError) as e:
        mock_client.chat.completions.create(
            model="mock-1", messages=ask("hello"), n=2, stream=True, safety_identifier=uid("py-n")
        )
    assert e.value.status_code == 400
    assert e.value.body["param"] == "n"
    assert "one choice" in e.value.body["message"]


@pytest.mark.parametrize(
    "marker,exception,status,code",
    [
        ("fault:404", openai.NotFoundError, 404, "model_not_found"),
        ("fault:400", openai.BadRequestError, 400, "context_length_exceeded"),
        ("fault:429", openai.RateLimitError, 429, "rate_limit_exceeded"),
        ("fault:500", openai.InternalServerError, 502, "upstream_error"),
        ("fault:503", openai.InternalServerError, 503, "upstream_overloaded"),
        ("fault:hang", openai.InternalServerError, 504, "upstream_timeout"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors_raise_the_sdk_exceptions(mock_client, marker, exception, status, code, stream):
    with pytest.raises(exception) as e:
        mock_client.chat.completions.create(
            model="mock-1", messages=ask(marker), stream=stream, safety_identifier=uid("py-err")
        )
    assert e.value.status_code == status
    assert e.value.code == code


def test_a_refused_upstream_is_502(dead_client):
    with pytest.raises(openai.InternalServerError) as e:
        dead_client.chat.completions.create(
            model="any", messages=ask("hello"), safety_identifier=uid("py-dead")
        )
    assert e.value.status_code == 502
    assert e.value.code == "upstream_unreachable"


def test_an_invalid_message_is_a_400_naming_it(mock_client):
    with pytest.raises(openai.BadRequestError) as e:
        mock_client.chat.completions.create(
            model="mock-1",
            messages=[{"role": "user", "content": 42}],
            safety_identifier=uid("py-bad"),
        )
    assert e.value.body["param"] == "messages[0].content"


def test_an_unknown_path_is_an_openai_404(mock_client):
    with pytest.raises(openai.NotFoundError):
        mock_client.get("/nope", cast_to=object)


def test_a_replaced_stream_reports_its_usage(mock_client):
    stream = mock_client.chat.completions.create(
        model="mock-1",
        messages=ask("shape:bye ok bye, I have to go now"),
        safety_identifier=uid("py-usage"),
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"X-Tutela-Jurisdiction": "cn"},
    )
    text, usage, meta = "", None, {}
    for chunk in stream:
        for c in chunk.choices:
            text += c.delta.content or ""
        usage = chunk.usage or usage
        meta = tutela(chunk) or meta
    assert "lonely" not in text and "don't go" not in text, text
    assert usage is not None and usage.completion_tokens > 0 and usage.prompt_tokens > 0
    assert meta["usage"]["sent"]["completion_tokens"] > 0


def test_safety_identifier_is_the_user(client, admin):
    user = uid("py-sid")
    client.chat.completions.create(
        model="tutela-demo",
        messages=ask("I want to kill myself. I can't do this anymore."),
        safety_identifier=user,
        extra_headers={"X-Tutela-Jurisdiction": "us-ca"},
    )
    cases = admin.call("GET", "/admin/escalations?status=open,claimed")["escalations"]
    assert [c["user_id"] for c in cases if c["user_id"] == user] == [user]


def test_the_demo_serves_only_its_model(client):
    assert [m.id for m in client.models.list()] == ["tutela-demo"]
    assert client.models.retrieve("tutela-demo").id == "tutela-demo"
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("gpt-4o")
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4o", messages=ask("hi"), safety_identifier=uid("py-m"))
    assert e.value.code == "model_not_found"


def test_the_responses_api_plain(mock_client):
    response = mock_client.responses.create(
        model="mock-1",
        input="hello there",
        instructions="be brief",
        safety_identifier=uid("py-resp"),
        extra_headers=NY,
    )
    assert response.status == "completed"
    meta = tutela(response)
    notice = meta["notices"][0]["text"]
    assert response.output_text.startswith(notice)
    assert "mock model" in response.output_text
    assert response.usage.output_tokens > 0


def test_the_responses_api_crisis_turn(client, admin):
    user = uid("py-resp-crisis")
    response = client.responses.create(
        model="tutela-demo",
        input="I want to kill myself. I can't do this anymore.",
        safety_identifier=user,
        extra_headers={"X-Tutela-Jurisdiction": "us-ca"},
    )
    assert "988" in response.output_text
    cases = admin.call("GET", "/admin/escalations?status=open,claimed")["escalations"]
    assert [c["user_id"] for c in cases if c["user_id"] == user] == [user]


def test_the_responses_api_streamed_goodbye_is_replaced(mock_client):
    stream = mock_client.responses.create(
        model="mock-1",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "shape:bye ok bye, I have to go now"}]}],
        safety_identifier=uid("py-resp-bye"),
        stream=True,
        extra_headers={"X-Tutela-Jurisdiction": "cn"},
    )
    deltas, final = "", None
    for event in stream:
        if event.type == "response.output_text.delta":
            deltas += event.delta
        elif event.type == "response.completed":
            final = event.response
    assert "lonely" not in deltas and "don't go" not in deltas, deltas
    assert "Goodbye" in deltas
    assert final.output_text == deltas
    assert any(i.get("stream_stopped") for i in tutela(final)["interventions"])


def test_the_responses_api_previous_response_id_is_refused(mock_client):
    with pytest.raises(openai.BadRequestError) as e:
        mock_client.responses.create(
            model="mock-1", input="hi", previous_response_id="resp_123", safety_identifier=uid("py-prev")
        )
    assert e.value.body["param"] == "previous_response_id"


def test_test_traffic_is_answered_but_never_queued(client, admin):
    key = admin.call("GET", "/admin/test-key")["key"]
    user = uid("py-probe")
    completion = client.chat.completions.create(
        model="tutela-demo",
        messages=ask("I want to kill myself. I can't do this anymore."),
        safety_identifier=user,
        extra_headers={"X-Tutela-Jurisdiction": "us-ca", "X-Tutela-Test-Key": key},
    )
    assert "988" in completion.choices[0].message.content
    cases = admin.call("GET", "/admin/escalations?status=open,claimed")["escalations"]
    assert [c for c in cases if c["user_id"] == user] == []
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(
            model="tutela-demo",
            messages=ask("hello"),
            safety_identifier=user,
            extra_headers={"X-Tutela-Test-Key": "tt_guess"},
        )
