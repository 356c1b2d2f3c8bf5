"""The one record every data source yields, and the bookkeeping of rows that were skipped.

A ``GeoRecord`` is a geotagged photo: an id, its coordinates (degrees, latitude first), an image
reference kept undecoded where the source allows (a file path, raw encoded bytes, or a PIL image),
and the place labels reverse-geocoded offline from the coordinates. ``SkipStats`` counts rows that
were dropped, by reason, so a run can say how much of its data it lost and why; in strict mode a
skip is an error naming the row instead.

Pure Python: no torch, transformers or datasets here.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

# What a record may hold as its image: a path to a file, the encoded file bytes, or a PIL image.
ImageRef = Union[str, Path, bytes, "PIL.Image.Image", None]  # noqa: F821 (PIL imported lazily)

SKIP_REASONS = (
    "missing_image",
    "corrupt_image",
    "truncated_image",
    "bad_coordinates",
    "null_island",
    "missing_column",
    "bad_row",
    "corrupt_shard",
    "duplicate_id",
)

# How many row descriptions each reason keeps as examples (the counts stay exact).
_EXAMPLES_PER_REASON = 5


class DataError(ValueError):
    """A data problem that stops the run: a strict-mode skip, or an unusable source."""


class FrozenMeta(Mapping):
    """A read-only, picklable mapping for a record's extra source fields."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None):
        self._data = dict(data or {})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"FrozenMeta({self._data!r})"

    def __reduce__(self):
        return (FrozenMeta, (self._data,))

    def __hash__(self) -> int:
        # Defined so a record with meta can be a default/hashable value; fails only if a value is
        # itself unhashable (GeoRecord leaves meta out of its own hash).
        return hash(tuple(sorted(self._data.items())))


_EMPTY_META = FrozenMeta()


@dataclass(frozen=True, slots=True)
class GeoRecord:
    """One geotagged photo. ``lat`` in [-90, 90], ``lon`` in [-180, 180], degrees.

    ``image`` is whatever the source gives, undecoded where possible; ``geo_r_lite.images``
    turns it into pixels. Place labels are ``None`` where unknown. ``meta`` holds extra source
    fields (read-only); it and the image take part in equality but not in hashing.
    """

    id: str
    lat: float
    lon: float
    image: Any = field(default=None, hash=False, repr=False)
    continent: str | None = None
    country: str | None = None
    country_code: str | None = None
    region: str | None = None
    city: str | None = None
    meta: Mapping[str, Any] = field(default=_EMPTY_META, hash=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.meta, FrozenMeta):
            object.__setattr__(self, "meta", FrozenMeta(self.meta))

    def to_row(self) -> dict[str, Any]:
        """Plain columns for a HF/TRL dataset row (no image): id, lat, lon and the place labels."""
        return {
            "id": self.id,
            "lat": self.lat,
            "lon": self.lon,
            "continent": self.continent,
            "country": self.country,
            "country_code": self.country_code,
            "region": self.region,
            "city": self.city,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field; the image is encoded so ``from_dict`` restores it."""
        row = self.to_row()
        row["image"] = _encode_image_ref(self.image)
        row["meta"] = dict(self.meta)
        return row

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GeoRecord:
        """Inverse of ``to_dict``."""
        values = dict(data)
        values["image"] = _decode_image_ref(values.get("image"))
        values["meta"] = FrozenMeta(values.get("meta") or {})
        return cls(**values)


def _encode_image_ref(image: Any) -> dict[str, Any] | None:
    if image is None:
        return None
    if isinstance(image, (str, Path)):
        return {"path": str(image)}
    if isinstance(image, (bytes, bytearray, memoryview)):
        return {"bytes": base64.b64encode(bytes(image)).decode("ascii")}
    if hasattr(image, "save") and hasattr(image, "mode"):
        # A decoded PIL image: PNG keeps its pixels and mode losslessly.
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return {"png": base64.b64encode(buffer.getvalue()).decode("ascii")}
    raise DataError(f"cannot serialise an image reference of type {type(image).__name__}")


def _decode_image_ref(encoded: Mapping[str, str] | None) -> Any:
    if encoded is None:
        return None
    if "path" in encoded:
        return encoded["path"]
    if "bytes" in encoded:
        return base64.b64decode(encoded["bytes"])
    if "png" in encoded:
        from PIL import Image

        image = Image.open(io.BytesIO(base64.b64decode(encoded["png"])))
        image.load()
        return image
    raise DataError(f"unknown image encoding with keys {sorted(encoded)}")


class SkipStats:
    """Counts of skipped rows by reason, with a few example row descriptions per reason.

    ``strict=True`` makes ``add`` raise ``DataError`` naming the row instead of counting it.
    """

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}
        self.shards: dict[str, int] = {}  # sharded sources: rows read from each shard, in reading order

    def add(self, reason: str, row_desc: str, detail: str | None = None) -> None:
        """Record one skipped row; ``row_desc`` names it (e.g. "data.csv line 12, id=abc")."""
        message = f"{row_desc}: {reason}" + (f" ({detail})" if detail else "")
        if self.strict:
            raise DataError(f"{message} [data.strict is true]")
        self.counts[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < _EXAMPLES_PER_REASON:
            examples.append(message)

    @property
    def total(self) -> int:
        """Number of rows skipped, all reasons together."""
        return sum(self.counts.values())

    def __getitem__(self, reason: str) -> int:
        return self.counts[reason]

    def as_dict(self) -> dict[str, Any]:
        """``{"total": n, "by_reason": {...}, "examples": {...}}`` (+ ``"shards"``: rows read per shard)."""
        summary = {
            "total": self.total,
            "by_reason": dict(sorted(self.counts.items())),
            "examples": {reason: list(rows) for reason, rows in sorted(self.examples.items())},
        }
        if self.shards:
            summary["shards"] = dict(self.shards)
        return summary

    def log_summary(self, logger: logging.Logger, seen: int | None = None) -> None:
        """One line per reason at WARNING (INFO when nothing was skipped)."""
        if not self.total:
            logger.info("data: no rows skipped%s", f" (of {seen})" if seen is not None else "")
            return
        of = f" of {seen}" if seen is not None else ""
        logger.warning("data: skipped %d rows%s", self.total, of)
        for reason, count in sorted(self.counts.items()):
            logger.warning("  %-16s %6d  e.g. %s", reason, count, self.examples[reason][0])

    def save(self, path: str | Path) -> Path:
        """Write ``as_dict()`` as JSON (the run folder keeps it next to the config)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")
        return path
