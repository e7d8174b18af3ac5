# Best round (lowest per-round ms a step) per configuration, for each folder (percall: a thread
# created per convolution; pool: persistent pool workers, the version kept). Configurations
# (rounds.sh): A OpenBLAS 2 threads, convolution 1 thread (before 2026-12-06); B OpenBLAS 2,
# convolution on its threads (the default); C OpenBLAS 1, convolution 2; D B with
# OPENBLAS_THREAD_TIMEOUT=4; E everything on one thread; torch1 / torch2 PyTorch 1.13 at 1 / 2 threads.
import json, glob, statistics, os
here = os.path.dirname(os.path.abspath(__file__))
for sub in ['percall', 'pool']:
    best = {}
    for f in glob.glob(f'{here}/{sub}/[A-E]-*.json'):
        cfg = os.path.basename(f).split('-')[0]
        d = json.load(open(f))
        rs = d['workloads']['results'] if d.get('workloads') else d['results']
        for r in rs:
            best.setdefault((r['name'], cfg), []).append(r['msPerStep'])
    for f in glob.glob(f'{here}/{sub}/torch*.jsonl'):
        cfg = os.path.basename(f).split('-')[0]
        for line in open(f):
            j = json.loads(line)
            if 'name' in j:
                best.setdefault((j['name'], cfg), []).append(statistics.median(j['msAll']))
    names = sorted({k[0] for k in best})
    cfgs = ['A', 'B', 'C', 'D', 'E', 'torch1', 'torch2']
    print(f'\n{sub}: best round, ms a step (batch 16); ratio = B / torch2')
    print('| workload | ' + ' | '.join(cfgs) + ' | B / torch 2t | E / torch 1t |')
    print('| --- |' + ' ---: |' * (len(cfgs) + 2))
    for n in names:
        m = {c: min(best[(n, c)]) for c in cfgs if (n, c) in best}
        print(f'| {n} | ' + ' | '.join(f'{m[c]:.1f}' if c in m else '-' for c in cfgs) + f" | {m['B'] / m['torch2']:.2f}x | {m['E'] / m['torch1']:.2f}x |")
