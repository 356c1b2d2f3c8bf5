"""GPU memory and speed of one GRPO step for Qwen2-VL-2B and -7B, without downloading any weights.

    python bench/gpu_train_bench.py                     # both sizes, hf backend
    python bench/gpu_train_bench.py --sizes 7b --backends hf unsloth --steps 4 --json out/bench.json

For each size, a randomly initialised model is built on the GPU from the real ``config.json`` of
``Qwen/Qwen2-VL-{2B,7B}-Instruct`` (bundled in ``bench/configs``), saved once to a scratch folder,
and loaded back through ``geo_r_lite.model.load_model`` exactly as training loads the real one:
4-bit NF4 + LoRA + gradient checkpointing. GRPO then runs through ``training.build_grpo_trainer``
with G = 4, 256-token completions (a random model almost never stops early) and 448 x 448 px
images (256 image tokens), on the synthetic set. Printed per run: peak
``torch.cuda.max_memory_allocated`` over the training steps and the median seconds per step
(the first step dropped as warm-up). Targets: 7B <= 20 GB, 2B <= 13 GB.

Random weights change nothing about memory; the text side uses the tiny offline tokenizer (no hub),
whose vision-token ids replace the config's, so the vocabulary and embedding sizes stay real.
Each (size, backend) runs in a process of its own: Unsloth must be imported before transformers
to patch it, and one run's allocator state must not leak into the next one's peak. Without CUDA
the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONFIGS = Path(__file__).resolve().parent / "configs"
SIZES = {"2b": "qwen2vl_2b_config.json", "7b": "qwen2vl_7b_config.json"}
TARGET_GB = {"2b": 13.0, "7b": 20.0}
IMAGE_PIXELS = 448 * 448
# Processor files of the tiny offline model copied next to the random weights.
PROCESSOR_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "processor_config.json",
                   "preprocessor_config.json", "video_preprocessor_config.json", "special_tokens_map.json")
TOKEN_FIELDS = {"image_token_id": "<|image_pad|>", "video_token_id": "<|video_pad|>",
                "vision_start_token_id": "<|vision_start|>", "vision_end_token_id": "<|vision_end|>",
                "vision_token_id": "<|vision_pad|>", "eos_token_id": "<|im_end|>", "bos_token_id": "<|endoftext|>"}


def build_random_model(size: str, folder: Path, device: str = "cuda") -> Path:
    """Random bf16 Qwen2-VL of the real config in ``folder``, with the tiny model's processor.

    Initialised on ``device`` (the GPU: a 7B model initialises in seconds there, minutes on a CPU).
    """
    import torch
    from transformers import AutoTokenizer, Qwen2VLConfig, Qwen2VLForConditionalGeneration

    from geo_r_lite.tiny import ensure_tiny_model

    tiny = ensure_tiny_model()
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    values = json.loads((CONFIGS / SIZES[size]).read_text())
    for field, token in TOKEN_FIELDS.items():
        values[field] = tokenizer.convert_tokens_to_ids(token)
    values["pad_token_id"] = tokenizer.pad_token_id
    config = Qwen2VLConfig(**values)
    torch.manual_seed(0)
    # Built in bf16 directly on the device: a float32 7B would take ~33 GB before any cast.
    with torch.device(device):
        model = Qwen2VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    model.generation_config.eos_token_id = values["eos_token_id"]
    model.generation_config.pad_token_id = values["pad_token_id"]
    model.save_pretrained(folder)
    del model
    gc.collect()
    torch.cuda.empty_cache()
    for name in PROCESSOR_FILES:
        if (tiny / name).is_file():
            shutil.copy(tiny / name, folder / name)
    return folder


def _last_logged(path: Path, key: str) -> float:
    values = [rec[key] for rec in map(json.loads, path.read_text().splitlines()) if key in rec] if path.is_file() else []
    return values[-1] if values else float("nan")


def bench_one(model_dir: Path, backend: str, steps: int, out: Path) -> dict:
    """Peak GPU memory (GB) and median s/step of GRPO on the model in ``model_dir``."""
    import torch
    from transformers import TrainerCallback, set_seed

    from geo_r_lite.config import load_config
    from geo_r_lite.model import load_model
    from geo_r_lite.records import SkipStats
    from geo_r_lite.sources import iter_records
    from geo_r_lite.training import build_grpo_trainer, fill_sampler, make_sampler

    cfg = load_config(CONFIGS.parent.parent / "configs" / "3090.yaml", [
        f"--model.name={model_dir}", f"--model.backend={backend}", f"--model.min_pixels={IMAGE_PIXELS // 2}",
        f"--model.max_pixels={IMAGE_PIXELS}", "--data.source=synthetic", "--data.synthetic_size=32",
        "--data.max_samples=null", f"--train.output_dir={out}", f"--train.max_steps={steps}",
        "--train.num_generations=4", "--train.per_device_train_batch_size=4", "--train.gradient_accumulation_steps=1",
        "--train.max_completion_length=256", "--train.save_steps=100000", "--train.report_to=[]",
        "--eval.enabled=false",
    ])
    # Every image at the full budget (the worst case a config allows), past the config check that
    # wants room for every aspect ratio: the bench measures memory, not vLLM token agreement.
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, min_pixels=IMAGE_PIXELS))

    class Timer(TrainerCallback):
        def __init__(self):
            self.starts: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            torch.cuda.synchronize()
            self.starts.append(time.perf_counter())

        def on_train_end(self, args, state, control, **kwargs):
            torch.cuda.synchronize()
            self.starts.append(time.perf_counter())

    set_seed(0)
    loaded = load_model(cfg.model, for_training=True)
    sampler = make_sampler(cfg)
    fill_sampler(sampler, iter_records(cfg.data))
    timer = Timer()
    parts = build_grpo_trainer(cfg, loaded, sampler, SkipStats(), callbacks=[timer])
    torch.cuda.reset_peak_memory_stats()
    parts.trainer.train()
    durations = [b - a for a, b in zip(timer.starts, timer.starts[1:])][1:]
    result = {
        "backend": loaded.backend,
        "peak_gb": torch.cuda.max_memory_allocated() / 1e9,
        "s_per_step": statistics.median(durations) if durations else float("nan"),
        "mean_completion_tokens": _last_logged(out / "grpo" / "metrics.jsonl", "completions/mean_length"),
    }
    del parts, loaded
    gc.collect()
    torch.cuda.empty_cache()
    return result


def _run_child(size: str, model_dir: Path, backend: str, steps: int, work: Path, timeout: float) -> dict:
    """``bench_one`` in a fresh Python process (see the module docstring); its result or the error."""
    import subprocess

    cmd = [sys.executable, __file__, "--child", str(model_dir), backend, str(steps), str(work)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {done.returncode}: {' | '.join(tail)}"}
    return json.loads(lines[-1][len("RESULT "):])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["2b", "7b"], choices=sorted(SIZES))
    parser.add_argument("--backends", nargs="+", default=["hf"], choices=["hf", "unsloth"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300, help="seconds allowed per (size, backend) run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", nargs=4, metavar=("MODEL_DIR", "BACKEND", "STEPS", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model_dir, backend, steps, work = args.child
        if backend == "unsloth":
            import unsloth  # noqa: F401  (before transformers, as train.py does through prepare_backend)
        print("RESULT " + json.dumps(bench_one(Path(model_dir), backend, int(steps), Path(work))), flush=True)
        return 0
    try:
        import torch
    except ImportError:
        print("SKIP: torch is not installed")
        return 0
    if not torch.cuda.is_available():
        print("SKIP: no CUDA GPU here; this benchmark measures GPU memory and needs one (nothing was run)")
        return 0
    gpu = f"{torch.cuda.get_device_name(0)}, {torch.cuda.get_device_properties(0).total_memory / 1e9:.1f} GB"
    print(f"GPU: {gpu}")
    print("size backend  peak GB  target  s/step  completion tokens")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            model_dir = build_random_model(size, Path(tmp) / f"qwen2vl-{size}")
            for backend in args.backends:
                r = _run_child(size, model_dir, backend, args.steps, Path(tmp) / f"run-{size}-{backend}", args.timeout)
                results.append({"size": size, "requested_backend": backend, **r})
                if args.json:  # after every run: a later timeout keeps what was measured
                    args.json.parent.mkdir(parents=True, exist_ok=True)
                    args.json.write_text(json.dumps({"gpu": gpu, "steps": args.steps, "results": results}, indent=2))
                if "error" in r:  # one failing backend (e.g. no Unsloth wheels) must not hide the rest
                    print(f"{size:4} {backend:8} failed: {r['error']}")
                    continue
                ok = "ok" if r["peak_gb"] <= TARGET_GB[size] else "OVER"
                print(f"{size:4} {r['backend']:8} {r['peak_gb']:7.2f}  <= {TARGET_GB[size]:4.0f} {ok:4} "
                      f"{r['s_per_step']:6.2f}  {r['mean_completion_tokens']:.0f}", flush=True)
            shutil.rmtree(model_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
