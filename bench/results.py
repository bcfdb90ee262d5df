"""Run records: the one module that owns their schema, their files and their loading.

A finished run's record is filled by ``bench/run/record.py`` (``ok_record``) from this schema's ``empty_record``;
failed and cancelled records are built here (``failed_record``).

One JSON file per run under the results folder, named ``<method>_<task>_seed<seed>_<run_id>.json`` where
``run_id`` is the hash of the run's full spec (``bench.spec.RunSpec.run_id``). Files are written atomically
(temporary file in the same folder, fsync, ``os.replace``), so a killed run never leaves half a file.

Record schema (``schema_version`` 1); every key is always present, ``null`` where it does not apply:

==================================  ========================================================================
key                                 meaning
==================================  ========================================================================
schema_version                      1
run_id                              16 hex chars: sha256 of the spec identity (``RunSpec.identity``)
spec                                the full ``RunSpec`` (suite, task, method, method_config, model, preset,
                                    seed, train, data, protocol)
status                              ``ok`` | ``failed`` | ``oom`` | ``cancelled`` (see below) | ``pruned`` (a
                                    search trial its pruner stopped early: metrics up to that point, ``error``
                                    says where; ``spec.trial`` names the study and trial number; trials never
                                    evaluate test, so ``test`` is empty)
error                               null, or the one-line error (``Type: message``); ``traceback`` has more
traceback                           null, or the last lines of the traceback / the crashed worker's stderr
started_at, finished_at             ISO-8601 UTC timestamps
metrics                             ``{"dev": {...}, "test": {...}, "headline": {"name", "dev", "test"},
                                    "selection_metric", "best_step", "dev_history": [{"step", "metrics",
                                    "loss"}], "loss_history": [{"step", "loss", "lr"}]}``; all metrics x100
                                    (docs/protocol.md#metrics); ``loss_history``: the mean training loss of
                                    every ``train.log_every`` updated steps and the first optimiser group's
                                    learning rate at the window's last step (docs/records.md#learning-curves;
                                    absent in older records)
trainable_params                    parameters the optimiser updates, without the task head
head_params                         task-head parameters (encoder backbones), 0 for text-to-text
extra_params                        EPT's modules beyond the DePT budget (0 for other methods)
saved_params, transfer_params       docs/records.md#parameter-counts
total_params                        all parameters of backbone + method
param_breakdown                     per-part counts of the method
virtual_tokens                      tokens the method adds per example
train_time_s                        wall time of the training loop, evaluation excluded
step_time_ms_median, ..._p90        per optimiser step, after ``train.timing_warmup_steps`` warm-up steps
steps                               optimiser steps done (for a run that did not finish: the step reached)
nan_skipped_batches                 batches skipped for a non-finite loss (``train.nan_policy=skip``), else 0
eval_time_s                         all evaluation (periodic dev + final dev/test)
load_time_s                         data + model loading
peak_gpu_mem_allocated_bytes        CUDA peaks (absolute, and ``..._over_baseline_bytes`` over the post-load
peak_gpu_mem_reserved_bytes         baseline); null on CPU
peak_rss_bytes                      lifetime peak RSS of the run's process
peak_rss_train_bytes                peak RSS sampled during the training loop
samples_per_s                       training examples per second of train time
tokens_per_s                        real tokens (non-pad source + target) per second of train time
effective_tokens_per_s              processed positions (padded) + virtual tokens, per second
final_loss                          training loss at the last step (unfinished run: the last loss seen)
contention                          null (no training loop ran, older records), or whether the machine was
                                    shared while the loop ran: ``{"contended", "why", "workers", "threads",
                                    "cpu_count", "usable_cores", "wall_s", "cpu_time_s", "cpu_util",
                                    "other_cpu_s", "other_cpu_cores", "loadavg_1m": [start, end],
                                    "loadavg_1m_mean", "loadavg_samples"}`` (``bench/measurement/contention.py``)
method_record                       method-specific facts (e.g. ``ept_variant``, ``gate_weights_init``,
                                    ``gate_weights_best``)
artifact                            path of the saved artifact relative to the results folder
                                    (``artifacts/<run_id>.safetensors``: method ``saved_state``, task head,
                                    exported ``prompt``; ``bench/run/artifacts.py``), or null (failed run, or
                                    ``bench run --no-artifacts``)
artifact_bytes                      the artifact's size on disk in bytes (docs/records.md#provenance), or null
transfer                            null, or for runs with source prompts (SPoT/ATTEMPT/MPT): ``{"sources":
                                    [{"item", "kind": "run"|"file", "run_id"|"sha256", "method", "task",
                                    "seed"}], "source_run_ids": [...], "self_transfer": bool}``
                                    (``self_transfer``: the target task is among the sources, §3.7);
                                    the source parameters are in ``transfer_params``
data                                split sizes and provenance from the suite (files, hashes, protocol)
predictions                         optional (may be absent in older records): ``{"test": {"predicted":
                                    [str], "reference": [str]}}``, the test split's strings per example in
                                    split order, for paired bootstraps over test examples (``bench report``)
env                                 software/hardware provenance (``bench.measurement.measure.environment``)
==================================  ========================================================================

Statuses (docs/records.md#memory, docs/records.md#provenance). Only ``ok`` is finished: ``bench run`` skips ``ok`` records and runs every
other status again.

* ``ok``: trained and evaluated; every field filled.
* ``failed``: an exception in the run (NaN/inf loss with ``nan_policy=stop``, a method error, bad data) or a
  crash of its worker process (segfault, killed by the OS: ``error`` names the signal). ``steps``,
  ``final_loss``, ``metrics.dev_history`` and ``metrics.loss_history`` hold how far it got (a crashed
  worker's record has no histories: only the parent's view survives).
* ``oom``: out of memory (``torch.OutOfMemoryError`` on the GPU, ``MemoryError`` on the CPU); the batch is
  never shrunk, so the record says the setting does not fit. Progress fields as for ``failed``.
* ``cancelled``: ``bench run`` was interrupted (SIGINT/SIGTERM) during this run; written by the parent, with
  the last step it had reported.

Keys added after schema version 1 first shipped (``nan_skipped_batches``) may be missing in older records;
the loader accepts that (``OPTIONAL_KEYS``).
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path
from typing import Any

from bench.atomic import atomic_open
from bench.measurement.contention import check
from bench.spec import RunSpec

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "oom", "cancelled", "pruned")
# Keys added after schema 1 was first written: records that predate them read as null, not as invalid.
LATER_KEYS: dict[str, Any] = {
    "artifact": None,
    "artifact_bytes": None,
    "transfer": None,
    "contention": None,
    "interruptions": None,
}
# Keys that may be absent altogether (added later within schema version 1; predictions are optional).
OPTIONAL_KEYS = frozenset({"nan_skipped_batches", "predictions"})


def record_path(out_dir: Path, spec: RunSpec) -> Path:
    return Path(out_dir) / f"{spec.method}_{spec.task}_seed{spec.seed}_{spec.run_id}.json"


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON so that readers see either the old file or the complete new one."""
    with atomic_open(path) as handle:
        json.dump(data, handle, indent=2, sort_keys=True, default=str)


def empty_record(spec: RunSpec) -> dict[str, Any]:
    """A record with every schema key present (null/empty) for ``spec``."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": spec.run_id,
        "spec": spec.to_dict(),
        "status": "failed",
        "error": None,
        "traceback": None,
        "started_at": None,
        "finished_at": None,
        "metrics": {
            "dev": {},
            "test": {},
            "headline": None,
            "selection_metric": None,
            "best_step": None,
            "dev_history": [],
            "loss_history": [],
        },
        "trainable_params": None,
        "head_params": None,
        "extra_params": None,
        "saved_params": None,
        "transfer_params": None,
        "total_params": None,
        "param_breakdown": {},
        "virtual_tokens": None,
        "train_time_s": None,
        "step_time_ms_median": None,
        "step_time_ms_p90": None,
        "steps": None,
        "nan_skipped_batches": 0,
        "eval_time_s": None,
        "load_time_s": None,
        "peak_gpu_mem_allocated_bytes": None,
        "peak_gpu_mem_reserved_bytes": None,
        "peak_gpu_mem_allocated_over_baseline_bytes": None,
        "peak_gpu_mem_reserved_over_baseline_bytes": None,
        "peak_rss_bytes": None,
        "peak_rss_train_bytes": None,
        "samples_per_s": None,
        "tokens_per_s": None,
        "effective_tokens_per_s": None,
        "final_loss": None,
        "contention": None,
        "interruptions": None,
        "method_record": {},
        "artifact": None,
        "artifact_bytes": None,
        "transfer": None,
        "data": {},
        "predictions": None,
        "env": {},
    }


def failed_record(
    spec: RunSpec,
    error: str,
    trace: str | None,
    status: str = "failed",
    progress: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A record of a run that did not finish: ``failed``, ``oom`` or ``cancelled``.

    ``error`` is one line, ``trace`` the traceback (or the crashed worker's stderr); ``progress`` is how far
    the run got: ``{"steps", "final_loss", "dev_history", "loss_history", "nan_skipped_batches"}`` (any
    subset).
    """

    if status not in STATUSES or status == "ok":
        raise ValueError(f"status {status!r} is not one of failed, oom, cancelled")
    record = empty_record(spec)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    record.update(status=status, error=error, traceback=trace, finished_at=now)
    progress = progress or {}
    for key in ("steps", "final_loss", "nan_skipped_batches", "train_time_s"):
        if progress.get(key) is not None:
            record[key] = progress[key]
    for key in ("dev_history", "loss_history"):
        if progress.get(key):
            record["metrics"][key] = progress[key]
    return record


def validate_record(record: Any) -> None:
    """Raise ``ValueError`` if ``record`` is not a run record of this schema."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    if record.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"schema_version {record.get('schema_version')!r} is not {SCHEMA_VERSION}")
    missing = sorted(set(empty_record_keys()) - set(record) - OPTIONAL_KEYS)
    if missing:
        raise ValueError(f"missing keys: {', '.join(missing)}")
    if record["status"] not in STATUSES:
        raise ValueError(f"status {record['status']!r} is not one of {STATUSES}")
    if not all(isinstance(record[k], dict) for k in ("metrics", "spec", "method_record")):
        raise ValueError("metrics, spec and method_record must be JSON objects")
    metrics = record["metrics"]
    if not all(isinstance(metrics.get(k) or {}, dict) for k in ("dev", "test", "headline")):
        raise ValueError("metrics.dev, metrics.test and metrics.headline must be JSON objects")
    if not all(isinstance(metrics.get(k, []), list) for k in ("dev_history", "loss_history")):
        raise ValueError("metrics.dev_history and metrics.loss_history must be JSON arrays")
    if not isinstance(record["run_id"], str):
        raise ValueError(f"run_id {record['run_id']!r} is not a string")

    check(record.get("contention"))
    RunSpec.from_dict(record["spec"])


def empty_record_keys() -> list[str]:
    spec = RunSpec("s", "t", "m", {}, "model", "p", 0, {})
    return list(empty_record(spec))


def read_record(path: Path) -> dict[str, Any] | None:
    """The record at ``path``, or None if it is missing, unreadable or not of this schema."""
    try:
        record = json.loads(Path(path).read_text())
        if isinstance(record, dict):
            for key, value in LATER_KEYS.items():
                record.setdefault(key, value)
        validate_record(record)
        return record
    except (OSError, ValueError, TypeError, RecursionError) as exc:
        if Path(path).exists():
            warnings.warn(f"skipping {path}: {exc}", stacklevel=2)
        return None


def iter_records(out_dir: Path):
    """Every valid record under ``out_dir``; corrupt or foreign JSON files are warned about and skipped."""
    for path in sorted(Path(out_dir).glob("*.json")):
        record = read_record(path)
        if record is not None:
            yield record


def load_records(out_dir: Path | str = "results"):
    """All records as one pandas DataFrame, one row per run, for reports and tuning.

    Columns: run_id, status, error, suite, task, method, model, preset, seed, protocol, trial_study (the study
    of a ``bench tune`` trial, else null), headline_metric,
    headline_dev, headline_test, ``dev.<metric>``/``test.<metric>`` for every metric, the count, time,
    memory and throughput fields of the schema, ``artifact``, ``artifact_bytes``, ``ept_variant`` and
    ``self_transfer`` (or null), and ``record`` (the full dict).
    """
    import pandas as pd  # noqa: PLC0415 - pandas only for the table view; reading records stays light

    rows = []
    for rec in iter_records(Path(out_dir)):
        spec, metrics = rec["spec"], rec["metrics"]
        headline = metrics.get("headline") or {}
        row = {
            "run_id": rec["run_id"],
            "status": rec["status"],
            "error": rec["error"],
            "suite": spec["suite"],
            "task": spec["task"],
            "method": spec["method"],
            "model": spec["model"],
            "preset": spec["preset"],
            "seed": spec["seed"],
            "protocol": spec.get("protocol"),
            "headline_metric": headline.get("name"),
            "headline_dev": headline.get("dev"),
            "headline_test": headline.get("test"),
            "ept_variant": (rec.get("method_record") or {}).get("ept_variant"),
            "self_transfer": (rec.get("transfer") or {}).get("self_transfer"),
            "trial_study": (spec.get("trial") or {}).get("study"),  # set for `bench tune` trials
        }
        for split in ("dev", "test"):
            for name, value in (metrics.get(split) or {}).items():
                row[f"{split}.{name}"] = value
        for key in empty_record_keys():
            value = rec.get(key)
            if (
                key not in row
                and not isinstance(value, dict | list)
                and key not in ("traceback", "spec", "predictions")
            ):
                row[key] = value
        row["record"] = rec
        rows.append(row)
    return pd.DataFrame(rows)
