"""Data sources on generated images: manifests (IM2GPS3K and YFCC4K layouts), column detection,
every skip reason, strict mode, max_samples, local HF datasets, WebDataset shards, synthetic set."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geo_r_lite.columns import ColumnError, resolve_columns
from geo_r_lite.config import DataConfig
from geo_r_lite.images import iter_loaded
from geo_r_lite.records import DataError, SkipStats
from geo_r_lite.sources import iter_records
from geo_r_lite.synthetic import PLACES
from geo_r_lite.webdataset import expand_braces, remote_samples, sample_to_row, shard_list

DATA = Path(__file__).parent / "data"
# Points whose lat/lon swap is detectable: swapped, Sydney's longitude is an invalid latitude and
# Paris lands in the Gulf of Guinea.
PARIS, SYDNEY, NEW_YORK = (48.8566, 2.3522), (-33.8688, 151.2093), (40.7128, -74.0060)


def _jpeg(color=(120, 60, 30), size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


def _write_csv(path: Path, header: list[str], rows: list[list], delimiter: str = ",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _manifest(path, **overrides) -> list:
    return list(iter_records(DataConfig(source="manifest", path=str(path), **overrides)))


# --------------------------------------------------------------------------- manifests


def test_im2gps3k_metadata_reads_as_published(tmp_path):
    rows = list(csv.DictReader(open(DATA / "im2gps3k_sample.csv", encoding="utf-8")))
    images = tmp_path / "im2gps3ktest"
    images.mkdir()
    for row in rows:
        (images / row["IMG_ID"]).write_bytes(_jpeg())
    records = _manifest(DATA / "im2gps3k_sample.csv", image_dir=str(images))
    assert [r.id for r in records] == [row["IMG_ID"] for row in rows]
    assert [(r.lat, r.lon) for r in records] == [(float(row["LAT"]), float(row["LON"]))
                                                for row in rows]
    assert all(Path(r.image).parent == images for r in records)
    assert sum(r.country_code is not None for r in records) >= 35
    assert records[0].meta["source"] == "im2gps3k_sample.csv line 2"


# The YFCC100M metadata fields in their published order: longitude BEFORE latitude.
_YFCC100M = ["photoid", "uid", "unickname", "datetaken", "dateuploaded", "capturedevice", "title",
             "description", "usertags", "machinetags", "longitude", "latitude", "accuracy",
             "pageurl", "downloadurl", "licensename", "licenseurl", "serverid", "farmid", "secret",
             "secretoriginal", "ext", "marker"]
_YFCC4K = ["name"] + [{"longitude": "lon", "latitude": "lat"}.get(c, c) for c in _YFCC100M]


def _yfcc_row(header: list[str], photo_id: str, lat: float, lon: float) -> list:
    values = {"photoid": photo_id, "name": f"{photo_id}.jpg", "IMG_ID": f"{photo_id}.jpg",
              "uid": "12345678@N00", "title": "Eiffel, at night", "usertags": "paris,tower,night",
              "description": 'He said "wow", then left', "longitude": lon, "latitude": lat,
              "lon": lon, "lat": lat, "LON": lon, "LAT": lat, "accuracy": 16, "ext": "jpg",
              "marker": 0}
    return [values.get(column, "x") for column in header]


@pytest.mark.parametrize("header", [
    pytest.param(_YFCC4K, id="yfcc4k-name-lon-lat"),
    pytest.param(_YFCC100M, id="yfcc100m-longitude-latitude-files-by-photoid"),
    pytest.param(["IMG_ID", "LAT", "LON"], id="g3-yfcc4k-places365"),
])
def test_yfcc_layouts_do_not_swap_lat_lon(tmp_path, header):
    points = {"1001": PARIS, "1002": SYDNEY, "1003": NEW_YORK}
    for photo_id in points:
        (tmp_path / f"{photo_id}.jpg").write_bytes(_jpeg())
    path = _write_csv(tmp_path / "yfcc4k.csv", header,
                      [_yfcc_row(header, pid, *latlon) for pid, latlon in points.items()])
    stats = SkipStats()
    records = list(iter_records(DataConfig(source="manifest", path=str(path)), stats))
    assert stats.total == 0
    assert [(r.lat, r.lon) for r in records] == list(points.values())
    assert [r.country_code for r in records] == ["FR", "AU", "US"]
    assert all(Path(r.image).is_file() for r in records)


@pytest.mark.parametrize("columns, overrides, expected", [
    pytest.param(["IMG_ID", "AUTHOR", "LAT", "LON"], {},
                 {"id": "IMG_ID", "lat": "LAT", "lon": "LON", "image": "IMG_ID"},
                 id="im2gps3k-upper-case"),
    pytest.param(["image", "latitude", "longitude"], {},
                 {"id": None, "lat": "latitude", "lon": "longitude", "image": "image"},
                 id="hf-latitude-longitude"),
    pytest.param(["file_name", "Lng", "Latitude", "uuid"], {},
                 {"id": "uuid", "lat": "Latitude", "lon": "Lng", "image": "file_name"},
                 id="mixed-case-lng"),
    pytest.param([" gps_lat ", "gps_lon", "path"], {},
                 {"id": None, "lat": " gps_lat ", "lon": "gps_lon", "image": "path"},
                 id="padded-gps-prefixed"),
    pytest.param(["photo_id", "lat", "long"], {},
                 {"id": "photo_id", "lat": "lat", "lon": "long", "image": "photo_id"},
                 id="no-file-column-files-named-by-id"),
    pytest.param(["y", "x", "img", "lat", "lon"], {"lat": "y", "lon": "x", "image": "img"},
                 {"id": None, "lat": "y", "lon": "x", "image": "img"},
                 id="overrides-beat-auto-detection"),
    pytest.param(["Y", "X", "pic"], {"lat": "y", "lon": "x", "image": "PIC"},
                 {"id": None, "lat": "Y", "lon": "X", "image": "pic"},
                 id="overrides-case-insensitive"),
])
def test_column_detection(columns, overrides, expected):
    assert resolve_columns(columns, overrides) == expected


@pytest.mark.parametrize("columns, overrides, error, match", [
    pytest.param(["image", "lon"], {}, ColumnError, "no lat column", id="no-latitude"),
    pytest.param(["lat", "lon"], {}, ColumnError, "no image column", id="no-image-no-id"),
    pytest.param(["lat", "lon", "image"], {"latitude": "lat"}, DataError, "unknown key",
                 id="unknown-override-key"),
    pytest.param(["lat", "lon", "image"], {"lat": "LATX"}, ColumnError, "data.columns.lat",
                 id="override-names-absent-column"),
    pytest.param(["lat", "lon", "image"], {"lon": "lat"}, DataError, "both map",
                 id="lat-and-lon-same-column"),
])
def test_column_errors_name_the_problem(columns, overrides, error, match):
    with pytest.raises(error, match=match):
        resolve_columns(columns, overrides)


def _formats(tmp_path: Path) -> dict[str, Path]:
    header, rows = ["id", "lat", "lon", "file"], [["a", *PARIS, "a.jpg"], ["b", *SYDNEY, "b.jpg"]]
    for name in ("a", "b"):
        (tmp_path / f"{name}.jpg").write_bytes(_jpeg())
    paths = {"csv": _write_csv(tmp_path / "m.csv", header, rows),
             "tsv": _write_csv(tmp_path / "m.tsv", header, rows, "\t"),
             "txt-semicolon": _write_csv(tmp_path / "m.txt", header, rows, ";")}
    jsonl = "".join(json.dumps(dict(zip(header, row))) + "\n" for row in rows)
    paths["jsonl"] = tmp_path / "m.jsonl"
    paths["jsonl"].write_text(jsonl)
    paths["jsonl.gz"] = tmp_path / "m.jsonl.gz"
    paths["jsonl.gz"].write_bytes(gzip.compress(jsonl.encode()))
    paths["csv.gz"] = tmp_path / "m.csv.gz"
    paths["csv.gz"].write_bytes(gzip.compress(paths["csv"].read_bytes()))
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths["parquet"] = tmp_path / "m.parquet"
    pq.write_table(pa.table({c: [row[i] for row in rows] for i, c in enumerate(header)}),
                   paths["parquet"])
    return paths


@pytest.mark.parametrize("fmt", ["csv", "tsv", "txt-semicolon", "jsonl", "jsonl.gz", "csv.gz",
                                 "parquet"])
def test_every_manifest_format_gives_the_same_records(tmp_path, fmt):
    records = _manifest(_formats(tmp_path)[fmt])
    assert [(r.id, r.lat, r.lon, Path(r.image).name, r.country_code) for r in records] == [
        ("a", *PARIS, "a.jpg", "FR"), ("b", *SYDNEY, "b.jpg", "AU")]


def test_image_paths_relative_absolute_and_suffixless(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "rel.jpg").write_bytes(_jpeg())
    (tmp_path / "imgs" / "12345.jpg").write_bytes(_jpeg())
    absolute = tmp_path / "elsewhere.png"
    absolute.write_bytes(_jpeg())
    path = _write_csv(tmp_path / "m.csv", ["lat", "lon", "image"],
                      [[*PARIS, "rel.jpg"], [*PARIS, str(absolute)], [*PARIS, "12345"]])
    records = _manifest(path, image_dir=str(tmp_path / "imgs"))
    assert [r.image for r in records] == [str(tmp_path / "imgs" / "rel.jpg"), str(absolute),
                                          str(tmp_path / "imgs" / "12345.jpg")]
    assert [r.id for r in records] == ["0", "1", "2"]  # no id column: the row number


def _every_reason_manifest(tmp_path: Path) -> Path:
    good = _jpeg()
    files = {"good.jpg": good, "corrupt.jpg": b"not a jpeg", "cut.jpg": good[: len(good) // 2]}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    rows = [
        ["ok", *PARIS, "good.jpg"],
        ["gone", *PARIS, "missing.jpg"],        # missing_image
        ["text", "abc", "2.35", "good.jpg"],     # bad_coordinates: not a number
        ["nan", "nan", "2.35", "good.jpg"],      # bad_coordinates: NaN
        ["lat91", "91", "2.35", "good.jpg"],     # bad_coordinates: out of range
        ["lon181", "48.8", "181", "good.jpg"],   # bad_coordinates: out of range
        ["empty", "", "2.35", "good.jpg"],       # bad_coordinates: empty cell
        ["zero", "0", "0.0", "good.jpg"],        # null_island
        ["short", "48.8"],                       # bad_row: too few fields
        ["corrupt", *SYDNEY, "corrupt.jpg"],     # corrupt_image (found when loading)
        ["cut", *NEW_YORK, "cut.jpg"],           # truncated_image (found when loading)
    ]
    return _write_csv(tmp_path / "m.csv", ["id", "lat", "lon", "image"], rows)


def test_every_skip_reason_is_counted(tmp_path):
    stats = SkipStats()
    cfg = DataConfig(source="manifest", path=str(_every_reason_manifest(tmp_path)))
    loaded = list(iter_loaded(iter_records(cfg, stats), 1, 10**6, stats))
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text('{"lat": 1.5, "lon": 2.5, "image": "good.jpg"}\n{broken json\n'
                     '{"lon": 2.5, "image": "good.jpg"}\n[1, 2]\n')
    loaded += list(iter_loaded(iter_records(DataConfig(source="manifest", path=str(jsonl)),
                                            stats), 1, 10**6, stats))
    assert [r.id for r in loaded] == ["ok", "0"]
    assert stats.as_dict()["by_reason"] == {
        "bad_coordinates": 5, "bad_row": 3, "corrupt_image": 1, "missing_column": 1,
        "missing_image": 1, "null_island": 1, "truncated_image": 1}


def test_null_island_kept_when_allowed(tmp_path):
    (tmp_path / "a.jpg").write_bytes(_jpeg())
    path = _write_csv(tmp_path / "m.csv", ["lat", "lon", "image"], [[0, 0, "a.jpg"]])
    assert [(r.lat, r.lon) for r in _manifest(path, allow_null_island=True)] == [(0.0, 0.0)]


def test_strict_mode_raises_naming_the_row(tmp_path):
    path = _every_reason_manifest(tmp_path)
    with pytest.raises(DataError, match=r"m\.csv line 3, id=gone: missing_image"):
        _manifest(path, strict=True)


def test_all_rows_skipped_is_an_error_with_the_reason(tmp_path):
    path = _write_csv(tmp_path / "m.csv", ["lat", "lon", "image"], [[*PARIS, "nowhere.jpg"]])
    with pytest.raises(DataError, match="no usable record.*missing_image"):
        _manifest(path)


@pytest.mark.parametrize("cfg, match", [
    pytest.param(DataConfig(source="manifest", path="/no/such.csv"), "not found", id="no-file"),
    pytest.param(DataConfig(source="manifest", path=None), "needs a file", id="no-path"),
    pytest.param(DataConfig(source="nope"), "unknown source", id="unknown-source"),
    pytest.param(DataConfig(source="webdataset", path="/no/shards/*.tar"), "no shards match",
                 id="no-shards"),
    pytest.param(DataConfig(source="synthetic", max_samples=-1), "max_samples", id="bad-limit"),
])
def test_unusable_configs_fail_clearly(cfg, match):
    with pytest.raises(DataError, match=match):
        list(iter_records(cfg))


def test_manifest_without_coordinate_columns_fails_naming_columns(tmp_path):
    path = _write_csv(tmp_path / "m.csv", ["IMG_ID", "AUTHOR"], [["a.jpg", "me"]])
    with pytest.raises(DataError, match=r"no lat/lon column.*'IMG_ID', 'AUTHOR'"):
        _manifest(path)


def test_max_samples_stops_reading_early():
    cfg = DataConfig(source="synthetic", synthetic_size=10_000, max_samples=5)
    assert len(list(iter_records(cfg))) == 5


# --------------------------------------------------------------------------- hugging face


def _hf_dataset():
    import datasets

    features = datasets.Features({"image": datasets.Image(), "latitude": datasets.Value("string"),
                                  "longitude": datasets.Value("string"),
                                  "country_iso_alpha2": datasets.Value("string")})
    images = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    # Coordinates as strings, like stochastic/random_streetview_images_pano_v0.0.2.
    return datasets.Dataset.from_dict(
        {"image": images, "latitude": ["48.8566", " -33.8688 ", "north"],
         "longitude": ["2.3522", "151.2093", "2.0"], "country_iso_alpha2": ["FR", "AU", "FR"]},
        features=features)


@pytest.mark.parametrize("layout", ["parquet-folder", "save-to-disk"])
def test_hf_local_dataset_streams_with_string_coordinates(tmp_path, layout):
    dataset = _hf_dataset()
    if layout == "parquet-folder":
        (tmp_path / "data").mkdir()
        dataset.to_parquet(str(tmp_path / "data" / "train-00000-of-00001.parquet"))
    else:
        dataset.save_to_disk(str(tmp_path))
    stats = SkipStats()
    records = list(iter_records(DataConfig(source="hf", path=str(tmp_path)), stats))
    assert [(r.lat, r.lon, r.country_code) for r in records] == [(*PARIS, "FR"), (*SYDNEY, "AU")]
    assert all(isinstance(r.image, bytes) for r in records)  # kept encoded, not decoded
    assert stats.as_dict()["by_reason"] == {"bad_coordinates": 1}
    loaded = list(iter_loaded(records, 1, 10**6))
    assert loaded[0].image.getpixel((5, 5))[0] > 200


def test_hf_missing_dataset_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="could not open hf dataset"):
        list(iter_records(DataConfig(source="hf", path=str(tmp_path / "absent"))))


# --------------------------------------------------------------------------- webdataset


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _shard(path: Path, samples: dict[str, dict[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for key, members in samples.items():
            for ext, data in members.items():
                _add(tar, f"{key}.{ext}", data)
    return path


def _osv_json(lat, lon, **extra) -> bytes:
    return json.dumps({"latitude": lat, "longitude": lon, "country": "FR", **extra}).encode()


def test_webdataset_local_shards_with_every_problem_counted(tmp_path):
    _shard(tmp_path / "train-0000.tar", {
        "a/0001": {"jpg": _jpeg(), "json": _osv_json(*PARIS)},
        "a/0002": {"png": _jpeg(), "json": _osv_json(*SYDNEY, id="osv-2")},
        "a/0003": {"jpg": _jpeg()},                                   # missing_column: no json
        "a/0004": {"jpg": _jpeg(), "json": b"{not json"},             # bad_row
        "a/0005": {"json": _osv_json(*PARIS)},                        # missing_image
        "a/0006": {"jpg": _jpeg(), "json": _osv_json("x", 2.0)},      # bad_coordinates
        "a/0007": {"jpg": _jpeg(), "json": b'{"country": "FR"}'},    # missing_column
    })
    _shard(tmp_path / "train-0001.tar", {"b/0001": {"jpg": _jpeg(), "json": _osv_json(*NEW_YORK)}})
    # A shard cut in the middle of its last member: the samples before the damage still count.
    damaged = _shard(tmp_path / "train-0002.tar", {f"c/{i}": {"json": _osv_json(*PARIS),
                                                              "jpg": _jpeg()} for i in range(3)})
    with tarfile.open(damaged) as tar:
        last = tar.getmembers()[-1]
    damaged.write_bytes(damaged.read_bytes()[: last.offset_data + last.size // 2])
    stats = SkipStats()
    records = list(iter_records(DataConfig(source="webdataset",
                                           path=str(tmp_path / "train-{0000..0002}.tar")), stats))
    # Without an id in the json, the id is the shard and the sample key.
    assert [(r.id, r.country_code) for r in records] == [
        ("train-0000.tar:a/0001", "FR"), ("osv-2", "AU"), ("train-0001.tar:b/0001", "US"),
        ("train-0002.tar:c/0", "FR"), ("train-0002.tar:c/1", "FR")]
    assert all(isinstance(r.image, bytes) for r in records)
    by_reason = stats.as_dict()["by_reason"]
    assert by_reason == {"bad_coordinates": 1, "bad_row": 1, "corrupt_shard": 1,
                         "missing_column": 2, "missing_image": 1}


def test_webdataset_keys_restarting_in_every_shard_are_not_duplicates(tmp_path):
    for shard, place in (("0000", PARIS), ("0001", NEW_YORK)):
        _shard(tmp_path / f"{shard}.tar", {"000000": {"jpg": _jpeg(), "json": _osv_json(*place)}})
    stats = SkipStats()
    records = list(iter_records(DataConfig(source="webdataset", path=str(tmp_path)), stats))
    assert [r.id for r in records] == ["0000.tar:000000", "0001.tar:000000"] and stats.total == 0


def _shards_of_ten(folder, count=6):
    places = [PARIS, NEW_YORK, SYDNEY]
    for shard in range(count):
        _shard(folder / f"{shard:04d}.tar", {f"{i:04d}": {"jpg": _jpeg(), "json": _osv_json(*places[shard % 3],
                                                                                          id=f"s{shard}-{i}")}
                                             for i in range(10)})
    return str(folder / ("{0000..%04d}.tar" % (count - 1)))


def test_webdataset_shards_shuffled_by_seed_and_capped(tmp_path):
    path = _shards_of_ten(tmp_path)

    def read(seed, **kw):
        stats = SkipStats()
        cfg = DataConfig(source="webdataset", path=path, shuffle_shards=True, max_per_shard=3, seed=seed, **kw)
        ids = [r.id for r in iter_records(cfg, stats)]
        return ids, stats

    ids, stats = read(0)
    assert len(ids) == 18 and len(set(ids)) == 18, "3 rows from each of the 6 shards"
    order = [i.split("-")[0] for i in ids[::3]]
    assert sorted(order) == [f"s{i}" for i in range(6)] and order != [f"s{i}" for i in range(6)]
    assert read(0)[0] == ids, "the same seed reads the same order"
    assert read(1)[0] != ids
    assert list(stats.as_dict()["shards"].values()) == [3] * 6
    assert [Path(p).name for p in stats.as_dict()["shards"]] == [f"{o[1:].zfill(4)}.tar" for o in order]
    # max_samples now spans the set: 6 rows come from 2 shards at 3 a shard, not all from the first.
    few = [r.id for r in iter_records(DataConfig(source="webdataset", path=path, shuffle_shards=True,
                                                 max_per_shard=3, max_samples=6))]
    assert len({i.split("-")[0] for i in few}) == 2


def test_local_webdataset_shards_keep_their_order_unless_asked(tmp_path):
    ids = [r.id for r in iter_records(DataConfig(source="webdataset", path=_shards_of_ten(tmp_path, 3)))]
    assert ids == [f"s{s}-{i}" for s in range(3) for i in range(10)]


def test_webdataset_columns_override(tmp_path):
    _shard(tmp_path / "s.tar", {"k1": {"webp": _jpeg(), "json": json.dumps(
        {"y": PARIS[0], "x": PARIS[1], "photo": "p1"}).encode()}})
    cfg = DataConfig(source="webdataset", path=str(tmp_path),
                     columns={"lat": "y", "lon": "x", "id": "photo", "image": "webp"})
    assert [(r.id, r.lat, r.lon) for r in iter_records(cfg)] == [("p1", *PARIS)]


@pytest.mark.parametrize("pattern, expected", [
    pytest.param("s-{00..02}.tar", ["s-00.tar", "s-01.tar", "s-02.tar"], id="zero-padded-range"),
    pytest.param("{a,b}/x{8..9}.tar", ["a/x8.tar", "a/x9.tar", "b/x8.tar", "b/x9.tar"],
                 id="list-and-range"),
    pytest.param("plain.tar", ["plain.tar"], id="no-braces"),
])
def test_brace_expansion(pattern, expected):
    assert expand_braces(pattern) == expected


def test_shard_list_globs_folders_and_urls(tmp_path):
    for name in ("b.tar", "a.tar", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert shard_list(str(tmp_path)) == [str(tmp_path / "a.tar"), str(tmp_path / "b.tar")]
    assert shard_list(f"{tmp_path}/*.tar") == [str(tmp_path / "a.tar"), str(tmp_path / "b.tar")]
    url = "hf://datasets/osv5m/osv5m-wds/train/{0000..0001}.tar"
    assert shard_list(url) == ["hf://datasets/osv5m/osv5m-wds/train/0000.tar",
                               "hf://datasets/osv5m/osv5m-wds/train/0001.tar"]


def test_remote_path_reads_through_datasets_webdataset_builder(tmp_path):
    # The URL path delegates to datasets; local files exercise the same builder offline.
    shard = _shard(tmp_path / "s.tar", {"k1": {"jpg": _jpeg(), "json": _osv_json(*SYDNEY)}})
    stats = SkipStats()
    rows = [sample_to_row(s, DataConfig(), stats, {}) for s in remote_samples([str(shard)],
                                                                             "train")]
    assert [(r.id, r.lat, r.lon) for r in rows] == [("s.tar:k1", *SYDNEY)]  # the same id as read locally
    assert isinstance(rows[0].image, dict) and rows[0].image["bytes"][:2] == b"\xff\xd8"


# --------------------------------------------------------------------------- synthetic


def _mean_rgb(data: bytes) -> tuple[float, ...]:
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)
    return tuple(pixels.reshape(-1, 3).mean(axis=0))


def test_synthetic_is_deterministic_and_splits_differ():
    def run(**kw):
        return [(r.id, r.lat, r.lon, r.image) for r in iter_records(DataConfig(**kw))]

    assert run(seed=3, synthetic_size=20) == run(seed=3, synthetic_size=20)
    assert run(seed=3, synthetic_size=20) != run(seed=4, synthetic_size=20)
    train = {r[3] for r in run(seed=3, synthetic_size=20)}
    test = {r[3] for r in run(seed=3, synthetic_size=20, split="test")}
    assert not train & test


def test_synthetic_images_identify_their_place():
    records = list(iter_records(DataConfig(source="synthetic", synthetic_size=60, seed=1)))
    by_name = {p.name: p for p in PLACES}
    assert len({r.meta["place"] for r in records}) == len(PLACES)
    for record in records:
        place = by_name[record.meta["place"]]
        # The mean colour is nearer its own place's colour than any other place's.
        mean = _mean_rgb(record.image)
        nearest = min(PLACES, key=lambda p: math.dist(mean, p.rgb))
        assert nearest == place
        assert abs(record.lat - place.lat) <= 0.05 and abs(record.lon - place.lon) <= 0.05
        assert record.city is not None and record.country_code is not None


def test_light_sources_never_import_datasets_or_torch(tmp_path):
    _formats(tmp_path)
    _shard(tmp_path / "s.tar", {"k": {"jpg": _jpeg(), "json": _osv_json(*PARIS)}})
    code = (
        "import sys\n"
        "from geo_r_lite.config import DataConfig\n"
        "from geo_r_lite.sources import iter_records\n"
        f"list(iter_records(DataConfig(source='manifest', path={str(tmp_path / 'm.csv')!r})))\n"
        f"list(iter_records(DataConfig(source='webdataset', path={str(tmp_path / 's.tar')!r})))\n"
        "list(iter_records(DataConfig(source='synthetic', synthetic_size=4)))\n"
        "print(sorted(m for m in ('datasets', 'torch', 'transformers', 'trl') "
        "if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
