"""The Chain-of-Region prompt and the SFT target: shape, template rendering, round trip."""

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_r_lite.geo import Place
from geo_r_lite.parsing import parse_answer
from geo_r_lite.prompts import (
    INSTRUCTION,
    SFT_THINK,
    SYSTEM_PROMPT,
    build_answer,
    build_prompt,
    build_sft_target,
)
from geo_r_lite.tiny import CHAT_TEMPLATE

PARIS = Place("Europe", "France", "FR", "Île-de-France", "Paris")


def test_prompt_is_trl_conversational_with_list_contents():
    prompt = build_prompt()
    assert [m["role"] for m in prompt] == ["system", "user"]
    assert all(isinstance(m["content"], list) for m in prompt)
    assert prompt[0]["content"] == [{"type": "text", "text": SYSTEM_PROMPT}]
    assert prompt[1]["content"] == [{"type": "image"}, {"type": "text", "text": INSTRUCTION}]


def test_prompt_is_a_fresh_object_each_call():
    first = build_prompt()
    first[1]["content"].append({"type": "text", "text": "mutated"})
    assert len(build_prompt()[1]["content"]) == 2


def test_prompt_renders_with_the_qwen2_vl_chat_template():
    text = jinja2.Template(CHAT_TEMPLATE).render(messages=build_prompt(), add_generation_prompt=True)
    assert text.count("<|image_pad|>") == 1
    assert text.count(SYSTEM_PROMPT) == 1 and text.count(INSTRUCTION) == 1
    assert "You are a helpful assistant." not in text  # our system prompt replaces the default
    assert text.endswith("<|im_start|>assistant\n")


def test_instruction_names_every_answer_field_in_chain_order():
    positions = [INSTRUCTION.index(f"{key}:") for key in
                 ("Continent", "Country", "Region", "City", "Coordinates")]
    assert positions == sorted(positions)
    assert "<think>" in INSTRUCTION and "<answer>" in INSTRUCTION


@pytest.mark.parametrize(
    "place, lat, lon, expected_lines",
    [
        pytest.param(PARIS, 48.8566, 2.3522,
                     ["Continent: Europe", "Country: France", "Region: Île-de-France",
                      "City: Paris", "Coordinates: (48.8566, 2.3522)"], id="full-place"),
        pytest.param(Place(), -45.0, -170.5,
                     ["Continent: Unknown", "Country: Unknown", "Region: Unknown",
                      "City: Unknown", "Coordinates: (-45.0000, -170.5000)"], id="open-ocean-unknowns"),
        pytest.param({"continent": "Asia", "country": "Japan", "city": "Sapporo"}, 43.0621, 141.3544,
                     ["Continent: Asia", "Country: Japan", "Region: Unknown", "City: Sapporo",
                      "Coordinates: (43.0621, 141.3544)"], id="dict-with-missing-region"),
        pytest.param(Place(city="New\nYork  City"), 40.7, -74.0,
                     ["Continent: Unknown", "Country: Unknown", "Region: Unknown",
                      "City: New York City", "Coordinates: (40.7000, -74.0000)"],
                     id="whitespace-in-a-name-collapsed"),
    ],
)
def test_build_answer(place, lat, lon, expected_lines):
    assert build_answer(place, lat, lon) == "\n".join(["<answer>", *expected_lines, "</answer>"])


@pytest.mark.parametrize(
    "lat, lon",
    [
        pytest.param(91.0, 0.0, id="lat-out-of-range"),
        pytest.param(0.0, -180.5, id="lon-out-of-range"),
        pytest.param(float("nan"), 0.0, id="nan"),
        pytest.param(None, 0.0, id="missing"),
        pytest.param("north", 0.0, id="not-a-number"),
    ],
)
def test_build_answer_rejects_bad_coordinates(lat, lon):
    with pytest.raises(ValueError, match="coordinates"):
        build_answer(PARIS, lat, lon)


def test_sft_target_has_only_the_fixed_think_line_and_parses_back():
    target = build_sft_target(PARIS, 48.8566, 2.3522)
    assert target.startswith(f"<think>\n{SFT_THINK}\n</think>\n<answer>")
    parsed = parse_answer(target)
    assert parsed.format_ok and parsed.error is None and not parsed.degenerate
    assert parsed.think == SFT_THINK
    assert (parsed.lat, parsed.lon) == (48.8566, 2.3522)
    assert (parsed.continent, parsed.country, parsed.region, parsed.city) == (
        "Europe", "France", "Île-de-France", "Paris")


NAMES = st.one_of(st.none(), st.text(st.characters(categories=["L"]) | st.sampled_from(" -'."),
                                     min_size=1, max_size=30).filter(str.strip))


@settings(max_examples=300, deadline=None)
@given(continent=NAMES, country=NAMES, region=NAMES, city=NAMES,
       lat=st.floats(-90, 90), lon=st.floats(-180, 180))
def test_sft_target_round_trips(continent, country, region, city, lat, lon):
    parsed = parse_answer(build_sft_target(Place(continent, country, None, region, city), lat, lon))
    assert parsed.format_ok, parsed.error
    assert abs(parsed.lat - lat) <= 5e-5 and abs(parsed.lon - lon) <= 5e-5
    unknown_words = {"unknown", "n/a", "na", "none", "?", "-"}
    for written, back in ((continent, parsed.continent), (country, parsed.country),
                          (region, parsed.region), (city, parsed.city)):
        clean = " ".join(written.split()) if written else None
        assert back == (None if clean is None or clean.lower() in unknown_words else clean)
