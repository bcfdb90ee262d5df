"""Trade-off figures in the style of EPT's and DePT's Figure 1: suite average against a cost.

- ``tradeoff_params``: average score against trainable parameters (log x).
- ``tradeoff_time``: against training time per run (s); ``tradeoff_memory``: against peak training memory
  (MiB). Runs measured under contention (record key ``contention``) are left out of these two unless
  ``--include-contended``; the caption says how many.

One panel per (suite, backbone) that has at least one row with every task of that suite in the report (the
suite average needs all of them), so there is never an empty panel. Published T5-Base numbers are drawn only on
a panel whose runs are T5 (``load.is_t5``); otherwise they get their own panel, titled as not comparable, with
its own y scale. Labels are placed by adjustText (``bench/report/labels.py``), never by hand. Under each figure
a caption line gives, per panel, the backbone, the tasks averaged, the seeds and the budget (steps x batch).
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.load import is_t5
from bench.report.published import published_average
from bench.report.tables import SUITE_NAMES, Summary, format_count

COSTS = {  # figure -> (x value per run, how rows aggregate it, axis label, log x)
    "tradeoff_params": ("trainable_params", "mean", "trainable parameters (log)", True),
    "tradeoff_time": ("train_time_s", "mean", "training time per run (s)", False),
    "tradeoff_memory": ("peak_mem_bytes", "max", "peak training memory (MiB)", False),
}
TIMED = ("tradeoff_time", "tradeoff_memory")  # figures whose x a contended machine distorts


@dataclass
class Point:
    label: str
    x: float
    y: float
    err: float | None = None
    published: bool = False
    verified: bool = False


@dataclass
class Panel:
    title: str
    points: list[Point] = field(default_factory=list)
    caption: str = ""
    only_published: bool = False


def _row_runs(runs: pd.DataFrame, row: str, suite: str, include_contended: bool, timed: bool) -> pd.DataFrame:
    part = runs[(runs["row"] == row) & (runs["suite"] == suite) & (runs["status"] == "ok")]
    return part if include_contended or not timed else part[~part["contended"].eq(True)]


def panels(
    name: str,
    summary: Summary,
    runs: pd.DataFrame,
    published: pd.DataFrame | None = None,
    include_contended: bool = False,
) -> tuple[list[Panel], tuple[int, int]]:
    """The panels of figure ``name`` and (contended runs left out, runs whose records do not say)."""

    column, how, _, _ = COSTS[name]
    timed = name in TIMED
    out: list[Panel] = []
    left_out = unknown = 0
    backbone = runs.groupby("row")["backbone"].first().to_dict()
    family = runs.groupby("row")["backbone_family"].first().to_dict()
    for suite in dict.fromkeys(s for s, _ in summary.columns):
        tasks = [t for s, t in summary.columns if s == suite]
        rows = [r for r in summary.rows if (r, suite, "avg") in summary.cells]
        t5_panel = False
        for model in sorted({backbone[r] for r in rows}):
            panel = Panel(f"{SUITE_NAMES.get(suite, suite)}, {model}")
            seeds, budgets = set(), set()
            for row in (r for r in rows if backbone[r] == model):
                part = _row_runs(runs, row, suite, include_contended, timed)
                every = _row_runs(runs, row, suite, True, timed)
                unknown += int(every["contended"].isna().sum())
                if timed and not include_contended:
                    left_out += len(every) - len(part)
                x = part[column].agg(how) if not part.empty else math.nan
                if name == "tradeoff_memory":
                    x = x / 2**20
                if x is None or math.isnan(x) or (name == "tradeoff_params" and x <= 0):
                    continue
                stat = summary.cells[(row, suite, "avg")]
                panel.points.append(
                    Point(row, float(x), stat.mean, None if math.isnan(stat.std) else stat.std)
                )
                seeds |= set(stat.seeds) | set(part["seed"])
                budgets |= set(part["budget"])
            if not panel.points:
                continue
            if published is not None and is_t5(model, family.get(panel.points[0].label)):
                panel.points += _published_points(published, published_average(published, suite, tasks))
                t5_panel = True
            panel.caption = (
                f"{panel.title}: average of {', '.join(tasks)} (test, headline metric); seeds "
                f"{', '.join(str(s) for s in sorted(seeds))}; budget {', '.join(sorted(budgets))}"
            )
            out.append(panel)
        if published is not None and name == "tradeoff_params" and not t5_panel and tasks:
            points = _published_points(published, published_average(published, suite, tasks))
            if points:
                ours = sorted({backbone[r] for r in rows}) or ["no backbone"]
                title = f"published, T5-Base — not comparable to the runs on {', '.join(ours)}"
                caption = (
                    f"{SUITE_NAMES.get(suite, suite)} {title}: published averages of {', '.join(tasks)} "
                    "(hollow: unverified, diamond: verified)"
                )
                out.append(Panel(title, points, caption, only_published=True))
    return out, (left_out, unknown)


def _published_points(published: pd.DataFrame, averages: pd.Series) -> list[Point]:
    return [
        Point(
            str(r["method"]),
            float(r["params_n"]),
            float(averages[i]),
            published=True,
            verified=bool(r["verified"]),
        )
        for i, r in published.iterrows()
        if not math.isnan(averages[i])
    ]


def _log_counts(ax, xs: list[float]) -> None:
    """Log x labelled as counts (7.7K, 20K, 1M): ticks at 1, 2, 5 per decade over at most two decades, else at
    each decade, and no minor labels, so tick labels never run into each other."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    span = math.log10(max(xs) / min(xs)) if min(xs) > 0 else 0.0
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if span <= 2 else (1.0,)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: format_count(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def draw(name: str, found: list[Panel], contention: tuple[int, int], include_contended: bool):
    """The figure for ``panels`` (None when there is none) and its caption; labels placed and checked."""
    import matplotlib.pyplot as plt

    from bench.report.figures import COLUMN_IN, PAGE_IN, palette
    from bench.report.labels import place_labels

    if not found:
        return None, ""
    _, _, xlabel, log = COSTS[name]
    ncols = min(len(found), 3)
    nrows = math.ceil(len(found) / ncols)
    width = COLUMN_IN if ncols == 1 else PAGE_IN
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 2.5 * nrows), layout="constrained", squeeze=False)
    for ax in axes.flat[len(found) :]:
        fig.delaxes(ax)  # never an empty panel
    colors = palette(sorted({p.label for panel in found for p in panel.points if not p.published}))
    placed = []
    for ax, panel in zip(axes.flat, found, strict=False):
        texts, xs, ys = [], [], []
        for p in panel.points:
            if p.published:
                marker = "D" if p.verified else "o"
                ax.scatter(p.x, p.y, marker=marker, facecolors="none", edgecolors="0.5", s=14)
            else:
                ax.errorbar(p.x, p.y, yerr=p.err, fmt="o", color=colors[p.label], capsize=2, ms=3.5)
            texts.append(ax.text(p.x, p.y, p.label, fontsize=5, color="0.45" if p.published else "0.1"))
            xs.append(p.x)
            ys.append(p.y)
        if log:
            _log_counts(ax, xs)
        ax.margins(0.2, 0.2)
        ax.set_xlabel(xlabel if not panel.only_published else "parameters as published (log)")
        ax.set_ylabel("average score" if not panel.only_published else "published average")
        ax.set_title(panel.title, fontsize=6.5)
        placed.append((ax, texts, xs, ys))
    caption = "; ".join(p.caption for p in found) + "."
    if name in TIMED:
        left_out, unknown = contention
        caption += (
            f" {left_out} run(s) measured under contention left out (--include-contended keeps them)."
            if not include_contended
            else " Runs measured under contention included (--include-contended)."
        )
        if unknown:
            caption += f" {unknown} run(s) do not record contention (not known, kept)."
    if any(p.published for panel in found for p in panel.points):
        caption += " Grey hollow points: published T5-Base numbers (diamond = verified), not our runs."
    chars = int(width * 72 / (6 * 0.52))
    fig.text(
        0.5,
        0,
        "\n".join(textwrap.wrap(caption, chars, break_on_hyphens=False)),
        ha="center",
        va="top",
        fontsize=6,
    )
    fig.canvas.draw()  # final layout, then frozen so that the labels placed below stay where they are
    fig.set_layout_engine("none")
    for ax, texts, xs, ys in placed:
        place_labels(ax, texts, np.asarray(xs), np.asarray(ys))
    return fig, caption


def tradeoff_figure(
    name: str,
    summary: Summary,
    runs: pd.DataFrame,
    out_dir: Path,
    published: pd.DataFrame | None = None,
    include_contended: bool = False,
) -> tuple[list[Path], str]:
    """Draw and save figure ``name`` (PNG and PDF); ``([], "")`` when no panel has data."""
    import matplotlib.pyplot as plt

    from bench.report.figures import STYLE, save

    with plt.rc_context(STYLE):
        found, contention = panels(
            name, summary, runs, published if name == "tradeoff_params" else None, include_contended
        )
        fig, caption = draw(name, found, contention, include_contended)
        return (save(fig, out_dir, name), caption) if fig is not None else ([], "")
