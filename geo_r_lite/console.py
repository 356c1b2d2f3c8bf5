"""What the entry points print: library noise known to be harmless is kept out, and a run ends
with a short summary a person reads, not a dict.

``quiet_known_noise()`` silences exactly these (real warnings still show):
- torch's ``_pytree`` notes that registering an Enum as a pytree constant is deprecated (printed at
  import by torchao, which Unsloth pulls in);
- bitsandbytes' note that its optional CPU kernels package is missing (we never run 4-bit on a CPU).
"""

from __future__ import annotations

import logging
import math

# Logger name -> message fragment of a known-harmless record.
_KNOWN_NOISE = {
    "torch.utils._pytree": "is an Enum subclass and is now natively supported",
    "bitsandbytes.backends.cpu.ops": "from kernels-community",
}


class _DropKnown(logging.Filter):
    def __init__(self, fragment: str):
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in record.getMessage()


def quiet_known_noise() -> None:
    """Install the filters (idempotent); call before importing torch."""
    for name, fragment in _KNOWN_NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropKnown) for f in logger.filters):
            logger.addFilter(_DropKnown(fragment))


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def run_summary(summary: dict) -> str:
    """A few lines: where the adapter, report and logs are, and the evaluation's accuracy row."""
    lines = [f"done: run folder {summary['output_dir']}"]
    if summary.get("adapter"):
        lines.append(f"  adapter:  {summary['adapter']}")
    if summary.get("merged"):
        lines.append(f"  merged:   {summary['merged']}")
    skipped = {k: v for k, v in (summary.get("skipped") or {}).items() if v}
    lines.append(f"  data:     {summary.get('records_streamed', 0)} records streamed"
                 + (f", skipped {skipped}" if skipped else ", none skipped"))
    metrics = summary.get("eval")
    if metrics:
        row = " / ".join(_pct(metrics.get(f"acc@{km}km")) for km in (1, 25, 200, 750, 2500))
        lines.append(f"  eval:     {metrics.get('n', 0)} images, acc@1/25/200/750/2500 km: {row} %, "
                     f"{_pct(1 - metrics.get('parse_failure_rate', 0.0))} % answers parsed")
        levels = [f"{level} {_pct(metrics[f'acc_{level}'])}" for level in ("continent", "country", "region", "city")
                  if isinstance(metrics.get(f"acc_{level}"), float) and not math.isnan(metrics[f"acc_{level}"])]
        if levels:
            lines.append(f"  levels:   {', '.join(levels)} %")
        lines.append(f"  report:   {summary.get('eval_report', summary['output_dir'] + '/eval/report.md')}")
    lines.append(f"  logs:     {summary['output_dir']}/train.log, <stage>/metrics.jsonl")
    return "\n".join(lines)
