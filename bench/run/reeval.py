"""``bench eval``: rebuild a finished run from its record and artifact and re-evaluate dev and test.

The backbone and method are rebuilt from the record's spec with the worker's own ``prepare_data``/``build``
(same seed, same source prompts), the artifact's trained state is loaded (``bench/run/artifacts.py``), and dev and
test are evaluated as at the end of training. A run is reproduced only if every metric is exactly equal.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch

from bench.artifact_file import EXPORT_CONFIG, EXPORT_FORMAT, EXPORT_RECORD
from bench.errors import InputError
from bench.planning.inputs import prepare_data
from bench.registry import closest
from bench.results import iter_records, read_record
from bench.run.artifacts import load_artifact
from bench.run.assemble import build
from bench.spec import RunSpec
from bench.training.precision import math_mode, resolve
from bench.training.trainer import evaluate


class NotReproduced(Exception):
    """The artifact exists but cannot be loaded into the rebuilt run (exit code 1, not bad input)."""


def find_record(ref: str, out_dir: Path) -> tuple[Path, dict]:
    """A record by path, by exported folder (``bench export --format folder``) or by run id (a unique prefix
    works); one-line ``InputError`` with did-you-mean. Returns the folder the record's artifact path is
    relative to, and the record."""

    path = Path(ref)
    if path.is_dir() and (path / EXPORT_CONFIG).is_file():
        return path, _exported_record(path)
    if path.suffix == ".json" or path.is_file():
        record = read_record(path) if path.is_file() else None
        if record is None:
            raise InputError(f"{ref!r} is not a readable run record")
        return path.parent, record
    out_dir = Path(out_dir)
    records = list(iter_records(out_dir)) if out_dir.is_dir() else []
    matches = [r for r in records if r["run_id"].startswith(ref.strip())] if ref.strip() else []
    if len(matches) == 1:
        return out_dir, matches[0]
    ids = sorted(r["run_id"] for r in records)
    if len(matches) > 1:
        raise InputError(
            f"run id {ref!r} is ambiguous in {out_dir}/: {', '.join(r['run_id'] for r in matches)}"
        )
    by_prefix = {i[: len(ref)]: i for i in reversed(ids)}  # a mistyped prefix suggests the full id
    close = closest(ref, list(by_prefix))
    hint = f" (did you mean {by_prefix[close]!r}?)" if close else ""
    hint = hint if ids else f" ({out_dir}/ has no records)"
    raise InputError(f"no run {ref!r} in {out_dir}/{hint}; give a run id or a record path")


def _exported_record(folder: Path) -> dict:
    """The record inside an exported folder, checked against its ``config.json``."""
    try:
        config = json.loads((folder / EXPORT_CONFIG).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{folder}/{EXPORT_CONFIG} cannot be read: {str(exc).splitlines()[0]}") from None
    if not isinstance(config, dict) or config.get("format") != EXPORT_FORMAT:
        raise InputError(f"{folder} is not a folder written by bench export (format {EXPORT_FORMAT!r})")
    record = read_record(folder / EXPORT_RECORD) if (folder / EXPORT_RECORD).is_file() else None
    if record is None or record.get("run_id") != config.get("run_id"):
        raise InputError(f"{folder}/{EXPORT_RECORD} is missing or is not run {config.get('run_id')!r}")
    return record


def _spec_with_data_dir(spec: RunSpec, data_dir: str | None) -> RunSpec:
    """The spec with a usable local data folder (the folder is not part of the run id)."""
    if spec.data.get("source") != "local":
        return spec
    chosen = data_dir or (spec.data.get("dir") if Path(spec.data.get("dir", "")).is_dir() else None)
    chosen = chosen or os.environ.get("BENCH_DATA_DIR")
    if not chosen or not Path(chosen).is_dir():
        raise InputError(f"the run's data folder {spec.data.get('dir')!r} does not exist; pass --data-dir")
    return dataclasses.replace(spec, data={**spec.data, "dir": str(Path(chosen).resolve())})


def check_finished(record: dict) -> None:
    """``InputError`` unless the run finished (status ``ok``) and saved an artifact."""
    if record["status"] != "ok":
        raise InputError(
            f"run {record['run_id']} is {record['status']!r}, not finished ('ok'): nothing to load"
        )
    if not record.get("artifact"):
        raise InputError(f"run {record['run_id']} has no saved artifact (it ran with --no-artifacts)")


def rebuild(record: dict, results_dir: Path, data_dir: str | None = None):
    """``(backbone, task, dev, test, train)``: the run of ``record`` rebuilt with its artifact's trained state
    loaded (on CPU, evaluation not yet run). Bad input (a failed run, no artifact, an edited record) is an
    ``InputError``; an artifact that does not fit is ``NotReproduced``."""

    check_finished(record)
    spec = _spec_with_data_dir(RunSpec.from_dict(record["spec"]), data_dir)
    if spec.run_id != record["run_id"]:
        raise InputError(
            f"record {record['run_id']}: its spec hashes to {spec.run_id}; the record was edited"
        )
    train = spec.train_config()
    task, _, dev, test, _ = prepare_data(spec, train)
    backbone, _ = build(spec, task, train, results_dir)
    try:
        load_artifact(Path(results_dir) / record["artifact"], backbone)
    except ValueError as exc:
        raise NotReproduced(str(exc)) from None
    return backbone, task, dev, test, train


def reevaluate(record: dict, results_dir: Path, data_dir: str | None = None) -> dict[str, dict[str, float]]:
    """Dev and test metrics of the run rebuilt from ``record`` and its artifact under ``results_dir``."""

    backbone, task, dev, test, train = rebuild(record, results_dir, data_dir)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    labels = task.label_strings()
    dev_split, test_split = backbone.encode(dev, labels), backbone.encode(test, labels)
    backbone.to(device)
    with math_mode(
        resolve(train.precision, device), device
    ):  # the run's TF32 setting (evaluate: its autocast)
        return {
            "dev": evaluate(backbone, dev_split, task, train, device),
            "test": evaluate(backbone, test_split, task, train, device),
        }


def compare(
    record: dict, reproduced: dict[str, dict[str, float]]
) -> list[tuple[str, str, float, float, bool]]:
    """Rows ``(split, metric, recorded, reproduced, equal)`` over every recorded and reproduced metric."""
    rows = []
    for split in ("dev", "test"):
        recorded = record["metrics"].get(split) or {}
        for name in sorted(set(recorded) | set(reproduced[split])):
            a, b = recorded.get(name), reproduced[split].get(name)
            rows.append((split, name, a, b, a is not None and b is not None and a == b))
    return rows
