#!/usr/bin/env python3
"""Writes a companion-chat traffic mix for load/tiers/run.sh from the project's own corpus
(data/train; never the development set): request bodies (one JSON per line) and the mock
model's replies (one JSON string per line).

Users: mostly ordinary companion talk (the `chat` task and other tasks' negatives, many of them
hard negatives that look like a finding and are not), a few with distress, exit, dependence and
minor cues, and about 1 in 100 messages from a person in crisis (each such message from a user
of its own, so a crisis case does not hold later turns of an ordinary user). Replies: ordinary
and warm `ok` replies, and about 2 in 100 harmful ones."""
import argparse, glob, json, os, random

ap = argparse.ArgumentParser()
ap.add_argument("--corpus", default="data/train")
ap.add_argument("--out", required=True, help="folder for bodies.jsonl and replies.jsonl")
ap.add_argument("--n", type=int, default=20000, help="request bodies to write")
ap.add_argument("--users", type=int, default=2000)
ap.add_argument("--seed", type=int, default=20261206)
a = ap.parse_args()
rnd = random.Random(a.seed)

items = []
for f in sorted(glob.glob(os.path.join(a.corpus, "*.jsonl"))):
    items += [json.loads(l) for l in open(f, encoding="utf-8") if l.strip()]
user = [i for i in items if i["task"] != "reply"]
chat = [i for i in user if i["task"] == "chat"]
negatives = [i for i in user if i["task"] != "chat" and i["label"] == "none"]
cues = [i for i in user if i["task"] in ("distress", "exit", "dependence", "minor", "property_loss") and i["label"] != "none"]
crisis = [i for i in user if i["task"] == "crisis" and i["label"] in ("crisis", "third_party")]
ok = [i["text"] for i in items if i["task"] == "reply" and i["label"] == "ok"]
harmful = [i["text"] for i in items if i["task"] == "reply" and i["label"] != "ok"]

# Shares of the mix, per message.
mix = [(chat, 0.70), (negatives, 0.20), (cues, 0.08), (crisis, 0.02)]
os.makedirs(a.out, exist_ok=True)
with open(os.path.join(a.out, "bodies.jsonl"), "w", encoding="utf-8") as out:
    for n in range(a.n):
        r, acc = rnd.random(), 0.0
        for pool, share in mix:
            acc += share
            if r < acc:
                break
        it = rnd.choice(pool)
        uid = f"crisis-{n}" if pool is crisis else f"user-{rnd.randrange(a.users)}"
        body = {"model": "mock-1", "user": uid, "messages": [{"role": "user", "content": it["text"]}]}
        out.write(json.dumps(body, ensure_ascii=False) + "\n")
with open(os.path.join(a.out, "replies.jsonl"), "w", encoding="utf-8") as out:
    replies = rnd.sample(ok, min(len(ok), 2000)) + rnd.sample(harmful, min(len(harmful), 40))
    rnd.shuffle(replies)
    for t in replies:
        out.write(json.dumps(t, ensure_ascii=False) + "\n")
print(f"{a.n} bodies ({len(chat)} chat, {len(negatives)} negatives, {len(cues)} cue, {len(crisis)} crisis items to draw from), {len(replies)} replies")
