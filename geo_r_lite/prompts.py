"""The Chain-of-Region prompt and the answer text the model is asked to write.

One builder serves training (GRPO and SFT) and evaluation, so the model is always asked the same
question. The answer format, parsed back by ``geo_r_lite.parsing``::

    <think>
    ...reasoning from visual cues...
    </think>
    <answer>
    Continent: Europe
    Country: France
    Region: Ile-de-France
    City: Paris
    Coordinates: (48.8566, 2.3522)
    </answer>

Coordinates are decimal degrees, latitude first. A level the model cannot tell is written
``Unknown`` (parsed back as ``None``).

The SFT target holds no reasoning about the image: Geo-R's point is that no synthetic
chain-of-thought annotation is needed. Its ``<think>`` block is the fixed line ``SFT_THINK``,
which only restates the procedure, so that SFT teaches the format and nothing invented.
"""

from __future__ import annotations

from geo_r_lite.geo import valid_latlon

FIELDS = ("continent", "country", "region", "city")
UNKNOWN = "Unknown"
COORDINATE_DECIMALS = 4  # 1e-4 degree is about 11 m: finer than any evaluation threshold (1 km)

SYSTEM_PROMPT = (
    "You are an expert in image geolocation. You look at a photo, reason about the visual cues "
    "it contains, and state where it was taken, from the continent down to the coordinates."
)

INSTRUCTION = (
    "Where was this photo taken?\n"
    "First reason step by step inside <think> </think> about the visual cues: landscape, "
    "vegetation, climate, architecture, roads and road markings, vehicles, signs and their "
    "language, people and clothing.\n"
    "Then answer down the chain of region, from the largest area to the smallest, inside "
    "<answer> </answer>, exactly in this format:\n"
    "<answer>\n"
    "Continent: <continent>\n"
    "Country: <country>\n"
    "Region: <state or province>\n"
    "City: <city>\n"
    "Coordinates: (<latitude>, <longitude>)\n"
    "</answer>\n"
    "Coordinates are decimal degrees, latitude first; north and east are positive. "
    "Write Unknown for a level you cannot tell, but always give coordinates."
)

SFT_THINK = (
    "I locate the photo down the chain of region: continent, country, region, city, "
    "then coordinates."
)


def build_prompt() -> list[dict]:
    """The TRL conversational prompt: a system message and a user message (image, instruction).

    Every ``content`` is a list of typed parts, as TRL's vision path and the Qwen2-VL chat template
    expect; ``{"type": "image"}`` is the placeholder the processor fills with the sample's image.
    A new list is returned on each call, so callers may mutate it.
    """
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": INSTRUCTION}]},
    ]


def _label(place, name: str) -> str:
    """One level of ``place`` (a Place or a mapping) as a single line; None/blank -> Unknown."""
    value = place.get(name) if isinstance(place, dict) else getattr(place, name, None)
    if value is None:
        return UNKNOWN
    # Collapse whitespace so a stray newline in a gazetteer name cannot break the line format.
    text = " ".join(str(value).split())
    return text or UNKNOWN


def build_answer(place, lat: float, lon: float) -> str:
    """The ``<answer>`` block for a Place (or dict with the same keys) and true coordinates.

    ``lat`` in [-90, 90] and ``lon`` in [-180, 180], degrees, written with
    ``COORDINATE_DECIMALS`` decimals; ValueError if they are not finite and in range.
    """
    if not valid_latlon(lat, lon):
        raise ValueError(f"coordinates must be finite numbers in range, got (lat, lon) = "
                         f"({lat!r}, {lon!r})")
    lat, lon = float(lat), float(lon)
    lines = [f"{name.capitalize()}: {_label(place, name)}" for name in FIELDS]
    lines.append(f"Coordinates: ({lat:.{COORDINATE_DECIMALS}f}, {lon:.{COORDINATE_DECIMALS}f})")
    return "<answer>\n" + "\n".join(lines) + "\n</answer>"


def build_sft_target(place, lat: float, lon: float) -> str:
    """SFT completion: the fixed ``SFT_THINK`` line in ``<think>`` then ``build_answer(...)``."""
    return f"<think>\n{SFT_THINK}\n</think>\n{build_answer(place, lat, lon)}"
