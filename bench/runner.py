"""Plan a grid of runs, skip the finished ones, execute the rest one subprocess each, summarise.

The runner names no method or task: specs come from the registries and presets (ARCHITECTURE.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.presets import get_preset, method_overrides, train_overrides
from bench.results import failed_record, read_record, record_path, write_json_atomic
from bench.spec import RunSpec, TrainConfig
from bench.worker import PROGRESS_PREFIX
from methods.registry import build_config, config_to_dict, parse_method_list


@dataclass
class RunRequest:
    """What the user asked for, before expansion into specs."""

    suite: str
    tasks: list[str]
    methods: list[str]
    seeds: list[int]
    preset: str
    model: str | None = None
    data_dir: str | None = None
    max_steps: int | None = None
    max_train_samples: int | None = None
    overrides: dict[str, dict[str, str]] | None = None  # {"ept": {"fusion.attn_dim": "8"}, "train": {...}}


def plan(request: RunRequest) -> list[RunSpec]:
    """Expand a request into fully resolved specs (task x method x seed), validating every value."""
    preset = get_preset(request.preset)
    overrides = request.overrides or {}
    unknown = set(overrides) - set(request.methods) - {"train"}
    if unknown:
        name = sorted(unknown)[0]
        raise ValueError(
            f"--set {name}.…: {name!r} is neither a selected method ({', '.join(request.methods)}) nor 'train'"
        )
    data = (
        {"source": "local", "dir": str(Path(request.data_dir).resolve())}
        if request.data_dir
        else {"source": "hub"}
    )
    if request.data_dir:
        from suites import check_local_files, get_task

        for task in request.tasks:
            check_local_files(get_task(task, request.suite), request.data_dir)
    specs = []
    for task in request.tasks:
        train = TrainConfig()
        for key, value in train_overrides(preset, task).items():
            train.set(key, value)
        if request.max_steps is not None:
            train.set("max_steps", request.max_steps)
        if request.max_train_samples is not None:
            train.set("max_train_samples", request.max_train_samples)
        for key, value in overrides.get("train", {}).items():
            train.set(key, value)
        train.validate()
        for method in request.methods:
            config = build_config(
                method, {**method_overrides(preset, task, method), **overrides.get(method, {})}
            )
            for seed in request.seeds:
                specs.append(
                    RunSpec(
                        suite=request.suite,
                        task=task,
                        method=method,
                        method_config=config_to_dict(config),
                        model=request.model or preset.model,
                        preset=preset.name,
                        seed=seed,
                        train=dict(vars(train)),
                        data=data,
                    )
                )
    return specs


def parse_overrides(items: Iterable[str], methods: list[str]) -> dict[str, dict[str, str]]:
    """``["ept.fusion.attn_dim=8", "train.batch_size=8"]`` -> ``{"ept": {"fusion.attn_dim": "8"}, ...}``."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        scope, dot, field = key.partition(".")
        if not sep or not dot or not field:
            raise ValueError(f"--set {item!r} is not of the form method.field=value (or train.field=value)")
        if scope != "train":
            parse_method_list(scope)  # unknown method -> did-you-mean error
        out.setdefault(scope, {})[field] = value
    return out


def run_one(
    spec: RunSpec, out_dir: Path, on_progress=None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Execute ``spec`` in a subprocess; a crash of that process still leaves a ``failed`` record.

    ``env``: extra environment variables for the run's process (a GPU assignment, a search trial's address).
    """
    path = record_path(out_dir, spec)
    with tempfile.TemporaryDirectory(prefix="ptbench-") as tmp:
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_text(json.dumps(spec.to_dict()))
        env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", str(spec_file), str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parents[1],
        )
        stderr_lines: list[str] = []

        def drain() -> None:
            for line in proc.stderr:
                stderr_lines.append(line)
                del stderr_lines[:-200]

        drainer = threading.Thread(target=drain, daemon=True)
        drainer.start()
        for line in proc.stdout:
            if line.startswith(PROGRESS_PREFIX) and on_progress:
                on_progress(json.loads(line[len(PROGRESS_PREFIX) :]))
        code = proc.wait()
        drainer.join()
    record = read_record(path)
    if record is None or record["run_id"] != spec.run_id:
        tail = "".join(stderr_lines)[-4000:]
        last = next((ln.strip() for ln in reversed(stderr_lines) if ln.strip()), "no output")
        record = failed_record(spec, f"worker exited with code {code}: {last}", tail)
        write_json_atomic(path, record)
    return record


def existing(spec: RunSpec, out_dir: Path) -> dict[str, Any] | None:
    path = record_path(out_dir, spec)
    return read_record(path) if path.exists() else None
