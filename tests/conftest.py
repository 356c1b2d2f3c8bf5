"""Shared fixtures: the offline tiny Qwen2-VL (built once per session) and synthetic images."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Folder of the tiny random Qwen2-VL, built offline once for the whole test session."""
    from geo_r_lite.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2-vl"))


@pytest.fixture(scope="session")
def tiny_family_dirs(tmp_path_factory, tiny_model_dir):
    """model_type -> folder of that family's tiny model (Qwen2-VL is ``tiny_model_dir``)."""
    from geo_r_lite.tiny import build_tiny_model

    dirs = {"qwen2_vl": tiny_model_dir}
    for family in ("qwen2_5_vl", "qwen3_vl"):
        dirs[family] = build_tiny_model(tmp_path_factory.mktemp(f"tiny-{family}"), family=family)
    return dirs


@pytest.fixture
def solid_image():
    """A small solid-colour PIL image factory."""
    from PIL import Image

    def make(color=(200, 30, 30), size=(96, 64)):
        return Image.new("RGB", size, color)

    return make
