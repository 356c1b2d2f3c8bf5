"""GRPO rewards for Chain-of-Region answers: pure per-sample scorers and TRL batch adapters.

Every reward reads the completion through ``geo_r_lite.parsing.parse_answer`` (the evaluation
parser, cached by text, so a batch is parsed once however many rewards run). Adapters have TRL's
signature ``f(completions, **columns) -> list[float | None]``; the ground truth comes from the
dataset columns ``lat``, ``lon`` (degrees) and ``continent``, ``country``, ``country_code``,
``region``, ``city``, one entry per completion (a prompt sampled G times appears G times). Any
other keyword (``prompts``, ``completion_ids``, ``trainer_state``, ``image``, ...) is ignored.

Values are in [0, 1]. ``None`` (TRL skips it) only when the ground truth a reward needs is
missing; a missing, malformed or out-of-range prediction scores 0.0. Content rewards (distance,
hierarchy, consistency) score what the lenient parser recovers, exactly as the metrics do; the
format reward (and its factor in ``geo_reward``) is what punishes a malformed answer.

Ground truth is read from the columns by ``geo_r_lite.reward_truth``; the registry that maps YAML
names to these adapters is ``geo_r_lite.reward_registry``.
"""

from __future__ import annotations

import math

import numpy as np

from geo_r_lite.geo import haversine_km, lookup_many
from geo_r_lite.parsing import ParsedAnswer, parse_answer, parse_many
from geo_r_lite.places import match_city, match_continent, match_country, match_region
from geo_r_lite.reward_truth import TRUTH_COLUMNS, place_label, true_latlons, true_place_fields

# Geo-R's piecewise-linear distance reward: (distance km, reward) knots, linear in between.
PIECEWISE_KNOTS_KM = ((0.0, 1.0), (750.0, 0.5), (2500.0, 0.2), (20000.0, 0.0))
# GeoGuessr's score 5000 * exp(-d / 1492.7 km) (the OSV-5M "GeoScore"), divided by 5000.
GEOSCORE_SCALE_KM = 1492.7
DISTANCE_SHAPES = ("piecewise", "exp", "geoscore")
LEVELS = ("continent", "country", "region", "city")
DEFAULT_HIERARCHY_WEIGHTS = {"continent": 0.1, "country": 0.3, "region": 0.3, "city": 0.3}

_UNSCORED = object()  # memo sentinel: a score may be None
_KNOT_KM = np.array([k for k, _ in PIECEWISE_KNOTS_KM])
_KNOT_REWARD = np.array([r for _, r in PIECEWISE_KNOTS_KM])


def check_distance_shape(shape: str, tau_km: float) -> None:
    """ValueError unless ``shape`` is one of ``DISTANCE_SHAPES`` and ``tau_km`` is positive."""
    if shape not in DISTANCE_SHAPES:
        raise ValueError(f"unknown distance shape {shape!r}; valid: {', '.join(DISTANCE_SHAPES)}")
    if not (isinstance(tau_km, (int, float)) and math.isfinite(tau_km) and tau_km > 0):
        raise ValueError(f"distance_tau_km must be a positive number of km, got {tau_km!r}")


def _distance_scores(distance_km: np.ndarray, shape: str, tau_km: float) -> np.ndarray:
    """Vectorised ``score_distance`` for finite, non-negative distances (km)."""
    if shape == "piecewise":
        return np.interp(distance_km, _KNOT_KM, _KNOT_REWARD)  # 0 beyond the last knot
    scale = tau_km if shape == "exp" else GEOSCORE_SCALE_KM
    return np.exp(-distance_km / scale)


def score_distance(distance_km: float | None, shape: str = "piecewise",
                   tau_km: float = 1000.0) -> float:
    """Reward in [0, 1] for a great-circle error of ``distance_km`` (km, >= 0).

    ``piecewise`` (default, Geo-R): 1 at 0 km, 0.5 at 750, 0.2 at 2500, 0 at 20000, linear between.
    ``exp``: exp(-d / tau_km). ``geoscore``: exp(-d / 1492.7 km), GeoGuessr's score / 5000.
    ``None`` or NaN (no usable prediction) gives 0.0; a negative distance is a ValueError.
    """
    check_distance_shape(shape, tau_km)
    if distance_km is None or math.isnan(distance_km):
        return 0.0
    if distance_km < 0:
        raise ValueError(f"distance_km must be >= 0, got {distance_km}")
    return float(_distance_scores(np.float64(distance_km), shape, tau_km))


def score_format(parsed_or_text, require_think: bool = True,
                 degenerate_penalty: bool = True) -> float:
    """1.0 for one well-formed answer (``ParsedAnswer.format_ok``), else 0.0.

    ``require_think``: also needs a non-empty ``<think>`` block before the answer.
    ``degenerate_penalty``: 0.0 for looping or garbage output (``degenerate.is_degenerate``).
    Accepts a ``ParsedAnswer``, a string or a TRL message list.
    """
    parsed = parsed_or_text if isinstance(parsed_or_text, ParsedAnswer) else parse_answer(
        parsed_or_text)
    if not parsed.format_ok:
        return 0.0
    if require_think and not parsed.think:
        return 0.0
    if degenerate_penalty and parsed.degenerate:
        return 0.0
    return 1.0


def check_hierarchy_weights(weights: dict) -> None:
    """ValueError unless ``weights`` maps some of ``LEVELS`` to finite non-negative floats."""
    unknown = set(weights) - set(LEVELS)
    if unknown:
        raise ValueError(f"unknown hierarchy level(s) {sorted(unknown)}; "
                         f"valid: {', '.join(LEVELS)}")
    for level, weight in weights.items():
        if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
            raise ValueError(f"hierarchy weight for {level!r} must be a number >= 0, "
                             f"got {weight!r}")
    if not any(weights.values()):
        raise ValueError("hierarchy weights are all zero")


def score_hierarchy(parsed: ParsedAnswer, truth, weights: dict) -> float | None:
    """Weighted share in [0, 1] of the place levels the answer names correctly.

    ``truth`` is a ``Place`` or a dict with ``continent``, ``country``, ``country_code``,
    ``region``, ``city`` (None or missing = unknown). Matching is the geography layer's
    (``geo_r_lite.places``: whole names, aliases). Gated down the chain: region and city count
    only when the country is right. Levels whose truth is unknown are left out and the weights of
    the others renormalised; ``None`` when no level with a positive weight is known.
    """
    get = truth.get if isinstance(truth, dict) else (lambda name: getattr(truth, name, None))
    return _score_levels(parsed, tuple(place_label(get(name)) for name in TRUTH_COLUMNS), weights)


def _score_levels(parsed: ParsedAnswer, truth: tuple, weights: dict) -> float | None:
    """``score_hierarchy`` for truth labels already read (``true_place_fields`` order)."""
    continent, country, code, region, city = truth
    known = {"continent": continent is not None, "country": country is not None or code is not None,
             "region": region is not None, "city": city is not None}
    total = sum(w for level, w in weights.items() if known[level])
    if total <= 0:
        return None
    country_ok = known["country"] and match_country(parsed.country, country, code)
    matched = {
        "continent": known["continent"] and match_continent(parsed.continent, continent),
        "country": country_ok,
        "region": country_ok and known["region"] and match_region(parsed.region, region, code),
        "city": country_ok and known["city"] and match_city(parsed.city, city),
    }
    return sum(w for level, w in weights.items() if matched[level]) / total


def score_consistency(parsed: ParsedAnswer, place=None) -> float:
    """1.0 when the predicted coordinates fall in the predicted country (offline gazetteer), else 0.

    ``place`` is the gazetteer Place at the predicted coordinates when the caller has it (the
    batch adapter looks a whole batch up at once); otherwise it is looked up here.
    """
    if parsed.lat is None or parsed.lon is None or parsed.country is None:
        return 0.0
    if place is None:
        place = lookup_many([parsed.lat], [parsed.lon])[0]
    return float(match_country(parsed.country, place.country, place.country_code))


# ---------------------------------------------------------------- TRL adapters


def _distances_km(parsed: list[ParsedAnswer], truths: list) -> list[float | None]:
    """Great-circle km per completion: NaN without a predicted point, None without truth."""
    rows = [i for i, (p, t) in enumerate(zip(parsed, truths))
            if t is not None and p.lat is not None]
    out: list[float | None] = [None if t is None else math.nan for t in truths]
    if rows:
        km = haversine_km(np.array([parsed[i].lat for i in rows]),
                          np.array([parsed[i].lon for i in rows]),
                          np.array([truths[i][0] for i in rows]),
                          np.array([truths[i][1] for i in rows]))
        for i, d in zip(rows, np.atleast_1d(km).tolist()):
            out[i] = d
    return out


class _Reward:
    """Base of the adapters: a picklable callable with a stable ``__name__`` for TRL's logs."""

    name = "reward"

    def __init__(self) -> None:
        self.__name__ = self.name

    def __call__(self, completions, **columns) -> list[float | None]:
        return self.score_batch(parse_many(completions), columns)

    def score_batch(self, parsed: list[ParsedAnswer], columns: dict) -> list[float | None]:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "__name__")
        return f"{self.name}({params})"


class DistanceReward(_Reward):
    """``score_distance`` of the haversine error; None without true coordinates."""

    name = "distance_reward"

    def __init__(self, shape: str = "piecewise", tau_km: float = 1000.0) -> None:
        super().__init__()
        check_distance_shape(shape, tau_km)
        self.shape, self.tau_km = shape, tau_km

    def score_batch(self, parsed, columns):
        distances = _distances_km(parsed, true_latlons(columns, len(parsed), self.name))
        finite = np.array([d for d in distances if d is not None and not math.isnan(d)])
        scores = iter(_distance_scores(finite, self.shape, self.tau_km).tolist())
        return [None if d is None else (0.0 if math.isnan(d) else next(scores)) for d in distances]


class FormatReward(_Reward):
    """``score_format`` per completion (1.0 or 0.0); needs no ground truth."""

    name = "format_reward"

    def __init__(self, require_think: bool = True, degenerate_penalty: bool = True) -> None:
        super().__init__()
        self.require_think, self.degenerate_penalty = require_think, degenerate_penalty

    def score_batch(self, parsed, columns):
        return [score_format(p, self.require_think, self.degenerate_penalty) for p in parsed]


class GeoReward(_Reward):
    """Geo-R's training signal: distance reward x format reward; None without true coordinates."""

    name = "geo_reward"

    def __init__(self, shape: str = "piecewise", tau_km: float = 1000.0,
                 require_think: bool = True, degenerate_penalty: bool = True) -> None:
        super().__init__()
        self.distance = DistanceReward(shape, tau_km)
        self.format = FormatReward(require_think, degenerate_penalty)

    def score_batch(self, parsed, columns):
        distance = self.distance.score_batch(parsed, columns)
        form = self.format.score_batch(parsed, columns)
        return [None if d is None else d * f for d, f in zip(distance, form)]


class HierarchyReward(_Reward):
    """``score_hierarchy`` against the true place labels; None when no level is known."""

    name = "hierarchy_reward"

    def __init__(self, weights: dict | None = None) -> None:
        super().__init__()
        self.weights = dict(DEFAULT_HIERARCHY_WEIGHTS if weights is None else weights)
        check_hierarchy_weights(self.weights)

    def score_batch(self, parsed, columns):
        # The G completions of a prompt share its truth and often name the same places: score
        # each distinct (answer names, truth) pair of the batch once.
        scores, memo = [], {}
        for p, truth in zip(parsed, true_place_fields(columns, len(parsed), self.name)):
            if truth is None:
                scores.append(None)
                continue
            key = (p.continent, p.country, p.region, p.city, truth)
            score = memo.get(key, _UNSCORED)
            if score is _UNSCORED:
                score = memo[key] = _score_levels(p, truth, self.weights)
            scores.append(score)
        return scores


class ConsistencyReward(_Reward):
    """``score_consistency``: predicted point inside the predicted country; needs no ground truth."""

    name = "consistency_reward"

    def score_batch(self, parsed, columns):
        rows = [i for i, p in enumerate(parsed)
                if p.lat is not None and p.lon is not None and p.country is not None]
        places = (lookup_many([parsed[i].lat for i in rows], [parsed[i].lon for i in rows])
                  if rows else [])
        scores = [0.0] * len(parsed)
        for i, place in zip(rows, places):
            scores[i] = score_consistency(parsed[i], place)
        return scores


distance_reward = DistanceReward()
format_reward = FormatReward()
hierarchy_reward = HierarchyReward()
consistency_reward = ConsistencyReward()
geo_reward = GeoReward()


def __getattr__(name: str):
    # The registry lives in reward_registry (it imports this module); re-exported lazily so that
    # ``from geo_r_lite.rewards import build_reward_functions`` works without an import cycle.
    if name in ("REWARD_REGISTRY", "build_reward_functions"):
        from geo_r_lite import reward_registry

        return getattr(reward_registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
