"""Train a Chain-of-Region geolocator: optional SFT cold start, then GRPO, save, evaluate.

    python train.py                                         # configs/smoke.yaml: CPU, tiny model, minutes
    python train.py --config configs/3090.yaml              # one 24 GB GPU (RTX 3090/4090)
    python train.py --config configs/t4.yaml                # a 16 GB T4 (Colab/Kaggle): fp16
    python train.py --config configs/3090.yaml --resume     # continue from the last checkpoint
    python train.py --config configs/3090.yaml --train.learning_rate=5e-6 --train.max_steps=200

The run folder (``train.output_dir``) holds the resolved ``config.yaml``, ``data_summary.json``
(rows skipped, by reason), ``train.log``, per stage ``<stage>/metrics.jsonl`` and checkpoints
(optimizer, scheduler, RNG and sampler state), ``grpo/samples.jsonl`` (completions with their
reasoning), ``sampler_state.json`` (pool images stored once in ``sampler_images/``), the final LoRA ``adapter/`` (``merged/`` when
``train.merge_weights``) and ``eval/`` when ``eval.enabled``.

Deviations from Geo-R (arXiv 2601.00388), all to fit one consumer GPU or a hobbyist's data:
- LoRA on a 4-bit (NF4) base model, not full fine-tuning; language layers only by default.
- Small groups (G = 2-4 completions per image) and a bounded completion length (256 tokens).
- No KL term and no reference model by default (``train.beta: 0``).
- Images capped by a pixel budget (``model.max_pixels``), well below the native resolution.
- Training data: OSV-5M streamed from the Hugging Face hub (``osv5m/osv5m-wds``), not MP-16,
  which is gated and not streamable; the diversity sampler reads a bounded prefix of the stream
  (``data.max_samples``) in one pass, rather than the whole corpus.
- Hotspots (saturated samples) are found online from the G rewards of a group, plus an optional
  file (e.g. the correct samples of a base-model evaluation), with one radius for both.
- The SFT cold start's ``<think>`` block is one fixed line restating the procedure: no reasoning
  text is invented; the answer block comes from offline reverse-geocoded labels of the true
  coordinates (GeoNames-derived gazetteer, not a geocoding service).
- Single process: the reward feedback to the sampler assumes the G completions of a group are on
  one device (multi-GPU launches still train, but see geo_r_lite.grpo_data).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import sys
from pathlib import Path

from geo_r_lite.config import Config, load_config, save_config, split_cli
from geo_r_lite.console import quiet_known_noise, run_summary
from geo_r_lite.model import load_model, prepare_backend
from geo_r_lite.predictions import shard_from_env

logger = logging.getLogger("train")

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "smoke.yaml"


def _log_to_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)


def _save_data_summary(stats, seen: int, path: Path) -> None:
    """Rows skipped by reason (training-time image skips included) and records streamed."""
    path.write_text(json.dumps({**stats.as_dict(), "records_streamed": seen}, indent=2) + "\n", encoding="utf-8")


def _restore_data_summary(stats, path: Path) -> int:
    """Put the skip counts of the interrupted run back into ``stats``; return its records seen."""
    if not path.is_file():
        return 0
    saved = json.loads(path.read_text(encoding="utf-8"))
    stats.counts.update(saved.get("by_reason", {}))
    stats.examples.update(saved.get("examples", {}))
    stats.shards.update(saved.get("shards", {}))
    return int(saved.get("records_streamed", 0))


def _check_eval_data(cfg: Config) -> None:
    """Fail in seconds, not after hours of training, when the evaluation data cannot be read."""
    from geo_r_lite.records import DataError, SkipStats
    from geo_r_lite.sources import iter_records

    hint = "fetch the benchmark (see README) or pass --eval.enabled=false to train without the final evaluation"
    records = iter_records(cfg.eval.data, SkipStats(strict=cfg.eval.data.strict))
    try:
        first = next(records, None)
    except DataError as err:
        raise DataError(f"eval.data: {err}; {hint}") from err
    finally:
        records.close()
    if first is None:
        raise DataError(f"eval.data yields no usable record; {hint}")


def main(cfg: Config) -> dict:
    """Run the configured stages; return a summary (folders, counts, eval metrics)."""
    # ---- backend: Unsloth must be imported before trl/transformers/peft
    backend, reason = prepare_backend(cfg.model)
    from geo_r_lite.trl_config import check_trainer_settings

    check_trainer_settings(cfg)  # optimizer, scheduler, report_to: before the data pass, not at the first trainer
    out = Path(cfg.train.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    _log_to_file(out / "train.log")
    # Under a multi-process launch every rank runs this; only the first writes the run's files.
    main_process = shard_from_env()[0] == 0  # RANK of a torchrun / accelerate launch
    if main_process:
        save_config(cfg, out)
    logger.info("run folder %s, backend %s (%s), stages %s", out, backend, reason, cfg.train.stages)

    from transformers import set_seed

    from geo_r_lite.callbacks import SAMPLER_IMAGES_DIR, SAMPLER_STATE_FILE, last_checkpoint
    from geo_r_lite.records import SkipStats
    from geo_r_lite.sources import iter_records
    from geo_r_lite.training import (
        fill_sampler,
        grpo_checkpoint_has_sampler,
        make_sampler,
        restore_sampler,
        run_grpo,
        run_sft,
        save_merged,
        stage_adapter,
        stage_finished,
    )
    from geo_r_lite.trl_config import stage_output_dir

    set_seed(cfg.train.seed)
    resume = cfg.train.resume
    if cfg.eval.enabled:
        _check_eval_data(cfg)

    # ---- data: one streamed pass into the diversity sampler; skips counted by reason. A resumed
    # GRPO stage takes its sampler from the checkpoint instead: no second pass over the stream.
    stats = SkipStats(strict=cfg.data.strict)
    sampler = make_sampler(cfg)
    if resume and grpo_checkpoint_has_sampler(cfg):
        seen = _restore_data_summary(stats, out / "data_summary.json")
        logger.info("resume: the sampler comes from the GRPO checkpoint; the data is not streamed again")
    else:
        seen = fill_sampler(sampler, iter_records(cfg.data, stats))
        if main_process:
            _save_data_summary(stats, seen, out / "data_summary.json")

    # ---- model: the last finished stage of an interrupted run is where training continues
    model_cfg = cfg.model
    sft_adapter, grpo_adapter = stage_adapter(cfg, "sft"), stage_adapter(cfg, "grpo")
    sft_done = resume and "sft" in cfg.train.stages and (sft_adapter / "adapter_config.json").is_file()
    grpo_done = resume and "grpo" in cfg.train.stages and stage_finished(cfg, "grpo")
    start = grpo_adapter if grpo_done else sft_adapter if sft_done else None
    if start is not None:  # supersedes a model.adapter the run started from
        model_cfg = dataclasses.replace(model_cfg, adapter=str(start))
    loaded = load_model(model_cfg, for_training=True, seed=cfg.train.seed)

    # ---- SFT cold start
    adapter = None
    if "sft" in cfg.train.stages:
        if sft_done:
            logger.info("resume: the sft stage already finished (%s); not run again", sft_adapter)
            adapter = sft_adapter
        else:
            adapter = run_sft(cfg, loaded, sampler.items(), stats, resume=resume)

    # ---- GRPO
    if "grpo" in cfg.train.stages:
        if grpo_done:
            logger.info("resume: the grpo stage already finished (%s); not run again", grpo_adapter)
            restore_sampler(sampler, str(last_checkpoint(stage_output_dir(cfg, "grpo"))))
            adapter = grpo_adapter
        else:
            adapter = run_grpo(cfg, loaded, sampler, stats, resume=resume)

    # ---- save: the run's adapter, sampler state and data summary (image skips included)
    final = out / "adapter"
    if main_process:
        if adapter is not None:
            shutil.copytree(adapter, final, dirs_exist_ok=True)
        sampler.save(out / SAMPLER_STATE_FILE, image_store=out / SAMPLER_IMAGES_DIR)
        _save_data_summary(stats, seen, out / "data_summary.json")
    summary = {"output_dir": str(out), "records_streamed": seen, "skipped": stats.as_dict()["by_reason"],
               "adapter": str(final) if adapter is not None else None}

    # ---- evaluate (on the in-memory model), then optionally merge the weights
    if cfg.eval.enabled:
        from geo_r_lite.evaluation import eval_output_dir, run_evaluation

        eval_cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, adapter=summary["adapter"]))
        summary["eval"] = run_evaluation(eval_cfg, loaded)
        summary["eval_report"] = str(eval_output_dir(eval_cfg) / "report.md")
    if cfg.train.merge_weights and main_process:
        if adapter is None:
            logger.warning("train.merge_weights: no stage trained an adapter, nothing to merge")
        else:
            summary["merged"] = str(save_merged(cfg, final, out / "merged"))
    logger.debug("done: %s", summary)
    if main_process:
        logger.info("%s", run_summary(summary))
    return summary


USAGE = """usage: python train.py [--config PATH] [--resume] [--section.key=value ...]

Trains the configured stages (SFT, GRPO), saves the LoRA adapter and evaluates it.
  --config PATH     a YAML config (default: configs/smoke.yaml, the CPU smoke job)
  --resume          continue the run in train.output_dir from its last complete checkpoint
  --section.key=V   override any config value, e.g. --train.max_steps=200 --model.name=tiny
Configs: configs/*.yaml (README, "Configs"). Keys: the dataclasses in geo_r_lite/config.py."""


def _print_usage():
    print(USAGE)
    raise SystemExit(0)


def cli(argv: list[str]) -> Config:
    """``--config PATH``, ``--resume`` and dotted overrides -> Config (smoke config by default)."""
    if "-h" in argv or "--help" in argv:
        _print_usage()
    config_path, overrides, rest = split_cli(argv)
    if "--resume" in rest:
        rest.remove("--resume")
        overrides.append("--train.resume=true")
    if rest:
        raise SystemExit(f"train.py: unknown arguments: {' '.join(rest)} (use --config PATH, --resume, "
                         "--section.key=value; --help for more)")
    return load_config(config_path or DEFAULT_CONFIG, overrides)


if __name__ == "__main__":
    quiet_known_noise()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from geo_r_lite.config import ConfigError
    from geo_r_lite.model import ModelLoadError
    from geo_r_lite.records import DataError

    try:
        main(cli(sys.argv[1:]))
    except (ConfigError, ModelLoadError, DataError) as err:
        # Config, data and model-loading errors name what to change: show them without a trace.
        raise SystemExit(f"train.py: {type(err).__name__}: {err}") from None
