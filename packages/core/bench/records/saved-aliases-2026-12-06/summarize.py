# Median over rounds of each configuration's per-round median ms a step (rounds.sh: before = MMLM_SAVED_CLONES=1,
# now = saved tensors as aliases), and the ratios against PyTorch at equal threads. usage: python3 summarize.py <out folder>
import json, glob, statistics, os, sys
d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), 'runs')
ms = {}
for f in glob.glob(f'{d}/*-*.json'):
    cfg = os.path.basename(f).rsplit('-', 1)[0]
    j = json.load(open(f))
    rs = j['workloads']['results'] if j.get('workloads') else j['results']
    for r in rs:
        ms.setdefault((r['name'], cfg), []).append(r['msPerStep'])
for f in glob.glob(f'{d}/torch*.jsonl'):
    cfg = os.path.basename(f).rsplit('-', 1)[0]
    for line in open(f):
        j = json.loads(line)
        if 'name' in j:
            ms.setdefault((j['name'], cfg), []).append(statistics.median(j['msAll']))
names = []
for k in ms:
    if k[0] not in names: names.append(k[0])
cfgs = ['before2', 'now2', 'torch2', 'before1', 'now1', 'torch1']
med = lambda n, c: statistics.median(ms[(n, c)]) if (n, c) in ms else float('nan')
print('| workload (batch 16), ms a step | ' + ' | '.join(cfgs) + ' | before2 / torch2 | now2 / torch2 | before1 / torch1 | now1 / torch1 |')
print('| --- |' + ' ---: |' * (len(cfgs) + 4))
for n in names:
    m = {c: med(n, c) for c in cfgs}
    cells = [f"{m[c]:.1f} ({'/'.join(f'{v:.0f}' for v in ms.get((n, c), []))})" for c in cfgs]
    print(f'| {n} | ' + ' | '.join(cells) + f" | {m['before2'] / m['torch2']:.2f}x | {m['now2'] / m['torch2']:.2f}x | {m['before1'] / m['torch1']:.2f}x | {m['now1'] / m['torch1']:.2f}x |")
