"""Registry lookups and the facts each task declares (docs/protocol.md#text-formats, docs/protocol.md#splits, docs/protocol.md#metrics, docs/protocol.md#hugging-face-rows)."""

from __future__ import annotations

import pytest

from suites import UnknownNameError, all_tasks, get_task, list_suites, suite_tasks
from suites.registry import UnknownNameError as RegistryUnknownNameError


def test_suites_and_their_tasks() -> None:
    assert list_suites() == ["glue", "superglue"]
    assert suite_tasks("glue") == ["cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte"]
    assert suite_tasks("superglue") == ["multirc", "boolq", "wic", "wsc", "cb"]
    assert [t.name for t in all_tasks()] == suite_tasks("glue") + suite_tasks("superglue")
    assert all(
        get_task(t.name).suite == s for s in list_suites() for t in all_tasks() if t.name in suite_tasks(s)
    )


def test_unknown_task_suggests_the_close_name() -> None:
    with pytest.raises(UnknownNameError) as info:
        get_task("rtee")
    message = str(info.value)
    assert message.startswith("unknown task 'rtee' (did you mean 'rte'?); allowed: cola, sst2, mrpc")
    assert "\n" not in message
    assert isinstance(info.value, ValueError) and UnknownNameError is RegistryUnknownNameError


def test_unknown_names_without_close_match_and_wrong_suite() -> None:
    with pytest.raises(UnknownNameError, match=r"^unknown task 'imagenet'; allowed: cola, "):
        get_task("imagenet")
    with pytest.raises(UnknownNameError, match=r"unknown task 'cb' in suite 'glue'; allowed: cola, sst2"):
        get_task("cb", suite="glue")
    with pytest.raises(UnknownNameError, match=r"unknown suite 'superglu' \(did you mean 'superglue'\?\)"):
        suite_tasks("superglu")
    assert get_task("CB", suite="superglue") is get_task("cb")


EXPECTED_METRICS = {
    # task: (metric_names, headline) — selection metric is the first name (docs/protocol.md#metrics)
    "cola": (("mcc",), "mcc"),
    "sst2": (("accuracy",), "accuracy"),
    "mrpc": (("accuracy", "f1"), "accuracy"),
    "qqp": (("accuracy", "f1"), "accuracy"),
    "stsb": (("pearson", "spearman"), "pearson"),
    "mnli": (("accuracy",), "accuracy"),
    "qnli": (("accuracy",), "accuracy"),
    "rte": (("accuracy",), "accuracy"),
    "multirc": (("f1a",), "f1a"),
    "boolq": (("accuracy",), "accuracy"),
    "wic": (("accuracy",), "accuracy"),
    "wsc": (("accuracy",), "accuracy"),
    "cb": (("f1_multiclass", "accuracy"), "accuracy"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_METRICS))
def test_metric_facts(name: str) -> None:
    task = get_task(name)
    names, headline = EXPECTED_METRICS[name]
    assert task.metric_names == names
    assert task.selection_metric == names[0]
    assert task.headline_metric == headline


def test_split_families_and_hub_ids() -> None:
    families = {t.name: t.split_family for t in all_tasks()}
    assert {n for n, f in families.items() if f == "large"} == {"qqp", "qnli", "sst2"}
    assert families["mnli"] == "mnli"
    assert {t.hf_path for t in all_tasks() if t.suite == "glue"} == {"nyu-mll/glue"}
    assert {t.hf_path for t in all_tasks() if t.suite == "superglue"} == {"aps/super_glue"}
    assert get_task("wsc").hf_config == "wsc.fixed"
    assert get_task("mnli").split_names == ("train", "validation_matched", "validation_mismatched")


def test_label_orders_and_strings() -> None:
    assert get_task("rte").label_names == ("entailment", "not_entailment")
    assert get_task("qnli").label_names == ("entailment", "not_entailment")
    assert get_task("mnli").label_names == ("entailment", "neutral", "contradiction")
    assert get_task("cb").label_names == ("entailment", "contradiction", "neutral")
    assert get_task("cb").label_strings() == ["0", "1", "2"]
    assert not get_task("cb").is_regression and get_task("stsb").is_regression
    stsb = get_task("stsb").label_strings()
    assert len(stsb) == 26 and stsb[:4] == ["0.0", "0.2", "0.4", "0.6"] and stsb[-1] == "5.0"


def test_parse_label_maps_file_values_to_hf_indices() -> None:
    assert get_task("cb").parse_label("neutral") == 2
    assert get_task("mnli").parse_label("contradiction") == 2
    assert get_task("boolq").parse_label(True) == 1 and get_task("boolq").parse_label(False) == 0
    assert get_task("cola").parse_label("1") == 1


def test_stsb_targets_round_to_one_decimal_like_the_lineage() -> None:
    task = get_task("stsb")

    def target(score: str) -> str:
        row = {"sentence1": "a", "sentence2": "b", "label": task.parse_label(score), "idx": 0}
        return task.format(row).target

    assert [target("3.800"), target("5.000"), target("0"), target("2.36")] == ["3.8", "5.0", "0.0", "2.4"]
    # HF stores float32: 0.85 becomes 0.8500000238..., which rounds up (the float64 0.85 would give "0.8")
    assert target("0.850") == "0.9"
