"""Reward scorers, TRL adapters and the registry, as tables of cases with reasons."""

import math
import pickle
from types import SimpleNamespace

import pytest

from geo_r_lite import parsing
from geo_r_lite.geo import Place, haversine_km
from geo_r_lite.parsing import parse_answer
from geo_r_lite.prompts import build_answer, build_sft_target
from geo_r_lite.reward_registry import REWARD_REGISTRY, build_reward_functions
from geo_r_lite.rewards import (
    DistanceReward,
    FormatReward,
    HierarchyReward,
    consistency_reward,
    distance_reward,
    format_reward,
    geo_reward,
    hierarchy_reward,
    score_consistency,
    score_distance,
    score_format,
    score_hierarchy,
)

PARIS = Place("Europe", "France", "FR", "Île-de-France", "Paris")
SYDNEY = Place("Oceania", "Australia", "AU", "New South Wales", "Sydney")
NIAMEY = Place("Africa", "Niger", "NE", "Niamey", "Niamey")
LAGOS = Place("Africa", "Nigeria", "NG", "Lagos", "Lagos")
NYC = Place("North America", "United States", "US", "New York", "New York City")
PARIS_LL, SYDNEY_LL = (48.8566, 2.3522), (-33.8688, 151.2093)
THINK = "<think>\nStreet signs, architecture and vegetation.\n</think>\n"
ALL_REWARDS = [distance_reward, format_reward, hierarchy_reward, consistency_reward, geo_reward]


def completion(place=PARIS, latlon=PARIS_LL, think=THINK):
    return think + build_answer(place, *latlon)


def names(continent=None, country=None, region=None, city=None):
    """A parsed answer naming these places (coordinates irrelevant to the hierarchy)."""
    return parsing.ParsedAnswer(continent=continent, country=country, region=region, city=city)


def truth_columns(places_latlons):
    """Dataset columns for a list of (Place, (lat, lon)) rows."""
    cols = {"lat": [ll[0] for _, ll in places_latlons], "lon": [ll[1] for _, ll in places_latlons]}
    for field in ("continent", "country", "country_code", "region", "city"):
        cols[field] = [getattr(p, field) for p, _ in places_latlons]
    return cols


# ---------------------------------------------------------------- distance


@pytest.mark.parametrize(
    "distance_km, expected",
    [
        pytest.param(0.0, 1.0, id="exact"),
        pytest.param(375.0, 0.75, id="halfway-to-first-knot"),
        pytest.param(750.0, 0.5, id="knot-750km"),
        pytest.param(1625.0, 0.35, id="between-750-and-2500"),
        pytest.param(2500.0, 0.2, id="knot-2500km"),
        pytest.param(11250.0, 0.1, id="between-2500-and-20000"),
        pytest.param(20000.0, 0.0, id="knot-20000km"),
        pytest.param(20015.1, 0.0, id="antipode-beyond-last-knot"),
        pytest.param(None, 0.0, id="no-prediction"),
        pytest.param(math.nan, 0.0, id="nan-distance"),
    ],
)
def test_score_distance_piecewise(distance_km, expected):
    assert score_distance(distance_km) == pytest.approx(expected)


@pytest.mark.parametrize(
    "shape, tau_km, distance_km, expected",
    [
        pytest.param("exp", 1000.0, 0.0, 1.0, id="exp-at-zero"),
        pytest.param("exp", 1000.0, 1000.0, math.exp(-1), id="exp-at-tau"),
        pytest.param("exp", 250.0, 500.0, math.exp(-2), id="exp-short-tau"),
        pytest.param("geoscore", 1000.0, 1492.7, math.exp(-1), id="geoscore-ignores-tau"),
        pytest.param("geoscore", 1000.0, 0.0, 1.0, id="geoscore-at-zero"),
    ],
)
def test_score_distance_other_shapes(shape, tau_km, distance_km, expected):
    assert score_distance(distance_km, shape, tau_km) == pytest.approx(expected)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        pytest.param({"distance_km": -1.0}, ">= 0", id="negative-distance"),
        pytest.param({"distance_km": 1.0, "shape": "linear"}, "piecewise", id="unknown-shape"),
        pytest.param({"distance_km": 1.0, "shape": "exp", "tau_km": 0.0}, "positive",
                     id="zero-tau"),
    ],
)
def test_score_distance_rejects(kwargs, message):
    with pytest.raises(ValueError, match=message):
        score_distance(**kwargs)


def test_distance_is_monotone_in_km():
    for shape in ("piecewise", "exp", "geoscore"):
        scores = [score_distance(d, shape) for d in range(0, 20001, 250)]
        assert scores == sorted(scores, reverse=True)


# ---------------------------------------------------------------- format

LOOP = THINK[:-10] + " It is Paris." * 40 + "\n</think>\n"


@pytest.mark.parametrize(
    "text, require_think, degenerate_penalty, expected",
    [
        pytest.param(completion(), True, True, 1.0, id="good"),
        pytest.param(build_answer(PARIS, *PARIS_LL), True, True, 0.0, id="missing-think"),
        pytest.param(build_answer(PARIS, *PARIS_LL), False, True, 1.0,
                     id="missing-think-allowed"),
        pytest.param("<think> </think>" + build_answer(PARIS, *PARIS_LL), True, True, 0.0,
                     id="empty-think-is-no-reasoning"),
        pytest.param(completion() + build_answer(PARIS, *PARIS_LL), True, True, 0.0,
                     id="two-answers"),
        pytest.param(completion()[:-20], True, True, 0.0, id="truncated"),
        pytest.param("", True, True, 0.0, id="empty"),
        pytest.param(THINK + build_answer(PARIS, *PARIS_LL).replace("48.8566", "98.8566"),
                     True, True, 0.0, id="latitude-out-of-range"),
        pytest.param(LOOP + build_answer(PARIS, *PARIS_LL), True, True, 0.0, id="degenerate-loop"),
        pytest.param(LOOP + build_answer(PARIS, *PARIS_LL), True, False, 1.0,
                     id="degenerate-loop-penalty-off"),
        pytest.param(build_sft_target(Place(), *PARIS_LL), True, True, 1.0,
                     id="unknown-levels-are-well-formed"),
    ],
)
def test_score_format(text, require_think, degenerate_penalty, expected):
    assert score_format(text, require_think, degenerate_penalty) == expected
    assert score_format(parse_answer(text), require_think, degenerate_penalty) == expected


# ---------------------------------------------------------------- hierarchy

WEIGHTS = {"continent": 0.1, "country": 0.3, "region": 0.3, "city": 0.3}


@pytest.mark.parametrize(
    "parsed, truth, expected",
    [
        pytest.param(names("Europe", "France", "Île-de-France", "Paris"), PARIS, 1.0, id="all-right"),
        pytest.param(names("Europe", "France", "Normandy", "Rouen"), PARIS, 0.4,
                     id="continent-and-country"),
        pytest.param(names("Europe", "Germany", "Bavaria", "Munich"), PARIS, 0.1, id="continent-only"),
        pytest.param(names("Africa", "Niger", "Lagos", "Lagos"), LAGOS, 0.1,
                     id="niger-is-not-nigeria-and-gates-region-and-city"),
        pytest.param(names("Africa", "Nigeria", "Niamey", "Niamey"), NIAMEY, 0.1,
                     id="nigeria-is-not-niger"),
        pytest.param(names("North America", "USA", "New York", "New York"), NYC, 1.0,
                     id="usa-alias-and-city-suffix"),
        pytest.param(names("North America", "U.S.A.", "NY", "NYC"), NYC, 0.7,
                     id="dotted-usa-and-state-code"),
        pytest.param(names("North America", "United States of America", None, None), NYC, 0.4,
                     id="official-name-unknown-lower-levels"),
        pytest.param(names(None, "US", None, None), NYC, 0.3, id="iso-code-as-country"),
        pytest.param(names("Europe", "France", "Île-de-France", "Paris"),
                     {"continent": "Europe", "country": "France", "country_code": "FR",
                      "region": None, "city": "Paris"}, 1.0, id="unknown-true-region-left-out"),
        pytest.param(names("Europe", "Spain", None, None),
                     {"continent": "Europe", "country": "France"}, 0.1 / 0.4,
                     id="dict-truth-without-lower-levels"),
        pytest.param(names(None, None, None, None), PARIS, 0.0, id="all-unknown-prediction"),
        pytest.param(names("Americas", "France", None, None), PARIS, 0.3,
                     id="hedged-continent-earns-nothing"),
    ],
)
def test_score_hierarchy(parsed, truth, expected):
    assert score_hierarchy(parsed, truth, WEIGHTS) == pytest.approx(expected)


def test_score_hierarchy_none_when_truth_unknown():
    assert score_hierarchy(names("Europe", "France"), Place(), WEIGHTS) is None
    assert score_hierarchy(names("Europe"), {"city": "Paris"}, {"continent": 1.0}) is None


@pytest.mark.parametrize(
    "weights, message",
    [
        pytest.param({"planet": 1.0}, "planet", id="unknown-level"),
        pytest.param({"city": -1.0}, "city", id="negative-weight"),
        pytest.param({"city": 0.0}, "zero", id="all-zero"),
    ],
)
def test_hierarchy_weights_are_checked(weights, message):
    with pytest.raises(ValueError, match=message):
        HierarchyReward(weights)


# ---------------------------------------------------------------- consistency


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param(completion(), 1.0, id="paris-in-france"),
        pytest.param(completion(Place("Europe", "Germany", None, None, "Paris")), 0.0,
                     id="paris-coordinates-said-to-be-germany"),
        pytest.param(completion(Place("Europe", "USA", None, None, None), (40.7128, -74.0060)), 1.0,
                     id="alias-matches-gazetteer-country"),
        pytest.param(completion(Place(None, "Niger")), 0.0, id="niger-named-at-paris"),
        pytest.param(completion(Place("Europe", None, None, None, None)), 0.0,
                     id="no-country-named"),
        pytest.param(completion(Place(None, "France"), (0.0, -140.0)), 0.0,
                     id="open-ocean-is-in-no-country"),
        pytest.param("no answer", 0.0, id="nothing-parsed"),
    ],
)
def test_score_consistency(text, expected):
    assert score_consistency(parse_answer(text)) == expected
    assert consistency_reward([text]) == [expected]


# ---------------------------------------------------------------- adapters

EXTRA_KWARGS = {"prompts": ["p"], "completion_ids": [[1, 2]], "trainer_state": object(),
                "log_metric": print, "log_extra": print, "image": ["img"], "id": ["x"]}


def test_adapters_on_one_good_completion():
    text = completion()
    cols = truth_columns([(PARIS, (48.86, 2.35))])
    expected_km = haversine_km(*PARIS_LL, 48.86, 2.35)
    assert distance_reward([text], **cols) == [pytest.approx(score_distance(expected_km))]
    assert format_reward([text], **cols) == [1.0]
    assert hierarchy_reward([text], **cols) == [1.0]
    assert consistency_reward([text], **cols) == [1.0]
    assert geo_reward([text], **cols) == distance_reward([text], **cols)


def test_geo_reward_is_distance_times_format():
    texts = [completion(), build_answer(PARIS, *PARIS_LL), "", completion(latlon=SYDNEY_LL)]
    cols = truth_columns([(PARIS, PARIS_LL)] * len(texts))
    distance, form = distance_reward(texts, **cols), format_reward(texts, **cols)
    assert geo_reward(texts, **cols) == [d * f for d, f in zip(distance, form)]
    assert distance[1] == 1.0 and form[1] == 0.0  # right place, missing think: product is 0


def test_message_list_and_string_completions_score_the_same():
    text = completion()
    cols = truth_columns([(PARIS, PARIS_LL)] * 3)
    batch = [text, [{"role": "assistant", "content": text}],
             [{"role": "assistant", "content": [{"type": "text", "text": text}]}]]
    for reward in ALL_REWARDS:
        scores = reward(batch, **cols)
        assert scores[0] is not None and scores == [scores[0]] * 3, reward.__name__


def test_batch_repeating_each_sample_g_times_stays_aligned():
    """Two prompts (Paris, Sydney) x G=3: each completion is scored against its own row."""
    group = 3
    rows = [(PARIS, PARIS_LL)] * group + [(SYDNEY, SYDNEY_LL)] * group
    right = [completion(PARIS, PARIS_LL)] * group + [completion(SYDNEY, SYDNEY_LL)] * group
    crossed = [completion(SYDNEY, SYDNEY_LL)] * group + [completion(PARIS, PARIS_LL)] * group
    cols = truth_columns(rows)
    for reward in (distance_reward, hierarchy_reward, geo_reward):
        assert reward(right, **cols) == pytest.approx([1.0] * 6), reward.__name__
        assert all(s < 0.1 for s in reward(crossed, **cols)), reward.__name__


@pytest.mark.parametrize(
    "lat, lon",
    [
        pytest.param(None, None, id="none"),
        pytest.param(float("nan"), 2.35, id="nan-latitude"),
        pytest.param(48.85, "n/a", id="not-a-number"),
        pytest.param(148.85, 2.35, id="out-of-range-logged"),
    ],
)
def test_missing_truth_gives_none_bad_prediction_gives_zero(lat, lon):
    cols = {"lat": [lat, 48.85], "lon": [lon, 2.35], **EXTRA_KWARGS}
    texts = [completion(), "garbage"]
    assert distance_reward(texts, **cols) == [None, 0.0]
    assert geo_reward(texts, **cols) == [None, 0.0]
    assert format_reward(texts, **cols) == [1.0, 0.0]  # needs no truth
    assert consistency_reward(texts, **cols) == [1.0, 0.0]  # needs no truth


def test_hierarchy_none_when_no_level_known_and_labels_from_gazetteer_when_absent():
    texts = [completion(), completion()]
    given = {"lat": [48.85, 48.85], "lon": [2.35, 2.35], "continent": [None, "Europe"],
             "country": [None, "France"], "region": [None, None], "city": [None, "Paris"]}
    assert hierarchy_reward(texts, **given) == [None, 1.0]
    derived = {"lat": [48.8566, None], "lon": [2.3522, None]}  # no label columns at all
    assert hierarchy_reward(texts, **derived) == [1.0, None]


@pytest.mark.parametrize(
    "columns, message",
    [
        pytest.param({}, "'lat' and 'lon'", id="no-coordinate-columns"),
        pytest.param({"lat": [1.0], "lon": [1.0, 2.0]}, "column 'lat' has 1", id="short-column"),
    ],
)
def test_bad_columns_are_clear_errors(columns, message):
    with pytest.raises(ValueError, match=message):
        distance_reward([completion(), completion()], **columns)


def test_each_completion_is_parsed_once_per_batch_across_rewards():
    texts = [completion(latlon=(10.0 + i, 20.0)) for i in range(7)]
    cols = truth_columns([(PARIS, PARIS_LL)] * len(texts))
    parsing._parse_text.cache_clear()
    for reward in ALL_REWARDS:
        reward(texts, **cols)
    info = parsing._parse_text.cache_info()
    assert info.misses == len(texts)
    assert info.hits == len(texts) * (len(ALL_REWARDS) - 1)


@pytest.mark.parametrize("reward", ALL_REWARDS, ids=lambda r: r.__name__)
def test_adapters_have_stable_names_and_pickle(reward):
    assert reward.__name__.endswith("_reward")
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.__name__ == reward.__name__
    texts = [completion(), "junk"]
    cols = truth_columns([(PARIS, PARIS_LL)] * 2)
    assert clone(texts, **cols) == reward(texts, **cols)


@pytest.mark.slow
def test_trl_logs_rewards_under_our_names():
    utils = pytest.importorskip("trl.trainer.utils")
    funcs, _ = build_reward_functions(reward_cfg(names=list(REWARD_REGISTRY), weights=[1.0] * 5,
                                                 combine="sum"))
    assert [utils.get_callable_name(f) for f in funcs] == [
        "distance_reward", "format_reward", "hierarchy_reward", "consistency_reward", "geo_reward"]
    assert not any(utils.is_async_callable(f) for f in funcs)


# ---------------------------------------------------------------- registry


def reward_cfg(**overrides):
    from geo_r_lite.config import RewardConfig

    cfg = RewardConfig()
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


@pytest.mark.parametrize(
    "overrides, names, weights",
    [
        pytest.param({}, ["geo_reward", "distance_reward", "format_reward", "hierarchy_reward"],
                     [1.0, 0.0, 0.0, 0.5], id="default-product-logs-factors"),
        pytest.param({"combine": "sum"}, ["distance_reward", "format_reward", "hierarchy_reward"],
                     [1.0, 1.0, 0.5], id="sum-uses-trl-weights"),
        pytest.param({"names": ["distance", "format", "consistency"], "weights": [1.0, 1.0, 0.2]},
                     ["geo_reward", "distance_reward", "format_reward", "consistency_reward"],
                     [1.0, 0.0, 0.0, 0.2], id="product-plus-consistency"),
        pytest.param({"names": ["geo", "hierarchy"], "weights": [1.0, 0.5]},
                     ["geo_reward", "hierarchy_reward"], [1.0, 0.5],
                     id="product-with-geo-listed-not-doubled"),
        pytest.param({"names": ["geo", "hierarchy"], "weights": [2.0, 0.5], "combine": "sum"},
                     ["geo_reward", "hierarchy_reward"], [2.0, 0.5], id="sum-with-explicit-geo"),
    ],
)
def test_build_reward_functions(overrides, names, weights):
    funcs, out_weights = build_reward_functions(reward_cfg(**overrides))
    assert [f.__name__ for f in funcs] == names
    assert out_weights == weights


def test_registry_passes_config_parameters():
    cfg = SimpleNamespace(names=["distance", "format", "hierarchy"], weights=[1.0, 1.0, 1.0],
                          combine="sum", distance_shape="exp", distance_tau_km=300.0,
                          hierarchy_weights={"country": 1.0}, require_think=False,
                          degenerate_penalty=False)
    distance, form, hierarchy = build_reward_functions(cfg)[0]
    assert isinstance(distance, DistanceReward) and (distance.shape, distance.tau_km) == ("exp", 300.0)
    assert isinstance(form, FormatReward) and not form.require_think and not form.degenerate_penalty
    assert hierarchy.weights == {"country": 1.0}


@pytest.mark.parametrize(
    "overrides, message",
    [
        pytest.param({"names": ["distance", "vibes"], "weights": [1.0, 1.0]},
                     r"vibes.*valid: distance, format", id="unknown-name-lists-valid"),
        pytest.param({"weights": [1.0, 1.0]}, "2 values for 3", id="weights-not-parallel"),
        pytest.param({"names": ["format", "format"], "weights": [1.0, 1.0]}, "twice",
                     id="duplicate-name"),
        pytest.param({"combine": "max"}, "product, sum", id="unknown-combine"),
        pytest.param({"distance_shape": "cubic"}, "piecewise, exp, geoscore", id="unknown-shape"),
    ],
)
def test_build_reward_functions_rejects(overrides, message):
    with pytest.raises(ValueError, match=message):
        build_reward_functions(reward_cfg(**overrides))


def test_registry_is_reachable_from_rewards_module():
    from geo_r_lite import rewards

    assert rewards.build_reward_functions is build_reward_functions
    assert rewards.REWARD_REGISTRY is REWARD_REGISTRY
