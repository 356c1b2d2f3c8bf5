"""Small generated benchmarks in the published IM2GPS3K and YFCC4K layouts, for the eval tests.

Coordinates are real IM2GPS3K points (tests/data/real_coords_sample.csv); images are small solid
JPEGs. Each benchmark has good rows plus the nasty ones the data layer must count, not crash on.
"""

from __future__ import annotations

import csv
from pathlib import Path

from PIL import Image
from PIL.TiffImagePlugin import IFDRational

DATA = Path(__file__).parent / "data" / "real_coords_sample.csv"

IM2GPS3K_HEADER = ["IMG_ID", "AUTHOR", "LAT", "LON", "S3_Label", "S16_Label", "S365_Label",
                   "Prob_indoor", "Prob_natural", "Prob_urban"]


def real_coords(n: int, start: int = 0) -> list[tuple[float, float]]:
    """``n`` real (lat, lon) pairs from the IM2GPS3K sample, degrees."""
    with open(DATA, encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["source"] == "im2gps3k"]
    return [(float(r["LAT"]), float(r["LON"])) for r in rows[start:start + n]]


def write_jpeg(path: Path, index: int, gps: tuple[float, float] | None = None) -> Path:
    """A 64x48 JPEG whose colour depends on ``index``; with EXIF GPS when ``gps`` is given."""
    image = Image.new("RGB", (64, 48), ((37 * index) % 256, (91 * index) % 256, 120))
    exif = Image.Exif()
    if gps is not None:
        def dms(value):
            value = abs(value)
            degrees, minutes = int(value), int(value % 1 * 60)
            seconds = round((value * 3600) % 60, 2)
            return tuple(IFDRational(x) for x in (degrees, minutes, seconds))

        lat, lon = gps
        exif.get_ifd(0x8825).update({1: "N" if lat >= 0 else "S", 2: dms(lat),
                                     3: "E" if lon >= 0 else "W", 4: dms(lon)})
    image.save(path, format="JPEG", exif=exif)
    return path


def make_im2gps3k(root: Path, n_good: int = 8) -> dict:
    """IM2GPS3K layout: metadata CSV + image folder named by IMG_ID.

    Adds one row whose image file is missing and one with a latitude out of range.
    """
    images = root / "im2gps3ktest"
    images.mkdir(parents=True)
    rows, good = [], {}
    for i, (lat, lon) in enumerate(real_coords(n_good)):
        name = f"{1000 + i}_{'abcdef'[i % 6]}{i}_{2000 + i}.jpg"
        write_jpeg(images / name, i)
        rows.append([name, f"author{i}", lat, lon, 1, 5, 200, 0.1, 0.5, 0.4])
        good[name] = (lat, lon)
    rows.append(["9998_missing_1.jpg", "ghost", 45.0, 7.0, 1, 5, 200, 0.1, 0.5, 0.4])
    write_jpeg(images / "9999_badlat_1.jpg", 99)
    rows.append(["9999_badlat_1.jpg", "typo", 95.5, 7.0, 1, 5, 200, 0.1, 0.5, 0.4])
    csv_path = root / "im2gps3k_places365.csv"
    with open(csv_path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(IM2GPS3K_HEADER)
        writer.writerows(rows)
    return {"path": str(csv_path), "image_dir": str(images), "good": good,
            "skipped": {"missing_image": 1, "bad_coordinates": 1}}


def make_yfcc4k(root: Path, n_good: int = 6) -> dict:
    """YFCC4K layout: ``name`` is the image file and the longitude column comes first.

    Adds a row whose file is not a JPEG (corrupt: found at decode time, not by the data layer)
    and one with an empty latitude.
    """
    images = root / "images"
    images.mkdir(parents=True)
    rows, good = [], {}
    for i, (lat, lon) in enumerate(real_coords(n_good, start=20)):
        name = f"{5_000_000 + i}.jpg"
        write_jpeg(images / name, i)
        rows.append([name, lon, lat, f"user{i}"])
        good[name] = (lat, lon)
    (images / "6000000.jpg").write_bytes(b"this is not a jpeg")
    rows.append(["6000000.jpg", 10.0, 50.0, "corrupt"])
    write_jpeg(images / "6000001.jpg", 7)
    rows.append(["6000001.jpg", 10.0, "", "nolat"])
    csv_path = root / "yfcc4k.csv"
    with open(csv_path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "lon", "lat", "owner"])
        writer.writerows(rows)
    return {"path": str(csv_path), "image_dir": str(images), "good": good,
            "skipped": {"bad_coordinates": 1}, "corrupt": "6000000.jpg"}
