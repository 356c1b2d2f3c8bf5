"""Offline gazetteer: famous places, the antimeridian, poles, ocean, bad input, real coordinates.

tests/data/real_coords_sample.csv: 150 rows drawn without replacement from each of
../shared/data/im2gps3k_places365.csv and yfcc26k_coords.csv (numpy default_rng(20260101),
kept in file order), columns source, LAT, LON.
"""

import csv
import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest

from geo_r_lite import gazetteer
from geo_r_lite.geo import Place, haversine_km, lookup, lookup_many
from geo_r_lite.places import CONTINENTS

FIXTURE = Path(__file__).parent / "data" / "real_coords_sample.csv"


@pytest.mark.parametrize(
    "lat, lon, continent, code, city",
    [
        pytest.param(48.8566, 2.3522, "Europe", "FR", "Paris", id="paris"),
        pytest.param(30.0444, 31.2357, "Africa", "EG", "Cairo", id="cairo"),
        pytest.param(-1.2921, 36.8219, "Africa", "KE", "Nairobi", id="nairobi"),
        pytest.param(35.6762, 139.6503, "Asia", "JP", "Tokyo", id="tokyo-district-merged"),
        pytest.param(40.7128, -74.0060, "North America", "US", "New York City", id="new-york"),
        pytest.param(-22.9068, -43.1729, "South America", "BR", "Rio de Janeiro", id="rio"),
        pytest.param(-33.8688, 151.2093, "Oceania", "AU", "Sydney", id="sydney-district-merged"),
        pytest.param(55.7558, 37.6173, "Europe", "RU", "Moscow", id="moscow-european-russia"),
        pytest.param(43.1155, 131.8855, "Asia", "RU", "Vladivostok", id="vladivostok-asian-russia"),
        pytest.param(-18.1416, 178.4419, "Oceania", "FJ", "Suva", id="fiji-east-of-180"),
        pytest.param(-17.2, -178.95, "Oceania", "FJ", None, id="fiji-lau-west-of-180"),
        pytest.param(-21.1394, -175.2049, "Oceania", "TO", None, id="tonga"),
        pytest.param(-13.8333, -171.7500, "Oceania", "WS", "Apia", id="samoa"),
        pytest.param(64.7337, 177.5089, "Asia", "RU", "Anadyr", id="chukotka-east-of-180"),
        pytest.param(66.1600, -169.8000, "Asia", "RU", None, id="chukotka-west-of-180"),
        pytest.param(51.8800, -176.6580, "North America", "US", "Adak", id="aleutians-west-of-180"),
        pytest.param(52.845, 173.176, "North America", "US", None, id="aleutians-attu-east-of-180"),
        pytest.param(63.779, -171.741, "North America", "US", None, id="st-lawrence-not-chukotka"),
        pytest.param(1.87, -157.4, "Oceania", "KI", None, id="kiribati-line-islands"),
        pytest.param(1.45, 173.0, "Oceania", "KI", None, id="kiribati-gilbert-islands"),
        pytest.param(78.2233, 15.6469, "Europe", "SJ", "Longyearbyen", id="svalbard-high-north"),
        pytest.param(82.4, -62.3, "North America", "CA", "Alert", id="ellesmere-far-north"),
        pytest.param(-77.85, 166.67, "Antarctica", "AQ", None, id="mcmurdo"),
        pytest.param(-90.0, 0.0, "Antarctica", "AQ", None, id="south-pole"),
    ],
)
def test_famous_places(lat, lon, continent, code, city):
    place = lookup(lat, lon)
    assert (place.continent, place.country_code) == (continent, code)
    if city is not None:
        assert place.city == city


@pytest.mark.parametrize(
    "lat, lon",
    [
        pytest.param(0.0, -140.0, id="mid-pacific"),
        pytest.param(30.0, -40.0, id="mid-atlantic"),
        pytest.param(-45.0, 90.0, id="south-indian-ocean"),
        pytest.param(88.0, 0.0, id="arctic-ice"),
    ],
)
def test_open_ocean_is_unknown(lat, lon):
    assert lookup(lat, lon) == gazetteer.UNKNOWN == Place(None, None, None, None, None)


def test_sea_near_a_coast_gets_country_only():
    # 400 km west of Ireland: farther than LOCAL_MAX_KM, nearer than COUNTRY_MAX_KM.
    place = lookup(54.889, -16.084)
    assert (place.country_code, place.region, place.city) == ("IE", None, None)


def test_matches_brute_force_nearest_on_the_sphere():
    # Raw-degree nearest neighbour fails across +-180 and near the poles; we must not.
    table = gazetteer.load()
    rng = np.random.default_rng(1)
    # 40 anywhere (10 of them polar), 20 within 5 degrees of the antimeridian on either side.
    lats = np.concatenate([rng.uniform(-59, 85, 30), rng.uniform(60, 85, 10),
                           rng.uniform(-20, 70, 20)])
    near_180 = rng.choice([-1, 1], 20) * rng.uniform(175, 180, 20)
    lons = np.concatenate([rng.uniform(-180, 180, 40), near_180])
    found = table.nearest(lats, lons)
    for i, (lat, lon) in enumerate(zip(lats, lons)):
        brute = haversine_km(lat, lon, table.lats, table.lons)
        assert found.distance_km[i] == pytest.approx(brute.min(), abs=1e-6)


def test_batch_equals_single_lookups():
    rng = np.random.default_rng(2)
    lats, lons = rng.uniform(-70, 80, 40), rng.uniform(-180, 180, 40)
    assert lookup_many(lats, lons) == [lookup(a, b) for a, b in zip(lats, lons)]


def test_places_are_immutable():
    place = lookup(48.8566, 2.3522)
    with pytest.raises(dataclasses.FrozenInstanceError):
        place.city = "Lyon"


@pytest.mark.parametrize(
    "lats, lons",
    [
        pytest.param([10.0, 95.0], [0.0, 0.0], id="latitude-out-of-range"),
        pytest.param([10.0, 0.0], [0.0, 181.0], id="longitude-out-of-range"),
        pytest.param([10.0, float("nan")], [0.0, 0.0], id="nan"),
    ],
)
def test_invalid_input_raises_naming_the_index(lats, lons):
    with pytest.raises(ValueError, match="index 1"):
        lookup_many(lats, lons)


def test_invalid_input_can_be_counted_as_unknown(caplog):
    places = lookup_many([48.8566, float("nan")], [2.3522, 0.0], on_invalid="unknown")
    assert places[0].country_code == "FR" and places[1] == gazetteer.UNKNOWN
    assert "1 of 2" in caplog.text


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="one length"):
        lookup_many([1.0, 2.0], [3.0])


def test_empty_batch():
    assert lookup_many([], []) == []


def test_concurrent_first_load_builds_one_table(monkeypatch):
    monkeypatch.setattr(gazetteer, "_GAZETTEER", None)
    loaded = []
    threads = [threading.Thread(target=lambda: loaded.append(gazetteer.load())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loaded) == 4 and all(table is loaded[0] for table in loaded)


def test_every_real_benchmark_point_gets_a_country():
    with FIXTURE.open() as handle:
        rows = list(csv.DictReader(handle))
    places = lookup_many([float(r["LAT"]) for r in rows], [float(r["LON"]) for r in rows])
    assert len(rows) == 300
    assert [p for p in places if p.country is None] == []
    assert {p.continent for p in places} <= set(CONTINENTS)
