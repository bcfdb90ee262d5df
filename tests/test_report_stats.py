"""Significance that counts the seeds: seed noise alone gets no mark, a clear difference over 3 seeds gets one,
and one seed per side never gets one (the table says why)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.report.build import ReportOptions, build_report
from bench.report.stats import bootstrap_examples, bootstrap_hierarchical, significance, welch_seeds
from tests.test_report import make_record

N = 200
REFS = ["0", "1"] * (N // 2)


def acc(predicted: list[str], references: list[str]) -> float:
    return 100.0 * float(np.mean([a == b for a, b in zip(predicted, references, strict=True)]))


def predictions(accuracy: float, shift: int = 0) -> list[str]:
    """Right on ``accuracy`` % of the examples (a block starting at ``shift``), wrong on the rest."""
    right = round(N * accuracy / 100)
    correct = np.roll(np.arange(N) < right, shift)
    return [r if ok else ("1" if r == "0" else "0") for r, ok in zip(REFS, correct, strict=True)]


def record(accuracy: float, shift: int = 0, with_predictions: bool = True) -> dict:
    rec = {"metrics": {"headline": {"test": accuracy}}}
    if with_predictions:
        rec["predictions"] = {"test": {"predicted": predictions(accuracy, shift), "reference": REFS}}
    return rec


# Same behaviour, different seed noise: both sides average 70, their seeds spread from 58 to 82.
NOISY_A, NOISY_B = (58.0, 70.0, 82.0), (64.0, 70.0, 76.0)
CLEAR_A, CLEAR_B = (80.0, 81.0, 82.0), (60.0, 61.0, 62.0)


def test_seed_noise_alone_gets_no_mark():
    result, note = significance(acc, [record(a, 7 * i) for i, a in enumerate(NOISY_A)],
                                [record(b, 11 * i) for i, b in enumerate(NOISY_B)], 500)  # fmt: skip
    assert result.unit == "seeds+examples" and result.markable and note == ""
    assert result.delta == pytest.approx(0.0) and result.p > 0.3 and result.low < 0 < result.high
    # over examples alone, two of those seeds look very different: the reason seeds must enter the test
    lucky = bootstrap_examples(acc, [predictions(82.0)], [predictions(64.0)], REFS, 500)
    assert lucky.p < 0.01


def test_clear_consistent_difference_over_three_seeds_gets_a_mark():
    result, _ = significance(acc, [record(a, i) for i, a in enumerate(CLEAR_A)],
                             [record(b, i) for i, b in enumerate(CLEAR_B)], 500)  # fmt: skip
    assert result.delta == pytest.approx(20.0) and result.markable and result.p < 0.01 and result.low > 10


def test_one_seed_per_side_gets_no_mark_and_says_why():
    result, note = significance(acc, [record(82.0)], [record(64.0)], 300)
    assert result.unit == "examples, 1 seed" and not result.markable and result.p < 0.05
    assert note.startswith("fewer than 2 seeds per side (1 vs 1)")
    result, note = significance(acc, [record(82.0, with_predictions=False)], [record(64.0)], 300)
    assert result is None and "fewer than 2 seeds" in note


def test_welch_over_seeds_without_predictions():
    clear, _ = significance(None, [record(a, with_predictions=False) for a in CLEAR_A],
                            [record(b, with_predictions=False) for b in CLEAR_B])  # fmt: skip
    assert clear.unit == "seeds" and clear.p < 0.001 and clear.delta == pytest.approx(20.0)
    noisy = welch_seeds(NOISY_A, NOISY_B)
    assert noisy.p == pytest.approx(1.0) and noisy.low < 0 < noisy.high
    flat = welch_seeds([70.0, 70.0], [60.0, 60.0])
    assert not flat.markable
    with pytest.raises(ValueError, match="2 seeds per side"):
        bootstrap_hierarchical(acc, [predictions(70)], [predictions(60)] * 2, REFS)


def test_report_marks_only_what_counts_the_seeds(tmp_path):
    out = tmp_path / "results"
    for i, seed in enumerate((42, 43, 44)):
        make_record(out, "ept", "rte", seed, CLEAR_A[i], predictions=(predictions(CLEAR_A[i], i), REFS))
        make_record(out, "pt", "rte", seed, CLEAR_B[i], predictions=(predictions(CLEAR_B[i], i), REFS))
        make_record(out, "dept", "mrpc", seed, NOISY_B[i], predictions=(predictions(NOISY_B[i], 5 * i), REFS))
        make_record(out, "ept", "mrpc", seed, NOISY_A[i], predictions=(predictions(NOISY_A[i], 3 * i), REFS))
    make_record(out, "pt", "mrpc", 42, 30.0, predictions=(predictions(30.0), REFS))  # one seed: never marked
    written = build_report(ReportOptions(out, tmp_path / "rep", vs="ept", resamples=300))
    comp = pd.read_csv(written["comparison.csv"]).set_index(["row", "task"])
    assert comp.loc[("pt", "rte"), "p"] < 0.05 and comp.loc[("pt", "rte"), "markable"]
    assert comp.loc[("dept", "mrpc"), "p"] > 0.05 and comp.loc[("dept", "mrpc"), "markable"]
    one = comp.loc[("pt", "mrpc")]
    assert not one["markable"] and one["note"].startswith("fewer than 2 seeds per side (3 vs 1)")
    md = written["results.md"].read_text()
    lines = {line.split(" | ")[0].strip("| "): line for line in md.splitlines() if line.startswith("| ")}
    assert "61.0 ± 1.0 (3)†" in lines["pt"]  # rte: a clear difference over three seeds
    assert "†" not in lines["dept"]  # seed noise only
    assert "30.0 (1)†" not in lines["pt"] and "30.0 (1)" in lines["pt"]  # mrpc: one seed, no mark
    assert "carry no mark whatever their p: fewer than 2 seeds per side" in md
