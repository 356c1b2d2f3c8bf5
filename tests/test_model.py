"""Model loading through geo_r_lite.model with the tiny offline Qwen2-VL (CPU)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from geo_r_lite import model as model_lib
from geo_r_lite.config import ModelConfig

pytestmark = pytest.mark.slow


def _cfg(path, **kw) -> ModelConfig:
    return ModelConfig(name=str(path), backend="hf", gradient_checkpointing=False, **kw)


def test_tiny_build_is_deterministic(tmp_path, tiny_model_dir):
    from geo_r_lite.tiny import build_tiny_model

    again = build_tiny_model(tmp_path / "again")
    assert (again / "model.safetensors").read_bytes() == (tiny_model_dir / "model.safetensors").read_bytes()
    assert (again / "tokenizer.json").read_text() == (tiny_model_dir / "tokenizer.json").read_text()


def test_load_and_generate_with_an_image(tiny_model_dir, solid_image):
    import torch

    loaded = model_lib.load_model(_cfg(tiny_model_dir), for_training=False)
    assert loaded.backend == "hf"
    proc = loaded.processor
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Where was this photo taken?"}]}]
    text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    assert "<|image_pad|>" in text and text.endswith("<|im_start|>assistant\n")
    inputs = proc(text=[text], images=[solid_image()], return_tensors="pt")
    assert inputs["pixel_values"].shape[0] > 0
    with torch.no_grad():
        out = loaded.model.generate(**inputs, max_new_tokens=8, do_sample=False)
    new = out[:, inputs["input_ids"].shape[1]:]
    assert new.shape[1] >= 1
    assert isinstance(proc.batch_decode(new, skip_special_tokens=True)[0], str)


def test_image_budget_is_set_at_load(tiny_model_dir):
    cfg = _cfg(tiny_model_dir, min_pixels=20 * 28 * 28, max_pixels=40 * 28 * 28)
    proc = model_lib.load_processor(str(tiny_model_dir), cfg)
    assert proc.image_processor.size["shortest_edge"] == 20 * 28 * 28
    assert proc.image_processor.size["longest_edge"] == 40 * 28 * 28
    assert proc.tokenizer.padding_side == "left"


@pytest.mark.parametrize(
    "vision, language",
    [
        pytest.param(False, True, id="language layers only (default)"),
        pytest.param(True, True, id="vision and language layers"),
    ],
)
def test_lora_attached_and_counted(tiny_model_dir, vision, language):
    loaded = model_lib.load_model(_cfg(tiny_model_dir, finetune_vision_layers=vision, finetune_language_layers=language))
    trainable, total = model_lib.count_parameters(loaded.model)
    assert 0 < trainable < total
    lora_names = [n for n, p in loaded.model.named_parameters() if p.requires_grad]
    assert all("lora_" in n for n in lora_names)
    assert any("language_model" in n for n in lora_names)
    assert any(".visual." in n for n in lora_names) == vision


def test_adapter_round_trip(tmp_path, tiny_model_dir):
    import torch

    loaded = model_lib.load_model(_cfg(tiny_model_dir))
    with torch.no_grad():
        for name, p in loaded.model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.01)
    loaded.model.save_pretrained(tmp_path / "adapter")
    back = model_lib.load_model(_cfg(tiny_model_dir, adapter=str(tmp_path / "adapter")), for_training=False)
    b = [p for n, p in back.model.named_parameters() if "lora_B" in n]
    assert b and all(torch.allclose(p, torch.full_like(p, 0.01)) for p in b)


def test_bad_adapter_path_is_a_clear_error(tmp_path, tiny_model_dir):
    with pytest.raises(model_lib.ModelLoadError, match="not a LoRA adapter folder"):
        model_lib.load_model(_cfg(tiny_model_dir, adapter=str(tmp_path)))


def test_unsloth_without_cuda_fails_clearly(monkeypatch):
    monkeypatch.setattr(model_lib, "cuda_available", lambda: False)
    with pytest.raises(model_lib.ModelLoadError, match="needs a CUDA GPU"):
        model_lib.load_model(ModelConfig(name="tiny", backend="unsloth"))
    assert "unsloth" not in sys.modules


@pytest.mark.parametrize(
    "cuda, unsloth, expected",
    [
        pytest.param(False, True, "hf", id="no GPU -> hf"),
        pytest.param(True, False, "hf", id="GPU but no unsloth -> hf"),
        pytest.param(True, True, "unsloth", id="GPU and unsloth -> unsloth"),
    ],
)
def test_auto_backend_choice(monkeypatch, cuda, unsloth, expected):
    monkeypatch.setattr(model_lib, "cuda_available", lambda: cuda)
    monkeypatch.setattr(model_lib.importlib.util, "find_spec", lambda name: object() if unsloth else None)
    backend, reason = model_lib.resolve_backend("auto")
    assert backend == expected and reason.startswith("auto")


def test_auto_picks_hf_under_a_multi_process_launch(monkeypatch):
    monkeypatch.setattr(model_lib, "cuda_available", lambda: True)
    monkeypatch.setattr(model_lib.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert model_lib.resolve_backend("auto")[0] == "hf"
    with pytest.raises(model_lib.ModelLoadError, match="one GPU"):
        model_lib.resolve_backend("unsloth")


def test_unknown_backend_is_rejected():
    with pytest.raises(model_lib.ModelLoadError, match="auto, unsloth, hf"):
        model_lib.resolve_backend("vllm")


def test_tiny_name_builds_into_cache(monkeypatch, tmp_path):
    from geo_r_lite import tiny

    monkeypatch.setattr(tiny, "DEFAULT_TINY_DIR", tmp_path / "cache")
    assert model_lib.resolve_model_path("tiny") == str(tmp_path / "cache")
    assert (tmp_path / "cache" / "config.json").is_file()


def test_package_import_is_light():
    code = "import sys, geo_r_lite, geo_r_lite.config; print([m for m in ('torch','trl','transformers','unsloth','datasets') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.gpu
def test_hf_backend_4bit_on_gpu(tiny_model_dir):
    import bitsandbytes as bnb

    loaded = model_lib.load_model(ModelConfig(name=str(tiny_model_dir), backend="hf", load_in_4bit=True))
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in loaded.model.modules())
    trainable, total = model_lib.count_parameters(loaded.model)
    assert 0 < trainable < total


@pytest.mark.gpu
def test_unsloth_backend_on_gpu(tiny_model_dir):
    pytest.importorskip("unsloth")
    loaded = model_lib.load_model(ModelConfig(name=str(tiny_model_dir), backend="unsloth", load_in_4bit=True))
    assert loaded.backend == "unsloth"
    assert model_lib.count_parameters(loaded.model)[0] > 0
