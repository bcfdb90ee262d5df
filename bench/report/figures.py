"""The report's figures (matplotlib/seaborn), each saved as PNG and PDF at paper column width.

1. ``tradeoff_params``: suite average against trainable parameters (log x), GLUE and SuperGLUE panels (EPT's
   Figure 1 layout); with ``--with-published`` the published T5-Base rows are drawn beside ours, hollow and grey,
   averaged over the same tasks the report shows.
2. ``tradeoff_time``: average over all task columns against training time per run and against ms/step, with
   peak memory as marker size.
3. ``prompt_length``: score and ms/step against the number of prompt tokens (``method_config.num_tokens``) per
   method, from rows that differ in it (``bench run --sweep pt.num_tokens=10,20,50``).
4. ``per_task``: the headline test metric per task, a bar per row (mean) with the seed spread (sd) and the seeds.
5. ``gates``: per row, the learned gate weights over the subspaces per task (record field
   ``method_record.gate_weights_best``), averaged over seeds; only when some run recorded them.

Files are saved without timestamps or software tags, so re-running gives byte-identical files.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.report.tables import SUITE_NAMES, Summary  # noqa: E402

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
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def _palette(rows: list[str]) -> dict[str, tuple]:
    import seaborn as sns

    return dict(zip(rows, sns.color_palette("colorblind", max(len(rows), 1)), strict=False))


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=6, color="0.4")


def _overall_average(summary: Summary, row: str) -> float:
    """Mean over every task column, only when the row has all of them."""
    values = [summary.cells.get((row, s, t)) for s, t in summary.columns]
    return math.nan if any(v is None for v in values) else float(np.mean([v.mean for v in values]))


@styled
def tradeoff_params(summary: Summary, out_dir: Path, published: pd.DataFrame | None = None) -> list[Path]:
    from bench.report.published import published_average

    colors = _palette(summary.rows)
    suites = ["glue", "superglue"]
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_IN, 2.6), layout="constrained")
    for ax, suite in zip(axes, suites, strict=True):
        tasks = [t for s, t in summary.columns if s == suite]
        drawn = 0
        for row in summary.rows:
            stat, x = summary.cells.get((row, suite, "avg")), summary.costs.at[row, "trainable_params"]
            if stat is None or not x or math.isnan(x):
                continue
            err = None if math.isnan(stat.std) else stat.std
            ax.errorbar(x, stat.mean, yerr=err, fmt="o", color=colors[row], label=row, capsize=2)
            ax.annotate(row, (x, stat.mean), textcoords="offset points", xytext=(4, 3), fontsize=5)
            drawn += 1
        if published is not None and tasks:
            averages = published_average(published, suite, tasks)
            for i, r in published.iterrows():
                if math.isnan(averages[i]):
                    continue
                marker = "D" if r["verified"] else "o"
                ax.scatter(r["params_n"], averages[i], marker=marker, facecolors="none", edgecolors="0.5")
                ax.annotate(
                    r["method"],
                    (r["params_n"], averages[i]),
                    textcoords="offset points",
                    xytext=(3, -5),
                    fontsize=4.5,
                    color="0.45",
                )
                drawn += 1
        if not drawn:
            _empty(
                ax,
                f"no row has every {SUITE_NAMES[suite]} task of this report"
                if tasks
                else f"no {SUITE_NAMES[suite]} task in these records",
            )
        else:
            ax.set_xscale("log")
        ax.set_xlabel("trainable parameters (log)")
        ax.set_ylabel(f"{SUITE_NAMES[suite]} average ({', '.join(tasks) or 'no tasks'})")
        ax.set_title(SUITE_NAMES[suite])
    if published is not None:
        from matplotlib.lines import Line2D

        handles = [
            Line2D([], [], marker="o", ls="", color="C0", label="our runs (mean ± sd over seeds)"),
            Line2D([], [], marker="o", ls="", mfc="none", mec="0.5", label="published, T5-Base (unverified)"),
            Line2D([], [], marker="D", ls="", mfc="none", mec="0.5", label="published, T5-Base (verified)"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False)
    return save(fig, out_dir, "tradeoff_params")


@styled
def tradeoff_time(summary: Summary, out_dir: Path) -> list[Path]:
    colors = _palette(summary.rows)
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_IN, 2.4), layout="constrained")
    memory = summary.costs["peak_mem_mib"].dropna()
    top = memory.max() if not memory.empty else 1.0
    for ax, column, label in (
        (axes[0], "train_time_s", "training time per run (s)"),
        (axes[1], "step_ms", "median ms per optimiser step"),
    ):
        drawn = 0
        for row in summary.rows:
            y, x = _overall_average(summary, row), summary.costs.at[row, column]
            if math.isnan(y) or x is None or math.isnan(x):
                continue
            mem = summary.costs.at[row, "peak_mem_mib"]
            size = 20 + 180 * (mem / top if mem and not math.isnan(mem) else 0)
            ax.scatter(x, y, s=size, color=colors[row], alpha=0.7, label=row, edgecolors="k", linewidths=0.3)
            ax.annotate(row, (x, y), textcoords="offset points", xytext=(4, 3), fontsize=5)
            drawn += 1
        if not drawn:
            _empty(ax, "no row has every task of this report")
        ax.set_xlabel(label)
        ax.set_ylabel("average over the table's tasks")
    axes[1].set_title(f"marker size: peak memory ({summary.mem_kind}, max {top:.0f} MiB)", fontsize=6)
    return save(fig, out_dir, "tradeoff_time")


def _num_tokens(runs: pd.DataFrame, row: str) -> float:
    values = {s.get("method_config.num_tokens") for s in runs.loc[runs["row"] == row, "setting"]}
    values.discard(None)
    return float(values.pop()) if len(values) == 1 else math.nan


@styled
def prompt_length(summary: Summary, runs: pd.DataFrame, out_dir: Path) -> list[Path]:
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_IN, 2.2), layout="constrained")
    points = []
    for row in summary.rows:
        length = _num_tokens(runs, row)
        if not math.isnan(length):
            method = runs.loc[runs["row"] == row, "display"].iloc[0]  # ept[placeholder-v0], not "ept"
            points.append((method, length, _overall_average(summary, row), summary.costs.at[row, "step_ms"]))
    frame = pd.DataFrame(points, columns=["method", "tokens", "score", "step_ms"])
    swept = frame.groupby("method")["tokens"].nunique() if not frame.empty else pd.Series(dtype=int)
    colors = _palette(sorted(frame["method"].unique()) if not frame.empty else [])
    for ax, column, label in (
        (axes[0], "score", "average over the table's tasks"),
        (axes[1], "step_ms", "ms/step"),
    ):
        for method, part in frame.groupby("method"):
            part = part.dropna(subset=[column]).sort_values("tokens")
            ax.plot(part["tokens"], part[column], "o-", color=colors[method], label=method)
        if frame.empty:
            _empty(ax, "no method with a num_tokens field")
        elif swept.max() < 2:
            _empty(ax, "no prompt-length sweep in these records\n(bench run --sweep pt.num_tokens=10,20,50)")
        ax.set_xlabel("prompt tokens (num_tokens)")
        ax.set_ylabel(label)
        if not frame.empty:
            ax.legend()
    return save(fig, out_dir, "prompt_length")


@styled
def per_task(runs: pd.DataFrame, out_dir: Path) -> list[Path]:
    import seaborn as sns

    ok = runs[(runs["status"] == "ok") & runs["score"].notna()].copy()
    ok["column"] = ok["task"]
    rows = sorted(runs["row"].unique())
    order = list(dict.fromkeys(ok.sort_values(["suite", "task"])["column"]))
    width = min(PAGE_IN, max(COLUMN_IN, 0.9 * max(len(order), 1) + 0.6))
    fig, ax = plt.subplots(figsize=(width, 2.6), layout="constrained")
    if ok.empty:
        _empty(ax, "no successful runs")
    else:
        palette = _palette(rows)
        sns.barplot(
            data=ok, x="column", y="score", hue="row", order=order, hue_order=rows, errorbar="sd",
            palette=palette, ax=ax, capsize=0.1, err_kws={"linewidth": 0.8},
        )  # fmt: skip
        sns.stripplot(
            data=ok, x="column", y="score", hue="row", order=order, hue_order=rows, dodge=True,
            palette=palette, ax=ax, size=2.5, jitter=False, color="k", edgecolor="k", linewidth=0.3, legend=False,
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
