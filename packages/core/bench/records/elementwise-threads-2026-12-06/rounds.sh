#!/usr/bin/env bash
# The addon's SiLU / GroupNorm on or off (MMLM_NATIVE_ELEMENTWISE), at 2 and 1 threads, beside the
# PyTorch peers at 2 and 1 threads; configurations alternate within each round.
# usage (from packages/core): bash bench/records/elementwise-threads-2026-12-06/rounds.sh <out> [rounds] [steps]
set -uo pipefail
out=${1:?out}; rounds=${2:-3}; steps=${3:-30}
W=${W:-liquid-vq-tokenizer,liquid-vq-tokenizer-32px,latentlm-vae-32px}
mkdir -p "$out"
run() { # name, env...
  local name=$1; shift
  env "$@" node node_modules/tsx/dist/cli.mjs --conditions=@mmlm/source bench/run.ts --backend wasm --only workloads \
    --workloads $W --steps "$steps" --no-peers --out "$out/$name-$r.json" > "$out/$name-$r.log" 2>&1
  grep -E "^\[bench\] wasm" "$out/$name-$r.log" | sed "s/^/$name /"
}
for r in $(seq 1 "$rounds"); do
  echo "== round $r $(date +%T)"
  run off2 MMLM_BLAS_THREADS=2 MMLM_NATIVE_ELEMENTWISE=0
  run on2 MMLM_BLAS_THREADS=2
  OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 /usr/bin/python3 bench/peers/workloads_torch.py --threads 2 --steps "$steps" --only $W > "$out/torch2-$r.jsonl"
  run off1 MMLM_BLAS_THREADS=1 MMLM_NATIVE_ELEMENTWISE=0
  run on1 MMLM_BLAS_THREADS=1
  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 /usr/bin/python3 bench/peers/workloads_torch.py --threads 1 --steps "$steps" --only $W > "$out/torch1-$r.jsonl"
done
echo "done $(date +%T)"
