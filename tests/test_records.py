"""GeoRecord (rows, serialisation, immutability) and SkipStats (counting, strict mode, saving)."""

from __future__ import annotations

import dataclasses
import json
import logging
import pickle

import pytest
from PIL import Image

from geo_r_lite.records import DataError, FrozenMeta, GeoRecord, SkipStats


def _record(image=None, **meta):
    return GeoRecord("r1", 48.8566, 2.3522, image, "Europe", "France", "FR", "Ile-de-France",
                     "Paris", meta)


def test_to_row_has_plain_columns_and_no_image():
    row = _record(image=b"jpegbytes", source="x").to_row()
    assert row == {"id": "r1", "lat": 48.8566, "lon": 2.3522, "continent": "Europe",
                   "country": "France", "country_code": "FR", "region": "Ile-de-France",
                   "city": "Paris"}


@pytest.mark.parametrize("image", [
    pytest.param(None, id="no-image"),
    pytest.param("/data/images/a.jpg", id="path"),
    pytest.param(b"\xff\xd8\x00binary\x00", id="raw-bytes"),
])
def test_to_dict_round_trips_through_json(image):
    record = _record(image, source="file.csv line 2", place="Paris")
    restored = GeoRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert restored == record
    assert type(restored.image) is type(image)


def test_pil_image_round_trips_pixel_exact():
    image = Image.new("RGB", (7, 5), (10, 200, 30))
    image.putpixel((3, 2), (1, 2, 3))
    restored = GeoRecord.from_dict(json.loads(json.dumps(_record(image).to_dict()))).image
    assert (restored.mode, restored.size, restored.tobytes()) == ("RGB", (7, 5), image.tobytes())


def test_unserialisable_image_is_a_clear_error():
    with pytest.raises(DataError, match="cannot serialise"):
        _record(image=object()).to_dict()


def test_record_is_frozen_hashable_and_picklable():
    record = _record(image=b"x", source="s")
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.lat = 0.0
    with pytest.raises(TypeError):
        record.meta["source"] = "changed"
    assert isinstance(record.meta, FrozenMeta)
    assert hash(record) == hash(_record(image=b"other", source="t"))  # image/meta not hashed
    assert pickle.loads(pickle.dumps(record)) == record


def test_meta_takes_part_in_equality():
    assert _record(source="a") != _record(source="b")


def test_skip_stats_counts_by_reason_and_keeps_few_examples():
    stats = SkipStats()
    for i in range(8):
        stats.add("missing_image", f"m.csv line {i + 2}")
    stats.add("bad_coordinates", "m.csv line 20", "lat='abc'")
    assert stats.total == 9
    assert stats["missing_image"] == 8 and stats["null_island"] == 0
    summary = stats.as_dict()
    assert summary["by_reason"] == {"bad_coordinates": 1, "missing_image": 8}
    assert len(summary["examples"]["missing_image"]) == 5
    assert summary["examples"]["bad_coordinates"] == ["m.csv line 20: bad_coordinates (lat='abc')"]


def test_skip_stats_strict_raises_naming_the_row():
    stats = SkipStats(strict=True)
    with pytest.raises(DataError, match="m.csv line 7: null_island"):
        stats.add("null_island", "m.csv line 7")
    assert stats.total == 0


def test_skip_stats_save_and_log(tmp_path, caplog):
    stats = SkipStats()
    stats.add("corrupt_image", "record a")
    saved = json.loads(stats.save(tmp_path / "run" / "skips.json").read_text())
    assert saved == stats.as_dict()
    with caplog.at_level(logging.INFO):
        stats.log_summary(logging.getLogger("test"), seen=10)
    assert "skipped 1 rows of 10" in caplog.text and "corrupt_image" in caplog.text
