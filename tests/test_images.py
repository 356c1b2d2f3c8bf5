"""The image pipeline: EXIF orientation, RGB, pixel budget, failure reasons, EXIF GPS."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from geo_r_lite.images import ImageError, exif_gps, fit_size, iter_loaded, load_image
from geo_r_lite.records import DataError, GeoRecord, SkipStats

MIN_PIXELS, MAX_PIXELS = 32 * 28 * 28, 256 * 28 * 28


def _encode(image: Image.Image, fmt: str = "JPEG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _noise(width: int, height: int, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.mark.parametrize("size", [
    pytest.param((4000, 3000), id="large-photo-shrinks"),
    pytest.param((50, 40), id="thumbnail-grows"),
    pytest.param((308, 196), id="inside-budget-on-the-grid-unchanged"),
    pytest.param((300, 200), id="inside-budget-snapped-to-the-grid"),
    pytest.param((6000, 300), id="panorama"),
    pytest.param((1, 1), id="single-pixel"),
])
def test_load_image_fits_budget_keeping_aspect(size):
    image = load_image(_encode(_noise(*size)), MIN_PIXELS, MAX_PIXELS)
    assert image.mode == "RGB"
    assert MIN_PIXELS <= image.width * image.height <= MAX_PIXELS
    assert image.width % 28 == 0 and image.height % 28 == 0
    if size[0] % 28 == 0 and size[1] % 28 == 0 and MIN_PIXELS <= size[0] * size[1] <= MAX_PIXELS:
        assert image.size == size
    else:
        # Aspect ratio kept up to one grid step of rounding on either side.
        assert abs(image.width / image.height - size[0] / size[1]) <= (
            size[0] / size[1]) * (28 / image.height + 28 / image.width) + 1e-9


_budgets = st.tuples(st.integers(1, 400_000), st.integers(1, 400_000)).map(sorted)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 5000), _budgets, st.sampled_from([28, 32]))
def test_fit_size_is_on_the_grid_under_the_maximum_and_stable(width, height, budget, step):
    low, high = budget
    high = max(high, step * step)
    low = min(low, high)
    new_w, new_h = fit_size(width, height, low, high, step)
    area = new_w * new_h
    assert new_w % step == 0 and new_h % step == 0 and new_w >= step and new_h >= step
    assert area <= high and max(new_w, new_h) <= 200 * min(new_w, new_h)
    # A size it made is a size it keeps (what the processor sees is what training saw).
    assert fit_size(new_w, new_h, low, high, step) == (new_w, new_h) or area < low


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 5000),
       st.tuples(st.integers(4 * 28 * 28, 300_000), st.integers(4 * 28 * 28, 300_000)).map(sorted),
       st.sampled_from([28, 32]))
def test_the_qwen_processors_resize_rule_leaves_our_sizes_unchanged(width, height, budget, step):
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    low, high = budget
    assume(max(width, height) <= 100 * min(width, height))  # beyond that the aspect cap decides
    if high < 2 * low:  # a budget narrower than that can leave no multiple of the step inside it
        high = 2 * low
    new_w, new_h = fit_size(width, height, low, high, step)
    assert low <= new_w * new_h <= high
    assert smart_resize(new_h, new_w, factor=step, min_pixels=low, max_pixels=high) == (new_h, new_w)
    # vLLM processes the raw image again with the checkpoint's default budget: also unchanged.
    assert smart_resize(new_h, new_w, factor=step, min_pixels=56 * 56, max_pixels=28 * 28 * 1280) == (new_h, new_w)


def test_exif_orientation_is_applied():
    # Orientation 6: the camera was turned; the stored 200x100 shows as 100x200.
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(_noise(200, 100), exif=exif)
    assert load_image(data, 1, 10**6, step=1).size == (100, 200)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "I;16"])
def test_any_mode_becomes_rgb(mode):
    image = Image.new(mode, (60, 50))
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    assert load_image(_encode(image, fmt), 1, 10**6, step=1).mode == "RGB"


def test_transparent_pixels_become_white():
    image = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    assert load_image(_encode(image, "PNG"), 1, 10**6, step=1).getpixel((5, 5)) == (255, 255, 255)


@pytest.mark.parametrize("ref", [
    pytest.param(lambda tmp: _encode(_noise(64, 48)), id="bytes"),
    pytest.param(lambda tmp: _noise(64, 48), id="pil-image"),
    pytest.param(lambda tmp: {"bytes": _encode(_noise(64, 48)), "path": None}, id="hf-dict-bytes"),
    pytest.param(lambda tmp: {"bytes": None, "path": str(_file(tmp))}, id="hf-dict-path"),
    pytest.param(lambda tmp: str(_file(tmp)), id="str-path"),
    pytest.param(lambda tmp: _file(tmp), id="pathlib-path"),
])
def test_every_reference_kind_loads(ref, tmp_path):
    assert load_image(ref(tmp_path), 1, 10**6, step=1).size == (64, 48)


def _file(folder):
    path = folder / "photo.jpg"
    path.write_bytes(_encode(_noise(64, 48)))
    return path


JPEG = _encode(_noise(120, 90))
PNG = _encode(_noise(120, 90), "PNG")


@pytest.mark.parametrize("ref, reason", [
    pytest.param("/no/such/file.jpg", "missing_image", id="missing-file"),
    pytest.param(None, "missing_image", id="no-reference"),
    pytest.param(b"", "corrupt_image", id="empty-bytes"),
    pytest.param(b"this is not an image at all", "corrupt_image", id="garbage"),
    pytest.param(JPEG[:10], "truncated_image", id="jpeg-cut-after-signature"),
    pytest.param(JPEG[: len(JPEG) // 2], "truncated_image", id="jpeg-cut-in-half"),
    pytest.param(PNG[: len(PNG) // 2], "truncated_image", id="png-cut-in-half"),
    pytest.param(12345, "corrupt_image", id="not-a-reference"),
])
def test_bad_images_raise_with_reason(ref, reason):
    with pytest.raises(ImageError) as info:
        load_image(ref, MIN_PIXELS, MAX_PIXELS)
    assert info.value.reason == reason


def test_iter_loaded_skips_and_counts_each_reason(tmp_path):
    good = GeoRecord("good", 1.0, 2.0, JPEG)
    records = [good, GeoRecord("gone", 1.0, 2.0, str(tmp_path / "gone.jpg")),
               GeoRecord("junk", 1.0, 2.0, b"junk"),
               GeoRecord("cut", 1.0, 2.0, JPEG[: len(JPEG) // 2])]
    stats = SkipStats()
    loaded = list(iter_loaded(records, MIN_PIXELS, MAX_PIXELS, stats))
    assert [r.id for r in loaded] == ["good"]
    assert isinstance(loaded[0].image, Image.Image) and loaded[0].lat == good.lat
    assert stats.as_dict()["by_reason"] == {"corrupt_image": 1, "missing_image": 1,
                                            "truncated_image": 1}
    with pytest.raises(DataError, match="record gone: missing_image"):
        list(iter_loaded(records, MIN_PIXELS, MAX_PIXELS, SkipStats(strict=True)))


def _gps_jpeg(lat_ref, lat_dms, lon_ref, lon_dms) -> bytes:
    exif = Image.Exif()
    gps = exif.get_ifd(0x8825)
    gps.update({1: lat_ref, 2: tuple(IFDRational(x) for x in lat_dms),
                3: lon_ref, 4: tuple(IFDRational(x) for x in lon_dms)})
    return _encode(_noise(32, 32), exif=exif)


@pytest.mark.parametrize("lat_ref, lat_dms, lon_ref, lon_dms, expected", [
    pytest.param("N", (48, 51, 23.76), "E", (2, 21, 7.92), (48.8566, 2.3522),
                 id="paris-north-east"),
    pytest.param("S", (33, 52, 7.68), "E", (151, 12, 33.48), (-33.8688, 151.2093),
                 id="sydney-south-keeps-lat-first"),
    pytest.param("N", (40, 42, 46.08), "W", (74, 0, 21.6), (40.7128, -74.0060),
                 id="new-york-west-negative"),
])
def test_exif_gps_reads_lat_first_with_hemisphere_signs(lat_ref, lat_dms, lon_ref, lon_dms,
                                                         expected):
    lat, lon = exif_gps(_gps_jpeg(lat_ref, lat_dms, lon_ref, lon_dms))
    assert lat == pytest.approx(expected[0], abs=1e-4)
    assert lon == pytest.approx(expected[1], abs=1e-4)


@pytest.mark.parametrize("ref", [
    pytest.param(JPEG, id="no-exif"),
    pytest.param(_gps_jpeg("N", (95, 0, 0), "E", (10, 0, 0)), id="latitude-out-of-range"),
    pytest.param(b"not an image", id="not-an-image"),
    pytest.param("/no/such/file.jpg", id="missing-file"),
])
def test_exif_gps_none_when_absent_or_invalid(ref):
    assert exif_gps(ref) is None
