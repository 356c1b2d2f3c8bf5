"""The outputs of an evaluation: ``metrics.json``, ``report.md``, plots, optional hotspots.

``report.md`` puts our row beside published rows at 1/25/200/750/2500 km (the benchmark is
recognised from the data path: ``im2gps3k`` or ``yfcc4k`` in it), then per-level accuracy,
the per-continent breakdown, the parse-failure rate, skipped rows, and the best and worst
examples with their reasoning chain. Published figures are percentages as printed in each paper
(rounded to 0.1); a figure that could not be checked is left out rather than guessed.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from geo_r_lite.metrics import THRESHOLDS_KM
from geo_r_lite.predictions import export_hotspots, score_rows, scored_rows

logger = logging.getLogger(__name__)

# (method, citation, {benchmark: acc@1/25/200/750/2500 km in %}). Geo-R's IM2GPS3K row is the
# paper's table (2 decimals); the others are each paper's table at 0.1 precision as a public
# leaderboard compilation lists them, kept only where they agree with our reading of the papers.
# GeoCLIP's YFCC4K row is the reproduction reported by G3 (GeoCLIP did
# not report YFCC4K). Left out until checked against the papers: PIGEOTTO's and Geo-R's YFCC4K.
PUBLISHED: tuple[tuple[str, str, dict[str, tuple[float, ...]]], ...] = (
    ("GeoCLIP", "Vivanco Cepeda et al., NeurIPS 2023, arXiv:2309.16020",
     {"im2gps3k": (14.1, 34.5, 50.7, 69.7, 83.8), "yfcc4k": (9.6, 19.3, 32.6, 55.0, 74.7)}),
    ("PIGEOTTO", "Haas et al., CVPR 2024, arXiv:2307.05845",
     {"im2gps3k": (11.3, 36.7, 53.8, 72.4, 85.3)}),
    ("G3", "Jia et al., NeurIPS 2024, arXiv:2405.14702",
     {"im2gps3k": (16.7, 40.9, 55.6, 71.2, 84.7), "yfcc4k": (24.0, 35.9, 47.0, 64.3, 78.2)}),
    ("Geo-R", "Wu et al., AAAI 2026, arXiv:2601.00388",
     {"im2gps3k": (18.10, 41.53, 58.31, 75.33, 86.42)}),
)
BENCHMARKS = ("im2gps3k", "yfcc4k")
LEVELS = ("continent", "country", "region", "city")


def detect_benchmark(*names: str | os.PathLike | None) -> str | None:
    """``im2gps3k`` / ``yfcc4k`` when one of the names (paths) mentions it, else None."""
    for name in names:
        folded = str(name or "").lower().replace("-", "").replace("_", "")
        for benchmark in BENCHMARKS:
            if benchmark in folded:
                return benchmark
    return None


def _pct(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}"


def _km(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.1f}"


def comparison_table(metrics: dict, benchmark: str | None) -> list[str]:
    """Markdown lines: our acc@X row beside the published rows of ``benchmark``."""
    header = "| method | " + " | ".join(f"{t} km" for t in THRESHOLDS_KM) + " | source |"
    lines = [header, "|" + "---|" * (len(THRESHOLDS_KM) + 2)]
    ours = " | ".join(_pct(metrics.get(f"acc@{t}km")) for t in THRESHOLDS_KM)
    lines.append(f"| **ours** | {ours} | this run, n = {metrics['n']} |")
    published = [row for row in PUBLISHED if benchmark in row[2]]
    for method, cite, rows in published:
        lines.append(f"| {method} | " + " | ".join(f"{v:g}" for v in rows[benchmark]) + f" | {cite} |")
    if published and benchmark == "yfcc4k":
        lines += ["", "_GeoCLIP's YFCC4K row is the reproduction reported by G3._"]
    if benchmark is None:
        lines.append("")
        lines.append("_Published rows are shown for IM2GPS3K and YFCC4K only (benchmark not "
                     "recognised from the data path)._")
    return lines


def _example(row: dict, rank: str) -> list[str]:
    pred = row.get("pred") or {}
    chain = " -> ".join(str(pred.get(level) or "?") for level in LEVELS)
    truth = " -> ".join(str(row.get(level) or "?") for level in LEVELS)
    think = (row.get("think") or "").strip() or "(no reasoning block)"
    lines = [f"#### {rank}: `{row['id']}` - error {_km(row.get('distance_km'))} km",
            f"- truth: {truth} ({row['lat']:.4f}, {row['lon']:.4f})",
            f"- predicted: {chain} ({row.get('pred_lat')}, {row.get('pred_lon')})",
            "- reasoning:", "", "> " + think[:1200].replace("\n", "\n> "), ""]
    if row.get("pred_lat") is None:
        raw = (row.get("text") or "").strip()[:300].replace("`", "'")
        lines += [f"- unparsed ({row.get('error') or 'no answer'}); raw output: `{raw}`", ""]
    return lines


def _examples(rows: list[dict], k: int) -> list[str]:
    """The k closest parsed answers, then the k worst others (unparsed answers count as worst)."""
    parsed = sorted((row for row in rows if row.get("distance_km") is not None),
                    key=lambda row: (row["distance_km"], str(row["id"])))
    best = parsed[:min(k, -(-len(rows) // 2))]  # at most half, so best and worst do not meet
    shown = {row["id"] for row in best}
    worst = sorted((row for row in rows if row["id"] not in shown),
                   key=lambda row: (-(row.get("distance_km") if row.get("distance_km") is not None
                                      else math.inf), str(row["id"])))[:k]
    lines = ["## Examples", ""] if rows else []
    for i, row in enumerate(best, start=1):
        lines += _example(row, f"best {i}")
    for i, row in enumerate(worst, start=1):
        lines += _example(row, f"worst {i}")
    return lines


def render_report(metrics: dict, rows: list[dict], *, benchmark: str | None = None,
                  title: str = "Evaluation", num_examples: int = 5,
                  data_summary: dict | None = None, plots: dict[str, str] | None = None) -> str:
    """The markdown report as a string (see the module docstring for its sections)."""
    lines = [f"# {title}", "", f"Benchmark: {benchmark or 'custom'}; {metrics['n']} photos scored, "
             f"{metrics['n_parsed']} parsed.", "", "## Accuracy within distance (%)", ""]
    lines += comparison_table(metrics, benchmark)
    method = metrics.get("distance", "haversine")
    lines += ["", "Distances: " + ("WGS-84 geodesic (as GeoCLIP and G3 report)" if method == "geodesic" else
                                   "haversine on a sphere of 6,371 km (eval.distance: geodesic for WGS-84)") + "."]
    lines += ["", f"Median error {_km(metrics['median_km'])} km (parsed only: "
              f"{_km(metrics['median_km_parsed'])} km); GeoScore {metrics['geoscore']:.0f}; "
              f"parse failures {_pct(metrics['parse_failure_rate'])} % (counted as misses).", ""]
    lines += ["## Chain of Region accuracy (%)", "", "| level | accuracy | n |", "|---|---|---|"]
    lines += [f"| {level} | {_pct(metrics.get(f'acc_{level}'))} | {metrics.get(f'n_{level}', 0)} |"
              for level in LEVELS]
    lines += ["", "## Per continent (true continent)", "",
              "| continent | n | " + " | ".join(f"{t} km" for t in THRESHOLDS_KM) + " | median km |",
              "|" + "---|" * (len(THRESHOLDS_KM) + 3)]
    for name, part in metrics.get("per_continent", {}).items():
        accs = " | ".join(_pct(part[f"acc@{t}km"]) for t in THRESHOLDS_KM)
        lines.append(f"| {name} | {part['n']} | {accs} | {_km(part['median_km'])} |")
    skipped = dict((data_summary or {}).get("by_reason", {}))
    for reason, count in metrics.get("skipped_images", {}).items():
        skipped[reason] = skipped.get(reason, 0) + count
    lines += ["", "## Skipped rows", "",
              ", ".join(f"{reason}: {count}" for reason, count in sorted(skipped.items()))
              or "none", ""]
    if plots:
        lines += ["## Plots", ""] + [f"![{name}]({path})" for name, path in plots.items()] + [""]
    if num_examples > 0:
        lines += _examples(scored_rows(rows)[0], num_examples)
    return "\n".join(lines) + "\n"


def _with_geodesic_distances(rows: list[dict]) -> list[dict]:
    from geo_r_lite.geo import geodesic_km

    out = []
    for row in rows:
        if row.get("pred_lat") is not None and row.get("distance_km") is not None:
            row = {**row, "distance_km": float(geodesic_km(row["pred_lat"], row["pred_lon"], row["lat"], row["lon"]))}
        out.append(row)
    return out


def write_outputs(out: str | os.PathLike, rows: list[dict], *, cfg=None,
                  data_summary: dict | None = None, benchmark: str | None = None) -> dict[str, Any]:
    """Score ``rows`` and write ``metrics.json``, ``report.md``, the plots and (when
    ``cfg.eval.hotspot_km`` is set) ``hotspots.csv`` into ``out``. Returns the metrics."""
    from geo_r_lite.plots import save_plots

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = score_rows(rows, cfg.eval.distance if cfg is not None else "haversine")
    if cfg is not None:
        benchmark = benchmark or detect_benchmark(cfg.eval.data.path, cfg.eval.data.image_dir)
        metrics["model"] = cfg.model.name + (f" + {cfg.model.adapter}" if cfg.model.adapter else "")
    metrics["benchmark"] = benchmark
    if data_summary is not None:
        metrics["data_skipped"] = data_summary.get("by_reason", {})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=True) + "\n",
                                      encoding="utf-8")
    published = {name: figures[benchmark] for name, _, figures in PUBLISHED if benchmark in figures}
    if metrics.get("distance") == "geodesic":  # rows carry haversine km: the plots and examples follow the table
        rows = _with_geodesic_distances(rows)
    plots = save_plots(rows, out, published, metrics.get("per_continent"))
    num_examples = cfg.eval.num_examples if cfg is not None else 5
    title = f"Evaluation of {metrics.get('model', 'predictions')}"
    report = render_report(metrics, rows, benchmark=benchmark, title=title,
                           num_examples=num_examples, data_summary=data_summary,
                           plots={name: Path(path).name for name, path in plots.items()})
    (out / "report.md").write_text(report, encoding="utf-8")
    if cfg is not None and cfg.eval.hotspot_km is not None:
        export_hotspots(rows, cfg.eval.hotspot_km, out / "hotspots.csv")
    logger.info("acc@%s: %s", "/".join(map(str, THRESHOLDS_KM)),
                " / ".join(_pct(metrics[f"acc@{t}km"]) for t in THRESHOLDS_KM))
    logger.info("wrote %s and %s", out / "metrics.json", out / "report.md")
    return metrics
