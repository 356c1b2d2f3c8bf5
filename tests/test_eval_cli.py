"""eval.py as users run it: --score (no model), --image, and a two-process sharded evaluation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import eval as eval_cli
from eval_benchmarks import make_im2gps3k, write_jpeg
from geo_r_lite import evaluation
from geo_r_lite.config import config_from_dict, save_config
from geo_r_lite.predictions import append_rows, read_rows, shard_file_name

REPO = Path(__file__).resolve().parents[1]
EIFFEL = (48.8584, 2.2945)


def _answer(lat, lon, think="Iron lattice tower, Haussmann facades."):
    return (f"<think>{think}</think>\n<answer>\nContinent: Europe\nCountry: France\n"
            f"Region: Ile-de-France\nCity: Paris\nCoordinates: ({lat}, {lon})\n</answer>")


def _rows():
    # Truth labels as the gazetteer gives them; predictions hand-written: 0 km, ~1,000 km, unparsed.
    base = {"continent": "Europe", "country": "France", "country_code": "FR", "region": None,
            "city": None, "think": "t", "text": "...", "pred": None, "format_ok": True}
    return [
        {**base, "id": "p1", "lat": 48.8584, "lon": 2.2945, "pred_lat": 48.8584, "pred_lon": 2.2945,
         "distance_km": 0.0},
        {**base, "id": "p2", "lat": 48.8584, "lon": 2.2945, "pred_lat": 40.4168, "pred_lon": -3.7038,
         "distance_km": 1053.0},
        {**base, "id": "p3", "lat": 43.2965, "lon": 5.3698, "pred_lat": None, "pred_lon": None,
         "distance_km": None, "format_ok": False},
    ]


def test_score_mode_needs_no_model(tmp_path):
    path = tmp_path / "predictions.jsonl"
    append_rows(path, _rows())
    metrics = eval_cli.main(["--score", str(path)])
    assert (metrics["n"], metrics["acc@1km"], metrics["acc@2500km"]) == (3, pytest.approx(1 / 3),
                                                                       pytest.approx(2 / 3))
    assert json.loads((tmp_path / "metrics.json").read_text())["n"] == 3
    assert (tmp_path / "report.md").is_file()


def test_score_mode_merges_a_folder_of_shards(tmp_path):
    rows = _rows()
    for index in range(2):
        append_rows(tmp_path / shard_file_name(index, 2), rows[index::2])
    merged = eval_cli.main(["--score", str(tmp_path)])
    single = tmp_path / "single"
    single.mkdir()
    append_rows(single / "predictions.jsonl", rows)
    alone = eval_cli.main(["--score", str(single / "predictions.jsonl")])
    assert json.dumps(merged, sort_keys=True) == json.dumps(alone, sort_keys=True)


def test_score_mode_rejects_an_empty_folder(tmp_path):
    with pytest.raises(SystemExit, match="no predictions"):
        eval_cli.main(["--score", str(tmp_path)])


def _tiny_cfg(model_dir, bench, out, batch_size=1):
    return config_from_dict({
        "model": {"name": str(model_dir), "backend": "hf", "load_in_4bit": False,
                  "min_pixels": 3136, "max_pixels": 6272},
        "eval": {"data": {"source": "manifest", "path": bench["path"],
                          "image_dir": bench["image_dir"], "split": "test"},
                 "output_dir": str(out), "batch_size": batch_size, "max_new_tokens": 6},
    })


@pytest.mark.slow
def test_image_mode_prints_the_chain_and_the_exif_error(tmp_path, tiny_model_dir, monkeypatch, capsys):
    photo = write_jpeg(tmp_path / "photo.jpg", 3, gps=EIFFEL)
    config = save_config(_tiny_cfg(tiny_model_dir, {"path": None, "image_dir": None}, tmp_path), tmp_path)
    # The tiny model's own answer is garbage: no coordinates, but the EXIF truth is still shown.
    eval_cli.main(["--config", str(config), "--image", str(photo)])
    shown = capsys.readouterr().out
    assert "coordinates: none parsed" in shown and "EXIF GPS:    (48.8584, 2.2945)" in shown

    madrid = (40.4168, -3.7038)
    monkeypatch.setattr(evaluation, "generate_batch", lambda loaded, images, cfg: [[_answer(*madrid)]])
    eval_cli.main(["--config", str(config), "--image", str(photo)])
    shown = capsys.readouterr().out
    assert "Europe -> France -> Ile-de-France -> Paris" in shown
    assert "Iron lattice tower" in shown
    assert "coordinates: (40.4168, -3.7038)" in shown
    assert "error:       105" in shown  # Paris to Madrid is about 1,053 km


@pytest.mark.slow
def test_two_process_sharded_eval_matches_one_process(tmp_path, tiny_model_dir):
    bench = make_im2gps3k(tmp_path / "bench", n_good=6)
    # batch_size 1: the shards batch different photos together, and one photo per batch keeps
    # each output independent of its batch neighbours, so texts can be compared exactly.
    cfg = _tiny_cfg(tiny_model_dir, bench, tmp_path / "sharded")
    config = save_config(cfg, tmp_path / "cfg")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(REPO / "eval.py"), "--config", str(config)]
    # One shard named on the command line, one from a torchrun-style environment.
    first = subprocess.Popen(command + ["--shard", "0/2"], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    second = subprocess.Popen(command, cwd=REPO, env={**env, "RANK": "1", "WORLD_SIZE": "2"},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for process in (first, second):
        output, _ = process.communicate(timeout=240)
        assert process.returncode == 0, output[-3000:]

    out = tmp_path / "sharded"
    shard_ids = [{row["id"] for row in read_rows(out / shard_file_name(i, 2))} for i in range(2)]
    assert not shard_ids[0] & shard_ids[1]
    assert shard_ids[0] | shard_ids[1] == set(bench["good"])
    merged = eval_cli.main(["--score", str(out)])

    single_cfg = _tiny_cfg(tiny_model_dir, bench, tmp_path / "single")
    single = evaluation.run_evaluation(single_cfg, shard=(0, 1))
    assert json.dumps(merged, sort_keys=True) == json.dumps(single, sort_keys=True)
    # The last shard to finish already wrote the merged metrics.json.
    auto = json.loads((out / "metrics.json").read_text())
    assert auto["n"] == single["n"] == len(bench["good"])
    texts = lambda paths: {r["id"]: r["text"] for p in paths for r in read_rows(p)}
    assert texts(out.glob("predictions.shard-*.jsonl")) == texts([tmp_path / "single" / "predictions.jsonl"])
