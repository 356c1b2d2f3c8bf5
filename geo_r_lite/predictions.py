"""Prediction files of an evaluation: append-safe JSONL, shard naming and merging, scoring.

One line per benchmark record, written by ``geo_r_lite.evaluation`` a batch at a time::

    {"id": "...", "lat": 48.85, "lon": 2.35,            # truth, degrees, latitude first
     "continent": ..., "country": ..., "country_code": ..., "region": ..., "city": ...,
     "pred_lat": 48.1, "pred_lon": 2.0,                  # null when the output did not parse
     "pred": {"continent": ..., "country": ..., "region": ..., "city": ...},
     "format_ok": false, "error": "...", "think": "...", "text": "<raw completion>",
     "distance_km": 80.3, "samples": [[lat, lon] | null, ...]}  # samples: self-consistency only

A record whose image could not be decoded is a line ``{"id": ..., "skipped": "<reason>"}``: it is
done (a rerun does not retry it) and counted, never scored. A sharded run writes one file per
shard (``shard_file_name``); ``read_predictions`` merges any number of files by id.

Scoring uses ``geo_r_lite.metrics.compute_metrics`` on rows sorted by id, so the figures do not
depend on the order the rows were written in (resumed or sharded runs score like one run).
Pure Python + numpy: no torch here, so ``eval.py --score`` needs no model stack.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geo_r_lite.gazetteer import Place
from geo_r_lite.geo import haversine_km
from geo_r_lite.metrics import compute_metrics

logger = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.jsonl"
PLACE_LEVELS = ("continent", "country", "region", "city")
TRUE_LABELS = ("continent", "country", "country_code", "region", "city")


# --------------------------------------------------------------------------- shards


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n; ValueError with the expected form otherwise."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/n (e.g. 0/2), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text!r}: need 0 <= i < n")
    return index, count


def shard_from_env(environ: dict[str, str] | None = None) -> tuple[int, int]:
    """(RANK, WORLD_SIZE) of a torchrun / accelerate launch; (0, 1) when run plainly."""
    environ = os.environ if environ is None else environ
    try:
        return parse_shard(f"{environ.get('RANK', '0')}/{environ.get('WORLD_SIZE', '1')}")
    except ValueError:
        logger.warning("ignoring unusable RANK/WORLD_SIZE in the environment; running unsharded")
        return 0, 1


def shard_file_name(index: int, count: int) -> str:
    """File name of one shard's predictions (``predictions.jsonl`` when unsharded)."""
    return PREDICTIONS_FILE if count == 1 else f"predictions.shard-{index}-of-{count}.jsonl"


# --------------------------------------------------------------------------- reading / writing


def repair_tail(path: Path) -> None:
    """Cut a last line left unfinished by a killed writer, so appending stays line-aligned."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as handle:
        data = handle.read()
        if data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        logger.warning("%s: dropping an unfinished last line (%d bytes) from an interrupted run",
                       path, len(data) - keep)
        handle.truncate(keep)


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of one predictions file; an unfinished last line is ignored, other bad lines raise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"predictions file not found: {path}")
    rows = []
    lines = path.read_text(encoding="utf-8").split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):  # the unfinished tail of an interrupted write
                logger.warning("%s: ignoring an unfinished last line", path)
                continue
            raise ValueError(f"{path} line {number}: not JSON ({err.msg})") from None
        if not isinstance(row, dict) or "id" not in row:
            raise ValueError(f"{path} line {number}: a prediction must be an object with an id")
        rows.append(row)
    return rows


def read_predictions(paths: Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """Rows of several files (shards, or a resumed run) merged by id and sorted by id.

    An id met twice keeps its last row; a conflicting duplicate is logged.
    """
    merged: dict[str, dict[str, Any]] = {}
    for path in paths:
        for row in read_rows(path):
            key = str(row["id"])
            old = merged.get(key)
            if old is not None and (old.get("pred_lat"), old.get("pred_lon")) != (
                    row.get("pred_lat"), row.get("pred_lon")):
                logger.warning("id %s appears twice with different predictions; keeping %s", key, path)
            merged[key] = row
    return [merged[key] for key in sorted(merged)]


def append_rows(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Append rows as JSON lines, then flush and fsync: a finished batch survives a crash."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        handle.flush()
        os.fsync(handle.fileno())


# --------------------------------------------------------------------------- rows


def prediction_row(record, text: str, parsed, samples: list | None = None) -> dict[str, Any]:
    """The JSON row of one record (a ``GeoRecord``) and its parsed completion."""
    row: dict[str, Any] = {"id": str(record.id), "lat": record.lat, "lon": record.lon}
    row.update({label: getattr(record, label) for label in TRUE_LABELS})
    if isinstance(record.image, (str, os.PathLike)):
        row["image"] = str(record.image)
    row["pred_lat"], row["pred_lon"] = parsed.lat, parsed.lon
    row["pred"] = {level: getattr(parsed, level) for level in PLACE_LEVELS}
    row.update(format_ok=parsed.format_ok, error=parsed.error, think=parsed.think, text=text)
    row["distance_km"] = (None if parsed.lat is None else
                          float(haversine_km(parsed.lat, parsed.lon, record.lat, record.lon)))
    if samples is not None:
        row["samples"] = samples
    return row


def medoid_index(points: Sequence[tuple[float, float] | None]) -> int | None:
    """Index of the medoid of (lat, lon) points (least total haversine km to the others).

    ``None`` entries (unparsed samples) are ignored; None when no point is given. Ties go to
    the earliest index, so greedy-equivalent inputs give a stable answer.
    """
    valid = [i for i, point in enumerate(points) if point is not None]
    if not valid:
        return None
    lats = np.array([points[i][0] for i in valid], dtype=np.float64)
    lons = np.array([points[i][1] for i in valid], dtype=np.float64)
    pairwise = haversine_km(lats[:, None], lons[:, None], lats[None, :], lons[None, :])
    return valid[int(np.argmin(pairwise.sum(axis=1)))]


def scored_rows(rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], Counter]:
    """(rows to score, counts of skipped rows by reason)."""
    skipped = Counter(row["skipped"] for row in rows if row.get("skipped"))
    return [row for row in rows if not row.get("skipped")], skipped


def score_rows(rows: Sequence[dict[str, Any]], distance: str = "haversine") -> dict[str, Any]:
    """``compute_metrics`` over prediction rows (distances by ``distance``: haversine | geodesic),
    plus ``n_skipped_images`` by reason.

    Raises ValueError when no row can be scored.
    """
    rows, skipped = scored_rows(rows)
    if not rows:
        raise ValueError("no scorable predictions (every row is missing or skipped)")
    rows = sorted(rows, key=lambda row: str(row["id"]))
    true_places = [Place(**{label: row.get(label) for label in TRUE_LABELS}) for row in rows]
    pred_places = [Place(**{level: (row.get("pred") or {}).get(level) for level in PLACE_LEVELS})
                   for row in rows]
    metrics = compute_metrics(
        [row.get("pred_lat") for row in rows], [row.get("pred_lon") for row in rows],
        [row["lat"] for row in rows], [row["lon"] for row in rows],
        pred_places=pred_places, true_places=true_places, distance_method=distance)
    metrics["format_ok_rate"] = float(np.mean([bool(row.get("format_ok")) for row in rows]))
    metrics["skipped_images"] = dict(sorted(skipped.items()))
    return metrics


def export_hotspots(rows: Sequence[dict[str, Any]], radius_km: float, path: str | os.PathLike) -> int:
    """Write ``id,lat,lon`` (true coordinates, degrees) of the rows predicted within
    ``radius_km``: the CSV ``DiversitySampler.load_hotspots`` reads. Returns the row count."""
    path = Path(path)
    hits = [row for row in scored_rows(rows)[0]
            if row.get("distance_km") is not None and row["distance_km"] <= radius_km]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "lat", "lon"])
        writer.writerows([row["id"], row["lat"], row["lon"]] for row in hits)
    logger.info("wrote %d hotspots (predicted within %g km) to %s", len(hits), radius_km, path)
    return len(hits)
