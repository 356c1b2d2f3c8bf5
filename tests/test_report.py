"""Scoring hand-written predictions, merging shard files, report.md content and plots (no model)."""

from __future__ import annotations

import json
import math

import pytest

from geo_r_lite.geo import haversine_km
from geo_r_lite.predictions import (
    append_rows, export_hotspots, medoid_index, parse_shard, read_predictions, read_rows,
    repair_tail, score_rows, shard_file_name, shard_from_env,
)
from geo_r_lite.report import detect_benchmark, render_report, write_outputs

PARIS, LYON, TOKYO, SYDNEY = (48.8566, 2.3522), (45.764, 4.8357), (35.6762, 139.6503), (-33.8688, 151.2093)


def _row(image_id, truth, pred, *, think="reasoning", place=None, country="France",
         continent="Europe"):
    """A predictions.jsonl row; ``pred`` None is an unparseable answer."""
    row = {"id": image_id, "lat": truth[0], "lon": truth[1], "continent": continent,
           "country": country, "country_code": "FR" if country == "France" else None,
           "region": None, "city": None, "think": think, "text": "...",
           "pred": place or {"continent": None, "country": None, "region": None, "city": None}}
    row["pred_lat"], row["pred_lon"] = pred if pred else (None, None)
    row["format_ok"] = pred is not None
    row["distance_km"] = float(haversine_km(*pred, *truth)) if pred else None
    return row


ROWS = [
    _row("a", PARIS, PARIS, place={"continent": "Europe", "country": "France", "region": None, "city": "Paris"}),
    _row("b", PARIS, LYON, place={"continent": "Europe", "country": "Germany", "region": None, "city": None}),
    _row("c", TOKYO, SYDNEY, country="Japan", continent="Asia"),
    _row("d", PARIS, None, think=None),
    {"id": "e", "skipped": "corrupt_image", "detail": "not a jpeg"},
]


def test_hand_written_predictions_score_as_expected():
    metrics = score_rows(ROWS)
    # a: 0 km; b: Paris-Lyon ~392 km; c: Tokyo-Sydney ~7,800 km; d: unparsed = a miss.
    assert metrics["n"] == 4 and metrics["n_parsed"] == 3
    assert metrics["acc@1km"] == 0.25
    assert metrics["acc@25km"] == 0.25
    assert metrics["acc@750km"] == 0.5
    assert metrics["acc@2500km"] == 0.5
    assert metrics["parse_failure_rate"] == 0.25
    assert metrics["skipped_images"] == {"corrupt_image": 1}
    assert metrics["acc_country"] == 0.25  # only a names the right country
    # No true city label anywhere: the level is not scored (NaN), rather than scored 0.
    assert metrics["n_city"] == 0 and math.isnan(metrics["acc_city"])
    assert metrics["per_continent"]["Asia"]["n"] == 1
    assert metrics["format_ok_rate"] == 0.75


def test_nothing_scorable_is_a_clear_error():
    with pytest.raises(ValueError, match="no scorable predictions"):
        score_rows([{"id": "x", "skipped": "corrupt_image"}])


def test_scores_do_not_depend_on_row_order():
    forward, backward = score_rows(ROWS), score_rows(ROWS[::-1])
    assert json.dumps(forward, sort_keys=True) == json.dumps(backward, sort_keys=True)


def test_shards_merge_by_id(tmp_path):
    for index in range(2):
        append_rows(tmp_path / shard_file_name(index, 2), ROWS[index::2])
    merged = read_predictions(sorted(tmp_path.glob("predictions*.jsonl")))
    assert [row["id"] for row in merged] == ["a", "b", "c", "d", "e"]
    assert json.dumps(score_rows(merged), sort_keys=True) == json.dumps(score_rows(ROWS), sort_keys=True)


def test_a_half_written_last_line_is_ignored_then_cut(tmp_path):
    path = tmp_path / "predictions.jsonl"
    append_rows(path, ROWS[:2])
    with open(path, "a") as handle:
        handle.write('{"id": "c", "lat"')
    assert [row["id"] for row in read_rows(path)] == ["a", "b"]
    repair_tail(path)
    append_rows(path, ROWS[2:3])
    assert [row["id"] for row in read_rows(path)] == ["a", "b", "c"]


def test_a_broken_line_in_the_middle_is_an_error(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_rows(path)


@pytest.mark.parametrize("text, expected", [
    pytest.param("0/2", (0, 2), id="first-of-two"),
    pytest.param("1/2", (1, 2), id="second-of-two"),
    pytest.param("0/1", (0, 1), id="unsharded"),
])
def test_parse_shard(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", [
    pytest.param("2/2", id="index-past-the-end"),
    pytest.param("-1/2", id="negative-index"),
    pytest.param("1", id="no-count"),
    pytest.param("a/b", id="not-numbers"),
])
def test_parse_shard_rejects(text):
    with pytest.raises(ValueError, match="shard"):
        parse_shard(text)


@pytest.mark.parametrize("env, expected", [
    pytest.param({}, (0, 1), id="plain-run"),
    pytest.param({"RANK": "1", "WORLD_SIZE": "2"}, (1, 2), id="torchrun-rank-1"),
    pytest.param({"RANK": "x", "WORLD_SIZE": "2"}, (0, 1), id="unusable-env-runs-unsharded"),
])
def test_shard_from_env(env, expected):
    assert shard_from_env(env) == expected


@pytest.mark.parametrize("names, expected", [
    pytest.param(["data/im2gps3k/im2gps3k_places365.csv"], "im2gps3k", id="im2gps3k-csv"),
    pytest.param([None, "/x/YFCC4K/images"], "yfcc4k", id="upper-case-folder"),
    pytest.param(["data/IM2GPS-3K.csv"], "im2gps3k", id="dashed-name"),
    pytest.param(["data/osv5m/test.csv"], None, id="other-benchmark"),
])
def test_detect_benchmark(names, expected):
    assert detect_benchmark(*names) == expected


def test_report_has_our_row_published_rows_and_examples():
    metrics = score_rows(ROWS)
    report = render_report(metrics, ROWS, benchmark="yfcc4k", num_examples=1,
                           data_summary={"by_reason": {"bad_coordinates": 2}})
    assert "| **ours** | 25.00 | 25.00 | 25.00 | 50.00 | 50.00 |" in report
    for method in ("GeoCLIP", "G3"):
        assert f"| {method} |" in report
    assert "reproduction reported by G3" in report
    assert "bad_coordinates: 2" in report and "corrupt_image: 1" in report
    assert "best 1: `a`" in report and "worst 1: `d`" in report  # unparsed is the worst
    assert "- unparsed (" in report
    assert "Europe -> France -> ? -> Paris" in report  # the predicted chain of the best example
    assert "parse failures 25.00 %" in report


def test_medoid_index_ignores_missing_points():
    assert medoid_index([None, PARIS, LYON, PARIS, TOKYO]) in (1, 3)
    assert medoid_index([None, None]) is None


def test_write_outputs_and_hotspots(tmp_path):
    metrics = write_outputs(tmp_path, ROWS, benchmark="im2gps3k")
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["acc@1km"] == metrics["acc@1km"] == 0.25
    assert math.isclose(saved["median_km"], metrics["median_km"])
    assert (tmp_path / "cumulative_error.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "world_scatter.png").read_bytes()[:4] == b"\x89PNG"
    report = (tmp_path / "report.md").read_text()
    for method in ("GeoCLIP", "PIGEOTTO", "G3"):
        assert f"| {method} |" in report
    assert "| Geo-R | 18.1 | 41.53 | 58.31 | 75.33 | 86.42 | Wu et al., AAAI 2026, arXiv:2601.00388 |" in report
    assert export_hotspots(ROWS, 500.0, tmp_path / "hot.csv") == 2  # a (0 km) and b (~392 km)
    from geo_r_lite.hotspots import read_latlons

    assert read_latlons(tmp_path / "hot.csv") == [PARIS, PARIS]
