"""Finding the id, latitude, longitude and image columns of a source, whatever their spelling.

Every source (manifest files, Hugging Face datasets, WebDataset json members, hotspot files) maps
its own column names to the four fields ``id``, ``lat``, ``lon``, ``image`` here: an explicit
``data.columns`` entry wins, otherwise the first of ``COLUMN_CANDIDATES`` present (compared
case-insensitively). Columns are found by name, never by position, so layouts with the longitude
first (YFCC100M metadata) read correctly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from geo_r_lite.records import DataError, SkipStats

FIELDS = ("id", "lat", "lon", "image")
# Spellings tried in order, compared case-insensitively. IMG_ID is both the id and the image
# file name in IM2GPS3K/MP-16 metadata; YFCC4K names its file column ``name``.
COLUMN_CANDIDATES: dict[str, tuple[str, ...]] = {
    "lat": ("lat", "latitude", "gps_lat", "gps_latitude", "lat_deg", "latitude_deg"),
    "lon": ("lon", "lng", "long", "longitude", "gps_lon", "gps_lng", "gps_long", "gps_longitude",
            "lon_deg", "longitude_deg"),
    "id": ("id", "img_id", "image_id", "photo_id", "photoid", "key", "__key__", "uuid"),
    "image": ("image", "image_path", "img_path", "filepath", "file_path", "path", "file_name",
              "filename", "file", "name", "img_id", "img", "photo", "jpg", "jpeg", "png", "webp"),
}


class ColumnError(DataError):
    """A needed column is absent (a whole manifest fails; a JSON row is skipped)."""


class RawRow(NamedTuple):
    """A source row before validation: raw coordinate values, the image reference, a row name."""

    id: str
    lat: Any
    lon: Any
    image: Any
    desc: str
    meta: Mapping[str, Any] | None = None


def resolve_columns(available: Sequence[str], overrides: Mapping[str, str] | None = None,
                    where: str = "the data", need_image: bool = True) -> dict[str, str | None]:
    """Map ``id``/``lat``/``lon``/``image`` to column names of ``available``.

    ``overrides`` (``cfg.columns``) win; other fields are auto-detected; with no image column the
    id column names the files. Raises ``ColumnError`` (a ``DataError``) naming the columns when
    ``lat``/``lon`` (or ``image`` with ``need_image``) cannot be found.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise DataError(f"data.columns: unknown key(s) {unknown}; valid keys: {list(FIELDS)}")
    by_folded = {}
    for name in available:
        by_folded.setdefault(str(name).strip().lower(), name)
    mapping: dict[str, str | None] = {}
    for field in FIELDS:
        if field in overrides:
            wanted = overrides[field]
            found = wanted if wanted in available else by_folded.get(str(wanted).strip().lower())
            if found is None:
                raise ColumnError(f"data.columns.{field}={wanted!r}: no such column in {where}; "
                                  f"columns are {list(available)}")
            mapping[field] = found
            continue
        mapping[field] = next((by_folded[c] for c in COLUMN_CANDIDATES[field] if c in by_folded),
                              None)
    if need_image and mapping["image"] is None and mapping["id"] is not None:
        # e.g. YFCC100M metadata without a file column: files are named by the photo id (the
        # extension is found on disk).
        mapping["image"] = mapping["id"]
    required = ("lat", "lon", "image") if need_image else ("lat", "lon")
    missing = [field for field in required if mapping[field] is None]
    if missing:
        tried = {field: list(COLUMN_CANDIDATES[field]) for field in missing}
        raise ColumnError(f"missing_column: no {'/'.join(missing)} column in {where} "
                          f"(tried {tried}); columns are {list(available)}; "
                          "set data.columns.<field> to name them")
    if mapping["lat"] == mapping["lon"]:
        raise DataError(f"data.columns: lat and lon both map to {mapping['lat']!r} in {where}")
    return mapping


def parse_coordinate(value: Any) -> float | None:
    """A float from a number or numeric text; None when there is nothing numeric."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def row_from_mapping(values: Mapping[str, Any], columns: Mapping[str, str | None], desc: str,
                     default_id: str, meta: Mapping[str, Any] | None = None) -> RawRow:
    """A ``RawRow`` from one row given the resolved column mapping."""
    image = values.get(columns["image"]) if columns.get("image") else None
    row_id = values.get(columns["id"]) if columns.get("id") else None
    if row_id is None or row_id == "":
        row_id = default_id
    return RawRow(str(row_id), values.get(columns["lat"]), values.get(columns["lon"]), image, desc,
                  meta)


def columns_for_keys(keys, overrides, desc: str, stats: SkipStats,
                     cache: dict[frozenset, dict[str, str | None]],
                     need_image: bool = True) -> dict[str, str | None] | None:
    """Column mapping for a row whose keys vary row to row (JSON); None (counted) if unusable."""
    keyset = frozenset(keys)
    if keyset not in cache:
        try:
            cache[keyset] = resolve_columns(sorted(keyset), overrides, where=desc,
                                            need_image=need_image)
        except ColumnError:
            cache[keyset] = None  # type: ignore[assignment]
    columns = cache[keyset]
    if columns is None:
        stats.add("missing_column", desc, f"keys {sorted(keyset)}")
    return columns
