"""The Performance issue's targets as measured ratios: generic ones per row, method-relative ones as data.

Every row gets ``harness / bare`` time and ``harness / PEFT`` time and memory; the comparisons between
methods (which method against which, and the target) are ``bench.perf.defaults.PERF.targets``, so this module
names no method.
"""

from __future__ import annotations

from typing import Any

from bench.perf.cases import EVAL_ROW, EVAL_VARIANTS
from bench.perf.defaults import MEMORY, PERF, TIME, Target


def _generic(labels: list[str]) -> list[Target]:
    out = []
    for label in labels:
        out += [
            Target(f"{label}: harness / bare time", label, label, TIME, 1.03, variants=("harness", "bare")),
            Target(f"{label}: harness / PEFT time", label, label, TIME, 1.00, variants=("harness", "peft")),
            Target(
                f"{label}: harness / PEFT memory", label, label, MEMORY, 1.00, variants=("harness", "peft")
            ),
        ]
    return out


EVAL_TARGET = Target(
    "eval: score / generate time (>= 3x faster)", EVAL_ROW, EVAL_ROW, TIME, 1 / 3, variants=EVAL_VARIANTS
)


def ratios(rows: list[dict[str, Any]], seq_len: int) -> list[dict[str, Any]]:
    """Each target whose two rows were measured: ``{"ratio", "value", "target", "met"}``."""
    ok = {(r["label"], r["variant"]): r for r in rows if "error" not in r}
    out = []
    labels = sorted({label for label, _ in ok})
    for t in [*_generic(labels), *PERF.targets, EVAL_TARGET]:
        num, den = ok.get((t.num, t.variants[0])), ok.get((t.den, t.variants[1]))
        if not (num and den):
            continue
        target = t.target
        if t.length_scaled:
            m, n = num["virtual_tokens"], den["virtual_tokens"]
            target = (m + seq_len) / (n + seq_len) + t.target
        value = num[t.key] / den[t.key] if den[t.key] else float("nan")
        out.append({"ratio": t.name, "value": value, "target": target, "met": value <= target})
    return out
