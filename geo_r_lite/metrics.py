"""Benchmark metrics for geolocation: accuracy within distance thresholds, errors, GeoScore.

Every figure is over all ``n`` samples; nothing is dropped. Rules:

- Distance is ``geo.haversine_km`` (sphere of mean radius, degrees, latitude first).
- ``acc@Xkm`` is the fraction of samples with distance <= X km (inclusive), X in ``THRESHOLDS_KM``.
- A missing prediction (None or NaN, or a coordinate out of range, which is logged) is a miss at
  every threshold, scores GeoScore 0, and counts as the worst possible error, pi * R (about
  20,015 km), in ``median_km`` and ``mean_km``; ``median_km_parsed``/``mean_km_parsed`` are the
  same over parsed predictions only (NaN when there are none), with ``n_parsed`` their count.
- ``geoscore`` is OSV-5M's ``5000 * exp(-d / 1492.7)`` averaged over samples, in [0, 5000].
- ``parse_failure_rate`` = missing predictions / n.
- Hierarchy (when ``pred_places`` is given): ``acc_continent``, ``acc_country``, ``acc_region``,
  ``acc_city`` use ``places.match_*`` against the true places (``gazetteer.lookup_many`` of the
  true coordinates unless ``true_places`` is given). A level's accuracy is over the samples whose
  true label at that level is known (``n_<level>``); a missing predicted place is a miss.
- ``per_continent``: the distance metrics again per TRUE continent (``"Unknown"`` for points with
  none, e.g. open ocean): ``{continent: {n, acc@1km, ..., median_km, ...}}``.

Invalid true coordinates raise ValueError naming the first bad index: a benchmark with a broken
label must not produce a number.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from geo_r_lite import places as place_names
from geo_r_lite.gazetteer import invalid_mask, lookup_many
from geo_r_lite.geo import EARTH_RADIUS_KM, geodesic_km, haversine_km

logger = logging.getLogger(__name__)

THRESHOLDS_KM = (1, 25, 200, 750, 2500)
GEOSCORE_MAX = 5000.0
GEOSCORE_SCALE_KM = 1492.7
WORST_KM = math.pi * EARTH_RADIUS_KM
LEVELS = ("continent", "country", "region", "city")
UNKNOWN_CONTINENT = "Unknown"


def geoscore(distance_km):
    """OSV-5M GeoScore ``5000 * exp(-d / 1492.7)`` for distances in km; in [0, 5000]."""
    return GEOSCORE_MAX * np.exp(-np.asarray(distance_km, dtype=np.float64) / GEOSCORE_SCALE_KM)


def _as_floats(values, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)  # None becomes NaN
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numbers or None: {error}") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


DISTANCES = ("haversine", "geodesic")


def distances_km(pred_lats, pred_lons, true_lats, true_lons, method: str = "haversine") -> np.ndarray:
    """km per sample; NaN where the prediction is missing or out of range.

    ``method``: ``haversine`` (sphere of ``EARTH_RADIUS_KM``, our default and the rewards') or
    ``geodesic`` (WGS-84 ellipsoid, as GeoCLIP and G3 report; slower, ~10k pairs/s).

    Raises ValueError on length mismatch or an invalid true coordinate (naming its index).
    """
    named = {"pred_lats": pred_lats, "pred_lons": pred_lons, "true_lats": true_lats,
             "true_lons": true_lons}
    arrays = [_as_floats(values, name) for name, values in named.items()]
    if len({len(a) for a in arrays}) != 1:
        raise ValueError(f"all four inputs must have one length, got {[len(a) for a in arrays]}")
    pred_lat, pred_lon, true_lat, true_lon = arrays
    bad_truth = invalid_mask(true_lat, true_lon)
    if bad_truth.any():
        i = int(np.argmax(bad_truth))
        raise ValueError(f"invalid true coordinate at index {i}: ({true_lat[i]}, {true_lon[i]})")
    missing = invalid_mask(pred_lat, pred_lon)
    out_of_range = missing & ~(np.isnan(pred_lat) | np.isnan(pred_lon))
    if out_of_range.any():
        logger.warning("%d predictions out of range counted as missing (first at index %d)",
                       int(out_of_range.sum()), int(np.argmax(out_of_range)))
    if method not in DISTANCES:
        raise ValueError(f"distance method must be one of {DISTANCES}, got {method!r}")
    if method == "geodesic":
        distance = np.full(len(pred_lat), np.nan)
        ok = ~missing
        distance[ok] = geodesic_km(pred_lat[ok], pred_lon[ok], true_lat[ok], true_lon[ok])
        return distance
    distance = haversine_km(pred_lat, pred_lon, true_lat, true_lon)
    distance[missing] = np.nan
    return distance


def distance_metrics(distance_km) -> dict:
    """The distance figures (module docstring) of a non-empty array of km; NaN = missing."""
    distance = np.asarray(distance_km, dtype=np.float64)
    if distance.ndim != 1 or len(distance) == 0:
        raise ValueError(f"need a non-empty 1-D array of distances, got shape {distance.shape}")
    parsed = ~np.isnan(distance)
    worst = np.where(parsed, distance, WORST_KM)
    metrics: dict = {"n": len(distance), "n_parsed": int(parsed.sum())}
    for threshold in THRESHOLDS_KM:
        metrics[f"acc@{threshold}km"] = float(np.mean(parsed & (worst <= threshold)))
    metrics["median_km"] = float(np.median(worst))
    metrics["mean_km"] = float(np.mean(worst))
    metrics["median_km_parsed"] = float(np.median(distance[parsed])) if parsed.any() else math.nan
    metrics["mean_km_parsed"] = float(np.mean(distance[parsed])) if parsed.any() else math.nan
    metrics["geoscore"] = float(np.mean(np.where(parsed, geoscore(worst), 0.0)))
    metrics["parse_failure_rate"] = float(1.0 - parsed.mean())
    return metrics


def _level_match(level: str, pred, truth) -> bool:
    guess = getattr(pred, level, None) if pred is not None else None
    if level == "continent":
        return place_names.match_continent(guess, truth.continent)
    if level == "country":
        return place_names.match_country(guess, truth.country, truth.country_code)
    if level == "region":
        return place_names.match_region(guess, truth.region, truth.country_code)
    return place_names.match_city(guess, truth.city)


def hierarchy_metrics(pred_places: Sequence, true_places: Sequence) -> dict:
    """``acc_<level>`` and ``n_<level>`` for continent/country/region/city (module docstring).

    ``pred_places``: objects with ``continent``/``country``/``region``/``city`` attributes
    (``Place``, ``parsing.ParsedAnswer``) or None for a failed parse.
    """
    if len(pred_places) != len(true_places):
        raise ValueError(
            f"pred_places has {len(pred_places)} items, true_places {len(true_places)}")
    metrics: dict = {}
    for level in LEVELS:
        pairs = [(p, t) for p, t in zip(pred_places, true_places) if getattr(t, level) is not None]
        hits = sum(_level_match(level, p, t) for p, t in pairs)
        metrics[f"acc_{level}"] = hits / len(pairs) if pairs else math.nan
        metrics[f"n_{level}"] = len(pairs)
    return metrics


def compute_metrics(pred_lats, pred_lons, true_lats, true_lons, *, pred_places=None,
                    true_places=None, distance_method: str = "haversine") -> dict:
    """All benchmark figures for one run (keys and rules in the module docstring).

    Coordinates are sequences of degrees, latitude first; predictions may hold None/NaN.
    """
    distance = distances_km(pred_lats, pred_lons, true_lats, true_lons, distance_method)
    if len(distance) == 0:
        raise ValueError("compute_metrics needs at least one sample")
    if true_places is None:
        true_places = lookup_many(np.asarray(true_lats, dtype=np.float64),
                                  np.asarray(true_lons, dtype=np.float64))
    elif len(true_places) != len(distance):
        raise ValueError(f"true_places has {len(true_places)} items, expected {len(distance)}")
    metrics = distance_metrics(distance)
    metrics["distance"] = distance_method
    if pred_places is not None:
        metrics.update(hierarchy_metrics(pred_places, true_places))
    continents = np.array([p.continent or UNKNOWN_CONTINENT for p in true_places], dtype=object)
    metrics["per_continent"] = {
        name: distance_metrics(distance[continents == name])
        for name in sorted(set(continents.tolist()))
    }
    return metrics
