"""Load run records (through ``bench.results``, which owns the schema), filter them, and group them into rows.

A report row is one *setting*: every run whose full spec is the same except for the seed (and the task, which
is the table's other axis). Runs that differ in anything else (method config, training settings, model, preset,
protocol, data source) land in different rows, so they are never averaged together. Rows are labelled by the
method's display name plus only the fields that tell its rows apart, e.g. ``pt`` and ``pt (num_tokens=10)``.
The display name is the record's ``method_record.display_name`` (what the method declares from its config,
e.g. ``ept[placeholder-v0]``; written by the worker, so reports never import training code); a setting whose
records lack it (older records, runs that failed early) takes it from another record of the same setting,
else the bare method name.

Labelling rule, per method: a *config* field (``method_config.*``, ``train.*``) goes into the label when it takes
more than one value among the runs of one task in one family; a *family* field (model, preset, protocol, data source) when it
takes more than one value among all the method's runs. Fields that only vary from task to task (the paper
preset's per-task DePT budgets) do not split rows. Two different specs of one task therefore always get
different labels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.measurement.contention import verdict
from bench.results import iter_records
from suites import list_suites, suite_tasks

FAMILY_FIELDS = ("model", "preset", "protocol", "data.source")
RUN_AXES = ("seed", "task", "suite")  # what a row averages over (seed) or spreads across (task)


@dataclass
class Filters:
    """Which records a report covers; ``None`` keeps everything."""

    suite: list[str] | None = None
    tasks: list[str] | None = None
    methods: list[str] | None = None
    model: list[str] | None = None
    preset: list[str] | None = None
    seeds: list[int] | None = None  # e.g. [42]: the papers' single-seed tables compare with one seed's runs

    def describe(self) -> str:
        parts = [f"{k}={','.join(map(str, v))}" for k, v in vars(self).items() if v]
        return "; ".join(parts) if parts else "all records"


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; leaves are JSON-encoded when they are lists (hashable)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, list) else value
    return out


def setting_fields(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec's fields that define a row: everything but seed, task, suite and the data folder's path."""
    flat = flatten({k: v for k, v in spec.items() if k not in RUN_AXES})
    return {k: v for k, v in flat.items() if k != "data.dir"}


def _short(field: str) -> str:
    if field.startswith("method_config."):
        return field[len("method_config.") :]
    return "data" if field == "data.source" else field


def _peak_memory(rec: dict[str, Any]) -> tuple[float | None, str | None]:
    """Peak memory of the training loop: CUDA allocated over the post-load baseline, else CPU RSS."""
    gpu = rec.get("peak_gpu_mem_allocated_over_baseline_bytes")
    if gpu is not None:
        return float(gpu), "GPU"
    rss = rec.get("peak_rss_train_bytes") or rec.get("peak_rss_bytes")
    return (float(rss), "RSS") if rss is not None else (None, None)


def contended(rec: dict[str, Any]) -> bool | None:
    """Whether the run's time and memory were measured under contention (record key ``contention``, written by
    ``bench/measurement/contention.py``); None when the record does not say (older records): not known. The verdict is
    recomputed from the record's measurements with the current rule (``bench.measurement.contention.verdict``), so every
    record in a report is judged by the same rule whichever version wrote it."""

    info = rec.get("contention")
    if not isinstance(info, dict) or info.get("contended") is None:
        return None
    return verdict(info)[0]


def budget(spec: dict[str, Any]) -> str:
    """The training budget as a paper states it: ``"200 steps x 16"`` (optimiser steps x batch size)."""
    train = spec.get("train") or {}
    return f"{train.get('max_steps', '?')} steps x {train.get('batch_size', '?')}"


def is_t5(backbone: str, family: str | None) -> bool:
    """A T5 backbone (the published numbers' family): a seq2seq model whose name says T5 (``t5-base``,
    ``google/t5-v1_1-base``); records without ``env.backbone_family`` are judged by the name alone."""
    return "t5" in backbone.lower() and family in (None, "seq2seq")


def display_names(runs: pd.DataFrame) -> pd.Series:
    """Per run: the display name its records declare for its setting, else the method name."""
    declared = runs["record"].map(lambda rec: (rec.get("method_record") or {}).get("display_name"))
    per_setting = declared.groupby(runs["setting_key"]).transform(
        lambda s: s.dropna().iloc[0] if s.notna().any() else None
    )
    return per_setting.where(per_setting.notna(), runs["method"]).astype(object)


def label_rows(runs: pd.DataFrame) -> pd.Series:
    """A readable row label per run (see the module docstring for the rule), from the ``display`` column."""
    labels = pd.Series(index=runs.index, dtype=object)
    for method, group in runs.groupby("display", sort=True):
        settings = {i: group.at[i, "setting"] for i in group.index}
        fields = sorted({f for s in settings.values() for f in s})
        split: list[str] = []
        for field in fields:
            if field in FAMILY_FIELDS:
                differs = len({json.dumps(s.get(field)) for s in settings.values()}) > 1
            else:
                cells: dict[str, set[str]] = {}  # runs of one task and one family
                for i, s in settings.items():
                    family = json.dumps([s.get(f) for f in FAMILY_FIELDS])
                    cells.setdefault(group.at[i, "task"] + family, set()).add(json.dumps(s.get(field)))
                differs = any(len(values) > 1 for values in cells.values())
            if differs:
                split.append(field)
        for i, s in settings.items():
            parts = [f"{_short(f)}={s.get(f)}" for f in split]
            labels[i] = f"{method} ({', '.join(parts)})" if parts else method
    return labels


COLUMNS = [
    "run_id", "status", "error", "suite", "task", "method", "model", "preset", "seed", "metric", "score",
    "dev_score", "trainable_params", "train_time_s", "step_ms", "peak_mem_bytes", "mem_kind", "backbone",
    "backbone_family", "budget", "contended", "setting", "setting_key", "display", "row", "record",
]  # fmt: skip


def records(results_dir: Path | str, filters: Filters | None = None) -> list[dict[str, Any]]:
    """Every valid record under ``results_dir`` (``bench.results.iter_records``: corrupt files are warned about
    and skipped) whose spec passes ``filters``."""

    filters = filters or Filters()
    wanted = {
        "suite": filters.suite, "task": filters.tasks, "method": filters.methods, "model": filters.model,
        "preset": filters.preset,
    }  # fmt: skip
    return [
        rec
        for rec in iter_records(Path(results_dir))
        if all(not values or rec["spec"][key] in values for key, values in wanted.items())
        and (not filters.seeds or int(rec["spec"]["seed"]) in filters.seeds)
    ]


def finished_records(results_dir: Path | str) -> list[dict[str, Any]]:
    """The records of the runs that finished (status ``ok``)."""
    return [rec for rec in records(results_dir) if rec["status"] == "ok"]


def run_row(rec: dict[str, Any]) -> dict[str, Any]:
    """One record as a report row (``load_runs``'s columns but display and row, which need every run)."""
    spec, ok = rec["spec"], rec["status"] == "ok"
    headline = rec["metrics"].get("headline") or {}
    memory, kind = _peak_memory(rec)
    setting = setting_fields(spec)
    return {
        "run_id": rec["run_id"], "status": rec["status"], "error": rec["error"], "suite": spec["suite"],
        "task": spec["task"], "method": spec["method"], "model": spec["model"], "preset": spec["preset"],
        "seed": int(spec["seed"]), "metric": headline.get("name"),
        "score": headline.get("test") if ok else None, "dev_score": headline.get("dev") if ok else None,
        "trainable_params": rec.get("trainable_params"), "train_time_s": rec.get("train_time_s"),
        "step_ms": rec.get("step_time_ms_median"), "peak_mem_bytes": memory, "mem_kind": kind,
        "backbone": Path(str(spec["model"])).name, "backbone_family": (rec.get("env") or {}).get("backbone_family"),
        "budget": budget(spec), "contended": contended(rec), "setting": setting,
        "setting_key": json.dumps(setting, sort_keys=True), "record": rec,
    }  # fmt: skip


def load_runs(results_dir: Path | str, filters: Filters | None = None) -> pd.DataFrame:
    """One row per run record that passes ``filters``, with the columns reports need.

    Columns: run_id, status, error, suite, task, method, model, preset, seed, metric, score (headline test
    metric, x100), dev_score, trainable_params, train_time_s, step_ms, peak_mem_bytes, mem_kind, backbone (the
    model name, e.g. ``minilm``), backbone_family (``env.backbone_family``: seq2seq | encoder | decoder, None in
    records without it), budget (``"<max_steps> steps x <batch_size>"``), contended (``contention.contended``:
    True/False, None when the record does not say), setting (the row-defining fields), setting_key, display (the
    method's display name), row (label), record (the full dict).
    """
    rows = [run_row(rec) for rec in records(results_dir, filters)]
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    runs = pd.DataFrame(rows)
    runs["display"] = display_names(runs)
    runs["row"] = label_rows(runs)
    for column in ("score", "dev_score", "trainable_params", "train_time_s", "step_ms", "peak_mem_bytes"):
        runs[column] = pd.to_numeric(runs[column], errors="coerce")
    return runs.sort_values(["row", "suite", "task", "seed", "run_id"]).reset_index(drop=True)[COLUMNS]


def by_cell(recs: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """``{(task, method): [record per seed, seed order]}``."""
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rec in recs:
        cells.setdefault((rec["spec"]["task"], rec["spec"]["method"]), []).append(rec)
    return {k: sorted(v, key=lambda r: r["spec"]["seed"]) for k, v in cells.items()}


def predicted_and_reference(rec: dict[str, Any]) -> tuple[list[str], list[str]] | None:
    """The record's per-example test strings ``(predicted, reference)``; None when it stored none."""
    test = (rec.get("predictions") or {}).get("test") or {}
    predicted, reference = test.get("predicted"), test.get("reference")
    return (predicted, reference) if predicted and reference else None


def task_columns(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """``[(suite, task), ...]`` present in ``runs``, suites and tasks in their registry order."""

    present = set(zip(runs["suite"], runs["task"], strict=True))
    order = []
    for suite in list_suites():
        order += [(suite, t) for t in suite_tasks(suite) if (suite, t) in present]
    order += sorted(present - set(order))
    return order


def display_name(recs: list[dict[str, Any]], method: str) -> str:
    """The display name the first of ``recs`` that declares one gives (``method_record.display_name``), else
    ``method``."""
    for rec in recs:
        name = (rec.get("method_record") or {}).get("display_name")
        if name:
            return name
    return method


def load_plain(path: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The plain-PEFT reference rows (``scripts/plain_peft.py``'s JSON lines), the last row per (task, method,
    seed), as ``{(task, method): [row per seed, seed order]}``; empty when the file does not exist."""
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows[(row["task"], row["method"], row["seed"])] = row
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for (task, method, _), row in sorted(rows.items()):
        cells.setdefault((task, method), []).append(row)
    return cells
