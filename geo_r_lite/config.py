"""Typed run configuration: nested sections loaded from YAML, overridden by dotted CLI keys.

    cfg = load_config("configs/3090.yaml", ["--train.learning_rate=5e-6", "--model.backend=hf"])

Every section is a small dataclass. Unknown keys fail at once, naming the key and the closest valid
one; values of the wrong type fail naming the key and the expected type. ``save_config`` writes the
resolved configuration next to a run's outputs, and ``load_config`` reads it back unchanged.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration problem, with a message that names the offending key."""


@dataclass
class ModelConfig:
    """Which vision-language model to load and how (see geo_r_lite.model)."""

    # Hub id or local folder. "tiny" builds (once) and loads the offline random tiny Qwen2-VL.
    name: str = "Qwen/Qwen2-VL-2B-Instruct"
    backend: str = "auto"  # auto | unsloth | hf
    load_in_4bit: bool = True  # NF4 on CUDA; ignored on CPU (full precision)
    dtype: str = "auto"  # auto | bfloat16 | float16 | float32
    # Image budget in pixels, fixed at load time (Qwen2-VL works on 28x28 patches).
    min_pixels: int = 32 * 28 * 28
    max_pixels: int = 256 * 28 * 28
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    finetune_vision_layers: bool = False
    finetune_language_layers: bool = True
    gradient_checkpointing: bool = True
    adapter: str | None = None  # a saved LoRA adapter folder to start from / evaluate
    fast_inference: bool = False  # Unsloth's vLLM generation (Qwen2.5-VL only)
    max_lora_rank: int | None = None  # vLLM's LoRA slot size with fast_inference (default: lora_r)
    gpu_memory_utilization: float = 0.5
    max_seq_length: int = 2048


@dataclass
class DataConfig:
    """Where records come from (see geo_r_lite.sources)."""

    source: str = "synthetic"  # synthetic | manifest | hf | webdataset
    path: str | None = None  # manifest file, HF dataset id, or shard glob/URL list
    image_dir: str | None = None  # manifest source: folder the image column is relative to
    split: str = "train"
    # Column mapping overrides, e.g. {"lat": "latitude", "lon": "longitude", "image": "IMG_ID"}.
    columns: dict[str, str] = field(default_factory=dict)
    max_samples: int | None = None
    # webdataset: read the shards in a random order seeded by data.seed (null: on for remote shards,
    # off for local ones), taking at most max_per_shard rows of each, so data.max_samples spans the set.
    shuffle_shards: bool | None = None
    max_per_shard: int | None = None
    strict: bool = False  # a skipped row becomes an error naming the row
    allow_null_island: bool = False  # accept exactly (0, 0) coordinates
    synthetic_size: int = 64
    synthetic_jitter_deg: float = 0.05  # synthetic source: coordinates spread this far around each city
    seed: int = 0


@dataclass
class SamplerConfig:
    """The streaming diversity sampler (see geo_r_lite.sampler)."""

    enabled: bool = True
    capacity: int = 2000
    alpha: float = 1.0  # weight = (1 + seen count of the record's region) ** -alpha
    region_key: str = "country_code"
    hotspot_radius_km: float = 200.0
    hotspot_file: str | None = None
    saturation_threshold: float = 0.9  # all G rewards above this -> the sample becomes a hotspot
    seed: int = 0


@dataclass
class RewardConfig:
    """GRPO rewards by registry name (see geo_r_lite.rewards)."""

    names: list[str] = field(default_factory=lambda: ["distance", "format", "hierarchy"])
    weights: list[float] = field(default_factory=lambda: [1.0, 1.0, 0.5])
    combine: str = "product"  # product (paper: distance x format) | sum (TRL reward_weights)
    distance_shape: str = "piecewise"  # piecewise | exp | geoscore
    distance_tau_km: float = 1000.0
    hierarchy_weights: dict[str, float] = field(
        default_factory=lambda: {"continent": 0.1, "country": 0.3, "region": 0.3, "city": 0.3}
    )
    require_think: bool = True
    degenerate_penalty: bool = True


@dataclass
class TrainConfig:
    """Training stages and their hyper-parameters (see geo_r_lite.training)."""

    stages: list[str] = field(default_factory=lambda: ["grpo"])  # any of: sft, grpo
    output_dir: str = "runs/default"
    resume: bool = False
    seed: int = 42
    learning_rate: float = 5e-6
    sft_learning_rate: float = 2e-4
    max_steps: int = 500
    sft_max_steps: int = 100
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    num_generations: int = 4  # G, the group size
    max_completion_length: int = 256
    temperature: float = 1.0
    beta: float = 0.0  # KL coefficient (0: no reference model, as in recent GRPO practice)
    # GRPO variants; null keeps TRL's default (loss dapo, token-level ratios, group scaling, no masking).
    loss_type: str | None = None  # grpo | dr_grpo | dapo | bnpo | cispo | sapo | luspo | vespo
    importance_sampling_level: str | None = None  # token | sequence (GSPO)
    scale_rewards: str | None = None  # group | batch | none
    mask_truncated_completions: bool | None = None
    optim: str = "adamw_8bit"
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.03
    precision: str = "auto"  # auto | bf16 | fp16 | fp32
    logging_steps: int = 1
    save_steps: int = 50
    save_total_limit: int = 3
    sample_every: int = 25  # steps between saved sample completions
    report_to: list[str] = field(default_factory=list)  # e.g. ["wandb"], ["tensorboard"]
    merge_weights: bool = False
    # Escape hatch: extra GRPOConfig / SFTConfig fields passed verbatim to TRL.
    trl_overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalConfig:
    """Benchmark evaluation (see geo_r_lite.evaluation)."""

    data: DataConfig = field(default_factory=lambda: DataConfig(source="synthetic", split="test"))
    enabled: bool = True  # train.py evaluates after training when true
    output_dir: str | None = None  # default: <train.output_dir>/eval
    batch_size: int = 8
    max_new_tokens: int = 512
    do_sample: bool = False
    temperature: float = 0.7
    num_samples: int = 1  # self-consistency: k samples, coordinates aggregated by the medoid
    use_vllm: bool = False
    num_examples: int = 5  # best/worst examples shown in report.md
    hotspot_km: float | None = None  # export the samples predicted within this distance
    distance: str = "haversine"  # haversine (sphere) | geodesic (WGS-84, as GeoCLIP/G3 report)


@dataclass
class Config:
    """The whole run."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# --------------------------------------------------------------------------- type checking


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` checked (and losslessly widened) against the annotation ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as err:
                errors.append(err)
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")
    if tp is Any:
        return value
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list of {_type_name(item_tp)}, got {value!r}")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        key_tp, val_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {_coerce(k, key_tp, key): _coerce(v, val_tp, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a section (mapping), got {value!r}")
        return _build(tp, value, prefix=f"{key}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # YAML 1.1 reads "5e-6" (no dot) as a string; accept numeric text for float fields.
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")


def _unknown_key(section: type, key: str, prefix: str) -> ConfigError:
    valid = [f.name for f in dataclasses.fields(section)]
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; valid keys: {', '.join(valid)}"
    return ConfigError(f"unknown config key '{prefix}{key}'{hint}")


def _build(section: type, values: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(section)
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            raise _unknown_key(section, key, prefix)
        kwargs[key] = _coerce(value, hints[key], f"{prefix}{key}")
    return section(**kwargs)


# --------------------------------------------------------------------------- loading


def _parse_override(arg: str) -> tuple[list[str], Any]:
    """``--a.b=value`` -> (["a", "b"], parsed value). Values are read as YAML scalars/lists."""
    if not arg.startswith("--") or "=" not in arg:
        raise ConfigError(f"override {arg!r} must look like --section.key=value")
    dotted, raw = arg[2:].split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return dotted.split("."), value


def _merge(base: dict[str, Any], path: list[str], value: Any) -> None:
    node = base
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def config_from_dict(values: dict[str, Any]) -> Config:
    """Build a checked ``Config`` from nested plain values (unknown keys/types raise ConfigError)."""
    if not isinstance(values, dict):
        raise ConfigError(f"a config must be a mapping at top level, got {type(values).__name__}")
    from geo_r_lite.validate import check_config  # enumerations, ranges, cross-field rules

    return check_config(_build(Config, values))


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load a YAML config (or the defaults when ``path`` is None) and apply dotted overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a config must be a mapping at top level")
        values = loaded or {}
    for arg in overrides:
        dotted, value = _parse_override(arg)
        _merge(values, dotted, value)
    return config_from_dict(values)


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Plain nested dict of a config (what ``save_config`` writes)."""
    return dataclasses.asdict(cfg)


def save_config(cfg: Config, folder: str | Path) -> Path:
    """Write the resolved config as ``<folder>/config.yaml`` and return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "config.yaml"
    out.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), encoding="utf-8")
    return out


def split_cli(argv: list[str]) -> tuple[str | None, list[str], list[str]]:
    """Split argv into (--config path, dotted overrides, remaining args for the caller)."""
    config_path, overrides, rest = None, [], []
    it = iter(argv)
    for arg in it:
        if arg == "--config":
            config_path = next(it, None)
            if config_path is None:
                raise ConfigError("--config needs a path")
        elif arg.startswith("--config="):
            config_path = arg.split("=", 1)[1]
        elif arg.startswith("--") and "=" in arg and "." in arg.split("=", 1)[0]:
            overrides.append(arg)
        else:
            rest.append(arg)
    return config_path, overrides, rest
