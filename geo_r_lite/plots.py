"""Evaluation plots as PNG files, drawn offline with matplotlib's Agg backend.

- ``cumulative_error.png``: share of photos within d km against d on a log axis, with the
  benchmark thresholds (1/25/200/750/2500 km) marked. Unparsed answers never reach 1.
- ``world_scatter.png``: true locations and predictions on an equirectangular lon/lat grid, each
  pair joined by a line. No basemap is downloaded: the grid stands in for coastlines.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from geo_r_lite.metrics import THRESHOLDS_KM
from geo_r_lite.predictions import scored_rows

logger = logging.getLogger(__name__)

# Lines are drawn for at most this many pairs, so a 4k-photo plot stays readable.
MAX_LINES = 1500


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def cumulative_error_plot(rows: list[dict], path: str | os.PathLike) -> Path:
    """Cumulative share of photos (all scored rows; unparsed never count) within d km."""
    plt = _pyplot()
    rows = scored_rows(rows)[0]
    distance = np.array([row["distance_km"] for row in rows if row.get("distance_km") is not None])
    km = np.logspace(-1, np.log10(20100), 400)
    share = (np.searchsorted(np.sort(distance), km, side="right") / len(rows)) if rows else km * 0
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(km, 100 * share, color="tab:blue", label=f"ours (n = {len(rows)})")
    for threshold in THRESHOLDS_KM:
        ax.axvline(threshold, color="grey", lw=0.6, ls="--")
        ax.text(threshold, 101, f"{threshold} km", ha="center", va="bottom", fontsize=7)
    ax.set(xscale="log", xlim=(km[0], km[-1]), ylim=(0, 100), xlabel="error (km, log scale)",
           ylabel="photos within error (%)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def world_scatter_plot(rows: list[dict], path: str | os.PathLike) -> Path:
    """Truth (green) and parsed predictions (red) on a lon/lat grid, joined by grey lines."""
    plt = _pyplot()
    rows = scored_rows(rows)[0]
    pairs = [row for row in rows if row.get("pred_lat") is not None]
    fig, ax = plt.subplots(figsize=(10, 5.2))
    ax.set(xlim=(-180, 180), ylim=(-90, 90), xlabel="longitude (deg)", ylabel="latitude (deg)",
           xticks=range(-180, 181, 30), yticks=range(-90, 91, 30), aspect="equal")
    ax.grid(True, alpha=0.3)
    for row in pairs[:MAX_LINES]:
        # Draw the short way round: across the antimeridian when that is shorter.
        lon_true, lon_pred = row["lon"], row["pred_lon"]
        if abs(lon_pred - lon_true) > 180:
            lon_pred -= 360 * np.sign(lon_pred - lon_true)
        ax.plot([lon_true, lon_pred], [row["lat"], row["pred_lat"]], color="grey", lw=0.4, alpha=0.5)
    ax.scatter([r["lon"] for r in rows], [r["lat"] for r in rows], s=6, c="tab:green",
               label=f"truth ({len(rows)})")
    ax.scatter([r["pred_lon"] for r in pairs], [r["pred_lat"] for r in pairs], s=6, c="tab:red",
               label=f"prediction ({len(pairs)} parsed)")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def save_plots(rows: list[dict], out: str | os.PathLike) -> dict[str, Path]:
    """Both plots into folder ``out``; returns {name: path}. A plotting failure is logged, not
    raised: the metrics are already written by then."""
    out = Path(out)
    made = {}
    for name, draw in (("cumulative_error", cumulative_error_plot),
                       ("world_scatter", world_scatter_plot)):
        try:
            made[name] = draw(rows, out / f"{name}.png")
        except (ImportError, ValueError, OSError) as err:
            logger.warning("could not draw %s: %s", name, err)
    return made
