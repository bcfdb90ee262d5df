"""Plan a grid of runs, skip the finished ones, execute the rest one subprocess each, summarise.

The runner names no method or task: specs come from the registries and presets (ARCHITECTURE.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.presets import get_preset, method_overrides, train_overrides
from bench.results import failed_record, read_record, record_path, write_json_atomic
from bench.signals import Terminated
from bench.spec import RunSpec, TrainConfig, flatten_config
from bench.worker import PROGRESS_PREFIX
from methods.registry import build_config, config_to_dict, get_method_class, parse_method_list


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
    out: str | None = None  # results folder, where source prompts are looked up (default results/)
    sweeps: list[tuple[str, str, list[str]]] | None = None  # [("pt", "num_tokens", ["10", "20"])]


def plan(request: RunRequest) -> list[RunSpec]:
    """Every spec to run: the source runs that must train first, then the requested runs (see below)."""
    sources, specs = plan_with_sources(request)
    return sources + specs


def plan_with_sources(request: RunRequest) -> tuple[list[RunSpec], list[RunSpec]]:
    """The missing source runs (deduplicated, to run first) and the requested specs, with sources resolved."""
    from bench.results import iter_records
    from bench.sources import resolve_sources

    specs = _plan_requested(request)
    out_dir = Path(request.out or "results")
    records: list[dict] | None = None
    added: dict[str, RunSpec] = {}
    for spec in specs:
        method_cls = get_method_class(spec.method)
        if not method_cls.requires_sources:
            continue
        if records is None:
            records = list(iter_records(out_dir)) if out_dir.is_dir() else []
        config = build_config(spec.method, flatten_config(spec.method_config))

        def source_spec(task: str, seed: int, spec=spec, cls=method_cls) -> RunSpec:
            return _source_spec(request, spec, cls, task, seed)

        entries, to_train = resolve_sources(spec, method_cls, config, out_dir, records, source_spec)
        spec.sources = entries
        for source in to_train:
            added.setdefault(source.run_id, source)
    # A requested run that is also a needed source runs once, ahead of the runs that need it.
    return list(added.values()), [s for s in specs if s.run_id not in added]


def _source_spec(request: RunRequest, target: RunSpec, method_cls, task_name: str, seed: int) -> RunSpec:
    """The run the harness trains for a missing source prompt: the source method on ``task_name`` with the
    preset's settings (not the command's overrides), the target's model, data source and ``seed``."""
    from suites import TaskDataError, get_task

    source_method = method_cls.source_method
    task = get_task(task_name)
    if request.data_dir:
        from suites import check_local_files

        try:
            check_local_files(task, request.data_dir)
        except TaskDataError as exc:
            raise ValueError(
                f"{target.method}.{method_cls.source_field}: source task {task.name!r} has no ok "
                f"{source_method} run in {request.out or 'results'}/ (model {target.model}, preset "
                f"{target.preset}) and cannot be trained here: {str(exc).splitlines()[0]}; add its files, "
                f"or pick another source (--set {target.method}.{method_cls.source_field}=sst2) or a "
                ".safetensors prompt file"
            ) from None
    if get_method_class(source_method).requires_sources:
        raise ValueError(f"source method {source_method!r} itself needs source prompts; not supported")
    preset = get_preset(request.preset)
    train = TrainConfig()
    for key, value in train_overrides(preset, task.name).items():
        train.set(key, value)
    train.validate()
    config = build_config(source_method, method_overrides(preset, task.name, source_method))
    return RunSpec(
        suite=task.suite,
        task=task.name,
        method=source_method,
        method_config=config_to_dict(config),
        model=target.model,
        preset=preset.name,
        seed=seed,
        train=dict(vars(train)),
        data=dict(target.data),
    )


def parse_sweep(item: str) -> tuple[str, str, list[str]]:
    """``"pt.num_tokens=10,20,50"`` -> ``("pt", "num_tokens", ["10", "20", "50"])`` (scope: a method or train)."""
    key, sep, values = item.partition("=")
    scope, dot, field = key.partition(".")
    parts = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not dot or not field or not parts:
        raise ValueError(f"--sweep {item!r} is not of the form method.field=V1,V2,... (or train.field=V1,V2)")
    if scope != "train":
        parse_method_list(scope)  # unknown method -> did-you-mean error
    return scope, field, parts


def _plan_sweeps(request: RunRequest) -> list[RunSpec]:
    """One plan per swept value (the first sweep; the rest recursively). A sweep over a method's field only
    multiplies that method's runs; the other methods are planned once."""
    if not request.sweeps:
        return _plan_requested(request)
    (scope, field, values), rest = request.sweeps[0], request.sweeps[1:]
    if scope != "train" and scope not in request.methods:  # another method's sweep: nothing to do here
        return _plan_sweeps(replace(request, sweeps=rest))
    specs: list[RunSpec] = []
    given = request.overrides or {}
    others = [m for m in request.methods if m != scope] if scope != "train" else []
    if others:
        kept = {k: v for k, v in given.items() if k in others or k == "train"}
        specs += _plan_sweeps(replace(request, methods=others, overrides=kept, sweeps=rest))
    swept = request.methods if scope == "train" else [scope]
    for value in values:
        overrides = {k: dict(v) for k, v in given.items() if k in swept or k == "train"}
        overrides.setdefault(scope, {})[field] = value
        specs += _plan_sweeps(replace(request, methods=swept, overrides=overrides, sweeps=rest))
    unique = {spec.run_id: spec for spec in specs}  # a swept value equal to the default is planned once
    return list(unique.values())


def _plan_requested(request: RunRequest) -> list[RunSpec]:
    """Expand a request into fully resolved specs (task x method x seed, times each ``--sweep`` value),
    validating every value."""
    if request.sweeps:
        for scope, field, _ in request.sweeps:
            if scope != "train" and scope not in request.methods:
                raise ValueError(
                    f"--sweep {scope}.{field}: {scope!r} is neither a selected method "
                    f"({', '.join(request.methods)}) nor 'train'"
                )
        return _plan_sweeps(request)

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
    if request.data_dir:  # after the settings, so a typo in --set is reported before a missing file
        from suites import check_local_files, get_task

        for task in request.tasks:
            check_local_files(get_task(task, request.suite), request.data_dir)
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
    spec: RunSpec,
    out_dir: Path,
    on_progress=None,
    save_artifacts: bool = True,
    checkpoint_every: int | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Execute ``spec`` in a subprocess; a crash of that process still leaves a ``failed`` record.

    ``save_artifacts=False`` skips the artifact (the record's ``artifact`` is null); it is not part of the spec,
    so it does not change the run id. If this process is interrupted (KeyboardInterrupt, or
    ``bench.signals.Terminated`` on SIGTERM) the worker is stopped, the run is recorded as ``cancelled`` (it runs
    again next time) and the interrupt propagates.

    ``env``: extra environment variables for the run's process (a GPU assignment, a search trial's address).
    """
    path = record_path(out_dir, spec)
    last: dict[str, Any] = {}
    before = _mtime(path)  # a record left by an earlier attempt must not pass for this attempt's
    with tempfile.TemporaryDirectory(prefix="ptbench-") as tmp:
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_text(json.dumps(spec.to_dict()))
        env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        extra = ["--checkpoint-every", str(checkpoint_every)] if checkpoint_every else []
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", str(spec_file), str(path), *extra]
            + ([] if save_artifacts else ["--no-artifacts"]),
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
        try:
            for line in proc.stdout:
                if line.startswith(PROGRESS_PREFIX):
                    last = json.loads(line[len(PROGRESS_PREFIX) :])
                    if on_progress:
                        on_progress(last)
            code = proc.wait()
        except KeyboardInterrupt as exc:
            stop_worker(proc)
            finished = read_record(path)
            if finished is not None and finished["run_id"] == spec.run_id and finished["status"] == "ok":
                raise  # it finished just before the interrupt: keep it
            why = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
            record = failed_record(
                spec,
                f"cancelled: bench run received {why}",
                None,
                status="cancelled",
                progress={"steps": last.get("step"), "final_loss": last.get("loss")},
            )
            write_json_atomic(path, record)
            raise
        drainer.join()
    record = read_record(path) if _mtime(path) != before else None
    if record is None or record["run_id"] != spec.run_id:
        tail = "".join(stderr_lines)[-4000:]
        last_line = next((ln.strip() for ln in reversed(stderr_lines) if ln.strip()), "no output")
        if code < 0:  # killed by a signal: a segfault, or the OS (SIGKILL from the out-of-memory killer)
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            hint = " (out of memory? the OS kills with SIGKILL)" if -code == signal.SIGKILL else ""
            error = f"worker killed by {name}{hint} at step {last.get('step', 0)}"
        else:
            error = f"worker exited with code {code}: {last_line}"
        progress = {"steps": last.get("step"), "final_loss": last.get("loss")}
        record = failed_record(spec, error, tail, progress=progress)
        write_json_atomic(path, record)
    return record


def run_locked(spec: RunSpec, out_dir: Path, **options: Any) -> dict[str, Any] | None:
    """``run_one`` under the run's lock (``bench.locks``): None if another live process holds it; the finished
    record if another process completed the run meanwhile; else the new record."""
    from bench.locks import try_lock

    lock = try_lock(out_dir, spec.run_id)
    if lock is None:
        return None
    with lock:
        finished = existing(spec, out_dir)
        if finished is not None and finished["status"] == "ok":
            return finished
        return run_one(spec, out_dir, **options)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def stop_worker(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the worker, then SIGKILL it if it has not exited after ``grace_s`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def existing(spec: RunSpec, out_dir: Path) -> dict[str, Any] | None:
    path = record_path(out_dir, spec)
    return read_record(path) if path.exists() else None
