"""Data sources: every kind of input becomes one stream of labelled, validated ``GeoRecord``.

``iter_records(cfg.data)`` dispatches on ``cfg.source``:

- ``manifest``: a CSV/TSV/JSONL/Parquet file plus an image folder (see ``geo_r_lite.manifest``);
  reads IM2GPS3K's and YFCC4K's published metadata as is.
- ``hf``: a Hugging Face dataset (hub id or local folder), streamed; string coordinates are cast.
- ``webdataset``: tar shards of image + json (see ``geo_r_lite.webdataset``).
- ``synthetic``: the built-in colour-coded demo set (see ``geo_r_lite.synthetic``).

Columns are found by name among common spellings, ``cfg.columns`` overriding any of ``id``,
``lat``, ``lon``, ``image`` (see ``geo_r_lite.columns``). Rows with bad coordinates (not a number,
NaN, out of range, or exactly (0, 0) unless ``allow_null_island``) or a missing image file are
skipped and counted by reason in ``SkipStats``; ``cfg.strict`` makes the first one an error naming
the row, and a source whose every row was skipped is an error too. Place labels come from the
offline gazetteer, looked up in batches. ``datasets`` is imported only by the ``hf`` and URL
paths, so this module stays light.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from geo_r_lite.columns import RawRow, parse_coordinate, resolve_columns, row_from_mapping
from geo_r_lite.config import DataConfig
from geo_r_lite.geo import lookup_many, valid_latlon
from geo_r_lite.manifest import manifest_rows
from geo_r_lite.records import DataError, GeoRecord, SkipStats
from geo_r_lite.synthetic import synthetic_rows
from geo_r_lite.webdataset import undecoded_images, webdataset_rows

logger = logging.getLogger(__name__)

SOURCES = ("manifest", "hf", "webdataset", "synthetic")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
# Rows looked up in the gazetteer at once: large enough to amortise the call, small enough that
# a stream of images held as bytes stays small in memory.
LABEL_CHUNK = 512


# --------------------------------------------------------------------------- hf


def open_streaming(path: str, split: str):
    """An iterable Hugging Face dataset, streamed, with image columns left undecoded.

    ``path`` is a hub id or a local folder of parquet/arrow files; a folder written by
    ``Dataset.save_to_disk`` is read with ``load_from_disk``. Errors become ``DataError``.
    """
    import datasets  # only the hf and URL paths pay for importing datasets

    try:
        local = Path(path).expanduser()
        if (local / "state.json").is_file() or (local / "dataset_dict.json").is_file():
            dataset = datasets.load_from_disk(str(local))
            if isinstance(dataset, datasets.DatasetDict):
                dataset = dataset[split]
            dataset = dataset.to_iterable_dataset()
        else:
            dataset = datasets.load_dataset(path, split=split, streaming=True)
    except (FileNotFoundError, ValueError, KeyError, ConnectionError, OSError) as err:
        raise DataError(f"could not open hf dataset {path!r} split {split!r}: {err}") from err
    return undecoded_images(dataset)


def _hf_rows(cfg: DataConfig, stats: SkipStats) -> Iterator[RawRow]:
    if not cfg.path:
        raise DataError("data.path: the hf source needs a dataset id or a local dataset folder")
    first, rows = _peek(iter(open_streaming(cfg.path, cfg.split)))
    if first is None:
        raise DataError(f"hf dataset {cfg.path!r} split {cfg.split!r} is empty")
    columns = resolve_columns(list(first), cfg.columns, where=f"hf dataset {cfg.path!r}")
    logger.info("hf %s: columns %s", cfg.path, columns)
    for index, values in enumerate(rows):
        desc = f"{cfg.path}[{cfg.split}] row {index}"
        yield row_from_mapping(values, columns, desc, default_id=str(index), meta={"source": desc})


def _peek(iterator: Iterator[Any]) -> tuple[Any, Iterator[Any]]:
    first = next(iterator, None)
    return first, (itertools.chain([first], iterator) if first is not None else iterator)


# --------------------------------------------------------------------------- the pipeline


def raw_rows(cfg: DataConfig, stats: SkipStats) -> Iterator[RawRow]:
    """Rows of ``cfg.source`` before validation and labelling."""
    if cfg.source == "manifest":
        return manifest_rows(cfg, stats)
    if cfg.source == "hf":
        return _hf_rows(cfg, stats)
    if cfg.source == "webdataset":
        return webdataset_rows(cfg, stats)
    if cfg.source == "synthetic":
        return synthetic_rows(cfg)
    raise DataError(f"data.source: unknown source {cfg.source!r}; choose one of {list(SOURCES)}")


def _existing_image(image: Any) -> Any:
    """The reference if its file exists (or it is not a path); a suffixless name may gain one.

    A Hugging Face image dict becomes its bytes (or its path when it has no bytes).
    """
    if isinstance(image, dict):
        image = image.get("bytes") or image.get("path")
    if not isinstance(image, str):
        return image
    if os.path.isfile(image):
        return image
    if not Path(image).suffix:
        # YFCC-style names are sometimes the bare photo id; the file carries the extension.
        for suffix in _IMAGE_SUFFIXES:
            if os.path.isfile(image + suffix):
                return image + suffix
    return None


def _validated(rows: Iterator[RawRow], cfg: DataConfig, stats: SkipStats) -> Iterator[RawRow]:
    """Rows with float coordinates and a present image; the others counted by reason."""
    for row in rows:
        lat, lon = parse_coordinate(row.lat), parse_coordinate(row.lon)
        if lat is None or lon is None or not valid_latlon(lat, lon):
            stats.add("bad_coordinates", f"{row.desc}, id={row.id}",
                      f"lat={row.lat!r}, lon={row.lon!r}")
            continue
        if lat == 0.0 and lon == 0.0 and not cfg.allow_null_island:
            stats.add("null_island", f"{row.desc}, id={row.id}",
                      "exactly (0, 0), usually a missing value; data.allow_null_island keeps it")
            continue
        image = _existing_image(row.image)
        if image is None or (isinstance(image, (bytes, bytearray)) and not image):
            stats.add("missing_image", f"{row.desc}, id={row.id}", f"image={row.image!r}")
            continue
        yield row._replace(lat=lat, lon=lon, image=image)


def _unique(rows: Iterator[RawRow], stats: SkipStats) -> Iterator[RawRow]:
    """Rows whose id was not seen before; a repeated id is counted as ``duplicate_id``.

    Ids key the sampler's feedback, the predictions file (a resumed evaluation skips ids already
    written) and the hotspot export, so a second record under one id would be silently merged.
    Memory: one 8-byte hash per id (about 60 bytes each in a Python set; 100 MB at 1.5M ids).
    """
    seen: set[int] = set()
    for row in rows:
        key = hash(row.id)
        if key in seen:
            stats.add("duplicate_id", f"{row.desc}, id={row.id}", "an earlier row has this id")
            continue
        seen.add(key)
        yield row


def _labelled(chunk: list[RawRow]) -> Iterator[GeoRecord]:
    places = lookup_many([row.lat for row in chunk], [row.lon for row in chunk])
    for row, place in zip(chunk, places):
        yield GeoRecord(row.id, row.lat, row.lon, row.image, place.continent, place.country,
                        place.country_code, place.region, place.city, row.meta or {})


def iter_records(cfg: DataConfig, stats: SkipStats | None = None) -> Iterator[GeoRecord]:
    """Validated, labelled records of the configured source, at most ``cfg.max_samples``.

    Skips are counted in ``stats`` (a new ``SkipStats`` when None); with ``cfg.strict`` the first
    skip raises ``DataError`` naming the row. A summary is logged when the stream ends.
    """
    if stats is None:
        stats = SkipStats(strict=cfg.strict)
    stats.strict = stats.strict or cfg.strict
    limit = cfg.max_samples
    if limit is not None and limit < 0:
        raise DataError(f"data.max_samples must be >= 0 or null, got {limit}")
    produced, skipped_before = 0, stats.total
    rows = _unique(_validated(raw_rows(cfg, stats), cfg, stats), stats)
    try:
        while limit is None or produced < limit:
            # Read no further than the limit needs, so max_samples also bounds the reading.
            size = LABEL_CHUNK if limit is None else min(LABEL_CHUNK, limit - produced)
            chunk = [row for _, row in zip(range(size), rows)]
            if not chunk:
                break
            for record in _labelled(chunk):
                produced += 1
                yield record
            if len(chunk) < size:
                break
    finally:
        stats.log_summary(logger, seen=produced + stats.total - skipped_before)
    if produced == 0 and stats.total > skipped_before:
        # Every row skipped is a setup mistake (wrong image_dir, swapped columns), not data noise.
        raise DataError(f"no usable record in data source {cfg.source!r} ({cfg.path}): all "
                        f"{stats.total - skipped_before} rows skipped; by reason "
                        f"{dict(stats.counts)}, e.g. {next(iter(stats.examples.values()))[0]}")
