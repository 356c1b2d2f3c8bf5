"""Settings refused when the config loads, before any data or model work.

``check_config(cfg)`` raises ``ConfigError`` with one line naming the key, the bad value and what
is valid: enumerated settings (backend, dtype, sources, stages, reward names, combine, distance
shape, region key, precision), numeric ranges (probabilities in [0, 1], positive sizes, an image
budget with room for every aspect ratio) and cross-field rules (one weight per reward name, a budget
holding one image patch, precision matching the model dtype, no vision LoRA with vLLM).
``load_config`` runs it, so train.py and eval.py refuse alike.

What only the machine decides is not refused here: ``fast_inference``, 4-bit loading and 8-bit
optimizers fall back on a CPU with one log line (``geo_r_lite.model``, ``geo_r_lite.trl_config``),
so any shipped config can be tried on a CPU. Optimizer, scheduler and report_to names are checked
against the installed transformers by ``geo_r_lite.trl_config.check_trainer_settings`` (train.py,
before the data pass), which keeps this module free of heavy imports.
"""

from __future__ import annotations

import math
from typing import Any

from geo_r_lite.config import Config, ConfigError

BACKENDS = ("auto", "unsloth", "hf")
DTYPES = ("auto", "bfloat16", "float16", "float32")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
HIERARCHY_LEVELS = ("continent", "country", "region", "city")
# TRL 1.14's GRPO variants (GRPOConfig's documented values).
LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")
IMPORTANCE_LEVELS = ("token", "sequence")
REWARD_SCALING = ("group", "batch", "none")
# Precision a dtype cannot train under (Unsloth refuses the pair; autocast would be lossy).
_CLASHES = {("float16", "bf16"), ("bfloat16", "fp16")}


def _one_of(key: str, value: Any, valid) -> None:
    if value not in valid:
        raise ConfigError(f"{key}={value!r} is not valid; choose one of: {', '.join(map(str, valid))}")


def _all_of(key: str, values, valid) -> None:
    bad = [v for v in values if v not in valid]
    if bad:
        raise ConfigError(f"{key}: {', '.join(map(repr, bad))} not valid; choose from: {', '.join(valid)}")
    twice = sorted({v for v in values if list(values).count(v) > 1})
    if twice:
        raise ConfigError(f"{key}: {', '.join(twice)} listed twice")


def _check(key: str, value, ok: bool, what: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is not valid; it must be {what}")


def _positive(key: str, value) -> None:
    _check(key, value, value is not None and value > 0 and math.isfinite(value), "a positive number")


def _probability(key: str, value, *, open_low: bool = False, open_high: bool = False) -> None:
    low = value > 0 if open_low else value >= 0
    high = value < 1 if open_high else value <= 1
    bounds = f"{'(' if open_low else '['}0, 1{')' if open_high else ']'}"
    _check(key, value, low and high, f"in {bounds}")


def check_config(cfg: Config) -> Config:
    """Return ``cfg`` unchanged, or raise ``ConfigError`` naming the first bad setting."""
    from geo_r_lite.metrics import DISTANCES
    from geo_r_lite.reward_registry import COMBINE_MODES, REWARD_REGISTRY
    from geo_r_lite.rewards import DISTANCE_SHAPES
    from geo_r_lite.sampler import REGION_KEYS
    from geo_r_lite.sources import SOURCES
    from geo_r_lite.trl_config import STAGES

    m, d, s, r, t, e = cfg.model, cfg.data, cfg.sampler, cfg.reward, cfg.train, cfg.eval
    # ---- model
    _one_of("model.backend", m.backend, BACKENDS)
    _one_of("model.dtype", m.dtype, DTYPES)
    for key in ("min_pixels", "max_pixels", "lora_r", "lora_alpha", "max_seq_length"):
        _positive(f"model.{key}", getattr(m, key))
    if m.min_pixels > m.max_pixels:
        raise ConfigError(f"model.min_pixels={m.min_pixels} is above model.max_pixels={m.max_pixels}")
    if m.max_pixels < 2 * m.min_pixels:
        # Narrower, and some aspect ratios have no multiple of the patch grid inside the budget: the
        # processor would then resize our image again and count other image tokens.
        raise ConfigError(f"model.max_pixels={m.max_pixels} must be at least twice model.min_pixels={m.min_pixels}")
    _check("model.max_pixels", m.max_pixels, m.max_pixels >= 32 * 32,
           "at least one merged patch (32 x 32 = 1024 pixels; Qwen2/2.5-VL's are 28 x 28)")
    _probability("model.lora_dropout", m.lora_dropout, open_high=True)
    _probability("model.gpu_memory_utilization", m.gpu_memory_utilization, open_low=True)
    if m.max_lora_rank is not None:
        _positive("model.max_lora_rank", m.max_lora_rank)
    if not (m.finetune_language_layers or m.finetune_vision_layers):
        raise ConfigError("model: LoRA needs finetune_language_layers or finetune_vision_layers (both are false)")
    if m.fast_inference and m.finetune_vision_layers:
        raise ConfigError("model.fast_inference=true cannot train vision layers (vLLM serves language LoRA only): "
                          "set model.finetune_vision_layers=false or model.fast_inference=false")
    # ---- data
    for key, data in (("data", d), ("eval.data", e.data)):
        _one_of(f"{key}.source", data.source, SOURCES)
        if data.max_samples is not None:
            _check(f"{key}.max_samples", data.max_samples, data.max_samples > 0, "a positive count or null")
        _positive(f"{key}.synthetic_size", data.synthetic_size)
        if data.max_per_shard is not None:
            _check(f"{key}.max_per_shard", data.max_per_shard, data.max_per_shard > 0, "a positive count or null")
        _check(f"{key}.synthetic_jitter_deg", data.synthetic_jitter_deg, 0 <= data.synthetic_jitter_deg <= 1,
               "in [0, 1] degrees")
    # ---- sampler
    _positive("sampler.capacity", s.capacity)
    _check("sampler.alpha", s.alpha, s.alpha >= 0 and math.isfinite(s.alpha), "a number >= 0")
    _one_of("sampler.region_key", s.region_key, REGION_KEYS)
    _positive("sampler.hotspot_radius_km", s.hotspot_radius_km)
    _check("sampler.saturation_threshold", s.saturation_threshold,
           s.saturation_threshold >= 0 and not math.isnan(s.saturation_threshold), "a number >= 0 (inf: never)")
    # ---- reward
    _all_of("reward.names", r.names, tuple(REWARD_REGISTRY))
    if not r.names:
        raise ConfigError("reward.names is empty; name at least one of: " + ", ".join(REWARD_REGISTRY))
    if len(r.weights) != len(r.names):
        raise ConfigError(f"reward.weights has {len(r.weights)} values for {len(r.names)} reward.names "
                          f"{r.names}: give one weight per name")
    _one_of("reward.combine", r.combine, COMBINE_MODES)
    _one_of("reward.distance_shape", r.distance_shape, DISTANCE_SHAPES)
    _positive("reward.distance_tau_km", r.distance_tau_km)
    _all_of("reward.hierarchy_weights", list(r.hierarchy_weights), HIERARCHY_LEVELS)
    # ---- train
    _all_of("train.stages", t.stages, STAGES)
    _one_of("train.precision", t.precision, PRECISIONS)
    if (m.dtype, t.precision) in _CLASHES:
        raise ConfigError(f"train.precision={t.precision} does not match model.dtype={m.dtype}: use "
                          f"{'fp16' if m.dtype == 'float16' else 'bf16'} (or auto for both)")
    for key in ("learning_rate", "sft_learning_rate"):
        _positive(f"train.{key}", getattr(t, key))
    for key in ("max_steps", "sft_max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
                "max_completion_length", "logging_steps", "save_steps"):
        _check(f"train.{key}", getattr(t, key), getattr(t, key) > 0, "a positive integer")
    _check("train.sample_every", t.sample_every, t.sample_every >= 0, "a step count >= 0 (0: no sample log)")
    # Checkpoints are rotated before the newest is complete: keeping two means a kill while saving
    # always leaves a complete one to resume from.
    _check("train.save_total_limit", t.save_total_limit, t.save_total_limit >= 2,
           "at least 2 (a kill while saving must leave a complete checkpoint)")
    _check("train.num_generations", t.num_generations, t.num_generations >= 2,
           "at least 2 (GRPO compares completions within a group)")
    for key, valid in (("loss_type", LOSS_TYPES), ("importance_sampling_level", IMPORTANCE_LEVELS),
                       ("scale_rewards", REWARD_SCALING)):
        if getattr(t, key) is not None:
            _one_of(f"train.{key}", getattr(t, key), valid)
    _positive("train.temperature", t.temperature)
    _check("train.beta", t.beta, t.beta >= 0, "a number >= 0")
    _probability("train.warmup_ratio", t.warmup_ratio, open_high=True)
    # ---- eval
    for key in ("batch_size", "max_new_tokens", "num_samples"):
        _check(f"eval.{key}", getattr(e, key), getattr(e, key) > 0, "a positive integer")
    if e.do_sample or e.num_samples > 1:  # greedy decoding never reads it
        _positive("eval.temperature", e.temperature)
    _check("eval.num_examples", e.num_examples, e.num_examples >= 0, "a count >= 0")
    _one_of("eval.distance", e.distance, DISTANCES)
    if e.hotspot_km is not None:
        _positive("eval.hotspot_km", e.hotspot_km)
    return cfg
