"""Published reference numbers: docs/reports.md#published-numbers (T5-Base, GLUE and SuperGLUE) shipped as data.

``data/published_t5base.csv`` holds one row per published method with its setting (single- or multi-task),
parameter count as printed, the 13 task scores and both averages, whether the row is verified, and its source:
an arXiv id with table and row, or ``owner/repo@commit path`` of a released file. ``verified`` is true only where
every number was read in that source (docs/reports.md#published-numbers: the single-task rows and two multi-task
rows against ACCEPT's reprint of the table, DePT's against its released per-task results); the four other
multi-task rows name their table but were not checked against it. There is no EPT row on purpose
(docs/reports.md#published-numbers: its per-task numbers have no source that can be opened here).
Multi-task rows ("(m)") are left out unless asked for: the harness trains one task at a time.
"""

from __future__ import annotations

import io
from importlib import resources

import pandas as pd

from bench.report.table import Table, to_markdown

SUITE_TASKS = {
    "glue": ["mnli", "qqp", "qnli", "sst2", "stsb", "mrpc", "rte", "cola"],
    "superglue": ["multirc", "boolq", "wic", "wsc", "cb"],
}


def parse_count(text: str) -> float:
    """'76.8K' -> 76800.0, '220M' -> 2.2e8."""
    text = str(text).strip()
    scale = {"K": 1e3, "M": 1e6, "B": 1e9}.get(text[-1:].upper(), 1.0)
    return float(text[:-1] if scale != 1.0 else text) * scale


def load_published(multitask: bool = False) -> pd.DataFrame:
    """The published table with ``params_n`` (a number) added; task columns are x100 scores or NaN.

    ``multitask``: keep the multi-task rows too (they train one model on all tasks at once, a setting the
    harness does not run, so they are left out by default)."""
    text = resources.files("bench.report").joinpath("data/published_t5base.csv").read_text()
    table = pd.read_csv(io.StringIO(text), dtype={"params": str})
    table["params_n"] = table["params"].map(parse_count)
    table["verified"] = table["verified"].map(lambda v: str(v).strip().lower() == "true")
    if not multitask:
        table = table[table["setting"] == "single-task"].reset_index(drop=True)
    return table


def published_average(table: pd.DataFrame, suite: str, tasks: list[str]) -> pd.Series:
    """Each published row's mean over ``tasks`` of ``suite`` (NaN where a cell is missing): the average over
    the same tasks a report shows, so a subset of tasks compares like with like."""
    tasks = [t for t in tasks if t in SUITE_TASKS[suite]]
    if not tasks:
        return pd.Series(float("nan"), index=table.index)
    return table[tasks].mean(axis=1, skipna=False)


def published_table(table: pd.DataFrame, columns: list[tuple[str, str]]) -> Table:
    """The published rows for the report's task columns, every row marked published and verified or not."""
    tasks = [t for _, t in columns if t in table.columns]
    suites = [s for s in SUITE_TASKS if any(t in SUITE_TASKS[s] for t in tasks)]
    headers = ["published (T5-Base)", "setting", "#params", *tasks]
    headers += [f"{'GLUE' if s == 'glue' else 'SuperGLUE'} avg (these tasks)" for s in suites]
    headers += ["verified", "source"]
    out = Table(headers)
    averages = {s: published_average(table, s, tasks) for s in suites}
    for i, r in table.iterrows():
        cells = [f"{r['method']} [published]", r["setting"], r["params"]]
        cells += ["—" if pd.isna(r[t]) else f"{r[t]:.1f}" for t in tasks]
        cells += ["—" if pd.isna(averages[s][i]) else f"{averages[s][i]:.1f}" for s in suites]
        cells += ["yes" if r["verified"] else "no", r["source"]]
        out.add(*cells)
    return out


def published_markdown(table: pd.DataFrame, columns: list[tuple[str, str]]) -> str:
    return to_markdown(published_table(table, columns))
