"""DiversitySampler: diversity on the real YFCC26k stream, weights (chi-square), determinism,
memory bound, exact hotspot radius, saturation feedback, and exact save/restore."""

from __future__ import annotations

import csv
import itertools
import json
import math
import random
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from geo_r_lite.geo import haversine_km, lookup_many
from geo_r_lite.records import DataError, GeoRecord
from geo_r_lite.sampler import DiversitySampler

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def yfcc26k() -> list[GeoRecord]:
    """The real YFCC26k coordinates (a copy of ../shared/data/yfcc26k_coords.csv), labelled."""
    with open(DATA / "yfcc26k_coords.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    lats, lons = [float(r["LAT"]) for r in rows], [float(r["LON"]) for r in rows]
    places = lookup_many(lats, lons)
    return [GeoRecord(r["IMG_ID"], lat, lon, r["IMG_ID"], p.continent, p.country, p.country_code,
                      p.region, p.city) for r, lat, lon, p in zip(rows, lats, lons, places)]


def _entropy_and_top_share(records) -> tuple[float, float]:
    counts = Counter(r.country_code for r in records)
    n = sum(counts.values())
    entropy = -sum(c / n * math.log2(c / n) for c in counts.values())
    return entropy, max(counts.values()) / n


def _records(regions, start=0):
    return [GeoRecord(str(start + i), 10.0 + 0.001 * i, 20.0, country_code=code)
            for i, code in enumerate(regions)]


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_yfcc26k_selection_is_more_diverse_than_the_stream(yfcc26k, alpha):
    sampler = DiversitySampler(capacity=2000, alpha=alpha, seed=0)
    sampler.consume(yfcc26k)
    entropy_in, top_in = _entropy_and_top_share(yfcc26k)
    entropy_out, top_out = _entropy_and_top_share(sampler.items())
    print(f"alpha={alpha}: country entropy {entropy_in:.2f} -> {entropy_out:.2f} bits, "
          f"largest country share {top_in:.1%} -> {top_out:.1%}")
    assert len(sampler) == 2000
    assert entropy_out >= entropy_in + 1.5
    assert top_out <= top_in / 3


def test_alpha_zero_keeps_the_stream_distribution(yfcc26k):
    sampler = DiversitySampler(capacity=4000, alpha=0.0, seed=0)
    sampler.consume(yfcc26k)
    _, top_in = _entropy_and_top_share(yfcc26k)
    _, top_out = _entropy_and_top_share(sampler.items())
    assert abs(top_out - top_in) < 0.03  # uniform sampling: the US share stays ~36 %


def _weights(regions, alpha):
    seen, weights = Counter(), []
    for region in regions:
        weights.append((1.0 + seen[region]) ** -alpha)
        seen[region] += 1
    return np.array(weights)


def test_capacity_one_picks_each_record_with_probability_proportional_to_weight():
    regions = list("AAABBCDAAB")
    expected = _weights(regions, 1.0)
    expected /= expected.sum()
    runs = 6000
    picks = Counter()
    for seed in range(runs):
        sampler = DiversitySampler(capacity=1, alpha=1.0, seed=seed)
        sampler.add_many(_records(regions))
        picks[sampler.items()[0].id] += 1
    observed = np.array([picks[str(i)] for i in range(len(regions))])
    fit = scipy_stats.chisquare(observed, expected * runs)
    uniform = scipy_stats.chisquare(observed, np.full(len(regions), runs / len(regions)))
    print(f"chi-square vs weights p={fit.pvalue:.3f}, vs uniform p={uniform.pvalue:.2e}")
    assert fit.pvalue > 0.001
    assert uniform.pvalue < 1e-6  # the test has the power to see a wrong distribution


def test_capacity_two_matches_weighted_sampling_without_replacement():
    regions = list("AABAC")
    w = _weights(regions, 1.0)
    total = w.sum()
    pairs = list(itertools.combinations(range(len(regions)), 2))
    expected = np.array([w[i] / total * w[j] / (total - w[i]) + w[j] / total * w[i] / (total - w[j])
                         for i, j in pairs])
    runs = 6000
    counts = Counter()
    for seed in range(runs):
        sampler = DiversitySampler(capacity=2, alpha=1.0, seed=seed)
        for record in _records(regions):
            sampler.add(record)  # the single-record path
        counts[tuple(sorted(int(r.id) for r in sampler.items()))] += 1
    observed = np.array([counts[p] for p in pairs])
    assert scipy_stats.chisquare(observed, expected * runs).pvalue > 0.001


def test_same_seed_same_selection_and_order(yfcc26k):
    def run(seed, batch):
        sampler = DiversitySampler(capacity=300, seed=seed)
        sampler.consume(yfcc26k[:8000], batch_size=batch)
        return [r.id for r in sampler.items()]

    first = run(7, 4096)
    assert first == run(7, 4096)
    assert first == run(7, 1)  # batching does not change the selection
    assert first != run(8, 4096)
    order = {record.id: i for i, record in enumerate(yfcc26k)}
    assert [order[i] for i in first] == sorted(order[i] for i in first)  # stream order


def test_add_matches_add_many_with_hotspots(yfcc26k):
    stream = yfcc26k[:3000]
    one, many = (DiversitySampler(capacity=100, seed=1, hotspots=[(40.7, -74.0)])
                 for _ in range(2))
    flags_one = [one.add(record) for record in stream]
    flags_many = many.add_many(stream)
    assert flags_one == flags_many
    assert one.state_dict() == many.state_dict()


def test_memory_stays_bounded_on_a_long_stream():
    def stream(n, seed):
        rng = random.Random(seed)
        for i in range(n):
            yield GeoRecord(f"r{seed}-{i}", rng.uniform(-60, 70), rng.uniform(-180, 180),
                            country_code=f"C{rng.randrange(50)}")

    sampler = DiversitySampler(capacity=200, seed=0)
    sampler.consume(stream(10_000, 1))
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    sampler.consume(stream(80_000, 2))
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(sampler) == 200 and sampler.seen == 90_000
    assert sampler.stats["regions"] == 50
    # Eight times more records read, memory flat: what the pool held before, not per record read
    # (80k records would need about 80k * 200 B = 16 MB if any were retained).
    assert after - before < 200 * 1024


def _boundary_point(hotspot, direction, radius_km):
    """The last float along ``direction`` still within ``radius_km`` of ``hotspot`` (inclusive)
    and the very next float, outside, both by geo.haversine_km."""
    def point(t):
        lat, lon = hotspot[0] + direction[0] * t, hotspot[1] + direction[1] * t
        return lat, (lon + 180.0) % 360.0 - 180.0

    inside, outside = 0.0, 90.0
    while True:
        middle = (inside + outside) / 2.0
        if middle in (inside, outside):
            break
        if haversine_km(*hotspot, *point(middle)) <= radius_km:
            inside = middle
        else:
            outside = middle
    return point(inside), point(outside)


@pytest.mark.parametrize("hotspot, direction, radius_km", [
    pytest.param((10.0, 20.0), (1.0, 0.0), 200.0, id="north-200km"),
    pytest.param((-45.0, 170.0), (0.0, 1.0), 200.0, id="east-across-antimeridian"),
    pytest.param((60.0, -179.9), (0.0, -1.0), 25.0, id="west-across-antimeridian-25km"),
    pytest.param((0.0, 0.0), (-0.6, 0.8), 1.0, id="diagonal-1km"),
    pytest.param((85.0, 10.0), (1.0, 0.0), 500.0, id="near-the-pole"),
])
def test_hotspot_radius_is_inclusive_and_exact(hotspot, direction, radius_km):
    inside, outside = _boundary_point(hotspot, direction, radius_km)
    assert haversine_km(*hotspot, *inside) <= radius_km < haversine_km(*hotspot, *outside)
    sampler = DiversitySampler(capacity=10, hotspot_radius_km=radius_km, hotspots=[hotspot])
    flags = sampler.add_many([GeoRecord("in", *inside, country_code="X"),
                              GeoRecord("out", *outside, country_code="X")])
    assert flags == [False, True]
    assert sampler.stats["dropped_hotspot"] == 1


@pytest.mark.parametrize("hotspot, point", [
    pytest.param((48.8566, 2.3522), (50.1109, 8.6821), id="paris-frankfurt"),
    pytest.param((-16.5, 179.9), (-17.7, -178.0), id="fiji-across-antimeridian"),
])
def test_point_exactly_at_the_radius_is_dropped(hotspot, point):
    radius_km = haversine_km(*hotspot, *point)  # the radius *is* this point's distance
    sampler = DiversitySampler(capacity=5, hotspot_radius_km=radius_km, hotspots=[hotspot])
    assert sampler.add(GeoRecord("at-radius", *point, country_code="X")) is False


def test_new_hotspot_evicts_pool_records_within_radius():
    sampler = DiversitySampler(capacity=10, seed=0)
    sampler.add_many([GeoRecord("paris", 48.8566, 2.3522, country_code="FR"),
                      GeoRecord("versailles", 48.8049, 2.1204, country_code="FR"),
                      GeoRecord("lyon", 45.7640, 4.8357, country_code="FR")])
    assert sampler.add_hotspots([(48.86, 2.35)]) == 2
    assert [r.id for r in sampler.items()] == ["lyon"]


@pytest.mark.parametrize("rewards, saturated", [
    pytest.param([0.95, 0.99, 0.91, 1.0], True, id="all-above-threshold"),
    pytest.param([0.95, 0.99, 0.9, 1.0], False, id="one-equal-to-threshold"),
    pytest.param([0.95, 0.2, 0.99, 0.97], False, id="one-low"),
    pytest.param([], False, id="no-rewards"),
    pytest.param([0.95, float("nan")], False, id="nan-reward"),
])
def test_report_rewards_turns_saturated_samples_into_hotspots(rewards, saturated):
    sampler = DiversitySampler(capacity=10, saturation_threshold=0.9, seed=0)
    sampler.add_many([GeoRecord("paris", 48.8566, 2.3522, country_code="FR"),
                      GeoRecord("versailles", 48.8049, 2.1204, country_code="FR"),
                      GeoRecord("tokyo", 35.6762, 139.6503, country_code="JP")])
    assert sampler.report_rewards("paris", rewards) is saturated
    remaining = [r.id for r in sampler.items()]
    assert remaining == (["tokyo"] if saturated else ["paris", "versailles", "tokyo"])
    # Once a hotspot, the area stays out of the pool.
    assert sampler.add(GeoRecord("paris-again", 48.85, 2.35, country_code="FR")) is not saturated


def test_report_rewards_for_a_record_no_longer_pooled():
    sampler = DiversitySampler(capacity=1, seed=0)
    sampler.add(GeoRecord("tokyo", 35.6762, 139.6503, country_code="JP"))
    assert sampler.report_rewards("gone", [1.0, 1.0]) is False  # location unknown: nothing to add
    assert sampler.report_rewards("gone", [1.0, 1.0], latlon=(35.68, 139.65)) is True
    assert len(sampler) == 0 and sampler.stats["hotspots"] == 1


@pytest.mark.parametrize("name, text", [
    pytest.param("hot.csv", "id,lat,lon\na,48.8566,2.3522\nb,-33.8688,151.2093\n", id="csv"),
    pytest.param("hot.csv", "IMG_ID,LON,LAT\na,2.3522,48.8566\nb,151.2093,-33.8688\n",
                 id="csv-longitude-first"),
    pytest.param("hot.jsonl", '{"lat": 48.8566, "lon": 2.3522}\n\n'
                 '{"lat": -33.8688, "lon": 151.2093, "id": "b"}\n', id="jsonl"),
])
def test_load_hotspots_from_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    sampler = DiversitySampler(capacity=5)
    assert sampler.load_hotspots(path) == 2
    flags = sampler.add_many([GeoRecord("near-sydney", -33.9, 151.0, country_code="AU"),
                              GeoRecord("tokyo", 35.6762, 139.6503, country_code="JP")])
    assert flags == [False, True]


def test_bad_hotspots_fail_clearly(tmp_path):
    path = tmp_path / "hot.csv"
    path.write_text("lat,lon\n48.8,2.3\n95,2.3\n")
    with pytest.raises(DataError, match="hot.csv line 3"):
        DiversitySampler(capacity=5).load_hotspots(path)
    with pytest.raises(ValueError, match="hotspot 1"):
        DiversitySampler(capacity=5, hotspots=[(1.0, 2.0), (float("nan"), 0.0)])


@pytest.mark.parametrize("record", [
    pytest.param(GeoRecord("nan", float("nan"), 2.0, country_code="FR"), id="nan"),
    pytest.param(GeoRecord("range", 91.0, 2.0, country_code="FR"), id="out-of-range"),
    pytest.param(GeoRecord("none", None, 2.0, country_code="FR"), id="missing"),
])
def test_invalid_coordinates_are_counted_not_pooled(record):
    for sampler, offer in ((s := DiversitySampler(capacity=3), s.add),
                           (t := DiversitySampler(capacity=3), lambda r: t.add_many([r])[0])):
        assert offer(record) is False
        assert sampler.stats["dropped_invalid"] == 1 and len(sampler) == 0


def test_unlabelled_records_get_place_labels():
    sampler = DiversitySampler(capacity=3)
    sampler.add_many([GeoRecord("paris", 48.8566, 2.3522), GeoRecord("sydney", -33.8688, 151.2093)])
    assert [(r.country_code, r.city) for r in sampler.items()] == [("FR", "Paris"),
                                                                   ("AU", "Sydney")]


@pytest.mark.parametrize("kwargs, match", [
    pytest.param({"capacity": 0}, "capacity", id="zero-capacity"),
    pytest.param({"capacity": 5, "alpha": -1.0}, "alpha", id="negative-alpha"),
    pytest.param({"capacity": 5, "hotspot_radius_km": -1.0}, "radius", id="negative-radius"),
    pytest.param({"capacity": 5, "region_key": "planet"}, "region_key", id="unknown-region-key"),
])
def test_bad_parameters_fail_clearly(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DiversitySampler(**kwargs)


def test_save_and_restore_is_exact(tmp_path, yfcc26k):
    first, second = yfcc26k[:6000], yfcc26k[6000:12000]
    stream = [r if i % 3 else GeoRecord(r.id, r.lat, r.lon, b"\x89PNG-bytes-" + r.id.encode(),
                                        r.continent, r.country, r.country_code, r.region, r.city,
                                        {"source": f"row {i}"})
              for i, r in enumerate(first)]
    original = DiversitySampler(capacity=500, seed=3, hotspots=[(51.5, -0.12)])
    original.consume(stream)
    original.report_rewards(original.items()[0].id, [0.99, 0.98])
    path = original.save(tmp_path / "sampler.json")
    json.loads(path.read_text())  # plain JSON on disk

    resumed = DiversitySampler(capacity=10, seed=99).load(path)  # saved parameters win
    assert resumed.state_dict() == original.state_dict()
    assert resumed.items() == original.items()
    for sampler in (original, resumed):
        sampler.consume(second)
        sampler.report_rewards(sampler.items()[-1].id, [1.0, 1.0])
    assert resumed.state_dict() == original.state_dict()
    assert resumed.items() == original.items()
    assert resumed.stats == original.stats


def test_image_store_keeps_checkpoints_small_and_resumes_the_same_images(tmp_path):
    blobs = {str(i): bytes([i % 251]) * 50_000 for i in range(40)}  # 50 kB "JPEGs" from a stream
    stream = [GeoRecord(key, 10.0 + 0.5 * i, 20.0, blob, country_code=f"C{i % 7}")
              for i, (key, blob) in enumerate(blobs.items())]
    sampler = DiversitySampler(capacity=16, seed=5)
    sampler.consume(stream)
    store = tmp_path / "sampler_images"
    first = sampler.save(tmp_path / "checkpoint-1" / "state.json", image_store=store)
    second = sampler.save(tmp_path / "checkpoint-2" / "state.json", image_store=store)

    assert len(list(store.iterdir())) == len(sampler) == 16, "one stored copy per pooled image"
    assert first.stat().st_size < 20_000, "the state no longer embeds the images"
    inline = sampler.save(tmp_path / "inline.json")
    assert inline.stat().st_size > 16 * 50_000, "without a store the images stay embedded"

    for path in (first, second):
        resumed = DiversitySampler(capacity=1, seed=0).load(path)
        assert resumed.state_dict() == sampler.state_dict(), "exactly the saved sampler, images included"
        assert [r.image for r in resumed.items()] == [blobs[r.id] for r in sampler.items()]
