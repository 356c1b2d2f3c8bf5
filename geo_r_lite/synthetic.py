"""The built-in synthetic demo set: colour-coded images of a few real places.

Each of the ``PLACES`` (one city per inhabited continent) has its own solid colour and stripe
direction, so the image -> place mapping is learnable by a small model (the smoke config and the toy
learning check rely on that). Records are deterministic from ``(cfg.seed, cfg.split)``: the same
config always yields the same ids, coordinates and image bytes, and the train and test splits
differ. Coordinates are jittered by up to ``cfg.synthetic_jitter_deg`` (default ``JITTER_DEG``) around
the city so that distances vary;
images are small PNG files kept as bytes (no disk needed).
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from typing import NamedTuple

from PIL import Image, ImageDraw

from geo_r_lite.config import DataConfig
from geo_r_lite.columns import RawRow


class SyntheticPlace(NamedTuple):
    """A demo place: its name, centre (degrees, latitude first), colour and stripe direction."""

    name: str
    lat: float
    lon: float
    rgb: tuple[int, int, int]
    stripes: str  # "horizontal" | "vertical" | "diagonal"


PLACES: tuple[SyntheticPlace, ...] = (
    SyntheticPlace("Paris", 48.8566, 2.3522, (200, 40, 40), "horizontal"),
    SyntheticPlace("Tokyo", 35.6762, 139.6503, (240, 240, 240), "vertical"),
    SyntheticPlace("New York", 40.7128, -74.0060, (40, 70, 200), "diagonal"),
    SyntheticPlace("Rio de Janeiro", -22.9068, -43.1729, (40, 170, 60), "horizontal"),
    SyntheticPlace("Cairo", 30.0444, 31.2357, (230, 170, 40), "vertical"),
    SyntheticPlace("Sydney", -33.8688, 151.2093, (130, 50, 170), "diagonal"),
)
JITTER_DEG = 0.05  # about 5 km: every record stays in its city
IMAGE_SIZE = (128, 96)  # width, height; load_image scales it to the model's pixel budget
_SHADE = 12  # per-record brightness shift, so images of one place are not byte-identical


def render(place: SyntheticPlace, rng: random.Random) -> bytes:
    """PNG bytes of one image of ``place`` (solid colour, darker stripes, a little variation)."""
    shift = rng.randint(-_SHADE, _SHADE)
    base = tuple(max(0, min(255, c + shift)) for c in place.rgb)
    stripe = tuple(max(0, c - 60) for c in base)
    image = Image.new("RGB", IMAGE_SIZE, base)
    draw = ImageDraw.Draw(image)
    width, height = IMAGE_SIZE
    phase, step = rng.randrange(16), 16
    for offset in range(-height - step + phase, width + height, step):
        if place.stripes == "horizontal":
            draw.rectangle([0, offset, width, offset + 4], fill=stripe)
        elif place.stripes == "vertical":
            draw.rectangle([offset, 0, offset + 4, height], fill=stripe)
        else:
            draw.line([(offset, 0), (offset + height, height)], fill=stripe, width=4)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def synthetic_rows(cfg: DataConfig) -> Iterator[RawRow]:
    """``cfg.synthetic_size`` rows, deterministic from ``cfg.seed`` and ``cfg.split``."""
    rng = random.Random(f"geo-r-lite synthetic {cfg.seed} {cfg.split}")
    for index in range(cfg.synthetic_size):
        place = PLACES[rng.randrange(len(PLACES))]
        # Drawn at the default range and scaled, so every setting consumes the same random numbers.
        scale = cfg.synthetic_jitter_deg / JITTER_DEG
        lat = place.lat + rng.uniform(-JITTER_DEG, JITTER_DEG) * scale
        lon = place.lon + rng.uniform(-JITTER_DEG, JITTER_DEG) * scale
        row_id = f"synthetic-{cfg.split}-{cfg.seed}-{index:05d}"
        yield RawRow(row_id, round(lat, 6), round(lon, 6), render(place, rng),
                     f"synthetic {row_id}", {"source": "synthetic", "place": place.name})
