"""Paired bootstrap between a reference setting (``--vs``) and every other setting, per task.

The test (documented in docs/reports.md#the-bootstrap):

- Statistic: ``delta = score(reference) - score(other)`` in metric points (x100), averaged over the seeds both
  settings ran; positive means the reference is better.
- Over test examples (preferred): when both settings stored per-example test predictions (record field
  ``predictions``) for the same seeds and the same test references, test examples are resampled with
  replacement, ``n`` resamples (default 1,000) from ``numpy.random.default_rng(seed)`` (default 0); the *same*
  indices are applied to both settings and every seed (paired), and the task's own metric is recomputed on
  each resample (so MCC, F1 and Pearson are bootstrapped correctly, not only accuracy).
- Over seeds (fallback): the per-seed score differences of the common seeds are resampled with replacement;
  needs at least 2 common seeds (with few seeds the interval is coarse; the table says which unit was used).
- Interval: the 95 % percentile interval of the resampled deltas.
- p-value: two-sided percentile-bootstrap p, ``min(1, 2 · min(P*(delta* <= 0), P*(delta* >= 0)))`` with
  ``P*(A) = (#{resamples in A} + 1) / (n + 1)``; identical predictions give p = 1, a reference that wins on
  every resample gives p = 2 / (n + 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.errors import InputError

MetricFn = Callable[[list[str], list[str]], float]


@dataclass
class Bootstrap:
    delta: float
    low: float
    high: float
    p: float
    n: int  # examples or seeds resampled
    unit: str  # "examples" | "seeds"
    resamples: int


def _p_and_interval(deltas: np.ndarray, alpha: float) -> tuple[float, float, float]:
    b = len(deltas)
    below = (np.sum(deltas <= 0) + 1) / (b + 1)
    above = (np.sum(deltas >= 0) + 1) / (b + 1)
    p = float(min(1.0, 2 * min(below, above)))
    low, high = np.quantile(deltas, [alpha / 2, 1 - alpha / 2])
    return p, float(low), float(high)


def bootstrap_examples(
    metric: MetricFn,
    predictions_ref: Sequence[Sequence[str]],
    predictions_other: Sequence[Sequence[str]],
    references: Sequence[str],
    resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> Bootstrap:
    """Paired bootstrap over test examples; ``predictions_*[k]`` are seed k's predictions (same seed order)."""
    refs = np.asarray(references, dtype=object)
    ref = [np.asarray(p, dtype=object) for p in predictions_ref]
    other = [np.asarray(p, dtype=object) for p in predictions_other]
    n = len(refs)
    if not ref or len(ref) != len(other) or any(len(p) != n for p in ref + other):
        raise ValueError("paired bootstrap needs equal-length predictions for the same seeds")

    def delta(index: np.ndarray) -> float:
        r = refs[index].tolist()
        return float(
            np.mean(
                [
                    metric(a[index].tolist(), r) - metric(b[index].tolist(), r)
                    for a, b in zip(ref, other, strict=True)
                ]
            )
        )

    rng = np.random.default_rng(seed)
    observed = delta(np.arange(n))
    deltas = np.array([delta(rng.integers(0, n, n)) for _ in range(resamples)])
    p, low, high = _p_and_interval(deltas, alpha)
    return Bootstrap(observed, low, high, p, n, "examples", resamples)


def bootstrap_seeds(
    scores_ref: Sequence[float],
    scores_other: Sequence[float],
    resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> Bootstrap:
    """Paired bootstrap over seeds: resample the per-seed differences (same seed order in both lists)."""
    diffs = np.asarray(scores_ref, dtype=float) - np.asarray(scores_other, dtype=float)
    if len(diffs) < 2:
        raise ValueError("a bootstrap over seeds needs at least 2 common seeds")
    rng = np.random.default_rng(seed)
    deltas = diffs[rng.integers(0, len(diffs), (resamples, len(diffs)))].mean(axis=1)
    p, low, high = _p_and_interval(deltas, alpha)
    return Bootstrap(float(diffs.mean()), low, high, p, len(diffs), "seeds", resamples)


def _task_metric(suite: str, task: str, metric: str) -> MetricFn:
    from suites import get_task
    from suites.metrics import compute

    labels = get_task(task, suite).label_strings()
    return lambda predictions, references: compute([metric], predictions, references, labels)[metric]


def _predictions(record: dict) -> tuple[list[str], list[str]] | None:
    test = (record.get("predictions") or {}).get("test") or {}
    predicted, reference = test.get("predicted"), test.get("reference")
    return (predicted, reference) if predicted and reference else None


def resolve_reference(runs: pd.DataFrame, vs: str) -> str:
    """The row label ``--vs`` names: an exact label, or a method name with exactly one row."""
    rows = sorted(runs["row"].unique())
    if vs in rows:
        return vs
    matches = sorted(runs.loc[runs["method"] == vs, "row"].unique())
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise InputError(f"--vs {vs!r} names no method or row of these records; allowed: {', '.join(rows)}")
    raise InputError(f"--vs {vs!r} has {len(matches)} rows; name one of: {'; '.join(matches)}")


def compare(runs: pd.DataFrame, reference: str, resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One line per (other row, task): delta, 95 % interval, p, n and unit; blank where no test is possible."""
    ok = runs[(runs["status"] == "ok") & runs["score"].notna()]
    out = []
    ref_runs = ok[ok["row"] == reference]
    for (row, suite, task), other in ok[ok["row"] != reference].groupby(["row", "suite", "task"]):
        base = ref_runs[(ref_runs["suite"] == suite) & (ref_runs["task"] == task)]
        seeds = sorted(set(base["seed"]) & set(other["seed"]))
        line = {"row": row, "suite": suite, "task": task, "vs": reference}
        result, why = None, ""
        if seeds:
            a = [base[base["seed"] == s].iloc[0] for s in seeds]
            b = [other[other["seed"] == s].iloc[0] for s in seeds]
            pa, pb = [_predictions(r["record"]) for r in a], [_predictions(r["record"]) for r in b]
            paired = all(x and y and x[1] == y[1] == pa[0][1] for x, y in zip(pa, pb, strict=True))
            if paired:
                metric = _task_metric(suite, task, a[0]["metric"])
                result = bootstrap_examples(
                    metric, [x[0] for x in pa], [y[0] for y in pb], pa[0][1], resamples, seed
                )
            elif len(seeds) >= 2:
                result = bootstrap_seeds([r["score"] for r in a], [r["score"] for r in b], resamples, seed)
            else:
                why = "1 common seed, no per-example predictions"
        else:
            why = "no common seed"
        if result is not None:
            line.update(
                delta=result.delta, ci_low=result.low, ci_high=result.high, p=result.p, n=result.n,
                unit=result.unit, resamples=result.resamples, note="",
            )  # fmt: skip
        else:
            line.update(
                delta=math.nan,
                ci_low=math.nan,
                ci_high=math.nan,
                p=math.nan,
                n=0,
                unit="",
                resamples=0,
                note=why,
            )
        out.append(line)
    return pd.DataFrame(out)
