"""Overhead of our GRPO pipeline over a bare GRPOTrainer, on the tiny model and the synthetic set.

    OMP_NUM_THREADS=2 python bench/train_overhead.py [--steps 10] [--rounds 3]

"Ours" is ``training.build_grpo_trainer``: the sampler-fed pool dataset (images decoded to the pixel
budget on access, refreshed every step), the reward feedback (group check, sampler reports, hotspot
removal, parse-failure metric) and our callbacks (metrics/sample logs, sampler state at every save).
"Bare" is ``GRPOTrainer`` on a ``datasets.Dataset`` of the very same rows (images decoded up front)
with the same reward functions and the same ``GRPOConfig``. Both generate the same number of tokens
per step (temperature 1 on a random LoRA: every completion runs to the length limit).

A step is timed from its start to the next step's start, so logging, checkpoint saving (ours also
writes the sampler state) and the pool refresh count. Prints the median seconds per step of each
(first steps dropped as warm-up), interleaving the runs to even out machine load, and the ratio
ours / bare (target <= 1.05).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geo_r_lite.config import load_config  # noqa: E402

SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"
WARMUP_STEPS = 2


def _step_timer():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Time from one step's start to the next: logging, saving and pool refresh included."""

        def __init__(self):
            self.starts: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            self.starts.append(time.perf_counter())

        def on_train_end(self, args, state, control, **kwargs):
            self.starts.append(time.perf_counter())

        @property
        def durations(self) -> list[float]:
            return [b - a for a, b in zip(self.starts, self.starts[1:])]

    return StepTimer()


def _cfg(out: Path, steps: int):
    return load_config(SMOKE, [
        f"--train.output_dir={out}", f"--train.max_steps={steps}", "--train.temperature=1.0",
        "--train.max_completion_length=32", f"--train.save_steps={max(2, steps // 2)}", "--train.sample_every=2",
        # no saturation: both runs must see the same pool for the same work
        "--sampler.saturation_threshold=2.0",
    ])


def run_ours(cfg) -> list[float]:
    from geo_r_lite.model import load_model
    from geo_r_lite.records import SkipStats
    from geo_r_lite.sources import iter_records
    from geo_r_lite.training import build_grpo_trainer, fill_sampler, make_sampler
    from transformers import set_seed

    set_seed(cfg.train.seed)
    sampler = make_sampler(cfg)
    fill_sampler(sampler, iter_records(cfg.data))
    timer = _step_timer()
    parts = build_grpo_trainer(cfg, load_model(cfg.model, seed=cfg.train.seed), sampler, SkipStats(),
                               callbacks=[timer])
    parts.trainer.train()
    return timer.durations


def run_bare(cfg) -> list[float]:
    from datasets import Dataset
    from transformers import set_seed
    from trl import GRPOTrainer

    from geo_r_lite.grpo_data import grpo_row
    from geo_r_lite.images import load_image
    from geo_r_lite.model import load_model
    from geo_r_lite.reward_registry import build_reward_functions
    from geo_r_lite.sources import iter_records
    from geo_r_lite.training import fill_sampler, make_sampler, vision_token_ids
    from geo_r_lite.trl_config import build_trl_config

    set_seed(cfg.train.seed)
    sampler = make_sampler(cfg)  # the same selection as "ours", materialised up front
    fill_sampler(sampler, iter_records(cfg.data))
    rows = [grpo_row(r, load_image(r.image, cfg.model.min_pixels, cfg.model.max_pixels)) for r in sampler.items()]
    loaded = load_model(cfg.model, seed=cfg.train.seed)
    funcs, weights = build_reward_functions(cfg.reward)
    timer = _step_timer()
    trainer = GRPOTrainer(
        model=loaded.model,
        reward_funcs=funcs,
        args=build_trl_config(cfg, "grpo", reward_weights=weights, suppress_token_ids=vision_token_ids(loaded.processor)),
        train_dataset=Dataset.from_list(rows),
        processing_class=loaded.processor,
        callbacks=[timer],
    )
    trainer.train()
    return timer.durations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ours, bare = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, fn, sink in (("ours", run_ours, ours), ("bare", run_bare, bare)):
                cfg = _cfg(Path(tmp) / f"{name}{r}", args.steps)
                durations = fn(cfg)[WARMUP_STEPS:]
                sink.extend(durations)
                print(f"round {r} {name}: median {statistics.median(durations):.3f} s/step over {len(durations)} steps",
                      flush=True)
    ours_s, bare_s = statistics.median(ours), statistics.median(bare)
    print(f"ours  {ours_s:.3f} s/step  (median of {len(ours)} steps)")
    print(f"bare  {bare_s:.3f} s/step  (median of {len(bare)} steps)")
    print(f"ratio ours/bare = {ours_s / bare_s:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
