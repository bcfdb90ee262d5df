"""Loaders on small hand-written files and on a faked Hub: MultiRC nesting, malformed rows, Hub rows."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest

from suites import TaskDataError, get_task, load_splits

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "suites"


# ---- MultiRC: official nested JSONL -> one HF row per answer (docs/protocol.md#superglue-jsonl-files, docs/protocol.md#hugging-face-rows) -------------------------


def test_multirc_flattening_in_file_order() -> None:
    task = get_task("multirc")
    rows = task.load_rows("validation", FIXTURES)
    assert [(r["idx"]["paragraph"], r["idx"]["question"], r["idx"]["answer"]) for r in rows] == [
        (0, 0, 0),
        (0, 0, 1),
        (0, 0, 2),
        (0, 1, 3),
        (0, 1, 4),
        (1, 2, 5),
        (1, 2, 6),
        (1, 2, 7),
    ]
    assert [r["label"] for r in rows] == [1, 0, 1, 1, 0, 1, 0, 0]
    assert rows[4] == {
        "paragraph": "<b>Sent 1: </b>The ferry left at <b>noon</b>.<br><b>Sent 2: </b>It reached the island two "
        "hours later.<br>",
        "question": "When did it reach the island?",
        "answer": "At <b>noon</b>",
        "idx": {"paragraph": 0, "question": 1, "answer": 4},
        "label": 0,
    }


def test_multirc_format_strips_html_and_groups_by_question() -> None:
    task = get_task("multirc")
    rows = task.load_rows("validation", FIXTURES)
    example = task.format(rows[4])
    assert example.source == (
        "question: When did it reach the island? answer: At noon "
        "paragraph: Sent 1: The ferry left at noon. Sent 2: It reached the island two hours later. "
    )
    assert (example.target, example.group) == ("0", "0-1")
    assert [task.format(r).group for r in rows] == ["0-0"] * 3 + ["0-1"] * 2 + ["1-2"] * 3


def test_multirc_splits_halve_answer_rows() -> None:
    splits = load_splits(get_task("multirc"), FIXTURES)
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (4, 4, 4)
    answers = sorted(e.fields["idx"]["answer"] for e in splits.dev + splits.test)
    assert answers == list(range(8))
    assert splits.info["files"].keys() == {"superglue/MultiRC/train.jsonl", "superglue/MultiRC/val.jsonl"}


# ---- malformed rows: skipped and counted up to 1%, an error above -------------------------------------------


def _write_qqp(root: Path, train_rows: int, short_lines: set[int]) -> Path:
    folder = root / "glue" / "QQP"
    folder.mkdir(parents=True)
    header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
    lines = [header]
    for i in range(train_rows):
        if i in short_lines:
            lines.append(f"{i}\t{2 * i}\t{2 * i + 1}\tquestion {i} without a pair\n")
        else:
            lines.append(f"{i}\t{2 * i}\t{2 * i + 1}\tfirst question {i}?\tsecond question {i}?\t{i % 2}\n")
    (folder / "train.tsv").write_text("".join(lines))
    (folder / "dev.tsv").write_text(header + "7\t14\t15\twhy?\twhy not?\t0\n")
    return folder


def test_short_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    folder = _write_qqp(tmp_path, 1200, short_lines={5, 700})
    task = get_task("qqp")
    rows = task.load_rows("train", tmp_path)
    assert len(rows) == 1198
    assert rows[5]["idx"] == 6  # idx is the file's data-row number, as in the HF script
    assert rows[5] == {
        "question1": "first question 6?",
        "question2": "second question 6?",
        "label": 0,
        "idx": 6,
    }
    splits = load_splits(task, tmp_path)
    assert splits.info["malformed_rows"] == 2
    assert splits.info["malformed_detail"] == [
        f"{folder.resolve() / 'train.tsv'}: 2 row(s) skipped, first at line 7: 4 tab-separated fields, expected 6"
    ]
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (198, 1000, 1)
    assert splits.info["row_count_warnings"] == [
        "train: 1198 rows, official 363846",
        "validation: 1 rows, official 40430",
    ]


def test_too_many_malformed_rows_raise_with_file_and_line(tmp_path: Path) -> None:
    folder = _write_qqp(tmp_path, 1200, short_lines=set(range(10, 23)))  # 13 > 1% of 1200
    with pytest.raises(TaskDataError) as info:
        get_task("qqp").load_rows("train", tmp_path)
    message = str(info.value)
    assert message.startswith(f"task 'qqp': {folder / 'train.tsv'}: 13 of 1200 rows are malformed")
    assert "first at line 12: 4 tab-separated fields, expected 6" in message  # header is line 1


def test_bad_label_is_malformed(tmp_path: Path) -> None:
    folder = tmp_path / "glue" / "RTE"
    folder.mkdir(parents=True)
    (folder / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailed\n")
    with pytest.raises(
        TaskDataError, match=r"line 2: label 'entailed' is not one of entailment, not_entailment"
    ):
        get_task("rte").load_rows("train", tmp_path)


def test_wrong_header_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "glue" / "RTE"
    folder.mkdir(parents=True)
    (folder / "dev.tsv").write_text("index\tsentence1\tsentence2\n0\ta\tb\n")  # test.tsv-like: no label
    with pytest.raises(TaskDataError, match=r"task 'rte': .*dev.tsv: no column 'label' in the header"):
        get_task("rte").load_rows("validation", tmp_path)


def test_broken_json_line_is_malformed(tmp_path: Path) -> None:
    folder = tmp_path / "superglue" / "CB"
    folder.mkdir(parents=True)
    (folder / "val.jsonl").write_text(
        '{"premise": "p", "hypothesis": "h", "label": "neutral", "idx": 0}\n{"premise": \n'
    )
    with pytest.raises(TaskDataError, match=r"val.jsonl: 1 of 2 rows are malformed .*line 2: invalid JSON"):
        get_task("cb").load_rows("validation", tmp_path)


OTHER_LABEL = {"entailment": "neutral", "neutral": "contradiction", "contradiction": "entailment"}


def _write_mnli(path: Path, gold: list[str], tag: str, annotators: int) -> None:
    """The official MNLI layout: parses, then label1..labelN, and gold_label last (docs/protocol.md#glue-tsv-files)."""
    columns = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse"]
    columns += ["sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]
    columns += [f"label{k}" for k in range(1, annotators + 1)] + ["gold_label"]
    rows = [
        [
            str(i),
            "1",
            f"{i}e",
            "fiction",
            "( p )",
            "( h )",
            "(P)",
            "(H)",
            f"{tag} premise {i}",
            f"{tag} hypothesis {i}",
        ]
        + [OTHER_LABEL[label]] * annotators  # annotator labels differ from gold, so reading them shows
        + [label]
        for i, label in enumerate(gold)
    ]
    path.write_text("".join("\t".join(fields) + "\n" for fields in [columns, *rows]))


def test_mnli_family_and_gold_label_column(tmp_path: Path) -> None:
    folder = tmp_path / "glue" / "MNLI"
    folder.mkdir(parents=True)
    _write_mnli(folder / "train.tsv", ["neutral", "entailment", "contradiction"], "tr", annotators=1)
    _write_mnli(folder / "dev_matched.tsv", ["contradiction", "neutral"], "m", annotators=5)
    _write_mnli(folder / "dev_mismatched.tsv", ["entailment", "neutral", "neutral"], "mm", annotators=5)
    splits = load_splits(get_task("mnli"), tmp_path)
    assert [e.label for e in splits.train] == [1, 0, 2]
    assert [e.label for e in splits.dev] == [0, 1, 1]  # dev = validation_mismatched, in file order
    assert [e.label for e in splits.test] == [2, 1]  # test = validation_matched
    assert splits.test[0].source == "premise: m premise 0 hypothesis: m hypothesis 0"
    assert splits.info["rows"] == {"train": 3, "validation_mismatched": 3, "validation_matched": 2}


# ---- the Hub path, with datasets.load_dataset faked (there is no network here) -----------------------------


def _fake_hub(monkeypatch: pytest.MonkeyPatch, tables: dict[tuple[str, str, str], list[dict]]) -> list[tuple]:
    calls: list[tuple] = []

    def load_dataset(path: str, name: str | None = None, split: str | None = None, **kwargs: object):
        calls.append((path, name, split))
        if (path, name, split) not in tables:
            raise ConnectionError(f"Couldn't reach '{path}' on the Hub (LocalEntryNotFoundError)")
        return datasets.Dataset.from_list(tables[(path, name, split)])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_hub_rows_split_and_format(monkeypatch: pytest.MonkeyPatch) -> None:
    train = [{"sentence1": f"s{i}", "sentence2": f"t{i}", "label": i % 2, "idx": i} for i in range(6)]
    validation = [
        {"sentence1": f"v{i}", "sentence2": f"w{i}", "label": 1 - i % 2, "idx": i} for i in range(10)
    ]
    calls = _fake_hub(
        monkeypatch,
        {("nyu-mll/glue", "rte", "train"): train, ("nyu-mll/glue", "rte", "validation"): validation},
    )
    splits = load_splits(get_task("rte"), None)
    assert calls == [("nyu-mll/glue", "rte", "train"), ("nyu-mll/glue", "rte", "validation")]
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (6, 5, 5)
    assert splits.info["source"] == "hub" and splits.info["hf_dataset"] == "nyu-mll/glue/rte"
    assert splits.info["files"] == {}
    assert splits.train[3].source == "sentence1: s3 sentence2: t3" and splits.train[3].target == "1"
    assert sorted(e.fields["idx"] for e in splits.dev + splits.test) == list(range(10))


def test_hub_wsc_fixed_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    row = {
        "text": "The trophy does not fit in the suitcase because it is too big .",
        "span1_index": 0,
        "span2_index": 8,
        "span1_text": "The trophy",
        "span2_text": "it",
        "idx": 0,
        "label": 1,
    }
    _fake_hub(monkeypatch, {("aps/super_glue", "wsc.fixed", "validation"): [row]})
    rows = get_task("wsc").load_rows("validation", None)
    example = get_task("wsc").format(rows[0])
    assert example.source == "text: * The trophy * does not fit in the suitcase because # it # is too big ."
    assert example.target == "1"


def test_hub_failure_is_a_task_data_error_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_hub(monkeypatch, {})
    with pytest.raises(TaskDataError) as info:
        load_splits(get_task("cb"), None)
    message = str(info.value)
    assert message.startswith(
        "task 'cb': cannot load aps/super_glue/cb split 'train' from the Hugging Face Hub"
    )
    assert "ConnectionError" in message and "--data-dir" in message and "BENCH_DATA_DIR" in message
    assert "\n" not in message


# ---- WSC markers on hand-made rows (docs/protocol.md#text-formats) ---------------------------------------------------------


def test_wsc_markers_pronoun_first_and_unmatched_span() -> None:
    task = get_task("wsc")
    row = {"text": "He said that Bill left .", "span1_index": 3, "span1_text": "Bill", "span2_index": 0}
    row.update({"span2_text": "He", "idx": 0, "label": 0})
    assert task.format(row).source == "text: # He # said that * Bill * left ."  # no shift: span1 comes later
    row["span1_index"] = 2  # "that", not "Bill": left unmarked, as the lineage does
    assert task.format(row).source == "text: # He # said that Bill left ."
