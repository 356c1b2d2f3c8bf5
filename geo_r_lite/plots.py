"""Evaluation plots as PNG files, drawn offline with matplotlib's Agg backend.

- ``cumulative_error.png``: share of photos within d km against d on a log axis, with the
  benchmark thresholds (1/25/200/750/2500 km) marked. Unparsed answers never reach 1.
- ``world_scatter.png``: predictions and true locations on an equirectangular map, each pair
  joined by a line coloured by its error band, truth drawn on top. The land is drawn offline from
  the gazetteer's 155k populated places (a dot per place, no basemap downloaded).
- ``per_continent.png``: accuracy at 25 / 200 / 750 km per true continent, with photo counts.

The cumulative chart marks the published methods' five figures when the benchmark is known.
"""

from __future__ import annotations

import logging
import math
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


# Error bands of the lines on the map: (upper bound km, colour, label).
ERROR_BANDS = ((25, "#1a9850", "< 25 km"), (200, "#91cf60", "25-200 km"), (750, "#fee08b", "200-750 km"),
               (2500, "#fc8d59", "750-2500 km"), (math.inf, "#d73027", "> 2500 km"))


def _band(distance_km: float) -> int:
    """Index of the error band of a distance (the last band for anything not finite)."""
    return next((i for i, (limit, _, _) in enumerate(ERROR_BANDS) if distance_km < limit), len(ERROR_BANDS) - 1)


def cumulative_error_plot(rows: list[dict], path: str | os.PathLike,
                          published: dict[str, tuple[float, ...]] | None = None) -> Path:
    """Cumulative share of photos (all scored rows; unparsed never count) within d km.

    ``published``: {method: acc@1/25/200/750/2500 km in %}, drawn as markers at the thresholds.
    """
    plt = _pyplot()
    rows = scored_rows(rows)[0]
    distance = np.array([row["distance_km"] for row in rows if row.get("distance_km") is not None])
    km = np.logspace(-1, np.log10(20100), 400)
    share = (np.searchsorted(np.sort(distance), km, side="right") / len(rows)) if rows else km * 0
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(km, 100 * share, color="tab:blue", label=f"ours (n = {len(rows)})")
    for (name, figures), marker in zip((published or {}).items(), "os^Dv"):
        ax.plot(THRESHOLDS_KM, figures, ls="none", marker=marker, ms=5, alpha=0.8, label=name)
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


def _land_points() -> tuple[np.ndarray, np.ndarray]:
    """(lons, lats) of the gazetteer's populated places: where the land is, offline."""
    from geo_r_lite.gazetteer import load

    table = load()
    return table.lons, table.lats


def _land(ax) -> None:
    """Land as the gazetteer's populated places, one faint dot each (no basemap downloaded)."""
    try:
        lons, lats = _land_points()
    except (ImportError, OSError, ValueError) as err:  # the map still works as a plain grid
        logger.warning("world map without land: %s", err)
        return
    ax.scatter(lons, lats, s=0.15, c="#a8a8a8", marker=".", linewidths=0, rasterized=True, zorder=0)


def world_scatter_plot(rows: list[dict], path: str | os.PathLike) -> Path:
    """Predictions (small dots) and truth (rings, on top) on a map, pairs joined by lines coloured by error."""
    plt = _pyplot()
    rows = scored_rows(rows)[0]
    pairs = [row for row in rows if row.get("pred_lat") is not None]
    fig, ax = plt.subplots(figsize=(11, 5.8))
    ax.set(xlim=(-180, 180), ylim=(-90, 90), xlabel="longitude (deg)", ylabel="latitude (deg)",
           xticks=range(-180, 181, 30), yticks=range(-90, 91, 30), aspect="equal")
    ax.set_facecolor("#eef4fa")
    ax.grid(True, alpha=0.25, zorder=0)
    _land(ax)
    counts = [0] * len(ERROR_BANDS)
    for row in pairs:
        counts[_band(row["distance_km"])] += 1
    for row in pairs[:MAX_LINES]:
        # Draw the short way round: across the antimeridian when that is shorter.
        lon_true, lon_pred = row["lon"], row["pred_lon"]
        if abs(lon_pred - lon_true) > 180:
            lon_pred -= 360 * np.sign(lon_pred - lon_true)
        ax.plot([lon_true, lon_pred], [row["lat"], row["pred_lat"]], lw=0.7, alpha=0.7, zorder=2,
                color=ERROR_BANDS[_band(row["distance_km"])][1])
    ax.scatter([r["pred_lon"] for r in pairs], [r["pred_lat"] for r in pairs], s=7, c="#333333", zorder=3,
               label=f"prediction ({len(pairs)} parsed)")
    ax.scatter([r["lon"] for r in rows], [r["lat"] for r in rows], s=22, facecolors="none", zorder=4,
               edgecolors="#1f4e9e", linewidths=0.8, label=f"truth ({len(rows)})")
    for (limit, colour, label), count in zip(ERROR_BANDS, counts):
        ax.plot([], [], color=colour, lw=2, label=f"{label}: {count}")
    ax.legend(loc="lower left", fontsize=7, ncol=2, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def per_continent_plot(rows: list[dict], path: str | os.PathLike, table: dict | None = None) -> Path:
    """Accuracy within 25 / 200 / 750 km per true continent (bars), with the photo counts.

    ``table``: the metrics' ``per_continent`` (scored here when not given)."""
    from geo_r_lite.predictions import score_rows

    plt = _pyplot()
    table = table if table is not None else score_rows(rows)["per_continent"]
    names = sorted(table, key=lambda name: -table[name]["n"])
    fig, ax = plt.subplots(figsize=(8, 4.2))
    x = np.arange(len(names))
    for offset, km, colour in ((-0.27, 25, "#1a9850"), (0.0, 200, "#91cf60"), (0.27, 750, "#fc8d59")):
        ax.bar(x + offset, [100 * (table[n].get(f"acc@{km}km") or 0.0) for n in names], width=0.26,
               color=colour, label=f"within {km} km")
    ax.set_xticks(x, [f"{n}\n({table[n]['n']})" for n in names], fontsize=8)
    ax.set(ylim=(0, 100), ylabel="photos within (%)", title="accuracy by true continent (photos)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def save_plots(rows: list[dict], out: str | os.PathLike, published: dict[str, tuple[float, ...]] | None = None,
               per_continent: dict | None = None) -> dict[str, Path]:
    """The three plots into folder ``out``; returns {name: path}. A plotting failure is logged,
    not raised: the metrics are already written by then."""
    out = Path(out)
    made = {}
    for name, draw in (("cumulative_error", lambda r, p: cumulative_error_plot(r, p, published)),
                       ("world_scatter", world_scatter_plot),
                       ("per_continent", lambda r, p: per_continent_plot(r, p, per_continent))):
        try:
            made[name] = draw(rows, out / f"{name}.png")
        except (ImportError, ValueError, OSError, KeyError) as err:
            logger.warning("could not draw %s: %s", name, err)
    return made
