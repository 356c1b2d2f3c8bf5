"""The one place TRL's ``SFTConfig`` / ``GRPOConfig`` are built from our ``Config``.

``build_trl_config(cfg, stage)`` maps the ``train`` section (and what the hardware allows) onto
TRL's arguments; ``train.trl_overrides`` passes rarely used TRL fields verbatim and wins over
everything else. Fields that TRL does not know fail at once, naming the field.

Hardware rules:
- CPU: ``use_cpu=True`` and no bf16/fp16 (GRPOTrainer defaults to bf16, which breaks on CPU);
  the 8-bit optimizer needs bitsandbytes on CUDA, so ``adamw_torch`` is used instead.
- ``train.precision: auto`` on CUDA: bf16 where the GPU supports it, else fp16 (T4).
- Gradient checkpointing is set up by ``geo_r_lite.model`` when it loads the model ("unsloth" mode
  on that backend), so TRL is told not to switch it on a second time.
- Unsloth's vLLM generation (``model.fast_inference``) is NOT TRL's ``use_vllm``: the model carries
  its own engine and Unsloth's patched GRPOTrainer turns vLLM on (colocated) by itself, so nothing
  about vLLM is set here. ``GRPOConfig`` has no ``max_prompt_length`` in TRL 1.x: prompts are
  never truncated (truncating would cut image tokens).

TRL is imported lazily: importing this module is cheap.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from .config import Config, ConfigError
from .validate import PRECISIONS

logger = logging.getLogger(__name__)

STAGES = ("sft", "grpo")
# Optimizers that need bitsandbytes (CUDA only in our setups).
_BNB_OPTIMIZERS = {"adamw_8bit", "adamw_bnb_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "lion_8bit", "paged_lion_8bit"}


def stage_output_dir(cfg: Config, stage: str) -> Path:
    """Folder of one stage's trainer outputs (checkpoints): ``<train.output_dir>/<stage>``."""
    return Path(cfg.train.output_dir) / stage


def _cuda() -> tuple[bool, bool]:
    """(CUDA available, bf16 supported)."""
    import torch

    if not torch.cuda.is_available():
        return False, False
    return True, bool(torch.cuda.is_bf16_supported())


def precision_flags(precision: str, on_cuda: bool, bf16_ok: bool, dtype: str = "auto") -> dict[str, bool]:
    """``{"bf16": ..., "fp16": ...}`` for ``train.precision`` in {auto, bf16, fp16, fp32}.

    ``auto`` follows an explicit ``model.dtype`` (float16 -> fp16, bfloat16 -> bf16): training a
    float16 model in bf16 is refused by Unsloth and lossy elsewhere.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"train.precision must be {', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}; "
                          f"got {precision!r}")
    if not on_cuda:
        if precision in ("bf16", "fp16"):
            logger.info("train.precision=%s needs a GPU: training in fp32 on the CPU", precision)
        return {"bf16": False, "fp16": False}
    if precision == "auto":
        precision = {"float16": "fp16", "bfloat16": "bf16"}.get(dtype) or ("bf16" if bf16_ok else "fp16")
    if precision == "bf16" and not bf16_ok:
        raise ConfigError("train.precision=bf16 but this GPU has no bf16 (a T4?): use fp16 (configs/t4.yaml)")
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def trl_kwargs(
    cfg: Config, stage: str, *, on_cuda: bool, bf16_ok: bool, reward_weights: list[float] | None = None,
    suppress_token_ids: list[int] | None = None,
) -> dict[str, Any]:
    """Keyword arguments of the TRL config for ``stage`` ("sft" or "grpo"), overrides applied.

    GRPO only: ``reward_weights``, one weight per reward function (as ``build_reward_functions``
    gives); ``suppress_token_ids``, tokens generation must never sample (the vision placeholders:
    one in a completion breaks the model's image-token count in the loss forward).
    """
    if stage not in STAGES:
        raise ConfigError(f"unknown training stage {stage!r}; valid stages: {', '.join(STAGES)}")
    t = cfg.train
    optim = t.optim
    if not on_cuda and optim in _BNB_OPTIMIZERS:
        logger.info("train.optim=%s needs bitsandbytes on CUDA: using adamw_torch on the CPU", optim)
        optim = "adamw_torch"
    kwargs: dict[str, Any] = {
        "output_dir": str(stage_output_dir(cfg, stage)),
        "seed": t.seed,
        "data_seed": t.seed,
        "per_device_train_batch_size": t.per_device_train_batch_size,
        "gradient_accumulation_steps": t.gradient_accumulation_steps,
        "optim": optim,
        "lr_scheduler_type": t.lr_scheduler_type,
        "warmup_steps": t.warmup_ratio,  # transformers 5: a float in [0, 1) is a ratio of the steps
        "logging_steps": t.logging_steps,
        "save_strategy": "steps",
        "save_steps": t.save_steps,
        "save_total_limit": t.save_total_limit,
        "report_to": list(t.report_to) or "none",
        "use_cpu": not on_cuda,
        "gradient_checkpointing": False,  # already set up by geo_r_lite.model (see module docstring)
        "dataloader_num_workers": 0,  # the GRPO dataset refreshes from the sampler in this process
        "remove_unused_columns": False,  # the rewards need id, lat, lon and the place labels
        **precision_flags(t.precision, on_cuda, bf16_ok, cfg.model.dtype),
    }
    if stage == "sft":
        kwargs.update(
            learning_rate=t.sft_learning_rate,
            max_steps=t.sft_max_steps,
            max_length=None,  # truncation could cut image tokens; targets are short anyway
            dataset_kwargs={"skip_prepare_dataset": True},
        )
    else:
        kwargs.update(
            learning_rate=t.learning_rate,
            max_steps=t.max_steps,
            num_generations=t.num_generations,
            max_completion_length=t.max_completion_length,
            temperature=t.temperature,
            beta=t.beta,
        )
        for key in ("loss_type", "importance_sampling_level", "scale_rewards", "mask_truncated_completions"):
            if getattr(t, key) is not None:  # unset: TRL's own default
                kwargs[key] = getattr(t, key)
        if reward_weights is not None:
            kwargs["reward_weights"] = list(reward_weights)
        if suppress_token_ids:
            kwargs["generation_kwargs"] = {"suppress_tokens": list(suppress_token_ids)}
    overrides = dict(t.trl_overrides)
    if "generation_kwargs" in overrides and "generation_kwargs" in kwargs:
        overrides["generation_kwargs"] = {**kwargs["generation_kwargs"], **overrides["generation_kwargs"]}
    kwargs.update(overrides)
    return kwargs


def check_trainer_settings(cfg: Config) -> None:
    """Refuse an optimizer, scheduler or ``report_to`` entry the installed transformers lacks.

    The names come from transformers itself (``geo_r_lite.validate`` stays free of it). Run before
    the data pass: without it they fail only when the first trainer is built.
    """
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    t = cfg.train
    optimizers = [o.value for o in OptimizerNames]
    if t.optim not in optimizers:
        raise ConfigError(f"train.optim={t.optim!r} is not valid; e.g. adamw_torch, adamw_8bit, adafactor "
                          f"(all: {', '.join(optimizers)})")
    schedulers = [x.value for x in SchedulerType]
    if t.lr_scheduler_type not in schedulers:
        raise ConfigError(f"train.lr_scheduler_type={t.lr_scheduler_type!r} is not valid; choose one of: "
                          f"{', '.join(schedulers)}")
    check_report_to(t.report_to)
    if "grpo" in t.stages:
        from .model import world_size  # the project's one reader of RANK / WORLD_SIZE

        overrides = t.trl_overrides
        world = world_size()
        steps = overrides.get("steps_per_generation") or t.gradient_accumulation_steps
        batch = overrides.get("generation_batch_size") or t.per_device_train_batch_size * world * steps
        if batch % t.num_generations:
            raise ConfigError(f"train: a GRPO generation batch of {batch} completions (per_device_train_batch_size x "
                              f"processes x steps per generation) is not a multiple of train.num_generations="
                              f"{t.num_generations}: GRPO needs whole groups")


def check_report_to(report_to: list[str]) -> None:
    """Refuse, naming the fix, a ``train.report_to`` entry that is unknown or not installed.

    Without this, transformers raises only when the first trainer is built, after the data pass.
    """
    from transformers.integrations.integration_utils import (
        INTEGRATION_TO_CALLBACK,
        get_available_reporting_integrations,
    )

    special = {"all", "none"}
    unknown = [name for name in report_to if name not in INTEGRATION_TO_CALLBACK and name not in special]
    if unknown:
        raise ConfigError(f"train.report_to: unknown integration(s) {', '.join(map(repr, unknown))}; valid: "
                          f"{', '.join(sorted(INTEGRATION_TO_CALLBACK))} (or [] for none)")
    available = set(get_available_reporting_integrations())
    missing = [name for name in report_to if name not in special and name not in available and name != "flyte"]
    if missing:
        raise ConfigError(f"train.report_to: {', '.join(missing)} is not installed here; pip install "
                          f"{' '.join(missing)} (tensorboard is in requirements.txt), or pass --train.report_to=[]")


def build_trl_config(cfg: Config, stage: str, reward_weights: list[float] | None = None,
                     suppress_token_ids: list[int] | None = None):
    """TRL's ``SFTConfig`` (stage "sft") or ``GRPOConfig`` (stage "grpo") for this run.

    ``reward_weights`` and ``suppress_token_ids``: see ``trl_kwargs`` (GRPO only).
    """
    on_cuda, bf16_ok = _cuda()
    kwargs = trl_kwargs(cfg, stage, on_cuda=on_cuda, bf16_ok=bf16_ok, reward_weights=reward_weights,
                        suppress_token_ids=suppress_token_ids)
    if stage == "sft":
        from trl import SFTConfig as config_cls
    else:
        from trl import GRPOConfig as config_cls
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ConfigError(f"train.trl_overrides: {config_cls.__name__} has no field(s) {', '.join(unknown)}")
    return config_cls(**kwargs)
