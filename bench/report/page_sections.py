"""The results page's tables (``docs/results.md``, written by ``scripts/results_page.py``): every method against
the majority class, ptbench against plain PEFT, today's quick recipe against the earlier one, and the SmolLM2
grid. Each section appends its Markdown to ``lines``; every number comes from the records passed in, every
interval from the report's hierarchical bootstrap (``stats.resample_hierarchical``).

Nothing here trains, plans or reads a training split: the caller passes the training targets (for the majority
class) as a function, so this module, like the rest of ``bench report``, imports no training code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bench.report.load import display_name, predicted_and_reference
from bench.report.stats import (
    MetricFn,
    majority_label,
    nan_zero,
    resample_hierarchical,
    same_predictions,
    task_metric,
)
from bench.report.table import Table, to_markdown
from suites import get_task

METHODS = ("pt", "dept", "ept", "dpt", "residual_pt", "lpt", "lora")
TASKS = (("glue", "sst2"), ("glue", "mrpc"), ("superglue", "cb"))
# Tasks the grid runs and the page shows, left out of the verdict on the majority class, with the reason the page
# gives: 200 steps on MiniLM do not learn them distinguishably from it (docs/quick-recipe.md#mrpc).
UNLISTED = {
    "mrpc": "200 steps on MiniLM do not learn MRPC distinguishably from its majority class under either quick "
    "recipe measured (PEFT's: the table below and [the quick recipe](quick-recipe.md#mrpc); the harness's earlier "
    "one: results/quick-2026-12-02/measurement-log.md), "
    "so a verdict here would be about noise",
}
SEEDS = (42, 43, 44)
DECODER_METHODS = ("pt", "dept", "ept")
PLAIN_METHODS = ("pt", "lora")
RESAMPLES = 1_000

Cells = dict[tuple[str, str], list[dict[str, Any]]]  # (task, method) -> records (or plain rows), seed order
TrainTargets = Callable[[str, str, int | None], list[str]]  # (suite, task, max_train) -> training targets


def _metric(suite: str, task_name: str) -> tuple[Any, MetricFn]:

    task = get_task(task_name, suite)
    return task, task_metric(suite, task_name, task.headline_metric)


def _predicted(rec: dict) -> list[str]:
    return predicted_and_reference(rec)[0]


def _references(rec: dict) -> list[str]:
    return predicted_and_reference(rec)[1]


def _headline(rec: dict) -> float:
    return rec["metrics"]["headline"]["test"]


def mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    sd = f" ± {np.std(values, ddof=1):.1f}" if len(values) > 1 else ""
    return f"{np.mean(values):.1f}{sd}"


def _markdown(table: Table) -> list[str]:
    return to_markdown(table).splitlines()


def minilm_section(cells: Cells, lines: list[str], train_targets: TrainTargets) -> list[tuple[str, str]]:
    """Per task: each method's mean ± sd over seeds and its difference from the majority class; returns the
    (task, method) cells of listed tasks (not in ``UNLISTED``) that do not beat it (mean at or below it; STS-B: the
    interval's lower end at or below 0)."""
    failing = []
    for suite, task_name in TASKS:
        task, metric = _metric(suite, task_name)
        recs = [r for m in METHODS for r in cells.get((task_name, m), [])]
        if not recs:
            lines += [f"### {task_name}", "", "No records yet.", ""]
            continue
        references = _references(recs[0])
        majority = majority_label(
            train_targets(suite, task_name, recs[0]["spec"]["train"].get("max_train_samples"))
        )
        constant = [majority] * len(references)
        regression = task.is_regression
        base = (
            "a constant prediction (Pearson undefined: 0)" if regression else f"majority class '{majority}'"
        )
        base_score = 0.0 if regression else metric(constant, references)
        lines += [
            f"### {task_name} ({task.headline_metric}, {len(references)} test rows)",
            "",
            f"Baseline: {base}, {base_score:.1f}.",
            "",
            *([f"Shown, not a listed task: {UNLISTED[task_name]}.", ""] if task_name in UNLISTED else []),
        ]
        table = Table(
            ["method", "seeds", f"test {task.headline_metric} (mean ± sd)", "vs baseline [95% CI]", "p"]
        )
        for method in METHODS:
            runs = cells.get((task_name, method), [])
            if not runs:
                table.add(method, 0, "-", "-", "-")
                continue
            preds = [_predicted(r) for r in runs]
            if regression:  # against 0: bootstrap the Pearson itself
                delta = resample_hierarchical(
                    nan_zero(metric), preds, [["0"] * len(references)], references, RESAMPLES
                )
            else:
                delta = resample_hierarchical(metric, preds, [constant], references, RESAMPLES)
            # Beating the baseline: a mean above it (classification); STS-B: a Pearson clearly above 0 (the
            # interval's lower end). The interval says by how much either way.
            if (delta.low if regression else delta.delta) <= 0 and task_name not in UNLISTED:
                failing.append((task_name, method))
            scores = [_headline(r) for r in runs]
            table.add(display_name(runs, method), len(runs), mean_sd(scores), delta.text(), f"{delta.p:.3f}")
        lines += [*_markdown(table), ""]
    return failing


def incomplete(
    cells: Cells, methods: Sequence[str], tasks: Sequence[tuple[str, str]], prefix: str = ""
) -> list[str]:
    """The (task, method) cells with fewer records than seeds, as ``"<prefix>method on task (n/3)"``: no
    verdict is given while any is missing."""
    return [
        f"{prefix}{m} on {t} ({len(cells.get((t, m), []))}/{len(SEEDS)})"
        for _, t in tasks
        for m in methods
        if len(cells.get((t, m), [])) < len(SEEDS)
    ]


def verdict(missing: list[str], failing: list[tuple[str, str]], passed: str, failed: str) -> str:
    if missing:
        return "No verdict yet: records missing for " + ", ".join(missing) + "."
    if failing:
        return failed + ", ".join(f"{m} on {t}" for t, m in failing) + "."
    return passed


def plain_section(cells: Cells, plain: Cells, lines: list[str]) -> list[tuple[str, str]]:
    """ptbench's quick PT and LoRA against the plain-PEFT runs of the same budget; returns the cells where
    ptbench's mean is below the plain run's."""
    behind = []
    rows: dict[str, int] = {}
    table = Table(
        [
            "task", "method", "ptbench (mean ± sd)", "plain PEFT (mean ± sd)", "ptbench − PEFT [95% CI]",
            "seeds with the same test predictions",
        ]
    )  # fmt: skip
    for suite, task_name in TASKS:
        _, metric = _metric(suite, task_name)
        for method in PLAIN_METHODS:
            ours, theirs = cells.get((task_name, method), []), plain.get((task_name, method), [])
            if not ours or not theirs:
                table.add(task_name, method, "-", "-", "-", "-")
                continue
            references = _references(ours[0])
            rows[task_name] = len(references)
            a = [_predicted(r) for r in ours]
            b = [r["predictions"] for r in theirs if "predictions" in r]
            delta = resample_hierarchical(nan_zero(metric), a, b, references, RESAMPLES) if b else None
            ours_s = [_headline(r) for r in ours]
            theirs_s = [r["test"][r["headline"]] for r in theirs]
            if np.mean(ours_s) < np.mean(theirs_s):
                behind.append((task_name, method))
            table.add(
                task_name, method, mean_sd(ours_s), mean_sd(theirs_s), delta.text() if delta else "-",
                same_predictions(ours, theirs),
            )  # fmt: skip
    lines += [*_markdown(table), ""]
    if rows:
        fewest = min(rows, key=rows.get)
        lines += [
            "Test rows per task: "
            + ", ".join(f"{t} {n}" for t, n in rows.items())
            + f". On {fewest} one test "
            f"row is {100 / rows[fewest]:.1f} points, so a gap of a point or two between the means is under one "
            f"row per seed: whether ptbench is at or above the plain run there is close to a coin flip, and "
            "only the interval says anything.",
            "",
        ]
    return behind


def earlier_section(cells: Cells, earlier: Cells, lines: list[str]) -> None:
    """Each method and task: today's quick recipe against the harness's earlier one, the difference paired over
    seeds' test rows."""
    table = Table(
        [
            "task",
            "method",
            "PEFT's recipe (mean ± sd)",
            "earlier recipe (mean ± sd)",
            "PEFT's − earlier [95% CI]",
            "p",
        ]
    )
    for suite, task_name in TASKS:
        _, metric = _metric(suite, task_name)
        for method in METHODS:
            now, before = cells.get((task_name, method), []), earlier.get((task_name, method), [])
            if not now or not before:
                continue
            references = _references(now[0])
            delta = resample_hierarchical(
                metric, [_predicted(r) for r in now], [_predicted(r) for r in before], references, RESAMPLES
            )
            table.add(
                task_name, method, mean_sd([_headline(r) for r in now]), mean_sd([_headline(r) for r in before]),
                delta.text(), f"{delta.p:.3f}",
            )  # fmt: skip
    lines += [*_markdown(table), ""]


def decoder_section(cells: Cells, lines: list[str]) -> None:
    table = Table(["method", "seeds", "SST-2 test accuracy (mean ± sd)", "training s/run (mean)"])
    for method in DECODER_METHODS:
        runs = cells.get(("sst2", method), [])
        scores = [_headline(r) for r in runs]
        train = f"{np.mean([r['train_time_s'] for r in runs]):.0f}" if runs else "-"
        table.add(display_name(runs, method), len(runs), mean_sd(scores), train)
    lines += [*_markdown(table), ""]
