"""Distances on the Earth and the public face of the offline gazetteer.

All coordinates are degrees, latitude first. ``haversine_km`` is the distance every reward and
metric in this project uses (a sphere of radius ``EARTH_RADIUS_KM``); ``geodesic_km`` is the WGS-84
ellipsoid distance (geopy), offered for comparison with GeoCLIP/G3, which report it. The two differ
by at most about 0.5 %.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from geo_r_lite.gazetteer import Place, lookup, lookup_many

__all__ = [
    "EARTH_RADIUS_KM",
    "LatLon",
    "Place",
    "geodesic_km",
    "haversine_km",
    "lookup",
    "lookup_many",
    "valid_latlon",
]

# IUGG mean Earth radius R1 = (2a + b) / 3 of WGS-84, in km.
EARTH_RADIUS_KM = 6371.0088


class LatLon(NamedTuple):
    """A point in degrees: latitude in [-90, 90] first, then longitude in [-180, 180]."""

    lat: float
    lon: float


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance in km between points given in degrees (latitude first).

    Accepts scalars or numpy arrays (broadcast together); returns a float for scalar input,
    else an array. Range [0, pi * EARTH_RADIUS_KM]; NaN input gives NaN.
    """
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(x, dtype=np.float64))
                              for x in (lat1, lon1, lat2, lon2))
    half = np.sin((lat2 - lat1) / 2.0) ** 2 + (
        np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2.0) ** 2
    )
    # Rounding can push ``half`` a hair past 1 for antipodes; clip keeps arcsin defined.
    distance = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(half, 0.0, 1.0)))
    return float(distance) if np.ndim(distance) == 0 else distance


def geodesic_km(lat1, lon1, lat2, lon2):
    """WGS-84 ellipsoid (geopy, Karney) distance in km, degrees, latitude first.

    Scalars or broadcastable arrays like ``haversine_km``; loops in Python, so it is slow
    (~10k pairs/s): use it for reporting, not in the reward hot path.
    """
    from geopy.distance import geodesic  # imported here: only this optional path needs geopy

    arrays = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64)
                                   for x in (lat1, lon1, lat2, lon2)))
    out = np.full(arrays[0].shape, np.nan)
    flat = [a.ravel() for a in arrays]
    for i, (a, b, c, d) in enumerate(zip(*flat)):
        # Invalid points give NaN (like haversine_km) instead of geopy's ValueError.
        if valid_latlon(a, b) and valid_latlon(c, d):
            out.flat[i] = geodesic((a, b), (c, d)).km
    return float(out) if out.ndim == 0 else out


def valid_latlon(lat, lon) -> bool:
    """True when both are finite real numbers, lat in [-90, 90] and lon in [-180, 180]."""
    if isinstance(lat, bool) or isinstance(lon, bool):
        return False
    try:
        lat, lon = float(lat), float(lon)
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(lat) and np.isfinite(lon) and -90.0 <= lat <= 90.0
                and -180.0 <= lon <= 180.0)
