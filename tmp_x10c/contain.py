# containment check: a new normalised text inside an old one or an old one inside a new one (both at least 6 chars)
import json, glob, unicodedata
def norm(s): return ''.join(ch for ch in s.lower() if not (ch.isspace() or unicodedata.category(ch)[0] in 'PS'))
old=[]
for f in glob.glob('data/train/*.jsonl')+glob.glob('data/heldout/*.jsonl'):
    if 'extra10_crisis' in f: continue
    for ln in open(f,encoding='utf-8'):
        o=json.loads(ln); t=norm(o.get('text',''))
        if len(t)>=6: old.append((o['id'],t))
big='\n'.join(t for _,t in old)
hits=0
for ln in open('data/train/extra10_crisis.jsonl',encoding='utf-8'):
    o=json.loads(ln); t=norm(o['text'])
    if len(t)>=6 and t in big:
        print('new-in-old', o['id'], o['text']); hits+=1
    for i,ot in old:
        if len(ot)>=8 and ot in t: print('old-in-new', o['id'], i, o['text']); hits+=1
print('containment hits', hits)
