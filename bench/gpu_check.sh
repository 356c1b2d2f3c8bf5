#!/usr/bin/env bash
# The one GPU check: install the missing libraries from wheels, run the GPU tests, then measure
# peak memory and s/step of GRPO on random Qwen2-VL-2B and -7B (hf backend, and Unsloth when it
# imports), writing everything into OUT_DIR. For a machine with one NVIDIA GPU, no network, and a
# Python that already has torch, transformers, peft and accelerate.
#
#   bash bench/gpu_wheels.sh .whl                   # where PyPI is reachable
#   bash bench/gpu_check.sh .whl OUT_DIR            # on the GPU machine (under 8 minutes)
#
# OUT_DIR gets: env.txt (versions, GPU), pytest_gpu.txt, bench.txt and bench.json (the table that
# goes in docs/BENCHMARKS.md with the date and the GPU), and the exit code of each part in
# status.txt. A failing part does not stop the next one.
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

# ---- 1. the missing libraries, without touching the machine's own torch/transformers
site="${TMPDIR:-/tmp}/geo_r_lite_site"
$py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "$wheels"/*.whl \
  > "$out/pip.txt" 2>&1
status install $?
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $py - <<'PY'
import importlib
for name in ("torch", "transformers", "peft", "accelerate", "trl", "datasets", "bitsandbytes"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"))
    except Exception as err:  # report, do not stop: the bench says which backends ran
        print(name, "IMPORT FAILED:", type(err).__name__, str(err)[:200])
import torch
print("cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
PY
  $py -c "import unsloth; print('unsloth', unsloth.__version__)" 2>&1 | tail -1
} > "$out/env.txt" 2>&1
status env $?

# ---- 2. the GPU tests (the CPU suite runs in CI)
timeout 180 $py -m pytest -q -m gpu -p no:cacheprovider tests/test_model.py tests/test_gpu_path.py \
  > "$out/pytest_gpu.txt" 2>&1
status pytest_gpu $?

# ---- 3. memory and speed: each (size, backend) in its own process, capped per run
backends="hf"
if $py -c "import unsloth" > /dev/null 2>&1; then backends="hf unsloth"; fi
timeout 330 $py bench/gpu_train_bench.py --sizes 2b 7b --backends $backends --steps 3 --timeout 150 \
  --json "$out/bench.json" > "$out/bench.txt" 2>&1
status bench $?
cat "$out/bench.txt"
