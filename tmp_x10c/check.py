# Validate data/train/extra10_crisis.jsonl: JSON per line, fields, labels and signs from docs/taxonomy.md, unique ids, counts.
import json, re, sys, collections
tax = open('docs/taxonomy.md', encoding='utf-8').read()
def table_signs(header):
    sec = tax.split(header, 1)[1].split('\n## ', 1)[0]
    return set(re.findall(r'^\| `(\w+)` \|', sec, re.M))
pos = table_signs('## Signs for `crisis` and `third_party`')
neg = table_signs('## Signs for `none`')
assert len(pos) == 16 and len(neg) == 14, (pos, neg)
path = sys.argv[1] if len(sys.argv) > 1 else 'data/train/extra10_crisis.jsonl'
req = ['id', 'lang', 'task', 'label', 'text', 'group', 'sign', 'register']
ids = set(); errs = 0; rows = []
for n, ln in enumerate(open(path, encoding='utf-8'), 1):
    o = json.loads(ln)
    for k in req:
        if not isinstance(o.get(k), str) or not o[k].strip(): print('missing', k, n); errs += 1
    extra = set(o) - set(req) - {'note'}
    if extra: print('extra fields', extra, n); errs += 1
    if o['id'] in ids: print('dup id', o['id']); errs += 1
    ids.add(o['id'])
    if not re.fullmatch(r'x10c-\d{4}', o['id']) or not re.fullmatch(r'x10c-g\d{4}', o['group']): print('bad id/group', n); errs += 1
    if o['task'] != 'crisis' or o['lang'] not in ('en', 'zh', 'mixed'): print('bad task/lang', n); errs += 1
    if o['label'] in ('crisis', 'third_party'):
        if o['sign'] not in pos: print('bad sign', n, o['sign']); errs += 1
        if o['label'] == 'crisis' and o['lang'] == 'zh' and o['sign'] == 'secrecy_goodbye': print('zh secrecy_goodbye', n); errs += 1
    elif o['label'] == 'none':
        if o['sign'] not in neg: print('bad sign', n, o['sign']); errs += 1
        if not o.get('note', '').startswith('hard:'): print('none without hard note', n); errs += 1
    else: print('bad label', n); errs += 1
    rows.append(o)
C = collections.Counter
print('items', len(rows), 'groups', len({r['group'] for r in rows}), 'errors', errs)
for lab in ('crisis', 'third_party', 'none'):
    c = C(r['lang'] for r in rows if r['label'] == lab)
    print(f"{lab:12s} en {c['en']:4d} zh {c['zh']:4d} mixed {c['mixed']:4d} total {sum(c.values())}")
c = C(r['lang'] for r in rows); print(f"{'total':12s} en {c['en']:4d} zh {c['zh']:4d} mixed {c['mixed']:4d} total {len(rows)}")
for lab in ('crisis', 'third_party', 'none'):
    print(lab + ':', ', '.join(f'{s} {k}' for s, k in C(r['sign'] for r in rows if r['label'] == lab).most_common()))
print('registers:', ', '.join(f'{s} {k}' for s, k in C(r['register'] for r in rows).most_common()))
print('traditional share of zh:', round(sum(r['register'] == 'traditional' for r in rows) / c['zh'], 3))
print('multi-item groups:', sum(1 for g, k in C(r['group'] for r in rows).items() if k > 1))
sys.exit(1 if errs else 0)
