"""What a person sees at the end of a run and what library noise is kept out."""

from __future__ import annotations

import logging

from geo_r_lite.console import quiet_known_noise, run_summary


def test_a_run_ends_with_a_short_summary():
    summary = {"output_dir": "runs/x", "adapter": "runs/x/adapter", "records_streamed": 48,
               "skipped": {"bad_coordinates": 2, "corrupt_image": 0},
               "eval": {"n": 12, "acc@1km": 0.0833, "acc@25km": 1.0, "acc@200km": 1.0, "acc@750km": 1.0,
                        "acc@2500km": 1.0, "parse_failure_rate": 0.0, "acc_continent": 1.0, "acc_region": float("nan")},
               "eval_report": "runs/x/eval/report.md"}
    text = run_summary(summary)
    assert "acc@1/25/200/750/2500 km: 8.3 / 100.0 / 100.0 / 100.0 / 100.0 %" in text
    assert "skipped {'bad_coordinates': 2}" in text and "runs/x/eval/report.md" in text
    assert "continent 100.0" in text and "region" not in text.split("levels:")[1]
    assert len(text.splitlines()) <= 8 and max(map(len, text.splitlines())) < 120


def test_known_harmless_library_warnings_are_dropped_and_others_kept(caplog):
    quiet_known_noise()
    quiet_known_noise()  # idempotent
    pytree, bnb = logging.getLogger("torch.utils._pytree"), logging.getLogger("bitsandbytes.backends.cpu.ops")
    with caplog.at_level(logging.WARNING):
        pytree.warning("<enum 'X'> is an Enum subclass and is now natively supported by torch.compile")
        bnb.warning("Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'")
        pytree.warning("something else entirely")
    assert [r.getMessage() for r in caplog.records] == ["something else entirely"]
    assert len(pytree.filters) == 1
