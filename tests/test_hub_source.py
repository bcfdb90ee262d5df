"""The default data source, the Hub (``nyu-mll/glue``, ``aps/super_glue``), gives what the original files give.

No Hub access here, so ``tests/hub_layout.py`` builds a local copy of both repositories in their own layout
(per-config Parquet files and a README with ``configs`` and ``dataset_info``) from the files in
``$BENCH_DATA_DIR``, and each task is loaded through its Hub code path (``Task.read(split, None)``:
``datasets.load_dataset(hf_path, hf_config, split=...)``) with ``hf_path`` replaced by the local folder. For
every registered task with data here, every split present must give the same HF-schema rows from both sources,
the ClassLabel names must be the task's label order, and where both original splits exist the ``dept``
train/dev/test splits must be the same examples in the same order (docs/protocol.md).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from suites import all_tasks, load_splits
from suites.task import Task
from tests.hub_layout import GLUE_REPO, SUPERGLUE_REPO, build_hub_layout


@pytest.fixture(scope="module")
def hub(tmp_path_factory, data_dir) -> dict[str, Path]:
    import datasets

    datasets.disable_progress_bars()
    return build_hub_layout(data_dir, tmp_path_factory.mktemp("hub"))


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hf-datasets-cache")


@pytest.fixture(autouse=True)
def _datasets_cache(monkeypatch, hub_cache) -> None:
    """``load_dataset`` prepares Arrow files in its cache; keep them out of the user's home."""
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", hub_cache)


def _present(task: Task, data_dir: Path) -> list[str]:
    """The task's original splits whose local file exists (MRPC train can be rebuilt from the MSR files)."""
    return [s for s in task.split_names if (data_dir / task.local_file(s)).is_file()]


def _from_hub(task: Task, hub: dict[str, Path]) -> Task:
    repo = GLUE_REPO if task.suite == "glue" else SUPERGLUE_REPO
    return dataclasses.replace(task, hf_path=str(hub[repo]))


def _tasks_with_data(data_dir: Path) -> list[Task]:
    return [t for t in all_tasks() if _present(t, data_dir)]


def test_every_task_with_local_data_is_covered(data_dir, hub):
    """The copy holds a config for every registered task with data here (at least the README's tasks)."""
    names = {t.name for t in _tasks_with_data(data_dir)}
    assert {"cola", "sst2", "mrpc", "stsb", "qnli", "rte", "boolq", "cb", "wic", "wsc"} <= names
    for task in _tasks_with_data(data_dir):
        repo = hub[GLUE_REPO if task.suite == "glue" else SUPERGLUE_REPO]
        assert (repo / task.hf_config).is_dir(), f"no Hub config {task.hf_config!r} built for {task.name}"


def test_label_orders_idx_and_test_labels(data_dir, hub):
    """The Hub's ClassLabel names are each task's label order (the digit targets); ``idx`` is int32 and test
    labels are -1, as on the Hub."""
    import datasets

    for task in _tasks_with_data(data_dir):
        loaded = datasets.load_dataset(_from_hub(task, hub).hf_path, task.hf_config)
        for split, dataset in loaded.items():
            label = dataset.features["label"]
            if task.label_names is None:
                assert label == datasets.Value("float32"), (task.name, label)
            else:
                assert label.names == list(task.label_names), (task.name, split, label.names)
            assert dataset.features["idx"] == datasets.Value("int32"), (task.name, split)
            if split == "test":
                assert set(dataset["label"]) == {-1}, (task.name, set(dataset["label"]))


def test_hub_rows_equal_local_rows(data_dir, hub):
    """Every split present: identical HF-schema rows (text fields, label, idx), in the same order."""
    for task in _tasks_with_data(data_dir):
        hub_task = _from_hub(task, hub)
        for split in _present(task, data_dir):
            local, remote = task.read(split, data_dir), hub_task.read(split, None)
            assert remote.notes["hf_dataset"] == f"{hub_task.hf_path}/{task.hf_config}"
            assert len(remote.rows) == len(local.rows), (task.name, split, len(remote.rows), len(local.rows))
            for i, (a, b) in enumerate(zip(remote.rows, local.rows, strict=True)):
                assert a == b, f"{task.name}/{split} row {i}: hub {a} != local {b}"


def test_dept_splits_are_the_same_examples(data_dir, hub):
    """Where train and validation both exist, the protocol's train/dev/test are identical from both sources."""
    compared = 0
    for task in _tasks_with_data(data_dir):
        if len(_present(task, data_dir)) < len(task.split_names):
            continue  # QNLI/BoolQ: no train file here (their validation rows are compared above)
        local, remote = load_splits(task, data_dir), load_splits(_from_hub(task, hub), None)
        assert remote.info["source"] == "hub"
        for part in ("train", "dev", "test"):
            ours, theirs = getattr(local, part), getattr(remote, part)
            assert ours == theirs, f"{task.name}/{part} differs"
            assert [e.fields for e in ours] == [e.fields for e in theirs], f"{task.name}/{part} rows differ"
        compared += 1
    assert compared >= 8  # cola, sst2, mrpc, stsb, rte, cb, wic, wsc
