"""The training stages: SFT cold start and GRPO, on TRL's own trainers (no fork).

- ``fill_sampler``: one pass over the configured source into the diversity sampler.
- ``run_sft``: TRL's ``SFTTrainer`` on Chain-of-Region targets built from the reverse-geocoded
  labels of the true coordinates (``prompts.build_sft_target``: no invented reasoning text).
- ``build_grpo_trainer`` / ``run_grpo``: TRL's ``GRPOTrainer`` with the registry's rewards and
  weights, fed from the sampler's pool (``grpo_data``), the reward feedback turning saturated
  samples into hotspots.

Each stage writes its checkpoints under ``<train.output_dir>/<stage>/`` (optimizer, scheduler,
RNG and, for GRPO, sampler state), its logs to ``<stage>/metrics.jsonl`` and its LoRA adapter to
``<stage>/adapter``; ``resume=True`` continues from the stage's last checkpoint.

TRL and transformers are imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .callbacks import (
    POOL_STATE_FILE, SAMPLER_STATE_FILE, checkpoint_step, last_checkpoint, make_callbacks, read_pool_state,
)
from .config import Config
from .grpo_data import RewardFeedback, SamplerPool, grpo_row, pool_dataset, sft_row
from .model import ModelLoadError, pixel_step, vllm_engine
from .records import DataError, GeoRecord, SkipStats
from .trl_config import build_trl_config, stage_output_dir

logger = logging.getLogger(__name__)

ADAPTER_DIR = "adapter"
# Placeholder tokens of Qwen2-VL's vision input: a completion must never contain them.
VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")


def vision_token_ids(processor) -> list[int]:
    """Ids of the ``VISION_TOKENS`` the processor's tokenizer knows."""
    tokenizer = getattr(processor, "tokenizer", processor)
    ids = [tokenizer.convert_tokens_to_ids(t) for t in VISION_TOKENS]
    return [i for i in ids if isinstance(i, int) and i != tokenizer.unk_token_id]


def make_sampler(cfg: Config):
    """A ``DiversitySampler`` from the ``sampler`` section (hotspots from its file, if any).

    ``sampler.enabled: false`` keeps a plain uniform random sample of the stream: no region
    down-weighting (alpha 0), no hotspots, no saturation feedback.
    """
    from .sampler import DiversitySampler

    s = cfg.sampler
    if not s.enabled:
        return DiversitySampler(s.capacity, alpha=0.0, saturation_threshold=math.inf, seed=s.seed)
    return DiversitySampler.from_config(s)


def generate_in_eval_mode(model) -> None:
    """Make ``model.generate`` run in eval mode (then restore the mode), in place.

    GRPOTrainer generates with the model in training mode. With gradient checkpointing on (our
    memory default on the hf backend), transformers' decoder layers then drop the KV cache while
    ``generate`` still feeds one new token per step, so every token after the first is produced
    without context: garbage completions. Unsloth switches to inference mode by itself.
    """
    if getattr(model, "_geo_r_lite_eval_generate", False):
        return
    train_generate = model.generate

    def generate(*args, **kwargs):
        was_training = model.training
        model.eval()
        try:
            return train_generate(*args, **kwargs)
        finally:
            model.train(was_training)

    model.generate = generate
    model._geo_r_lite_eval_generate = True


def fill_sampler(sampler, records) -> int:
    """Stream ``records`` into the sampler (single pass, memory O(capacity)); return the count."""
    seen = sampler.consume(records)
    logger.info("sampler: %d records streamed, %d selected (%s)", seen, len(sampler), sampler.stats)
    return seen


def stage_adapter(cfg: Config, stage: str) -> Path:
    """Where a stage saves its final LoRA adapter: ``<train.output_dir>/<stage>/adapter``."""
    return stage_output_dir(cfg, stage) / ADAPTER_DIR


def _resume_point(cfg: Config, stage: str, resume: bool) -> str | None:
    if not resume:
        return None
    checkpoint = last_checkpoint(stage_output_dir(cfg, stage))
    if checkpoint is None:
        logger.info("resume: no checkpoint in %s, starting the %s stage afresh", stage_output_dir(cfg, stage), stage)
        return None
    logger.info("resume: %s stage continues from %s", stage, checkpoint)
    return str(checkpoint)


def _save_adapter(trainer, loaded, folder: Path) -> Path:
    trainer.save_model(str(folder))  # writes on the main process only
    if trainer.is_world_process_zero():
        loaded.processor.save_pretrained(str(folder))
    logger.info("saved LoRA adapter to %s", folder)
    return folder


def run_sft(cfg: Config, loaded, records: list[GeoRecord], stats: SkipStats, *, resume: bool = False,
            callbacks: list | None = None) -> Path:
    """SFT cold start on ``records`` (the ``loaded`` model's LoRA is trained in place).

    Returns the adapter folder. Bad images are skipped and counted in ``stats``.
    """
    from trl import SFTTrainer

    # No row cache: SFT reads each row once per epoch, and caching would hold every image.
    pool = SamplerPool(list(records), min_pixels=cfg.model.min_pixels, max_pixels=cfg.model.max_pixels,
                       stats=stats, row_fn=sft_row, cache=False, step=pixel_step(loaded.processor))
    stage_dir = stage_output_dir(cfg, "sft")
    trainer = SFTTrainer(
        model=loaded.model,
        args=build_trl_config(cfg, "sft"),
        train_dataset=pool_dataset(pool),
        processing_class=loaded.processor,
        callbacks=make_callbacks(stage="sft", log_path=stage_dir / "metrics.jsonl") + list(callbacks or []),
    )
    trainer.train(resume_from_checkpoint=_resume_point(cfg, "sft", resume))
    return _save_adapter(trainer, loaded, stage_adapter(cfg, "sft"))


@dataclass
class GRPOParts:
    """A ready GRPOTrainer with the objects around it (tests and the bench look inside)."""

    trainer: Any
    pool: SamplerPool
    feedback: RewardFeedback
    sampler: Any


def build_grpo_trainer(cfg: Config, loaded, sampler, stats: SkipStats, *, reward_funcs=None,
                       reward_weights=None, callbacks: list | None = None,
                       pool_state: dict | None = None) -> GRPOParts:
    """GRPOTrainer over the sampler's pool, rewards from ``cfg.reward`` (or the ones given).

    ``pool_state`` (from a checkpoint) restores the dataset length and the pool's bad-image ids of
    the run being resumed, so TRL draws the same slots in the same order.
    """
    from trl import GRPOTrainer

    from .reward_registry import build_reward_functions

    if reward_funcs is None:
        reward_funcs, reward_weights = build_reward_functions(cfg.reward)
    feedback = RewardFeedback(reward_funcs, reward_weights, sampler, cfg.train.num_generations)
    pool = SamplerPool(sampler, min_pixels=cfg.model.min_pixels, max_pixels=cfg.model.max_pixels,
                       stats=stats, row_fn=grpo_row, step=pixel_step(loaded.processor))
    length = None
    if pool_state is not None:
        pool.bad_ids.update(pool_state.get("bad_ids", []))
        pool.refresh()
        length = pool_state.get("dataset_length")
        if pool_state.get("last_built"):
            pool.armed = pool_state["last_built"]  # replayed when training starts (callbacks)
        if pool_state.get("kept"):  # every record was solved: the sampler has none, the pool kept these
            pool.records, pool.kept_solved = pool_state["kept"], True
    dataset = pool_dataset(pool, length)
    # A vision placeholder in a completion breaks the image-token count of the loss forward, so
    # transformers' generate suppresses them. vLLM's SamplingParams has no suppress_tokens: only when
    # a vLLM engine really generates (not merely when fast_inference was asked for) go without.
    engine = vllm_engine(loaded.model)
    suppress = [] if engine is not None else vision_token_ids(loaded.processor)
    if engine is not None and not hasattr(loaded.model, "load_lora"):
        raise ModelLoadError("GRPO with a vLLM engine but the model has no load_lora: vLLM would roll out the base "
                             "weights, not the LoRA being trained; set model.fast_inference=false")
    if loaded.backend == "hf":
        generate_in_eval_mode(loaded.model)
    stage_dir = stage_output_dir(cfg, "grpo")
    own = make_callbacks(stage="grpo", pool=pool, sampler=sampler, feedback=feedback,
                         log_path=stage_dir / "metrics.jsonl", samples_path=stage_dir / "samples.jsonl",
                         sample_every=cfg.train.sample_every, dataset_length=len(dataset))
    trainer = GRPOTrainer(
        model=loaded.model,
        reward_funcs=feedback.funcs,
        args=build_trl_config(cfg, "grpo", reward_weights=reward_weights, suppress_token_ids=suppress),
        train_dataset=dataset,
        processing_class=loaded.processor,
        callbacks=own + list(callbacks or []),
    )
    _seed_each_epoch(trainer)
    return GRPOParts(trainer=trainer, pool=pool, feedback=feedback, sampler=sampler)


def _seed_each_epoch(trainer) -> None:
    """Give TRL's RepeatSampler a ``set_epoch`` that seeds it with ``seed + epoch``.

    TRL's sampler draws every epoch's order from one generator seeded once, so a run resumed in its
    second epoch would replay the first epoch's order. Seeded per epoch (the trainer calls
    ``set_epoch`` before each), the order depends on the epoch alone; epoch 0 is TRL's own order.
    """
    original = trainer._get_train_sampler

    def get_train_sampler(*args, **kwargs):
        sampler = original(*args, **kwargs)
        generator, seed = getattr(sampler, "generator", None), getattr(sampler, "seed", None)
        if generator is not None and seed is not None:
            sampler.set_epoch = lambda epoch: generator.manual_seed(seed + epoch)
        return sampler

    trainer._get_train_sampler = get_train_sampler


def grpo_checkpoint_has_sampler(cfg: Config) -> bool:
    """True when the GRPO stage has a checkpoint holding a sampler state (resume needs no data)."""
    checkpoint = last_checkpoint(stage_output_dir(cfg, "grpo"))
    return checkpoint is not None and (checkpoint / SAMPLER_STATE_FILE).is_file()


def _unreadable(path: Path, checkpoint: Path, err: Exception) -> DataError:
    return DataError(f"{path} is unreadable ({type(err).__name__}: {err}). Delete {checkpoint} to resume from the "
                     f"checkpoint before it, or {checkpoint.parent} to start the {checkpoint.parent.name} stage afresh")


def restore_sampler(sampler, checkpoint: str | None) -> bool:
    """Load the sampler state saved in ``checkpoint`` (True) or leave it (False, none saved).

    A corrupt state file is a ``DataError`` naming it and how to go on.
    """
    if checkpoint is None:
        return False
    path = Path(checkpoint) / SAMPLER_STATE_FILE
    if not path.is_file():
        logger.warning("resume: %s holds no sampler state; the pool is rebuilt from the data", checkpoint)
        return False
    try:
        sampler.load(path)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
        raise _unreadable(path, Path(checkpoint), err) from err
    logger.info("resume: sampler state restored from %s", path)
    return True


def stage_finished(cfg: Config, stage: str) -> bool:
    """True when ``stage`` reached its last step and saved its adapter (a resume skips it)."""
    steps = cfg.train.sft_max_steps if stage == "sft" else cfg.train.max_steps
    done = checkpoint_step(last_checkpoint(stage_output_dir(cfg, stage))) >= steps
    return done and (stage_adapter(cfg, stage) / "adapter_config.json").is_file()


def run_grpo(cfg: Config, loaded, sampler, stats: SkipStats, *, resume: bool = False,
             callbacks: list | None = None, reward_funcs=None, reward_weights=None) -> Path:
    """GRPO on the sampler's pool; returns the adapter folder.

    With ``resume`` and a checkpoint in ``<output_dir>/grpo``, the sampler state and the pool
    state saved with it are restored before the dataset is built, and TRL continues at that step
    with the same data order. Rewards come from ``cfg.reward`` unless ``reward_funcs``/
    ``reward_weights`` are given.
    """
    checkpoint = _resume_point(cfg, "grpo", resume)
    restore_sampler(sampler, checkpoint)
    pool_state = None
    if checkpoint is not None:
        try:
            pool_state = read_pool_state(Path(checkpoint))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise _unreadable(Path(checkpoint) / POOL_STATE_FILE, Path(checkpoint), err) from err
    parts = build_grpo_trainer(cfg, loaded, sampler, stats, callbacks=callbacks, reward_funcs=reward_funcs,
                               reward_weights=reward_weights, pool_state=pool_state)
    parts.trainer.train(resume_from_checkpoint=checkpoint)
    logger.info("grpo: %d groups fed back to the sampler, %d became hotspots",
                parts.feedback.groups_reported, parts.feedback.hotspots_added)
    return _save_adapter(parts.trainer, loaded, stage_adapter(cfg, "grpo"))


def save_merged(cfg: Config, adapter: Path, folder: Path) -> Path:
    """Merged full-precision weights (base + the ``adapter`` folder) for serving, in ``folder``.

    Both backends merge the same way (``geo_r_lite.model.merge_adapter``): into an unquantized base,
    never into the 4-bit training copy.
    """
    from .model import merge_adapter

    return merge_adapter(cfg.model, adapter, folder)
