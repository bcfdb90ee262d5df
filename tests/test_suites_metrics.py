"""Metrics (docs/protocol.md#metrics) on vectors whose values are worked out by hand in each test."""

from __future__ import annotations

import math

import pytest

from suites import get_task


def test_accuracy_strips_and_matches_exactly() -> None:
    scores = get_task("rte").compute_metrics([" 1 ", "0\n", "1", "yes"], ["1", "1", "1", "0"])
    assert scores == {"accuracy": pytest.approx(100 * 2 / 4)}


def test_f1_counts_invalid_predictions_as_the_opposite_of_gold() -> None:
    references = ["1", "1", "0", "0", "1", "0"]
    predictions = ["1", "x", "0", "1", "1", "?"]
    # invalid -> opposite of gold: "x" (gold 1) -> 0 is a false negative, "?" (gold 0) -> 1 a false positive
    tp, fp, fn = 2, 2, 1  # tp: rows 0, 4; fp: rows 3, 5; fn: row 1
    expected_f1 = 100 * 2 * tp / (2 * tp + fp + fn)  # 4/7
    scores = get_task("mrpc").compute_metrics(predictions, references)
    assert list(scores) == ["accuracy", "f1"]
    assert scores["f1"] == pytest.approx(expected_f1)
    assert scores["accuracy"] == pytest.approx(100 * 3 / 6)
    assert get_task("qqp").compute_metrics(predictions, references)["f1"] == pytest.approx(expected_f1)
    assert get_task("multirc").compute_metrics(predictions, references) == {"f1a": pytest.approx(expected_f1)}


def test_mcc() -> None:
    references = ["1", "1", "1", "0", "0", "0"]
    predictions = ["1", "1", "0", "0", "0", "1"]
    tp, tn, fp, fn = 2, 2, 1, 1
    expected = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))  # 1/3
    assert get_task("cola").compute_metrics(predictions, references) == {"mcc": pytest.approx(100 * expected)}


def test_pearson_spearman_with_an_unparsable_prediction() -> None:
    references = ["1.0", "2.0", "3.0", "4.0"]
    predictions = ["1.0", "2.0", "abc", "4.0"]  # "abc" -> -1.0
    # x = 1,2,3,4 (mean 2.5); y = 1,2,-1,4 (mean 1.5): sum dx*dy = 3, sum dx^2 = 5, sum dy^2 = 13
    expected_pearson = 3 / math.sqrt(5 * 13)
    # ranks of y: 2,3,1,4; rank differences -1,-1,2,0: rho = 1 - 6*6 / (4*15)
    expected_spearman = 1 - 6 * 6 / (4 * (4**2 - 1))
    scores = get_task("stsb").compute_metrics(predictions, references)
    assert list(scores) == ["pearson", "spearman"]
    assert scores["pearson"] == pytest.approx(100 * expected_pearson)
    assert scores["spearman"] == pytest.approx(100 * expected_spearman)


def test_constant_predictions_give_zero_correlation() -> None:
    scores = get_task("stsb").compute_metrics(["2.0", "2.0", "2.0"], ["1.0", "2.5", "4.0"])
    assert scores == {"pearson": 0.0, "spearman": 0.0}


def test_cb_macro_f1_counts_invalid_predictions_wrong() -> None:
    references = ["0", "0", "1", "2", "1", "0"]
    predictions = ["0", "1", "1", "2", "x", "0"]
    f1_class0 = 2 * 2 / (2 * 2 + 0 + 1)  # tp rows 0, 5; fn row 1
    f1_class1 = 2 * 1 / (2 * 1 + 1 + 1)  # tp row 2; fp row 1; fn row 4 (the invalid "x")
    f1_class2 = 1.0
    scores = get_task("cb").compute_metrics(predictions, references)
    assert list(scores) == ["f1_multiclass", "accuracy"]
    assert scores["f1_multiclass"] == pytest.approx(100 * (f1_class0 + f1_class1 + f1_class2) / 3)
    assert scores["accuracy"] == pytest.approx(100 * 4 / 6)


def test_metric_input_errors() -> None:
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        get_task("rte").compute_metrics(["0", "1"], ["0"])
    with pytest.raises(ValueError, match="no predictions"):
        get_task("rte").compute_metrics([], [])
