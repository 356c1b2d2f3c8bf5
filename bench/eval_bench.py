"""Evaluation throughput (images/s) of the whole eval loop on a generated IM2GPS3K-layout set.

Run: ``python bench/eval_bench.py [--images 24] [--batch-sizes 1 4 8] [--max-new-tokens 32]
[--model tiny] [--threads 2]``

Each batch size runs ``geo_r_lite.evaluation.run_evaluation`` from scratch into a temporary folder:
reading the manifest, decoding and resizing the JPEGs (real IM2GPS3K coordinates, 320x240
noise images), batched greedy generation of exactly ``--max-new-tokens`` tokens (EOS is
suppressed so every batch size does the same work), parsing, the fsync'd appends and the report.
The model is loaded once, outside the timing. Prints images/s per batch size (wall clock), and
the generation share of the time. ``--model`` takes any local model folder (default: the offline
tiny Qwen2-VL, whose figures measure the pipeline's overhead, not a real model's speed).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from eval_benchmarks import IM2GPS3K_HEADER, real_coords  # noqa: E402
from geo_r_lite import evaluation  # noqa: E402
from geo_r_lite.config import config_from_dict  # noqa: E402
from geo_r_lite.model import load_model  # noqa: E402


def make_set(root: Path, n: int) -> tuple[str, str]:
    """``n`` 320x240 noise JPEGs + an IM2GPS3K-layout CSV; returns (csv path, image folder)."""
    import csv

    rng = np.random.default_rng(0)
    images = root / "images"
    images.mkdir(parents=True)
    rows = []
    for i, (lat, lon) in enumerate(real_coords(n)):
        name = f"{i:06d}.jpg"
        Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(images / name)
        rows.append([name, "bench", lat, lon, 0, 0, 0, 0.0, 0.0, 0.0])
    path = root / "im2gps3k_bench.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(IM2GPS3K_HEADER)
        writer.writerows(rows)
    return str(path), str(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    torch.set_num_threads(args.threads)
    model_cfg = {"name": args.model, "backend": "hf", "load_in_4bit": False,
                 "min_pixels": 32 * 28 * 28, "max_pixels": 64 * 28 * 28}
    loaded = load_model(config_from_dict({"model": model_cfg}).model, for_training=False)
    # Same work for every batch size: no early stop at EOS.
    loaded.model.generation_config.eos_token_id = None
    loaded.model.generation_config.min_new_tokens = args.max_new_tokens
    real_generate = evaluation.generate_batch
    spent = {"generate": 0.0}

    def timed_generate(*a, **k):
        start = time.perf_counter()
        try:
            return real_generate(*a, **k)
        finally:
            spent["generate"] += time.perf_counter() - start

    evaluation.generate_batch = timed_generate
    device = "cuda" if torch.cuda.is_available() else f"cpu, {args.threads} threads"
    print(f"model {loaded.name_or_path} ({device}); {args.images} images, "
          f"{args.max_new_tokens} new tokens each, pixels {model_cfg['min_pixels']}-{model_cfg['max_pixels']}")
    with tempfile.TemporaryDirectory() as tmp:
        path, image_dir = make_set(Path(tmp), args.images)
        for batch_size in args.batch_sizes:
            cfg = config_from_dict({"model": model_cfg, "eval": {
                "data": {"source": "manifest", "path": path, "image_dir": image_dir, "split": "test"},
                "output_dir": str(Path(tmp) / f"out-{batch_size}"), "batch_size": batch_size,
                "max_new_tokens": args.max_new_tokens}})
            spent["generate"] = 0.0
            start = time.perf_counter()
            metrics = evaluation.run_evaluation(cfg, loaded, shard=(0, 1))
            wall = time.perf_counter() - start
            print(f"batch {batch_size:3d}: {metrics['n'] / wall:7.2f} images/s "
                  f"({wall:6.1f} s; generation {100 * spent['generate'] / wall:4.1f} % of it)")


if __name__ == "__main__":
    main()
