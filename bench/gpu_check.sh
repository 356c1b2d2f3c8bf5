#!/usr/bin/env bash
# The one GPU check: install the missing libraries from wheels, run the GPU tests, then measure
# peak memory and s/step of GRPO on random Qwen2-VL-2B and -7B (hf backend, and Unsloth when it
# imports), writing everything into OUT_DIR. For a machine with one NVIDIA GPU, no network, and a
# Python 3.12 that already has torch, transformers, peft and accelerate (and numpy, scipy, pandas,
# pyarrow, pytest, hypothesis, tensorboard).
#
#   bash bench/gpu_wheels.sh .whl                   # where PyPI is reachable
#   bash bench/gpu_check.sh .whl OUT_DIR            # on the GPU machine
#
# Time budget (under 8 minutes in all): install <= 90 s, pre-flight <= 30 s, GPU tests <= 90 s,
# benchmark <= 240 s (2B runs first; each run's figures are written as soon as it ends, so a run
# cut by the budget loses only itself). OUT_DIR gets: env.txt (versions, GPU, which imports work),
# pip.txt, pytest_gpu.txt, bench.txt and bench.json (the table for docs/BENCHMARKS.md, with the date
# and the GPU), and status.txt (exit code and elapsed seconds of each part). A failing part does
# not stop the next one.
set -uo pipefail
cd "$(dirname "$0")/.."
wheels="${1:?usage: bench/gpu_check.sh WHEEL_DIR OUT_DIR}"
out="${2:?usage: bench/gpu_check.sh WHEEL_DIR OUT_DIR}"
mkdir -p "$out"
start=$(date +%s)
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export GEO_R_LITE_CACHE="${TMPDIR:-/tmp}/geo_r_lite_cache" PYTHONUNBUFFERED=1
py=python3
status() { echo "$1 rc=$2 t=$(( $(date +%s) - start ))s" | tee -a "$out/status.txt"; }

# ---- 1. the missing libraries, one wheel at a time (one bad wheel must not stop the others),
#         into a folder of their own: the machine's torch/transformers stay as they are
site="${TMPDIR:-/tmp}/geo_r_lite_site"
failed=0
for wheel in "$wheels"/*.whl; do
  timeout 60 $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
    "$wheel" >> "$out/pip.txt" 2>&1 || { echo "FAILED $wheel" >> "$out/pip.txt"; failed=$((failed + 1)); }
done
status "install (failed wheels: $failed)" $failed
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"

# ---- 2. pre-flight: what imports, with which versions (the bench says which backends can run)
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  timeout 30 $py - <<'PY'
import importlib
for name in ("torch", "transformers", "peft", "accelerate", "trl", "datasets", "bitsandbytes", "numpy", "scipy",
             "pyarrow", "PIL", "reverse_geocode", "pycountry", "geopy", "tensorboard", "geo_r_lite.training"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "ok"))
    except Exception as err:  # report, do not stop
        print(name, "IMPORT FAILED:", type(err).__name__, str(err)[:200])
import torch
print("cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
PY
  timeout 60 $py -c "import unsloth; print('unsloth', unsloth.__version__)" 2>&1 | tail -1
} > "$out/env.txt" 2>&1
status env $?

# ---- 3. the GPU tests (the CPU suite runs in CI)
timeout 90 $py -m pytest -q -m gpu -p no:cacheprovider tests/test_model.py tests/test_gpu_path.py \
  > "$out/pytest_gpu.txt" 2>&1
status pytest_gpu $?

# ---- 4. memory and speed: each (size, backend) in its own process, within what is left
backends="hf"
if grep -q "^unsloth 20" "$out/env.txt"; then backends="hf unsloth"; fi
timeout 240 $py bench/gpu_train_bench.py --sizes 2b 7b --backends $backends --steps 3 --timeout 100 \
  --json "$out/bench.json" > "$out/bench.txt" 2>&1
status bench $?
cat "$out/bench.txt"
