"""Long GRPO runs stay flat: resident memory and run-folder size over hundreds of steps.

    python bench/soak.py                    # 300 GRPO steps of the tiny model on the CPU
    python bench/soak.py --steps 500 --capacity 128

The tiny model trains GRPO on the synthetic set with the diversity sampler refreshing its pool
after every step. The reward is a deterministic stand-in with spread (the tiny random model earns
nothing from the real rewards, which would leave GRPO without gradients), and it saturates one
sample in about twenty, so hotspots keep shrinking the pool as they would in a real run.
Checkpoints are saved as a real run saves them (every 25 steps, keeping 3), with sample logs every
25 steps. Printed: resident memory (RSS) at steps 1, 50, 100, ... and the last, the growth from
step 50 to the last (goal: within 10 %), seconds per step, and the run folder's size by part.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class SpreadReward:
    """Scores in [0, 1) from a hash of the completion; one sample id in ~20 always scores 0.99."""

    __name__ = "soak_reward"

    def __call__(self, completions, id, **kwargs):
        from geo_r_lite.parsing import completion_text

        out = []
        for text, sample in zip(map(completion_text, completions), id):
            if int(hashlib.sha1(sample.encode()).hexdigest(), 16) % 20 == 0:
                out.append(0.99)
            else:
                out.append(int(hashlib.sha1(text.encode()).hexdigest(), 16) % 100 / 100)
        return out


def _folder_sizes(root: Path) -> dict[str, float]:
    sizes: dict[str, float] = {}
    for path in root.rglob("*"):
        if path.is_file():
            part = path.relative_to(root).parts
            key = "/".join(part[:2]) if part[0] == "grpo" and not part[1].startswith("checkpoint") else part[0]
            if part[0] == "grpo" and part[1].startswith("checkpoint"):
                key = "grpo/checkpoint-*"
            sizes[key] = sizes.get(key, 0.0) + path.stat().st_size / 1e6
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--capacity", type=int, default=64)
    parser.add_argument("--data", type=int, default=512, help="synthetic records streamed into the sampler")
    args = parser.parse_args()

    import psutil
    from transformers import TrainerCallback

    from geo_r_lite.config import load_config
    from geo_r_lite.model import load_model
    from geo_r_lite.records import SkipStats
    from geo_r_lite.sources import iter_records
    from geo_r_lite.training import fill_sampler, make_sampler, run_grpo

    process = psutil.Process()
    marks = {1, args.steps} | set(range(50, args.steps + 1, 50))
    rss: dict[int, float] = {}
    times: list[float] = []

    class Watch(TrainerCallback):
        def on_step_begin(self, args_, state, control, **kwargs):
            times.append(time.perf_counter())

        def on_step_end(self, args_, state, control, **kwargs):
            if state.global_step in marks:
                rss[state.global_step] = process.memory_info().rss / 1e6
                print(f"step {state.global_step:4}: RSS {rss[state.global_step]:7.1f} MB", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml", [
            f"--train.output_dir={out}", f"--train.max_steps={args.steps}", "--train.save_steps=25",
            "--train.save_total_limit=3", "--train.sample_every=25", "--train.logging_steps=1",
            "--train.max_completion_length=16", "--train.temperature=1.0", f"--data.synthetic_size={args.data}",
            f"--sampler.capacity={args.capacity}", "--sampler.saturation_threshold=0.95",
            "--sampler.hotspot_radius_km=1",
        ])
        sampler = make_sampler(cfg)
        fill_sampler(sampler, iter_records(cfg.data))
        loaded = load_model(cfg.model, seed=cfg.train.seed)
        start = time.perf_counter()
        run_grpo(cfg, loaded, sampler, SkipStats(), callbacks=[Watch()], reward_funcs=[SpreadReward()],
                 reward_weights=[1.0])
        elapsed = time.perf_counter() - start
        sizes = _folder_sizes(out)
        print(f"{args.steps} GRPO steps in {elapsed:.0f} s ({elapsed / args.steps:.2f} s/step); "
              f"pool {len(sampler)} records left, {sampler.stats['hotspots']} hotspots")
        first = 50 if 50 in rss else min(rss)
        growth = (rss[args.steps] - rss[first]) / rss[first]
        print(f"RSS step {first}: {rss[first]:.1f} MB, step {args.steps}: {rss[args.steps]:.1f} MB "
              f"({growth:+.1%}; goal within 10%)")
        print("run folder: " + ", ".join(f"{k} {v:.2f} MB" for k, v in sorted(sizes.items()))
              + f"; total {sum(sizes.values()):.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
