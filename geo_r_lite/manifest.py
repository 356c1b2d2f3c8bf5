"""The manifest source: a CSV/TSV/JSONL/Parquet file (optionally .gz) plus a folder of images.

Reads the published IM2GPS3K metadata (``IMG_ID, AUTHOR, LAT, LON, ...``), the YFCC4K file in the
YFCC100M metadata layout (``name`` is the image file; ``lon`` comes before ``lat``), MP-16-Pro's
``IMG_ID, LAT, LON, ...`` and any file whose columns ``geo_r_lite.columns`` can find. Image file
names are joined to ``data.image_dir`` (default: the manifest's folder). A CSV row with the wrong
number of fields or a JSONL line that is not an object is skipped as ``bad_row``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from geo_r_lite.columns import RawRow, columns_for_keys, resolve_columns, row_from_mapping
from geo_r_lite.config import DataConfig
from geo_r_lite.records import DataError, SkipStats

logger = logging.getLogger(__name__)


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _base_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


_DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}


def _csv_rows(path: Path, cfg: DataConfig, stats: SkipStats) -> Iterator[RawRow]:
    with _open_text(path) as handle:
        delimiter = _DELIMITERS.get(_base_format(path))
        if delimiter is None:
            # .txt says nothing about the separator: let the header line decide.
            try:
                delimiter = csv.Sniffer().sniff(handle.readline(), delimiters=",\t;|").delimiter
            except csv.Error:
                delimiter = ","
            handle.seek(0)
        reader = csv.DictReader(handle, delimiter=delimiter)
        if not reader.fieldnames:
            raise DataError(f"{path}: empty manifest (no header row)")
        columns = resolve_columns(reader.fieldnames, cfg.columns, where=str(path))
        logger.info("manifest %s: columns %s", path.name, columns)
        width = len(reader.fieldnames)
        for index, values in enumerate(reader):
            desc = f"{path.name} line {reader.line_num}"
            # DictReader files surplus fields under the key None and pads short rows with None.
            if None in values or any(v is None for v in values.values()):
                stats.add("bad_row", desc, f"not {width} fields like the header")
                continue
            yield row_from_mapping(values, columns, desc, default_id=str(index),
                                   meta={"source": desc})


def _jsonl_rows(path: Path, cfg: DataConfig, stats: SkipStats) -> Iterator[RawRow]:
    cache: dict[frozenset, dict[str, str | None]] = {}
    with _open_text(path) as handle:
        for line_num, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            desc = f"{path.name} line {line_num}"
            try:
                values = json.loads(line)
            except json.JSONDecodeError as err:
                stats.add("bad_row", desc, f"invalid JSON: {err.msg}")
                continue
            if not isinstance(values, dict):
                stats.add("bad_row", desc, "a JSON line must be an object")
                continue
            columns = columns_for_keys(values.keys(), cfg.columns, desc, stats, cache)
            if columns is not None:
                yield row_from_mapping(values, columns, desc, default_id=str(line_num - 1),
                                       meta={"source": desc})


def _parquet_rows(path: Path, cfg: DataConfig, stats: SkipStats) -> Iterator[RawRow]:
    import pyarrow.parquet as pq  # only parquet manifests need pyarrow

    file = pq.ParquetFile(path)
    columns = resolve_columns(file.schema_arrow.names, cfg.columns, where=str(path))
    wanted = sorted({c for c in columns.values() if c is not None})
    index = 0
    for batch in file.iter_batches(batch_size=1024, columns=wanted):
        for values in batch.to_pylist():
            desc = f"{path.name} row {index}"
            yield row_from_mapping(values, columns, desc, default_id=str(index),
                                   meta={"source": desc})
            index += 1


_MANIFEST_READERS = {".csv": _csv_rows, ".tsv": _csv_rows, ".tab": _csv_rows, ".txt": _csv_rows,
                     ".jsonl": _jsonl_rows, ".ndjson": _jsonl_rows, ".parquet": _parquet_rows}


def manifest_rows(cfg: DataConfig, stats: SkipStats) -> Iterator[RawRow]:
    """Rows of the manifest ``cfg.path`` with image names joined to ``cfg.image_dir``."""
    if not cfg.path:
        raise DataError("data.path: the manifest source needs a file (CSV/TSV/JSONL/Parquet)")
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise DataError(f"data.path: manifest file not found: {path}")
    reader = _MANIFEST_READERS.get(_base_format(path))
    if reader is None:
        raise DataError(f"data.path: unsupported manifest type {path.name!r}; "
                        f"use one of {sorted(_MANIFEST_READERS)} (optionally .gz)")
    image_dir = Path(cfg.image_dir).expanduser() if cfg.image_dir else path.parent
    if cfg.image_dir and not image_dir.is_dir():
        raise DataError(f"data.image_dir: not a folder: {image_dir}")
    for row in reader(path, cfg, stats):
        yield row._replace(image=_image_in_dir(row.image, image_dir))


def _image_in_dir(image: Any, image_dir: Path) -> Any:
    """Join a relative file name to the image folder; other references pass through."""
    if isinstance(image, dict):
        image = image.get("bytes") or image.get("path")
    if isinstance(image, str) and image.strip():
        candidate = Path(image.strip()).expanduser()
        return str(candidate if candidate.is_absolute() else image_dir / candidate)
    return image
