# Every experiment-shaped workload on the 2-core AMD EPYC (2026-12-07, late evening, commit 8f9a3fe:
# Winograd F(2x2, 3x3) convolutions for the 32-channel 3x3 layers, forward and filter gradient, and
# the filter gradient's shared packing): ours on Node 20 and Node 24 on the default backend
# (wasm-simd: core's SIMD GEMM, no addon) against PyTorch 1.13 + OpenBLAS 0.3.21 on one thread;
# three alternating rounds of 20 steps (bench/rounds.sh), medians per round, best round against best
# round: python3 summarize.py
import json, os, statistics as st
os.chdir(os.path.dirname(os.path.abspath(__file__)))
res, order = {}, []
cols = [(0, 'wasm-simd', 'Node 20 SIMD'), (1, 'wasm-simd', 'Node 24 SIMD')]
for r in (1, 2, 3):
    for i, b, n in cols:
        for w in json.load(open(f'ours-{r}-{i}.json'))['workloads']['results']:
            if w['backend'] != b:
                continue
            if w['name'] not in order:
                order.append(w['name'])
            res.setdefault((w['name'], n), []).append(st.median(w['msAll']))
    for line in open(f'torch-{r}.jsonl'):
        j = json.loads(line)
        if 'msAll' in j:
            res.setdefault((j['name'], 'torch'), []).append(st.median(j['msAll']))
names = [n for _, _, n in cols]
print('| workload | ' + ' | '.join(names) + ' | torch 1 thread | ratios (' + ' / '.join(names) + ') |')
print('| --- |' + ' ---: |' * (len(names) + 1) + ' --- |')
for w in order:
    if (w, 'torch') not in res:
        continue
    t = min(res[(w, 'torch')])
    best = [min(res[(w, n)]) for n in names]
    print(f'| {w} | ' + ' | '.join(f'{b:.1f}' for b in best) + f' | {t:.1f} | '
          + ' / '.join(f'{b / t:.2f}x' for b in best) + ' |')
print()
for w in order:
    print(w, {n: [round(x, 1) for x in res.get((w, n), [])] for n in names + ['torch']})
print()
