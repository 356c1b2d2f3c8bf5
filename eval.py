"""Evaluate a model (or score saved predictions) on IM2GPS3K, YFCC4K or any configured source.

    python eval.py --config configs/eval_im2gps3k.yaml [--model.adapter=runs/x/adapter]
    python eval.py --score runs/x/eval/predictions.jsonl [more.jsonl ...]   # no model needed
    python eval.py --config configs/eval_im2gps3k.yaml --image photo.jpg
    python eval.py --config configs/eval_im2gps3k.yaml --shard 0/2           # one of 2 processes
    torchrun --nproc_per_node 2 eval.py --config ...   # shard taken from RANK / WORLD_SIZE

Dotted overrides (``--eval.batch_size=16``) apply to any mode that reads the config. Outputs go to
``eval.output_dir`` (default ``<train.output_dir>/eval``): predictions.jsonl (appended per batch;
rerun the same command to resume), metrics.json, report.md, cumulative_error.png,
world_scatter.png, data_summary.json, config.yaml. ``--score`` merges shard files by id and
writes the same outputs next to the first file.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from geo_r_lite.config import load_config, split_cli
from geo_r_lite.console import quiet_known_noise

logger = logging.getLogger("eval")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Also: --config PATH (YAML) and dotted overrides such as --eval.batch_size=16 or "
               "--model.adapter=runs/x/adapter.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--score", nargs="+", metavar="PREDICTIONS",
                      help="score predictions files or folders (shards are merged by id)")
    mode.add_argument("--image", metavar="PHOTO", help="geolocate one photo and print the answer")
    parser.add_argument("--shard", metavar="i/n", help="evaluate every n-th record from i")
    return parser


def score_files(paths: list[str], overrides: list[str]) -> dict:
    """Merge and score prediction files; outputs next to the first one."""
    from geo_r_lite.predictions import read_predictions
    from geo_r_lite.report import detect_benchmark, write_outputs

    files: list[Path] = []
    for name in paths:
        path = Path(name)
        files += sorted(path.glob("predictions*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise SystemExit(f"--score: no predictions*.jsonl in {paths}")
    out = files[0].parent
    saved = out / "config.yaml"
    cfg = load_config(saved if saved.is_file() else None, overrides)
    summary = out / "data_summary.json"
    data_summary = None
    if summary.is_file():
        import json

        data_summary = json.loads(summary.read_text(encoding="utf-8"))
    benchmark = detect_benchmark(cfg.eval.data.path, *files)
    return write_outputs(out, read_predictions(files), cfg=cfg if saved.is_file() else None,
                         data_summary=data_summary, benchmark=benchmark)


def locate_image(cfg, photo: str) -> str:
    """The model's answer for one photo as printable text (with the error if EXIF has GPS)."""
    from geo_r_lite.evaluation import choose_answer, generate_batch
    from geo_r_lite.geo import haversine_km
    from geo_r_lite.images import exif_gps, load_image
    from geo_r_lite.model import load_model, pixel_step

    load_image(photo, cfg.model.min_pixels, cfg.model.max_pixels)  # a bad photo fails before the model loads
    loaded = load_model(cfg.model, for_training=False)
    image = load_image(photo, cfg.model.min_pixels, cfg.model.max_pixels, pixel_step(loaded.processor))
    text, parsed, samples = choose_answer(generate_batch(loaded, [image], cfg)[0])
    levels = [parsed.continent, parsed.country, parsed.region, parsed.city]
    lines = ["reasoning:", (parsed.think or "(no <think> block)").strip(),
             "place:      " + " -> ".join(level or "?" for level in levels)]
    if parsed.lat is None:
        lines += ["coordinates: none parsed (" + (parsed.error or "unreadable answer") + ")",
                  "raw output: " + text.strip()]
    else:
        lines.append(f"coordinates: ({parsed.lat:.4f}, {parsed.lon:.4f})")
    if samples is not None:
        lines.append(f"self-consistency: medoid of {sum(p is not None for p in samples)} parsed "
                     f"of {len(samples)} samples")
    truth = exif_gps(photo)
    if truth is not None:
        lines.append(f"EXIF GPS:    ({truth[0]:.4f}, {truth[1]:.4f})")
        if parsed.lat is not None:
            lines.append(f"error:       {float(haversine_km(parsed.lat, parsed.lon, *truth)):.1f} km")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict | str:
    quiet_known_noise()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config_path, overrides, rest = split_cli(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(rest)

    # ---- score saved predictions: no model
    if args.score:
        return score_files(args.score, overrides)

    cfg = load_config(config_path, overrides)
    # ---- one photo
    if args.image:
        answer = locate_image(cfg, args.image)
        print(answer)
        return answer

    # ---- the benchmark
    from geo_r_lite.evaluation import run_evaluation
    from geo_r_lite.predictions import parse_shard

    shard = parse_shard(args.shard) if args.shard else None
    return run_evaluation(cfg, shard=shard)


if __name__ == "__main__":
    try:
        main()
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        # Config, data and model-loading errors name what to change: show them without a trace.
        raise SystemExit(f"eval.py: {type(err).__name__}: {err}") from None
