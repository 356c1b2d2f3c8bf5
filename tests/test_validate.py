"""Bad settings are refused when the config loads, in one line naming the key, the value and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from geo_r_lite.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "configs" / "smoke.yaml"

def _split(overrides: str) -> list[str]:
    return re.split(r" (?=--)", overrides)


REFUSED = [
    ("--train.stages=[sfft]", "train.stages: 'sfft' not valid; choose from: sft, grpo"),
    ("--train.stages=[sft, sft]", "train.stages: sft listed twice"),
    ("--train.precision=bf61", "train.precision='bf61' is not valid; choose one of: auto, bf16, fp16, fp32"),
    ("--model.backend=unslot", "model.backend='unslot' is not valid; choose one of: auto, unsloth, hf"),
    ("--model.dtype=half", "model.dtype='half' is not valid"),
    ("--reward.distance_shape=gauss", "reward.distance_shape='gauss' is not valid; choose one of: piecewise, exp, geoscore"),
    ("--reward.combine=prodcut", "reward.combine='prodcut' is not valid; choose one of: product, sum"),
    ("--reward.names=[distance, formatt, hierarchy]", "reward.names: 'formatt' not valid"),
    ("--reward.weights=[1.0, 1.0]", "reward.weights has 2 values for 3 reward.names"),
    ("--reward.names=[]", "reward.names is empty"),
    ("--reward.hierarchy_weights={town: 1.0}", "reward.hierarchy_weights: 'town' not valid"),
    ("--reward.distance_tau_km=0", "reward.distance_tau_km=0.0 is not valid; it must be a positive number"),
    ("--sampler.region_key=state", "sampler.region_key='state' is not valid; choose one of: continent, country"),
    ("--sampler.capacity=0", "sampler.capacity=0 is not valid"),
    ("--sampler.alpha=-1", "sampler.alpha=-1.0 is not valid; it must be a number >= 0"),
    ("--data.source=s3", "data.source='s3' is not valid; choose one of: manifest, hf, webdataset, synthetic"),
    ("--eval.data.source=csv", "eval.data.source='csv' is not valid"),
    ("--data.max_samples=0", "data.max_samples=0 is not valid; it must be a positive count or null"),
    ("--model.lora_dropout=1.5", "model.lora_dropout=1.5 is not valid; it must be in [0, 1)"),
    ("--model.gpu_memory_utilization=0", "model.gpu_memory_utilization=0.0 is not valid; it must be in (0, 1]"),
    ("--train.warmup_ratio=1", "train.warmup_ratio=1.0 is not valid; it must be in [0, 1)"),
    ("--model.min_pixels=100000", "model.min_pixels=100000 is above model.max_pixels=25088"),
    ("--model.max_pixels=100", "model.min_pixels=12544 is above model.max_pixels=100"),
    ("--model.lora_r=0", "model.lora_r=0 is not valid; it must be a positive number"),
    ("--train.num_generations=1", "train.num_generations=1 is not valid; it must be at least 2"),
    ("--train.save_total_limit=1", "train.save_total_limit=1 is not valid; it must be at least 2"),
    ("--train.sample_every=-1", "train.sample_every=-1 is not valid"),
    ("--model.min_pixels=20000", "model.max_pixels=25088 must be at least twice model.min_pixels=20000"),
    ("--train.loss_type=ppo", "train.loss_type='ppo' is not valid; choose one of: grpo, dr_grpo, dapo"),
    ("--eval.do_sample=true --eval.temperature=0", "eval.temperature=0.0 is not valid"),
    ("--train.learning_rate=-1e-5", "train.learning_rate=-1e-05 is not valid; it must be a positive number"),
    ("--train.max_steps=0", "train.max_steps=0 is not valid; it must be a positive integer"),
    ("--train.temperature=0", "train.temperature=0.0 is not valid"),
    ("--eval.num_samples=0", "eval.num_samples=0 is not valid"),
    ("--eval.batch_size=0", "eval.batch_size=0 is not valid"),
    ("--model.fast_inference=true --model.finetune_vision_layers=true", "cannot train vision layers"),
    ("--model.finetune_language_layers=false", "LoRA needs finetune_language_layers or finetune_vision_layers"),
    ("--model.dtype=float16 --train.precision=bf16", "train.precision=bf16 does not match model.dtype=float16: use fp16"),
    ("--model.dtype=bfloat16 --train.precision=fp16", "use bf16"),
    ("--train.lerning_rate=1", "did you mean 'train.learning_rate'"),
]


@pytest.mark.parametrize("overrides, message", REFUSED, ids=[r[0] for r in REFUSED])
def test_bad_setting_is_refused_at_load(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config(SMOKE, _split(overrides))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_configs_pass(path):
    load_config(path)


def test_fast_inference_refused_for_a_family_vllm_cannot_serve(tiny_model_dir):
    from geo_r_lite import model as model_lib
    from geo_r_lite.config import ModelConfig

    with pytest.raises(model_lib.ModelLoadError, match=r"qwen2_vl model \(Qwen2-VL\), which Unsloth's vLLM does not serve"):
        model_lib.check_fast_inference(str(tiny_model_dir), ModelConfig(fast_inference=True))
    model_lib.check_fast_inference(str(tiny_model_dir), ModelConfig(fast_inference=False))


@pytest.mark.parametrize("overrides, message", [
    ("--train.optim=adamw_9bit", "train.optim='adamw_9bit' is not valid"),
    ("--train.lr_scheduler_type=cosinus", "train.lr_scheduler_type='cosinus' is not valid; choose one of: linear"),
    ("--train.report_to=[tensorbored]", "unknown integration(s) 'tensorbored'"),
    ("--train.num_generations=3", "generation batch of 4 completions"),
])
def test_trainer_names_are_checked_against_transformers(overrides, message):
    from geo_r_lite.trl_config import check_trainer_settings

    with pytest.raises(ConfigError) as err:
        check_trainer_settings(load_config(SMOKE, _split(overrides)))
    assert message in str(err.value)


def test_eval_py_refuses_in_one_line():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(REPO / "eval.py"), "--eval.batch_size=0"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "eval.batch_size=0 is not valid" in done.stderr


def test_whole_groups_count_processes_and_overrides(monkeypatch):
    from geo_r_lite.trl_config import check_trainer_settings

    two_gpus = load_config(SMOKE, ["--train.per_device_train_batch_size=2", "--train.num_generations=4"])
    with pytest.raises(ConfigError, match="generation batch of 2 completions"):
        check_trainer_settings(two_gpus)
    monkeypatch.setenv("WORLD_SIZE", "2")
    check_trainer_settings(two_gpus)  # 2 per device x 2 processes: whole groups of 4
    monkeypatch.delenv("WORLD_SIZE")
    check_trainer_settings(load_config(SMOKE, ["--train.per_device_train_batch_size=2", "--train.num_generations=4",
                                               "--train.trl_overrides={steps_per_generation: 2}"]))


def test_settings_greedy_decoding_never_reads_are_not_refused():
    assert load_config(SMOKE, ["--eval.temperature=0", "--train.sample_every=0"]).eval.temperature == 0.0
