"""The results table: rows (settings) x tasks, headline test metric as mean ± std over seeds (n), suite averages
and cost columns; rendered as Markdown, LaTeX (booktabs), CSV and HTML from one intermediate.

Statistics: ``std`` is the sample standard deviation over seeds (ddof=1; blank for one seed). A suite average
(``GLUE avg``, ``SuperGLUE avg``) is the mean over that suite's task columns of the table and is only given for a
row that has every one of them; when all those cells have the same seeds it is computed per seed first, so it
carries a std over seeds too. Only ``ok`` runs enter any number; failed runs are listed separately.
Best per column: the highest mean for scores, the lowest value for costs; ties are all marked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.report import table
from bench.report.load import task_columns
from bench.report.table import Cell, Table

SUITE_NAMES = {"glue": "GLUE", "superglue": "SuperGLUE"}
TIMED = ("train_time_s", "step_ms", "peak_mem_mib")  # cost columns a contended machine distorts (‡)
COSTS = (  # column, header, lower is better
    ("trainable_params", "trainable params"),
    ("train_time_s", "train time (s)"),
    ("step_ms", "ms/step"),
    ("peak_mem_mib", "peak mem (MiB)"),
)


@dataclass
class Stat:
    mean: float
    std: float  # nan for n == 1
    n: int
    seeds: tuple[int, ...] = ()


@dataclass
class Summary:
    rows: list[str]
    columns: list[tuple[str, str]]  # (suite, task); suite averages are keyed (suite, "avg")
    cells: dict[tuple[str, str, str], Stat]  # (row, suite, task) -> Stat
    costs: pd.DataFrame  # index row, columns of COSTS
    metrics: dict[tuple[str, str], str]  # (suite, task) -> headline metric name
    mem_kind: str
    failed: pd.DataFrame
    marks: dict[tuple[str, str, str], str] = field(default_factory=dict)  # significance marks per cell
    contended: dict[str, int] = field(default_factory=dict)  # row -> ok runs measured under contention

    def score_columns(self) -> list[tuple[str, str]]:
        """Task columns with each suite's average after its tasks."""
        out: list[tuple[str, str]] = []
        for suite in dict.fromkeys(s for s, _ in self.columns):
            out += [c for c in self.columns if c[0] == suite] + [(suite, "avg")]
        return out

    def best(self) -> set[tuple[str, str, str]]:
        """(row, suite, task) of the best mean per score column and (row, "cost", column) per cost column."""
        marked: set[tuple[str, str, str]] = set()
        for suite, task in self.score_columns():
            values = {
                r: self.cells[(r, suite, task)].mean for r in self.rows if (r, suite, task) in self.cells
            }
            if values:
                top = max(values.values())
                marked |= {
                    (r, suite, task) for r, v in values.items() if np.isclose(v, top, rtol=0, atol=1e-9)
                }
        for column, _ in COSTS:
            values = self.costs[column].dropna()
            if not values.empty:
                marked |= {(r, "cost", column) for r, v in values.items() if np.isclose(v, values.min())}
        return marked


def _stat(scores: pd.Series, seeds: pd.Series) -> Stat:
    values = scores.to_numpy(dtype=float)
    std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    return Stat(float(np.mean(values)), std, len(values), tuple(sorted(int(s) for s in seeds)))


def summarize(runs: pd.DataFrame) -> Summary:
    """Aggregate ``load_runs`` output into a ``Summary`` (only ``ok`` runs count)."""
    ok = runs[runs["status"] == "ok"]
    columns = task_columns(runs)
    rows = sorted(runs["row"].unique())
    cells: dict[tuple[str, str, str], Stat] = {}
    for (row, suite, task), group in ok.groupby(["row", "suite", "task"]):
        group = group.dropna(subset=["score"])
        if not group.empty:
            cells[(row, suite, task)] = _stat(group["score"], group["seed"])
    for row in rows:
        for suite in dict.fromkeys(s for s, _ in columns):
            tasks = [t for s, t in columns if s == suite]
            stats = [cells.get((row, suite, t)) for t in tasks]
            if any(s is None for s in stats):
                continue
            if len({s.seeds for s in stats}) == 1:  # same seeds everywhere: average per seed first
                part = ok[(ok["row"] == row) & (ok["suite"] == suite)].dropna(subset=["score"])
                per_seed = part.groupby("seed")["score"].mean()
                cells[(row, suite, "avg")] = _stat(per_seed, pd.Series(per_seed.index))
            else:
                cells[(row, suite, "avg")] = Stat(
                    float(np.mean([s.mean for s in stats])), math.nan, min(s.n for s in stats)
                )
    costs = ok.groupby("row").agg(
        trainable_params=("trainable_params", "mean"),
        train_time_s=("train_time_s", "mean"),
        step_ms=("step_ms", "median"),
        peak_mem_mib=("peak_mem_bytes", lambda b: b.max() / 2**20),
    )
    costs = costs.reindex(rows)
    kinds = sorted(ok["mem_kind"].dropna().unique())
    metrics = {(s, t): m for s, t, m in zip(runs["suite"], runs["task"], runs["metric"], strict=True) if m}
    failed = runs[runs["status"] != "ok"][["row", "suite", "task", "seed", "error", "run_id"]]
    contended = ok[ok["contended"].eq(True)].groupby("row").size().to_dict() if "contended" in ok else {}
    return Summary(
        rows, columns, cells, costs, metrics, "/".join(kinds) or "n/a", failed.reset_index(drop=True),
        contended={str(k): int(v) for k, v in contended.items()},
    )  # fmt: skip


# ---- formatting ----------------------------------------------------------------------------------------


def format_count(value: float) -> str:
    """7680 -> '7.7K', 2.2e8 -> '220M'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= div:
            text = f"{value / div:.1f}".rstrip("0").rstrip(".")
            return f"{text}{unit}"
    return f"{value:.0f}"


def _cost_text(column: str, value: float) -> str:
    if value is None or math.isnan(value):
        return "—"
    if column == "trainable_params":
        return format_count(value)
    return f"{value:.1f}" if column == "train_time_s" else f"{value:.0f}"


def _header(summary: Summary, suite: str, task: str) -> str:
    if task == "avg":
        return f"{SUITE_NAMES.get(suite, suite)} avg"
    metric = summary.metrics.get((suite, task))
    return f"{task} ({metric})" if metric else task


def display(summary: Summary) -> Table:
    """The results table as data, shared by the Markdown, LaTeX and HTML renderers."""
    best = summary.best()
    headers = ["method"] + [_header(summary, s, t) for s, t in summary.score_columns()]
    headers += [h if c != "peak_mem_mib" else f"peak mem {summary.mem_kind} (MiB)" for c, h in COSTS]
    out = Table(headers, align="l" + "r" * (len(headers) - 1))
    for row in summary.rows:
        cells = [Cell(row)]
        for suite, task in summary.score_columns():
            stat = summary.cells.get((row, suite, task))
            if stat is None:
                cells.append(Cell("—"))
                continue
            text = f"{stat.mean:.1f}" + ("" if math.isnan(stat.std) else f" ± {stat.std:.1f}")
            mark = summary.marks.get((row, suite, task), "")
            cells.append(Cell(text, f"({stat.n}){mark}", (row, suite, task) in best))
        for column, _ in COSTS:
            cells.append(
                Cell(
                    _cost_text(column, summary.costs.at[row, column]),
                    "‡" if column in TIMED and summary.contended.get(row) else "",
                    best=(row, "cost", column) in best,
                )
            )
        out.rows.append(cells)
    return out


def to_markdown(summary: Summary) -> str:
    return table.to_markdown(display(summary))


def to_latex(summary: Summary, caption: str = "") -> str:
    """A booktabs ``table*`` (needs ``\\usepackage{booktabs}``)."""
    return table.to_latex(display(summary), caption, float_env="table*")


def to_html(summary: Summary) -> str:
    return table.to_html(display(summary), "results")


def to_csv(summary: Summary) -> str:
    """Wide, machine-readable: per score column ``<col>_mean, _std, _n, _best``, then the cost columns."""
    best = summary.best()
    records = []
    for row in summary.rows:
        rec: dict[str, object] = {"row": row}
        for suite, task in summary.score_columns():
            name = f"{suite}_avg" if task == "avg" else task
            stat = summary.cells.get((row, suite, task))
            rec[f"{name}_mean"] = None if stat is None else round(stat.mean, 6)
            rec[f"{name}_std"] = None if stat is None or math.isnan(stat.std) else round(stat.std, 6)
            rec[f"{name}_n"] = None if stat is None else stat.n
            rec[f"{name}_best"] = (row, suite, task) in best
        for column, _ in COSTS:
            value = summary.costs.at[row, column]
            rec[column] = None if value is None or math.isnan(value) else round(float(value), 6)
            rec[f"{column}_best"] = (row, "cost", column) in best
        records.append(rec)
    return pd.DataFrame(records).to_csv(index=False, lineterminator="\n")


def failed_table(summary: Summary) -> Table | None:
    """The runs that did not finish ok, one row each; None when there are none."""
    if summary.failed.empty:
        return None
    failed = Table(["method", "task", "seed", "error", "run_id"], align="llrll")
    for f in summary.failed.itertuples():
        failed.add(f.row, f"{f.suite}/{f.task}", f.seed, f.error or "", f.run_id)
    return failed


NO_FAILED = "No failed runs."


def failed_markdown(summary: Summary) -> str:
    failed = failed_table(summary)
    return table.to_markdown(failed) if failed else NO_FAILED + "\n"
