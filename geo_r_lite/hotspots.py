"""Hotspots for the diversity sampler: an exact, vectorised "within R km of any hotspot" test.

A hotspot is a (lat, lon) in degrees where the model is already right; records within
``radius_km`` of one (inclusive, measured by ``geo.haversine_km``, the distance every metric uses)
are not worth training on. A k-d tree on 3-D unit vectors proposes candidates within a slightly
widened chord, and haversine decides, so the test is exact at the boundary and costs
O(batch * log hotspots). ``read_latlons`` reads hotspot files (CSV with a header, or JSONL).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from geo_r_lite.columns import parse_coordinate, resolve_columns
from geo_r_lite.gazetteer import unit_vectors
from geo_r_lite.geo import EARTH_RADIUS_KM, haversine_km, valid_latlon
from geo_r_lite.records import DataError

# Candidate search radius is widened by this much so float error in the chord never hides a
# hotspot; the inclusive haversine test then decides exactly.
_CANDIDATE_SLACK = 1e-6


class HotspotIndex:
    """Hotspot coordinates with a lazily rebuilt k-d tree for the vectorised radius test."""

    def __init__(self, radius_km: float):
        self.radius_km = radius_km
        self.lats: list[float] = []
        self.lons: list[float] = []
        self._tree = None
        angle = (radius_km * (1.0 + _CANDIDATE_SLACK) + _CANDIDATE_SLACK) / EARTH_RADIUS_KM
        # Chord length of the candidate angle; past the antipode every point is a candidate.
        self._chord = 2.0 * math.sin(min(angle, math.pi) / 2.0) + 1e-12

    def __len__(self) -> int:
        return len(self.lats)

    def extend(self, points: Sequence[tuple[float, float]]) -> None:
        for lat, lon in points:
            self.lats.append(float(lat))
            self.lons.append(float(lon))
        self._tree = None

    def _built(self):
        if self._tree is None:
            from scipy.spatial import cKDTree  # scipy comes with reverse_geocode (the gazetteer)

            self._arrays = np.asarray(self.lats), np.asarray(self.lons)
            self._tree = cKDTree(unit_vectors(*self._arrays))
        return self._tree

    def near(self, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
        """Boolean mask: point within ``radius_km`` (inclusive) of some hotspot. Degrees."""
        near = np.zeros(len(lats), dtype=bool)
        if not self.lats or not len(lats):
            return near
        tree = self._built()
        hot_lats, hot_lons = self._arrays
        points = unit_vectors(lats, lons)
        chord, index = tree.query(points, k=1, distance_upper_bound=self._chord)
        candidate = np.isfinite(chord)
        if not candidate.any():
            return near
        rows = np.flatnonzero(candidate)
        nearest = index[rows]
        near[rows] = haversine_km(lats[rows], lons[rows], hot_lats[nearest],
                                  hot_lons[nearest]) <= self.radius_km
        # The chord-nearest hotspot can lose to another by float error at the boundary: look at
        # every candidate for the few rows where the nearest one failed.
        for row in rows[~near[rows]]:
            others = np.asarray(tree.query_ball_point(points[row], self._chord), dtype=np.intp)
            if others.size:
                near[row] = bool(np.any(haversine_km(lats[row], lons[row], hot_lats[others],
                                                     hot_lons[others]) <= self.radius_km))
        return near


def read_latlons(path: str | os.PathLike) -> list[tuple[float, float]]:
    """(lat, lon) pairs, degrees, from a CSV with a header or a JSONL file (suffix decides)."""
    # Column spellings are the manifest's (lat/latitude/LAT, lon/lng/longitude, ...).
    path = Path(path)
    if not path.is_file():
        raise DataError(f"hotspot file not found: {path}")
    with open(path, encoding="utf-8-sig", newline="") as handle:
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            rows = [(n, json.loads(line)) for n, line in enumerate(handle, 1) if line.strip()]
        else:
            rows = list(enumerate(csv.DictReader(handle), start=2))
    points = []
    for line, row in rows:
        columns = resolve_columns(list(row), where=f"{path.name} line {line}", need_image=False)
        lat, lon = parse_coordinate(row[columns["lat"]]), parse_coordinate(row[columns["lon"]])
        if lat is None or lon is None or not valid_latlon(lat, lon):
            raise DataError(f"{path.name} line {line}: invalid hotspot ({row[columns['lat']]!r}, "
                            f"{row[columns['lon']]!r})")
        points.append((lat, lon))
    return points
