"""The smoke job's outcome over seeds: is the default run stable, whatever the seed and cache?

    python bench/smoke_seeds.py                  # seeds 0-4, configs/smoke.yaml, each in its own process
    python bench/smoke_seeds.py --seeds 0 1 --cold   # each run builds the tiny model into a fresh cache

Prints, per seed, the share of evaluation answers that parse and acc@25/200/2500 km, then the
worst parse rate (goal: every seed >= 90 %). A run's folder goes to a scratch directory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(seed: int, work: Path, cold: bool, extra: list[str]) -> dict:
    env = dict(os.environ)
    if cold:
        env["GEO_R_LITE_CACHE"] = str(work / f"cache-{seed}")
    out = work / f"seed-{seed}"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(REPO / "train.py"), f"--train.seed={seed}", f"--train.output_dir={out}",
                           *extra], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"seed {seed} failed:\n{done.stderr[-2000:]}")
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    return {"seed": seed, "seconds": time.perf_counter() - start, **metrics}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--cold", action="store_true", help="a fresh model cache for every run")
    args, extra = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        print("seed  parsed  acc@25km  acc@200km  acc@2500km  seconds")
        results = []
        for seed in args.seeds:
            r = run(seed, Path(tmp), args.cold, extra)
            results.append(r)
            parsed = 1 - r["parse_failure_rate"]
            print(f"{seed:4}  {parsed:6.0%}  {r['acc@25km']:8.0%}  {r['acc@200km']:9.0%}  {r['acc@2500km']:10.0%}"
                  f"  {r['seconds']:7.1f}", flush=True)
    worst = min(1 - r["parse_failure_rate"] for r in results)
    print(f"worst parse rate {worst:.0%} over seeds {args.seeds} (goal >= 90%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
