import json, re, glob, sys, unicodedata, collections
S = dict(pw='passive_wish', ai='active_ideation', pl='plan_or_intent', pf='preparation_farewell', ga='giving_away',
 bu='burden', ho='hopelessness', ms='means_search', st='stockpiling', rs='recent_self_harm', su='self_harm_urge',
 mi='medical_intent', ow='one_way_trip', rd='reunion_with_dead', ds='disguised_slang', sg='secrecy_goodbye',
 ih='idiom_hyperbole', te='tech', gm='game', fi='fiction', ly='lyrics', na='news_academic', cl='clinician',
 qt='question_about_topic', pr='past_resolved', gs='grief_safe', ss='sadness_safe', mq='medical_question',
 dh='dark_humour', ev='everyday')
NOTE = dict(ih='idiom or hyperbole', te='tech sense', gm='game', fi='fiction frame', ly='lyrics frame',
 na='news or research', cl='clinician at work', qt='question about the topic, no personal risk', pr='past and resolved',
 gs='grief without a wish to die', ss='ordinary sadness, no risk', mq='medical question asked for safety',
 dh='dark humour, not serious')
L = dict(c='crisis', t='third_party', n='none')
cjk = re.compile(r'[\u3400-\u9fff]')
lat = re.compile(r'[A-Za-z]{2,}')
ZHOK={'zs','cs','zsq','bxhl','xs','xswl','wsl','yyds','emo','awsl','ig','qq','app','vx','dd','nb','tm','fb','line','ok','kpi','ppt','ddl','pdd','gg','bgm','xhs','vlog','id','rap'}
def norm(s):
    return ''.join(ch for ch in s.lower() if not (ch.isspace() or unicodedata.category(ch)[0] in 'PS'))
items=[]; g=0
for f in sorted(glob.glob('/work/wt-x10c/tmp_x10c/batch*.txt')):
    for ln in open(f, encoding='utf-8'):
        ln=ln.rstrip('\n')
        if not ln.strip() or ln.startswith('#'): continue
        same = ln.startswith('+'); link=None
        if same: ln=ln[1:]
        if ln.startswith('>'):
            link, ln = ln[1:].split('\t',1)
        parts=ln.split(' ',2)
        lab, sg_ = parts[0], parts[1]; rest=parts[2]
        reg=None; note=None
        if ' ## ' in rest:
            rest, note = rest.split(' ## ',1)
        m=re.search(r'\s@(\w+)\s*$', rest)
        if m:
            reg=m.group(1); rest=rest[:m.start()]
        text=rest.strip()
        assert lab in L and sg_ in S, (f, ln)
        if not same and link is None: g+=1
        if reg=='trad': reg='traditional'
        if reg=='py': lang='zh'; reg='pinyin'
        elif cjk.search(text):
            toks=[w for w in lat.findall(text) if w.lower() not in ZHOK]
            lang = 'mixed' if toks else 'zh'
        else: lang='en'
        if reg=='mixed' and lang!='mixed': lang='mixed'
        if reg is None or lang=='mixed':
            reg = 'mixed' if lang=='mixed' else 'plain'
        grp='x10c-g%04d'%g
        if link is not None:
            hit=[x for x in items if x['text'].startswith(link)]
            assert len(hit)==1, (link, len(hit))
            grp=hit[0]['group']
        it=dict(id=None, lang=lang, task='crisis', label=L[lab], text=text, group=grp, sign=S[sg_], register=reg)
        if lab=='n':
            it['note'] = 'hard: ' + (note or NOTE.get(sg_,'no current risk'))
        elif note: it['note']=note
        items.append(it)
for i,it in enumerate(items): it['id']='x10c-%04d'%(i+1)
# checks
crisis_pos={'passive_wish','active_ideation','plan_or_intent','preparation_farewell','giving_away','burden','hopelessness','means_search','stockpiling','recent_self_harm','self_harm_urge','medical_intent','one_way_trip','reunion_with_dead','disguised_slang','secrecy_goodbye'}
bad=0
for it in items:
    if it['label']!='none' and it['sign'] not in crisis_pos: print('BADSIGN',it); bad+=1
    if it['label']=='none' and it['sign'] in crisis_pos: print('BADSIGN',it); bad+=1
old={}
for f in glob.glob('/work/wt-x10c/data/train/*.jsonl')+glob.glob('/work/wt-x10c/data/heldout/*.jsonl'):
    if 'extra10_crisis' in f: continue
    for ln in open(f,encoding='utf-8'):
        try: o=json.loads(ln)
        except: continue
        old[norm(o.get('text',''))]=o.get('id')
seen={}
for it in items:
    n=norm(it['text'])
    if n in old: print('DUP-OLD', it['id'], old[n], it['text']); bad+=1
    if n in seen: print('DUP-NEW', it['id'], seen[n], it['text']); bad+=1
    seen[n]=it['id']
with open('/work/wt-x10c/data/train/extra10_crisis.jsonl','w',encoding='utf-8') as fo:
    for it in items: fo.write(json.dumps(it,ensure_ascii=False)+'\n')
C=collections.Counter
print('total',len(items),'groups',g,'bad',bad)
print(C((i['label'],i['lang']) for i in items))
print(C(i['label'] for i in items), C(i['lang'] for i in items))
for lab in ['crisis','third_party','none']:
    print(lab, sorted(C(i['sign'] for i in items if i['label']==lab).items(), key=lambda x:-x[1]))
print(C(i['register'] for i in items))
