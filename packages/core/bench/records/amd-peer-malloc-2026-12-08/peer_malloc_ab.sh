#!/usr/bin/env bash
# The PyTorch peer alone, glibc malloc's defaults against PEER_MALLOC_ENV, twice each, 20 steps:
# per-step medians, minima and maxima (from packages/core: bash bench/records/amd-peer-malloc-2026-12-08/peer_malloc_ab.sh)
for m in 0 1 0 1; do
  if [ $m = 1 ]; then E="MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456"; else E="MALLOC_DEFAULTS=1"; fi
  env $E OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 bench/peers/workloads_torch.py --threads 1 --steps 20 \
    --only latentlm-lm-4x128,lm-4x128-T60,liquid-vq-tokenizer-32px 2>/dev/null | python3 -c "
import sys, json, statistics as st
for l in sys.stdin:
    j = json.loads(l)
    if 'msAll' in j: print('tuned' if '$m' == '1' else 'glibc defaults', j['name'], 'median', round(st.median(j['msAll']), 1), 'min', round(min(j['msAll']), 1), 'max', round(max(j['msAll']), 1))
"
done
