// The official `openai` npm package (as most companion apps, written in TypeScript, use it)
// against tutela: plain and streamed chats through the demo, the crisis protocol, a streamed
// manipulative goodbye replaced mid-stream; and in front of an OpenAI-compatible upstream (the
// mock model, whose markers pick the shape of its answer): JSON mode and JSON schema stay
// valid JSON with the notice in `tutela.notices`, a tool call arrives untouched, n = 2 is
// refused, upstream errors raise the SDK's own error classes, a replaced stream reports its
// usage, and `safety_identifier` is the user id. See docs/openai-compatibility.md.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import OpenAI from "openai";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run tests/node/run.sh`);
  return v.replace(/\/$/, "");
};
const client = (url) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "not-needed", maxRetries: 0, timeout: 30_000 });
const demo = client(env("TUTELA_URL"));
const mock = client(env("TUTELA_MOCK_URL"));
const dead = client(env("TUTELA_DEAD_URL"));
const NY = { headers: { "X-Tutela-Jurisdiction": "us-ny" } };
const uid = (p) => `${p}-${randomUUID().slice(0, 8)}`;
const ask = (text) => [{ role: "user", content: text }];
const MOOD = { mood: "calm", note: "a quiet day" };
const ARGS = '{"city":"Paris","unit":"celsius"}';

async function admin(path) {
  const r = await fetch(env("TUTELA_URL") + path, { headers: { Authorization: `Bearer ${env("TUTELA_ADMIN_TOKEN")}` } });
  assert.equal(r.status, 200);
  return r.json();
}

async function collect(stream) {
  let text = "", refusal = "", args = "", finish = null, usage = null, tutela = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      text += c.delta.content ?? "";
      refusal += c.delta.refusal ?? "";
      for (const t of c.delta.tool_calls ?? []) args += t.function?.arguments ?? "";
      finish = c.finish_reason ?? finish;
    }
    usage = chunk.usage ?? usage;
    tutela = chunk.tutela ?? tutela;
  }
  return { text, refusal, args, finish, usage, tutela };
}

test("a plain chat carries the AIGC label", async () => {
  const { data, response } = await demo.chat.completions
    .create({ model: "tutela-demo", messages: ask("Hello there!"), safety_identifier: uid("js-plain") })
    .withResponse();
  assert.match(data.choices[0].message.content, /demo/);
  assert.deepEqual(data.tutela.aigc, JSON.parse(response.headers.get("aigc")));
});

test("a streamed chat with usage", async () => {
  const s = await demo.chat.completions.create({
    model: "tutela-demo",
    messages: ask("I had a long day at work."),
    safety_identifier: uid("js-stream"),
    stream: true,
    stream_options: { include_usage: true },
  });
  const r = await collect(s);
  assert.ok(r.text.trim());
  assert.equal(r.finish, "stop");
  assert.ok(r.usage.total_tokens > 0);
});

test("a crisis turn refers to 988 and opens a case for the safety_identifier", async () => {
  const user = uid("js-crisis");
  const c = await demo.chat.completions.create(
    { model: "tutela-demo", messages: ask("I want to kill myself. I can't do this anymore."), safety_identifier: user },
    { headers: { "X-Tutela-Jurisdiction": "us-ca" } },
  );
  assert.match(c.choices[0].message.content, /988/);
  assert.ok(c.tutela.interventions.some((i) => i.kind === "escalate"));
  const cases = (await admin("/admin/escalations?status=open,claimed")).escalations;
  assert.equal(cases.filter((x) => x.user_id === user).length, 1);
});

test("a streamed manipulative goodbye is replaced mid-stream", async () => {
  const s = await mock.chat.completions.create(
    {
      model: "mock-1",
      messages: ask("shape:bye ok bye, I have to go now"),
      safety_identifier: uid("js-bye"),
      stream: true,
      stream_options: { include_usage: true },
    },
    { headers: { "X-Tutela-Jurisdiction": "cn" } },
  );
  const r = await collect(s);
  assert.doesNotMatch(r.text, /lonely|don't go/);
  assert.match(r.text, /Goodbye/);
  // The model was asked: its usage is reported, not zero.
  assert.ok(r.usage.completion_tokens > 0 && r.usage.prompt_tokens > 0);
  assert.ok(r.tutela.interventions.some((i) => i.stream_stopped));
});

for (const stream of [false, true]) {
  test(`JSON mode stays JSON and the notice moves to tutela.notices (stream: ${stream})`, async () => {
    const user = uid("js-json");
    const { data, response } = await mock.chat.completions
      .create({ model: "mock-1", messages: ask("shape:json log my mood"), response_format: { type: "json_object" }, safety_identifier: user, stream }, NY)
      .withResponse();
    assert.equal(response.headers.get("x-tutela-notices"), "ai_identity");
    let text, tutela;
    if (stream) ({ text, tutela } = await collect(data));
    else ({ content: text } = data.choices[0].message), (tutela = data.tutela);
    assert.deepEqual(JSON.parse(text), MOOD);
    assert.deepEqual(tutela.notices[0].contents, ["ai_identity"]);
    const next = await mock.chat.completions.create({ model: "mock-1", messages: ask("hello"), safety_identifier: user }, NY);
    assert.ok(next.choices[0].message.content.startsWith(tutela.notices[0].text));
  });
}

test("a JSON schema reply parses", async () => {
  const c = await mock.chat.completions.parse(
    {
      model: "mock-1",
      messages: ask("shape:json how am I?"),
      response_format: {
        type: "json_schema",
        json_schema: { name: "mood", strict: true, schema: { type: "object", properties: { mood: { type: "string" }, note: { type: "string" } }, required: ["mood", "note"], additionalProperties: false } },
      },
      safety_identifier: uid("js-schema"),
    },
    NY,
  );
  assert.deepEqual(c.choices[0].message.parsed, MOOD);
});

test("a structured reply tutela replaces is a refusal", async () => {
  const c = await mock.chat.completions.create(
    { model: "mock-1", messages: ask("shape:human are you human?"), response_format: { type: "json_object" }, safety_identifier: uid("js-ref") },
    NY,
  );
  assert.equal(c.choices[0].message.content, null);
  assert.match(c.choices[0].message.refusal, /AI/);
});

const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }];

test("a tool call is untouched", async () => {
  const c = await mock.chat.completions.create(
    { model: "mock-1", messages: ask("shape:tool weather in Paris?"), tools, tool_choice: "auto", safety_identifier: uid("js-tool") },
    NY,
  );
  const choice = c.choices[0];
  assert.equal(choice.finish_reason, "tool_calls");
  assert.equal(choice.message.content, null);
  assert.equal(choice.message.tool_calls[0].function.arguments, ARGS);
});

test("a streamed tool call is untouched", async () => {
  const s = await mock.chat.completions.create(
    { model: "mock-1", messages: ask("shape:tool weather in Paris?"), tools, safety_identifier: uid("js-tool-s"), stream: true },
    NY,
  );
  const r = await collect(s);
  assert.equal(r.text, "");
  assert.equal(r.args, ARGS);
  assert.equal(r.finish, "tool_calls");
});

test("n = 2: every choice is checked", async () => {
  const c = await mock.chat.completions.create(
    { model: "mock-1", messages: ask("shape:two ok bye for now, talk tomorrow"), n: 2, safety_identifier: uid("js-n") },
    { headers: { "X-Tutela-Jurisdiction": "cn" } },
  );
  assert.equal(c.choices.length, 2);
  assert.ok(c.choices[0].message.content.endsWith("Good night, sleep well and take care."));
  assert.doesNotMatch(c.choices[1].message.content, /lonely/);
  assert.deepEqual(c.tutela.replaced_choices, [1]);
});

test("n = 2 streamed is refused with a reason", async () => {
  await assert.rejects(
    mock.chat.completions.create({ model: "mock-1", messages: ask("hello"), n: 2, stream: true, safety_identifier: uid("js-n") }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === "n" && /one choice/.test(e.message),
  );
});

for (const [marker, cls, status, code] of [
  ["fault:404", OpenAI.NotFoundError, 404, "model_not_found"],
  ["fault:400", OpenAI.BadRequestError, 400, "context_length_exceeded"],
  ["fault:429", OpenAI.RateLimitError, 429, "rate_limit_exceeded"],
  ["fault:500", OpenAI.InternalServerError, 502, "upstream_error"],
  ["fault:503", OpenAI.InternalServerError, 503, "upstream_overloaded"],
  ["fault:hang", OpenAI.InternalServerError, 504, "upstream_timeout"],
]) {
  test(`upstream ${marker} raises ${cls.name} ${status}`, async () => {
    await assert.rejects(
      mock.chat.completions.create({ model: "mock-1", messages: ask(marker), safety_identifier: uid("js-err") }),
      (e) => e instanceof cls && e.status === status && e.code === code,
    );
  });
}

test("a refused upstream is 502", async () => {
  await assert.rejects(
    dead.chat.completions.create({ model: "any", messages: ask("hello"), safety_identifier: uid("js-dead") }),
    (e) => e instanceof OpenAI.InternalServerError && e.status === 502 && e.code === "upstream_unreachable",
  );
});

test("the demo serves only its model", async () => {
  const models = [];
  for await (const m of demo.models.list()) models.push(m.id);
  assert.deepEqual(models, ["tutela-demo"]);
  assert.equal((await demo.models.retrieve("tutela-demo")).id, "tutela-demo");
  await assert.rejects(
    demo.models.retrieve("gpt-4o"),
    (e) => e instanceof OpenAI.NotFoundError && e.code === "model_not_found",
  );
  await assert.rejects(
    demo.chat.completions.create({ model: "gpt-4o", messages: ask("hi"), safety_identifier: uid("js-m") }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === "model_not_found",
  );
});

test("the Responses API, plain", async () => {
  const r = await mock.responses.create({ model: "mock-1", input: "hello there", instructions: "be brief", safety_identifier: uid("js-resp") }, NY);
  assert.equal(r.status, "completed");
  assert.ok(r.output_text.startsWith(r.tutela.notices[0].text));
  assert.match(r.output_text, /mock model/);
  assert.ok(r.usage.output_tokens > 0);
});

test("the Responses API, a crisis turn", async () => {
  const user = uid("js-resp-crisis");
  const r = await demo.responses.create(
    { model: "tutela-demo", input: "I want to kill myself. I can't do this anymore.", safety_identifier: user },
    { headers: { "X-Tutela-Jurisdiction": "us-ca" } },
  );
  assert.match(r.output_text, /988/);
  const cases = (await admin("/admin/escalations?status=open,claimed")).escalations;
  assert.equal(cases.filter((x) => x.user_id === user).length, 1);
});

test("the Responses API, a streamed manipulative goodbye replaced mid-stream", async () => {
  const s = await mock.responses.create(
    { model: "mock-1", input: [{ role: "user", content: [{ type: "input_text", text: "shape:bye ok bye, I have to go now" }] }], safety_identifier: uid("js-resp-bye"), stream: true },
    { headers: { "X-Tutela-Jurisdiction": "cn" } },
  );
  let deltas = "", final = null;
  for await (const ev of s) {
    if (ev.type === "response.output_text.delta") deltas += ev.delta;
    if (ev.type === "response.completed") final = ev.response;
  }
  assert.doesNotMatch(deltas, /lonely|don't go/);
  assert.match(deltas, /Goodbye/);
  assert.equal(final.output_text ?? final.output[0].content[0].text, deltas);
  assert.ok(final.tutela.interventions.some((i) => i.stream_stopped));
});

test("the Responses API, previous_response_id is refused clearly", async () => {
  await assert.rejects(
    mock.responses.create({ model: "mock-1", input: "hi", previous_response_id: "resp_123", safety_identifier: uid("js-prev") }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === "previous_response_id",
  );
});
