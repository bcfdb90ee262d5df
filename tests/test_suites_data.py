"""Loaders, formats and the dept split protocol on the real GLUE/SuperGLUE files (docs/protocol.md#text-formats, docs/protocol.md#splits, docs/protocol.md#data-files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from suites import TaskDataError, UnknownNameError, get_task, load_splits


@pytest.fixture(scope="module")
def data_dir() -> Path:
    path = Path(
        os.environ.get("BENCH_DATA_DIR") or Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
    if not path.is_dir():
        pytest.fail(f"no data at {path}: set BENCH_DATA_DIR or clone with ../shared beside the repo")
    return path


# ---- split sizes (docs/protocol.md#splits table) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "train", "dev", "test"),
    [
        ("rte", 2490, 138, 139),
        ("cb", 250, 28, 28),
        ("cola", 8551, 521, 522),
        ("mrpc", 3668, 204, 204),
        ("stsb", 5749, 750, 750),
        ("wic", 5428, 319, 319),
        ("wsc", 554, 52, 52),
        ("sst2", 66349, 1000, 872),
    ],
)
def test_split_sizes_on_real_data(data_dir: Path, task: str, train: int, dev: int, test: int) -> None:
    splits = load_splits(get_task(task), data_dir)
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (train, dev, test)
    assert splits.info["sizes"] == {"train": train, "dev": dev, "test": test}
    assert splits.info["protocol"] == "dept" and splits.info["seed"] == 42
    assert splits.info["malformed_rows"] == 0
    assert splits.info["source"] == str(data_dir.resolve())
    assert all(len(sha) == 64 for sha in splits.info["files"].values())


def test_small_split_is_the_lineage_permutation_of_validation(data_dir: Path) -> None:
    task = get_task("rte")
    validation = task.load_rows("validation", data_dir)
    generator = torch.Generator()
    generator.manual_seed(42)
    order = torch.randperm(len(validation), generator=generator).tolist()
    splits = load_splits(task, data_dir, seed=42)
    assert [e.fields["idx"] for e in splits.dev] == [validation[i]["idx"] for i in order[:138]]
    assert [e.fields["idx"] for e in splits.test] == [validation[i]["idx"] for i in order[138:]]
    assert [e.fields["idx"] for e in splits.train] == list(range(2490))  # full train, file order


def test_large_split_takes_dev_from_shuffled_train(data_dir: Path) -> None:
    task = get_task("sst2")
    splits = load_splits(task, data_dir, seed=42)
    generator = torch.Generator()
    generator.manual_seed(42)
    order = torch.randperm(67349, generator=generator).tolist()
    assert [e.fields["idx"] for e in splits.dev] == order[:1000]
    assert [e.fields["idx"] for e in splits.train[:50]] == order[1000:1050]  # the shuffled remainder
    assert [e.fields["idx"] for e in splits.test] == list(range(872))  # full validation, file order
    assert not {e.fields["idx"] for e in splits.dev} & {e.fields["idx"] for e in splits.train}


def test_same_seed_same_split_other_seed_different(data_dir: Path) -> None:
    task = get_task("cb")
    first, again, other = (load_splits(task, data_dir, seed=s) for s in (42, 42, 43))
    assert [e.source for e in first.dev] == [e.source for e in again.dev]
    assert [e.source for e in first.test] == [e.source for e in again.test]
    assert [e.source for e in first.dev] != [e.source for e in other.dev]
    assert sorted(e.source for e in first.dev + first.test) == sorted(
        e.source for e in other.dev + other.test
    )
    assert other.info["seed"] == 43


# ---- labels and formats (docs/protocol.md#text-formats, docs/protocol.md#hugging-face-rows) ----------------------------------------------------------


def test_rte_string_labels_and_format(data_dir: Path) -> None:
    task = get_task("rte")
    rows = task.load_rows("train", data_dir)
    first = task.format(rows[0])
    assert first.source == (
        "sentence1: No Weapons of Mass Destruction Found in Iraq Yet. "
        "sentence2: Weapons of Mass Destruction Found in Iraq."
    )
    assert (first.target, first.label, rows[0]["idx"]) == ("1", 1, 0)  # not_entailment -> 1
    assert (rows[1]["label"], task.format(rows[1]).target) == (0, "0")  # entailment -> 0
    assert sorted({r["label"] for r in rows}) == [0, 1]
    assert sum(r["label"] == 0 for r in rows) == 1249  # entailment count in the README


def test_qnli_string_labels(data_dir: Path) -> None:
    rows = get_task("qnli").load_rows("validation", data_dir)
    assert len(rows) == 5463
    assert rows[0]["label"] == 0 and rows[1]["label"] == 1  # entailment, not_entailment
    assert rows[0]["question"] == "What came into force after the new constitution was herald?"


def test_cb_label_order(data_dir: Path) -> None:
    task = get_task("cb")
    val = task.load_rows("validation", data_dir)
    assert [val[0]["label"], val[1]["label"]] == [1, 2]  # contradiction, neutral
    assert task.load_rows("train", data_dir)[0]["label"] == 0  # entailment
    counts = [sum(r["label"] == k for r in val) for k in range(3)]
    assert counts == [23, 28, 5]  # entailment 23, contradiction 28, neutral 5 (data README)
    assert task.format(val[0]).source.startswith("premise: Valence the void-brain")


def test_cola_without_header_and_final_newline(data_dir: Path) -> None:
    task = get_task("cola")
    train = task.load_rows("train", data_dir)
    assert train[0] == {
        "sentence": "Our friends won't buy this analysis, let alone the next one we propose.",
        "label": 1,
        "idx": 0,
    }
    dev = task.load_rows("validation", data_dir)
    assert len(dev) == 1043
    assert dev[-1]["sentence"] == "John talked to Bill about himself."  # the line without a newline
    assert task.format(dev[-1]).source == "sentence: John talked to Bill about himself."


def test_mrpc_bom_header_and_dev(data_dir: Path) -> None:
    task = get_task("mrpc")
    dev = task.load_rows("validation", data_dir)
    assert len(dev) == 408
    assert dev[0]["label"] == 1
    assert dev[0]["sentence1"].startswith("He said the foodservice pie business")


def test_mrpc_train_rebuilt_from_msr(data_dir: Path) -> None:
    rowset = get_task("mrpc").read("train", data_dir)
    assert len(rowset.rows) == 3668
    assert "2750203/2750153" in rowset.notes["mrpc_train"]
    assert rowset.rows[91]["sentence1"].startswith("Officials at Brandeis said")  # at its MSR position
    assert [r["idx"] for r in rowset.rows] == list(range(3668))
    assert set(rowset.files) == {
        "glue/MRPC/train.tsv",
        "glue/MRPC/msr_paraphrase_train.txt",
        "glue/MRPC/dev_ids.tsv",
    }


def test_mrpc_train_rebuilt_when_train_tsv_missing(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "glue" / "MRPC"
    folder.mkdir(parents=True)
    for name in ("msr_paraphrase_train.txt", "dev_ids.tsv"):
        (folder / name).symlink_to(data_dir / "glue" / "MRPC" / name)
    rowset = get_task("mrpc").read("train", tmp_path)
    assert len(rowset.rows) == 3668
    assert "train.tsv is missing" in rowset.notes["mrpc_train"]


def test_stsb_float_labels_and_rounded_targets(data_dir: Path) -> None:
    task = get_task("stsb")
    rows = task.load_rows("train", data_dir)
    assert (rows[0]["label"], task.format(rows[0]).target) == (5.0, "5.0")  # "5.000"
    assert task.format(rows[1]).target == "3.8"  # "3.800"
    assert task.format(rows[1]).source == (
        "sentence1: A man is playing a large flute. sentence2: A man is playing a flute."
    )
    assert {task.format(r).target for r in rows} <= {f"{i / 10:.1f}" for i in range(51)}


def test_sst2_sentences_stripped(data_dir: Path) -> None:
    task = get_task("sst2")
    row = task.load_rows("validation", data_dir)[0]
    assert row["sentence"] == "it 's a charming and often affecting journey . "  # the file's text, kept
    assert task.format(row).source == "sentence: it 's a charming and often affecting journey ."


def test_wsc_markers_and_span_fixes(data_dir: Path) -> None:
    task = get_task("wsc")
    splits = load_splits(task, data_dir)
    first = splits.train[0]
    assert first.source == (
        "text: * Mark * told Pete many lies about himself, which Pete included in his book. "
        "# He # should have been more skeptical."
    )
    assert (first.target, first.label) == ("0", 0)
    # 96 span texts repaired as HF's wsc.fixed does (case, trailing '.', newline), 1 index off by one word
    assert splits.info["wsc_span_fixes"] == {"text": 96, "index": 1, "unresolved": 0}
    assert splits.info["wsc_fixed_spans"] == 97
    assert "rebuilt from the original WSC JSONL" in splits.info["wsc_variant"]
    val = task.load_rows("validation", data_dir)
    assert (val[42]["span2_index"], val[42]["span2_text"]) == (31, "it")  # the file says 30
    assert "use # it # ," in task.format(val[42]).source
    fixed_case = task.load_rows("train", data_dir)[16]  # "The demonstrators" at a lower-case word
    assert fixed_case["span1_text"] == "the demonstrators"
    assert "* the demonstrators *" in task.format(fixed_case).source


def test_wic_format(data_dir: Path) -> None:
    task = get_task("wic")
    row = task.load_rows("validation", data_dir)[0]
    assert task.format(row).source == (
        "sentence1: An emerging professional class. sentence2: Apologizing for losing your temper, even though "
        "you were badly provoked, showed real class. word: class"
    )
    assert row["label"] == 0 and "version" not in row


# ---- errors ----------------------------------------------------------------------------------------------


def test_missing_boolq_train_names_the_path(data_dir: Path) -> None:
    with pytest.raises(TaskDataError) as info:
        load_splits(get_task("boolq"), data_dir)
    message = str(info.value)
    assert "task 'boolq'" in message and "superglue/BoolQ/train.jsonl" in message
    assert str(data_dir.resolve() / "superglue" / "BoolQ" / "train.jsonl") in message
    assert "\n" not in message


def test_missing_qqp_file_message(tmp_path: Path) -> None:
    with pytest.raises(TaskDataError) as info:
        get_task("qqp").load_rows("train", tmp_path)
    assert str(info.value) == (
        f"task 'qqp': expected glue/QQP/train.tsv under {tmp_path} (not found: {tmp_path}/glue/QQP/train.tsv)"
    )


def test_unknown_split(data_dir: Path) -> None:
    with pytest.raises(
        UnknownNameError, match="unknown split 'test' for task 'rte'.*allowed: train, validation"
    ):
        get_task("rte").load_rows("test", data_dir)
