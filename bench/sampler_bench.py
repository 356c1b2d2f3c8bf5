"""Throughput of the diversity sampler on 1M synthetic records, on one CPU core.

Usage (from the repository root):

    .venv/bin/python bench/sampler_bench.py [--n 1000000] [--capacity 2000] [--hotspots 1000]

(with the package installed, ``pip install -e .``, or ``PYTHONPATH=.``)

Records are labelled ``GeoRecord`` objects (as ``sources.iter_records`` yields them) at random
coordinates with a Zipf-skewed country code over 200 countries (like Flickr's skew). They are built
before timing, in chunks, so the figures measure the sampler alone. Prints records/s for:

- ``add_many`` in batches of ``--batch`` (what ``consume`` does), without hotspots;
- the same with ``--hotspots`` random hotspots (200 km radius, about a third of records dropped);
- ``add`` one record at a time, without and with hotspots (the per-record Python cost: with
  hotspots each call runs one k-d tree query, so batching matters there);
- ``report_rewards`` + refresh, the per-step feedback cost at this capacity.
"""

from __future__ import annotations

import argparse
import random
import time

from geo_r_lite.records import GeoRecord
from geo_r_lite.sampler import DiversitySampler

CHUNK = 100_000


def make_records(n: int, seed: int, start: int = 0) -> list[GeoRecord]:
    rng = random.Random(seed)
    codes = [f"C{i:03d}" for i in range(200)]
    weights = [1.0 / (rank + 1) for rank in range(len(codes))]
    regions = rng.choices(codes, weights, k=n)
    return [GeoRecord(f"r{start + i}", rng.uniform(-60.0, 70.0), rng.uniform(-180.0, 180.0),
                      country_code=code) for i, code in enumerate(regions)]


def timed(label: str, n: int, run) -> float:
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    print(f"{label:<44s} {n:>9,d} records  {seconds:6.2f} s  {n / seconds:>12,.0f} records/s")
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--capacity", type=int, default=2000)
    parser.add_argument("--hotspots", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--single", type=int, default=200_000,
                        help="records for the one-at-a-time runs")
    args = parser.parse_args()

    print(f"building {args.n:,d} records ...")
    chunks = [make_records(min(CHUNK, args.n - start), seed=start, start=start)
              for start in range(0, args.n, CHUNK)]
    rng = random.Random(1)
    hotspots = [(rng.uniform(-60.0, 70.0), rng.uniform(-180.0, 180.0))
                for _ in range(args.hotspots)]

    def batched(sampler):
        def run():
            for chunk in chunks:
                for i in range(0, len(chunk), args.batch):
                    sampler.add_many(chunk[i: i + args.batch])
        return run

    def single(sampler):
        records = [r for chunk in chunks for r in chunk][: args.single]

        def run():
            for record in records:
                sampler.add(record)
        return run, len(records)

    plain = DiversitySampler(args.capacity, seed=0)
    timed(f"add_many, batch {args.batch}, no hotspots", args.n, batched(plain))
    hot = DiversitySampler(args.capacity, seed=0, hotspots=hotspots)
    timed(f"add_many, batch {args.batch}, {args.hotspots} hotspots", args.n, batched(hot))
    print(f"  kept {len(hot)}, dropped near hotspots {hot.stats['dropped_hotspot']:,d}, "
          f"regions {hot.stats['regions']}")
    run, n = single(DiversitySampler(args.capacity, seed=0))
    timed("add, one at a time, no hotspots", n, run)
    run, n = single(DiversitySampler(args.capacity, seed=0, hotspots=hotspots))
    timed(f"add, one at a time, {args.hotspots} hotspots", n, run)

    ids = [r.id for r in plain.items()][:64]
    start = time.perf_counter()
    for record_id in ids:
        plain.report_rewards(record_id, [0.99] * 4)
        plain.items()
    per_step = (time.perf_counter() - start) / len(ids) * 1e3
    print(f"report_rewards (saturated) + items(), capacity {args.capacity}: {per_step:.2f} ms each")


if __name__ == "__main__":
    main()
