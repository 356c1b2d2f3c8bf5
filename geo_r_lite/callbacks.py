"""Trainer callbacks of the training stages: pool refresh, sampler checkpoints, logs, samples.

- ``PoolRefreshCallback``: a new snapshot of the sampler's selection after every optimizer step
  (between batch fetches, so the G reads of one slot always see one record).
- ``SamplerCheckpointCallback``: the sampler's state is written into every checkpoint folder
  (``checkpoint-N/sampler_state.json``), next to TRL's optimizer, scheduler and RNG state, so
  ``--resume`` restores the very pool and hotspots of step N.
- ``JsonlLogCallback``: every log record (each reward component, total reward, zero-spread
  fraction, parse-failure rate, completion length, KL...) appended to ``metrics.jsonl``.
- ``SampleLogCallback``: every ``train.sample_every`` steps, the latest groups of completions with
  their reasoning chain, parsed coordinates and rewards appended to ``samples.jsonl``.

transformers is imported lazily (``make_callbacks``), so importing this module stays cheap.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

logger = logging.getLogger(__name__)

SAMPLER_STATE_FILE = "sampler_state.json"
# Beside the stage folders: every checkpoint's sampler state points into this one image store.
SAMPLER_IMAGES_DIR = "sampler_images"


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _append_jsonl(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(_json_safe(record), default=str) + "\n")


def make_callbacks(*, pool=None, sampler=None, feedback=None, log_path: Path | None = None,
                   samples_path: Path | None = None, sample_every: int = 0) -> list:
    """The callbacks a stage needs; each argument left None leaves its callback out."""
    from transformers import TrainerCallback

    class PoolRefreshCallback(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            pool.refresh()

    class SamplerCheckpointCallback(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if state.is_world_process_zero and folder.is_dir():
                sampler.save(folder / SAMPLER_STATE_FILE,
                             image_store=Path(args.output_dir).parent / SAMPLER_IMAGES_DIR)

    class JsonlLogCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and state.is_world_process_zero:
                _append_jsonl(log_path, {"step": state.global_step, **logs})

    class SampleLogCallback(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % sample_every == 0 and feedback.recent:
                for group in feedback.recent:
                    _append_jsonl(samples_path, {"step": state.global_step, **group})

    callbacks = []
    if pool is not None:
        callbacks.append(PoolRefreshCallback())
    if sampler is not None:
        callbacks.append(SamplerCheckpointCallback())
    if log_path is not None:
        callbacks.append(JsonlLogCallback())
    if feedback is not None and samples_path is not None and sample_every > 0:
        callbacks.append(SampleLogCallback())
    return callbacks


def last_checkpoint(stage_dir: str | Path) -> Path | None:
    """The highest ``checkpoint-N`` folder of a stage, or None (also when the folder is missing)."""
    stage_dir = Path(stage_dir)
    if not stage_dir.is_dir():
        return None
    steps = []
    for child in stage_dir.iterdir():
        prefix, _, number = child.name.partition("-")
        if prefix == "checkpoint" and number.isdigit() and child.is_dir():
            steps.append((int(number), child))
    return max(steps)[1] if steps else None
