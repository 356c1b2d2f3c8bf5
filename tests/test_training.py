"""Training on the CPU with the tiny offline Qwen2-VL: smoke run, SFT -> GRPO, groups, resume, learning.

Each test trains for a handful of steps; ``configs/smoke.yaml`` is the base, shrunk by overrides.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from geo_r_lite.config import load_config
from geo_r_lite.parsing import completion_text

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "configs" / "smoke.yaml"


def _cfg(tmp_path, tiny_model_dir, *overrides):
    return load_config(SMOKE, [
        f"--model.name={tiny_model_dir}", f"--train.output_dir={tmp_path / 'run'}", "--eval.enabled=false",
        "--train.max_completion_length=12", *overrides,
    ])


def _lora(model) -> dict:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def _changed(before: dict, model) -> list[str]:
    import torch

    after = _lora(model)
    return [n for n in before if not torch.equal(before[n], after[n])]


def _records(cfg, split="train", size=None):
    from geo_r_lite.sources import iter_records

    data = dataclasses.replace(cfg.data, split=split, synthetic_size=size or cfg.data.synthetic_size)
    return list(iter_records(data))


def _filled_sampler(cfg):
    from geo_r_lite.training import fill_sampler, make_sampler

    sampler = make_sampler(cfg)
    fill_sampler(sampler, iter(_records(cfg)))
    return sampler


class IdRecorder:
    """A reward with spread (so GRPO has a gradient) that records the truth columns it receives.

    Groups of the northern synthetic places score above the saturation threshold: they become
    hotspots and leave the pool (the southern ones keep it from running dry).
    """

    __name__ = "recorded_reward"

    def __init__(self, saturate_north: bool = True):
        self.saturate_north = saturate_north
        self.calls: list[dict] = []

    def __call__(self, completions, id, lat, trainer_state=None, **kwargs):
        self.calls.append({"step": trainer_state.global_step, "ids": list(id), "lats": list(lat)})
        texts = [completion_text(c) for c in completions]  # plain TRL passes message lists
        return [0.99 if self.saturate_north and la > 0 else (len(t) % 7) / 7 for t, la in zip(texts, lat)]


def test_smoke_config_end_to_end(tmp_path, tiny_model_dir):
    import train

    cfg = load_config(SMOKE, [f"--model.name={tiny_model_dir}", f"--train.output_dir={tmp_path / 'run'}",
                              "--train.sft_max_steps=4", "--train.max_steps=2", "--eval.data.synthetic_size=4",
                              "--train.merge_weights=true"])
    summary = train.main(cfg)
    run = Path(summary["output_dir"])
    for name in ("config.yaml", "data_summary.json", "train.log", "sampler_state.json",
                 "adapter/adapter_config.json", "sft/adapter/adapter_config.json", "grpo/checkpoint-2/sampler_state.json"):
        assert (run / name).is_file(), name
    logs = [json.loads(line) for line in (run / "grpo" / "metrics.jsonl").read_text().splitlines()]
    step_logs = [rec for rec in logs if "reward" in rec]
    assert [rec["step"] for rec in step_logs] == [1, 2]
    for key in ("rewards/geo_reward/mean", "rewards/format_reward/mean", "rewards/distance_reward/mean",
                "rewards/hierarchy_reward/mean", "reward", "frac_reward_zero_std", "parse_failure_rate",
                "completions/mean_length"):
        assert key in step_logs[0], key
    sample = json.loads((run / "grpo" / "samples.jsonl").read_text().splitlines()[0])
    assert sample["step"] == 2 and len(sample["completions"]) == cfg.train.num_generations
    assert {"text", "rewards", "total", "format_ok"} <= set(sample["completions"][0])
    assert "eval" in summary and (run / "eval").is_dir()
    assert (Path(summary["merged"]) / "config.json").is_file(), "merged full weights for serving"


def test_sft_step_then_grpo_step_from_its_adapter(tmp_path, tiny_model_dir):
    from geo_r_lite.model import load_model
    from geo_r_lite.records import SkipStats
    from geo_r_lite.training import build_grpo_trainer, run_sft

    cfg = _cfg(tmp_path, tiny_model_dir, "--train.sft_max_steps=1", "--train.max_steps=1", "--train.temperature=1.0")
    loaded = load_model(cfg.model, for_training=True)
    before = _lora(loaded.model)
    adapter = run_sft(cfg, loaded, _records(cfg)[:8], SkipStats())
    assert _changed(before, loaded.model), "one SFT step must move the LoRA weights"

    from_sft = load_model(dataclasses.replace(cfg.model, adapter=str(adapter)), for_training=True)
    assert not _changed(_lora(loaded.model), from_sft.model), "the GRPO start is the SFT adapter"
    before = _lora(from_sft.model)
    recorder = IdRecorder(saturate_north=False)
    parts = build_grpo_trainer(cfg, from_sft, _filled_sampler(cfg), SkipStats(), reward_funcs=[recorder],
                               reward_weights=[1.0])
    parts.trainer.train()
    assert parts.trainer.state.global_step == 1 and recorder.calls
    assert _changed(before, from_sft.model), "one GRPO step must move the LoRA weights"


def test_each_group_of_completions_shares_one_sample(tmp_path, tiny_model_dir):
    from geo_r_lite.model import load_model
    from geo_r_lite.records import SkipStats
    from geo_r_lite.sampler import DiversitySampler

    g = 3
    cfg = _cfg(tmp_path, tiny_model_dir, f"--train.num_generations={g}", "--train.per_device_train_batch_size=6",
               "--train.gradient_accumulation_steps=2", "--train.max_steps=3", "--sampler.saturation_threshold=0.95")
    from geo_r_lite.training import build_grpo_trainer

    sampler = _filled_sampler(cfg)
    pool_before = len(sampler)
    recorder = IdRecorder()
    parts = build_grpo_trainer(cfg, load_model(cfg.model), sampler, SkipStats(), reward_funcs=[recorder],
                               reward_weights=[1.0])
    parts.trainer.train()
    assert recorder.calls, "the reward function was never called"
    for call in recorder.calls:
        ids = call["ids"]
        assert len(ids) == 12, "generation batch = 6 completions x 2 accumulation steps"
        groups = [ids[i:i + g] for i in range(0, len(ids), g)]
        assert all(len(set(group)) == 1 for group in groups), f"a group mixes samples: {groups}"
    assert len({i for call in recorder.calls for i in call["ids"]}) > 1, "the test needs several samples"
    # The saturated groups went back to the sampler as hotspots and left the pool.
    assert sampler.stats["saturated"] >= 1 and len(sampler) < pool_before
    assert isinstance(sampler, DiversitySampler)


def test_resume_continues_at_the_right_step_with_the_same_sampler_state(tmp_path, tiny_model_dir):
    from transformers import TrainerCallback

    from geo_r_lite.model import load_model
    from geo_r_lite.records import SkipStats
    from geo_r_lite.training import run_grpo

    cfg = _cfg(tmp_path, tiny_model_dir, "--train.max_steps=4", "--train.save_steps=2",
               "--sampler.saturation_threshold=0.95")

    class Interrupt(RuntimeError):
        pass

    saved = {}

    class Crash(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            saved[state.global_step] = json.loads(json.dumps(sampler.state_dict()))

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise Interrupt("power cut during step 4")

    sampler = _filled_sampler(cfg)
    fresh_state = json.loads(json.dumps(sampler.state_dict()))
    with pytest.raises(Interrupt):
        run_grpo(cfg, load_model(cfg.model), sampler, SkipStats(), callbacks=[Crash()],
                 reward_funcs=[IdRecorder()], reward_weights=[1.0])
    assert sorted(saved) == [2]
    assert saved[2]["hotspots"] != fresh_state["hotspots"], "steps 1-2 must have changed the sampler"

    seen = {}

    class Watch(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            seen["state"] = json.loads(json.dumps(resumed.state_dict()))

        def on_step_end(self, args, state, control, **kwargs):
            seen.setdefault("steps", []).append(state.global_step)

    resumed = _filled_sampler(cfg)  # what a restarted process rebuilds from the data first
    recorder = IdRecorder()
    run_grpo(cfg, load_model(cfg.model), resumed, SkipStats(), resume=True, callbacks=[Watch()],
             reward_funcs=[recorder], reward_weights=[1.0])
    assert seen["steps"] == [3, 4], "continues after checkpoint-2 and stops at max_steps"
    assert seen["state"] == saved[2], "the sampler is exactly the one saved at step 2"
    assert (Path(cfg.train.output_dir) / "grpo" / "checkpoint-4" / "sampler_state.json").is_file()


def test_sft_teaches_the_answer_format_on_held_out_places(tmp_path, tiny_model_dir):
    """Toy learning check: after SFT on the colour-coded places, held-out answers are well formed."""
    import torch

    from geo_r_lite.images import load_image
    from geo_r_lite.model import load_model
    from geo_r_lite.prompts import build_prompt
    from geo_r_lite.records import SkipStats
    from geo_r_lite.rewards import format_reward
    from geo_r_lite.training import run_sft

    from transformers import set_seed

    cfg = _cfg(tmp_path, tiny_model_dir, "--train.logging_steps=50")
    set_seed(cfg.train.seed)  # the LoRA initialisation draws from the global RNG, as in train.py
    loaded = load_model(cfg.model, for_training=True, seed=cfg.train.seed)
    run_sft(cfg, loaded, _records(cfg), SkipStats())
    held_out = _records(cfg, split="test", size=8)
    train_ids = {r.id for r in _records(cfg)}
    assert not train_ids & {r.id for r in held_out}

    processor, model = loaded.processor, loaded.model.eval()
    text = processor.apply_chat_template(build_prompt(), add_generation_prompt=True, tokenize=False)
    images = [load_image(r.image, cfg.model.min_pixels, cfg.model.max_pixels) for r in held_out]
    inputs = processor(text=[text] * len(images), images=images, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=110, do_sample=False)
    completions = processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    scores = format_reward(completions)
    assert sum(scores) / len(scores) >= 0.9, completions


def test_train_py_resume_skips_finished_stages_and_the_data_pass(tmp_path, tiny_model_dir, caplog):
    import logging

    import train

    base = [f"--model.name={tiny_model_dir}", f"--train.output_dir={tmp_path / 'run'}", "--eval.enabled=false",
            "--train.sft_max_steps=2", "--train.save_steps=2", "--train.max_completion_length=12"]
    first = train.main(load_config(SMOKE, base + ["--train.max_steps=2"]))
    run = Path(first["output_dir"])
    sft_weights = (run / "sft" / "adapter" / "adapter_model.safetensors").read_bytes()
    with caplog.at_level(logging.INFO):
        second = train.main(load_config(SMOKE, base + ["--train.max_steps=4", "--train.resume=true"]))
    assert "the data is not streamed again" in caplog.text
    assert "grpo stage continues from" in caplog.text and "checkpoint-2" in caplog.text
    assert (run / "grpo" / "checkpoint-4" / "sampler_state.json").is_file()
    assert (run / "sft" / "adapter" / "adapter_model.safetensors").read_bytes() == sft_weights, "SFT not rerun"
    summary = json.loads((run / "data_summary.json").read_text())
    assert summary["records_streamed"] == first["records_streamed"] == second["records_streamed"] > 0


@pytest.mark.parametrize(
    "argv, resume, max_steps",
    [
        pytest.param([], False, 4, id="no arguments: the smoke config"),
        pytest.param(["--resume"], True, 4, id="--resume is train.resume"),
        pytest.param(["--config", str(SMOKE), "--train.max_steps=9"], False, 9, id="dotted override"),
    ],
)
def test_cli(argv, resume, max_steps):
    import train

    cfg = train.cli(argv)
    assert (cfg.train.resume, cfg.train.max_steps, cfg.model.name) == (resume, max_steps, "tiny")


def test_cli_rejects_stray_arguments():
    import train

    with pytest.raises(SystemExit, match="unknown arguments: --fast"):
        train.cli(["--fast"])


def test_grpo_generation_keeps_its_context_under_gradient_checkpointing(tiny_model_dir, solid_image):
    """Training-mode generate with checkpointing drops the KV cache: tokens after the first lose context."""
    import torch

    from geo_r_lite.config import ModelConfig
    from geo_r_lite.model import load_model
    from geo_r_lite.prompts import build_prompt
    from geo_r_lite.training import generate_in_eval_mode

    loaded = load_model(ModelConfig(name=str(tiny_model_dir), backend="hf", gradient_checkpointing=True), seed=0)
    torch.manual_seed(0)
    with torch.no_grad():  # a LoRA far from zero, so that the output depends on the context
        for p in loaded.model.parameters():
            if p.requires_grad:
                p.normal_(0, 0.5)
    proc, model = loaded.processor, loaded.model
    text = proc.apply_chat_template(build_prompt(), add_generation_prompt=True, tokenize=False)
    inputs = proc(text=[text], images=[solid_image(size=(112, 112))], return_tensors="pt")

    def greedy():
        with torch.no_grad():
            return model.generate(**inputs, max_new_tokens=10, do_sample=False)[0].tolist()

    model.eval()
    reference = greedy()
    model.train()
    assert greedy() != reference, "the failure this guards against is not reproduced any more"
    generate_in_eval_mode(model)
    assert greedy() == reference and model.training, "same tokens as inference, training mode restored"


@pytest.mark.slow
def test_two_process_ddp_grpo_on_cpu(tmp_path, tiny_model_dir):
    """The multi-GPU path (hf backend, DDP) runs for real: two CPU processes over gloo via torchrun."""
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
        str(REPO / "train.py"), f"--model.name={tiny_model_dir}", "--train.stages=[grpo]", "--train.max_steps=2",
        f"--train.output_dir={out}", "--eval.enabled=false",
    ]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("groups are split over processes") == 2, "both ranks ran, and knew they were two"
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert (out / "grpo" / "checkpoint-2" / "sampler_state.json").is_file()
    steps = [json.loads(line)["step"] for line in (out / "grpo" / "metrics.jsonl").read_text().splitlines()]
    assert steps.count(1) == 1, f"one process writes the step log, got steps {steps}"
