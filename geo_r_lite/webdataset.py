"""WebDataset tar shards (image + json with coordinates): the usual packaging of MP-16 and OSV-5M.

``data.path`` names the shards: a glob (``shards/*.tar``), WebDataset brace ranges
(``train/{0000..0489}.tar``), a folder (every ``*.tar`` in it), or several of these separated by
spaces. Local shards are read here with ``tarfile`` as a stream: members sharing a key (the path up
to the first dot of the file name) form one sample. Remote shards (``hf://``, ``https://``, ...)
go through the ``datasets`` "webdataset" builder with ``streaming=True``.

Shards are read one after the other, in a random order seeded by ``data.seed`` when
``data.shuffle_shards`` is on (the default for remote shards), at most ``data.max_per_shard`` rows from
each, so a bounded ``data.max_samples`` spans the set rather than its first shards; the data summary
lists the shards read with their row counts.

Each sample needs an image member (``jpg``/``jpeg``/``png``/``webp``, or the extension named by
``data.columns.image``) and a ``json`` member whose coordinates are found like manifest columns
(``latitude``/``longitude``, ``lat``/``lon``, ... or ``data.columns``). Samples without them are
skipped and counted; a damaged shard is counted as ``corrupt_shard`` and reading goes on with the
next one.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import random
import re
import tarfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from geo_r_lite.config import DataConfig
from geo_r_lite.records import DataError, SkipStats
from geo_r_lite.columns import RawRow, columns_for_keys

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_BRACES = re.compile(r"\{([^{}]*)\}")


def expand_braces(pattern: str) -> list[str]:
    """WebDataset brace expansion: ``a{00..02}b`` -> a00b a01b a02b; ``{x,y}`` -> x y."""
    match = _BRACES.search(pattern)
    if match is None:
        return [pattern]
    body = match.group(1)
    numeric = re.fullmatch(r"(\d+)\.\.(\d+)", body)
    if numeric:
        first, last = numeric.groups()
        width = len(first)
        options = [str(i).zfill(width) for i in range(int(first), int(last) + 1)]
    else:
        options = body.split(",")
    head, tail = pattern[: match.start()], pattern[match.end():]
    return [expanded for option in options for expanded in expand_braces(head + option + tail)]


def shard_list(spec: str) -> list[str]:
    """Shard paths/URLs named by ``spec`` (space-separated globs, brace ranges, folders, URLs)."""
    shards: list[str] = []
    for part in spec.split():
        for name in expand_braces(part):
            if _URL.match(name):
                shards.append(name)
            elif os.path.isdir(name):
                shards.extend(sorted(glob.glob(os.path.join(name, "*.tar"))))
            elif glob.has_magic(name):
                shards.extend(sorted(glob.glob(os.path.expanduser(name))))
            else:
                shards.append(os.path.expanduser(name))
    return shards


def _split_member(name: str) -> tuple[str, str]:
    """WebDataset key and extension: ``dir/abc.seg.png`` -> (``dir/abc``, ``seg.png``)."""
    folder, base = os.path.split(name)
    stem, dot, ext = base.partition(".")
    return (os.path.join(folder, stem) if folder else stem), ext.lower() if dot else ""


def _tar_samples(path: str, stats: SkipStats) -> Iterator[dict[str, Any]]:
    """Samples of one local tar, streamed; a damaged shard is counted (raised when strict)."""
    key, sample = None, {}
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                member_key, ext = _split_member(member.name)
                if member_key != key:
                    if sample:
                        yield sample
                    key, sample = member_key, {"__key__": member_key, "__url__": path}
                handle = tar.extractfile(member)
                sample[ext] = handle.read() if handle is not None else b""
    except (tarfile.TarError, EOFError, OSError) as err:
        # What was read before the damage stays usable; the partial sample does not.
        stats.add("corrupt_shard", f"shard {path}", f"{type(err).__name__}: {err}")
        return
    if sample:
        yield sample


def remote_samples(shards: list[str], split: str) -> Iterator[dict[str, Any]]:
    """Samples through the datasets "webdataset" builder (streamed; images left undecoded)."""
    import datasets  # only remote shards need datasets

    try:
        dataset = datasets.load_dataset("webdataset", data_files={split: shards}, split=split,
                                        streaming=True)
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as err:
        raise DataError(f"could not open webdataset shards {shards[:3]}...: {err}") from err
    yield from undecoded_images(dataset)


def undecoded_images(dataset):
    """Cast every Image feature to ``decode=False`` so rows carry ``{"bytes", "path"}``."""
    import datasets

    for name, feature in (dataset.features or {}).items():
        if isinstance(feature, datasets.Image) and feature.decode:
            dataset = dataset.cast_column(name, datasets.Image(decode=False))
    return dataset


def _image_of(sample: Mapping[str, Any], wanted: str | None) -> Any:
    for ext in ((wanted,) if wanted else IMAGE_EXTENSIONS):
        if sample.get(ext) is not None:
            return sample[ext]
    return None


def sample_to_row(sample: Mapping[str, Any], cfg: DataConfig, stats: SkipStats,
                  cache: dict) -> RawRow | None:
    """A ``RawRow`` from one WebDataset sample (json bytes or an already decoded dict)."""
    key = str(sample.get("__key__"))
    desc = f"{Path(str(sample.get('__url__', ''))).name}:{key}"
    info = sample.get("json")
    if info is None:
        stats.add("missing_column", desc, "no json member with coordinates")
        return None
    if isinstance(info, (bytes, bytearray, str)):
        try:
            info = json.loads(info)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            stats.add("bad_row", desc, f"invalid json member: {err}")
            return None
    if not isinstance(info, dict):
        stats.add("bad_row", desc, "the json member must be an object")
        return None
    # The image lives in its own member (data.columns.image names its extension), so the json
    # only has to provide id/lat/lon.
    overrides = {k: v for k, v in cfg.columns.items() if k != "image"}
    columns = columns_for_keys(info.keys(), overrides, desc, stats, cache, need_image=False)
    if columns is None:
        return None
    image = _image_of(sample, cfg.columns.get("image"))
    row_id = info.get(columns["id"]) if columns["id"] else None
    # Without an id column the sample key names the row, qualified by its shard: keys often restart
    # in every shard (0000.tar and 0001.tar both hold "000000"), and ids must be unique.
    return RawRow(str(row_id if row_id not in (None, "") else desc), info.get(columns["lat"]),
                  info.get(columns["lon"]), image, desc, {"source": desc})


def webdataset_rows(cfg: DataConfig, stats: SkipStats) -> Iterator[RawRow]:
    """Rows of the shards named by ``cfg.path``, local shards first-hand, remote via datasets."""
    if not cfg.path:
        raise DataError("data.path: the webdataset source needs shard paths, a glob or URLs")
    shards = shard_list(cfg.path)
    if not shards:
        raise DataError(f"data.path: no shards match {cfg.path!r}")
    remote = [s for s in shards if _URL.match(s)]
    if remote and len(remote) != len(shards):
        raise DataError("data.path: mix of local shards and URLs; use one kind")
    missing = [s for s in shards if not remote and not os.path.isfile(s)]
    if missing:
        raise DataError(f"data.path: shard(s) not found: {missing[:5]}")
    shuffle = cfg.shuffle_shards if cfg.shuffle_shards is not None else bool(remote)
    if shuffle:
        random.Random(f"geo-r-lite shards {cfg.seed}").shuffle(shards)
    logger.info("webdataset: %d shard(s), %s, %s order%s", len(shards), "remote" if remote else "local",
                f"shuffled (data.seed={cfg.seed})" if shuffle else "listed",
                f", at most {cfg.max_per_shard} rows each" if cfg.max_per_shard else "")
    cache: dict = {}
    for shard in shards:
        samples = remote_samples([shard], cfg.split) if remote else _tar_samples(shard, stats)
        read = 0
        try:
            for sample in samples:
                row = sample_to_row(sample, cfg, stats, cache)
                if row is None:
                    continue
                read += 1
                stats.shards[shard] = read
                yield row
                if cfg.max_per_shard and read >= cfg.max_per_shard:
                    break
        finally:
            close = getattr(samples, "close", None)
            if close is not None:
                close()
