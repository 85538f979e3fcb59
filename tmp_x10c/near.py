# near-duplicate check: Jaccard of character 3-grams (2-grams for CJK-heavy text) of the normalised texts
import json, glob, sys, collections, unicodedata, re
def norm(s): return ''.join(ch for ch in s.lower() if not (ch.isspace() or unicodedata.category(ch)[0] in 'PS'))
def grams(s):
    n = 2 if re.search(r'[\u3400-\u9fff]', s) else 3
    return {s[i:i+n] for i in range(max(1,len(s)-n+1))}
old=[]
for f in glob.glob('data/train/*.jsonl')+glob.glob('data/heldout/*.jsonl'):
    if 'extra10_crisis' in f: continue
    for ln in open(f,encoding='utf-8'):
        try: o=json.loads(ln)
        except: continue
        old.append((o['id'], o.get('text','')))
new=[json.loads(l) for l in open('data/train/extra10_crisis.jsonl',encoding='utf-8')]
idx=collections.defaultdict(list); og=[]
for k,(i,t) in enumerate(old+[(n['id'],n['text']) for n in new]):
    g=grams(norm(t)); og.append(g)
    for x in g: idx[x].append(k)
thr=float(sys.argv[1]) if len(sys.argv)>1 else 0.75
hits=0
for j,n in enumerate(new):
    k0=len(old)+j; g=og[k0]; cnt=collections.Counter()
    for x in g:
        for k in idx[x]:
            if k!=k0: cnt[k]+=1
    for k,c in cnt.items():
        if k>len(old)+j and k>=len(old): continue  # compare each new pair once
        if k>=len(old) and new[k-len(old)]['group']==n['group']: continue  # register variants / twins share a group on purpose
        jac=c/len(g|og[k])
        if jac>=thr:
            other = old[k] if k<len(old) else (new[k-len(old)]['id'], new[k-len(old)]['text'])
            print(f"{jac:.2f}\t{n['id']}\t{n['text']}\t|| {other[0]}\t{other[1]}"); hits+=1
print('near hits', hits, file=sys.stderr)
