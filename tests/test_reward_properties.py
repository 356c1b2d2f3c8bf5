"""Properties over arbitrary completions and ground truth: every reward is a float in [0, 1], or
None exactly when the ground truth it needs is missing, and nothing raises (10k cases)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo_r_lite.geo import Place, valid_latlon
from geo_r_lite.parsing import parse_answer
from geo_r_lite.prompts import build_sft_target
from geo_r_lite.rewards import (
    consistency_reward,
    distance_reward,
    format_reward,
    geo_reward,
    hierarchy_reward,
)

# Pieces of real answers, so random text often gets deep into the parser, not just past it.
FRAGMENTS = [
    "<think>", "</think>", "<answer>", "</answer>", "\n", " ", "Continent:", "Country:",
    "Region:", "City:", "Coordinates:", "Unknown", "Europe", "Niger", "Nigeria", "USA", "Paris",
    "(", ")", ",", ";", "-", "\u2212", ".", "°", "'", '"', "′", "″", "N", "S", "E", "W", "North",
    "48.8566", "2.3522", "-33.9", "151.2", "91", "181", "0", "59", "60", "1e5", "nan", "\ufffd",
    "\x00", "\ud800", " It is Paris." * 8, "a" * 40,
]
PLACE_WORDS = ["Unknown", "Europe", "Niger", "Nigeria", "USA", "Paris", "N/A", "(", ":"]
PIECE = st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6))


@st.composite
def near_valid(draw):
    """A well-formed answer for a random point and names, then up to three random edits."""
    place = Place(*(draw(st.one_of(st.none(), st.sampled_from(PLACE_WORDS))) for _ in range(5)))
    text = build_sft_target(place, draw(st.floats(-90, 90)), draw(st.floats(-180, 180)))
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 20)))
        text = text[:i] + (draw(PIECE) if draw(st.booleans()) else "") + text[j:]
    return text


TEXT = st.one_of(st.text(max_size=200), st.lists(PIECE, max_size=40).map("".join), near_valid())
COMPLETION = st.one_of(
    TEXT,
    TEXT.map(lambda t: [{"role": "assistant", "content": t}]),
    TEXT.map(lambda t: [{"role": "assistant", "content": [{"type": "text", "text": t}]}]),
)
COORD = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                  st.floats(-90, 90), st.sampled_from(["48.85", "north", ""]))
NAME = st.one_of(st.none(), st.sampled_from(["Europe", "France", "FR", "Niger", "Nigeria",
                                             "United States", "US", "Paris", "Île-de-France"]),
                 st.text(max_size=12))


@st.composite
def batches(draw):
    n = draw(st.integers(1, 3))
    rows = [dict(lat=draw(COORD), lon=draw(COORD), continent=draw(NAME), country=draw(NAME),
                 country_code=draw(NAME), region=draw(NAME), city=draw(NAME)) for _ in range(n)]
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    return [draw(COMPLETION) for _ in range(n)], columns


def _in_unit_interval(value) -> bool:
    return isinstance(value, float) and 0.0 <= value <= 1.0


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_rewards_bounded_and_none_only_without_truth(batch):
    completions, columns = batch
    has_coords = [valid_latlon(la, lo) for la, lo in zip(columns["lat"], columns["lon"])]
    for reward in (distance_reward, geo_reward):
        for value, known in zip(reward(completions, **columns), has_coords):
            assert (value is None) if not known else _in_unit_interval(value), reward.__name__
    for reward in (format_reward, consistency_reward):
        assert all(_in_unit_interval(v) for v in reward(completions, **columns)), reward.__name__
    for i, value in enumerate(hierarchy_reward(completions, **columns)):
        labels = [columns[key][i] for key in ("continent", "country", "country_code", "region",
                                              "city")]
        known = any(isinstance(label, str) and label.strip() for label in labels)
        assert (value is None) if not known else _in_unit_interval(value), "hierarchy_reward"
    for parsed in map(parse_answer, completions):
        if parsed.lat is not None:
            assert -90 <= parsed.lat <= 90 and -180 <= parsed.lon <= 180
        assert parsed.format_ok == (parsed.error is None)
