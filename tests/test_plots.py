"""The evaluation plots: drawn offline, land on the map, published markers, per-continent bars."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from geo_r_lite import plots
from geo_r_lite.geo import haversine_km, lookup_many

TRUTH = [(48.8566, 2.3522), (40.7128, -74.006), (-33.8688, 151.2093), (35.6762, 139.6503), (-1.2921, 36.8219)]
GUESS = [(48.80, 2.30), (41.88, -87.63), (-37.81, 144.96), (35.60, 139.70), (30.04, 31.24)]


def _rows():
    places = lookup_many([t[0] for t in TRUTH], [t[1] for t in TRUTH])
    rows = []
    for i, ((lat, lon), (plat, plon), place) in enumerate(zip(TRUTH, GUESS, places)):
        rows.append({"id": str(i), "lat": lat, "lon": lon, "pred_lat": plat, "pred_lon": plon, "text": "t",
                     "think": "t", "format_ok": True, "pred": None, "continent": place.continent,
                     "country": place.country, "country_code": place.country_code, "region": place.region,
                     "city": place.city, "distance_km": float(haversine_km(plat, plon, lat, lon))})
    return rows


def test_error_bands_cover_every_distance():
    assert [plots._band(d) for d in (0.0, 24.9, 25, 199, 700, 2499, 20000, float("nan"))] == [0, 0, 1, 1, 2, 3, 4, 4]


def test_three_plots_are_drawn_offline(tmp_path):
    made = plots.save_plots(_rows(), tmp_path, published={"Geo-R": (18.10, 41.53, 58.31, 75.33, 86.42)})
    assert sorted(made) == ["cumulative_error", "per_continent", "world_scatter"]
    for path in made.values():
        with Image.open(path) as image:
            assert image.size[0] > 600 and image.size[1] > 300


def test_the_map_draws_land_from_the_gazetteer(tmp_path, monkeypatch, caplog):
    def grey_share(path):
        pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
        grey = (abs(pixels[..., 0] - pixels[..., 1]) < 6) & (abs(pixels[..., 1] - pixels[..., 2]) < 6) & \
            (pixels[..., 0] > 120) & (pixels[..., 0] < 200)
        return grey.mean()

    with_land = plots.world_scatter_plot(_rows(), tmp_path / "land.png")
    def unavailable():
        raise OSError("no table")

    monkeypatch.setattr(plots, "_land_points", unavailable)
    with caplog.at_level(logging.WARNING):
        without = plots.world_scatter_plot(_rows(), tmp_path / "plain.png")
    assert "world map without land" in caplog.text
    assert grey_share(with_land) > 2 * grey_share(without)


@pytest.mark.parametrize("published", [None, {"G3": (16.7, 40.9, 55.6, 71.2, 84.7)}])
def test_cumulative_chart_with_and_without_published_markers(tmp_path, published):
    path = plots.cumulative_error_plot(_rows(), tmp_path / "c.png", published)
    assert path.is_file()
