"""Turn a record's image reference into model-ready pixels, and read GPS from EXIF.

``load_image`` accepts what the sources produce (a path, encoded bytes, a PIL image, or a
Hugging Face image dict ``{"bytes": ..., "path": ...}``), applies the EXIF orientation, converts to
RGB and resizes to the pixel budget keeping the aspect ratio, to sides the model's processor will not
resize again (``fit_size``). A bad image raises ``ImageError``
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


# Qwen2-VL and Qwen2.5-VL see an image as 14 px patches merged 2 x 2: sides must be multiples of 28.
PIXEL_STEP = 28
# Qwen's processors refuse images more elongated than this.
MAX_ASPECT = 200


def fit_size(width: int, height: int, min_pixels: int, max_pixels: int,
             step: int = PIXEL_STEP) -> tuple[int, int]:
    """(width, height), both multiples of ``step``, area in [min_pixels, max_pixels], aspect kept.

    The same rule as the Qwen-VL processors' ``smart_resize`` (round to the step, then floor under
    the maximum or ceil over the minimum), so a processor with this budget (or a wider one, such
    as vLLM's defaults) leaves the image as it is and counts the same image tokens as training did.
    The maximum always holds; the minimum is missed only when no multiple of ``step`` fits both
    bounds. Shapes more elongated than ``MAX_ASPECT`` are cut to it (the processors refuse them).
    """
    if min_pixels > max_pixels:
        raise ValueError(f"min_pixels {min_pixels} > max_pixels {max_pixels}")
    if max_pixels < step * step:
        raise ValueError(f"max_pixels {max_pixels} is below one {step} x {step} patch")
    width, height = max(1, width), max(1, height)
    w_bar = max(step, round(width / step) * step)
    h_bar = max(step, round(height / step) * step)
    if w_bar * h_bar > max_pixels:
        beta = math.sqrt(width * height / max_pixels)
        w_bar = max(step, math.floor(width / beta / step) * step)
        h_bar = max(step, math.floor(height / beta / step) * step)
    elif w_bar * h_bar < min_pixels:
        beta = math.sqrt(min_pixels / (width * height))
        w_bar = math.ceil(width * beta / step) * step
        h_bar = math.ceil(height * beta / step) * step
    def fits(w: int, h: int) -> bool:
        return w * h <= max_pixels and max(w, h) <= MAX_ASPECT * min(w, h)

    # Elongated shapes: one side stuck at one step can leave the other too long for the maximum
    # or the aspect limit; shorten the long side, one step at a time.
    while not fits(w_bar, h_bar):
        if w_bar >= h_bar:
            w_bar -= step
        else:
            h_bar -= step
    # Flooring both sides can drop below the minimum where one more step still fits.
    while w_bar * h_bar < min_pixels:
        if w_bar <= h_bar and fits(w_bar + step, h_bar):
            w_bar += step
        elif fits(w_bar, h_bar + step):
            h_bar += step
        elif fits(w_bar + step, h_bar):
            w_bar += step
        else:
            break
    return w_bar, h_bar


def load_image(ref: Any, min_pixels: int, max_pixels: int, step: int = PIXEL_STEP) -> Image.Image:
    """Decoded RGB image, EXIF-oriented, resized by ``fit_size``: sides multiples of ``step`` (the
    model's patch x merge size, ``geo_r_lite.model.pixel_step``), area in [min_pixels, max_pixels].

    Raises ``ImageError`` (reason ``missing_image``, ``corrupt_image`` or ``truncated_image``).
    """
    image = _to_rgb(_decode(_open(ref)))
    size = fit_size(image.width, image.height, min_pixels, max_pixels, step)
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
                stats: SkipStats | None = None, step: int = PIXEL_STEP) -> Iterator[GeoRecord]:
    """Records with ``image`` replaced by the loaded PIL image; bad images skipped and counted.

    With ``stats.strict`` a bad image raises ``DataError`` naming the record.
    """
    for record in records:
        try:
            image = load_image(record.image, min_pixels, max_pixels, step)
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

