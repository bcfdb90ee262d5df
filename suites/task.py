"""What a task is: its facts (labels, split family, metrics, where its data lives) and the ``dept`` format.

A task never knows which method runs on it (CONTRIBUTING.md#how-the-parts-fit-together); it hands over examples, text formats and a
metric. Rows are always in the Hugging Face ``datasets`` schema (docs/protocol.md#hugging-face-rows), whether they came from the
Hub or from the original files, so formatting and splitting do not care where the data came from.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from suites import metrics
from suites.errors import RowError, TaskDataError
from suites.readers import Converted, RawFile, convert_records
from suites.registry import unknown

SPLIT_FAMILIES = ("small", "large", "mnli")
HUB_HINT = "pass --data-dir or set BENCH_DATA_DIR to a folder with the original glue/ and superglue/ files"


@dataclass(frozen=True)
class Example:
    """One formatted example (docs/protocol.md#text-formats): source and target text, the label, and the raw HF row."""

    source: str  # e.g. "sentence1: ... sentence2: ..." (no task prefix)
    target: str  # "0"/"1"/"2"; STS-B: the label rounded to one decimal, e.g. "3.8"
    label: int | float  # ClassLabel index, or the float score for STS-B
    group: str | None = None  # MultiRC "paragraphidx-questionidx"; None elsewhere
    fields: dict = field(default_factory=dict, compare=False)  # the HF-schema row, for other formats
    # The source fields' values alone, in order (no "name:" labels): what an encoder reads as BERT segments
    # with ``train.encoder_text="segments"`` (docs/protocol.md#text-formats), e.g. ("<s1>", "<s2>").
    segments: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Splits:
    """Train/dev/test under one protocol; ``info`` records where every row came from."""

    train: list[Example]
    dev: list[Example]
    test: list[Example]
    info: dict


@dataclass
class RowSet:
    """HF-schema rows of one original split and their provenance (files and hashes, skipped rows, notes)."""

    rows: list[dict[str, Any]]
    files: dict[str, str] = field(default_factory=dict)  # path relative to the data dir -> sha256
    malformed: int = 0
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False, kw_only=True)
class Task:
    """One task; subclasses (one per suite) know the file layout, instances know the task's facts.

    Subclasses also provide ``source_fields``: the HF fields that make up the source text, in order
    (docs/protocol.md#text-formats); a GLUE task derives it from its columns, a SuperGLUE task lists it.
    """

    name: str
    suite: str
    description: str
    label_names: tuple[str, ...] | None  # HF ClassLabel names in order; None for regression (STS-B)
    split_family: str  # "small" | "large" | "mnli" (docs/protocol.md#splits)
    metric_names: tuple[str, ...]  # selection metric first (docs/protocol.md#metrics)
    headline_metric: str
    hf_path: str
    hf_config: str
    file_names: dict[str, str]  # original split name -> file name in the task's local folder
    official_rows: dict[str, int] = field(default_factory=dict)  # official row counts, checked on load

    def __post_init__(self) -> None:
        if self.split_family not in SPLIT_FAMILIES:
            raise unknown("split family", self.split_family, list(SPLIT_FAMILIES))
        for name in self.metric_names:
            if name not in metrics.METRICS:
                raise unknown("metric", name, list(metrics.METRICS))
        if self.headline_metric not in self.metric_names:
            raise ValueError(f"task {self.name!r}: headline metric {self.headline_metric!r} is not computed")

    # ---- facts derived from the fields ---------------------------------------------------------------

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    @property
    def selection_metric(self) -> str:
        """The dev metric that picks the checkpoint: the first one computed (docs/protocol.md#metrics)."""
        return self.metric_names[0]

    @property
    def split_names(self) -> tuple[str, ...]:
        """The original (HF) split names this task loads: train, validation (MNLI: two validations)."""
        return tuple(self.file_names)

    def label_strings(self) -> list[str]:
        """Every target string the model may have to produce; it fixes the maximum target length.

        STS-B enumerates 0.0, 0.2, ..., 5.0 as the lineage's label list does (docs/protocol.md#text-formats), although its
        targets are rounded to one decimal and may be any of 0.0, 0.1, ..., 5.0.
        """
        if self.label_names is None:
            return [_one_decimal(i / 5) for i in range(26)]
        return [str(i) for i in range(len(self.label_names))]

    # ---- the dept text-to-text format (docs/protocol.md#text-formats) -------------------------------------------------

    def format(self, row: dict[str, Any]) -> Example:
        """HF-schema row -> Example with the ``dept`` source and digit target."""
        label = row["label"]
        return Example(
            source=self._source(row),
            target=self._target(label),
            label=label,
            group=self._group(row),
            fields=row,
            segments=self._segments(row),
        )

    def _source(self, row: dict[str, Any]) -> str:
        return " ".join(
            f"{name}: {text}" for name, text in zip(self.source_fields, self._segments(row), strict=True)
        )

    def _segments(self, row: dict[str, Any]) -> tuple[str, ...]:
        return tuple(self._field_text(row, name) for name in self.source_fields)

    def _field_text(self, row: dict[str, Any], name: str) -> str:
        return row[name]

    def _target(self, label: int | float) -> str:
        if self.is_regression:
            # The lineage's rounding, (x * 5) / 5 to one decimal with numpy, on the HF float32 score.
            return _one_decimal((float(label) * 5) / 5)
        return str(int(label))

    def _group(self, row: dict[str, Any]) -> str | None:
        return None

    def compute_metrics(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        """Every metric in ``metric_names`` (x100) on generated strings vs target strings (docs/protocol.md#metrics)."""
        return metrics.compute(self.metric_names, predictions, references, self.label_strings())

    # ---- labels ----------------------------------------------------------------------------------------

    def parse_label(self, value: Any) -> int | float:
        """An original-file label -> the HF value: ClassLabel index (strings through ``label_names``, bools
        to 0/1) or, for regression, the score as the float32 the HF schema stores (docs/protocol.md#hugging-face-rows)."""
        if self.label_names is None:
            try:
                return float(np.float32(float(value)))
            except (TypeError, ValueError):
                raise RowError(f"score {value!r} is not a number") from None
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, str) and value in self.label_names:
            return self.label_names.index(value)
        try:
            index = int(value)
        except (TypeError, ValueError):
            index = -1
        if isinstance(value, float) or not 0 <= index < len(self.label_names):
            raise RowError(
                f"label {value!r} is not one of {', '.join(self.label_names)} or 0..{len(self.label_names) - 1}"
            )
        return index

    # ---- loading ---------------------------------------------------------------------------------------

    def load_rows(self, split: str, data_dir: Path | None) -> list[dict[str, Any]]:
        """HF-schema rows of an original split, in file order; ``data_dir=None`` loads from the Hub."""
        return self.read(split, data_dir).rows

    def read(self, split: str, data_dir: Path | str | None) -> RowSet:
        """Like ``load_rows``, with provenance: the files read and their sha256, skipped rows, notes."""
        if split not in self.split_names:
            raise unknown("split", split, list(self.split_names), where=f" for task {self.name!r}")
        if data_dir is None:
            rowset = RowSet(
                rows=self._hub_rows(split), notes={"hf_dataset": f"{self.hf_path}/{self.hf_config}"}
            )
        else:
            rowset = self._local_rows(split, Path(data_dir))
        self._fix_rows(rowset, from_hub=data_dir is None)
        expected = self.official_rows.get(split)
        if expected is not None and len(rowset.rows) != expected:
            rowset.notes.setdefault("row_count_warnings", []).append(
                f"{split}: {len(rowset.rows)} rows, official {expected}"
            )
        return rowset

    def _hub_rows(self, split: str) -> list[dict[str, Any]]:
        import datasets  # noqa: PLC0415 - datasets only on the Hub path

        try:
            dataset = datasets.load_dataset(self.hf_path, self.hf_config, split=split)
        except Exception as exc:  # network, auth, missing config: all mean "no Hub data here"
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TaskDataError(
                f"task {self.name!r}: cannot load {self.hf_path}/{self.hf_config} split {split!r} from the "
                f"Hugging Face Hub ({type(exc).__name__}: {reason}); {HUB_HINT}"
            ) from exc
        rows = dataset.to_list()  # one Arrow conversion; row-by-row iteration is slow on MNLI/QQP
        needed = [*self.source_fields, "label"]
        missing = [name for name in needed if rows and name not in rows[0]]
        if missing:
            raise TaskDataError(
                f"task {self.name!r}: Hub rows of {self.hf_path}/{self.hf_config} lack {', '.join(missing)}"
            )
        return rows

    def _local_path(self, split: str, data_dir: Path) -> tuple[str, Path]:
        """(path relative to the data dir, absolute path) of a split's file; absent -> ``TaskDataError``."""
        relative = self.local_file(split)
        path = data_dir / relative
        if not path.is_file():
            where = "" if data_dir.is_dir() else f"; {data_dir} does not exist"
            raise TaskDataError(
                f"task {self.name!r}: expected {relative} under {data_dir} (not found: {path}{where})"
            )
        return relative, path

    def local_file(self, split: str) -> str:
        """Path of a split's original file relative to the data dir, e.g. ``glue/RTE/dev.tsv``."""
        raise NotImplementedError

    def _local_rows(self, split: str, data_dir: Path) -> RowSet:
        relative, path = self._local_path(split, data_dir)
        raw, converted = self._read_converted(path)
        return make_rowset(raw, converted, files={relative: raw.sha256})

    def _read_converted(self, path: Path) -> tuple[RawFile, Converted]:
        """Read and convert one file."""
        with self._named_errors():
            raw = self._read_file(path)
            return raw, convert_records(raw, self._converter(raw))

    @contextmanager
    def _named_errors(self) -> Iterator[None]:
        """Put the task's name in front of reader errors, which know only the file."""
        try:
            yield
        except TaskDataError as exc:
            raise TaskDataError(f"task {self.name!r}: {exc}") from None

    def _read_file(self, path: Path) -> RawFile:
        raise NotImplementedError

    def _converter(self, raw: RawFile) -> Callable[[Any, int], list[dict[str, Any]]]:
        """The function turning one record of ``raw`` into HF rows (it may depend on the file's header)."""
        return self._convert_record

    def _convert_record(self, record: Any, ordinal: int) -> list[dict[str, Any]]:
        """One file record -> HF-schema rows (a list: MultiRC yields one row per answer)."""
        raise NotImplementedError

    def _fix_rows(self, rowset: RowSet, from_hub: bool) -> None:
        """Repair loaded rows from either source in place (WSC spans); record what was done in ``notes``."""


def make_rowset(
    raw: RawFile, converted: Converted, files: dict[str, str], notes: dict[str, Any] | None = None
) -> RowSet:
    """The RowSet of a converted file; skipped rows are counted, and the first one is described in
    ``notes["malformed_detail"]`` so the user can find it."""
    notes = dict(notes or {})
    if converted.malformed:
        line, reason = converted.malformed[0]
        skipped = len(converted.malformed)
        notes["malformed_detail"] = [f"{raw.path}: {skipped} row(s) skipped, first at line {line}: {reason}"]
    return RowSet(rows=converted.rows, files=files, malformed=len(converted.malformed), notes=notes)


def _one_decimal(value: float) -> str:
    """``np.round(x, 1)`` as text, e.g. "3.8", "5.0"; numpy (not ``round``) to match the lineage at ties."""
    return str(float(np.round(value, decimals=1)))


def parse_json(record: str) -> dict[str, Any]:
    try:
        value = json.loads(record)
    except json.JSONDecodeError as exc:
        raise RowError(f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise RowError(f"a JSON {type(value).__name__}, not an object")
    return value


def require(record: Any, key: str) -> Any:
    if not isinstance(record, dict):
        raise RowError(f"expected a JSON object holding {key!r}, got {type(record).__name__}")
    if key not in record:
        raise RowError(f"missing field {key!r}")
    return record[key]
