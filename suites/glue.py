"""GLUE tasks: original TSV layout ``glue/<TASK>/{train,dev}.tsv`` (docs/protocol.md#glue-tsv-files) -> HF rows (6.3).

Every TSV row becomes ``{<text fields>, "label", "idx"}`` with the HF field names, the label mapped through
the HF ClassLabel order, and ``idx`` the 0-based data-row number of the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suites.errors import RowError
from suites.readers import RawFile, column_index, convert_records, read_tsv
from suites.registry import register_task
from suites.task import RowSet, Task, make_rowset


@dataclass(frozen=True, eq=False, kw_only=True)
class GlueTask(Task):
    suite: str = "glue"
    hf_path: str = "nyu-mll/glue"
    file_names: dict[str, str] = field(
        default_factory=lambda: {"train": "train.tsv", "validation": "dev.tsv"}
    )
    local_dir: str  # folder under glue/, e.g. "RTE"
    text_columns: dict[str, str]  # HF field -> TSV column, in source-text order
    label_column: str
    column_names: tuple[str, ...] | None = None  # for files without a header line (CoLA)
    # SST-2: sentences end with a space before the tab (docs/protocol.md#glue-tsv-files)
    strip_text: bool = False

    @property
    def source_fields(self) -> tuple[str, ...]:
        return tuple(self.text_columns)

    def _field_text(self, row: dict[str, Any], name: str) -> str:
        return row[name].strip() if self.strip_text else row[name]

    def local_file(self, split: str) -> str:
        return f"glue/{self.local_dir}/{self.file_names[split]}"

    def _read_file(self, path: Path) -> RawFile:
        return read_tsv(path, self.column_names)

    def _converter(self, raw: RawFile) -> Callable[[Any, int], list[dict[str, Any]]]:
        text_at = {name: column_index(raw, column) for name, column in self.text_columns.items()}
        label_at = column_index(raw, self.label_column)
        width = max(label_at, *text_at.values()) + 1

        def convert(fields: list[str], ordinal: int) -> list[dict[str, Any]]:
            # A short row lacks a needed column; the HF script drops such rows too (docs/protocol.md#glue-tsv-files: QQP).
            if len(fields) < width:
                raise RowError(f"{len(fields)} tab-separated fields, expected {len(raw.header or ())}")
            row: dict[str, Any] = {name: fields[at] for name, at in text_at.items()}
            row["label"] = self.parse_label(fields[label_at])
            row["idx"] = ordinal
            return [row]

        return convert


@dataclass(frozen=True, eq=False, kw_only=True)
class MrpcTask(GlueTask):
    """MRPC, whose train.tsv misses a pair in some redistributed copies (docs/protocol.md#glue-tsv-files).

    GLUE's train.tsv is ``msr_paraphrase_train.txt`` minus the pairs in ``dev_ids.tsv``, in MSR file order,
    which is also the HF order. When train.tsv is missing or shorter than the official 3,668 rows and both
    source files are present, the train split is rebuilt from them and ``notes["mrpc_train"]`` says so.
    """

    def _local_rows(self, split: str, data_dir: Path) -> RowSet:
        folder = f"glue/{self.local_dir}"
        msr = f"{folder}/msr_paraphrase_train.txt"
        dev_ids = f"{folder}/dev_ids.tsv"
        if split != "train" or not ((data_dir / msr).is_file() and (data_dir / dev_ids).is_file()):
            return super()._local_rows(split, data_dir)
        train_file = self.local_file(split)
        files: dict[str, str] = {}
        was = f"{train_file} is missing"
        train_pairs: set[tuple[str, ...]] = set()
        if (data_dir / train_file).is_file():
            raw, converted = self._read_converted(data_dir / train_file)
            files[train_file] = raw.sha256
            if len(converted.rows) >= self.official_rows["train"]:
                return make_rowset(raw, converted, files)
            was = f"{train_file} has {len(converted.rows)} rows"
            train_pairs = set(self._id_pairs(raw))

        with self._named_errors():
            ids_raw = read_tsv(data_dir / dev_ids, column_names=("#1 ID", "#2 ID"))
            msr_raw = read_tsv(data_dir / msr)
            dev_pairs = {tuple(fields[:2]) for _, fields in ids_raw.records}
            kept = [
                (record, pair)
                for record, pair in zip(msr_raw.records, self._id_pairs(msr_raw), strict=True)
                if pair not in dev_pairs
            ]
            rebuilt = RawFile(msr_raw.path, msr_raw.sha256, [record for record, _ in kept], msr_raw.header)
            converted = convert_records(rebuilt, self._converter(rebuilt))
        files.update({msr: msr_raw.sha256, dev_ids: ids_raw.sha256})
        if train_pairs:
            added = ", ".join("/".join(pair) for _, pair in kept if pair not in train_pairs) or "none"
            was += f"; added pair(s) {added}"
        note = f"rebuilt from {msr} minus {dev_ids}, in MSR file order (the HF order): {len(converted.rows)} rows; {was}"
        return make_rowset(rebuilt, converted, files, notes={"mrpc_train": note})

    @staticmethod
    def _id_pairs(raw: RawFile) -> list[tuple[str, ...]]:
        """(#1 ID, #2 ID) of every record, the key GLUE's dev_ids.tsv uses."""
        first, second = column_index(raw, "#1 ID"), column_index(raw, "#2 ID")
        return [tuple(fields[i] for i in (first, second) if i < len(fields)) for _, fields in raw.records]


# ---- the tasks, in the order of the paper tables (docs/protocol.md#text-formats, docs/protocol.md#splits, docs/protocol.md#metrics, docs/protocol.md#glue-tsv-files, docs/protocol.md#hugging-face-rows) ----------------------

register_task(
    GlueTask(
        name="cola",
        description="CoLA: is the sentence grammatically acceptable (2 classes, MCC)",
        hf_config="cola",
        local_dir="CoLA",
        column_names=("source", "label", "author_label", "sentence"),
        text_columns={"sentence": "sentence"},
        label_column="label",
        label_names=("unacceptable", "acceptable"),
        split_family="small",
        metric_names=("mcc",),
        headline_metric="mcc",
        official_rows={"train": 8551, "validation": 1043},
    )
)
register_task(
    GlueTask(
        name="sst2",
        description="SST-2: movie-review sentence sentiment (2 classes)",
        hf_config="sst2",
        local_dir="SST-2",
        text_columns={"sentence": "sentence"},
        label_column="label",
        strip_text=True,
        label_names=("negative", "positive"),
        split_family="large",
        metric_names=("accuracy",),
        headline_metric="accuracy",
        official_rows={"train": 67349, "validation": 872},
    )
)
register_task(
    MrpcTask(
        name="mrpc",
        description="MRPC: are the two sentences paraphrases (2 classes)",
        hf_config="mrpc",
        local_dir="MRPC",
        text_columns={"sentence1": "#1 String", "sentence2": "#2 String"},
        label_column="Quality",
        label_names=("not_equivalent", "equivalent"),
        split_family="small",
        metric_names=("accuracy", "f1"),
        headline_metric="accuracy",
        official_rows={"train": 3668, "validation": 408},
    )
)
register_task(
    GlueTask(
        name="qqp",
        description="QQP: are the two Quora questions duplicates (2 classes)",
        hf_config="qqp",
        local_dir="QQP",
        text_columns={"question1": "question1", "question2": "question2"},
        label_column="is_duplicate",
        label_names=("not_duplicate", "duplicate"),
        split_family="large",
        metric_names=("accuracy", "f1"),
        headline_metric="accuracy",
        official_rows={"train": 363846, "validation": 40430},
    )
)
register_task(
    GlueTask(
        name="stsb",
        description="STS-B: semantic similarity of two sentences, 0-5 (regression as text)",
        hf_config="stsb",
        local_dir="STS-B",
        text_columns={"sentence1": "sentence1", "sentence2": "sentence2"},
        label_column="score",
        label_names=None,
        split_family="small",
        metric_names=("pearson", "spearman"),
        headline_metric="pearson",
        official_rows={"train": 5749, "validation": 1500},
    )
)
register_task(
    GlueTask(
        name="mnli",
        description="MNLI: entailment, neutral or contradiction (3 classes; test = matched)",
        hf_config="mnli",
        local_dir="MNLI",
        file_names={
            "train": "train.tsv",
            "validation_matched": "dev_matched.tsv",
            "validation_mismatched": "dev_mismatched.tsv",
        },
        text_columns={"premise": "sentence1", "hypothesis": "sentence2"},
        label_column="gold_label",
        label_names=("entailment", "neutral", "contradiction"),
        split_family="mnli",
        metric_names=("accuracy",),
        headline_metric="accuracy",
        official_rows={"train": 392702, "validation_matched": 9815, "validation_mismatched": 9832},
    )
)
register_task(
    GlueTask(
        name="qnli",
        description="QNLI: does the sentence answer the question (2 classes)",
        hf_config="qnli",
        local_dir="QNLI",
        text_columns={"question": "question", "sentence": "sentence"},
        label_column="label",
        label_names=("entailment", "not_entailment"),
        split_family="large",
        metric_names=("accuracy",),
        headline_metric="accuracy",
        official_rows={"train": 104743, "validation": 5463},
    )
)
register_task(
    GlueTask(
        name="rte",
        description="RTE: does sentence1 entail sentence2 (2 classes)",
        hf_config="rte",
        local_dir="RTE",
        text_columns={"sentence1": "sentence1", "sentence2": "sentence2"},
        label_column="label",
        label_names=("entailment", "not_entailment"),
        split_family="small",
        metric_names=("accuracy",),
        headline_metric="accuracy",
        official_rows={"train": 2490, "validation": 277},
    )
)
