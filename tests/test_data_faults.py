"""Adversarial records through every source: loaded correctly or skipped and counted, never a crash.

A catalogue of damaged and unusual inputs (coordinates that are NaN, infinite, out of range, text
or empty; empty, zero-byte, truncated and non-image files; a decompression bomb; CMYK, 16-bit,
palette-with-alpha, animated, EXIF-rotated images; wrong extensions; duplicate ids; a tar member
that is not a file) is mixed at random by hypothesis, written in the layout of each source
(a manifest CSV with an image folder, local WebDataset shards, an hf-style dataset folder), and read
the way training reads it: ``iter_records`` then ``iter_loaded``. For every mix: each valid record
arrives exactly once with the right size and mode, each bad one is counted under the expected
reason, and loaded + skipped equals the input.
"""

from __future__ import annotations

import csv
import io
import json
import struct
import tarfile
import zlib
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from geo_r_lite.config import DataConfig
from geo_r_lite.images import iter_loaded
from geo_r_lite.records import SkipStats
from geo_r_lite.sources import iter_records

BUDGET = (16 * 28 * 28, 64 * 28 * 28)


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A valid PNG header claiming 30000 x 30000 pixels (PIL refuses it before decoding)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@lru_cache(maxsize=None)
def images() -> dict[str, tuple[bytes, str, tuple | None]]:
    """name -> (file bytes, file extension, expected outcome): ("ok", (w, h) before resizing) or
    ("skip", reason)."""
    photo = Image.new("RGB", (120, 80), (30, 120, 200))
    rotated = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 120 x 80, shown 80 x 120
    photo.save(rotated, format="JPEG", exif=exif)
    palette = Image.new("P", (64, 64))
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.info["transparency"] = 0
    frames = [Image.new("P", (40, 30), i) for i in (1, 2)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    jpeg = _encode(photo, "JPEG")
    png = _encode(photo, "PNG")
    return {
        "jpeg": (jpeg, "jpg", ("ok", (120, 80))),
        "cmyk": (_encode(Image.new("CMYK", (90, 60), (0, 50, 100, 0)), "JPEG"), "jpg", ("ok", (90, 60))),
        "png16": (_encode(Image.new("I;16", (70, 50), 3000), "PNG"), "png", ("ok", (70, 50))),
        "palette_alpha": (_encode(palette, "PNG"), "png", ("ok", (64, 64))),
        "animated_gif": (gif.getvalue(), "gif", ("ok", (40, 30))),
        "exif_rotated": (rotated.getvalue(), "jpg", ("ok", (80, 120))),
        "png_named_jpg": (png, "jpg", ("ok", (120, 80))),
        "truncated_jpeg": (jpeg[: len(jpeg) // 2], "jpg", ("skip", ("truncated_image", "corrupt_image"))),
        "truncated_png": (png[: len(png) // 2], "png", ("skip", ("truncated_image", "corrupt_image"))),
        "bomb": (_bomb_png(), "png", ("skip", ("corrupt_image",))),
        "text_as_jpg": (b"this is not an image\n", "jpg", ("skip", ("corrupt_image",))),
        "zero_bytes": (b"", "jpg", ("skip", ("missing_image", "corrupt_image"))),
    }


GOOD_COORDS = [(48.8566, 2.3522), ("35.68", "139.69"), (-33.87, 151.21), ("-22.9", "-43.2")]
BAD_COORDS = [(float("nan"), 2.0), (float("inf"), 2.0), (95.0, 2.0), (10.0, 200.0), ("abc", "2.0"), ("", "3.0"),
              (None, 4.0), ("1e400", "5.0")]

case = st.one_of(
    st.tuples(st.sampled_from(sorted(images())), st.sampled_from(GOOD_COORDS), st.just(False)),
    st.tuples(st.just("jpeg"), st.sampled_from(BAD_COORDS), st.just(False)),
    st.tuples(st.just("jpeg"), st.sampled_from(GOOD_COORDS), st.just(True)),  # repeats the previous id
)


def _expected(cases, source: str):
    """Per row: (id, image, coords, ("ok", size) or ("skip", reasons)), ids as the writers assign them.

    A repeated id is a duplicate only when the row that first had it passed the source's checks
    (coordinates, an image present); otherwise the later row is the first valid one and is kept.
    """
    rows, last_id, kept_ids = [], None, set()
    for index, (image, coords, duplicate) in enumerate(cases):
        row_id = last_id if duplicate and last_id is not None else f"r{index:03d}"
        last_id = row_id
        empty = images()[image][0] == b"" and source != "manifest"  # a zero-byte file still exists
        if coords in BAD_COORDS:
            rows.append((row_id, image, coords, ("skip", ("bad_coordinates",))))
        elif empty:
            rows.append((row_id, image, coords, ("skip", ("missing_image",))))
        elif row_id in kept_ids:
            rows.append((row_id, image, coords, ("skip", ("duplicate_id",))))
        else:
            kept_ids.add(row_id)
            rows.append((row_id, image, coords, images()[image][2]))
    return rows


def _cell(value) -> str:
    return "" if value is None else str(value)


def _write_manifest(folder: Path, rows) -> DataConfig:
    (folder / "img").mkdir(parents=True)
    with (folder / "meta.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "lat", "lon", "image"])
        for index, (row_id, image, (lat, lon), _) in enumerate(rows):
            data, ext, _ = images()[image]
            name = f"{index:03d}.{ext}"
            (folder / "img" / name).write_bytes(data)
            writer.writerow([row_id, _cell(lat), _cell(lon), name])
    return DataConfig(source="manifest", path=str(folder / "meta.csv"), image_dir=str(folder / "img"))


def _write_shards(folder: Path, rows) -> DataConfig:
    folder.mkdir(parents=True)
    per_shard = 7
    for shard_index in range(0, max(1, len(rows)), per_shard):
        with tarfile.open(folder / f"{shard_index // per_shard:04d}.tar", "w") as tar:
            for index, (row_id, image, (lat, lon), _) in enumerate(rows[shard_index:shard_index + per_shard],
                                                                 start=shard_index):
                data, ext, _ = images()[image]
                ext = "png" if ext == "gif" else ext  # a wrong extension: GIF bytes in a png member
                info = json.dumps({"id": row_id, "latitude": lat, "longitude": lon}).encode()
                for name, payload in ((f"{index:04d}.json", info), (f"{index:04d}.{ext}", data)):
                    member = tarfile.TarInfo(name)
                    member.size = len(payload)
                    tar.addfile(member, io.BytesIO(payload))
            # A member that is not a file (a link) between samples: ignored, not a record.
            link = tarfile.TarInfo("zzzz.link")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(link)
    return DataConfig(source="webdataset", path=str(folder))


def _write_hf(folder: Path, rows) -> DataConfig:
    import datasets

    table = {"id": [], "lat": [], "lon": [], "image": []}
    for row_id, image, (lat, lon), _ in rows:
        table["id"].append(row_id)
        table["lat"].append(None if lat is None else str(lat))
        table["lon"].append(None if lon is None else str(lon))
        table["image"].append({"bytes": images()[image][0], "path": None})
    features = datasets.Features({"id": datasets.Value("string"), "lat": datasets.Value("string"),
                                  "lon": datasets.Value("string"), "image": datasets.Image(decode=False)})
    datasets.Dataset.from_dict(table, features=features).save_to_disk(str(folder))
    return DataConfig(source="hf", path=str(folder))


WRITERS = {"manifest": _write_manifest, "webdataset": _write_shards, "hf": _write_hf}


# Every catalogue entry at least once, whatever hypothesis draws.
EVERYTHING = ([(name, GOOD_COORDS[i % len(GOOD_COORDS)], False) for i, name in enumerate(sorted(images()))]
              + [("jpeg", coords, False) for coords in BAD_COORDS] + [("cmyk", GOOD_COORDS[0], True)])


@pytest.mark.parametrize("source", sorted(WRITERS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(cases=EVERYTHING)
@given(cases=st.lists(case, min_size=1, max_size=16))
def test_every_record_is_loaded_or_counted(source, cases, tmp_path_factory):
    from geo_r_lite.records import DataError

    rows = _expected(cases, source)
    cfg = WRITERS[source](tmp_path_factory.mktemp(source) / "data", rows)
    stats = SkipStats()
    try:
        loaded = list(iter_loaded(iter_records(cfg, stats), *BUDGET, stats=stats))
    except DataError as err:  # the one documented failure: not a single row passed the source checks
        assert "no usable record" in str(err)
        assert all(outcome[1] in (("bad_coordinates",), ("duplicate_id",), ("missing_image",))
                   for *_, outcome in rows), err
        return
    by_id = {record.id: record for record in loaded}
    assert len(by_id) == len(loaded), "a record arrived twice"
    for row_id, image, coords, outcome in rows:
        if outcome[0] != "ok":
            continue
        assert row_id in by_id, f"valid {image} record {row_id} lost ({stats.as_dict()})"
        record = by_id[row_id]
        assert record.image.mode == "RGB"
        assert record.image.width % 28 == 0 and record.image.height % 28 == 0
        w, h = outcome[1]
        assert (record.image.width > record.image.height) == (w > h) or w == h, (image, record.image.size)
        lat, lon = (float(c) for c in coords)
        assert abs(record.lat - lat) < 1e-9 and abs(record.lon - lon) < 1e-9
    counts = stats.as_dict()["by_reason"]
    for row_id, image, coords, outcome in rows:
        if outcome[0] == "skip":
            assert any(counts.get(reason, 0) for reason in outcome[1]), (image, coords, outcome, counts)
    assert len(loaded) == sum(outcome[0] == "ok" for *_, outcome in rows), counts
    assert len(loaded) + sum(counts.values()) == len(rows), (counts, len(rows))
