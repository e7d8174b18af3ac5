# Medians per round of the two decoder workloads (ours on Node 20 and Node 24, one thread, core's SIMD
# GEMM; PyTorch 1.13 + OpenBLAS on one thread), best round against best round: python3 summarize.py
import json, os, statistics as st
os.chdir(os.path.dirname(os.path.abspath(__file__)))
res = {}
for r in (1, 2, 3):
    for i, n in ((0, 'Node 20 SIMD'), (1, 'Node 24 SIMD')):
        for w in json.load(open(f'ours-{r}-{i}.json'))['workloads']['results']:
            res.setdefault((w['name'], n), []).append(st.median(w['msAll']))
    for line in open(f'torch-{r}.jsonl'):
        j = json.loads(line)
        if 'msAll' in j:
            res.setdefault((j['name'], 'torch'), []).append(st.median(j['msAll']))
for name in ('lm-4x128-T60', 'lm-4x128-T80-b32'):
    t = min(res[(name, 'torch')])
    cells = [f"{n}: {' / '.join(f'{x:.1f}' for x in res[(name, n)])} (best {min(res[(name, n)]):.1f}, {min(res[(name, n)]) / t:.2f}x)"
             for n in ('Node 20 SIMD', 'Node 24 SIMD', 'torch')]
    print(name, '|', ' | '.join(cells))
