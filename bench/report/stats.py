"""Significance of a reference setting (``--vs``) against every other setting, per task, counting the seeds.

The tests (documented in docs/reports.md#significance):

- Statistic: ``delta = mean over seeds of score(reference) - mean over seeds of score(other)`` in metric points
  (x100); positive means the reference is better.
- Seeds and test examples (preferred): when every run of both settings stored per-example test predictions
  (record field ``predictions``) on the same test references, a **hierarchical bootstrap**: each resample draws
  the seeds of each setting with replacement (independently: seed 42 of one method has nothing in common with
  seed 42 of another), then test examples with replacement (the *same* indices for both settings: paired over
  examples), and recomputes the task's own metric for every drawn seed (so MCC, F1 and Pearson are handled).
  Seed-to-seed variance thus enters the interval; a bootstrap over examples alone would call a difference
  between two lucky seeds significant.
- Seeds only (no predictions): Welch's t-test on the per-seed scores (``scipy.stats.ttest_ind``,
  ``equal_var=False``), with its 95 % interval.
- Fewer than 2 seeds on either side: no test, no mark; the comparison table says why. (One seed's
  example-level bootstrap is still listed, as ``examples, 1 seed``, but never marks a cell.)
- Interval: the 95 % percentile interval of the resampled deltas (bootstrap) or Welch's interval.
- Bootstrap p-value: two-sided, ``min(1, 2 · min(P*(delta* <= 0), P*(delta* >= 0)))`` with
  ``P*(A) = (#{resamples in A} + 1) / (n + 1)``; identical predictions give p = 1.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.errors import InputError
from bench.report.load import predicted_and_reference
from suites import get_task
from suites.metrics import compute

MetricFn = Callable[[list[str], list[str]], float]


@dataclass
class Bootstrap:
    delta: float
    low: float
    high: float
    p: float
    n: int  # examples or seeds resampled
    unit: str  # "seeds+examples" | "seeds" | "examples, 1 seed" (the last never marks a cell)
    resamples: int
    markable: bool = True  # seed-to-seed variance entered the test (>= 2 seeds per side)

    def text(self) -> str:
        """``+1.2 [-0.3, +2.8]``: the difference and its interval, in metric points."""
        return f"{self.delta:+.1f} [{self.low:+.1f}, {self.high:+.1f}]"


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


def bootstrap_hierarchical(
    metric: MetricFn,
    predictions_ref: Sequence[Sequence[str]],
    predictions_other: Sequence[Sequence[str]],
    references: Sequence[str],
    resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> Bootstrap:
    """Seeds, then examples: ``predictions_ref`` [k_ref seeds][n] and ``predictions_other`` [k_other][n], at
    least 2 seeds per side (so seed-to-seed variance enters the test); see :func:`resample_hierarchical`."""
    if len(predictions_ref) < 2 or len(predictions_other) < 2:
        raise ValueError("a hierarchical bootstrap needs at least 2 seeds per side")
    return resample_hierarchical(
        metric, predictions_ref, predictions_other, references, resamples, seed, alpha
    )


def resample_hierarchical(
    metric: MetricFn,
    predictions_ref: Sequence[Sequence[str]],
    predictions_other: Sequence[Sequence[str]],
    references: Sequence[str],
    resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> Bootstrap:
    """The hierarchical resampling for any seed counts (a constant baseline such as the majority class is one
    "seed"; scripts/results_page.py compares against it).

    Each resample draws k_ref and k_other seeds with replacement (independently), then n example indices
    shared by both sides, and averages the recomputed metric over the drawn seeds of each side. The per-seed
    metric on each resampled index set is computed once per distinct seed."""
    refs = np.asarray(references, dtype=object)
    ref = [np.asarray(p, dtype=object) for p in predictions_ref]
    other = [np.asarray(p, dtype=object) for p in predictions_other]
    n = len(refs)
    if any(len(p) != n for p in ref + other):
        raise ValueError("a hierarchical bootstrap needs predictions for the same test examples")

    def scores(side: list[np.ndarray], index: np.ndarray) -> np.ndarray:
        r = refs[index].tolist()
        return np.array([metric(p[index].tolist(), r) for p in side])

    whole = np.arange(n)
    observed = float(scores(ref, whole).mean() - scores(other, whole).mean())
    rng = np.random.default_rng(seed)
    deltas = np.empty(resamples)
    for b in range(resamples):
        pick_ref = rng.integers(0, len(ref), len(ref))
        pick_other = rng.integers(0, len(other), len(other))
        index = rng.integers(0, n, n)
        deltas[b] = scores(ref, index)[pick_ref].mean() - scores(other, index)[pick_other].mean()
    p, low, high = _p_and_interval(deltas, alpha)
    return Bootstrap(observed, low, high, p, len(ref) + len(other), "seeds+examples", resamples)


def welch_seeds(scores_ref: Sequence[float], scores_other: Sequence[float], alpha: float = 0.05) -> Bootstrap:
    """Welch's t-test on per-seed scores (>= 2 seeds per side); ``n`` is the number of runs, ``resamples`` 0.

    Two sides without any seed-to-seed variance give no t statistic: p = 1 and the interval is the
    difference itself when the means agree, else NaN (reported, never marked)."""
    from scipy import stats as sps  # noqa: PLC0415 - scipy only when a test is computed

    a, b = np.asarray(scores_ref, dtype=float), np.asarray(scores_other, dtype=float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("Welch's test needs at least 2 seeds per side")
    delta = float(a.mean() - b.mean())
    if np.var(a) == 0 and np.var(b) == 0:
        p = 1.0 if delta == 0 else math.nan
        return Bootstrap(delta, delta, delta, p, len(a) + len(b), "seeds", 0, markable=False)
    with warnings.catch_warnings():  # near-equal seeds: scipy warns about precision, the p is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        test = sps.ttest_ind(a, b, equal_var=False)
    interval = test.confidence_interval(1 - alpha)
    return Bootstrap(
        delta, float(interval.low), float(interval.high), float(test.pvalue), len(a) + len(b), "seeds", 0
    )


def task_metric(suite: str, task: str, metric: str) -> MetricFn:
    """The task's ``metric`` alone (a bootstrap calls it thousands of times; the task's other metrics, such as
    F1 through scikit-learn, would cost most of the time)."""

    labels = get_task(task, suite).label_strings()
    return lambda predictions, references: compute([metric], predictions, references, labels)[metric]


def nan_zero(metric: MetricFn) -> MetricFn:
    """The metric with an undefined value (Pearson of a constant) read as 0."""

    def wrapped(predictions: list[str], references: list[str]) -> float:
        value = metric(predictions, references)
        return 0.0 if value is None or not np.isfinite(value) else value

    return wrapped


def majority_label(targets: Sequence[str]) -> str:
    """The most frequent training target (ties: the smallest string), the class a trivial model predicts."""
    values, counts = np.unique(np.asarray(targets, dtype=object).astype(str), return_counts=True)
    return str(values[np.argmax(counts)])


def same_predictions(ours: list[dict], theirs: list[dict]) -> str:
    """``"k of n"``: of the n seeds both sides ran (``theirs``: rows with ``seed`` and a ``predictions`` list),
    the k whose every test prediction is the same."""
    by_seed = {r["seed"]: r.get("predictions") for r in theirs}
    pairs = [
        (predicted_and_reference(r)[0], by_seed[r["spec"]["seed"]])
        for r in ours
        if r["spec"]["seed"] in by_seed
    ]
    return f"{sum(a == b for a, b in pairs)} of {len(pairs)}"


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


def significance(
    metric: MetricFn | None,
    ref: list[dict],
    other: list[dict],
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[Bootstrap | None, str]:
    """The test for one task: ``ref``/``other`` are the records of each side's ok runs (one per seed).
    Returns (result, note); the note says why there is no mark when there is none."""
    pa, pb = [predicted_and_reference(r) for r in ref], [predicted_and_reference(r) for r in other]
    paired = bool(pa) and all(x and x[1] == pa[0][1] for x in pa + pb)
    if len(ref) >= 2 and len(other) >= 2:
        if paired and metric is not None:
            result = bootstrap_hierarchical(
                metric, [x[0] for x in pa], [y[0] for y in pb], pa[0][1], resamples, seed
            )
            return result, ""
        scores = [[r["metrics"]["headline"]["test"] for r in side] for side in (ref, other)]
        result = welch_seeds(*scores)
        return result, "" if result.markable else "no seed-to-seed variance on either side"
    why = f"fewer than 2 seeds per side ({len(ref)} vs {len(other)}): seed-to-seed variance unknown, no mark"
    if paired and metric is not None and len(ref) == len(other) == 1:
        result = bootstrap_examples(metric, [pa[0][0]], [pb[0][0]], pa[0][1], resamples, seed)
        result.unit, result.markable = "examples, 1 seed", False
        return result, why
    return None, why


def compare(runs: pd.DataFrame, reference: str, resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One line per (other row, task): delta, 95 % interval, p, n, unit, markable and a note; blank where no
    test is possible. Each side contributes every seed it ran (the seeds need not be the same)."""
    ok = runs[(runs["status"] == "ok") & runs["score"].notna()]
    out = []
    ref_runs = ok[ok["row"] == reference]
    for (row, suite, task), other in ok[ok["row"] != reference].groupby(["row", "suite", "task"]):
        base = ref_runs[(ref_runs["suite"] == suite) & (ref_runs["task"] == task)]
        line = {"row": row, "suite": suite, "task": task, "vs": reference}
        result, why = None, f"{reference} has no ok run on {task}"
        if not base.empty:
            metric = task_metric(suite, task, base.iloc[0]["metric"])
            result, why = significance(metric, list(base["record"]), list(other["record"]), resamples, seed)
        if result is not None:
            line.update(
                delta=result.delta, ci_low=result.low, ci_high=result.high, p=result.p, n=result.n,
                unit=result.unit, resamples=result.resamples, markable=result.markable, note=why,
            )  # fmt: skip
        else:
            line.update(
                delta=math.nan, ci_low=math.nan, ci_high=math.nan, p=math.nan, n=0, unit="", resamples=0,
                markable=False, note=why,
            )  # fmt: skip
        out.append(line)
    return pd.DataFrame(out)
