"""Speed of the geography layer, and where the real benchmark coordinates fall.

Usage (from the repository root):

    .venv/bin/python bench/geo_bench.py [--n 1000000] [--data-dir ../shared/data]

(with the package installed, ``pip install -e .``, or ``PYTHONPATH=.``)

Prints: gazetteer load time; points/s of ``haversine_km`` and of ``lookup_many`` on ``--n``
random points (uniform on the sphere, so ~70 % ocean; and the same number drawn around real
YFCC26k photo locations, which is where training labels come from); name-matching calls/s; then
the share of points per continent (and how many get no country) for IM2GPS3K and YFCC26k read
from ``--data-dir`` (skipped with a note if the files are not there).
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from pathlib import Path

import numpy as np

from geo_r_lite import gazetteer, places
from geo_r_lite.geo import haversine_km, lookup_many

REPO = Path(__file__).resolve().parent.parent
FILES = {"IM2GPS3K": "im2gps3k_places365.csv", "YFCC26k": "yfcc26k_coords.csv"}


def best_seconds(fn, repeats: int) -> float:
    """Fastest of ``repeats`` timed calls (the least disturbed by other work on the machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def read_coords(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return (np.array([float(r["LAT"]) for r in rows]), np.array([float(r["LON"]) for r in rows]))


def bench_speed(n: int, repeats: int, data_dir: Path) -> None:
    start = time.perf_counter()
    gazetteer.load()
    print(f"gazetteer load: {time.perf_counter() - start:.2f} s "
          f"({len(gazetteer.load().lats):,} places)")

    rng = np.random.default_rng(0)
    lats = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))  # uniform on the sphere
    lons = rng.uniform(-180, 180, n)
    seconds = best_seconds(lambda: haversine_km(lats, lons, lats[::-1], lons[::-1]), repeats)
    print(f"haversine_km: {n / seconds:,.0f} points/s ({n:,} pairs)")
    seconds = best_seconds(lambda: lookup_many(lats, lons), repeats)
    print(f"lookup_many, uniform on the sphere: {n / seconds:,.0f} points/s ({n:,} points)")

    yfcc = data_dir / FILES["YFCC26k"]
    if yfcc.exists():
        real_lats, real_lons = read_coords(yfcc)
        pick = rng.integers(0, len(real_lats), n)
        # ~5 km of jitter so the batch is not 26k repeated points.
        near_lats = np.clip(real_lats[pick] + rng.normal(0, 0.05, n), -90, 90)
        near_lons = (real_lons[pick] + rng.normal(0, 0.05, n) + 180) % 360 - 180
        seconds = best_seconds(lambda: lookup_many(near_lats, near_lons), repeats)
        print(f"lookup_many, around real photo locations: {n / seconds:,.0f} points/s")

    table = list(places.country_table().values())
    pairs = [(table[i][0], table[(i * 7) % len(table)][0]) for i in range(len(table))] * 200
    seconds = best_seconds(lambda: [places.match_country(a, b) for a, b in pairs], repeats)
    print(f"match_country (cached): {len(pairs) / seconds:,.0f} calls/s")
    seconds = best_seconds(lambda: [places.match_city(a, b) for a, b in pairs], repeats)
    print(f"match_city (cached): {len(pairs) / seconds:,.0f} calls/s")
    # Every prediction new: the cost of normalising a name the caches have not seen.
    fresh = [(f"{a} {i}", b) for i, (a, b) in enumerate(pairs)]
    start = time.perf_counter()
    for a, b in fresh:
        places.match_country(a, b)
    print(f"match_country (unseen predictions): {len(fresh) / (time.perf_counter() - start):,.0f} "
          "calls/s")


def continent_share(data_dir: Path) -> None:
    for name, filename in FILES.items():
        path = data_dir / filename
        if not path.exists():
            print(f"{name}: {path} not found, skipped (pass --data-dir)")
            continue
        lats, lons = read_coords(path)
        found = lookup_many(lats, lons)
        counts = Counter(p.continent or "no continent (ocean)" for p in found)
        no_country = sum(p.country is None for p in found)
        no_city = sum(p.city is None for p in found)
        print(f"\n{name}: {len(found):,} points, {no_country} without a country, "
              f"{no_city} without a city (farther than {gazetteer.LOCAL_MAX_KM:g} km from a town)")
        for continent, count in counts.most_common():
            print(f"  {continent:<22} {count:>6}  {count / len(found):6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="points per speed test")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best is shown")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data",
                        help="folder with im2gps3k_places365.csv and yfcc26k_coords.csv")
    args = parser.parse_args()
    bench_speed(args.n, args.repeats, args.data_dir)
    continent_share(args.data_dir)


if __name__ == "__main__":
    main()
