"""run_evaluation end to end on generated IM2GPS3K / YFCC4K layouts with the tiny model.

The tiny random model writes garbage: that is the unparseable case (every answer a miss).
Parseable answers are tested through ``choose_answer`` here and hand-written predictions in
test_report.py.
"""

from __future__ import annotations

import json

import pytest

from eval_benchmarks import make_im2gps3k, make_yfcc4k
from geo_r_lite import evaluation
from geo_r_lite.config import config_from_dict
from geo_r_lite.predictions import read_rows

pytestmark = pytest.mark.slow


def _cfg(model_dir, bench: dict, out, **eval_overrides):
    data = {"source": "manifest", "path": bench["path"], "image_dir": bench["image_dir"],
            "split": "test"}
    data.update(eval_overrides.pop("data", {}))
    values = {
        "model": {"name": str(model_dir), "backend": "hf", "load_in_4bit": False,
                  "min_pixels": 3136, "max_pixels": 6272},
        "eval": {"data": data, "output_dir": str(out), "batch_size": 3, "max_new_tokens": 6,
                 **eval_overrides},
    }
    return config_from_dict(values)


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    from geo_r_lite.config import ModelConfig
    from geo_r_lite.model import load_model

    return load_model(ModelConfig(name=str(tiny_model_dir), backend="hf", load_in_4bit=False,
                                  min_pixels=3136, max_pixels=6272), for_training=False)


def test_im2gps3k_layout_end_to_end(tmp_path, tiny_model_dir, loaded):
    bench = make_im2gps3k(tmp_path / "bench")
    out = tmp_path / "out"
    metrics = evaluation.run_evaluation(_cfg(tiny_model_dir, bench, out), loaded, shard=(0, 1))

    rows = {row["id"]: row for row in read_rows(out / "predictions.jsonl")}
    assert set(rows) == set(bench["good"])
    for image_id, (lat, lon) in bench["good"].items():
        assert (rows[image_id]["lat"], rows[image_id]["lon"]) == (lat, lon)
        assert rows[image_id]["text"] is not None
    # Garbage output is unparseable: every photo is a scored miss, none is dropped.
    assert metrics["n"] == len(bench["good"])
    assert metrics["parse_failure_rate"] == 1.0
    assert metrics["acc@2500km"] == 0.0
    summary = json.loads((out / "data_summary.json").read_text())
    assert summary["by_reason"] == bench["skipped"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["n"] == metrics["n"] and saved["benchmark"] == "im2gps3k"
    report = (out / "report.md").read_text()
    assert "| Geo-R | 18.1 | 41.53 | 58.31 | 75.33 | 86.42 |" in report
    assert "missing_image: 1" in report and "bad_coordinates: 1" in report
    for name in ("cumulative_error.png", "world_scatter.png", "config.yaml"):
        assert (out / name).stat().st_size > 0


def test_yfcc4k_layout_reads_lon_first_and_counts_a_corrupt_image(tmp_path, tiny_model_dir, loaded):
    bench = make_yfcc4k(tmp_path / "bench")
    out = tmp_path / "out"
    cfg = _cfg(tiny_model_dir, bench, out, data={"columns": {"id": "name"}})
    metrics = evaluation.run_evaluation(cfg, loaded, shard=(0, 1))

    rows = {row["id"]: row for row in read_rows(out / "predictions.jsonl")}
    assert rows[bench["corrupt"]]["skipped"] == "corrupt_image"
    scored = {k: (r["lat"], r["lon"]) for k, r in rows.items() if not r.get("skipped")}
    assert scored == bench["good"]  # a lon/lat swap would show here
    assert metrics["n"] == len(bench["good"])
    assert metrics["skipped_images"] == {"corrupt_image": 1}
    assert json.loads((out / "data_summary.json").read_text())["by_reason"] == bench["skipped"]


def test_interrupted_run_resumes_to_the_same_metrics(tmp_path, tiny_model_dir, loaded, monkeypatch):
    bench = make_im2gps3k(tmp_path / "bench")
    reference = evaluation.run_evaluation(_cfg(tiny_model_dir, bench, tmp_path / "a"), loaded,
                                          shard=(0, 1))

    out = tmp_path / "b"
    real_generate, calls = evaluation.generate_batch, []

    def crash_on_second_batch(*args, **kwargs):
        calls.append(len(args[1]))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user pressed Ctrl-C during batch 2
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(evaluation, "generate_batch", crash_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        evaluation.run_evaluation(_cfg(tiny_model_dir, bench, out), loaded, shard=(0, 1))
    assert len(read_rows(out / "predictions.jsonl")) == 3  # batch 1 kept, batch 2 lost
    with open(out / "predictions.jsonl", "a") as handle:
        handle.write('{"id": "half-written')  # killed in the middle of a write

    calls.clear()
    monkeypatch.setattr(evaluation, "generate_batch",
                        lambda *a, **k: calls.append(len(a[1])) or real_generate(*a, **k))
    resumed = evaluation.run_evaluation(_cfg(tiny_model_dir, bench, out), loaded, shard=(0, 1))

    assert sum(calls) == len(bench["good"]) - 3  # only the records not yet done
    # NaN figures (no parsed answer) compare equal only as text.
    assert json.dumps(resumed, sort_keys=True) == json.dumps(reference, sort_keys=True)
    texts = lambda folder: {r["id"]: r["text"] for r in read_rows(folder / "predictions.jsonl")}
    assert texts(out) == texts(tmp_path / "a")


def test_hotspot_export_is_written_when_asked(tmp_path, tiny_model_dir, loaded, monkeypatch):
    bench = make_im2gps3k(tmp_path / "bench", n_good=3)
    out = tmp_path / "out"
    first = next(iter(bench["good"].values()))
    answer = ("<think>x</think>\n<answer>\nContinent: Unknown\nCountry: Unknown\nRegion: Unknown\n"
              f"City: Unknown\nCoordinates: ({first[0]}, {first[1]})\n</answer>")
    monkeypatch.setattr(evaluation, "generate_batch", lambda loaded, images, cfg: [[answer]] * len(images))
    metrics = evaluation.run_evaluation(_cfg(tiny_model_dir, bench, out, hotspot_km=25.0), loaded,
                                        shard=(0, 1))
    from geo_r_lite.hotspots import read_latlons

    assert read_latlons(out / "hotspots.csv") == [first]  # only the photo answered within 25 km
    assert metrics["acc@1km"] == pytest.approx(1 / 3)
    assert metrics["parse_failure_rate"] == 0.0


@pytest.mark.parametrize("texts, chosen", [
    pytest.param(["(10, 10)", "(10.1, 10)", "(-40, 100)"], 0, id="medoid-not-the-outlier"),
    pytest.param(["garbage", "(-40, 100)", "(10, 10)"], 1, id="unparsed-samples-ignored"),
    pytest.param(["garbage", "also garbage"], 0, id="nothing-parses-keep-the-first"),
])
def test_self_consistency_picks_the_medoid(texts, chosen):
    def wrap(coords):
        return ("<think>t</think>\n<answer>\nContinent: Asia\nCountry: Unknown\nRegion: Unknown\n"
                f"City: Unknown\nCoordinates: {coords}\n</answer>") if coords.startswith("(") else coords

    completions = [wrap(t) for t in texts]
    text, parsed, samples = evaluation.choose_answer(completions)
    assert text == completions[chosen]
    assert len(samples) == len(texts)
    assert sum(s is not None for s in samples) == sum(t.startswith("(") for t in texts)


def test_self_consistency_runs_through_the_model(tmp_path, tiny_model_dir, loaded):
    bench = make_im2gps3k(tmp_path / "bench", n_good=2)
    out = tmp_path / "out"
    cfg = _cfg(tiny_model_dir, bench, out, num_samples=3, temperature=1.0)
    metrics = evaluation.run_evaluation(cfg, loaded, shard=(0, 1))
    rows = read_rows(out / "predictions.jsonl")
    assert metrics["n"] == 2
    assert [len(row["samples"]) for row in rows] == [3, 3]  # k sampled answers kept per photo


def test_resuming_with_other_generation_settings_warns(tmp_path, tiny_model_dir, loaded, monkeypatch,
                                                      caplog):
    bench = make_im2gps3k(tmp_path / "bench", n_good=2)
    out = tmp_path / "out"
    monkeypatch.setattr(evaluation, "generate_batch", lambda loaded, images, cfg: [["x"]] * len(images))
    evaluation.run_evaluation(_cfg(tiny_model_dir, bench, out), loaded, shard=(0, 1))
    with caplog.at_level("WARNING", logger="geo_r_lite.evaluation"):
        evaluation.run_evaluation(_cfg(tiny_model_dir, bench, out), loaded, shard=(0, 1))
        assert "predictions were made with" not in caplog.text  # same settings: silent
        evaluation.run_evaluation(_cfg(tiny_model_dir, bench, out, max_new_tokens=7), loaded,
                                  shard=(0, 1))
    assert "eval.max_new_tokens=7, but its predictions were made with 6" in caplog.text
