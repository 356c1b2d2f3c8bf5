"""Weighted reservoir sampling over a stream (Efraimidis & Spirakis A-ExpJ, keys kept as logs).

Item ``i`` with weight ``w_i > 0`` gets the key ``u_i ** (1 / w_i)`` (``u_i`` uniform); the
reservoir keeps the ``capacity`` largest keys, which is weighted sampling without replacement
(with capacity 1, item ``i`` is kept with probability ``w_i / sum(w)``). A-ExpJ draws how much
weight to skip before the next insertion, so random numbers are drawn only for items that enter:
a pass costs one subtraction per item. Keys are stored as ``log(u) / w`` so that tiny weights never
underflow to a key of 0. Pure Python; the state (RNG included) is plain JSON-safe values.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Sequence
from typing import Any

_TINY = 5e-324  # smallest positive float: keeps log() defined if exp() underflowed to 0


class WeightedReservoir:
    """At most ``capacity`` items, seeded; ``offer(item, weight)`` in stream order."""

    def __init__(self, capacity: int, seed: int = 0):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an int >= 1, got {capacity!r}")
        self.capacity = capacity
        self.rng = random.Random(seed)
        self.heap: list[tuple[float, int, Any]] = []  # min-heap of (log key, arrival, item)
        self.arrivals = 0  # items offered so far; also each item's tie-breaker
        self.skip = math.inf  # weight still to pass before the next insertion (when full)
        self.inserted = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self.heap)

    def items(self) -> list[Any]:
        """The kept items in arrival order (deterministic for a seed and a stream)."""
        return [item for _, _, item in sorted(self.heap, key=lambda entry: entry[1])]

    def offer(self, item: Any, weight: float) -> bool:
        """Offer the next stream item with ``weight`` > 0; True if it is kept now."""
        arrival = self.arrivals
        self.arrivals += 1
        heap, rng = self.heap, self.rng
        if len(heap) < self.capacity:
            # log(u) / w with u in (0, 1]: the log of the A-Res key u ** (1 / w).
            heapq.heappush(heap, (math.log(1.0 - rng.random()) / weight, arrival, item))
            self.inserted += 1
            if len(heap) == self.capacity:
                self._draw_skip()
            return True
        self.skip -= weight
        if self.skip > 0:
            return False
        # The new key is drawn conditioned on beating the threshold T: u in [T ** w, 1).
        floor = math.exp(weight * heap[0][0])
        u = floor + (1.0 - floor) * rng.random()
        heapq.heapreplace(heap, (math.log(max(u, _TINY)) / weight, arrival, item))
        self.inserted += 1
        self.evicted += 1
        self._draw_skip()
        return True

    def _draw_skip(self) -> None:
        threshold = self.heap[0][0]  # log of the smallest key, <= 0
        self.skip = math.log(1.0 - self.rng.random()) / threshold if threshold < 0 else math.inf

    def remove(self, gone: Sequence[bool]) -> int:
        """Drop the items flagged in ``gone`` (aligned with ``heap``); returns how many. Later
        offers refill the free places directly, then sampling resumes."""
        kept = [entry for entry, drop in zip(self.heap, gone) if not drop]
        removed = len(self.heap) - len(kept)
        if removed:
            heapq.heapify(kept)
            self.heap = kept
        return removed

    def state_dict(self, encode: Callable[[Any], Any]) -> dict[str, Any]:
        """Plain-value state; ``encode`` turns an item into JSON-safe values."""
        version, internal, gauss = self.rng.getstate()
        return {"capacity": self.capacity, "rng": [version, list(internal), gauss],
                "heap": [[key, arrival, encode(item)] for key, arrival, item in self.heap],
                "arrivals": self.arrivals, "skip": self.skip, "inserted": self.inserted,
                "evicted": self.evicted}

    def load_state_dict(self, state: dict[str, Any], decode: Callable[[Any], Any]) -> None:
        """Restore ``state_dict`` output exactly (the heap order and the RNG included)."""
        self.capacity = state["capacity"]
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.heap = [(key, arrival, decode(item)) for key, arrival, item in state["heap"]]
        self.arrivals, self.skip = state["arrivals"], state["skip"]
        self.inserted, self.evicted = state["inserted"], state["evicted"]
