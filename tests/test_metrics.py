"""Benchmark metrics against hand-computed cases: thresholds, misses, hierarchy, per continent."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_r_lite.gazetteer import Place, lookup
from geo_r_lite.geo import haversine_km
from geo_r_lite.metrics import (
    THRESHOLDS_KM,
    WORST_KM,
    compute_metrics,
    distance_metrics,
    distances_km,
    geoscore,
)

PARIS, LONDON = (48.8566, 2.3522), (51.5074, -0.1278)
TOKYO, OCEAN = (35.6762, 139.6503), (0.0, -140.0)


def _score(d):
    return 5000 * math.exp(-d / 1492.7)


def test_hand_computed_mix_with_a_miss():
    m = distance_metrics([0.5, 25.0, 100.0, 1000.0, float("nan")])
    assert (m["n"], m["n_parsed"]) == (5, 4)
    accs = [m[f"acc@{t}km"] for t in THRESHOLDS_KM]
    assert accs == pytest.approx([1 / 5, 2 / 5, 3 / 5, 3 / 5, 4 / 5])
    assert m["median_km"] == pytest.approx(100.0)
    assert m["mean_km"] == pytest.approx((0.5 + 25 + 100 + 1000 + WORST_KM) / 5)
    assert m["median_km_parsed"] == pytest.approx((25 + 100) / 2)
    assert m["mean_km_parsed"] == pytest.approx((0.5 + 25 + 100 + 1000) / 4)
    assert m["geoscore"] == pytest.approx(sum(map(_score, [0.5, 25, 100, 1000])) / 5)
    assert m["parse_failure_rate"] == pytest.approx(0.2)


@pytest.mark.parametrize(
    "distance, threshold, hit",
    [
        pytest.param(1.0, 1, True, id="exactly-1km-counts"),
        pytest.param(1.0 + 1e-9, 1, False, id="just-past-1km"),
        pytest.param(25.0, 25, True, id="exactly-25km-counts"),
        pytest.param(2500.0, 2500, True, id="exactly-2500km-counts"),
        pytest.param(2500.001, 2500, False, id="just-past-2500km"),
        pytest.param(0.0, 1, True, id="perfect"),
        pytest.param(float("nan"), 2500, False, id="missing-misses-even-the-widest"),
    ],
)
def test_thresholds_are_inclusive(distance, threshold, hit):
    assert distance_metrics([distance])[f"acc@{threshold}km"] == float(hit)


def test_all_missing():
    m = distance_metrics([float("nan")] * 3)
    assert m["parse_failure_rate"] == 1.0 and m["geoscore"] == 0.0
    assert m["median_km"] == pytest.approx(WORST_KM)
    assert math.isnan(m["median_km_parsed"]) and m["n_parsed"] == 0


def test_end_to_end_real_distances_and_none():
    m = compute_metrics([LONDON[0], None, PARIS[0]], [LONDON[1], None, PARIS[1]],
                        [PARIS[0], PARIS[0], PARIS[0]], [PARIS[1], PARIS[1], PARIS[1]])
    london_paris = haversine_km(*LONDON, *PARIS)
    assert m["n"] == 3 and m["parse_failure_rate"] == pytest.approx(1 / 3)
    assert m["acc@1km"] == pytest.approx(1 / 3)
    assert m["acc@200km"] == pytest.approx(1 / 3)  # London is ~343 km from Paris
    assert m["acc@750km"] == pytest.approx(2 / 3)
    assert m["median_km"] == pytest.approx(london_paris)
    assert m["geoscore"] == pytest.approx((_score(london_paris) + _score(0)) / 3)


def test_lat_lon_swap_is_a_far_miss():
    m = compute_metrics([PARIS[1]], [PARIS[0]], [PARIS[0]], [PARIS[1]])
    assert m["acc@2500km"] == 0.0 and m["median_km"] > 5000


def test_out_of_range_prediction_counts_as_missing(caplog):
    d = distances_km([95.0, PARIS[0]], [0.0, PARIS[1]], [PARIS[0]] * 2, [PARIS[1]] * 2)
    assert math.isnan(d[0]) and d[1] == 0.0
    assert "out of range" in caplog.text


@pytest.mark.parametrize(
    "true_lats, true_lons",
    [
        pytest.param([0.0, 91.0], [0.0, 0.0], id="latitude-out-of-range"),
        pytest.param([0.0, 0.0], [0.0, None], id="missing-truth"),
        pytest.param([0.0, float("nan")], [0.0, 0.0], id="nan-truth"),
    ],
)
def test_invalid_truth_raises_naming_the_index(true_lats, true_lons):
    with pytest.raises(ValueError, match="index 1"):
        compute_metrics([0.0, 0.0], [0.0, 0.0], true_lats, true_lons)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(([0.0], [0.0], [0.0, 1.0], [0.0, 1.0]), id="length-mismatch"),
        pytest.param(([], [], [], []), id="empty"),
        pytest.param((["north"], [0.0], [0.0], [0.0]), id="text-coordinate"),
    ],
)
def test_bad_shapes_raise(args):
    with pytest.raises(ValueError):
        compute_metrics(*args)


def test_hierarchy_accuracies_and_unknown_truth():
    truth = [lookup(*PARIS), lookup(*TOKYO), lookup(*OCEAN)]
    preds = [
        # Any object with the four attributes works (parsing.ParsedAnswer is one).
        SimpleNamespace(continent="Europe", country="France", region="Ile de France",
                        city="Paris"),
        Place(continent="Asia", country="China", region="Tokyo", city=None),
        None,  # failed parse: a miss wherever the truth is known
    ]
    lats, lons = zip(PARIS, TOKYO, OCEAN)
    m = compute_metrics(lats, lons, lats, lons, pred_places=preds, true_places=truth)
    # The ocean point has no known label at any level, so each level is over 2 samples.
    assert [m[f"n_{level}"] for level in ("continent", "country", "region", "city")] == [2] * 4
    assert m["acc_continent"] == 1.0
    assert m["acc_country"] == 0.5
    assert m["acc_region"] == 1.0
    assert m["acc_city"] == 0.5


def test_true_places_computed_when_not_given():
    lats, lons = zip(PARIS, LONDON)
    m = compute_metrics(lats, lons, lats, lons,
                        pred_places=[Place(country="France"), Place(country="UK")])
    assert m["acc_country"] == 1.0


def test_per_continent_breakdown_by_true_continent():
    lats, lons = zip(PARIS, LONDON, TOKYO, OCEAN)
    pred_lats, pred_lons = [PARIS[0], None, TOKYO[0], OCEAN[0]], [PARIS[1], None, TOKYO[1], 0.0]
    per = compute_metrics(pred_lats, pred_lons, lats, lons)["per_continent"]
    assert sorted(per) == ["Asia", "Europe", "Unknown"]
    assert (per["Europe"]["n"], per["Europe"]["acc@1km"]) == (2, 0.5)
    assert per["Europe"]["parse_failure_rate"] == 0.5
    assert per["Asia"]["acc@1km"] == 1.0
    assert per["Unknown"]["acc@2500km"] == 0.0


def test_geoscore_formula():
    np.testing.assert_allclose(geoscore([0.0, 1492.7]), [5000.0, 5000.0 / math.e])


lats = st.floats(-90, 90, allow_nan=False)
lons = st.floats(-180, 180, allow_nan=False)
points = st.lists(st.tuples(lats, lons, lats, lons, st.booleans()), min_size=1, max_size=20)


@settings(max_examples=100, deadline=None)
@given(points)
def test_properties_on_random_inputs(rows):
    pred_lat = [r[0] if r[4] else None for r in rows]
    pred_lon = [r[1] if r[4] else None for r in rows]
    d = distances_km(pred_lat, pred_lon, [r[2] for r in rows], [r[3] for r in rows])
    m = distance_metrics(d)
    accs = [m[f"acc@{t}km"] for t in THRESHOLDS_KM]
    assert all(0.0 <= a <= 1.0 for a in accs) and accs == sorted(accs)
    assert 0.0 <= m["geoscore"] <= 5000.0
    assert m["parse_failure_rate"] == pytest.approx(1 - sum(r[4] for r in rows) / len(rows))
    assert m["median_km"] <= WORST_KM + 1e-6


def test_geodesic_distances_are_the_wgs84_ones_and_the_report_says_so(tmp_path):
    from geo_r_lite.config import config_from_dict
    from geo_r_lite.geo import geodesic_km, haversine_km
    from geo_r_lite.metrics import distances_km
    from geo_r_lite.report import write_outputs

    pred, true = ([48.8566, None, 40.0], [2.3522, None, -3.7]), ([51.5074, 10.0, 40.4168], [-0.1278, 10.0, -3.7038])
    geo = distances_km(*pred, *true, method="geodesic")
    hav = distances_km(*pred, *true)
    assert np.isnan(geo[1]) and np.isnan(hav[1])
    assert geo[0] == pytest.approx(float(geodesic_km(48.8566, 2.3522, 51.5074, -0.1278)))
    assert hav[0] == pytest.approx(float(haversine_km(48.8566, 2.3522, 51.5074, -0.1278)))
    assert abs(geo[0] - hav[0]) > 0.1  # the ellipsoid differs from the sphere by ~0.1-0.5 %
    with pytest.raises(ValueError, match="haversine"):
        distances_km(*pred, *true, method="vincenty")
    # 0.2248 degrees along the equator: 24.997 km on the sphere, 25.025 km on the ellipsoid.
    rows = [{"id": "a", "lat": 0.0, "lon": 0.0, "pred_lat": 0.0, "pred_lon": 0.2248, "text": "t", "format_ok": True,
             "distance_km": 24.997}]
    within = {}
    for method in ("haversine", "geodesic"):
        cfg = config_from_dict({"eval": {"distance": method, "num_examples": 0}})
        metrics = write_outputs(tmp_path / method, rows, cfg=cfg)
        assert metrics["distance"] == method
        assert ("WGS-84 geodesic" in (tmp_path / method / "report.md").read_text()) == (method == "geodesic")
        within[method] = metrics["acc@25km"]
    assert within == {"haversine": 1.0, "geodesic": 0.0}
