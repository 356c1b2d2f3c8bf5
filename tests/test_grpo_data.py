"""The sampler-fed training data (geo_r_lite.grpo_data): pool snapshots, bad images, reward feedback."""

from __future__ import annotations

import io

import pytest

from geo_r_lite.grpo_data import RewardFeedback, SamplerPool, grpo_row, pool_dataset, sft_row
from geo_r_lite.prompts import build_sft_target
from geo_r_lite.records import DataError, GeoRecord, SkipStats

BUDGET = {"min_pixels": 16 * 28 * 28, "max_pixels": 32 * 28 * 28}
WELL_FORMED = (
    "<think>\nred stripes\n</think>\n<answer>\nContinent: Europe\nCountry: France\nRegion: Ile-de-France\n"
    "City: Paris\nCoordinates: (48.8566, 2.3522)\n</answer>"
)


def _png(color) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buffer, format="PNG")
    return buffer.getvalue()


def _record(i: int, image=None) -> GeoRecord:
    return GeoRecord(
        id=f"r{i}", lat=48.0 + i, lon=2.0 + i, image=_png((10 * i, 0, 0)) if image is None else image,
        continent="Europe", country="France", country_code="FR", region="Ile-de-France", city="Paris",
    )


class FakeSampler:
    """The part of DiversitySampler the pool and the feedback use; records report_rewards calls."""

    def __init__(self, records, threshold=0.9):
        self.records, self.threshold, self.reports = list(records), threshold, []

    def items(self):
        return list(self.records)

    def report_rewards(self, record_id, rewards, latlon=None):
        self.reports.append((record_id, list(rewards)))
        if all(r > self.threshold for r in rewards):
            self.records = [r for r in self.records if r.id != record_id]
            return True
        return False


def test_rows_carry_prompt_image_and_truth_columns():
    row = SamplerPool([_record(0)], stats=SkipStats(), **BUDGET).row(0)
    assert set(row) == {"prompt", "image", "id", "lat", "lon", "continent", "country", "country_code", "region", "city"}
    assert (row["id"], row["lat"], row["lon"]) == ("r0", 48.0, 2.0)
    assert BUDGET["min_pixels"] <= row["image"].width * row["image"].height <= BUDGET["max_pixels"]
    assert any(part.get("type") == "image" for msg in row["prompt"] for part in msg["content"])


def test_sft_row_target_comes_from_the_record_labels():
    record = _record(1)
    row = sft_row(record, image=None)
    assert row["completion"][0]["content"][0]["text"] == build_sft_target(record.to_row(), record.lat, record.lon)


def test_slot_is_stable_until_refresh_then_follows_the_sampler():
    sampler = FakeSampler([_record(i) for i in range(3)])
    pool = SamplerPool(sampler, stats=SkipStats(), **BUDGET)
    first = pool.row(0)
    assert pool.row(0) is first, "the G reads of one slot must return the same row"
    sampler.records = sampler.records[1:]  # r0 left the sampler (e.g. became a hotspot)
    assert pool.row(0)["id"] == "r0", "no change before the step ends"
    pool.refresh()
    assert pool.row(0)["id"] == "r1"
    assert pool.row(5)["id"] == pool.row(5 % len(pool))["id"], "slots wrap around a shrunken pool"


@pytest.mark.parametrize(
    "image, reason",
    [
        pytest.param(b"not an image", "corrupt_image", id="garbage bytes"),
        pytest.param(_png((1, 2, 3))[:60], "truncated_image", id="cut-off PNG"),
        pytest.param("/nonexistent/photo.jpg", "missing_image", id="missing file"),
    ],
)
def test_bad_image_is_counted_and_the_slot_falls_through(image, reason):
    stats = SkipStats()
    pool = SamplerPool([_record(0, image=image), _record(1)], stats=stats, **BUDGET)
    assert pool.row(0)["id"] == "r1"
    assert stats[reason] == 1 and stats.total == 1
    pool.refresh()
    assert [r.id for r in pool.records] == ["r1"], "a bad record stays out of later snapshots"


def test_strict_mode_turns_a_bad_image_into_an_error_naming_it():
    pool = SamplerPool([_record(7, image=b"junk")], stats=SkipStats(strict=True), **BUDGET)
    with pytest.raises(DataError, match="r7"):
        pool.row(0)


def test_no_usable_record_is_a_clear_error():
    pool = SamplerPool([_record(0, image=b"junk")], stats=SkipStats(), **BUDGET)
    with pytest.raises(DataError, match="no usable record"):
        pool.row(0)
    with pytest.raises(DataError, match="empty"):
        pool_dataset(SamplerPool([], stats=SkipStats(), **BUDGET))


def test_dataset_reads_repeated_indices_as_one_row():
    pool = SamplerPool([_record(i) for i in range(4)], stats=SkipStats(), **BUDGET)
    dataset = pool_dataset(pool, length=6)
    assert len(dataset) == 6
    rows = dataset.__getitems__([2, 2, 3, 3, 5, 5])  # how the DataLoader fetches a GRPO batch
    ids = [row["id"] for row in rows]
    assert ids == ["r2", "r2", "r3", "r3", "r1", "r1"]
    assert rows[0]["image"] is rows[1]["image"], "one decode per slot and snapshot"


def _named(name, values):
    def reward(completions, **kwargs):
        return list(values)

    reward.__name__ = name
    return reward


def test_feedback_reports_weighted_group_totals_and_keeps_names():
    sampler = FakeSampler([_record(0), _record(1)])
    funcs = [_named("a_reward", [1.0, 1.0, 0.2, 0.0]), _named("b_reward", [1.0, None, 0.4, 1.0])]
    feedback = RewardFeedback(funcs, [1.0, 3.0], sampler, num_generations=2)
    assert [f.__name__ for f in feedback.funcs] == ["a_reward", "b_reward"]
    metrics = {}
    columns = {"id": ["r0", "r0", "r1", "r1"], "lat": [48.0, 48.0, 49.0, 49.0], "log_metric": metrics.__setitem__}
    outputs = [f(completions=[WELL_FORMED, "junk", WELL_FORMED, ""], **columns) for f in feedback.funcs]
    assert outputs[1] == [1.0, None, 0.4, 1.0], "scores pass through unchanged"
    (id0, totals0), (id1, totals1) = sampler.reports
    # weighted mean over the components that scored: None leaves the weight out
    assert id0 == "r0" and totals0 == pytest.approx([1.0, 1.0])
    assert id1 == "r1" and totals1 == pytest.approx([(0.2 + 3 * 0.4) / 4, 3.0 / 4])
    assert feedback.hotspots_added == 1 and [r.id for r in sampler.records] == ["r1"]
    assert metrics["parse_failure_rate"] == pytest.approx(0.5)
    assert feedback.recent[-1]["id"] == "r1" and len(feedback.recent[-1]["completions"]) == 2


def test_saturated_sample_no_longer_pooled_still_becomes_a_hotspot():
    from geo_r_lite.sampler import DiversitySampler

    sampler = DiversitySampler(capacity=4, hotspot_radius_km=200.0, saturation_threshold=0.9)
    sampler.add(_record(5))  # r0 itself was evicted (never pooled here): only its row knows where it is
    feedback = RewardFeedback([_named("a_reward", [1.0, 1.0])], [1.0], sampler, num_generations=2)
    feedback.funcs[0](completions=[WELL_FORMED] * 2, id=["r0", "r0"], lat=[48.0, 48.0], lon=[2.0, 2.0])
    assert feedback.hotspots_added == 1
    assert sampler.stats["hotspots"] == 1
    assert not sampler.add(_record(0)), "a record at the hotspot is dropped"


def test_feedback_refuses_a_group_that_mixes_samples():
    feedback = RewardFeedback([_named("a_reward", [0.0] * 4)], [1.0], None, num_generations=2)
    with pytest.raises(RuntimeError, match="mixes samples"):
        feedback.funcs[0](completions=[""] * 4, id=["r0", "r1", "r1", "r1"])


def test_feedback_needs_the_id_column():
    feedback = RewardFeedback([_named("a_reward", [0.0, 0.0])], [1.0], None, num_generations=2)
    with pytest.raises(DataError, match="'id'"):
        feedback.funcs[0](completions=["", ""], lat=[1.0, 1.0])


def test_grpo_row_prompt_is_fresh_each_time():
    record = _record(0)
    a, b = grpo_row(record, None), grpo_row(record, None)
    assert a["prompt"] == b["prompt"] and a["prompt"] is not b["prompt"]


def test_multi_process_runs_skip_the_group_feedback(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    sampler = FakeSampler([_record(0)])
    feedback = RewardFeedback([_named("a_reward", [1.0, 1.0, 1.0])], [1.0], sampler, num_generations=2)
    metrics = {}
    # a process sees a slice that cuts a group in two: no error, no report, the metric still logged
    feedback.funcs[0](completions=[WELL_FORMED] * 3, id=["r0", "r0", "r1"], log_metric=metrics.__setitem__)
    assert sampler.reports == [] and metrics["parse_failure_rate"] == 0.0


def test_a_pool_whose_records_are_all_solved_keeps_training_on_its_last_snapshot(caplog):
    import logging

    sampler = FakeSampler([_record(i) for i in range(2)])
    pool = SamplerPool(sampler, stats=SkipStats(), **BUDGET)
    sampler.records = []  # every record became a hotspot
    with caplog.at_level(logging.WARNING):
        pool.refresh()
        pool.refresh()
    assert [r.id for r in pool.records] == ["r0", "r1"] and pool.row(1)["id"] == "r1"
    assert caplog.text.count("every pooled record is now solved") == 1
    sampler.records = [_record(5)]
    pool.refresh()
    assert [r.id for r in pool.records] == ["r5"]
