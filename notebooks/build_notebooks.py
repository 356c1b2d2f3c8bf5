"""Writes notebooks/colab.ipynb and notebooks/kaggle.ipynb from one cell list.

Both notebooks share every step (install, train, evaluate, report, save); only the platform cells
differ. Edit this file, then run ``python notebooks/build_notebooks.py``; a test checks that the
committed notebooks match it. The first code cell is tagged ``parameters`` (papermill convention):
CI runs the notebooks top to bottom on the CPU with parameters that pick the smoke config.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

PLATFORMS = {
    "colab": {
        "title": "Google Colab (free T4)",
        "run_dir": "runs/colab-t4",
        "save_note": "Mounts Google Drive and copies the adapter and the report to `MyDrive/geo-r-lite/`.",
        "save_code": (
            "if SAVE_OUTPUTS:\n"
            "    from google.colab import drive  # only on Colab\n"
            "    drive.mount('/content/drive')\n"
            "    target = Path('/content/drive/MyDrive/geo-r-lite') / Path(RUN_DIR).name\n"
            "    shutil.copytree(RUN_DIR, target, dirs_exist_ok=True)\n"
            "    print('saved to', target)"
        ),
    },
    "kaggle": {
        "title": "Kaggle (T4 x1; turn Internet on in the notebook settings)",
        "run_dir": "runs/kaggle-t4",
        "save_note": "Copies the adapter and the report to `/kaggle/working/`, which Kaggle keeps as the notebook's output.",
        "save_code": (
            "if SAVE_OUTPUTS:\n"
            "    target = Path('/kaggle/working') / Path(RUN_DIR).name\n"
            "    shutil.copytree(RUN_DIR, target, dirs_exist_ok=True)\n"
            "    print('saved to', target)"
        ),
    },
}


def cells(platform: str) -> list:
    p = PLATFORMS[platform]
    return [
        new_markdown_cell(
            f"# geo-r-lite on {p['title']}\n\n"
            "Teach Qwen2-VL to say where a photo was taken, with Chain-of-Region reasoning and GRPO "
            "(a light reproduction of Geo-R, arXiv 2601.00388). This notebook installs the project, "
            "trains a LoRA adapter with the 16 GB config (`configs/t4.yaml`), evaluates it on IM2GPS3K "
            "and shows the report.\n\n"
            "Runtime: select a **T4 GPU**. A few hundred GRPO steps take hours on a T4; start with "
            "`STEPS = 50` to see it work."
        ),
        new_code_cell(
            "# Parameters (CI overrides these to run the notebook on the CPU smoke config).\n"
            "CONFIG = 'configs/t4.yaml'\n"
            "STEPS = 300\n"
            f"RUN_DIR = '{p['run_dir']}'\n"
            "EVAL_CONFIG = 'configs/eval_im2gps3k.yaml'\n"
            "EVAL_LIMIT = 500  # IM2GPS3K images to evaluate; 3000 for the full table\n"
            "INSTALL = True  # clone + pip install (False when already inside the repo with deps)\n"
            "REPO_URL = 'https://github.com/YOUR-FORK/geo-r-lite.git'  # where you got geo-r-lite from\n"
            "DOWNLOAD_IM2GPS3K = True\n"
            "SAVE_OUTPUTS = True\n"
            "EXTRA_TRAIN_ARGS = []  # e.g. ['--train.learning_rate=5e-6']\n"
            "EXTRA_EVAL_ARGS = []",
            metadata={"tags": ["parameters"]},
        ),
        new_markdown_cell("## 1. Install\nClones the repository (if needed) and installs the pinned requirements."),
        new_code_cell(
            "import os, shutil, subprocess, sys\n"
            "from pathlib import Path\n\n"
            "if INSTALL:\n"
            "    if not Path('train.py').exists():\n"
            "        if not Path('geo-r-lite').exists():\n"
            "            subprocess.run(['git', 'clone', '--depth', '1', REPO_URL, 'geo-r-lite'], check=True)\n"
            "        os.chdir('geo-r-lite')\n"
            "    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-r', 'requirements.txt'], check=True)\n"
            "    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '-e', '.'], check=True)\n"
            "assert Path('train.py').exists(), 'run this notebook from the geo-r-lite folder (or set INSTALL = True)'\n\n"
            "def run(args):\n"
            "    \"\"\"Run a command, streaming its output; stop the notebook if it fails.\"\"\"\n"
            "    print('$', ' '.join(map(str, args)), flush=True)\n"
            "    subprocess.run([str(a) for a in args], check=True)\n\n"
            "import torch\n"
            "print('GPU:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none (CPU)')"
        ),
        new_markdown_cell(
            "## 2. Train\nGRPO with the Chain-of-Region rewards; the run folder gets the resolved config, "
            "logs, sample completions, checkpoints and the LoRA adapter (`RUN_DIR/adapter`). "
            "Interrupted? Run the cell again with `--train.resume=true` in `EXTRA_TRAIN_ARGS`."
        ),
        new_code_cell(
            "run([sys.executable, 'train.py', '--config', CONFIG, f'--train.max_steps={STEPS}',\n"
            "     f'--train.output_dir={RUN_DIR}', '--eval.enabled=false', *EXTRA_TRAIN_ARGS])"
        ),
        new_markdown_cell(
            "## 3. Get IM2GPS3K\nThe 3,000 test images come from a community mirror on the Hugging Face Hub "
            "(see the README for other sources). The metadata CSV keeps its published layout."
        ),
        new_code_cell(
            "if DOWNLOAD_IM2GPS3K:\n"
            "    import zipfile\n"
            "    from huggingface_hub import hf_hub_download\n"
            "    root = Path('data/im2gps3k')\n"
            "    root.mkdir(parents=True, exist_ok=True)\n"
            "    for name in ['im2gps3ktest.zip', 'im2gps3k_places365.csv']:\n"
            "        local = hf_hub_download('Wendy-Fly/AAAI-2026', name, repo_type='dataset', local_dir=root)\n"
            "    with zipfile.ZipFile(root / 'im2gps3ktest.zip') as zf:\n"
            "        zf.extractall(root)\n"
            "    print(sorted(p.name for p in root.iterdir()))"
        ),
        new_markdown_cell("## 4. Evaluate\nBatched greedy generation; predictions are saved per batch, so a rerun resumes."),
        new_code_cell(
            "EVAL_DIR = f'{RUN_DIR}/eval'\n"
            "run([sys.executable, 'eval.py', '--config', EVAL_CONFIG, f'--model.adapter={RUN_DIR}/adapter',\n"
            "     f'--eval.output_dir={EVAL_DIR}', f'--eval.data.max_samples={EVAL_LIMIT}', *EXTRA_EVAL_ARGS])"
        ),
        new_markdown_cell("## 5. Report\nAccuracy at 1/25/200/750/2500 km beside the published rows, then the plots."),
        new_code_cell(
            "import json\n"
            "from IPython.display import Image, Markdown, display\n\n"
            "display(Markdown(Path(EVAL_DIR, 'report.md').read_text()))\n"
            "for png in sorted(Path(EVAL_DIR).glob('*.png')):\n"
            "    display(Image(filename=str(png)))\n"
            "metrics = json.loads(Path(EVAL_DIR, 'metrics.json').read_text())\n"
            "print({k: v for k, v in metrics.items() if k.startswith('acc@')})"
        ),
        new_markdown_cell(f"## 6. Save\n{p['save_note']}"),
        new_code_cell(p["save_code"]),
    ]


def build(platform: str) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells(platform))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    if platform == "colab":
        nb.metadata["accelerator"] = "GPU"
        nb.metadata["colab"] = {"gpuType": "T4", "provenance": []}
    # Stable cell ids keep the committed files identical to a rebuild.
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{platform}-{i:02d}"
    return nb


def main(out_dir: Path = HERE) -> None:
    for platform in PLATFORMS:
        nbformat.write(build(platform), out_dir / f"{platform}.ipynb")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
