"""The ``--vs`` comparison as tables (Markdown, LaTeX booktabs, HTML) and its marks in the results table.

The tests themselves are in ``bench/report/stats.py`` (docs/reports.md#significance).
"""

from __future__ import annotations

import pandas as pd

from bench.report import table
from bench.report.table import Table
from bench.report.tables import Summary


def comparison_table(comparison: pd.DataFrame, reference: str) -> Table:
    headers = [
        "method",
        "task",
        f"Δ ({reference} − method)",
        "95% CI",
        "p (two-sided)",
        "test over",
        "why no mark",
    ]
    out = Table(headers, align="llrrrll")
    for _, c in comparison.iterrows():
        if c["unit"]:
            p = "—" if pd.isna(c["p"]) else "< 0.001" if c["p"] < 0.001 else f"{c['p']:.3f}"
            over = (
                f"{c['unit']} ({c['n']} runs)"
                if c["unit"] != "examples, 1 seed"
                else f"{c['n']} examples, 1 seed"
            )
            out.add(
                c["row"], f"{c['suite']}/{c['task']}", f"{c['delta']:+.1f}",
                f"[{c['ci_low']:+.1f}, {c['ci_high']:+.1f}]", p, over, c["note"] or "",
            )  # fmt: skip
        else:
            out.add(c["row"], f"{c['suite']}/{c['task']}", "—", "—", "—", "—", c["note"])
    return out


def comparison_markdown(comparison: pd.DataFrame, reference: str) -> str:
    return table.to_markdown(comparison_table(comparison, reference))


def comparison_latex(comparison: pd.DataFrame, reference: str) -> str:
    return table.to_latex(comparison_table(comparison, reference))


def comparison_html(comparison: pd.DataFrame, reference: str) -> str:
    return table.to_html(comparison_table(comparison, reference), "comparison")


def add_significance_marks(summary: Summary, comparison: pd.DataFrame, level: float = 0.05) -> None:
    """Mark (†) the cells whose test against the reference gives p < ``level``, only where seed-to-seed
    variance entered the test (``markable``: at least 2 seeds per side); one seed per side never marks."""
    for _, c in comparison.iterrows():
        if c["unit"] and bool(c["markable"]) and c["p"] < level:
            summary.marks[(c["row"], c["suite"], c["task"])] = "†"


def unmarked_note(comparison: pd.DataFrame) -> str:
    """One sentence for the table legend: how many comparisons could not be marked, and why."""
    few = comparison[~comparison["markable"].astype(bool)]
    if few.empty:
        return ""
    reasons = sorted(set(few["note"].map(lambda n: n.split(" (")[0] if n else "no test")))
    return f" {len(few)} comparison(s) carry no mark whatever their p: {'; '.join(reasons)} (comparison.md)."
