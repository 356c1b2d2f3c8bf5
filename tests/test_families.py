"""Qwen2-VL, Qwen2.5-VL and Qwen3-VL end to end on the CPU, each through its tiny offline model.

Per family: loading through geo_r_lite.model, generation for a prompt with an image, image tokens
as the family's processor counts them for our resized image, LoRA on the intended language (and
vision) modules, one SFT and one GRPO step with an evaluation of a few images (train.py), and
``eval.py --image``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from geo_r_lite import model as model_lib
from geo_r_lite.config import ModelConfig, load_config
from geo_r_lite.families import FAMILIES, TINY_NAMES, family_of, family_of_name
from geo_r_lite.images import load_image

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
FAMILY_IDS = sorted(FAMILIES)


def test_the_table_is_consistent():
    assert {f.pixel_step for f in FAMILIES.values()} == {28, 32}
    assert family_of("qwen3_vl").pixel_step == 32 and family_of("qwen2_5_vl").pixel_step == 28
    assert [f.model_type for f in FAMILIES.values() if f.vllm] == ["qwen2_5_vl", "qwen3_vl"]
    assert TINY_NAMES == {"tiny": "qwen2_vl", "tiny-qwen2.5-vl": "qwen2_5_vl", "tiny-qwen3-vl": "qwen3_vl"}
    for name, expected in [("Qwen/Qwen3-VL-8B-Instruct", "qwen3_vl"), ("unsloth/Qwen2.5-VL-7B-Instruct-bnb-4bit",
                           "qwen2_5_vl"), ("Qwen/Qwen2-VL-2B-Instruct", "qwen2_vl"), ("tiny-qwen3-vl", "qwen3_vl")]:
        assert family_of_name(name).model_type == expected
    assert family_of_name("some/other-model") is None
    with pytest.raises(ValueError, match="not supported; supported: qwen2_vl"):
        family_of("llava")


def _cfg(path, **kw) -> ModelConfig:
    return ModelConfig(name=str(path), backend="hf", load_in_4bit=False, gradient_checkpointing=False,
                       min_pixels=12544, max_pixels=25088, **kw)


@pytest.mark.parametrize("family", FAMILY_IDS)
def test_load_generate_and_count_image_tokens(family, tiny_family_dirs):
    import numpy as np
    import torch
    from PIL import Image

    from geo_r_lite.prompts import build_prompt

    path = tiny_family_dirs[family]
    loaded = model_lib.load_model(_cfg(path), for_training=False)
    assert loaded.model.config.model_type == family
    assert type(loaded.processor).__name__ == family_of(family).processor
    step = model_lib.pixel_step(loaded.processor)
    assert step == family_of(family).pixel_step
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 500, 3), dtype=np.uint8))
    image = load_image(photo, 12544, 25088, step)
    text = loaded.processor.apply_chat_template(build_prompt(), add_generation_prompt=True, tokenize=False)
    inputs = loaded.processor(text=[text], images=[image], return_tensors="pt")
    image_token = loaded.processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((inputs["input_ids"] == image_token).sum()) == image.width * image.height // step ** 2
    with torch.no_grad():
        out = loaded.model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_qwen3_vl_template_adds_no_default_system_message(tiny_family_dirs):
    from transformers import AutoProcessor

    user = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Where?"}]}]
    for family, default_system in (("qwen2_vl", True), ("qwen2_5_vl", True), ("qwen3_vl", False)):
        text = AutoProcessor.from_pretrained(tiny_family_dirs[family]).apply_chat_template(
            user, add_generation_prompt=True, tokenize=False)
        assert text.startswith("<|im_start|>system") == default_system, family
        assert "<|vision_start|><|image_pad|><|vision_end|>Where?<|im_end|>" in text


@pytest.mark.parametrize("vision", [False, True], ids=["language-only", "language-and-vision"])
@pytest.mark.parametrize("family", FAMILY_IDS)
def test_lora_targets_the_intended_modules(family, vision, tiny_family_dirs):
    loaded = model_lib.load_model(_cfg(tiny_family_dirs[family], finetune_vision_layers=vision))
    adapted = {re.sub(r"\.lora_[AB]\.default\.weight$", "", n).removeprefix("base_model.model.")
               for n, p in loaded.model.named_parameters() if p.requires_grad}
    language = {n for n in adapted if ".language_model.layers." in n}
    visual = {n for n in adapted if ".visual.blocks." in n}
    assert adapted == language | visual
    layers = loaded.model.get_base_model().config.text_config.num_hidden_layers
    assert len(language) == 7 * layers  # q, k, v, o, gate, up, down in every layer
    if vision:
        depth = loaded.model.get_base_model().config.vision_config.depth
        mlp = {"qwen2_vl": ("fc1", "fc2"), "qwen2_5_vl": ("gate_proj", "up_proj", "down_proj"),
               "qwen3_vl": ("linear_fc1", "linear_fc2")}[family]
        assert len(visual) == depth * (2 + len(mlp))
        assert {n.rsplit(".", 1)[-1] for n in visual} == {"qkv", "proj", *mlp}
    else:
        assert not visual


@pytest.mark.parametrize("family", FAMILY_IDS)
def test_one_sft_and_one_grpo_step_then_evaluation(family, tiny_family_dirs, tmp_path):
    import train

    cfg = load_config(REPO / "configs" / "smoke.yaml", [
        f"--model.name={tiny_family_dirs[family]}", f"--train.output_dir={tmp_path / 'run'}",
        "--train.sft_max_steps=1", "--train.max_steps=1", "--train.max_completion_length=16",
        "--eval.data.synthetic_size=3", "--eval.max_new_tokens=16", "--train.loss_type=dr_grpo",
        "--train.importance_sampling_level=sequence", "--train.scale_rewards=batch",
        "--train.mask_truncated_completions=true"])
    summary = train.main(cfg)
    run = tmp_path / "run"
    for stage in ("sft", "grpo"):
        logged = [json.loads(line) for line in (run / stage / "metrics.jsonl").read_text().splitlines()]
        assert any(rec.get("step") == 1 and "loss" in rec for rec in logged), stage
    assert summary["eval"]["n"] == 3
    assert json.loads((run / "adapter" / "adapter_config.json").read_text())["r"] == cfg.model.lora_r


@pytest.mark.parametrize("family", FAMILY_IDS)
def test_eval_py_locates_one_photo(family, tiny_family_dirs, tmp_path, capsys):
    import eval as eval_cli
    from PIL import Image

    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (320, 240), (10, 160, 60)).save(photo)
    answer = eval_cli.main([f"--model.name={tiny_family_dirs[family]}", "--model.backend=hf",
                            "--model.load_in_4bit=false", "--eval.max_new_tokens=12", "--image", str(photo)])
    assert "place:" in answer and answer == capsys.readouterr().out.strip()


def test_grpo_variants_reach_trl(tmp_path):
    from geo_r_lite.trl_config import build_trl_config

    cfg = load_config(REPO / "configs" / "smoke.yaml", [
        f"--train.output_dir={tmp_path}", "--train.loss_type=dr_grpo", "--train.importance_sampling_level=sequence",
        "--train.scale_rewards=none", "--train.mask_truncated_completions=true"])
    grpo = build_trl_config(cfg, "grpo")
    assert (grpo.loss_type, grpo.importance_sampling_level, grpo.mask_truncated_completions) == \
        ("dr_grpo", "sequence", True)
    assert grpo.scale_rewards in ("none", False)
    defaults = build_trl_config(load_config(REPO / "configs" / "smoke.yaml", [f"--train.output_dir={tmp_path}"]), "grpo")
    from trl import GRPOConfig

    bare = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False)
    assert (defaults.loss_type, defaults.importance_sampling_level, defaults.scale_rewards) == \
        (bare.loss_type, bare.importance_sampling_level, bare.scale_rewards)


def test_tiny_names_build_each_family_into_the_cache(monkeypatch, tmp_path):
    from geo_r_lite import tiny

    monkeypatch.setattr(tiny, "DEFAULT_TINY_DIR", tmp_path / "cache" / "tiny-qwen2-vl")
    path = Path(model_lib.resolve_model_path("tiny-qwen3-vl"))
    assert path == tmp_path / "cache" / "tiny-qwen3_vl"
    assert json.loads((path / "config.json").read_text())["model_type"] == "qwen3_vl"
