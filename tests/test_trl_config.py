"""TRL config building (geo_r_lite.trl_config): hardware rules, stage fields, the overrides hatch."""

from __future__ import annotations

from pathlib import Path

import pytest

from geo_r_lite.config import Config, ConfigError, load_config
from geo_r_lite.trl_config import build_trl_config, precision_flags, trl_kwargs


def _cfg(**train) -> Config:
    cfg = Config()
    cfg.train.output_dir = "runs/test"
    for key, value in train.items():
        setattr(cfg.train, key, value)
    return cfg


@pytest.mark.parametrize(
    "precision, on_cuda, bf16_ok, expected",
    [
        pytest.param("auto", False, False, {"bf16": False, "fp16": False}, id="CPU: fp32 whatever auto"),
        pytest.param("bf16", False, False, {"bf16": False, "fp16": False}, id="CPU ignores bf16 (GRPO would break)"),
        pytest.param("auto", True, True, {"bf16": True, "fp16": False}, id="Ampere: auto is bf16"),
        pytest.param("auto", True, False, {"bf16": False, "fp16": True}, id="T4: auto falls back to fp16"),
        pytest.param("fp16", True, True, {"bf16": False, "fp16": True}, id="fp16 asked on a bf16 GPU"),
        pytest.param("fp32", True, True, {"bf16": False, "fp16": False}, id="fp32 on a GPU"),
    ],
)
def test_precision_flags(precision, on_cuda, bf16_ok, expected):
    assert precision_flags(precision, on_cuda, bf16_ok) == expected


def test_auto_precision_follows_an_explicit_model_dtype():
    assert precision_flags("auto", True, True, "float16") == {"bf16": False, "fp16": True}
    assert precision_flags("auto", True, True, "bfloat16") == {"bf16": True, "fp16": False}
    assert precision_flags("auto", True, False, "auto") == {"bf16": False, "fp16": True}


@pytest.mark.parametrize(
    "precision, message",
    [
        pytest.param("bf16", "no bf16", id="bf16 on a T4"),
        pytest.param("half", "auto, bf16, fp16 or fp32", id="unknown precision"),
    ],
)
def test_precision_errors_name_the_fix(precision, message):
    with pytest.raises(ConfigError, match=message):
        precision_flags(precision, True, False)


def test_cpu_rules():
    kwargs = trl_kwargs(_cfg(optim="adamw_8bit"), "grpo", on_cuda=False, bf16_ok=False)
    assert kwargs["use_cpu"] is True and kwargs["bf16"] is False and kwargs["fp16"] is False
    assert kwargs["optim"] == "adamw_torch", "bitsandbytes' 8-bit AdamW needs CUDA"
    on_gpu = trl_kwargs(_cfg(optim="adamw_8bit"), "grpo", on_cuda=True, bf16_ok=True)
    assert on_gpu["optim"] == "adamw_8bit" and on_gpu["use_cpu"] is False


def test_stage_fields():
    cfg = _cfg(learning_rate=1e-6, sft_learning_rate=2e-4, max_steps=30, sft_max_steps=7, num_generations=3,
               max_completion_length=128, beta=0.04)
    grpo = trl_kwargs(cfg, "grpo", on_cuda=False, bf16_ok=False, reward_weights=[1.0, 0.5])
    sft = trl_kwargs(cfg, "sft", on_cuda=False, bf16_ok=False)
    assert (grpo["learning_rate"], grpo["max_steps"], grpo["num_generations"]) == (1e-6, 30, 3)
    assert (grpo["max_completion_length"], grpo["beta"], grpo["reward_weights"]) == (128, 0.04, [1.0, 0.5])
    assert (sft["learning_rate"], sft["max_steps"]) == (2e-4, 7)
    assert "num_generations" not in sft and "max_completion_length" not in sft
    assert grpo["output_dir"].endswith("grpo") and sft["output_dir"].endswith("sft")
    assert grpo["remove_unused_columns"] is False, "the rewards need the truth columns"
    assert grpo["gradient_checkpointing"] is False, "geo_r_lite.model already set it up"


def test_overrides_win_and_merge_generation_kwargs():
    cfg = _cfg(trl_overrides={"logging_steps": 7, "generation_kwargs": {"top_p": 0.9}})
    kwargs = trl_kwargs(cfg, "grpo", on_cuda=False, bf16_ok=False, suppress_token_ids=[5, 6])
    assert kwargs["logging_steps"] == 7
    assert kwargs["generation_kwargs"] == {"suppress_tokens": [5, 6], "top_p": 0.9}


def test_unknown_stage():
    with pytest.raises(ConfigError, match="unknown training stage"):
        trl_kwargs(_cfg(), "dpo", on_cuda=False, bf16_ok=False)


def test_builds_real_trl_configs(tmp_path):
    from trl import GRPOConfig, SFTConfig

    cfg = _cfg(output_dir=str(tmp_path), num_generations=2, per_device_train_batch_size=4)
    grpo = build_trl_config(cfg, "grpo", reward_weights=[1.0], suppress_token_ids=[9])
    sft = build_trl_config(cfg, "sft")
    assert isinstance(grpo, GRPOConfig) and isinstance(sft, SFTConfig)
    assert grpo.reward_weights == [1.0] and grpo.generation_kwargs == {"suppress_tokens": [9]}
    assert not hasattr(grpo, "max_prompt_length"), "TRL 1.x dropped it; prompts are never truncated"
    assert grpo.use_vllm is False, "Unsloth's fast_inference turns vLLM on by itself, not through TRL"


def test_unknown_override_names_the_field(tmp_path):
    cfg = _cfg(output_dir=str(tmp_path), trl_overrides={"max_prompt_length": 512})
    with pytest.raises(ConfigError, match="max_prompt_length"):
        build_trl_config(cfg, "grpo")


CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = [CONFIG_DIR / f"{name}.yaml" for name in ("smoke", "3090", "t4", "qwen25vl_vllm")]  # training configs


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_load_and_map_to_trl(path):
    cfg = load_config(path)
    gpu = path.stem != "smoke"
    bf16_ok = path.stem != "t4"  # a T4 config must not ask for bf16
    for stage in cfg.train.stages:
        kwargs = trl_kwargs(cfg, stage, on_cuda=gpu, bf16_ok=bf16_ok)
        assert kwargs["use_cpu"] is not gpu
        assert not (kwargs["bf16"] and not bf16_ok)
    if gpu:
        assert cfg.model.load_in_4bit and cfg.data.source != "synthetic", "GPU configs train on real data in 4-bit"
        g = cfg.train.num_generations
        assert 2 <= g <= 4 and (cfg.train.per_device_train_batch_size * cfg.train.gradient_accumulation_steps) % g == 0
