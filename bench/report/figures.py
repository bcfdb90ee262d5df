"""The report's figures (matplotlib/seaborn), each saved as PNG and PDF at paper column width.

The trade-off figures are in ``bench/report/tradeoff.py`` and the learning curves in ``bench/report/curves.py``.

1. ``prompt_length``: score and ms/step against the number of prompt tokens (``method_config.num_tokens``) per
   method, from rows that differ in it (``bench run --sweep pt.num_tokens=10,20,50``); no file without a sweep.
2. ``per_task``: the headline test metric per task, a bar per row (mean) with the seed spread (sd) and the seeds.
3. ``gates``: per row, the learned gate weights over the subspaces per task (record field
   ``method_record.gate_weights_best``), averaged over seeds; only when some run recorded them.

Files are saved without timestamps or software tags, so re-running gives byte-identical files.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.report.tables import Summary  # noqa: E402

COLUMN_IN = 3.4  # one column of a two-column paper
PAGE_IN = 7.0  # both columns
STYLE = {
    "font.size": 7,
    "axes.titlesize": 7,
    "axes.labelsize": 7,
    "legend.fontsize": 6,
    "xtick.labelsize": 6,
    "ytick.labelsize": 6,
    "lines.markersize": 4,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.hashsalt": "ptbench",
}


def save(fig, out_dir: Path, name: str) -> list[Path]:
    """``name.png`` and ``name.pdf``, metadata-free so that rebuilding gives the same bytes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    tight = {"bbox_inches": "tight", "pad_inches": 0.03}  # nothing clipped: outside legends, long labels
    fig.savefig(paths[0], dpi=200, metadata={"Software": None}, **tight)
    fig.savefig(paths[1], metadata={"Creator": None, "Producer": None, "CreationDate": None}, **tight)
    plt.close(fig)
    return paths


def styled(fn):
    """Run a figure function under the paper style (small fonts for a 3.4 in column)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def palette(rows: list[str]) -> dict[str, tuple]:
    """One colourblind-safe colour per row label, in the order given."""
    import seaborn as sns

    return dict(zip(rows, sns.color_palette("colorblind", max(len(rows), 1)), strict=False))


def overall_average(summary: Summary, row: str) -> float:
    """Mean over every task column, only when the row has all of them."""
    values = [summary.cells.get((row, s, t)) for s, t in summary.columns]
    return math.nan if any(v is None for v in values) else float(np.mean([v.mean for v in values]))


def _num_tokens(runs: pd.DataFrame, row: str) -> float:
    values = {s.get("method_config.num_tokens") for s in runs.loc[runs["row"] == row, "setting"]}
    values.discard(None)
    return float(values.pop()) if len(values) == 1 else math.nan


def length_points(summary: Summary, runs: pd.DataFrame) -> pd.DataFrame:
    """Per row with one prompt length: method, tokens, the mean score over the method's shared tasks and the
    median ms/step over its runs on them (see ``prompt_length``)."""
    ok = runs[runs["status"] == "ok"]
    points = []
    for row in summary.rows:
        length = _num_tokens(runs, row)
        if not math.isnan(length):
            method = runs.loc[runs["row"] == row, "display"].iloc[0]  # ept[placeholder-v0], not "ept"
            points.append((method, row, length))
    for_method: dict[str, set] = {}
    for method, row, _ in points:
        tasks = set(zip(*(ok.loc[ok["row"] == row, c] for c in ("suite", "task")), strict=True))
        for_method[method] = for_method.get(method, tasks) & tasks
    rows = []
    for method, row, length in points:
        shared = pd.Series(
            [(s, t) in for_method[method] for s, t in zip(ok["suite"], ok["task"], strict=True)],
            index=ok.index,
        )
        part = ok[(ok["row"] == row) & shared]
        score = part.groupby(["suite", "task"])["score"].mean().mean() if not part.empty else math.nan
        rows.append((method, length, score, part["step_ms"].median() if not part.empty else math.nan))
    return pd.DataFrame(rows, columns=["method", "tokens", "score", "step_ms"])


@styled
def prompt_length(summary: Summary, runs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """No files when no method has rows with two or more prompt lengths (an empty panel says nothing).

    A method's rows are compared on the tasks they all have (a sweep on SST-2 beside the grid's l = 20 row on
    SST-2, MRPC and CB is drawn on SST-2 alone): averaging different task sets, or taking the median step over
    tasks of different lengths, would draw the task mix instead of the prompt length."""
    frame = length_points(summary, runs)
    swept = frame.groupby("method")["tokens"].nunique() if not frame.empty else pd.Series(dtype=int)
    if frame.empty or swept.max() < 2:
        return []
    colors = palette(sorted(frame["method"].unique()))
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_IN, 2.2), layout="constrained")
    for ax, column, label in (
        (axes[0], "score", "average over the method's shared tasks"),
        (axes[1], "step_ms", "ms/step"),
    ):
        for method, part in frame.groupby("method"):
            part = part.dropna(subset=[column]).sort_values("tokens")
            ax.plot(part["tokens"], part[column], "o-", color=colors[method], label=method)
        ax.set_xlabel("prompt tokens (num_tokens)")
        ax.set_ylabel(label)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), frameon=False)
    return save(fig, out_dir, "prompt_length")


@styled
def per_task(runs: pd.DataFrame, out_dir: Path) -> list[Path]:
    import seaborn as sns

    ok = runs[(runs["status"] == "ok") & runs["score"].notna()].copy()
    if ok.empty:
        return []  # no successful run: no figure rather than an empty panel
    ok["column"] = ok["task"]
    rows = sorted(runs["row"].unique())
    order = list(dict.fromkeys(ok.sort_values(["suite", "task"])["column"]))
    width = min(PAGE_IN, max(COLUMN_IN, 0.9 * max(len(order), 1) + 0.6))
    fig, ax = plt.subplots(figsize=(width, 2.6), layout="constrained")
    colors = palette(rows)
    sns.barplot(
        data=ok, x="column", y="score", hue="row", order=order, hue_order=rows, errorbar="sd",
        palette=colors, ax=ax, capsize=0.1, err_kws={"linewidth": 0.8},
    )  # fmt: skip
    sns.stripplot(
        data=ok, x="column", y="score", hue="row", order=order, hue_order=rows, dodge=True,
        palette=colors, ax=ax, size=2.5, jitter=False, color="k", edgecolor="k", linewidth=0.3, legend=False,
    )  # fmt: skip
    handles, labels = ax.get_legend_handles_labels()
    ax.get_legend().remove()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(rows), 3), frameon=False)
    ax.set_xlabel("")
    ax.set_ylabel("test score (headline metric)")
    return save(fig, out_dir, "per_task")


def gate_table(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per row: tasks x subspaces of the recorded gate weights (mean over seeds); rows without any omitted."""
    out: dict[str, pd.DataFrame] = {}
    ok = runs[runs["status"] == "ok"]
    for row, part in ok.groupby("row"):
        weights: dict[str, list[np.ndarray]] = {}
        for _, run in part.iterrows():
            gates = (run["record"].get("method_record") or {}).get("gate_weights_best")
            if gates is None:
                continue
            array = np.asarray(gates, dtype=float)
            array = array.reshape(-1, array.shape[-1]).mean(axis=0)  # average over any token/batch axes
            weights.setdefault(f"{run['suite']}/{run['task']}", []).append(array)
        if weights:
            table = {task: np.mean(np.stack(ws), axis=0) for task, ws in sorted(weights.items())}
            frame = pd.DataFrame(table).T
            frame.columns = [f"space {i + 1}" for i in range(frame.shape[1])]
            out[row] = frame
    return out


@styled
def gates(runs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """The gate-weight heatmaps; no files when no run recorded gate weights."""
    import seaborn as sns

    tables = gate_table(runs)
    if not tables:
        return []
    fig, axes = plt.subplots(
        1, len(tables), figsize=(min(PAGE_IN, COLUMN_IN * len(tables)), 2.2), squeeze=False
    )
    for ax, (row, table) in zip(axes[0], tables.items(), strict=True):
        sns.heatmap(table, annot=True, fmt=".2f", cmap="viridis", vmin=0, ax=ax, annot_kws={"fontsize": 5})
        ax.set_title(f"{row}: gate weights (mean over seeds)")
    return save(fig, out_dir, "gates")
