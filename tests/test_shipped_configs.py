"""Every config in configs/ runs on the CPU with only the model and the data swapped.

A config that trains runs train.py's ``main`` for one SFT step and one GRPO step, then evaluates a
few images; an evaluation-only config runs eval.py's benchmark path on a few images. Everything
else stays as the file says: report_to, optimizer, batch size and G, completion length, image
budget, vLLM flags, precision. Settings that cannot run on a CPU (fast_inference, 8-bit optimizers,
4-bit loading) must fall back with a log line, never crash. A new config is covered the day it is
added: the parameters are the files.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

from geo_r_lite.config import load_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def _trains(path: Path) -> bool:
    return bool((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("train", {}).get("stages"))


def _swap_model_and_data(tmp_path: Path, tiny_model_dir: Path) -> list[str]:
    """Overrides that put the tiny model of the config's family and synthetic data in place."""
    return [
        f"--model.name={tiny_model_dir}",
        "--data.source=synthetic", "--data.path=null", "--data.synthetic_size=16", "--data.max_samples=null",
        "--eval.data.source=synthetic", "--eval.data.path=null", "--eval.data.image_dir=null",
        "--eval.data.synthetic_size=3", "--eval.data.max_samples=null",
        f"--train.output_dir={tmp_path / 'run'}", f"--eval.output_dir={tmp_path / 'eval'}",
    ]


def test_every_config_is_covered():
    names = {p.stem for p in CONFIGS}
    assert {"smoke", "3090", "t4", "qwen25vl_vllm", "qwen3vl_3090", "qwen3vl_t4", "eval_im2gps3k"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_config_runs_a_step_of_each_stage_on_the_cpu(path, tmp_path, tiny_family_dirs, caplog):
    from geo_r_lite.families import family_of_name

    family = family_of_name(load_config(path).model.name)
    overrides = _swap_model_and_data(tmp_path, tiny_family_dirs[family.model_type if family else "qwen2_vl"])
    if not _trains(path):
        import eval as eval_cli

        with caplog.at_level(logging.INFO):
            metrics = eval_cli.main(["--config", str(path), *overrides])
        assert metrics["n"] == 3
        assert (tmp_path / "eval" / "report.md").is_file()
        return

    import train

    cfg = load_config(path, overrides + ["--train.max_steps=1", "--train.sft_max_steps=1",
                                         "--eval.max_new_tokens=32"])
    as_written = load_config(path)
    # Only the model and the data were swapped.
    for section in ("train", "sampler", "reward"):
        kept = {k: v for k, v in vars(getattr(as_written, section)).items()
                if k not in ("max_steps", "sft_max_steps", "output_dir")}
        assert {k: getattr(getattr(cfg, section), k) for k in kept} == kept
    for key in ("fast_inference", "load_in_4bit", "min_pixels", "max_pixels", "lora_r", "backend", "dtype"):
        assert getattr(cfg.model, key) == getattr(as_written.model, key)

    with caplog.at_level(logging.INFO):
        summary = train.main(cfg)
    run = tmp_path / "run"
    for stage in cfg.train.stages:
        logged = [json.loads(line) for line in (run / stage / "metrics.jsonl").read_text().splitlines()]
        assert any(rec.get("step") == 1 for rec in logged), f"{stage}: no step 1 logged"
    assert (run / "adapter" / "adapter_config.json").is_file()
    if cfg.eval.enabled:
        assert summary["eval"]["n"] == 3
    if "tensorboard" in cfg.train.report_to:
        assert list(run.rglob("events.out.tfevents.*")), "tensorboard wrote no event file"
    # CPU fallbacks are said once, plainly.
    if cfg.model.fast_inference:
        assert "fast_inference" in caplog.text and "transformers" in caplog.text
    if cfg.train.optim.endswith("8bit"):
        assert "adamw_torch on the CPU" in caplog.text
    if cfg.model.load_in_4bit:
        assert "load_in_4bit needs CUDA" in caplog.text


@pytest.mark.parametrize("args, message", [
    (["--train.lerning_rate=1"], "did you mean 'train.learning_rate'"),
    (["--train.report_to=[tensorbored]"], "unknown integration(s) 'tensorbored'"),
    (["--train.report_to=[wandb]"], "wandb is not installed here"),
], ids=["typo", "unknown-integration", "integration-not-installed"])
def test_train_py_refuses_bad_settings_in_one_line(tmp_path, args, message):
    import importlib.util
    import subprocess
    import sys

    if "wandb" in args[0] and importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    done = subprocess.run([sys.executable, str(REPO / "train.py"), f"--train.output_dir={tmp_path}", *args],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert message in done.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "data_summary.json").exists(), "refused before the data pass"
