"""Turn a record's image reference into model-ready pixels, and read GPS from EXIF.

``load_image`` accepts what the sources produce (a path, encoded bytes, a PIL image, or a
Hugging Face image dict ``{"bytes": ..., "path": ...}``), applies the EXIF orientation, converts to
RGB and resizes to the pixel budget keeping the aspect ratio. A bad image raises ``ImageError``
whose ``reason`` is one of ``missing_image``, ``corrupt_image``, ``truncated_image`` (the same names
``SkipStats`` counts). ``iter_loaded`` does this over a record stream, skipping and counting bad
images, for use after sampling (decoding before sampling would hold pixels of rows never used).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import os
from collections.abc import Iterable, Iterator
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from geo_r_lite.records import GeoRecord, SkipStats

logger = logging.getLogger(__name__)

IMAGE_REASONS = ("missing_image", "corrupt_image", "truncated_image")

_GPS_IFD = 0x8825
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4


class ImageError(ValueError):
    """An image that cannot be used; ``reason`` is one of ``IMAGE_REASONS``."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def _open(ref: Any) -> Image.Image:
    """Open (lazily, not decoded) the image behind a reference."""
    if isinstance(ref, Image.Image):
        return ref
    if isinstance(ref, dict):
        # Hugging Face's undecoded Image feature: bytes when embedded, else a path.
        ref = ref.get("bytes") or ref.get("path")
    if ref is None:
        raise ImageError("missing_image", "no image in the record")
    if isinstance(ref, (bytes, bytearray, memoryview)):
        if not len(ref):
            raise ImageError("corrupt_image", "empty image bytes")
        source: Any = io.BytesIO(bytes(ref))
        name = "<bytes>"
    elif isinstance(ref, (str, os.PathLike)):
        source = name = str(ref)
        if not os.path.isfile(source):
            raise ImageError("missing_image", f"no file {source}")
    else:
        raise ImageError("corrupt_image", f"unsupported image reference {type(ref).__name__}")
    try:
        return Image.open(source)
    except UnidentifiedImageError as err:
        raise ImageError("corrupt_image", f"{name}: not a readable image") from err
    except Image.DecompressionBombError as err:
        raise ImageError("corrupt_image", f"{name}: {err}") from err
    except OSError as err:
        raise ImageError(_os_error_reason(err), f"{name}: {err}") from err


def _os_error_reason(err: OSError) -> str:
    # PIL reports a cut-off file only through the message ("image file is truncated",
    # "Truncated File Read"); every other decoder failure means the data is bad.
    return "truncated_image" if "truncated" in str(err).lower() else "corrupt_image"


def _decode(image: Image.Image) -> Image.Image:
    try:
        image.load()
        return ImageOps.exif_transpose(image)
    except Image.DecompressionBombError as err:
        raise ImageError("corrupt_image", str(err)) from err
    except (OSError, SyntaxError, ValueError) as err:
        reason = _os_error_reason(err) if isinstance(err, OSError) else "corrupt_image"
        raise ImageError(reason, str(err)) from err


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Transparent pixels over white, not black (what a viewer shows).
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def fit_size(width: int, height: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """(width, height) scaled, aspect ratio kept, so width * height lies in [min, max] pixels.

    The maximum always holds (it bounds memory); the minimum can be missed only when the range is
    narrower than one row of pixels, where no whole-pixel size fits both.
    """
    if min_pixels > max_pixels:
        raise ValueError(f"min_pixels {min_pixels} > max_pixels {max_pixels}")
    area = width * height
    if min_pixels <= area <= max_pixels:
        return width, height
    scale = math.sqrt((max_pixels if area > max_pixels else min_pixels) / area)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    # Rounding may cross a bound by a row or column; step back inside it.
    while new_w * new_h > max_pixels and max(new_w, new_h) > 1:
        if new_w >= new_h:
            new_w -= 1
        else:
            new_h -= 1
    while new_w * new_h < min_pixels:
        if new_w <= new_h and (new_w + 1) * new_h <= max_pixels:
            new_w += 1
        elif new_w * (new_h + 1) <= max_pixels:
            new_h += 1
        elif (new_w + 1) * new_h <= max_pixels:
            new_w += 1
        else:
            break
    return new_w, new_h


def load_image(ref: Any, min_pixels: int, max_pixels: int) -> Image.Image:
    """Decoded RGB image, EXIF-oriented, resized so its area lies in [min_pixels, max_pixels].

    Raises ``ImageError`` (reason ``missing_image``, ``corrupt_image`` or ``truncated_image``).
    """
    image = _to_rgb(_decode(_open(ref)))
    size = fit_size(image.width, image.height, min_pixels, max_pixels)
    if size != image.size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    return image


def _dms_to_degrees(dms: Any, ref: Any) -> float | None:
    try:
        degrees, minutes, seconds = (float(x) for x in dms)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = degrees + minutes / 60.0 + seconds / 3600.0
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "ignore")
    ref = str(ref or "").strip().upper()[:1]
    return -value if ref in ("S", "W") else value


def exif_gps(ref: Any) -> tuple[float, float] | None:
    """(lat, lon) in degrees from the image's EXIF GPS tags, or None when absent or invalid."""
    try:
        image = _open(ref)
        gps = image.getexif().get_ifd(_GPS_IFD)
    except (ImageError, OSError, SyntaxError, ValueError) as err:
        logger.debug("exif_gps: no EXIF read (%s)", err)
        return None
    if not gps or _GPS_LAT not in gps or _GPS_LON not in gps:
        return None
    lat = _dms_to_degrees(gps[_GPS_LAT], gps.get(_GPS_LAT_REF))
    lon = _dms_to_degrees(gps[_GPS_LON], gps.get(_GPS_LON_REF))
    if lat is None or lon is None or not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None
    return lat, lon


def iter_loaded(records: Iterable[GeoRecord], min_pixels: int, max_pixels: int,
                stats: SkipStats | None = None) -> Iterator[GeoRecord]:
    """Records with ``image`` replaced by the loaded PIL image; bad images skipped and counted.

    With ``stats.strict`` a bad image raises ``DataError`` naming the record.
    """
    for record in records:
        try:
            image = load_image(record.image, min_pixels, max_pixels)
        except ImageError as err:
            desc = f"record {record.id}"
            if record.meta.get("source"):
                desc += f" ({record.meta['source']})"
            if stats is None:
                logger.warning("skipping %s: %s", desc, err)
            else:
                stats.add(err.reason, desc, err.detail)
            continue
        yield dataclasses.replace(record, image=image)

