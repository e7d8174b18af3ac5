# Summary of the rounds in this folder: best round (lowest per-round median) per configuration.
import json, statistics, glob, re
def ours(pattern):
    best = {}
    for f in sorted(glob.glob(pattern)):
        d = json.load(open(f))
        rs = d['workloads']['results'] if 'workloads' in d and d['workloads'] else d['results']
        for r in rs:
            k = (r['name'], r['backend'])
            best.setdefault(k, []).append(r['msPerStep'])
    return best
def torch(pattern):
    best = {}
    for f in sorted(glob.glob(pattern)):
        for line in open(f):
            j = json.loads(line)
            if 'name' in j:
                best.setdefault(j['name'], []).append(statistics.median(j['msAll']))
    return best
o = ours('ours-[0-9].json'); n = ours('ours-noconv-*.json'); t = torch('torch1-[0-9].jsonl'); td = torch('torch1-blasdefault-*.jsonl')
names = []
for (nm, be) in o:
    if nm not in names: names.append(nm)
print('| workload (batch 16), ms a step | ours SIMD 1t | ours + OpenBLAS 1t | same, MMLM_NATIVE_CONV=0 | torch 1 thread (OPENBLAS_NUM_THREADS=1) | ratios SIMD / OpenBLAS | torch, OpenBLAS threads at default (the old peer) |')
print('| --- | ---: | ---: | ---: | ---: | --- | ---: |')
for nm in names:
    s = min(o[(nm, 'wasm-simd')]); b = min(o[(nm, 'wasm-blas1')]); tt = min(t[nm])
    nc = min(n[(nm, 'wasm-blas1')]) if (nm, 'wasm-blas1') in n else None
    print(f"| {nm} | {s:.1f} | {b:.1f} | {'-' if nc is None else f'{nc:.1f}'} | {tt:.1f} | {s/tt:.2f}x / {b/tt:.2f}x | {min(td[nm]):.1f} |")
g = {}
for f in sorted(glob.glob('gpt-ours-*.json')):
    for r in json.load(open(f))['results']:
        if r['name'] == 'gpt-bench': g.setdefault(r['backend'], []).append(r['msPerStep'])
gt = [float(re.search(r'step=([\d.]+)ms', open(f).read()).group(1)) for f in sorted(glob.glob('gpt-torch1-[b0-9]*.txt')) if 'blasdefault' not in f]
gd = [float(re.search(r'step=([\d.]+)ms', open(f).read()).group(1)) for f in glob.glob('gpt-torch1-blasdefault-*.txt')]
print({k: [round(x, 1) for x in v] for k, v in g.items()}, 'torch1', gt, 'torch default blas', gd)
print('gpt-bench ratios: SIMD %.2fx, OpenBLAS %.2fx (best vs best)' % (min(g['wasm-simd']) / min(gt), min(g['wasm-blas1']) / min(gt)))
