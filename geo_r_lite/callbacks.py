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
import os
import signal
from pathlib import Path

logger = logging.getLogger(__name__)

SAMPLER_STATE_FILE = "sampler_state.json"
# The GRPO dataset's length and the pool's bad-image ids at a checkpoint: resume rebuilds the same
# dataset (its length fixes TRL's sampling order) instead of one sized to the shrunken pool.
POOL_STATE_FILE = "pool_state.json"
# The records the already-built next batch was drawn from (see SamplerPool.last_built).
POOL_BATCH_FILE = "pool_last_built.json"
# The pool kept after every record was solved (SamplerPool.kept_solved): the sampler has none left.
POOL_KEPT_FILE = "pool_kept.json"
# Written last into a checkpoint, after everything else: a checkpoint without it was cut short.
COMPLETE_MARKER = "geo_r_lite_complete.json"
# Written into a stage folder when its training starts: its checkpoints all carry the marker above
# (a folder without it comes from before the marker existed).
STAGE_MARKER = "geo_r_lite_stage.json"
# Test hook: "STAGE:EVENT:STEP" (events: step, save) kills the process there with SIGKILL.
KILL_ENV = "GEO_R_LITE_TEST_KILL"
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


def _atomic_json(path: Path, value) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, path)


def _maybe_killed(stage: str, event: str, step: int) -> None:
    """The fault-injection point of the kill-and-resume tests (inert unless ``KILL_ENV`` is set)."""
    if os.environ.get(KILL_ENV) == f"{stage}:{event}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def make_callbacks(*, stage: str = "", pool=None, sampler=None, feedback=None, log_path: Path | None = None,
                   samples_path: Path | None = None, sample_every: int = 0, dataset_length: int | None = None) -> list:
    """The callbacks a stage needs; each argument left None leaves its callback out.

    The checkpoint marker is always there and last: it closes every checkpoint of the stage.
    """
    from transformers import TrainerCallback

    class PoolRefreshCallback(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            pool.refresh()

    class SamplerCheckpointCallback(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            _maybe_killed(stage, "save", state.global_step)  # inside a save: model written, sampler not
            if state.is_world_process_zero and folder.is_dir():
                store = Path(args.output_dir).parent / SAMPLER_IMAGES_DIR
                sampler.save(folder / SAMPLER_STATE_FILE, image_store=store)
                if pool is not None:
                    from geo_r_lite.sampler import save_records

                    # At an epoch's last step the loader has nothing left to build ahead: the next
                    # batch will come from the current selection, so there is nothing to replay.
                    ends_epoch = state.epoch is not None and abs(state.epoch - round(state.epoch)) < 1e-9
                    if ends_epoch:
                        pool.last_built = None
                    if pool.last_built is not None:
                        save_records(pool.last_built, folder / POOL_BATCH_FILE, store)
                    if pool.kept_solved:
                        save_records(pool.records, folder / POOL_KEPT_FILE, store)
                    _atomic_json(folder / POOL_STATE_FILE, {"dataset_length": dataset_length,
                                                            "bad_ids": sorted(pool.bad_ids),
                                                            "last_built": pool.last_built is not None,
                                                            "kept_solved": pool.kept_solved})

    class CheckpointMarkerCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            stage_dir = Path(args.output_dir)
            if state.is_world_process_zero and not (stage_dir / STAGE_MARKER).is_file():
                stage_dir.mkdir(parents=True, exist_ok=True)
                # Checkpoints of a run from before the markers: mark the complete ones first, so the
                # stage marker does not turn them into "incomplete" ones.
                folders = _checkpoints(stage_dir)
                legacy = not any((f / COMPLETE_MARKER).is_file() for f in folders)
                for folder in folders if legacy else ():
                    if _complete(folder, legacy=True):
                        _atomic_json(folder / COMPLETE_MARKER, {"step": checkpoint_step(folder), "legacy": True})
                _atomic_json(stage_dir / STAGE_MARKER, {"stage": stage})
            if pool is not None and pool.armed is not None:  # the training loop starts fetching now
                pool.replay(pool.armed)
                pool.armed = None

        def on_step_begin(self, args, state, control, **kwargs):
            _maybe_killed(stage, "step", state.global_step + 1)

        def on_save(self, args, state, control, **kwargs):
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            _maybe_killed(stage, "save", state.global_step)
            _barrier()  # every process has written its part (its RNG state) before the marker
            if state.is_world_process_zero and folder.is_dir():
                _atomic_json(folder / COMPLETE_MARKER, {"step": state.global_step})

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
    callbacks.append(CheckpointMarkerCallback())
    return callbacks


def _complete(folder: Path, legacy: bool) -> bool:
    if (folder / COMPLETE_MARKER).is_file():
        return True
    if not legacy:
        return False
    try:  # a run folder from before the marker: the trainer state is written last by transformers
        json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        return True
    except (OSError, ValueError):
        return False


def _checkpoints(stage_dir: Path) -> list[Path]:
    """The ``checkpoint-N`` folders of a stage, by step."""
    steps = []
    for child in stage_dir.iterdir():
        prefix, _, number = child.name.partition("-")
        if prefix == "checkpoint" and number.isdigit() and child.is_dir():
            steps.append((int(number), child))
    return [folder for _, folder in sorted(steps)]


def last_checkpoint(stage_dir: str | Path) -> Path | None:
    """The highest complete ``checkpoint-N`` folder of a stage, or None (also when the folder is missing).

    A checkpoint cut short by a kill (no completion marker) is skipped, and the log says so. In a
    stage folder from before the marker existed (no ``STAGE_MARKER``), a checkpoint whose trainer
    state reads counts as complete.
    """
    stage_dir = Path(stage_dir)
    if not stage_dir.is_dir():
        return None
    folders = _checkpoints(stage_dir)
    # Legacy: a folder from before any marker (a run that wrote markers has at least one of them).
    legacy = not (stage_dir / STAGE_MARKER).is_file() and not any((f / COMPLETE_MARKER).is_file() for f in folders)
    for folder in reversed(folders):
        if _complete(folder, legacy):
            return folder
        logger.warning("resume: %s is incomplete (the run was stopped while saving it); using the one before",
                       folder)
    return None


def checkpoint_step(folder: Path | None) -> int:
    """The step number of a ``checkpoint-N`` folder (0 for None)."""
    return int(folder.name.partition("-")[2]) if folder is not None else 0


def read_pool_state(checkpoint: Path) -> dict | None:
    """The GRPO pool state saved in ``checkpoint`` (None for a checkpoint from before it was saved)."""
    path = Path(checkpoint) / POOL_STATE_FILE
    if not path.is_file():
        return None
    state = json.loads(path.read_text(encoding="utf-8"))
    from geo_r_lite.sampler import load_records

    if state.get("last_built"):
        state["last_built"] = load_records(Path(checkpoint) / POOL_BATCH_FILE)
    if state.get("kept_solved"):
        state["kept"] = load_records(Path(checkpoint) / POOL_KEPT_FILE)
    return state
