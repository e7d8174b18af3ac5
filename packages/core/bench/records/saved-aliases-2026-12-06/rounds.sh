#!/usr/bin/env bash
# Saved tensors as aliases (the default from a3890be) against tfjs' engine clones (MMLM_SAVED_CLONES=1),
# with the OpenBLAS addon at 2 and 1 threads, beside the PyTorch peers at 2 and 1 threads;
# configurations alternate within each round.
# usage (from packages/core, addon built): bash bench/records/saved-aliases-2026-12-06/rounds.sh <out> [rounds] [steps]
set -uo pipefail
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
  run before2 MMLM_BLAS_THREADS=2 MMLM_SAVED_CLONES=1
  run now2 MMLM_BLAS_THREADS=2
  torch 2
  run before1 MMLM_BLAS_THREADS=1 MMLM_SAVED_CLONES=1
  run now1 MMLM_BLAS_THREADS=1
  torch 1
done
echo "done $(date +%T)"
