#!/usr/bin/env bash
# Before / after the addon's SiLU, GroupNorm and Add with OPENBLAS_THREAD_TIMEOUT=20 (2026-12-06), at 2
# and 1 threads, beside the PyTorch peers at 2 and 1 threads; configurations alternate within each round.
#   before: the addon of commit 4a7a7b1 (no SiLU / GroupNorm / Add, no GEMM threshold; built into
#           $OLD_ADDON) and OpenBLAS' default thread timeout (28), i.e. the code before this change
#   now:    the defaults of this commit
# usage (from packages/core, addon built):
#   mkdir -p /tmp/oldaddon && git show 4a7a7b1:packages/core/src/backend/kernels/native/mmlm_blas.c > /tmp/oldaddon/mmlm_blas.c
#   cc -O3 -shared -fPIC -pthread -DNAPI_VERSION=8 -I<node include> -I/usr/include/openblas /tmp/oldaddon/mmlm_blas.c -o /tmp/oldaddon/mmlm_blas.node -lopenblas
#   OLD_ADDON=/tmp/oldaddon/mmlm_blas.node bash bench/records/elementwise-threads-2026-12-06/rounds.sh <out> [rounds] [steps]
set -uo pipefail
OLD_ADDON=${OLD_ADDON:?the addon of 4a7a7b1, see above}
out=${1:?out}; rounds=${2:-3}; steps=${3:-30}
W=${W:-liquid-vq-tokenizer,liquid-vq-tokenizer-32px,latentlm-vae-32px,lm-2x64-T20,lm-2x64-T60,lm-4x128-T20,lm-4x128-T60,gen-2x64-cfg,latentlm-lm-4x128,maskllm-mask-step}
mkdir -p "$out"
run() { # name, env...
  local name=$1; shift
  env "$@" node node_modules/tsx/dist/cli.mjs --conditions=@mmlm/source bench/run.ts --backend wasm --only workloads \
    --workloads $W --steps "$steps" --no-peers --out "$out/$name-$r.json" > "$out/$name-$r.log" 2>&1
  grep -E "^\[bench\] wasm" "$out/$name-$r.log" | sed "s/^/$name /"
}
torch() { # threads
  OPENBLAS_NUM_THREADS=$1 OMP_NUM_THREADS=$1 MKL_NUM_THREADS=$1 /usr/bin/python3 bench/peers/workloads_torch.py --threads $1 --steps "$steps" --only $W > "$out/torch$1-$r.jsonl"
}
for r in $(seq 1 "$rounds"); do
  echo "== round $r $(date +%T)"
  run before2 MMLM_BLAS_THREADS=2 MMLM_NATIVE_BLAS_PATH=$OLD_ADDON OPENBLAS_THREAD_TIMEOUT=28
  run now2 MMLM_BLAS_THREADS=2
  torch 2
  run before1 MMLM_BLAS_THREADS=1 MMLM_NATIVE_BLAS_PATH=$OLD_ADDON OPENBLAS_THREAD_TIMEOUT=28
  run now1 MMLM_BLAS_THREADS=1
  torch 1
done
echo "done $(date +%T)"
