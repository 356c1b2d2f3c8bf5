"""Ground truth for the reward adapters, read from the dataset columns TRL passes as keywords.

TRL calls a reward as ``f(prompts=..., completions=..., **columns)`` where each dataset column is
a list with one entry per completion (a prompt sampled G times appears G times). The truth is
``lat``, ``lon`` (degrees) and the place labels ``continent``, ``country``, ``country_code``,
``region``, ``city``. Missing values (None, NaN, not a number) become ``None`` so the reward can
return None (TRL skips it); a wrong number of values or absent coordinate columns is a ValueError,
since it means the data pipeline is broken.
"""

from __future__ import annotations

import logging
import math

from geo_r_lite.geo import lookup_many

logger = logging.getLogger(__name__)

TRUTH_COLUMNS = ("continent", "country", "country_code", "region", "city")


def _true_coord(value) -> float | None:
    """A ground-truth coordinate as float, or None when missing (None, NaN, not a number)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _column(columns: dict, name: str, n: int, reward: str) -> list:
    values = columns[name]
    if len(values) != n:
        raise ValueError(f"{reward}: column {name!r} has {len(values)} values for {n} completions")
    return list(values)


def true_latlons(columns: dict, n: int, reward: str) -> list[tuple[float, float] | None]:
    """Per completion, the true (lat, lon) in degrees or None when missing or out of range.

    ValueError when the ``lat``/``lon`` columns are absent or not one value per completion.
    """
    if "lat" not in columns or "lon" not in columns:
        raise ValueError(f"{reward} needs dataset columns 'lat' and 'lon' (degrees); "
                         f"got {sorted(k for k in columns if not k.startswith('_'))}")
    pairs, bad = [], 0
    for lat, lon in zip(_column(columns, "lat", n, reward), _column(columns, "lon", n, reward)):
        # Plain in-range floats (NaN fails the comparison), the usual case, need no conversion.
        if (type(lat) is float and type(lon) is float
                and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            pairs.append((lat, lon))
            continue
        lat, lon = _true_coord(lat), _true_coord(lon)
        if lat is None or lon is None:
            pairs.append(None)
        elif -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0:
            pairs.append((lat, lon))
        else:
            pairs.append(None)
            bad += 1
    if bad:
        logger.warning("%s: %d of %d true coordinates out of range, reward None", reward, bad, n)
    return pairs


def true_place_fields(columns: dict, n: int, reward: str) -> list[tuple | None]:
    """Per completion, the true place labels, or None when nothing is known.

    A tuple in ``TRUTH_COLUMNS`` order, each value a non-blank string or None (unknown), read from
    the columns ``continent``, ``country``, ``country_code``, ``region``, ``city``; when the dataset
    has none of them, the gazetteer labels the true ``lat``/``lon`` (that is how the labels are
    made in the first place). Tuples are hashable, so a batch can score each distinct
    (answer, truth) pair once.
    """
    if any(name in columns for name in TRUTH_COLUMNS):
        missing = [None] * n
        labels = [[place_label(v) for v in _column(columns, name, n, reward)]
                  if name in columns else missing for name in TRUTH_COLUMNS]
        return list(zip(*labels))
    latlons = true_latlons(columns, n, reward)
    rows = [i for i, t in enumerate(latlons) if t is not None]
    fields: list[tuple | None] = [None] * n
    found = (lookup_many([latlons[i][0] for i in rows], [latlons[i][1] for i in rows])
             if rows else [])
    for i, place in zip(rows, found):
        fields[i] = tuple(place_label(getattr(place, name)) for name in TRUTH_COLUMNS)
    return fields


def place_label(value) -> str | None:
    """A place label as given when it is a non-blank string, else None (unknown)."""
    return value if isinstance(value, str) and value.strip() else None
