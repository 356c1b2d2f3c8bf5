"""Loading the vision-language model and its processor, with LoRA: the one place Unsloth is used.

Backends (``model.backend``):
- ``unsloth``: ``FastVisionModel.from_pretrained(load_in_4bit=..., use_gradient_checkpointing="unsloth")``
  then ``FastVisionModel.get_peft_model``. CUDA only. Unsloth is imported lazily, here only, and must
  be imported before trl/transformers/peft to patch them: entry points call ``prepare_backend``
  before anything else heavy.
- ``hf``: transformers + peft; 4-bit NF4 through bitsandbytes when CUDA is present, full precision
  (float32) on CPU. This is also the multi-GPU path (``accelerate launch``).
- ``auto``: ``unsloth`` when CUDA and an importable Unsloth are there, else ``hf``; it logs which
  and why.

The image budget (``min_pixels``/``max_pixels``) is fixed when the processor is loaded: setting it
on a loaded processor is silently ignored by transformers 5.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ModelConfig
from .families import FAMILIES, TINY_NAMES, Family, family_of, family_of_name
from .validate import BACKENDS

logger = logging.getLogger(__name__)



class ModelLoadError(RuntimeError):
    """The model cannot be loaded as configured; the message says why and what to change."""


@dataclass
class LoadedModel:
    """A model ready to train or generate, with its processor and how it was loaded."""

    model: Any
    processor: Any
    backend: str  # "unsloth" or "hf"
    reason: str  # why this backend was used (for logs and run summaries)
    name_or_path: str


def pixel_step(processor) -> int:
    """Side multiple the processor's images must have: patch size x spatial merge (28 for Qwen2/2.5-VL).

    ``geo_r_lite.images.load_image`` resizes to multiples of it, so the processor (and vLLM, which
    processes the raw image again) keeps our size and counts the image tokens training counted.
    """
    image_processor = getattr(processor, "image_processor", processor)
    patch, merge = getattr(image_processor, "patch_size", None), getattr(image_processor, "merge_size", None)
    if not (isinstance(patch, int) and isinstance(merge, int)):
        raise ModelLoadError(f"{type(image_processor).__name__} has no patch_size/merge_size: not a Qwen-VL processor")
    return patch * merge


def _model_chain(model):
    """``model`` and the models it wraps (PeftModel -> LoraModel -> the transformers model)."""
    seen = []
    while model is not None and all(model is not m for m in seen):
        seen.append(model)
        model = getattr(model, "base_model", None) if not hasattr(model, "get_base_model") else model.get_base_model()
    return seen


def vllm_engine(model):
    """The colocated vLLM engine Unsloth attached (``fast_inference=True``), or None.

    Every Unsloth model has ``fast_generate``, engine or not (without one it raises), so only the
    engine itself says that vLLM generates: for evaluation, for GRPO rollouts, and therefore
    whether the vision placeholder tokens can be suppressed (vLLM's sampling has no such option).
    """
    for inner in _model_chain(model):
        engine = getattr(inner, "vllm_engine", None)
        if engine is not None:
            return engine
    return None


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def world_size() -> int:
    """Number of processes of a distributed launch (1 when run plainly)."""
    from .predictions import shard_from_env  # one reader of RANK / WORLD_SIZE for the project

    return shard_from_env()[1]


def resolve_backend(requested: str) -> tuple[str, str]:
    """Return (backend, reason) for ``requested`` in {auto, unsloth, hf}; raise ModelLoadError."""
    if requested not in BACKENDS:
        raise ModelLoadError(f"model.backend must be one of {', '.join(BACKENDS)}; got {requested!r}")
    has_cuda = cuda_available()
    has_unsloth = importlib.util.find_spec("unsloth") is not None
    if requested == "unsloth":
        if not has_cuda:
            raise ModelLoadError(
                "model.backend=unsloth needs a CUDA GPU, and torch.cuda.is_available() is False here. "
                "Use model.backend=hf (or auto) to run on the CPU."
            )
        if not has_unsloth:
            raise ModelLoadError("model.backend=unsloth but Unsloth is not installed: pip install -r requirements.txt")
        if world_size() > 1:
            raise ModelLoadError("model.backend=unsloth runs on one GPU; under accelerate launch use model.backend=hf")
        return "unsloth", "requested"
    if requested == "hf":
        return "hf", "requested"
    if not has_cuda:
        return "hf", "auto: no CUDA GPU, so transformers + peft in full precision on the CPU"
    if world_size() > 1:
        return "hf", "auto: several processes (accelerate launch / torchrun); Unsloth trains on one GPU"
    if not has_unsloth:
        return "hf", "auto: Unsloth is not installed, so transformers + peft (4-bit via bitsandbytes)"
    return "unsloth", "auto: CUDA GPU and Unsloth available"


def prepare_backend(cfg: ModelConfig) -> tuple[str, str]:
    """Resolve the backend and, for Unsloth, import it now, before trl/transformers/peft."""
    backend, reason = resolve_backend(cfg.backend)
    if backend == "unsloth":
        _import_unsloth()
    return backend, reason


def _import_unsloth():
    try:
        import unsloth  # noqa: F401  (patches transformers/trl/peft on import)
        from unsloth import FastVisionModel
    except Exception as err:  # Unsloth raises plain Exceptions (e.g. no GPU found)
        raise ModelLoadError(f"Unsloth could not be imported ({type(err).__name__}: {err}); use model.backend=hf") from err
    return FastVisionModel


def resolve_model_path(name: str) -> str:
    """A tiny name (``tiny``, ``tiny-qwen2.5-vl``, ``tiny-qwen3-vl``) -> its offline folder (built on
    first use); anything else as given."""
    if name in TINY_NAMES:
        from .tiny import ensure_tiny_model

        return str(ensure_tiny_model(family=TINY_NAMES[name]))
    return name


def model_family(path: str, config=None) -> Family:
    """The family (``geo_r_lite.families``) of the model at ``path``, from its config's model_type
    (``config``: a loaded model's own, else read from ``path``)."""
    if config is None:
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(path)
        except (OSError, ValueError, KeyError) as err:
            guessed = family_of_name(path)  # e.g. offline, or a model type this transformers lacks
            if guessed is not None:
                return guessed
            raise ModelLoadError(f"could not read the config of model {path!r}: {err}") from None
    model_type = getattr(config, "model_type", None)
    try:
        return family_of(model_type)
    except ValueError as err:
        raise ModelLoadError(f"{path}: {err}") from None


def _torch_dtype(name: str, on_cuda: bool):
    import torch

    if name == "auto":
        if not on_cuda:
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    try:
        return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]
    except KeyError:
        raise ModelLoadError(f"model.dtype must be auto, bfloat16, float16 or float32; got {name!r}") from None


def load_processor(path: str, cfg: ModelConfig):
    """The model's processor with the configured image budget (fixed here, at load time)."""
    from transformers import AutoProcessor

    if cfg.min_pixels > cfg.max_pixels:
        raise ModelLoadError(f"model.min_pixels ({cfg.min_pixels}) > model.max_pixels ({cfg.max_pixels})")
    processor = AutoProcessor.from_pretrained(path, min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels)
    processor.tokenizer.padding_side = "left"  # batched generation needs left padding
    return processor


def load_model(cfg: ModelConfig, *, for_training: bool = True, seed: int = 0) -> LoadedModel:
    """Load the configured model and processor; attach LoRA (training) or the saved adapter.

    With ``for_training`` a new LoRA is attached unless ``cfg.adapter`` names one to continue from.
    Without it, the adapter (if any) is loaded frozen and the model is put in eval mode.
    """
    backend, reason = prepare_backend(cfg)
    path = resolve_model_path(cfg.name)  # "tiny" may build the model here, drawing random numbers
    logger.info("loading %s with backend=%s (%s)", path, backend, reason)
    if cfg.fast_inference and backend != "unsloth":
        logger.warning("model.fast_inference needs the unsloth backend on a CUDA GPU (here: %s, %s): "
                       "generating with transformers instead of vLLM", backend, reason)
    if backend == "unsloth":
        model, processor = _load_unsloth(path, cfg, for_training, seed)
    else:
        model, processor = _load_hf(path, cfg, for_training, seed)
    if not for_training:
        model.eval()
    return LoadedModel(model=model, processor=processor, backend=backend, reason=reason, name_or_path=path)


def check_fast_inference(path: str, cfg: ModelConfig) -> None:
    """Refuse ``fast_inference`` for a family Unsloth's vLLM cannot serve, once its type is known
    (Unsloth itself only prints a note and turns it off)."""
    if not cfg.fast_inference:
        return
    family = model_family(path)
    if not family.vllm:
        served = ", ".join(f.title for f in FAMILIES.values() if f.vllm)
        raise ModelLoadError(f"model.fast_inference=true but {path} is a {family.model_type} model ({family.title}), "
                             f"which Unsloth's vLLM does not serve (only {served}): set model.fast_inference=false "
                             "or use Qwen2.5-VL (configs/qwen25vl_vllm.yaml)")


def _load_unsloth(path: str, cfg: ModelConfig, for_training: bool, seed: int):
    check_fast_inference(path, cfg)
    FastVisionModel = _import_unsloth()
    model, unsloth_processor = FastVisionModel.from_pretrained(
        path,
        load_in_4bit=cfg.load_in_4bit,
        dtype=None if cfg.dtype == "auto" else _torch_dtype(cfg.dtype, on_cuda=True),
        use_gradient_checkpointing="unsloth" if cfg.gradient_checkpointing else False,
        max_seq_length=cfg.max_seq_length,
        fast_inference=cfg.fast_inference,
        gpu_memory_utilization=cfg.gpu_memory_utilization,
        **({"max_lora_rank": max_lora_rank(cfg)} if cfg.fast_inference else {}),
    )
    # Unsloth loads the processor with the model's default budget: swap in the budgeted one.
    unsloth_processor.image_processor = load_processor(path, cfg).image_processor
    unsloth_processor.tokenizer.padding_side = "left"
    if cfg.adapter or for_training:
        # A saved adapter goes through get_peft_model too (then its weights are loaded): only that
        # path gives the model all of Unsloth's patches, load_lora (how vLLM receives the LoRA) and
        # its save functions, which PeftModel.from_pretrained would not.
        saved = _adapter_config(cfg.adapter) if cfg.adapter else {}
        # A saved adapter's own layout (its target modules), whatever model.finetune_* say now.
        targets = {"target_modules": saved["target_modules"]} if saved.get("target_modules") else {}
        vision = cfg.finetune_vision_layers if not targets else "visual" in str(saved["target_modules"])
        model = FastVisionModel.get_peft_model(
            model,
            finetune_vision_layers=vision,
            finetune_language_layers=cfg.finetune_language_layers or bool(targets),
            **targets,
            finetune_attention_modules=True,
            finetune_mlp_modules=True,
            r=saved.get("r", cfg.lora_r),
            lora_alpha=saved.get("lora_alpha", cfg.lora_alpha),
            lora_dropout=saved.get("lora_dropout", cfg.lora_dropout),
            bias="none",
            random_state=seed,
            use_gradient_checkpointing="unsloth" if cfg.gradient_checkpointing else False,
        )
        if cfg.adapter:
            _load_adapter_weights(model, cfg.adapter)
            if vllm_engine(model) is not None and not hasattr(model, "load_lora"):
                raise ModelLoadError("this Unsloth version gives the model no load_lora, so vLLM would ignore the "
                                     "adapter; set model.fast_inference=false")
    if for_training:
        FastVisionModel.for_training(model)
    else:
        FastVisionModel.for_inference(model)
    return model, unsloth_processor


def _adapter_config(adapter: str) -> dict:
    path = Path(adapter) / "adapter_config.json"
    if not path.is_file():
        raise ModelLoadError(f"model.adapter={adapter!r} is not a LoRA adapter folder (no adapter_config.json)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ModelLoadError(f"{path} is unreadable: {err}") from None


def _load_adapter_weights(model, adapter: str) -> None:
    """Put a saved adapter's LoRA weights into ``model``'s LoRA layers; the layouts must match."""
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights

    try:
        weights = load_peft_weights(str(adapter), device="cpu")  # safetensors or .bin
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"model.adapter={adapter!r}: cannot read its weights ({err})") from None
    result = set_peft_model_state_dict(model, weights)
    missing = [k for k in result.missing_keys if "lora_" in k]
    if result.unexpected_keys or missing:
        raise ModelLoadError(
            f"model.adapter={adapter!r} does not fit the LoRA layers model.finetune_language_layers / "
            f"finetune_vision_layers make ({len(result.unexpected_keys)} of its weights have no layer, {len(missing)} "
            f"layers get no weight, e.g. {(result.unexpected_keys or missing)[0]}): use the settings it was trained with")
    logger.info("loaded LoRA adapter %s into Unsloth's LoRA layers", adapter)


# The LoRA ranks vLLM can reserve a slot for.
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def adapter_rank(adapter: str | None) -> int | None:
    """The LoRA rank ``r`` a saved adapter folder was trained with (None without one)."""
    if not adapter:
        return None
    try:
        return int(_adapter_config(adapter)["r"])
    except (KeyError, TypeError, ValueError) as err:
        raise ModelLoadError(f"model.adapter={adapter!r}: no usable LoRA rank in its adapter_config.json "
                             f"({err})") from None


def max_lora_rank(cfg: ModelConfig) -> int:
    """vLLM's LoRA slot size for ``fast_inference``: ``model.max_lora_rank``, else the smallest slot
    vLLM offers that holds ``model.lora_r`` (or the saved adapter's rank)."""
    rank = max(cfg.lora_r, adapter_rank(cfg.adapter) or 0)
    if cfg.max_lora_rank is not None:
        if cfg.max_lora_rank < rank:
            raise ModelLoadError(f"LoRA rank {rank} exceeds model.max_lora_rank={cfg.max_lora_rank}, vLLM's LoRA "
                                 "rank limit with fast_inference: raise model.max_lora_rank or leave it unset")
        return cfg.max_lora_rank
    for slot in VLLM_LORA_RANKS:
        if slot >= rank:
            return slot
    raise ModelLoadError(f"LoRA rank {rank} is above vLLM's largest ({VLLM_LORA_RANKS[-1]}): lower model.lora_r "
                         "or set model.fast_inference=false")


def _load_hf(path: str, cfg: ModelConfig, for_training: bool, seed: int = 0):
    import torch
    from transformers import AutoModelForImageTextToText

    on_cuda = torch.cuda.is_available()
    dtype = _torch_dtype(cfg.dtype, on_cuda)
    kwargs: dict[str, Any] = {"dtype": dtype}
    quantized = on_cuda and cfg.load_in_4bit
    if cfg.load_in_4bit and not on_cuda:
        logger.info("model.load_in_4bit needs CUDA (bitsandbytes): loading the model unquantized (%s) on the CPU",
                    str(dtype).removeprefix("torch."))
    if on_cuda:
        import os

        # One full copy per process (DDP): each rank places the model on its own GPU.
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", 0))}
    if quantized:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
    try:
        model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
    except OSError as err:
        hint = ""
        if cfg.adapter and (Path(cfg.adapter) / "adapter_config.json").is_file():
            base = json.loads((Path(cfg.adapter) / "adapter_config.json").read_text()).get("base_model_name_or_path")
            if base and base != path:
                hint = (f" The adapter {cfg.adapter} was trained on {base}: pass --model.name={base} or the "
                        "run's --config.")
        raise ModelLoadError(
            f"could not load model {path!r}: {str(err).rstrip('.')}. Use a local folder, or make sure the hub is "
            f"reachable (HF_HUB_OFFLINE=1 only works with a model already in the cache).{hint}"
        ) from err
    processor = load_processor(path, cfg)
    if not for_training:
        return (_attach_adapter(model, cfg.adapter, trainable=False) if cfg.adapter else model), processor
    non_reentrant = {"use_reentrant": False}
    if quantized:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing,
                                                gradient_checkpointing_kwargs=non_reentrant)
    elif cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=non_reentrant)
    _drop_input_grad_hooks(model)  # now and after peft, which adds its own (see the function)
    if cfg.adapter:  # continue training a saved adapter (e.g. GRPO after a finished SFT stage)
        model = _attach_adapter(model, cfg.adapter, trainable=True)
    else:
        from peft import get_peft_model
        from transformers import set_seed

        # Seeded right before the LoRA draws its initial weights: the same run whatever consumed
        # random numbers before (building the tiny model on a cold cache, loading, the data pass).
        set_seed(seed)
        model = get_peft_model(model, lora_config(cfg, model_family(path, model.config)))
    _drop_input_grad_hooks(model)
    return model, processor


# Names of the hook functions transformers (make_inputs_require_grads) and peft
# (make_inputs_require_grad) register to make embedding outputs require grad.
_INPUT_GRAD_HOOKS = ("make_inputs_require_grads", "make_inputs_require_grad")


def _drop_input_grad_hooks(model) -> None:
    """Remove the "inputs require grad" hooks transformers and peft add with checkpointing.

    They exist for reentrant checkpointing, which we do not use (non-reentrant needs no grad on
    its inputs). transformers puts one on every input embedding, the vision tower's patch
    embedding included: with language-only LoRA the whole frozen vision tower would then build a
    graph and be backpropagated through, for nothing.
    """
    # Each enable_input_require_grads call forgets the handles of the previous one, so
    # disable_input_require_grads alone can leave hooks behind: remove them by what they are.
    for module in model.modules():
        for key, hook in list(module._forward_hooks.items()):
            if getattr(hook, "__name__", "") in _INPUT_GRAD_HOOKS:
                del module._forward_hooks[key]
        if getattr(module, "_require_grads_hooks", None):
            module._require_grads_hooks = []


def lora_config(cfg: ModelConfig, family: Family):
    """The peft LoraConfig for the hf backend: the family's language and/or vision layers, as configured."""
    from peft import LoraConfig

    try:
        targets = family.lora_targets(language=cfg.finetune_language_layers, vision=cfg.finetune_vision_layers)
    except ValueError:
        raise ModelLoadError("LoRA needs model.finetune_language_layers or model.finetune_vision_layers") from None
    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        bias="none",
        target_modules=targets,
        task_type="CAUSAL_LM",
    )


def _attach_adapter(model, adapter: str, *, trainable: bool):
    from peft import PeftModel

    if not (Path(adapter) / "adapter_config.json").is_file():
        raise ModelLoadError(f"model.adapter={adapter!r} is not a LoRA adapter folder (no adapter_config.json)")
    logger.info("loading LoRA adapter %s (trainable=%s)", adapter, trainable)
    return PeftModel.from_pretrained(model, adapter, is_trainable=trainable)


def merge_adapter(cfg: ModelConfig, adapter: str | Path, folder: str | Path) -> Path:
    """Save base + LoRA merged into full-precision weights (``model.dtype``; float32 on a CPU).

    The base is loaded again unquantized, on the CPU, whatever the training used: merging into a
    4-bit model would requantize the merged weights (rounding the LoRA update away), and the GPU
    still holds the training model. Needs the base weights in 16 bits (not a pre-quantized repo).
    """
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForImageTextToText

    path = resolve_model_path(cfg.name)
    if getattr(AutoConfig.from_pretrained(path), "quantization_config", None):
        raise ModelLoadError(f"{path} is a pre-quantized checkpoint: merging needs the 16-bit base "
                             "(set model.name to it) or keep the LoRA adapter unmerged")
    dtype = _torch_dtype(cfg.dtype, on_cuda=cuda_available())
    logger.info("merging %s into %s (%s, on the CPU)", adapter, path, dtype)
    base = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    folder = Path(folder)
    merged.save_pretrained(folder)
    load_processor(path, cfg).save_pretrained(folder)
    logger.info("saved merged weights to %s", folder)
    return folder


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
