"""Metrics of the ``dept`` protocol (docs/protocol.md#metrics), on generated strings vs target strings, all x100.

Predictions and references are compared after ``strip()``, as the lineage strips decoded text. Each metric
keeps the lineage's treatment of invalid generations (text that is not a label string), which differs by
metric and is stated on each function. scikit-learn and scipy do the arithmetic.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np

MetricFn = Callable[[list[str], list[str], Sequence[str]], float]


def accuracy(predictions: list[str], references: list[str], labels: Sequence[str]) -> float:
    """Exact string match; an invalid prediction is simply wrong."""
    return 100.0 * float(np.mean([p == r for p, r in zip(predictions, references, strict=True)]))


def f1_with_invalid(predictions: list[str], references: list[str], labels: Sequence[str]) -> float:
    """Binary F1 (positive class "1"); a prediction other than "0"/"1" is replaced by the opposite of its
    reference, i.e. counted wrong (the lineage's ``f1_score_with_invalid``)."""
    from sklearn.metrics import f1_score  # noqa: PLC0415 - sklearn only for the metrics that need it; listing tasks stays light

    bad = sorted({r for r in references if r not in ("0", "1")})
    if bad:
        raise ValueError(f"binary F1 needs references '0'/'1', got {', '.join(map(repr, bad[:3]))}")
    gold = [int(r) for r in references]
    pred = [int(p) if p in ("0", "1") else 1 - g for p, g in zip(predictions, gold, strict=True)]
    return 100.0 * float(f1_score(gold, pred, zero_division=0))


def f1_multiclass(predictions: list[str], references: list[str], labels: Sequence[str]) -> float:
    """Macro F1 over the task's classes (CB). An invalid prediction belongs to no class: it is a miss for
    the reference's class and a false positive for none, so it is counted wrong."""
    from sklearn.metrics import f1_score  # noqa: PLC0415 - sklearn only for the metrics that need it; listing tasks stays light

    return 100.0 * float(
        f1_score(references, predictions, labels=list(labels), average="macro", zero_division=0)
    )


def mcc(predictions: list[str], references: list[str], labels: Sequence[str]) -> float:
    """Matthews correlation on the strings (CoLA); an invalid prediction acts as one more class."""
    from sklearn.metrics import matthews_corrcoef  # noqa: PLC0415 - sklearn only for the metrics that need it; listing tasks stays light

    return 100.0 * float(matthews_corrcoef(references, predictions))


def _to_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return -1.0  # the lineage's value for an unparsable prediction


def _correlation(kind: str, predictions: list[str], references: list[str]) -> float:
    from scipy import stats  # noqa: PLC0415 - scipy only for the correlation metrics; listing tasks stays light

    if len(references) < 2:
        return 0.0  # undefined, treated like the NaN of a constant prediction
    fn = stats.pearsonr if kind == "pearson" else stats.spearmanr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input warns and gives NaN, handled below
        value = float(fn([_to_float(r) for r in references], [_to_float(p) for p in predictions])[0])
    return 0.0 if math.isnan(value) else 100.0 * value


def pearson(predictions: list[str], references: list[str], labels: Sequence[str]) -> float:
    """Pearson r on ``float(text)``; unparsable text -> -1.0; NaN (constant predictions) -> 0 (STS-B)."""
    return _correlation("pearson", predictions, references)


def spearman(predictions: list[str], references: list[str], labels: Sequence[str]) -> float:
    """Spearman rho, with the same parsing and NaN rule as ``pearson``."""
    return _correlation("spearman", predictions, references)


METRICS: dict[str, MetricFn] = {
    "accuracy": accuracy,
    "f1": f1_with_invalid,
    "f1_multiclass": f1_multiclass,
    "mcc": mcc,
    "pearson": pearson,
    "spearman": spearman,
    "f1a": f1_with_invalid,  # MultiRC: binary F1 over all answer rows (question-level EM is not meaningful)
}


def compute(
    names: Sequence[str], predictions: list[str], references: list[str], labels: Sequence[str]
) -> dict[str, float]:
    """``{name: value}`` for each metric in ``names``; ``labels`` are the task's target strings."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        raise ValueError("no predictions to score")
    predictions = [p.strip() for p in predictions]
    references = [r.strip() for r in references]
    return {name: METRICS[name](predictions, references, labels) for name in names}
