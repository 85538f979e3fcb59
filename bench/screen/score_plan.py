"""Recall and precision of `tutela screen` against the generator's plan.

usage: python score_plan.py CORPUS_DIR SCREEN_OUT_DIR  (prints a Markdown table and JSON)
"""

import glob
import json
import os
import sys
from collections import defaultdict

corpus, out = sys.argv[1], sys.argv[2]
plan = {}
with open(os.path.join(corpus, "plan.jsonl")) as f:
    for line in f:
        v = json.loads(line)
        plan[v["key"] if "key" in v else v["id"]] = set(v["labels"])
found = {}
for path in glob.glob(os.path.join(out, "removed", "*.jsonl")):
    with open(path) as f:
        for line in f:
            v = json.loads(line)
            found[v["key"]] = {r["reason"] for r in v["reasons"]}
labels = sorted({l for s in plan.values() for l in s} | {l for s in found.values() for l in s})
rows = []
for label in labels:
    p = {k for k, s in plan.items() if label in s}
    d = {k for k, s in found.items() if label in s}
    tp, fp, fn = len(p & d), len(d - p), len(p - d)
    rows.append({
        "label": label, "planted": len(p), "found": len(d), "tp": tp, "fp": fp, "fn": fn,
        "recall": tp / len(p) if p else None, "precision": tp / len(d) if d else None,
    })
p_all, d_all = set(plan), set(found)
tot = {"label": "any (document removed)", "planted": len(p_all), "found": len(d_all),
       "tp": len(p_all & d_all), "fp": len(d_all - p_all), "fn": len(p_all - d_all)}
tot["recall"] = tot["tp"] / tot["planted"] if p_all else None
tot["precision"] = tot["tp"] / tot["found"] if d_all else None
rows.append(tot)
print("| label | planted | found | TP | FP | FN | recall | precision |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
fmt = lambda x: "n/a" if x is None else f"{x:.4f}"
for r in rows:
    print(f"| {r['label']} | {r['planted']} | {r['found']} | {r['tp']} | {r['fp']} | {r['fn']} | {fmt(r['recall'])} | {fmt(r['precision'])} |")
print()
print(json.dumps(rows))
