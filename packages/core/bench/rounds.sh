#!/usr/bin/env bash
# Alternating rounds of the experiment-shaped workloads on one thread: ours on each given Node,
# then the PyTorch peer, ROUNDS times, so a disturbance of the machine shows as one odd round
# instead of a biased ratio (README, "Quiet-machine rerun").
#   usage (from packages/core): bash bench/rounds.sh OUTDIR [ROUNDS=3] [STEPS=40] [NODE ...]
#   NODE: node binaries to compare (default: the `node` on PATH)
#   MMLM_ROUNDS_BACKENDS: the bench backends of our side (default wasm-simd, core's SIMD GEMM with the
#   native addon off; wasm-simd,wasm-blas1 adds the optional OpenBLAS addon on one thread)
#   MMLM_ROUNDS_WORKLOADS: a comma-separated subset of the workloads, on both sides (default: all)
#   MMLM_ROUNDS_WARMUP_S: untimed warm-up of each workload, both sides: at least 2 steps and until that
#   many seconds (default 3, bench/run.ts --warmup-s; rounds before 2026-12-08's were one warm-up step)
# Writes OUTDIR/ours-<round>-<node index>.json (the bench's JSON) and OUTDIR/torch-<round>.jsonl.
set -euo pipefail
out=${1:?usage: bash bench/rounds.sh OUTDIR [ROUNDS] [STEPS] [NODE ...]}
rounds=${2:-3}
steps=${3:-40}
shift $(( $# < 3 ? $# : 3 ))
nodes=("$@")
[ ${#nodes[@]} -eq 0 ] && nodes=(node)
mkdir -p "$out"
# the first interpreter with torch, as bench/peers.ts looks for it (MMLM_PYTHON, python3, /usr/bin/python3)
py=""
for c in ${MMLM_PYTHON:-} python3 /usr/bin/python3; do
  if "$c" -c 'import torch' 2>/dev/null; then py=$c; break; fi
done
[ -n "$py" ] || { echo "rounds.sh: no python with torch (set MMLM_PYTHON)" >&2; exit 1; }
backends=${MMLM_ROUNDS_BACKENDS:-wasm-simd}
warm=${MMLM_ROUNDS_WARMUP_S:-3}
ours_only=(); torch_only=()
if [ -n "${MMLM_ROUNDS_WORKLOADS:-}" ]; then
  ours_only=(--workloads "$MMLM_ROUNDS_WORKLOADS"); torch_only=(--only "$MMLM_ROUNDS_WORKLOADS")
fi
case "$backends" in *blas*) ;; *) export MMLM_NATIVE_BLAS=0 ;; esac
for r in $(seq 1 "$rounds"); do
  for i in "${!nodes[@]}"; do
    n=${nodes[$i]}
    echo "== round $r $("$n" --version) $(date +%T)"
    "$n" node_modules/tsx/dist/cli.mjs --conditions=@mmlm/source bench/run.ts --backend "$backends" --only workloads \
      ${ours_only[@]+"${ours_only[@]}"} --steps "$steps" --warmup-s "$warm" --no-peers --out "$out/ours-$r-$i.json" | grep -E '^\[bench\] wasm' || true
  done
  echo "== round $r torch $(date +%T)"
  # one thread for OpenBLAS too (torch.set_num_threads does not bound Debian's OpenBLAS; bench/peers.ts
  # does the same; rounds recorded before 2026-12-07 ran the peer's GEMMs on every core)
  # and glibc malloc's trimming off, as bench/peers.ts PEER_MALLOC_ENV (rounds before 2026-12-08 ran
  # without it: PyTorch's steps then alternated between two speeds, see there)
  MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456 MALLOC_MMAP_THRESHOLD_=33554432 \
  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
    "$py" bench/peers/workloads_torch.py --threads 1 --steps "$steps" --warmup-s "$warm" ${torch_only[@]+"${torch_only[@]}"} > "$out/torch-$r.jsonl"
done
echo "done $(date +%T)"
