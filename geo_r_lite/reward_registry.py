"""YAML reward names -> TRL reward functions and weights, from the ``reward`` config section.

The names appear verbatim in the YAML (``reward.names: [distance, format, hierarchy]``) with a
parallel list of weights. ``build_reward_functions(cfg)`` returns what ``GRPOTrainer`` takes as
``reward_funcs`` and ``GRPOConfig.reward_weights``. TRL computes and logs every function by its
``__name__`` and then sums them with the weights, so a weight of 0.0 means "log only".

``combine``:

- ``"sum"``: the listed rewards with their weights (TRL's weighted sum).
- ``"product"`` (Geo-R): the training signal is ``geo_reward`` = distance x format with weight 1;
  listed ``hierarchy``/``consistency`` add with their weights; ``distance`` and ``format`` are
  still returned, with weight 0.0, so that both factors are logged on their own.
"""

from __future__ import annotations

import logging
from typing import Callable

from geo_r_lite.rewards import (
    ConsistencyReward,
    DistanceReward,
    FormatReward,
    GeoReward,
    HierarchyReward,
)

logger = logging.getLogger(__name__)

COMBINE_MODES = ("product", "sum")
# The factors of geo_reward: in product mode they are logged, not added.
PRODUCT_FACTORS = ("distance", "format", "geo")


def _geo(cfg) -> GeoReward:
    return GeoReward(cfg.distance_shape, cfg.distance_tau_km, cfg.require_think,
                     cfg.degenerate_penalty)


REWARD_REGISTRY: dict[str, Callable] = {
    "distance": lambda cfg: DistanceReward(cfg.distance_shape, cfg.distance_tau_km),
    "format": lambda cfg: FormatReward(cfg.require_think, cfg.degenerate_penalty),
    "hierarchy": lambda cfg: HierarchyReward(cfg.hierarchy_weights),
    "consistency": lambda cfg: ConsistencyReward(),
    "geo": _geo,
}


def build_reward_functions(cfg) -> tuple[list[Callable], list[float]]:
    """(reward functions, weights) for TRL from a reward config (duck-typed ``RewardConfig``).

    Reads ``names``, ``weights``, ``combine``, ``distance_shape``, ``distance_tau_km``,
    ``hierarchy_weights``, ``require_think``, ``degenerate_penalty``. ValueError for an unknown
    name or combine mode, duplicate names, or ``weights`` not parallel to ``names``.
    """
    names, weights = list(cfg.names), [float(w) for w in cfg.weights]
    unknown = [n for n in names if n not in REWARD_REGISTRY]
    if unknown:
        raise ValueError(f"unknown reward name(s) {unknown}; valid: {', '.join(REWARD_REGISTRY)}")
    if len(weights) != len(names):
        raise ValueError(f"reward.weights has {len(weights)} values for {len(names)} "
                         f"reward.names {names}; give one weight per name")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"reward name(s) listed twice: {duplicates}")
    if cfg.combine not in COMBINE_MODES:
        raise ValueError(f"unknown reward.combine {cfg.combine!r}; "
                         f"valid: {', '.join(COMBINE_MODES)}")
    if cfg.combine == "sum":
        return [REWARD_REGISTRY[n](cfg) for n in names], weights
    funcs, out_weights = [_geo(cfg)], [1.0]
    for name, weight in zip(names, weights):
        if name == "geo":
            continue  # already the training signal
        funcs.append(REWARD_REGISTRY[name](cfg))
        out_weights.append(0.0 if name in PRODUCT_FACTORS else weight)
    logger.info("rewards (product): %s", ", ".join(
        f"{f.__name__}x{w:g}" for f, w in zip(funcs, out_weights)))
    return funcs, out_weights
