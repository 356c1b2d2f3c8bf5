"""Interrupted runs: killed with SIGKILL anywhere, ``--resume`` ends where an uninterrupted run ends.

Each run is a real ``train.py`` process on the tiny model (SFT then GRPO then evaluation). The
kill comes from the fault-injection hook in ``geo_r_lite.callbacks`` (``GEO_R_LITE_TEST_KILL``):
inside a step, or inside a checkpoint save (model written, sampler state and marker not yet).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def _args(tiny_model_dir, out: Path) -> list[str]:
    return [
        str(REPO / "train.py"), f"--model.name={tiny_model_dir}", f"--train.output_dir={out}",
        "--train.sft_max_steps=4", "--train.max_steps=4", "--train.save_steps=1", "--train.save_total_limit=2",
        "--train.max_completion_length=16", "--train.temperature=1.0", "--data.synthetic_size=16",
        "--sampler.capacity=12", "--eval.data.synthetic_size=4", "--eval.max_new_tokens=24",
    ]


def _train(tiny_model_dir, out: Path, *extra: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GEO_R_LITE_TEST_KILL"}
    if kill_at:
        env["GEO_R_LITE_TEST_KILL"] = kill_at
    return subprocess.run([sys.executable, *_args(tiny_model_dir, out), *extra], env=env, capture_output=True,
                          text=True, timeout=600, cwd=REPO)


def _outcome(out: Path) -> tuple[dict, list[str]]:
    import torch
    from safetensors.torch import load_file

    weights = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    rows = [json.loads(line) for line in (out / "eval" / "predictions.jsonl").read_text().splitlines()]
    return weights, [row["text"] for row in sorted(rows, key=lambda r: r["id"])] if torch else []


def _steps(out: Path, stage: str) -> list[int]:
    logs = [json.loads(line) for line in (out / stage / "metrics.jsonl").read_text().splitlines()]
    return [rec["step"] for rec in logs if "loss" in rec]


@pytest.fixture(scope="module")
def uninterrupted(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "run"
    done = _train(tiny_model_dir, out)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, _outcome(out)


def test_sft_killed_inside_a_checkpoint_save_then_resumed_equals_uninterrupted(tiny_model_dir, tmp_path,
                                                                               uninterrupted):
    import torch

    out = tmp_path / "run"
    killed = _train(tiny_model_dir, out, kill_at="sft:save:2")
    assert killed.returncode == -9, killed.stderr[-3000:]
    cut = out / "sft" / "checkpoint-2"
    assert cut.is_dir() and not (cut / "geo_r_lite_complete.json").exists(), "the kill must cut a save short"
    resumed = _train(tiny_model_dir, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "checkpoint-2 is incomplete" in resumed.stderr and "sft stage continues from" in resumed.stderr
    weights, texts = _outcome(out)
    want_weights, want_texts = uninterrupted[1]
    assert weights.keys() == want_weights.keys()
    for name in weights:
        assert torch.allclose(weights[name], want_weights[name], atol=1e-5), name
    assert texts == want_texts
    assert _steps(out, "grpo")[-1] == 4


def _grpo_job(tiny_model_dir, out: Path, *extra: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GEO_R_LITE_TEST_KILL"}
    if kill_at:
        env["GEO_R_LITE_TEST_KILL"] = kill_at
    return subprocess.run([sys.executable, str(REPO / "tests" / "grpo_resume_job.py"), str(tiny_model_dir), str(out),
                           *extra], env=env, capture_output=True, text=True, timeout=600, cwd=REPO)


def _trace(out: Path) -> dict[int, list[str]]:
    """Sample ids scored at each step (a resumed run's steps overwrite the killed run's)."""
    steps: dict[int, list[str]] = {}
    for line in (out / "trace.jsonl").read_text().splitlines():
        record = json.loads(line)
        steps[record["step"]] = record["ids"]
    return steps


@pytest.fixture(scope="module")
def grpo_uninterrupted(tiny_model_dir, tmp_path_factory):
    from safetensors.torch import load_file

    out = tmp_path_factory.mktemp("grpo-whole")
    done = _grpo_job(tiny_model_dir, out)
    assert done.returncode == 0, done.stderr[-3000:]
    return _trace(out), load_file(str(out / "grpo" / "adapter" / "adapter_model.safetensors"))


@pytest.mark.parametrize("kill_at", ["grpo:step:4", "grpo:save:3", "grpo:step:9", "grpo:step:10"],
                         ids=["inside-a-step", "inside-a-checkpoint-save", "in-the-second-epoch-after-an-epoch-end",
                              "in-the-middle-of-the-second-epoch"])
def test_grpo_killed_then_resumed_sees_the_same_batches_and_ends_with_the_same_weights(
        tiny_model_dir, tmp_path, grpo_uninterrupted, kill_at):
    import torch
    from safetensors.torch import load_file

    want_trace, want_weights = grpo_uninterrupted
    # The case that used to diverge: hotspots shrink the pool before the kill, so a dataset rebuilt
    # from the restored pool is shorter and TRL draws other slots.
    assert want_trace[3][0] == want_trace[2][0], "the pool must have shrunk (slots wrap) by step 3"
    assert len(want_trace) == 10  # 8 steps an epoch: steps 9-10 are the second epoch
    killed = _grpo_job(tiny_model_dir, tmp_path, kill_at=kill_at)
    assert killed.returncode == -9, killed.stderr[-3000:]
    resumed = _grpo_job(tiny_model_dir, tmp_path, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _trace(tmp_path) == want_trace
    weights = load_file(str(tmp_path / "grpo" / "adapter" / "adapter_model.safetensors"))
    for name in want_weights:
        assert torch.allclose(weights[name], want_weights[name], atol=1e-5), name
    changed = [n for n in want_weights if "lora_B" in n and float(want_weights[n].abs().sum()) > 0]
    assert changed, "GRPO must have trained for the comparison to mean anything"


def test_resuming_a_finished_run_trains_nothing_more(tiny_model_dir, tmp_path, uninterrupted):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(uninterrupted[0], out)
    # A finished run whose evaluation was lost: resume redoes only that.
    shutil.rmtree(out / "eval")
    metrics = (out / "grpo" / "metrics.jsonl").read_bytes()
    checkpoints = {p.name: p.stat().st_mtime_ns for p in (out / "grpo").glob("checkpoint-*")}
    resumed = _train(tiny_model_dir, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "the grpo stage already finished" in resumed.stderr
    assert (out / "grpo" / "metrics.jsonl").read_bytes() == metrics, "GRPO logged again"
    assert {p.name: p.stat().st_mtime_ns for p in (out / "grpo").glob("checkpoint-*")} == checkpoints
    weights, texts = _outcome(out)
    assert texts == uninterrupted[1][1]


def test_a_corrupt_sampler_state_names_the_file_and_the_way_out(tiny_model_dir, tmp_path, uninterrupted):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(uninterrupted[0], out)
    shutil.rmtree(out / "grpo" / "adapter")
    last = max((out / "grpo").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    (last / "sampler_state.json").write_text("{not json")
    resumed = _train(tiny_model_dir, out, "--resume")
    assert resumed.returncode == 1 and "Traceback" not in resumed.stderr
    line = resumed.stderr.strip().splitlines()[-1]
    assert str(last / "sampler_state.json") in line and "to start the grpo stage afresh" in line


def test_cold_and_warm_model_cache_train_the_same_lora(tmp_path, monkeypatch):
    import torch

    from geo_r_lite import tiny
    from geo_r_lite.config import ModelConfig
    from geo_r_lite.model import load_model

    monkeypatch.setattr(tiny, "DEFAULT_TINY_DIR", tmp_path / "cache")
    cfg = ModelConfig(name="tiny", backend="hf", load_in_4bit=False, gradient_checkpointing=False)
    cold = load_model(cfg, seed=3)  # builds the tiny model first, drawing random numbers
    warm = load_model(cfg, seed=3)
    lora = [(n, p) for n, p in cold.model.named_parameters() if "lora_A" in n]
    warm_params = dict(warm.model.named_parameters())
    assert lora and all(torch.equal(p, warm_params[n]) for n, p in lora)


def test_a_run_whose_pool_is_all_solved_resumes(tiny_model_dir, tmp_path):
    """The smoke job solves its six cities within a few GRPO steps; the kept pool must survive a kill."""
    out = tmp_path / "run"
    args = ["--train.max_steps=8", "--train.save_steps=2", "--eval.enabled=false"]
    killed = subprocess.run([sys.executable, str(REPO / "train.py"), f"--model.name={tiny_model_dir}",
                             f"--train.output_dir={out}", *args],
                            env={**os.environ, "GEO_R_LITE_TEST_KILL": "grpo:step:8"}, capture_output=True, text=True,
                            timeout=600, cwd=REPO)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert "every pooled record is now solved" in killed.stderr
    assert (out / "grpo" / "checkpoint-6" / "pool_kept.json").is_file()
    resumed = subprocess.run([sys.executable, str(REPO / "train.py"), f"--model.name={tiny_model_dir}",
                              f"--train.output_dir={out}", *args, "--resume"], capture_output=True, text=True,
                             timeout=600, cwd=REPO)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _steps(out, "grpo")[-1] == 8


def _checkpoint(stage, step, *, state=True, marker=False):
    folder = stage / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    if state:
        (folder / "trainer_state.json").write_text("{}")
    if marker:
        (folder / "geo_r_lite_complete.json").write_text("{}")
    return folder


def test_which_checkpoint_counts_as_complete(tmp_path):
    from geo_r_lite.callbacks import last_checkpoint

    # Before any marker existed: a readable trainer state is enough.
    legacy = tmp_path / "legacy"
    _checkpoint(legacy, 2)
    assert last_checkpoint(legacy).name == "checkpoint-2"
    # A run that writes markers (even without the stage marker): the unmarked newest one was cut short.
    marked = tmp_path / "marked"
    _checkpoint(marked, 2, marker=True)
    _checkpoint(marked, 3)
    assert last_checkpoint(marked).name == "checkpoint-2"
    # With the stage marker, only marked checkpoints count.
    staged = tmp_path / "staged"
    _checkpoint(staged, 2)
    (staged / "geo_r_lite_stage.json").write_text("{}")
    assert last_checkpoint(staged) is None
