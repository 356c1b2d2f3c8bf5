"""parse_answer and its pieces, as tables of completions with the reason for each case."""

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_r_lite import degenerate, parsing
from geo_r_lite.degenerate import is_degenerate
from geo_r_lite.parsing import (
    ParsedAnswer,
    completion_text,
    parse_answer,
    parse_coordinates,
    parse_many,
)

THINK = "<think>\nBlue street signs in French and Haussmann facades.\n</think>\n"


def answer(coords="(48.8566, 2.3522)", continent="Europe", country="France",
           region="Île-de-France", city="Paris", lines=None):
    """An answer block; ``lines`` replaces the field lines entirely."""
    if lines is None:
        lines = [f"Continent: {continent}", f"Country: {country}", f"Region: {region}",
                 f"City: {city}", f"Coordinates: {coords}"]
    return "<answer>\n" + "\n".join(lines) + "\n</answer>"


GOOD = THINK + answer()

FIELDS_WITHOUT_COORDS = ["Continent: Europe", "Country: France", "Region: Île-de-France",
                         "City: Paris"]


@pytest.mark.parametrize(
    "text, lat, lon, format_ok, error_part",
    [
        pytest.param(GOOD, 48.8566, 2.3522, True, None, id="good"),
        pytest.param(THINK + answer("48.8566, 2.3522"), 48.8566, 2.3522, True, None,
                     id="no-parentheses"),
        pytest.param(THINK + answer("(2.3522, 48.8566)"), 2.3522, 48.8566, True, None,
                     id="swapped-in-range-is-taken-as-written"),
        pytest.param(THINK + answer("(-122.4194, 37.7749)"), None, None, False, "coordinates",
                     id="swapped-lat-out-of-range"),
        pytest.param(answer(), 48.8566, 2.3522, True, None, id="missing-think-is-format-reward-choice"),
        pytest.param("<think></think>" + answer(), 48.8566, 2.3522, True, None, id="empty-think"),
        pytest.param(THINK + answer("(10.0, 20.0)") + "\n" + answer("(30.0, 40.0)"), 30.0, 40.0,
                     False, "2 <answer> blocks", id="two-answers-last-wins"),
        pytest.param("<think>draft " + answer("(1.0, 2.0)") + "</think>" + answer("(3.0, 4.0)"),
                     3.0, 4.0, False, "2 <answer> blocks", id="draft-answer-inside-think"),
        pytest.param("", None, None, False, "no <answer>", id="empty"),
        pytest.param("   \n\t", None, None, False, "no <answer>", id="whitespace-only"),
        pytest.param(THINK + "Coordinates: (48.8566, 2.3522)", None, None, False, "no <answer>",
                     id="coordinates-outside-answer-do-not-count"),
        pytest.param(GOOD[:GOOD.index("2.3522") + 3], None, None, False, "unclosed",
                     id="truncated-mid-number-not-trusted"),
        pytest.param(GOOD[:GOOD.index("</answer>")], 48.8566, 2.3522, False, "unclosed",
                     id="truncated-after-coordinates-line"),
        pytest.param(THINK + answer("43.45° N, 142.61° E"), 43.45, 142.61, True, None,
                     id="hemisphere-letters"),
        pytest.param(THINK + answer("33.8688° S, 151.2093° E"), -33.8688, 151.2093, True, None,
                     id="southern-hemisphere"),
        pytest.param(THINK + answer("34.6037 S, 58.3816 W"), -34.6037, -58.3816, True, None,
                     id="south-west-letters-without-degree-sign"),
        pytest.param(THINK + answer("142.61° E, 43.45° N"), 43.45, 142.61, True, None,
                     id="hemisphere-letters-fix-the-order"),
        pytest.param(THINK + answer("""48°51'24"N, 2°21'8"E"""), 48 + 51 / 60 + 24 / 3600,
                     2 + 21 / 60 + 8 / 3600, True, None, id="dms"),
        pytest.param(THINK + answer("40°26′46″ N 79°58′56″ W"), 40 + 26 / 60 + 46 / 3600,
                     -(79 + 58 / 60 + 56 / 3600), True, None, id="dms-unicode-primes"),
        pytest.param(THINK + answer("""48°61'0"N, 2°21'8"E"""), None, None, False, "coordinates",
                     id="dms-minutes-past-60"),
        pytest.param(THINK + answer("43.45° N, 12.0° N"), None, None, False, "coordinates",
                     id="two-latitudes"),
        pytest.param(THINK + answer("-43.45° N, 12.0° E"), None, None, False, "coordinates",
                     id="sign-contradicts-letter"),
        pytest.param(THINK + answer("(91.0, 0.0)"), None, None, False, "coordinates",
                     id="latitude-out-of-range"),
        pytest.param(THINK + answer("(0.0, 180.5)"), None, None, False, "coordinates",
                     id="longitude-out-of-range"),
        pytest.param(THINK + answer("(-90, -180)"), -90.0, -180.0, True, None, id="range-edges"),
        pytest.param(THINK + answer("(\u221233.9, 151.2)"), -33.9, 151.2, True, None,
                     id="unicode-minus"),
        pytest.param(THINK + answer("(48.85, 2.35)."), 48.85, 2.35, True, None,
                     id="trailing-full-stop"),
        pytest.param(THINK + answer("approximately (48.85, 2.35), near the river"), 48.85, 2.35,
                     False, "coordinates", id="malformed-value-lenient-pair"),
        pytest.param(THINK + answer("somewhere in France"), None, None, False, "coordinates",
                     id="no-numbers"),
        pytest.param(THINK + answer("Unknown"), None, None, False, "coordinates",
                     id="unknown-coordinates"),
        pytest.param(THINK + answer(lines=FIELDS_WITHOUT_COORDS[:2] + FIELDS_WITHOUT_COORDS[3:]
                                    + ["Coordinates: (48.8566, 2.3522)"]),
                     48.8566, 2.3522, False, "missing field(s): region", id="missing-field"),
        pytest.param(THINK + answer(region=""), 48.8566, 2.3522, False, "missing field(s): region",
                     id="empty-field"),
        pytest.param(THINK + answer(lines=[*FIELDS_WITHOUT_COORDS, "Coordinates: (1.0, 1.0)",
                                           "Coordinates: (48.8566, 2.3522)"]),
                     48.8566, 2.3522, False, "duplicate", id="duplicate-field-last-wins"),
        pytest.param(THINK + answer(lines=["Coordinates: (48.8566, 2.3522)", *FIELDS_WITHOUT_COORDS]),
                     48.8566, 2.3522, False, "order", id="fields-out-of-chain-order"),
        pytest.param(THINK + answer(lines=[*FIELDS_WITHOUT_COORDS, "Coordinates: (48.8566, 2.3522)",
                                           "Confidence: high"]),
                     48.8566, 2.3522, False, "unexpected text", id="extra-line-in-answer"),
        pytest.param(GOOD + "\nHope this helps!", 48.8566, 2.3522, False, "outside",
                     id="text-after-answer"),
        pytest.param("Sure! " + GOOD, 48.8566, 2.3522, False, "outside", id="text-before-think"),
        pytest.param(answer() + THINK, 48.8566, 2.3522, False, "think", id="think-after-answer"),
        pytest.param(THINK + THINK + answer(), 48.8566, 2.3522, False, "think", id="two-thinks"),
        pytest.param(THINK + "<answer>\n" + "\n".join(
            [line.upper() for line in FIELDS_WITHOUT_COORDS] + ["COORDINATES: (48.8566, 2.3522)"])
            + "\n</answer>", 48.8566, 2.3522, True, None, id="upper-case-keys"),
        pytest.param("<THINK>x</THINK><ANSWER>" + answer()[8:-9] + "</ANSWER>", None, None, False,
                     "no <answer>", id="tags-are-lower-case"),
    ],
)
def test_parse_answer(text, lat, lon, format_ok, error_part):
    parsed = parse_answer(text)
    assert parsed.lat == pytest.approx(lat) if lat is not None else parsed.lat is None
    assert parsed.lon == pytest.approx(lon) if lon is not None else parsed.lon is None
    assert parsed.format_ok is format_ok
    if error_part is None:
        assert parsed.error is None
    else:
        assert error_part in parsed.error


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param(GOOD, ("Europe", "France", "Île-de-France", "Paris"), id="all-named"),
        pytest.param(THINK + answer(region="Unknown", city="unknown"),
                     ("Europe", "France", None, None), id="unknown-is-none"),
        pytest.param(THINK + answer(country="N/A"), ("Europe", None, "Île-de-France", "Paris"),
                     id="n-a-is-none"),
        pytest.param(THINK + answer(region="  "), ("Europe", "France", None, "Paris"),
                     id="blank-is-none"),
        pytest.param(THINK + answer(country="  United States of America  "),
                     ("Europe", "United States of America", "Île-de-France", "Paris"),
                     id="values-stripped"),
        pytest.param(THINK + "<answer>\nContinent: Asia\nCountry: Jap", ("Asia", None, None, None),
                     id="truncated-last-line-dropped"),
        pytest.param(THINK + "<answer>\nContinent: Asia\nCountry: Japan\nRegion: Hokkaido\n",
                     ("Asia", "Japan", "Hokkaido", None), id="truncated-finished-lines-kept"),
    ],
)
def test_parse_answer_place_names(text, expected):
    parsed = parse_answer(text)
    assert (parsed.continent, parsed.country, parsed.region, parsed.city) == expected


def test_think_text():
    assert parse_answer(GOOD).think == "Blue street signs in French and Haussmann facades."
    assert parse_answer("<think>  </think>" + answer()).think == ""
    assert parse_answer(answer()).think is None
    assert parse_answer("<think>unclosed " + answer()).think is None


@pytest.mark.parametrize(
    "completion",
    [
        pytest.param(GOOD, id="string"),
        pytest.param([{"role": "assistant", "content": GOOD}], id="message-string-content"),
        pytest.param([{"role": "assistant", "content": [{"type": "text", "text": GOOD}]}],
                     id="message-text-parts"),
        pytest.param([{"role": "assistant", "content": [
            {"type": "text", "text": GOOD[:40]}, {"type": "image"},
            {"type": "text", "text": GOOD[40:]}]}], id="parts-joined-non-text-skipped"),
        pytest.param({"role": "assistant", "content": GOOD}, id="single-message-dict"),
        pytest.param([{"role": "user", "content": "ignore me"}, {"role": "assistant", "content": GOOD}],
                     id="only-assistant-messages-count"),
    ],
)
def test_message_list_and_string_completions_agree(completion):
    assert completion_text(completion) == GOOD
    assert parse_answer(completion) == parse_answer(GOOD)


@pytest.mark.parametrize(
    "completion",
    [
        pytest.param(None, id="none"),
        pytest.param(42, id="number"),
        pytest.param([], id="empty-list"),
        pytest.param([{"role": "assistant"}], id="no-content"),
        pytest.param([{"role": "assistant", "content": [{"type": "text", "text": None}]}],
                     id="text-part-not-a-string"),
        pytest.param(["not a message"], id="list-of-strings"),
    ],
)
def test_odd_completions_give_empty_text_and_never_raise(completion):
    assert completion_text(completion) == ""
    assert parse_answer(completion) == ParsedAnswer(error="no <answer> block")


@pytest.mark.parametrize(
    "value, strict, expected",
    [
        pytest.param("(48.85, 2.35)", True, (48.85, 2.35), id="canonical"),
        pytest.param("48.85 2.35", True, (48.85, 2.35), id="space-separated"),
        pytest.param("48.85; 2.35", True, (48.85, 2.35), id="semicolon"),
        pytest.param("(  48.85 ,\t2.35 )", True, (48.85, 2.35), id="extra-whitespace"),
        pytest.param("43.45 South, 70.2 West", True, (-43.45, -70.2), id="hemisphere-words"),
        pytest.param("""33°52'S, 151°12'E""", True, (-(33 + 52 / 60), 151.2), id="degrees-minutes"),
        pytest.param("48.852.35", True, None, id="run-together-numbers"),
        pytest.param("lat 48.85 lon 2.35", False, None, id="labels-between-numbers"),
        pytest.param("see 48.85, 2.35 or so", False, (48.85, 2.35), id="lenient-finds-pair"),
        pytest.param("see 48.85, 2.35 or so", True, None, id="strict-needs-whole-value"),
        pytest.param("148.85, 2.35, then 48.85, 2.35", False, (48.85, 2.35),
                     id="lenient-skips-out-of-range-pair"),
        pytest.param("(" + "1" * 300 + ", 2)", True, None, id="overlong-value"),
    ],
)
def test_parse_coordinates(value, strict, expected):
    result = parse_coordinates(value, strict=strict)
    assert result == pytest.approx(expected) if expected is not None else result is None


PROSE = (
    "The photo shows a wide boulevard lined with cream limestone buildings with wrought-iron "
    "balconies and mansard roofs. Cars drive on the right and the street signs are blue plates "
    "with white lettering in French. Plane trees line the pavement and there is a cafe terrace "
    "with wicker chairs facing the street. The sky is overcast and the vegetation suggests a "
    "temperate oceanic climate. The plates are long and white with a blue band on the left. "
)


@pytest.mark.parametrize(
    "text, degenerate",
    [
        pytest.param(GOOD, False, id="short-good-answer"),
        pytest.param(PROSE + answer(), False, id="ordinary-prose"),
        pytest.param("这张照片显示了一条宽阔的林荫大道，两旁是奶油色的石灰石建筑，带有铁艺阳台和复折式屋顶。"
                     * 2 + "街道标志是蓝色的，上面写着法语。" + answer(), False, id="cjk-prose-no-spaces"),
        pytest.param(PROSE + " I think it is Paris." * 12 + answer(), True, id="sentence-loop"),
        pytest.param(PROSE + "Paris " * 40 + answer(), True, id="word-loop"),
        pytest.param(PROSE + "!" * 200 + answer(), True, id="character-run"),
        pytest.param(PROSE + " " * 40 + answer(), True, id="space-run"),
        pytest.param(PROSE + "\n" * 20 + answer(), True, id="newline-run"),
        pytest.param(PROSE + "qZx8Kp2LmN9vB4tR7yH1wE6uI3oP0aS5dF" * 8 + " " + answer(), True,
                     id="keyboard-mash-longer-than-probe-spacing"),
        pytest.param(PROSE + "https://example.com/a/b " + answer(), False, id="short-url-is-fine"),
        pytest.param(PROSE + "\ufffd\x07\ue000" * 20 + answer(), True, id="junk-characters"),
    ],
)
def test_is_degenerate(text, degenerate):
    assert is_degenerate(text) is degenerate


def test_degenerate_flag_is_set_only_on_well_formed_answers():
    loop = PROSE + " I think it is Paris." * 12
    assert parse_answer(f"<think>{loop}</think>{answer()}").degenerate is True
    assert parse_answer(f"<think>{loop}</think>").degenerate is False  # already a format failure


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("1" + " " * 20_000 + "x", id="long-space-run"),
        pytest.param("1\t" * 10_000 + "x", id="long-tab-run"),
        pytest.param("1" * 20_000 + "x", id="long-digit-run"),
        pytest.param("1° " * 5_000, id="repeated-degree-signs"),
        pytest.param("1.2, " * 5_000, id="many-pairs"),
    ],
)
def test_adversarial_values_parse_in_linear_time(value):
    """Catastrophic regex backtracking is a bug (it would stall training), not a speed figure:
    these take well under a millisecond; a quadratic or worse pattern takes seconds to hours."""
    start = time.perf_counter()
    for text in (THINK + answer(value), "Country: " + value, value):
        parse_answer(text)
    parse_coordinates(value, strict=False)
    assert time.perf_counter() - start < 1.0


def _reference_is_degenerate(text: str) -> bool:
    """The plain is_degenerate (before the fast paths): the oracle the fast one must match."""
    if " " * 32 in text or "\n" * 16 in text or "\t" * 16 in text:
        return True
    if "\ufffd" in text or not text.replace("\n", " ").replace("\t", " ").isprintable():
        if len(degenerate._JUNK_CHAR.findall(text)) > 0.02 * len(text):
            return True
    span = len(text) - 80
    if span < 0:
        return False
    for i in range(8):
        at = span * i // 7
        if text.count(text[at:at + 32], at) >= 4:
            return True
        window = text[at:at + 80]
        if window.isascii() and " " not in window and "\n" not in window and "\t" not in window:
            return True
    return False


LOOP_UNIT = "The sign says Paris, I think so. "  # 33 characters: a 32-window repeats across units
DEGENERATE_PIECES = [
    PROSE[:120], LOOP_UNIT, LOOP_UNIT * 3, "ab" * 16, "x" * 31, " " * 31, "\n" * 15, "\t" * 15,
    "\x00", "\x07", "\x0b", "\r", "\x7f", "\x85", "\x9f", "\xa0", "\xad", "\ufffd", "\ue000",
    "\uf8ff", "\ud800", "°", "é", "’", "这张照片", "，", "\U0001f600",
    "qZx8Kp2LmN9vB4tR7yH1wE6uI3",
]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("abcdefg " * 16, id="four-windows-exactly-fill-the-text"),
        pytest.param("abcdefg " * 16 + "x", id="one-char-past-four-windows"),
        pytest.param("x" + "abcdefg " * 16, id="four-windows-shifted-off-the-probes"),
        pytest.param("y" + "abcdefgh " * 14, id="repeat-tail-shorter-than-three-windows"),
        pytest.param("a" * 79, id="shorter-than-one-mash-window"),
        pytest.param("a b " * 20, id="exactly-one-mash-window"),
        pytest.param("\x07" * 2 + "a " * 49, id="junk-share-exactly-two-percent"),
        pytest.param("\x07" * 3 + "a " * 49, id="junk-share-past-two-percent"),
        pytest.param("\x85\x9f\xa0 " * 10 + PROSE, id="latin-1-junk-and-non-junk-controls"),
        pytest.param("\ufffd\u2019" * 3 + PROSE, id="replacement-chars-in-wide-text"),
        pytest.param("\ud800" + PROSE, id="lone-surrogate"),
    ],
)
def test_is_degenerate_equals_reference_at_edges(text):
    assert is_degenerate(text) is _reference_is_degenerate(text)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(st.text(max_size=400),
                 st.lists(st.one_of(st.sampled_from(DEGENERATE_PIECES), st.text(max_size=8)),
                          max_size=30).map("".join)))
def test_is_degenerate_equals_reference_on_random_text(text):
    assert is_degenerate(text) is _reference_is_degenerate(text)


FIELD_LINES = [
    "Continent: Europe", "Country: France", "Region: Normandy", "City: Rouen",
    "Coordinates: (49.44, 1.1)",
]


@pytest.mark.parametrize(
    "text, format_ok, error_part, think",
    [
        pytest.param("\u00a0" + THINK + "\u2028" + answer() + "\u3000", True, None,
                     THINK[8:-10], id="unicode-blanks-outside-are-blank"),
        pytest.param(THINK.rstrip() + answer(), True, None, THINK[8:-10], id="no-gap-between-blocks"),
        pytest.param(THINK + " ok " + answer(), False, "outside", THINK[8:-10],
                     id="text-between-think-and-answer"),
        pytest.param("Sure " + answer(), False, "outside", None, id="text-before-answer-only"),
        pytest.param(THINK + answer().replace("\n", "\r\n"), True, None, THINK[8:-10],
                     id="crlf-lines"),
        pytest.param(THINK + answer(region=" "), False, "missing field(s): region", THINK[8:-10],
                     id="blank-value-in-prompt-layout"),
        pytest.param("<think></think><answer></answer>", False,
                     "missing field(s): continent, country, region, city, coordinates", "",
                     id="empty-blocks"),
        pytest.param("no tags at all", False, "no <answer>", None, id="no-tags"),
        pytest.param("<think>a</think><think>b</think>" + answer(), False, "think", None,
                     id="two-thinks-no-think-text"),
    ],
)
def test_parse_answer_layouts(text, format_ok, error_part, think):
    parsed = parse_answer(text)
    assert parsed.format_ok is format_ok
    assert parsed.think == think
    if error_part is None:
        assert parsed.error is None
    else:
        assert error_part in parsed.error


def _fields_by_line_loop(body: str):
    keys, values, n_lines = parsing._field_lines(body)
    return values, parsing._field_error(keys, values, n_lines)


LINE_PIECES = [*FIELD_LINES, "Continent:", "Coordinates: 48:51 N, 2:21 E", "CITY: Paris",
               " Region : x", "Confidence: high", "", " ", "\t", "\r", "\u00a0"]


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(LINE_PIECES), st.text(max_size=6)), max_size=8),
       st.sampled_from(["", "\n"]), st.sampled_from(["", "\n", "\n "]))
def test_prompt_layout_fast_path_equals_line_loop(lines, head, tail):
    """The regex for the prompt's own answer layout must give what the general line loop gives."""
    body = head + "\n".join(lines) + tail
    assert parsing._fields(body) == _fields_by_line_loop(body)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("\n" + "\n".join(FIELD_LINES) + "\n", id="prompt-layout"),
        pytest.param("\n".join(FIELD_LINES), id="prompt-layout-without-newlines-at-ends"),
        pytest.param("\n" + "\n".join(FIELD_LINES).replace("Rouen", "") + "\n",
                     id="prompt-layout-empty-city"),
        pytest.param("\n".join(FIELD_LINES[::-1]), id="reversed-order"),
        pytest.param("\n".join([*FIELD_LINES, FIELD_LINES[0]]), id="duplicate-line"),
    ],
)
def test_prompt_layout_fast_path_equals_line_loop_on_examples(body):
    assert parsing._fields(body) == _fields_by_line_loop(body)


@pytest.mark.parametrize(
    "value, expected",
    [
        pytest.param("(0." + "0" * 90 + "1, 2.0)", None, id="plain-but-longer-than-80-chars"),
        pytest.param("(48.85,  2.35)", (48.85, 2.35), id="plain-after-collapsing-blanks"),
        pytest.param("(48.85, 2.35) ", (48.85, 2.35), id="plain-with-trailing-blank"),
        pytest.param("(48.85, 182.0)", None, id="plain-out-of-range"),
    ],
)
def test_parse_coordinates_plain_form(value, expected):
    result = parse_coordinates(value)
    assert result == pytest.approx(expected) if expected is not None else result is None


def test_parse_many_equals_parse_answer_per_completion():
    batch = [GOOD, [{"role": "assistant", "content": GOOD}], "junk", None, THINK + answer("1, 2")]
    assert parse_many(batch) == [parse_answer(c) for c in batch]
