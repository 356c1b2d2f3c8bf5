"""A GRPO run for the kill-and-resume tests: ``python grpo_resume_job.py MODEL_DIR OUT [--resume]``.

The rewards are a deterministic stand-in with spread (so GRPO has gradients) that saturates the
northern synthetic places (so the sampler adds hotspots and the pool shrinks mid-run, the case
that broke resume). Each reward call appends the step and the sample ids it scored to
``OUT/trace.jsonl``; the final adapter goes to ``OUT/grpo/adapter``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


class TracedReward:
    __name__ = "traced_reward"

    def __init__(self, trace: Path):
        self.trace = trace

    def __call__(self, completions, id, lat, trainer_state=None, **kwargs):
        from geo_r_lite.parsing import completion_text

        with self.trace.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"step": trainer_state.global_step + 1, "ids": list(id)}) + "\n")
        texts = [completion_text(c) for c in completions]
        return [0.99 if la > 0 else (len(t) % 7) / 7 for t, la in zip(texts, lat)]


def main(model_dir: str, out: str, resume: bool) -> None:
    from geo_r_lite.config import load_config
    from geo_r_lite.model import load_model
    from geo_r_lite.records import SkipStats
    from geo_r_lite.sources import iter_records
    from geo_r_lite.training import fill_sampler, make_sampler, run_grpo

    cfg = load_config(REPO / "configs" / "smoke.yaml", [
        f"--model.name={model_dir}", f"--train.output_dir={out}", "--train.max_steps=10", "--train.save_steps=1",
        "--train.save_total_limit=2", "--train.max_completion_length=12", "--train.temperature=1.0",
        "--sampler.saturation_threshold=0.95", "--data.synthetic_size=24", "--sampler.capacity=16",
    ])
    sampler = make_sampler(cfg)
    fill_sampler(sampler, iter_records(cfg.data))
    loaded = load_model(cfg.model, seed=cfg.train.seed)
    run_grpo(cfg, loaded, sampler, SkipStats(), resume=resume, reward_funcs=[TracedReward(Path(out) / "trace.jsonl")],
             reward_weights=[1.0])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "--resume" in sys.argv[3:])
