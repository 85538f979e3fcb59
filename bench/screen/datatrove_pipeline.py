"""The comparable checks through Hugging Face datatrove, for the side-by-side benchmark.

Reads the same JSONL corpus (plain, .gz, .zst) with datatrove's JsonlReader and runs, per
document, what `tutela screen` runs: keyword/regex checks for the planted categories (the
literal cues of tutela's assistant-side rules that the corpus plants, plus the operator rule
pack), the PII checks (e-mail, CN and US phones, CN resident ID with checksum, US SSN, bank
card with Luhn), and writes kept and removed documents with datatrove's JsonlWriter.

This is deliberately *less* work than tutela does (tutela runs its full normalising lexical
engine: ~thousands of cues with negation and frames); it is a floor for datatrove's cost.

usage: python datatrove_pipeline.py CORPUS_DIR OUT_DIR TASKS
"""

import re
import sys
import time

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.filters import LambdaFilter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter

CUES = [
    "kill yourself", "nobody would miss you", "real human", "you don't need your friends",
    "i'm all you need", "tell me your home address", "guaranteed jackpot", "你去死吧", "没有人会在乎你",
    "我是真人", "你不需要朋友", "只有我懂你", "告诉我你的家庭住址", "稳赚不赔",
]
CUE_RE = re.compile("|".join(re.escape(c) for c in CUES))
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PHONE_CN = re.compile(r"(?<!\d)(?:\+86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)")
PHONE_US = re.compile(r"(?<!\d)(?:\+1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}(?!\d)")
CN_ID = re.compile(r"(?<!\d)\d{17}[\dXx](?![\dA-Za-z])")
SSN = re.compile(r"(?<!\d)(?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?!\d)")
CARD = re.compile(r"(?<!\d)(?:\d{4}[ -]){3}\d{4}(?!\d)|(?<!\d)\d{13,19}(?!\d)")
W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def luhn(d):
    s = 0
    for i, c in enumerate(reversed(d)):
        v = int(c)
        if i % 2:
            v *= 2
            if v > 9:
                v -= 9
        s += v
    return s % 10 == 0


def cn_id_ok(s):
    return "10X98765432"[sum(int(c) * w for c, w in zip(s[:17], W)) % 11] == s[17].upper()


def keep(doc):
    t = doc.text
    if CUE_RE.search(t.lower()):
        return False
    if EMAIL.search(t) or PHONE_CN.search(t) or PHONE_US.search(t) or SSN.search(t):
        return False
    for m in CN_ID.finditer(t):
        if cn_id_ok(m.group(0)):
            return False
    for m in CARD.finditer(t):
        if luhn(re.sub(r"[ -]", "", m.group(0))):
            return False
    return True


def main():
    corpus, out, tasks = sys.argv[1], sys.argv[2], int(sys.argv[3])
    t0 = time.time()
    LocalPipelineExecutor(
        pipeline=[
            JsonlReader(corpus, glob_pattern="*.jsonl*", compression="infer", id_key="id"),
            LambdaFilter(keep, exclusion_writer=JsonlWriter(f"{out}/removed")),
            JsonlWriter(f"{out}/kept"),
        ],
        tasks=tasks,
        workers=tasks,
        logging_dir=f"{out}/logs",
    ).run()
    print(f"datatrove_seconds={time.time() - t0:.2f}")


if __name__ == "__main__":
    main()
