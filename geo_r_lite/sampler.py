"""Streaming diversity sampler: a fixed-size, seeded selection from a stream of geotagged records.

Geo-R keeps GRPO learning by choosing data the model has not yet solved and regions it has seen
little of. Here that is one pass over a stream, memory O(capacity + regions + hotspots):

- **Weighted reservoir** (``geo_r_lite.reservoir``, Efraimidis & Spirakis A-ExpJ): each eligible
  record gets weight ``w = (1 + n) ** -alpha`` where ``n`` is how many eligible records of its
  region (``region_key``, default the ISO country code) came before it; the pool is a weighted
  sample without replacement (capacity 1: record ``i`` kept with probability ``w_i / sum(w)``).
  Records dropped as invalid or near a hotspot do not count towards their region.
- **Hotspots**: a record within ``hotspot_radius_km`` (inclusive, by ``geo.haversine_km``) of a
  hotspot is dropped, and pool records near a new hotspot leave the pool. Hotspots come from a file
  (e.g. the correctly located samples of a base-model evaluation) and from training feedback:
  ``report_rewards`` turns a sample whose G rewards all exceed ``saturation_threshold`` into one.
  The test is vectorised: a k-d tree on unit vectors proposes candidates, haversine decides.
- **Resume**: ``state_dict``/``load_state_dict`` (and ``save``/``load`` as JSON) restore the pool,
  counts, hotspots and the RNG exactly, so a resumed run selects what an uninterrupted one would.

Records are ``GeoRecord`` (duck-typed objects with ``id``, ``lat``, ``lon`` and the region
attribute work too, but only ``GeoRecord`` pools can be saved); one without place labels is
labelled from the gazetteer on arrival. Feed streams through ``consume``/``add_many``: batches keep
the hotspot test vectorised, while ``add`` pays one k-d tree query per record once hotspots exist.
``items()`` returns the pool in stream order, deterministic for a given seed and stream: the
training layer builds its map-style dataset (one row per record) from it and refreshes it between
steps.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geo_r_lite.config import SamplerConfig
from geo_r_lite.gazetteer import invalid_mask
from geo_r_lite.geo import lookup_many, valid_latlon
from geo_r_lite.hotspots import HotspotIndex, read_latlons
from geo_r_lite.records import GeoRecord
from geo_r_lite.reservoir import WeightedReservoir

logger = logging.getLogger(__name__)

STATE_VERSION = 1
REGION_KEYS = ("continent", "country", "country_code", "region", "city")  # GeoRecord's place labels


class DiversitySampler:
    """Weighted reservoir over a record stream with region down-weighting and hotspot removal.

    ``capacity`` >= 1 records are kept; ``alpha`` >= 0 is the region exponent (0: uniform);
    ``hotspot_radius_km`` >= 0; ``saturation_threshold``: rewards all above it make a hotspot;
    ``region_key`` one of ``REGION_KEYS``; ``hotspots``: initial (lat, lon) pairs in degrees.
    """

    def __init__(self, capacity: int, alpha: float = 1.0, hotspot_radius_km: float = 200.0,
                 saturation_threshold: float = 0.9, region_key: str = "country_code",
                 seed: int = 0, hotspots: Iterable[tuple[float, float]] | None = None):
        if not (math.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"alpha must be finite and >= 0, got {alpha!r}")
        if not (math.isfinite(hotspot_radius_km) and hotspot_radius_km >= 0):
            raise ValueError(f"hotspot_radius_km must be finite and >= 0, got {hotspot_radius_km}")
        if region_key not in REGION_KEYS:
            raise ValueError(f"region_key must be one of {REGION_KEYS}, got {region_key!r}")
        self._pool = WeightedReservoir(capacity, seed)
        self.capacity = capacity
        self.alpha = float(alpha)
        self.hotspot_radius_km = float(hotspot_radius_km)
        self.saturation_threshold = float(saturation_threshold)
        self.region_key = region_key
        self.seed = seed
        self._counts: dict[str | None, int] = {}  # eligible records seen per region
        self.seen = 0
        self._stats: Counter[str] = Counter()
        self._hotspots = HotspotIndex(self.hotspot_radius_km)
        if hotspots is not None:
            self.add_hotspots(hotspots)

    @classmethod
    def from_config(cls, cfg: SamplerConfig) -> DiversitySampler:
        """A sampler from a ``SamplerConfig``, with its ``hotspot_file`` loaded when set."""
        sampler = cls(cfg.capacity, cfg.alpha, cfg.hotspot_radius_km, cfg.saturation_threshold,
                      cfg.region_key, cfg.seed)
        if cfg.hotspot_file:
            sampler.load_hotspots(cfg.hotspot_file)
        return sampler

    # ------------------------------------------------------------------ the stream

    def __len__(self) -> int:
        return len(self._pool)

    def items(self) -> list[Any]:
        """The pool, in stream (arrival) order: deterministic for a given seed and stream."""
        return self._pool.items()

    def add(self, record: Any) -> bool:
        """Offer one record; True if it is in the pool now."""
        region = getattr(record, self.region_key)
        if len(self._hotspots) or region is None:
            return self.add_many([record])[0]
        # Fast path without numpy: a labelled record and no hotspot to test against.
        self.seen += 1
        if not valid_latlon(record.lat, record.lon):
            self._stats["dropped_invalid"] += 1
            return False
        return self._offer(record, region)

    def add_many(self, records: Iterable[Any]) -> list[bool]:
        """Offer records in stream order; one flag per record: in the pool right after its turn.

        Equivalent to calling ``add`` on each, but the coordinate checks, hotspot test and any
        gazetteer lookups run vectorised over the batch.
        """
        records = list(records)
        self.seen += len(records)
        if not records:
            return []
        lats, lons = _coordinates(records)
        bad = invalid_mask(lats, lons)
        near = self._hotspots.near(np.where(bad, 0.0, lats), np.where(bad, 0.0, lons)) & ~bad
        records = self._labelled(records, bad | near)
        key = self.region_key
        flags = []
        for record, is_bad, is_near in zip(records, bad.tolist(), near.tolist()):
            if is_bad:
                self._stats["dropped_invalid"] += 1
                flags.append(False)
            elif is_near:
                self._stats["dropped_hotspot"] += 1
                flags.append(False)
            else:
                flags.append(self._offer(record, getattr(record, key)))
        return flags

    def consume(self, records: Iterable[Any], batch_size: int = 4096) -> int:
        """Feed a whole stream (e.g. ``sources.iter_records``) in batches; returns records read."""
        batch, total = [], 0
        for record in records:
            batch.append(record)
            if len(batch) >= batch_size:
                self.add_many(batch)
                total, batch = total + len(batch), []
        self.add_many(batch)
        return total + len(batch)

    def _labelled(self, records: list[Any], skip: np.ndarray) -> list[Any]:
        """Records lacking place labels get them from the gazetteer (one batched lookup)."""
        todo = [i for i, record in enumerate(records) if not skip[i]
                and getattr(record, self.region_key) is None
                and all(getattr(record, f, None) is None for f in REGION_KEYS)]
        if not todo:
            return records
        places = lookup_many([records[i].lat for i in todo], [records[i].lon for i in todo])
        records = list(records)
        for i, place in zip(todo, places):
            records[i] = dataclasses.replace(records[i], **dataclasses.asdict(place))
        return records

    def _offer(self, record: Any, region: str | None) -> bool:
        count = self._counts.get(region, 0)
        self._counts[region] = count + 1
        return self._pool.offer(record, (1.0 + count) ** -self.alpha)

    # ------------------------------------------------------------------ hotspots

    def add_hotspots(self, latlons: Iterable[tuple[float, float]]) -> int:
        """Add (lat, lon) hotspots in degrees; pool records within the radius leave. Returns
        how many pool records were removed. Raises ValueError naming an invalid point."""
        points = [tuple(p) for p in latlons]
        for index, point in enumerate(points):
            if len(point) != 2 or not valid_latlon(*point):
                raise ValueError(f"hotspot {index}: invalid (lat, lon) {point!r}")
        if not points:
            return 0
        self._hotspots.extend(points)
        return self._purge_pool()

    def _purge_pool(self) -> int:
        pooled = [record for _, _, record in self._pool.heap]
        if not pooled:
            return 0
        lats, lons = _coordinates(pooled)
        removed = self._pool.remove(self._hotspots.near(lats, lons).tolist())
        self._stats["removed_near_hotspot"] += removed
        return removed

    def load_hotspots(self, path: str | os.PathLike) -> int:
        """Add hotspots from a CSV (a header naming lat/lon columns, e.g. ``id,lat,lon``) or a
        JSONL file of ``{"lat": ..., "lon": ...}``; returns how many were read. Raises
        ``DataError`` naming a line whose coordinates are invalid."""
        points = read_latlons(path)
        self.add_hotspots(points)
        logger.info("sampler: %d hotspots from %s (%d total)", len(points), path,
                    len(self._hotspots))
        return len(points)

    def report_rewards(self, record_id: str, rewards: Sequence[float],
                       latlon: tuple[float, float] | None = None) -> bool:
        """Feedback from one GRPO group: if every reward exceeds ``saturation_threshold`` the
        sample is solved, becomes a hotspot and leaves the pool with its neighbours within the
        radius. Returns True when that happened. ``latlon`` locates a record no longer pooled."""
        rewards = [float(r) for r in rewards]
        if not rewards or not all(r > self.saturation_threshold for r in rewards):
            return False
        record = next((r for _, _, r in self._pool.heap if r.id == record_id), None)
        point = (record.lat, record.lon) if record is not None else latlon
        if point is None:
            logger.warning("sampler: saturated record %s is not in the pool and has no latlon; "
                           "no hotspot added", record_id)
            return False
        self._stats["saturated"] += 1
        self.add_hotspots([point])
        return True

    # ------------------------------------------------------------------ reporting and resume

    @property
    def stats(self) -> dict[str, int]:
        """Counters: seen, offered (eligible), pooled, inserted, evicted, dropped_invalid,
        dropped_hotspot, removed_near_hotspot, saturated, hotspots, regions."""
        return {
            "seen": self.seen,
            "offered": self._pool.arrivals,
            "pooled": len(self._pool),
            "inserted": self._pool.inserted,
            "evicted": self._pool.evicted,
            **{name: self._stats[name] for name in ("dropped_invalid", "dropped_hotspot",
                                                    "removed_near_hotspot", "saturated")},
            "hotspots": len(self._hotspots),
            "regions": len(self._counts),
        }

    def _params(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "alpha": self.alpha,
                "hotspot_radius_km": self.hotspot_radius_km,
                "saturation_threshold": self.saturation_threshold,
                "region_key": self.region_key, "seed": self.seed}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly, as JSON-safe plain values."""
        return {
            "version": STATE_VERSION,
            "params": self._params(),
            "pool": self._pool.state_dict(_record_to_state),
            # Pairs, not a dict: a region may be None, which JSON keys cannot be.
            "counts": [[region, count] for region, count in self._counts.items()],
            "seen": self.seen,
            "stats": dict(self._stats),
            "hotspots": [self._hotspots.lats, self._hotspots.lons],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()`` output. The saved parameters win over the constructor's
        (a resumed selection must not change rules midway); differences are logged."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"sampler state version {state.get('version')!r}, "
                             f"expected {STATE_VERSION}")
        params = state["params"]
        changed = {k: (v, params[k]) for k, v in self._params().items() if params[k] != v}
        if changed:
            logger.warning("sampler: resuming with the saved parameters; differing (current, "
                           "saved): %s", changed)
        # Re-initialise with the saved parameters, then overwrite the running state.
        self.__init__(**params)
        self._pool.load_state_dict(state["pool"], GeoRecord.from_dict)
        self._counts = {region: count for region, count in state["counts"]}
        self.seen = state["seen"]
        self._stats = Counter(state["stats"])
        self._hotspots.extend(zip(*state["hotspots"]))

    def save(self, path: str | os.PathLike, image_store: str | os.PathLike | None = None) -> Path:
        """Write ``state_dict()`` as JSON (atomically: a crash never leaves half a file).

        ``image_store``: a folder where the raw image bytes of pooled records (streamed sources
        have no file to point at) are written once, named by content hash, and referenced from
        the JSON by a path relative to it. Checkpoints then share one copy of the pool's images
        instead of each embedding them all (hundreds of MB at capacity 2000).
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = self.state_dict()
        if image_store is not None:
            _store_images([record for _, _, record in state["pool"]["heap"]], Path(image_store), path.parent)
        return _write_json(path, state)

    def load(self, path: str | os.PathLike) -> DiversitySampler:
        """Restore from a ``save``d file; images kept in an image store are read back as bytes,
        so the restored sampler equals the saved one exactly."""
        path = Path(path)
        state = json.loads(path.read_text(encoding="utf-8"))
        _load_stored_images([record for _, _, record in state["pool"]["heap"]], path.parent)
        self.load_state_dict(state)
        return self


def save_records(records: Sequence[GeoRecord], path: str | os.PathLike, image_store: str | os.PathLike) -> Path:
    """Write ``records`` as JSON (atomically), their raw image bytes kept once in ``image_store``."""
    path = Path(path)
    states = [_record_to_state(r) for r in records]
    _store_images(states, Path(image_store), path.parent)
    return _write_json(path, states)


def load_records(path: str | os.PathLike) -> list[GeoRecord]:
    """Inverse of ``save_records``."""
    path = Path(path)
    states = json.loads(path.read_text(encoding="utf-8"))
    _load_stored_images(states, path.parent)
    return [GeoRecord.from_dict(state) for state in states]


def _write_json(path: Path, value: Any) -> Path:
    """``value`` as JSON in ``path``, atomically: a crash never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, path)
    return path


def _coordinates(records: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Latitudes and longitudes as float arrays; unusable values become NaN."""
    n = len(records)
    try:
        return (np.fromiter((r.lat for r in records), np.float64, n),
                np.fromiter((r.lon for r in records), np.float64, n))
    except (TypeError, ValueError):
        return (np.array([_as_float(r.lat) for r in records], dtype=np.float64),
                np.array([_as_float(r.lon) for r in records], dtype=np.float64))


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _store_images(records: list[dict[str, Any]], store: Path, state_dir: Path) -> None:
    """Move the raw image bytes of record states into ``store`` (once per content), in place."""
    store.mkdir(parents=True, exist_ok=True)
    for record in records:
        image = record.get("image") or {}
        if "bytes" not in image:
            continue
        data = base64.b64decode(image["bytes"])
        target = store / f"{hashlib.sha1(data).hexdigest()}.bin"
        if not target.is_file():
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        record["image"] = {"stored": os.path.relpath(target, state_dir)}


def _load_stored_images(records: list[dict[str, Any]], state_dir: Path) -> None:
    """Inverse of ``_store_images``: read stored image bytes back into the record states, in place."""
    for record in records:
        stored = (record.get("image") or {}).get("stored")
        if stored is not None:
            record["image"] = {"bytes": base64.b64encode((state_dir / stored).read_bytes()).decode("ascii")}


def _record_to_state(record: Any) -> dict[str, Any]:
    if not isinstance(record, GeoRecord):
        raise TypeError(f"only GeoRecord pools can be saved, found {type(record).__name__}")
    return record.to_dict()

