"""The Colab and Kaggle notebooks: in sync with their builder, and executed top to bottom on the CPU.

CI runs each notebook against the smoke config (tiny offline model, synthetic data) by injecting a
cell after the one tagged ``parameters``, as papermill does; a notebook nobody executes is broken by
the next refactor.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["colab", "kaggle"]


def _build_module():
    sys.path.insert(0, str(REPO / "notebooks"))
    try:
        import build_notebooks
    finally:
        sys.path.pop(0)
    return build_notebooks


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_matches_builder(name, tmp_path):
    _build_module().main(tmp_path)
    built = nbformat.read(tmp_path / f"{name}.ipynb", as_version=4)
    committed = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    assert [c.source for c in committed.cells] == [c.source for c in built.cells], (
        "notebooks/*.ipynb are stale: run python notebooks/build_notebooks.py"
    )
    tags = [c.metadata.get("tags", []) for c in committed.cells]
    assert sum("parameters" in t for t in tags) == 1


def _inject(nb, params: dict) -> None:
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    source = "\n".join(f"{k} = {v!r}" for k, v in params.items())
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_on_the_smoke_config(name, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    run_dir = tmp_path / "run"
    _inject(
        nb,
        {
            "CONFIG": "configs/smoke.yaml",
            "STEPS": 2,
            "RUN_DIR": str(run_dir),
            "EVAL_CONFIG": "configs/smoke.yaml",
            "EVAL_LIMIT": 4,
            "INSTALL": False,
            "DOWNLOAD_IM2GPS3K": False,
            "SAVE_OUTPUTS": False,
            "EXTRA_TRAIN_ARGS": ["--train.stages=[grpo]"],
            "EXTRA_EVAL_ARGS": [],
        },
    )
    # The kernel inherits this environment: offline, and the tiny model cached under tmp.
    monkeypatch.setenv("GEO_R_LITE_CACHE", os.environ.get("GEO_R_LITE_CACHE", str(tmp_path / "cache")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}})
    client.execute()
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert metrics["n"] == 4
    assert (run_dir / "adapter" / "adapter_config.json").is_file()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
