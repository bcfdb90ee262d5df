"""Readers for the original GLUE TSV and SuperGLUE JSONL files (docs/protocol.md#glue-tsv-files, docs/protocol.md#superglue-jsonl-files).

Why the ``csv`` module and not pandas: the TSV files contain bare ``"`` characters, so quoting must be off
(``csv.QUOTE_NONE``; with default quoting MRPC, QNLI and STS-B fail and RTE/test.tsv silently loses rows), and
every value must stay the exact string of the file (pandas would turn ``NA``/``null``/empty fields into NaN).
Files are decoded with ``utf-8-sig`` so MRPC's UTF-8 BOM does not become part of the first column name.

Each file is read once as bytes: the same bytes are hashed (sha256, for provenance) and parsed. Rows are kept
in file order, because the split permutation indexes rows by position (docs/protocol.md#splits).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suites.errors import RowError, TaskDataError

MAX_MALFORMED_FRACTION = 0.01
"""More malformed rows than this fraction of a file is an error, not something to skip (docs/protocol.md#glue-tsv-files)."""


@dataclass
class RawFile:
    """The data records of one file, each with its 1-based line number, and the file's sha256."""

    path: Path
    sha256: str
    records: list[tuple[int, Any]]  # (line, list[str] for TSV | str for JSONL)
    header: list[str] | None = None


@dataclass
class Converted:
    """Rows converted to the HF schema, plus what was skipped on the way."""

    rows: list[dict[str, Any]]
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


def _read_text(path: Path) -> tuple[str, str]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TaskDataError(f"{path}: not valid UTF-8 at byte {exc.start}") from None
    return text, hashlib.sha256(data).hexdigest()


def read_tsv(path: Path, column_names: Sequence[str] | None = None) -> RawFile:
    """Read a GLUE TSV; the first line is the header unless ``column_names`` is given (CoLA has none).

    Blank lines are skipped, as ``csv.DictReader`` (used by the HF loading script) skips them. A last line
    without a newline (CoLA dev.tsv) is read like any other.
    """
    text, sha = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = list(column_names) if column_names is not None else None
    records: list[tuple[int, Any]] = []
    for fields in reader:
        if not fields:
            continue
        if header is None:
            header = fields
            continue
        records.append((reader.line_num, fields))
    if header is None:
        raise TaskDataError(f"{path}: empty file (no header line)")
    return RawFile(path=path, sha256=sha, records=records, header=header)


def read_jsonl(path: Path) -> RawFile:
    """Read a SuperGLUE JSONL file; records stay JSON text here and are parsed during conversion, so that
    one broken line counts as one malformed row instead of failing the file."""
    text, sha = _read_text(path)
    # split on "\n" only: str.splitlines would also break at U+2028 etc., which JSON strings may contain raw
    records = [(n, line) for n, line in enumerate(text.split("\n"), start=1) if line.strip()]
    return RawFile(path=path, sha256=sha, records=records)


def column_index(raw: RawFile, column: str) -> int:
    """Position of ``column`` in the header; a missing column is a wrong file, not a malformed row."""
    assert raw.header is not None
    if column not in raw.header:
        raise TaskDataError(f"{raw.path}: no column {column!r} in the header (has: {', '.join(raw.header)})")
    return raw.header.index(column)


def convert_records(raw: RawFile, convert: Callable[[Any, int], list[dict[str, Any]]]) -> Converted:
    """Convert each record with ``convert(record, ordinal)``; a ``RowError`` marks the row malformed.

    ``ordinal`` is the 0-based position of the record among the file's data rows, counting malformed rows
    too, which is how the HF loading script numbers ``idx``. Malformed rows are skipped and counted, as the
    HF script filters corrupted rows; more than ``MAX_MALFORMED_FRACTION`` of them raises ``TaskDataError``
    naming the file, the first bad line and the reason.
    """
    out = Converted(rows=[])
    for ordinal, (line, record) in enumerate(raw.records):
        try:
            out.rows.extend(convert(record, ordinal))
        except RowError as exc:
            out.malformed.append((line, str(exc)))
    total = len(raw.records)
    if out.malformed and len(out.malformed) > MAX_MALFORMED_FRACTION * total:
        line, reason = out.malformed[0]
        raise TaskDataError(
            f"{raw.path}: {len(out.malformed)} of {total} rows are malformed (more than "
            f"{MAX_MALFORMED_FRACTION:.0%}); first at line {line}: {reason}"
        )
    return out
