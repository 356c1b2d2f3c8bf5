"""Throughput of all GRPO rewards together on a realistic batch, on one CPU core.

Run: ``python bench/reward_bench.py [--completions 4096] [--batch 64] [--group 4] [--rounds 5]``

Completions are built around real IM2GPS3K/YFCC coordinates (``tests/data/real_coords_sample.csv``)
with gazetteer place names and a varied ~1 kB reasoning: mostly good answers at a few to a few
thousand km, plus wrong countries, swapped lat/lon, missing <think>, two answers, truncated
output, hemisphere/DMS coordinates, loops and garbage. Each round clears the parse cache, so every
completion is parsed once per round (as in training, where each batch is new text) and shared by
the five rewards. The process is pinned to one core (the gazetteer's KD-tree would use them all).
Prints completions/s for all rewards together (wall clock, and per CPU second of this process,
which is the fairer figure on a shared machine), then a per-stage breakdown.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import time
from pathlib import Path

from geo_r_lite import parsing, rewards
from geo_r_lite.reward_truth import TRUTH_COLUMNS
from geo_r_lite.geo import lookup_many
from geo_r_lite.prompts import build_answer

COORDS_CSV = Path(__file__).resolve().parents[1] / "tests" / "data" / "real_coords_sample.csv"
SENTENCES = (
    "The photo shows a street lined with {a} buildings with {b} roofs.",
    "Cars drive on the {side} side of the road and the plates look {plate}.",
    "The vegetation is {veg}, which suggests a {climate} climate.",
    "Signs are written in what looks like {lang}, with {style} lettering.",
    "There are {n} people in the scene, dressed for {season} weather.",
    "The road markings are {mark} and the curbs are painted {curb}.",
    "In the background I can see {land}, and the sky is {sky}.",
    "Power lines run on {pole} poles along the road.",
    "The architecture, signage and climate together point to {guess}.",
)
WORDS = {
    "a": ["low stone", "tall concrete", "colourful wooden", "whitewashed", "red brick"],
    "b": ["tiled", "flat", "steep slate", "corrugated metal", "thatched"],
    "side": ["right", "left"],
    "plate": ["long and white", "yellow", "short and black", "blue-banded European"],
    "veg": ["lush and tropical", "sparse and dry", "coniferous", "deciduous", "Mediterranean scrub"],
    "climate": ["temperate", "arid", "tropical", "continental", "subarctic"],
    "lang": ["Spanish", "French", "Cyrillic script", "Thai", "English", "Portuguese", "Japanese"],
    "style": ["bold sans-serif", "hand-painted", "reflective", "faded"],
    "n": ["no", "a few", "many", "two"],
    "season": ["warm", "cold", "rainy", "mild"],
    "mark": ["yellow dashed lines", "white solid lines", "missing", "double yellow"],
    "curb": ["red and white", "black and yellow", "grey", "blue"],
    "land": ["rolling hills", "snowy mountains", "a flat plain", "the sea", "dense forest"],
    "sky": ["overcast", "clear blue", "hazy", "stormy"],
    "pole": ["concrete", "wooden", "steel"],
    "guess": ["this region", "a mid-sized town", "a coastal city", "a rural area"],
}


def _think(rng: random.Random) -> str:
    picks = rng.sample(SENTENCES, k=len(SENTENCES)) * 2
    return " ".join(s.format(**{k: rng.choice(v) for k, v in WORDS.items()}) for s in picks)


def _dms(value: float, axis: str) -> str:
    letter = ("N" if value >= 0 else "S") if axis == "lat" else ("E" if value >= 0 else "W")
    value = abs(value)
    degrees, minutes = int(value), (value % 1) * 60
    return f"{degrees}°{int(minutes)}'{(minutes % 1) * 60:.1f}\"{letter}"


def make_batch(n: int, group: int, rng: random.Random) -> tuple[list[str], dict[str, list]]:
    """``n`` completions, ``group`` per prompt, and their ground-truth columns (each prompt's
    truth repeated ``group`` times, as TRL passes it); the mix is in the module docstring."""
    with COORDS_CSV.open(encoding="utf-8") as handle:
        coords = [(float(r["LAT"]), float(r["LON"])) for r in csv.DictReader(handle)]
    prompts = [rng.choice(coords) for _ in range(-(-n // group))]
    truths = [prompts[i // group] for i in range(n)]
    preds = []
    for lat, lon in truths:
        spread = rng.choice([0.05, 0.5, 3.0, 20.0])
        preds.append((max(-89.0, min(89.0, lat + rng.gauss(0, spread))),
                      (lon + rng.gauss(0, spread) + 180.0) % 360.0 - 180.0))
    true_places = lookup_many([t[0] for t in truths], [t[1] for t in truths])
    pred_places = lookup_many([p[0] for p in preds], [p[1] for p in preds])
    completions = []
    for (lat, lon), place in zip(preds, pred_places):
        think, answer = _think(rng), build_answer(place, lat, lon)
        kind = rng.random()
        if kind < 0.55:
            text = f"<think>\n{think}\n</think>\n{answer}"
        elif kind < 0.62:
            text = f"<think>\n{think}\n</think>\n{build_answer(place, lon / 2, lat)}"  # swapped
        elif kind < 0.69:
            text = answer  # no think
        elif kind < 0.74:
            text = f"<think>\n{think}\n</think>\n{answer}\n{answer}"  # two answers
        elif kind < 0.81:
            full = f"<think>\n{think}\n</think>\n{answer}"
            text = full[: rng.randrange(len(full) // 2, len(full))]  # truncated
        elif kind < 0.88:
            coords_line = f"Coordinates: {_dms(lat, 'lat')}, {_dms(lon, 'lon')}"
            text = f"<think>\n{think}\n</think>\n" + answer.replace(
                answer.splitlines()[-2], coords_line)
        elif kind < 0.94:
            loop = " The sign says Paris." * rng.randint(20, 60)
            text = f"<think>\n{think[:300]}{loop}\n</think>\n{answer}"
        else:
            text = "".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(50, 1500)))
        completions.append(text)
    columns = {
        "lat": [t[0] for t in truths], "lon": [t[1] for t in truths],
        **{name: [getattr(p, name) for p in true_places] for name in TRUTH_COLUMNS},
    }
    return completions, columns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completions", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=64, help="completions per reward call (B*G)")
    parser.add_argument("--group", type=int, default=4, help="G, generations per prompt")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    completions, columns = make_batch(args.completions, args.group, random.Random(args.seed))
    batches = [(completions[s:s + args.batch], {k: v[s:s + args.batch] for k, v in columns.items()})
               for s in range(0, args.completions, args.batch)]
    funcs = [rewards.distance_reward, rewards.format_reward, rewards.hierarchy_reward,
             rewards.consistency_reward, rewards.geo_reward]
    for comps, cols in batches[:2]:  # warm up: gazetteer load, name caches
        for f in funcs:
            f(comps, **cols)

    stage = {f.__name__: 0.0 for f in funcs}
    stage["parse"] = 0.0
    best = best_cpu = float("inf")
    for _ in range(args.rounds):
        parsing._parse_text.cache_clear()
        start, start_cpu = time.perf_counter(), time.process_time()
        for comps, cols in batches:
            for f in funcs:
                f(comps, **cols)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
        # Breakdown on a second pass: parse cold, then each reward on cached parses.
        parsing._parse_text.cache_clear()
        for comps, cols in batches:
            t0 = time.perf_counter()
            for c in comps:
                parsing.parse_answer(c)
            stage["parse"] += time.perf_counter() - t0
            for f in funcs:
                t0 = time.perf_counter()
                f(comps, **cols)
                stage[f.__name__] += time.perf_counter() - t0

    n = len(completions)
    form = rewards.format_reward(completions)
    geo = [g for g in rewards.geo_reward(completions, **columns) if g is not None]
    print(f"{n} completions/round in batches of {args.batch} (G={args.group}), mean "
          f"{sum(map(len, completions)) / n:.0f} chars; format reward 1 for {sum(form) / n:.0%}, "
          f"mean geo reward {sum(geo) / len(geo):.2f}")
    print(f"all 5 rewards together: {n / best:,.0f} completions/s wall, {n / best_cpu:,.0f} per "
          f"CPU second (best of {args.rounds} rounds, one core; load average "
          f"{os.getloadavg()[0]:.1f})")
    for name, seconds in stage.items():
        print(f"  {name:20s} {seconds / (args.rounds * n) * 1e6:7.2f} us/completion")


if __name__ == "__main__":
    main()
