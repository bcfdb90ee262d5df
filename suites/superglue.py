"""SuperGLUE tasks: original JSONL layout ``superglue/<Task>/{train,val}.jsonl`` (docs/protocol.md#superglue-jsonl-files) -> HF rows.

Labels become ClassLabel indices (bools to 0/1, CB strings through its own order), WSC's ``target`` is
flattened into span fields, and MultiRC's paragraph records are flattened to one row per answer (6.3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suites.errors import RowError
from suites.readers import RawFile, read_jsonl
from suites.registry import register_task
from suites.task import RowSet, Task, parse_json, require


@dataclass(frozen=True, eq=False, kw_only=True)
class SuperGlueTask(Task):
    suite: str = "superglue"
    hf_path: str = "aps/super_glue"
    file_names: dict[str, str] = field(
        default_factory=lambda: {"train": "train.jsonl", "validation": "val.jsonl"}
    )
    local_dir: str  # folder under superglue/, e.g. "BoolQ"
    row_fields: tuple[str, ...]  # copied from each JSON record (besides idx and label)
    source_fields: tuple[str, ...]  # HF fields that make up the source text, in order

    def local_file(self, split: str) -> str:
        return f"superglue/{self.local_dir}/{self.file_names[split]}"

    def _read_file(self, path: Path) -> RawFile:
        return read_jsonl(path)

    def _convert_record(self, record: str, ordinal: int) -> list[dict[str, Any]]:
        obj = parse_json(record)
        row = {name: require(obj, name) for name in self.row_fields}
        row["idx"] = require(obj, "idx")
        row["label"] = self.parse_label(require(obj, "label"))
        return [row]


# ---- MultiRC ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, kw_only=True)
class MultiRcTask(SuperGlueTask):
    """One JSON record per paragraph, questions nested inside, answers inside questions (docs/protocol.md#superglue-jsonl-files).

    Flattened in file order (paragraph -> question -> answer), which is the HF row order the split
    permutation indexes. The ``dept`` format removes the passage's HTML (``<br>`` -> space, ``<b>``/``</b>``
    dropped); the group of an answer row is its (paragraph, question) pair, "paragraphidx-questionidx".
    """

    def _convert_record(self, record: str, ordinal: int) -> list[dict[str, Any]]:
        obj = parse_json(record)
        paragraph_idx = require(obj, "idx")
        passage = require(obj, "passage")
        paragraph = require(passage, "text")
        rows = []
        for question in require(passage, "questions"):
            for answer in require(question, "answers"):
                rows.append(
                    {
                        "paragraph": paragraph,
                        "question": require(question, "question"),
                        "answer": require(answer, "text"),
                        "idx": {
                            "paragraph": paragraph_idx,
                            "question": require(question, "idx"),
                            "answer": require(answer, "idx"),
                        },
                        "label": self.parse_label(require(answer, "label")),
                    }
                )
        return rows

    def _field_text(self, row: dict[str, Any], name: str) -> str:
        return row[name].replace("<br>", " ").replace("<b>", "").replace("</b>", "")

    def _group(self, row: dict[str, Any]) -> str | None:
        return f"{row['idx']['paragraph']}-{row['idx']['question']}"


# ---- WSC -------------------------------------------------------------------------------------------------

SPAN_SEARCH_RADIUS = 3  # words either side of a wrong span index that are searched for the span text


def word_start(text: str, index: int) -> int | None:
    """Character offset of word ``index``, counting words as the lineage's regex ``^(?:\\S+\\s){index}`` does."""
    match = re.match(rf"(?:\S+\s){{{index}}}", text) if index >= 0 else None
    return match.end() if match else None


def span_at(text: str, span: str, index: int) -> bool:
    start = word_start(text, index)
    return bool(span) and start is not None and text.startswith(span, start)


def mark_span(text: str, span: str, index: int, mark: str) -> str:
    """Wrap ``span`` at word ``index`` as ``"<mark> span <mark>"``; left unmarked where the span is not at
    that word, as the lineage leaves it (docs/protocol.md#text-formats). The span text is matched literally."""
    if not span_at(text, span, index):
        return text
    start = word_start(text, index) or 0
    return f"{text[:start]}{mark} {span} {mark}{text[start + len(span) :]}"


def fix_span(row: dict[str, Any], key: str) -> str | None:
    """Make ``row[key_text]`` sit at word ``row[key_index]``; return what was fixed ("text", "index",
    "unresolved") or None when nothing was wrong.

    First the repairs HF's ``wsc.fixed`` makes to the original WSC (docs/protocol.md#superglue-jsonl-files): the span text's first
    letter takes the case of the word at the index, a trailing "." is dropped, a newline becomes a space.
    If the span is still not at its index, it is looked for up to ``SPAN_SEARCH_RADIUS`` words away.
    """
    text, span, index = row["text"], row[f"{key}_text"], row[f"{key}_index"]
    if span_at(text, span, index):
        return None
    candidates = [span]
    start = word_start(text, index)
    fixed = span.replace("\n", " ").rstrip(".")
    if fixed and start is not None and start < len(text):
        fixed = (fixed[0].lower() if text[start].islower() else fixed[0].upper()) + fixed[1:]
        if span_at(text, fixed, index):
            row[f"{key}_text"] = fixed
            return "text"
        candidates.append(fixed)
    for distance in range(1, SPAN_SEARCH_RADIUS + 1):
        for near in (index - distance, index + distance):
            for candidate in candidates:
                if span_at(text, candidate, near):
                    row[f"{key}_text"], row[f"{key}_index"] = candidate, near
                    return "index"
    return "unresolved"


@dataclass(frozen=True, eq=False, kw_only=True)
class WscTask(SuperGlueTask):
    """WSC as ``wsc.fixed`` (what DePT uses), built from the original JSONL where loaded locally.

    Source: ``text: ...`` with the noun (span1) wrapped as ``* noun *`` and the pronoun (span2) as
    ``# pronoun #`` at their word indices; span2's index moves by 2 when span1 comes first, for the two
    marker words inserted before it (docs/protocol.md#text-formats).
    """

    def _convert_record(self, record: str, ordinal: int) -> list[dict[str, Any]]:
        obj = parse_json(record)
        target = require(obj, "target")
        row: dict[str, Any] = {"text": require(obj, "text")}
        for key in ("span1_index", "span2_index"):
            value = require(target, key)
            if not isinstance(value, int):
                raise RowError(f"target.{key} {value!r} is not an integer")
            row[key] = value
        for key in ("span1_text", "span2_text"):
            row[key] = require(target, key)
        row["idx"] = require(obj, "idx")
        row["label"] = self.parse_label(require(obj, "label"))
        return [row]

    def _fix_rows(self, rowset: RowSet, from_hub: bool) -> None:
        counts = {"text": 0, "index": 0, "unresolved": 0}
        for row in rowset.rows:
            for key in ("span1", "span2"):
                kind = fix_span(row, key)
                if kind is not None:
                    counts[kind] += 1
        rowset.notes["wsc_variant"] = (
            f"{self.hf_config} from the Hub"
            if from_hub
            else f"{self.hf_config} rebuilt from the original WSC JSONL (HF's span-text repairs + span search)"
        )
        rowset.notes["wsc_fixed_spans"] = counts["text"] + counts["index"]
        rowset.notes["wsc_span_fixes"] = counts

    def _segments(self, row: dict[str, Any]) -> tuple[str, ...]:
        """The text with the noun as ``* noun *`` and the pronoun as ``# pronoun #`` (the source: ``text: …``)."""
        text = mark_span(row["text"], row["span1_text"], row["span1_index"], "*")
        shift = 2 if row["span1_index"] < row["span2_index"] else 0
        return (mark_span(text, row["span2_text"], row["span2_index"] + shift, "#"),)


# ---- the tasks, in the order of the paper tables (docs/protocol.md#text-formats, docs/protocol.md#splits, docs/protocol.md#metrics, docs/protocol.md#superglue-jsonl-files, docs/protocol.md#hugging-face-rows) ----------------------

BINARY = ("False", "True")

register_task(
    MultiRcTask(
        name="multirc",
        description="MultiRC: is the answer correct for the question on the paragraph (answer-level F1a)",
        hf_config="multirc",
        local_dir="MultiRC",
        row_fields=(),
        source_fields=("question", "answer", "paragraph"),
        label_names=BINARY,
        split_family="small",
        metric_names=("f1a",),
        headline_metric="f1a",
        official_rows={"train": 27243, "validation": 4848},
    )
)
register_task(
    SuperGlueTask(
        name="boolq",
        description="BoolQ: yes/no question about a passage (2 classes)",
        hf_config="boolq",
        local_dir="BoolQ",
        row_fields=("question", "passage"),
        source_fields=("question", "passage"),
        label_names=BINARY,
        split_family="small",
        metric_names=("accuracy",),
        headline_metric="accuracy",
        official_rows={"train": 9427, "validation": 3270},
    )
)
register_task(
    SuperGlueTask(
        name="wic",
        description="WiC: is the word used in the same sense in both sentences (2 classes)",
        hf_config="wic",
        local_dir="WiC",
        row_fields=("word", "sentence1", "sentence2", "start1", "start2", "end1", "end2"),
        source_fields=("sentence1", "sentence2", "word"),
        label_names=BINARY,
        split_family="small",
        metric_names=("accuracy",),
        headline_metric="accuracy",
        official_rows={"train": 5428, "validation": 638},
    )
)
register_task(
    WscTask(
        name="wsc",
        description="WSC (wsc.fixed): does the pronoun refer to the marked noun (2 classes)",
        hf_config="wsc.fixed",
        local_dir="WSC",
        row_fields=(),
        source_fields=("text",),
        label_names=BINARY,
        split_family="small",
        metric_names=("accuracy",),
        headline_metric="accuracy",
        official_rows={"train": 554, "validation": 104},
    )
)
register_task(
    SuperGlueTask(
        name="cb",
        description="CB: entailment, contradiction or neutral (3 classes; selects by macro-F1)",
        hf_config="cb",
        local_dir="CB",
        row_fields=("premise", "hypothesis"),
        source_fields=("premise", "hypothesis"),
        label_names=("entailment", "contradiction", "neutral"),
        split_family="small",
        metric_names=("f1_multiclass", "accuracy"),
        headline_metric="accuracy",
        official_rows={"train": 250, "validation": 56},
    )
)
