#!/usr/bin/env bash
# 2-thread conv A/B: configurations alternate within each round; torch 2 threads last in each round.
set -uo pipefail
out=${1:?out}; rounds=${2:-3}; steps=${3:-30}
W=liquid-vq-tokenizer,liquid-vq-tokenizer-32px,latentlm-vae-32px
mkdir -p "$out"
run() { # name, env...
  local name=$1; shift
  env "$@" node node_modules/tsx/dist/cli.mjs --conditions=@mmlm/source bench/run.ts --backend wasm --only workloads \
    --workloads $W --steps "$steps" --no-peers --out "$out/$name-$r.json" > "$out/$name-$r.log" 2>&1; grep -E "ms/step|msPerStep|ms a step" "$out/$name-$r.log" | head -5 | sed "s/^/$name /"
}
for r in $(seq 1 "$rounds"); do
  echo "== round $r $(date +%T)"
  run A MMLM_BLAS_THREADS=2 MMLM_NATIVE_CONV_THREADS=1
  run B MMLM_BLAS_THREADS=2
  run C MMLM_BLAS_THREADS=1 MMLM_NATIVE_CONV_THREADS=2
  run D MMLM_BLAS_THREADS=2 OPENBLAS_THREAD_TIMEOUT=4
  run E MMLM_BLAS_THREADS=1 MMLM_NATIVE_CONV_THREADS=1
  OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 /usr/bin/python3 bench/peers/workloads_torch.py --threads 2 --steps "$steps" --only $W > "$out/torch2-$r.jsonl"
  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 /usr/bin/python3 bench/peers/workloads_torch.py --threads 1 --steps "$steps" --only $W > "$out/torch1-$r.jsonl"
done
echo "done $(date +%T)"
