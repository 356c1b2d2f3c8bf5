#!/usr/bin/env bash
# Fetch the wheels bench/gpu_check.sh installs on a GPU machine that has no network but already has
# Python 3.12 with torch, transformers, peft, accelerate (and pytest, hypothesis, tensorboard).
#
#   bash bench/gpu_wheels.sh [FOLDER]          # default .whl/ (ignored by git)
#
# Run it where pip reaches PyPI. Versions are requirements.txt's; the rest are what Unsloth,
# datasets and our geography layer need at import time. Two wheels are trimmed so the folder
# travels in 64 MiB: Unsloth's "studio" web app (not imported by the library) and bitsandbytes'
# CUDA 11/12 kernels (a CUDA 13 machine loads libbitsandbytes_cuda13x). Prints the folder's size.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-.whl}"
mkdir -p "$dest"

pin() { grep -E "^$1==" requirements.txt | head -1; }
wanted=(
  "$(pin trl)" "$(pin datasets)" "$(pin bitsandbytes)" "$(pin unsloth)" "$(pin unsloth_zoo)"
  "$(pin reverse_geocode)" "$(pin pycountry)" "$(pin geopy)" geographiclib
  "dill<0.4.2" "multiprocess<0.70.20" tyro docstring-parser shtab typeguard msgspec cut_cross_entropy
  hf_transfer torchao json5 nest-asyncio structlog pydantic pydantic-core annotated-types typing-inspection
  diffusers "certifi>=2026.10.19"
)
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux1_x86_64 any; do platforms+=(--platform "$p"); done
for req in "${wanted[@]}"; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d "$dest" "$req"
done

trim() {  # trim WHEEL PATTERN...: drop members matching the patterns, in place
  local wheel="$1"; shift
  python3 - "$wheel" "$@" <<'PY'
import fnmatch, os, sys, zipfile
wheel, patterns = sys.argv[1], sys.argv[2:]
tmp = wheel + ".tmp"
with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
    for item in src.infolist():
        if not any(fnmatch.fnmatch(item.filename, p) for p in patterns):
            dst.writestr(item, src.read(item.filename))
os.replace(tmp, wheel)
PY
}
for w in "$dest"/unsloth-2026*.whl; do trim "$w" 'studio/*'; done
for w in "$dest"/bitsandbytes-*.whl; do trim "$w" '*libbitsandbytes_cuda1[12]*' '*libbitsandbytes_rocm*'; done
du -sh "$dest"
