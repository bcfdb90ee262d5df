"""``bench perf``'s defaults and its method-relative targets: which methods it times by default, whose
evaluation ``--eval`` times, which rows it times at another method's prompt length, and the ratios between
methods it checks. These are relations between methods, kept here as data so the rest of ``bench/perf/`` names
no method. A leaf of ``bench/perf/`` (it imports nothing from the harness).
"""

from __future__ import annotations

from dataclasses import dataclass

TIME, MEMORY = "ms_per_step", "peak_mem_over_baseline_bytes"


@dataclass(frozen=True)
class Target:
    """``num / den <= target`` for harness rows ``num`` and ``den`` (or ``variants`` of one row).

    ``length_scaled``: the target is ``(m + s) / (l + s) + target`` with m, l the rows' virtual tokens and s the
    sequence length (a longer prompt may cost its share of extra positions, plus a margin)."""

    name: str
    num: str
    den: str
    key: str = TIME
    target: float = 1.0
    length_scaled: bool = False
    variants: tuple[str, str] = ("harness", "harness")


@dataclass(frozen=True)
class PerfPlan:
    """``bench perf``'s defaults and its method-relative targets."""

    methods: tuple[str, ...]  # the default --methods
    eval_method: str  # the method whose evaluation --eval times by scoring vs generation
    same_length: dict[str, str]  # method -> reference timed at the method's prompt length (row "ref@method")
    targets: tuple[Target, ...]


PERF = PerfPlan(
    methods=("pt", "dept", "ept", "lpt"),
    eval_method="pt",
    same_length={"lpt": "pt"},
    targets=(
        Target("dept / pt time (target (m+s)/(l+s) + 5%)", "dept", "pt", TIME, 0.05, length_scaled=True),
        Target("ept / pt time (target (m+s)/(l+s) + 5%)", "ept", "pt", TIME, 0.05, length_scaled=True),
        Target("ept / dept time", "ept", "dept", TIME, 1.05),
        Target("lpt / pt (same l) time", "lpt", "pt@lpt", TIME, 0.70),
        Target("lpt / pt (same l) memory", "lpt", "pt@lpt", MEMORY, 0.70),
    ),
)
PERF_METHODS = PERF.methods
