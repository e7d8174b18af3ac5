# The 2-core AMD EPYC, 2026-12-08 (commit after d63714e / c42fc82: causal attention strips and run
# copies), default backend (wasm-simd: core's SIMD GEMM, no addon) and the OpenBLAS addon on one
# thread (wasm-blas1) against PyTorch 1.13 + OpenBLAS 0.3.21 on one thread; three alternating rounds
# of 20 steps (bench/rounds.sh), medians per round, best round against best round.
#   default-malloc/: the PyTorch peer with glibc malloc's defaults (as every record before this one)
#   tuned/:          the peer with bench/peers.ts PEER_MALLOC_ENV (no heap trimming), Node 20 and 24
#   tuned-addon/:    the same peer; ours on Node 20, default backend and the addon
#   gpt/:            gpt-bench, three alternating rounds (Node 20 with the tuned peer, Node 24), rounds.log
#   gpt-addon/:      gpt-bench, three rounds of --backend wasm-blas1,wasm-simd with the tuned peer (r1-3.json)
# python3 summarize.py
import json, os, statistics as st
os.chdir(os.path.dirname(os.path.abspath(__file__)))
SETS = {
    'default-malloc': [(0, 'wasm-simd', 'Node 20'), (1, 'wasm-simd', 'Node 24')],
    'tuned': [(0, 'wasm-simd', 'Node 20'), (1, 'wasm-simd', 'Node 24')],
    'tuned-addon': [(0, 'wasm-simd', 'Node 20'), (0, 'wasm-blas1', 'Node 20 addon')],
}
for folder, cols in SETS.items():
    res, order = {}, []
    for r in (1, 2, 3):
        for i, b, n in cols:
            for w in json.load(open(f'{folder}/ours-{r}-{i}.json'))['workloads']['results']:
                if w['backend'] != b:
                    continue
                if w['name'] not in order:
                    order.append(w['name'])
                res.setdefault((w['name'], n), []).append(st.median(w['msAll']))
        for line in open(f'{folder}/torch-{r}.jsonl'):
            j = json.loads(line)
            if 'msAll' in j:
                res.setdefault((j['name'], 'torch'), []).append(st.median(j['msAll']))
    names = [n for _, _, n in cols]
    print(f'## {folder}\n')
    print('| workload | ' + ' | '.join(names) + ' | torch 1 thread | ratios (' + ' / '.join(names) + ') |')
    print('| --- |' + ' ---: |' * (len(names) + 1) + ' --- |')
    for w in order:
        if (w, 'torch') not in res:
            continue
        t = min(res[(w, 'torch')])
        best = [min(res[(w, n)]) for n in names]
        print(f'| {w} | ' + ' | '.join(f'{b:.1f}' for b in best) + f' | {t:.1f} | ' + ' / '.join(f'{b / t:.2f}x' for b in best) + ' |')
    print()
    for w in order:
        print(w, {n: [round(x, 1) for x in res.get((w, n), [])] for n in names + ['torch']})
    print()
