"""Benchmark evaluation: batched generation over a data source, resumable, sharded, scored.

``run_evaluation(cfg, loaded=None)`` reads ``cfg.eval.data`` through ``geo_r_lite.sources``,
asks the model the training prompt (``geo_r_lite.prompts``) for each photo, parses the answer with
the training parser (``geo_r_lite.parsing``) and writes one JSON line per record
(``geo_r_lite.predictions``). Properties:

- Batched HF generation (left padding, greedy unless ``eval.do_sample``); one batch is appended
  to the predictions file, flushed and fsync'd before the next starts.
- Resumable: a rerun into the same output folder skips ids already written, so an interrupted
  run loses at most one batch and its final metrics equal an uninterrupted run's.
- Bad rows (bad coordinates, missing or corrupt images) are counted, not fatal
  (``data_summary.json``); an unparseable output is scored as a miss.
- Self-consistency (``eval.num_samples`` > 1, sampled at ``eval.temperature``): the chosen answer
  is the sample whose coordinates are the medoid of the parsed samples.
- Sharded (``shard=(i, n)``, default from RANK/WORLD_SIZE): shard i takes records i, i+n, ...
  and writes its own file; the last shard to finish merges all shards into the report.
- Prompts are always left-padded (whatever padding side a trainer left on the processor).
- vLLM generation (Unsloth's ``fast_generate``) only when ``eval.use_vllm`` or ``model.fast_inference``
  is set and the model really carries a vLLM engine (``model.vllm_engine``); a saved adapter goes in
  as one LoRA request, or the run stops. It needs a CUDA GPU and is not exercised by the CPU tests.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from geo_r_lite.config import Config, save_config
from geo_r_lite.images import PIXEL_STEP, ImageError, load_image
from geo_r_lite.model import ModelLoadError, pixel_step, vllm_engine
from geo_r_lite.parsing import parse_answer
from geo_r_lite.predictions import (
    append_rows, medoid_index, prediction_row, read_predictions, read_rows, repair_tail,
    score_rows, shard_file_name, shard_from_env,
)
from geo_r_lite.prompts import build_prompt
from geo_r_lite.records import DataError, GeoRecord, SkipStats
from geo_r_lite.sources import iter_records

logger = logging.getLogger(__name__)


def eval_output_dir(cfg: Config) -> Path:
    """``eval.output_dir``, or ``<train.output_dir>/eval`` when it is not set."""
    return Path(cfg.eval.output_dir or Path(cfg.train.output_dir) / "eval")


# --------------------------------------------------------------------------- generation


def _sampling(cfg: Config) -> dict[str, Any]:
    """generate() keyword arguments: greedy unless sampling is asked for or k > 1 samples."""
    k = max(1, cfg.eval.num_samples)
    if k > 1 and not cfg.eval.do_sample:
        logger.info("eval.num_samples=%d: sampling at temperature %g (k greedy samples would be "
                    "identical)", k, cfg.eval.temperature)
    if cfg.eval.do_sample or k > 1:
        return {"do_sample": True, "temperature": cfg.eval.temperature, "num_return_sequences": k}
    return {"do_sample": False}


def _vllm_wanted(cfg: Config, loaded) -> bool:
    """True when a real vLLM engine is attached (Unsloth ``fast_inference``) and may generate."""
    if not (cfg.eval.use_vllm or cfg.model.fast_inference):
        return False
    if vllm_engine(loaded.model) is None:
        logger.warning("vLLM generation asked for (eval.use_vllm / model.fast_inference) but the model has no "
                       "vLLM engine (backend=%s; it needs the unsloth backend with model.fast_inference on a "
                       "CUDA GPU): using transformers' generate", loaded.backend)
        return False
    return True


def _lora_request(loaded, cfg: Config):
    """The vLLM LoRA request of ``model.adapter``, made once per loaded model (None without one).

    vLLM holds its own copy of the base weights, so an adapter only counts when it goes in as a
    LoRA request. Each ``load_lora`` call is a new request id, which makes vLLM load the adapter
    again: the request is kept on ``loaded``. An adapter that cannot be passed stops the run: an
    evaluation of the base model under the adapter's name would be a wrong result.
    """
    if not cfg.model.adapter:
        return None
    cached = getattr(loaded, "lora_request", None)
    if cached is not None and cached[0] == cfg.model.adapter:
        return cached[1]
    if not hasattr(loaded.model, "load_lora"):
        raise ModelLoadError(
            f"model.adapter={cfg.model.adapter!r} cannot reach vLLM: the loaded model has no load_lora (Unsloth "
            "adds it to models made by get_peft_model). Evaluate with model.fast_inference=false and "
            "eval.use_vllm=false, or pass merged weights as model.name")
    request = loaded.model.load_lora(cfg.model.adapter)
    loaded.lora_request = (cfg.model.adapter, request)
    return request


def _generate_vllm(loaded, texts: list[str], images: list, cfg: Config) -> list[list[str]]:
    """Unsloth's vLLM path (CUDA only, Qwen2.5-VL class models; not covered by CPU tests)."""
    from vllm import SamplingParams

    sampling = _sampling(cfg)
    params = SamplingParams(n=sampling.get("num_return_sequences", 1),
                            temperature=sampling.get("temperature", 0.0),
                            max_tokens=cfg.eval.max_new_tokens)
    requests = [{"prompt": text, "multi_modal_data": {"image": image}}
                for text, image in zip(texts, images)]
    lora = _lora_request(loaded, cfg)
    extra = {} if lora is None else {"lora_request": lora}
    outputs = loaded.model.fast_generate(requests, sampling_params=params, **extra)
    return [[choice.text for choice in output.outputs] for output in outputs]


def generate_batch(loaded, images: list, cfg: Config) -> list[list[str]]:
    """Completions for a batch of PIL images: one list of ``num_samples`` texts per image."""
    processor = loaded.processor
    text = processor.apply_chat_template(build_prompt(), add_generation_prompt=True, tokenize=False)
    texts = [text] * len(images)
    if _vllm_wanted(cfg, loaded):
        return _generate_vllm(loaded, texts, images, cfg)
    import torch

    # Left padding, whatever the processor was left with: Unsloth's trainers set its tokenizer to
    # right padding, and right-padded prompts of different lengths (images of other aspect ratios)
    # would generate after the pad tokens.
    inputs = processor(text=texts, images=images, return_tensors="pt", padding=True, padding_side="left")
    inputs = inputs.to(loaded.model.device)
    sampling = _sampling(cfg)
    pad_id = processor.tokenizer.pad_token_id
    with torch.inference_mode():
        output = loaded.model.generate(**inputs, max_new_tokens=cfg.eval.max_new_tokens,
                                       pad_token_id=pad_id, **sampling)
    decoded = processor.batch_decode(output[:, inputs["input_ids"].shape[1]:],
                                     skip_special_tokens=True)
    k = sampling.get("num_return_sequences", 1)
    # generate() returns the k sequences of one input next to each other.
    return [decoded[i * k:(i + 1) * k] for i in range(len(images))]


def choose_answer(texts: Sequence[str]) -> tuple[str, Any, list | None]:
    """(chosen text, its ParsedAnswer, sample coordinates or None when k = 1).

    With several samples the chosen one is the medoid of the parsed coordinates (the first
    sample when none parses, so the row still shows what the model wrote).
    """
    parsed = [parse_answer(text) for text in texts]
    if len(texts) == 1:
        return texts[0], parsed[0], None
    points = [(p.lat, p.lon) if p.lat is not None else None for p in parsed]
    best = medoid_index(points)
    best = 0 if best is None else best
    return texts[best], parsed[best], [list(point) if point else None for point in points]


# --------------------------------------------------------------------------- the loop


def _peek(records: Iterator[GeoRecord]) -> tuple[GeoRecord | None, Iterator[GeoRecord]]:
    """(first record or None, an iterator that still yields it)."""
    first = next(records, None)
    return first, (records if first is None else itertools.chain([first], records))


def _batches(records: Iterator[GeoRecord], cfg: Config, done: set[str], shard: tuple[int, int],
             step: int = PIXEL_STEP) -> Iterator[tuple[list[GeoRecord], list, list[dict]]]:
    """(records, their images, rows of records whose image failed) per batch of this shard.

    Images are sized for the model (``step``: ``geo_r_lite.model.pixel_step`` of its processor).
    """
    index, count = shard
    size = max(1, cfg.eval.batch_size)
    batch, images, failed = [], [], []
    for position, record in enumerate(records):
        if position % count != index or str(record.id) in done:
            continue
        try:
            images.append(load_image(record.image, cfg.model.min_pixels, cfg.model.max_pixels, step))
        except ImageError as err:
            logger.warning("record %s: %s (counted, not scored)", record.id, err)
            failed.append({"id": str(record.id), "skipped": err.reason, "detail": err.detail})
            continue
        batch.append(record)
        if len(batch) == size:
            yield batch, images, failed
            batch, images, failed = [], [], []
    if batch or failed:
        yield batch, images, failed


def _progress(cfg: Config, shard: tuple[int, int]):
    """A tqdm bar in images (its rate is images/s); sized when ``data.max_samples`` bounds it."""
    from tqdm.auto import tqdm

    limit, (index, count) = cfg.eval.data.max_samples, shard
    total = None if limit is None else -(-max(0, limit - index) // count)
    return tqdm(total=total, unit="img", desc=f"eval {index}/{count}" if count > 1 else "eval",
                dynamic_ncols=True)


def predict_records(loaded, cfg: Config, records: Iterator[GeoRecord], path: Path,
                    shard: tuple[int, int]) -> int:
    """Append predictions for this shard's ``records`` not yet in ``path``; return how many."""
    repair_tail(path)
    done = {str(row["id"]) for row in read_rows(path)} if path.is_file() else set()
    if done:
        logger.info("resuming: %d records already in %s", len(done), path)
    written = 0
    with _progress(cfg, shard) as bar:
        bar.update(len(done))
        for records, images, failed in _batches(records, cfg, done, shard, pixel_step(loaded.processor)):
            rows = list(failed)
            if records:
                for record, texts in zip(records, generate_batch(loaded, images, cfg)):
                    text, parsed, samples = choose_answer(texts)
                    rows.append(prediction_row(record, text, parsed, samples))
            append_rows(path, rows)
            written += len(rows)
            bar.update(len(rows))
    return written


# Settings that change what a prediction is: resuming under other values mixes two runs.
_RESUME_KEYS = (("model", "name"), ("model", "adapter"), ("model", "min_pixels"),
                ("model", "max_pixels"), ("eval", "max_new_tokens"), ("eval", "do_sample"),
                ("eval", "temperature"), ("eval", "num_samples"))


def _warn_if_settings_changed(cfg: Config, out: Path) -> None:
    saved = out / "config.yaml"
    if not saved.is_file() or not any(out.glob("predictions*.jsonl")):
        return
    old = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
    for section, key in _RESUME_KEYS:
        before, now = (old.get(section) or {}).get(key), getattr(getattr(cfg, section), key)
        if before != now:
            logger.warning("resuming in %s with %s.%s=%r, but its predictions were made with %r; "
                           "use a new eval.output_dir to keep runs apart", out, section, key, now, before)


def run_evaluation(cfg: Config, loaded=None, *, shard: tuple[int, int] | None = None) -> dict[str, Any]:
    """Evaluate ``loaded`` (or the model ``cfg.model`` names) on ``cfg.eval.data``.

    Returns the metrics of this run (``geo_r_lite.metrics.compute_metrics`` keys plus
    ``skipped_images``); for a shard that is not the last to finish, the shard's own metrics.
    Outputs go to ``eval_output_dir(cfg)``.
    """
    from geo_r_lite.report import write_outputs

    shard = shard or shard_from_env()
    out = eval_output_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    _warn_if_settings_changed(cfg, out)
    save_config(cfg, out)
    stats = SkipStats(strict=cfg.eval.data.strict)
    # Open the data before loading the model, so a wrong path fails in seconds, not minutes.
    first, records = _peek(iter_records(cfg.eval.data, stats))
    if first is None:
        raise DataError(f"eval.data: no usable records (skipped: {stats.as_dict()['by_reason']})")
    if loaded is None:
        from geo_r_lite.model import load_model

        loaded = load_model(cfg.model, for_training=False)
    else:
        # A model handed over by training: eval mode turns dropout off and lets generate() use
        # its KV cache even when gradient checkpointing was on.
        loaded.model.eval()
    path = out / shard_file_name(*shard)
    written = predict_records(loaded, cfg, records, path, shard)
    logger.info("shard %d/%d: %d new predictions in %s", shard[0], shard[1], written, path)
    stats.save(out / "data_summary.json")
    rows = read_rows(path)
    if shard[1] == 1:
        return write_outputs(out, rows, cfg=cfg, data_summary=stats.as_dict())
    index, count = shard
    (out / f"shard-{index}-of-{count}.done").write_text(json.dumps({"rows": len(rows)}) + "\n",
                                                       encoding="utf-8")
    if not all((out / f"shard-{i}-of-{count}.done").is_file() for i in range(count)):
        logger.info("shard %d/%d done; the last shard to finish writes the merged report", index, count)
        return score_rows(rows, cfg.eval.distance)
    lock = out / f"merge-{count}.lock"
    try:
        # Two shards finishing together both see every marker: only one merges.
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return score_rows(rows, cfg.eval.distance)
    try:
        logger.info("all %d shards done: merging them into the report", count)
        files = [out / shard_file_name(i, count) for i in range(count)]
        return write_outputs(out, read_predictions(files), cfg=cfg, data_summary=stats.as_dict())
    finally:
        lock.unlink()
