"""Feeding TRL's trainers from the diversity sampler: map-style datasets and the reward feedback.

Why map-style: GRPOTrainer's ``RepeatSampler`` repeats each dataset *index* G times in a row, so
the G completions of a group come from one row only if ``dataset[i]`` is the same row each time
it is read. A streamed ``IterableDataset`` gives no such guarantee. Here the dataset is a
``datasets.Dataset`` of pool *slots* (0..n-1) whose rows are built on access (``with_transform``)
from a ``SamplerPool``: a snapshot of the sampler's selection, refreshed between optimizer steps
(never inside a batch fetch), with a per-snapshot row cache so the G reads of one slot return the
same record (and decode its image once).

Rows carry ``prompt`` (the conversational Chain-of-Region prompt), ``image`` (PIL, resized to the
model's pixel budget) and the truth columns the rewards read: ``id``, ``lat``, ``lon`` (degrees),
``continent``, ``country``, ``country_code``, ``region``, ``city``. A record whose image cannot be
loaded is counted in ``SkipStats`` by reason, left out of later snapshots, and its slot falls
through to the next record of the pool (``data.strict`` turns it into an error).

``RewardFeedback`` wraps the reward functions (keeping their ``__name__`` for TRL's logs): once
every component has scored a batch, it checks that each run of G completions shares one sample
id, reports the group's total rewards to ``sampler.report_rewards`` (a saturated sample becomes a
hotspot and leaves the pool), logs the parse-failure rate and pool figures through TRL's
``log_metric``, and keeps the latest groups for the sample-completion log.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

from .images import PIXEL_STEP, ImageError, load_image
from .model import world_size
from .parsing import completion_text, parse_answer
from .prompts import build_prompt, build_sft_target
from .records import DataError, GeoRecord, SkipStats

logger = logging.getLogger(__name__)

TRUTH_COLUMNS = ("id", "lat", "lon", "continent", "country", "country_code", "region", "city")
_SAMPLE_GROUPS_KEPT = 2  # groups of completions kept for the periodic sample log


def grpo_row(record: GeoRecord, image) -> dict[str, Any]:
    """One GRPO row: a fresh prompt (TRL may edit it in place), the image and the truth columns."""
    return {"prompt": build_prompt(), "image": image, **record.to_row()}


def sft_row(record: GeoRecord, image) -> dict[str, Any]:
    """One SFT row: prompt + Chain-of-Region target from the record's reverse-geocoded labels."""
    target = build_sft_target(record.to_row(), record.lat, record.lon)
    completion = [{"role": "assistant", "content": [{"type": "text", "text": target}]}]
    return {"prompt": build_prompt(), "completion": completion, "image": image, "id": record.id}


class SamplerPool:
    """Snapshot of a record selection with image loading, bad-image skipping and a row cache.

    ``source`` is a DiversitySampler (anything with ``items()``) or a plain list of records.
    ``row_fn(record, image) -> dict`` builds a row; ``min_pixels``/``max_pixels`` is the image
    budget (pixels, as in ``model``) and ``step`` the side multiple (``model.pixel_step``). ``cache=False`` decodes on every read (for SFT, which reads a
    row once per epoch: a cache would end up holding every image).
    """

    def __init__(self, source, *, min_pixels: int, max_pixels: int, stats: SkipStats,
                 row_fn: Callable[[GeoRecord, Any], dict] = grpo_row, cache: bool = True,
                 step: int = PIXEL_STEP):
        self.source = source
        self.cache = cache
        self.min_pixels, self.max_pixels, self.step = min_pixels, max_pixels, step
        self.stats = stats
        self.row_fn = row_fn
        self.bad_ids: set[str] = set()
        self.refreshes = 0
        self.refresh()

    def _items(self) -> list[GeoRecord]:
        items = self.source.items() if hasattr(self.source, "items") else self.source
        return [r for r in items if r.id not in self.bad_ids]

    def refresh(self) -> None:
        """Take a new snapshot of the selection; call only between batch fetches (step ends).

        When hotspots have taken every record (the model solves all the data it was given), the
        last snapshot stays: training goes on with it, said once, instead of stopping mid-run.
        """
        records = self._items()
        if not records and getattr(self, "records", None):
            if not self.kept_solved:
                logger.warning("every pooled record is now solved (a hotspot); training goes on with the last %d "
                               "records. For new ones: more data (data.max_samples, sampler.capacity) or a higher "
                               "sampler.saturation_threshold", len(self.records))
            self.kept_solved = True
            records = [r for r in self.records if r.id not in self.bad_ids] or self.records
        self.records = records
        self._rows: dict[int, dict[str, Any]] = {}
        self.refreshes += 1

    kept_solved = False  # the pool ran out of unsolved records and kept its last snapshot

    # The trainer's data loader builds the next batch one step ahead (accelerate fetches a batch
    # in advance), so the batch a checkpoint's next step trains on was built from the snapshot
    # before the last refresh. ``last_built`` is that snapshot; a resumed run first builds one
    # batch from it (``replay``), then goes on with the current selection, as the run it continues.
    last_built: list[GeoRecord] | None = None
    _replay: list[GeoRecord] | None = None
    armed: list[GeoRecord] | None = None  # to replay once training starts (probes before it must not use it)

    def replay(self, records: list[GeoRecord]) -> None:
        """Build the next batch from ``records`` (the saved ``last_built`` of a checkpoint)."""
        self._replay = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def row(self, slot: int) -> dict[str, Any]:
        """The row of ``slot`` (any int >= 0; taken modulo the pool), the same until ``refresh``."""
        row = self._rows.get(slot)
        if row is None:
            row = self._load(slot)
            if self.cache:
                self._rows[slot] = row
        return row

    def _load(self, slot: int) -> dict[str, Any]:
        n = len(self.records)
        for k in range(n):
            record = self.records[(slot + k) % n]
            if record.id in self.bad_ids:
                continue
            try:
                image = load_image(record.image, self.min_pixels, self.max_pixels, self.step)
            except ImageError as err:
                self.bad_ids.add(record.id)
                self.stats.add(err.reason, f"record {record.id}", err.detail)
                continue
            return self.row_fn(record, image)
        raise DataError(
            f"no usable record left in the training pool: all {n} have images that cannot be read "
            f"({len(self.bad_ids)} counted in data_summary.json); check the image files or the data source"
        )

    def rows(self, slots: Sequence[int]) -> dict[str, list]:
        """Column batch for ``datasets.Dataset.with_transform`` (one call per batch fetch)."""
        if self._replay is not None:
            current, self.records = self.records, self._replay
            try:  # uncached: the row cache belongs to the current snapshot
                rows = [self._load(int(s)) for s in slots]
            finally:
                self.last_built, self.records, self._replay = self._replay, current, None
        else:
            rows = [self.row(int(s)) for s in slots]
            self.last_built = self.records
        return {key: [dict_row[key] for dict_row in rows] for key in rows[0]} if rows else {}


def pool_dataset(pool: SamplerPool, length: int | None = None):
    """A map-style ``datasets.Dataset`` of ``length`` slots (default: the pool size) over ``pool``.

    The length stays fixed for the run (TRL's sampler reads it once); slots wrap around the pool
    when it shrinks.
    """
    from datasets import Dataset

    length = len(pool) if length is None else length
    if length <= 0 or not len(pool):
        raise DataError("the training pool is empty: the data source yielded no usable record")
    return Dataset.from_dict({"slot": list(range(length))}).with_transform(lambda batch: pool.rows(batch["slot"]))


def _name(func) -> str:
    return getattr(func, "__name__", None) or type(func).__name__


class _Recorded:
    """One reward function, passed through unchanged, its output handed to the feedback."""

    def __init__(self, func, index: int, feedback: RewardFeedback):
        self.func, self.index, self.feedback = func, index, feedback
        self.__name__ = _name(func)

    def __call__(self, completions, **kwargs):
        scores = self.func(completions=completions, **kwargs)
        self.feedback.collect(self.index, scores, completions, kwargs)
        return scores


class RewardFeedback:
    """Wraps reward functions; feeds each group's total reward back to the sampler.

    ``weights`` are the reward weights TRL applies; the group total reported to the sampler is
    the weighted mean ``sum(w_i r_i) / sum(w_i)`` over the components that scored (in [0, 1]
    when the components are), so ``sampler.saturation_threshold`` keeps its meaning whatever the
    weights. ``sampler`` may be None (no feedback: logging and the alignment check only).

    Under a multi-process launch TRL spreads the G completions of a group over the processes, so
    no process sees whole groups: the group check, the sampler feedback and the sample log are
    then off (logged once); the pool and the rest of training are unaffected.
    """

    def __init__(self, funcs: Sequence, weights: Sequence[float], sampler, num_generations: int):
        if len(funcs) != len(weights):
            raise ValueError(f"{len(funcs)} reward functions but {len(weights)} weights")
        self.weights = [float(w) for w in weights]
        self.sampler = sampler
        self.num_generations = num_generations
        self.funcs = [_Recorded(f, i, self) for i, f in enumerate(funcs)]
        self.names = [f.__name__ for f in self.funcs]
        self._scores: dict[int, list] = {}
        self.recent: list[dict[str, Any]] = []  # the latest groups, for the sample log
        self.groups_reported = 0
        self.hotspots_added = 0
        self.whole_groups = world_size() == 1
        if not self.whole_groups:
            logger.warning("multi-process run: groups are split over processes, so saturated samples are not "
                           "fed back to the sampler (no online hotspots) and no sample completions are logged")

    def collect(self, index: int, scores: list, completions: list, kwargs: dict) -> None:
        self._scores[index] = list(scores)
        if index == len(self.funcs) - 1:
            scores_by_func, self._scores = self._scores, {}
            self._finish(scores_by_func, completions, kwargs)

    def _total(self, scores_by_func: dict[int, list], k: int) -> float | None:
        num = den = 0.0
        for i, w in enumerate(self.weights):
            value = scores_by_func.get(i, [None] * (k + 1))[k]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            num += w * float(value)
            den += w
        return num / den if den else None

    def _finish(self, scores_by_func: dict[int, list], completions: list, kwargs: dict) -> None:
        log_metric = kwargs.get("log_metric")
        parsed = [parse_answer(c) for c in completions]
        if log_metric is not None:
            log_metric("parse_failure_rate", sum(not p.format_ok for p in parsed) / max(1, len(parsed)))
        if self.whole_groups:
            self._feed_back(scores_by_func, completions, parsed, kwargs)

    def _feed_back(self, scores_by_func: dict[int, list], completions: list, parsed: list, kwargs: dict) -> None:
        ids = kwargs.get("id")
        if ids is None:
            raise DataError("reward feedback needs the dataset column 'id' (is remove_unused_columns on?)")
        g = self.num_generations
        if len(ids) % g:
            raise RuntimeError(f"reward batch of {len(ids)} completions is not a whole number of groups of {g}")
        totals = [self._total(scores_by_func, k) for k in range(len(ids))]
        lats, lons = kwargs.get("lat"), kwargs.get("lon")
        groups = []
        for start in range(0, len(ids), g):
            group_ids = set(ids[start:start + g])
            if len(group_ids) != 1:
                raise RuntimeError(f"a group of {g} completions mixes samples {sorted(group_ids)}: GRPO groups broken")
            rewards = [t for t in totals[start:start + g] if t is not None]
            if self.sampler is not None and rewards:
                # The row's own coordinates locate a sample already evicted from the pool by a
                # refresh between its generation and this feedback.
                latlon = (float(lats[start]), float(lons[start])) if lats is not None and lons is not None else None
                self.hotspots_added += bool(self.sampler.report_rewards(ids[start], rewards, latlon=latlon))
            self.groups_reported += 1
            groups.append(start)
        log_metric = kwargs.get("log_metric")
        if log_metric is not None and self.sampler is not None:
            log_metric("sampler/hotspots_added", float(self.hotspots_added))
        self.recent = [self._sample(start, completions, parsed, scores_by_func, totals, kwargs)
                       for start in groups[-_SAMPLE_GROUPS_KEPT:]]

    def _sample(self, start, completions, parsed, scores_by_func, totals, kwargs) -> dict[str, Any]:
        g = self.num_generations
        truth = {c: kwargs[c][start] for c in TRUTH_COLUMNS if c in kwargs}
        return {
            **truth,
            "completions": [
                {
                    "text": completion_text(completions[k]),
                    "format_ok": parsed[k].format_ok,
                    "parsed_lat": parsed[k].lat,
                    "parsed_lon": parsed[k].lon,
                    "rewards": {n: scores_by_func[i][k] for i, n in enumerate(self.names)},
                    "total": totals[k],
                }
                for k in range(start, start + g)
            ],
        }
