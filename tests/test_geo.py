"""Distances: reference values, properties on random points, scalar/array agreement."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_r_lite.geo import EARTH_RADIUS_KM, LatLon, geodesic_km, haversine_km, valid_latlon

PARIS = LatLon(48.8566, 2.3522)
LONDON = LatLon(51.5074, -0.1278)

lats = st.floats(-90, 90, allow_nan=False)
lons = st.floats(-180, 180, allow_nan=False)


@pytest.mark.parametrize(
    "a, b, expected_km, tol_km",
    [
        pytest.param(PARIS, LONDON, 343.5, 0.5, id="paris-london"),
        pytest.param((0, 0), (1, 0), math.pi * EARTH_RADIUS_KM / 180, 1e-9,
                     id="one-degree-latitude"),
        pytest.param((10, 20), (10, 20), 0.0, 0.0, id="same-point-zero"),
        pytest.param((0, 0), (0, 180), math.pi * EARTH_RADIUS_KM, 1e-6, id="antipodes-equator"),
        pytest.param((90, 0), (-90, 0), math.pi * EARTH_RADIUS_KM, 1e-6, id="pole-to-pole"),
        pytest.param((90, 0), (90, 123), 0.0, 1e-6, id="north-pole-any-longitude"),
        pytest.param((0, 179.5), (0, -179.5), math.pi * EARTH_RADIUS_KM / 180, 1e-6,
                     id="across-antimeridian-is-short"),
    ],
)
def test_haversine_reference(a, b, expected_km, tol_km):
    assert haversine_km(*a, *b) == pytest.approx(expected_km, abs=tol_km)


def test_one_degree_latitude_is_about_111_km():
    assert haversine_km(45, 7, 46, 7) == pytest.approx(111.2, abs=0.1)


def test_lat_lon_swap_is_a_different_point():
    # Paris given as (lon, lat) lands in the Indian Ocean: thousands of km off, never "close".
    assert haversine_km(PARIS.lon, PARIS.lat, *PARIS) > 5000


def test_scalar_in_scalar_out_and_arrays_agree():
    rng = np.random.default_rng(0)
    a_lat, b_lat = rng.uniform(-90, 90, (2, 50))
    a_lon, b_lon = rng.uniform(-180, 180, (2, 50))
    batch = haversine_km(a_lat, a_lon, b_lat, b_lon)
    assert isinstance(haversine_km(1.0, 2.0, 3.0, 4.0), float)
    assert batch.shape == (50,)
    singles = [haversine_km(*args) for args in zip(a_lat, a_lon, b_lat, b_lon)]
    np.testing.assert_allclose(batch, singles, rtol=1e-12)


def test_broadcasts_one_point_against_many():
    many = haversine_km(PARIS.lat, PARIS.lon, [LONDON.lat, PARIS.lat], [LONDON.lon, PARIS.lon])
    np.testing.assert_allclose(many, [haversine_km(*PARIS, *LONDON), 0.0])


def test_nan_gives_nan():
    assert math.isnan(haversine_km(float("nan"), 0, 0, 0))


@settings(max_examples=200, deadline=None)
@given(lats, lons, lats, lons)
def test_symmetric_and_in_range(lat1, lon1, lat2, lon2):
    d = haversine_km(lat1, lon1, lat2, lon2)
    assert 0.0 <= d <= math.pi * EARTH_RADIUS_KM + 1e-6
    assert d == pytest.approx(haversine_km(lat2, lon2, lat1, lon1), abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(lats, lons, lats, lons, lats, lons)
def test_triangle_inequality(lat1, lon1, lat2, lon2, lat3, lon3):
    direct = haversine_km(lat1, lon1, lat3, lon3)
    via = haversine_km(lat1, lon1, lat2, lon2) + haversine_km(lat2, lon2, lat3, lon3)
    assert direct <= via + 1e-6


@pytest.mark.parametrize(
    "a, b, expected_km, tol_km",
    [
        # WGS-84 reference from Karney's algorithm (geographiclib), to a metre or so.
        pytest.param(PARIS, LONDON, 343.92, 0.05, id="paris-london-ellipsoid"),
        pytest.param((0, 0), (1, 0), 110.574, 0.001, id="one-degree-latitude-at-equator"),
    ],
)
def test_geodesic_reference(a, b, expected_km, tol_km):
    assert geodesic_km(*a, *b) == pytest.approx(expected_km, abs=tol_km)


def test_geodesic_arrays_and_invalid_points():
    out = geodesic_km([PARIS.lat, 95.0], [PARIS.lon, 0.0], LONDON.lat, LONDON.lon)
    assert out.shape == (2,)
    assert out[0] == pytest.approx(haversine_km(*PARIS, *LONDON), rel=0.005)
    assert math.isnan(out[1])


@pytest.mark.parametrize(
    "lat, lon, ok",
    [
        pytest.param(0, 0, True, id="origin"),
        pytest.param(90, 180, True, id="inclusive-corner"),
        pytest.param(-90, -180, True, id="inclusive-other-corner"),
        pytest.param(90.0001, 0, False, id="latitude-past-pole"),
        pytest.param(0, 180.5, False, id="longitude-past-antimeridian"),
        pytest.param(float("nan"), 0, False, id="nan"),
        pytest.param(float("inf"), 0, False, id="infinite"),
        pytest.param(None, 0, False, id="none"),
        pytest.param("north", 0, False, id="text"),
        pytest.param(True, 0, False, id="bool-is-not-a-coordinate"),
        pytest.param("12.5", "-3", True, id="numeric-strings"),
    ],
)
def test_valid_latlon(lat, lon, ok):
    assert valid_latlon(lat, lon) is ok
