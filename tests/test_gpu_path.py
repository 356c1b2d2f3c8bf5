"""What the GPU path gets wrong unless we guard it, checked on the CPU with the tiny model.

Padding forced to the right by Unsloth's trainers, adapters that vLLM would ignore, vision tokens
recounted by another processor, gradients through a frozen vision tower, merging into a 4-bit
base, Unsloth options not passed on. Unsloth itself cannot run here: where its behaviour matters,
a stand-in reproduces what its source does (see the docstrings in geo_r_lite/model.py).
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from geo_r_lite import evaluation
from geo_r_lite import model as model_lib
from geo_r_lite.config import ModelConfig, config_from_dict
from geo_r_lite.images import load_image

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BUDGET = {"min_pixels": 16 * 28 * 28, "max_pixels": 64 * 28 * 28}


def _model_cfg(tiny_model_dir, **kw) -> ModelConfig:
    values = {"name": str(tiny_model_dir), "backend": "hf", "load_in_4bit": False, "gradient_checkpointing": False,
              **BUDGET}
    values.update(kw)
    return ModelConfig(**values)


def _noise(width, height, seed=0):
    import numpy as np
    from PIL import Image

    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def _images():
    """Photos of three aspect ratios: three different prompt lengths in one batch."""
    return [load_image(_noise(w, h, i), **BUDGET) for i, (w, h) in enumerate([(400, 300), (300, 600), (500, 500)])]


# --------------------------------------------------------------------------- 1. left padding


def test_evaluation_left_pads_even_when_the_tokenizer_was_set_to_right(tiny_model_dir):
    loaded = model_lib.load_model(_model_cfg(tiny_model_dir), for_training=False)
    cfg = config_from_dict({"model": {"name": str(tiny_model_dir), **BUDGET}, "eval": {"max_new_tokens": 12}})
    images = _images()
    processor = loaded.processor
    # What Unsloth's GRPO/SFT trainer constructor does to the processor it is handed.
    processor.tokenizer.padding_side = "right"
    text = processor.apply_chat_template(evaluation.build_prompt(), add_generation_prompt=True, tokenize=False)
    plain = processor(text=[text] * 3, images=images, return_tensors="pt", padding=True)
    assert (plain["attention_mask"][:, -1] == 0).any(), "the setup must really produce right padding"

    batched = evaluation.generate_batch(loaded, images, cfg)
    processor.tokenizer.padding_side = "left"
    assert evaluation.generate_batch(loaded, images, cfg) == batched
    # And a batch answers as each image alone does.
    assert [evaluation.generate_batch(loaded, [image], cfg)[0] for image in images] == batched


# --------------------------------------------------------------------------- 4. image sizes


def test_the_processor_keeps_our_image_sizes(tiny_model_dir):
    processor = model_lib.load_processor(str(tiny_model_dir), _model_cfg(tiny_model_dir))
    step = model_lib.pixel_step(processor)
    assert step == 28
    for w, h in [(4000, 3000), (3000, 2000), (640, 480), (50, 40), (300, 200), (1200, 300), (333, 777)]:
        image = load_image(_noise(w, h), step=step, **BUDGET)
        assert image.width % step == 0 and image.height % step == 0
        grid = processor.image_processor(images=[image], return_tensors="pt")["image_grid_thw"][0].tolist()
        patch = processor.image_processor.patch_size
        assert (grid[1] * patch, grid[2] * patch) == (image.height, image.width), (w, h)
        # Image tokens in the prompt = what the processor computes for our size.
        text = processor.apply_chat_template(evaluation.build_prompt(), add_generation_prompt=True, tokenize=False)
        ids = processor(text=[text], images=[image], return_tensors="pt")["input_ids"][0].tolist()
        image_token = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
        assert ids.count(image_token) == image.width * image.height // step ** 2


def test_building_the_tiny_model_leaves_the_processor_class_defaults_alone(tmp_path):
    from transformers import Qwen2VLImageProcessor

    from geo_r_lite.tiny import build_tiny_model

    before = dict(Qwen2VLImageProcessor.size)
    build_tiny_model(tmp_path / "tiny", overwrite=True)
    assert Qwen2VLImageProcessor.size == before and Qwen2VLImageProcessor().size["longest_edge"] == 28 * 28 * 1280


# --------------------------------------------------------------------------- 7. frozen vision tower


def _visual(model):
    return next(m for name, m in model.named_modules() if name.endswith("model.visual"))


def _train_step(loaded):
    """One forward/backward in training mode; returns whether the vision tower's output had a graph."""
    import torch

    processor = loaded.processor
    text = processor.apply_chat_template(evaluation.build_prompt(), add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text + "Paris"], images=[_images()[0]], return_tensors="pt").to(loaded.model.device)
    seen = {}

    def record(module, args, output):
        tensor = output if torch.is_tensor(output) else output.pooler_output
        seen["graph"] = tensor.requires_grad

    hook = _visual(loaded.model).register_forward_hook(record)
    loaded.model.train()
    try:
        out = loaded.model(**inputs, labels=inputs["input_ids"])
        out.loss.backward()
    finally:
        hook.remove()
    return seen["graph"]


@pytest.mark.parametrize("checkpointing", [True, False], ids=["gradient-checkpointing", "no-checkpointing"])
def test_a_frozen_vision_tower_gets_no_gradient(tiny_model_dir, checkpointing):
    loaded = model_lib.load_model(_model_cfg(tiny_model_dir, gradient_checkpointing=checkpointing))
    visual = _visual(loaded.model)
    assert not any(p.requires_grad for p in visual.parameters())
    assert not [h for m in visual.modules() for h in m._forward_hooks.values()
                if getattr(h, "__name__", "").startswith("make_inputs_require_grad")]
    assert _train_step(loaded) is False, "the frozen vision tower built a graph"
    assert all(p.grad is None for p in visual.parameters())
    grads = [p.grad for n, p in loaded.model.named_parameters() if "lora_" in n and "language_model" in n]
    assert grads and all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)


def test_vision_lora_still_trains_the_vision_tower(tiny_model_dir):
    loaded = model_lib.load_model(_model_cfg(tiny_model_dir, gradient_checkpointing=True, finetune_vision_layers=True))
    assert _train_step(loaded) is True
    grads = [p.grad for n, p in loaded.model.named_parameters() if "lora_" in n and ".visual." in n]
    assert grads and all(g is not None for g in grads)


def test_checkpointing_is_non_reentrant_and_kept_when_training_resumes_from_an_adapter(tmp_path, tiny_model_dir):
    fresh = model_lib.load_model(_model_cfg(tiny_model_dir, gradient_checkpointing=True))
    fresh.model.save_pretrained(tmp_path / "adapter")
    again = model_lib.load_model(_model_cfg(tiny_model_dir, gradient_checkpointing=True,
                                            adapter=str(tmp_path / "adapter")))
    base = again.model.get_base_model()
    assert base.is_gradient_checkpointing
    layer = base.model.language_model.layers[0]
    assert layer._gradient_checkpointing_func.keywords.get("use_reentrant") is False
    assert any(p.requires_grad for n, p in again.model.named_parameters() if "lora_" in n)
    assert _train_step(again) is False


# --------------------------------------------------------------------------- 8. merging


def _merge_a_trained_adapter(loaded, cfg, tmp_path) -> Path:
    """Give the LoRA non-zero B weights (as training would), save it, merge it; the merged folder."""
    import torch

    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in loaded.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    loaded.model.save_pretrained(tmp_path / "adapter")
    return model_lib.merge_adapter(cfg, tmp_path / "adapter", tmp_path / "merged")


def test_merged_weights_reproduce_the_adapter_outputs(tmp_path, tiny_model_dir):
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForImageTextToText

    cfg = _model_cfg(tiny_model_dir)
    loaded = model_lib.load_model(cfg)
    folder = _merge_a_trained_adapter(loaded, cfg, tmp_path)

    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
        assert not [k for k in keys if "lora_" in k]
        assert {f.get_tensor(k).dtype for k in keys} == {torch.float32}
    merged = AutoModelForImageTextToText.from_pretrained(folder).eval()
    loaded.model.eval()
    processor = model_lib.load_processor(str(folder), cfg)
    text = processor.apply_chat_template(evaluation.build_prompt(), add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[_images()[1]], return_tensors="pt")
    with torch.no_grad():
        want = loaded.model(**inputs).logits
        got = merged(**inputs).logits
        base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()(**inputs).logits
    assert not torch.allclose(want, base, atol=1e-3), "the adapter must change the outputs for this test to mean anything"
    assert torch.allclose(got, want, atol=1e-4)


def test_merging_refuses_a_pre_quantized_base(tmp_path, tiny_model_dir):
    import json
    import shutil

    base = tmp_path / "bnb"
    shutil.copytree(tiny_model_dir, base)
    config = json.loads((base / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (base / "config.json").write_text(json.dumps(config))
    with pytest.raises(model_lib.ModelLoadError, match="pre-quantized"):
        model_lib.merge_adapter(_model_cfg(base), tmp_path / "adapter", tmp_path / "merged")


# --------------------------------------------------------------------------- 2-3. vLLM and adapters


class _NoEngineModel:
    """What every Unsloth model looks like without fast_inference: fast_generate, no engine."""

    def fast_generate(self, *args, **kwargs):
        raise RuntimeError("Unsloth: `sampling_params` is only supported when `fast_inference=True` (vLLM)")


class _EngineModel:
    def __init__(self, with_lora=True):
        self.base_model = types.SimpleNamespace(model=types.SimpleNamespace(vllm_engine=object()))
        self.calls = []
        if with_lora:
            self.load_lora = lambda path: self.calls.append(path) or f"request-{len(self.calls)}"

    def get_base_model(self):
        return self.base_model.model


def test_vllm_is_detected_by_its_engine_not_by_fast_generate():
    assert model_lib.vllm_engine(_NoEngineModel()) is None
    assert model_lib.vllm_engine(_EngineModel()) is not None
    cfg = config_from_dict({"model": {"fast_inference": True}})
    loaded = types.SimpleNamespace(model=_NoEngineModel(), backend="unsloth")
    assert evaluation._vllm_wanted(cfg, loaded) is False
    assert evaluation._vllm_wanted(cfg, types.SimpleNamespace(model=_EngineModel(), backend="unsloth")) is True


def test_the_lora_request_is_made_once_and_a_missing_one_stops_the_run(tmp_path):
    cfg = config_from_dict({"model": {"fast_inference": True, "adapter": str(tmp_path)}})
    engine_model = _EngineModel()
    loaded = types.SimpleNamespace(model=engine_model, backend="unsloth")
    first = evaluation._lora_request(loaded, cfg)
    assert evaluation._lora_request(loaded, cfg) is first and engine_model.calls == [str(tmp_path)]
    with pytest.raises(model_lib.ModelLoadError, match="cannot reach vLLM"):
        evaluation._lora_request(types.SimpleNamespace(model=_EngineModel(with_lora=False), backend="unsloth"), cfg)
    no_adapter = config_from_dict({"model": {"fast_inference": True}})
    assert evaluation._lora_request(loaded, no_adapter) is None


# --------------------------------------------------------------------------- 6. Unsloth options


class _FakeFastVisionModel:
    """Records what geo_r_lite.model passes to Unsloth; loads the tiny model with transformers."""

    calls: list = []

    @classmethod
    def from_pretrained(cls, path, **kwargs):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        cls.calls.append(("from_pretrained", kwargs))
        return AutoModelForImageTextToText.from_pretrained(path), AutoProcessor.from_pretrained(path)

    @classmethod
    def get_peft_model(cls, model, **kwargs):
        """Like Unsloth: LoRA on the asked layers, and load_lora when a vLLM engine is attached."""
        from peft import LoraConfig, get_peft_model

        from geo_r_lite.families import family_of

        cls.calls.append(("get_peft_model", kwargs))
        targets = kwargs.get("target_modules") or family_of(model.config.model_type).lora_targets(
            language=kwargs["finetune_language_layers"], vision=kwargs["finetune_vision_layers"])
        peft_model = get_peft_model(model, LoraConfig(r=kwargs["r"], lora_alpha=kwargs["lora_alpha"],
                                                      target_modules=targets, task_type="CAUSAL_LM"))
        if cls.engine:
            peft_model.base_model.model.vllm_engine = object()
            if cls.adds_load_lora:
                peft_model.load_lora = lambda path: ("request", path)
        return peft_model

    engine = False
    adds_load_lora = True

    @staticmethod
    def for_training(model):
        pass

    @staticmethod
    def for_inference(model):
        pass


@pytest.mark.parametrize("dtype, fast, lora_r, expected_rank", [
    ("float16", False, 16, None), ("bfloat16", True, 16, 16), ("auto", True, 100, 128), ("auto", True, 64, 64),
])
def test_unsloth_gets_dtype_and_max_lora_rank(monkeypatch, tiny_model_dir, dtype, fast, lora_r, expected_rank):
    import torch

    _FakeFastVisionModel.calls = []
    monkeypatch.setattr(model_lib, "_import_unsloth", lambda: _FakeFastVisionModel)
    # The tiny model is a Qwen2-VL, which fast_inference refuses (tested in test_validate.py).
    monkeypatch.setattr(model_lib, "check_fast_inference", lambda path, cfg: None)
    cfg = _model_cfg(tiny_model_dir, backend="unsloth", dtype=dtype, fast_inference=fast, lora_r=lora_r)
    model_lib._load_unsloth(str(tiny_model_dir), cfg, for_training=True, seed=0)
    kwargs = dict(_FakeFastVisionModel.calls)["from_pretrained"]
    assert kwargs["dtype"] == {"auto": None, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    assert kwargs.get("max_lora_rank") == expected_rank
    assert dict(_FakeFastVisionModel.calls)["get_peft_model"]["r"] == lora_r


def test_max_lora_rank_rules(tmp_path):
    (tmp_path / "adapter_config.json").write_text('{"r": 200}')
    assert model_lib.max_lora_rank(ModelConfig(lora_r=8)) == 8
    assert model_lib.max_lora_rank(ModelConfig(lora_r=16, adapter=str(tmp_path))) == 256
    assert model_lib.max_lora_rank(ModelConfig(lora_r=16, max_lora_rank=32)) == 32
    with pytest.raises(model_lib.ModelLoadError, match="exceeds model.max_lora_rank=64"):
        model_lib.max_lora_rank(ModelConfig(lora_r=128, max_lora_rank=64))
    with pytest.raises(model_lib.ModelLoadError, match="above vLLM's largest"):
        model_lib.max_lora_rank(ModelConfig(lora_r=1024))


# --------------------------------------------------------------------------- fast_inference on the hf path


def test_fast_inference_without_an_engine_keeps_suppressing_vision_tokens(tmp_path, tiny_model_dir, caplog):
    import logging

    from geo_r_lite.config import load_config
    from geo_r_lite.records import SkipStats
    from geo_r_lite.sources import iter_records
    from geo_r_lite.training import build_grpo_trainer, fill_sampler, make_sampler, vision_token_ids

    cfg = load_config(REPO / "configs" / "smoke.yaml", [
        f"--model.name={tiny_model_dir}", "--model.fast_inference=true", f"--train.output_dir={tmp_path}",
        "--data.synthetic_size=8", "--sampler.capacity=8"])
    with caplog.at_level(logging.WARNING):
        loaded = model_lib.load_model(cfg.model)
    assert "generating with transformers instead of vLLM" in caplog.text
    sampler = make_sampler(cfg)
    fill_sampler(sampler, iter_records(cfg.data))
    parts = build_grpo_trainer(cfg, loaded, sampler, SkipStats())
    suppressed = parts.trainer.args.generation_kwargs["suppress_tokens"]
    assert sorted(suppressed) == sorted(vision_token_ids(loaded.processor)) and suppressed


def test_the_vllm_requirements_differ_only_where_vllm_forces_it():
    def pins(name):
        lines = (REPO / name).read_text().splitlines()
        return dict(line.split("==") for line in lines if line and not line.startswith("#"))

    main, vllm = pins("requirements.txt"), pins("requirements-vllm.txt")
    forced = {"vllm", "torch", "torchvision", "numpy", "xformers", "flashinfer-python"}
    assert {k: v for k, v in vllm.items() if k not in forced} == {k: v for k, v in main.items() if k not in forced}
    assert vllm["torch"] != main["torch"]


# --------------------------------------------------------------------------- on a GPU (bench/gpu_check.sh)


@pytest.mark.gpu
def test_4bit_training_keeps_the_vision_tower_frozen_and_merges_to_full_precision(tmp_path, tiny_model_dir):
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForImageTextToText

    cfg = _model_cfg(tiny_model_dir, load_in_4bit=True, gradient_checkpointing=True)
    loaded = model_lib.load_model(cfg)
    assert _train_step(loaded) is False
    folder = _merge_a_trained_adapter(loaded, cfg, tmp_path)
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        assert not [k for k in f.keys() if "lora_" in k]
        assert {f.get_tensor(k).dtype for k in f.keys()} <= {torch.bfloat16, torch.float16}
    merged = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32).eval()
    reference = model_lib.load_model(_model_cfg(tiny_model_dir, adapter=str(tmp_path / "adapter")), for_training=False)
    processor = reference.processor
    text = processor.apply_chat_template(evaluation.build_prompt(), add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[_images()[0]], return_tensors="pt")
    with torch.no_grad():
        want = reference.model(**inputs.to(reference.model.device)).logits.float().cpu()
        got = merged(**inputs.to("cpu")).logits
    assert torch.allclose(got, want, atol=5e-2)


@pytest.mark.gpu
def test_unsloth_trainer_right_padding_does_not_reach_the_evaluation(tmp_path, tiny_model_dir):
    pytest.importorskip("unsloth")
    from geo_r_lite.config import load_config
    from geo_r_lite.records import SkipStats
    from geo_r_lite.sources import iter_records
    from geo_r_lite.training import build_grpo_trainer, fill_sampler, make_sampler

    cfg = load_config(REPO / "configs" / "smoke.yaml", [
        f"--model.name={tiny_model_dir}", "--model.backend=unsloth", "--model.load_in_4bit=true",
        f"--train.output_dir={tmp_path}", "--data.synthetic_size=8", "--sampler.capacity=8",
        "--eval.max_new_tokens=12"])
    loaded = model_lib.load_model(cfg.model)
    sampler = make_sampler(cfg)
    fill_sampler(sampler, iter_records(cfg.data))
    build_grpo_trainer(cfg, loaded, sampler, SkipStats())  # Unsloth's constructor sets right padding
    images = _images()
    loaded.model.eval()
    batched = evaluation.generate_batch(loaded, images, cfg)
    assert [evaluation.generate_batch(loaded, [image], cfg)[0] for image in images] == batched


def _saved_adapter(tiny_model_dir, tmp_path, **kw):
    import torch

    loaded = model_lib.load_model(_model_cfg(tiny_model_dir, **kw))
    with torch.no_grad():
        for name, p in loaded.model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.02)
    loaded.model.save_pretrained(tmp_path / "adapter")
    return str(tmp_path / "adapter")


@pytest.mark.parametrize("for_training", [True, False], ids=["continue-training", "evaluate"])
def test_a_saved_adapter_goes_through_unsloths_get_peft_model_with_its_weights(
        monkeypatch, tiny_model_dir, tmp_path, for_training):
    import torch

    adapter = _saved_adapter(tiny_model_dir, tmp_path, lora_r=8)
    monkeypatch.setattr(model_lib, "_import_unsloth", lambda: _FakeFastVisionModel)
    monkeypatch.setattr(_FakeFastVisionModel, "engine", True)
    cfg = _model_cfg(tiny_model_dir, backend="unsloth", adapter=adapter)  # lora_r 16 in the config, 8 saved
    model, _ = model_lib._load_unsloth(str(tiny_model_dir), cfg, for_training=for_training, seed=0)
    assert dict(_FakeFastVisionModel.calls)["get_peft_model"]["r"] == 8, "the adapter's own rank"
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and all(torch.allclose(p, torch.full_like(p, 0.02)) for p in lora_b)
    assert model.load_lora("x") == ("request", "x")


def test_an_adapter_vllm_would_ignore_or_that_does_not_fit_stops_the_load(monkeypatch, tiny_model_dir, tmp_path):
    monkeypatch.setattr(model_lib, "_import_unsloth", lambda: _FakeFastVisionModel)
    monkeypatch.setattr(_FakeFastVisionModel, "engine", True)
    adapter = _saved_adapter(tiny_model_dir, tmp_path)
    monkeypatch.setattr(_FakeFastVisionModel, "adds_load_lora", False)  # a version that no longer does it
    with pytest.raises(model_lib.ModelLoadError, match="vLLM would ignore the adapter"):
        model_lib._load_unsloth(str(tiny_model_dir), _model_cfg(tiny_model_dir, backend="unsloth", adapter=adapter),
                                for_training=False, seed=0)
    monkeypatch.setattr(_FakeFastVisionModel, "adds_load_lora", True)
    from safetensors.torch import load_file, save_file

    weights = load_file(str(Path(adapter) / "adapter_model.safetensors"))
    save_file({k: v for k, v in weights.items() if ".layers.0." not in k}, str(Path(adapter) / "adapter_model.safetensors"))
    with pytest.raises(model_lib.ModelLoadError, match="does not fit the LoRA layers"):
        model_lib._load_unsloth(str(tiny_model_dir), _model_cfg(tiny_model_dir, backend="unsloth", adapter=adapter),
                                for_training=True, seed=0)


def test_an_adapter_keeps_its_own_layers_whatever_the_config_says(monkeypatch, tiny_model_dir, tmp_path):
    monkeypatch.setattr(model_lib, "_import_unsloth", lambda: _FakeFastVisionModel)
    adapter = _saved_adapter(tiny_model_dir, tmp_path, finetune_vision_layers=True)
    cfg = _model_cfg(tiny_model_dir, backend="unsloth", adapter=adapter)  # finetune_vision_layers: false
    model, _ = model_lib._load_unsloth(str(tiny_model_dir), cfg, for_training=False, seed=0)
    assert dict(_FakeFastVisionModel.calls)["get_peft_model"]["finetune_vision_layers"] is True
    assert any(".visual." in n and "lora_B" in n for n, _ in model.named_parameters())
